"""The run listener interface: how integrations (Prometheus, MLflow, live lines, framework
callbacks) follow a run without the tracker importing any of them.

A listener is any object with some of the methods of :class:`RunListener`; missing ones are
skipped. Attach one to every run of the process with :func:`footprint.add_listener`, or to one
run with ``run.add_listener``. A listener that raises is detached from that run and the error
becomes a note on the run: an integration's bug never breaks the run it follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from footprint import runtime

if TYPE_CHECKING:
    from footprint.record import RunRecord
    from footprint.run import Phase, Run
    from footprint.sampler import Snapshot

EVENTS = ("on_start", "on_tick", "on_phase_start", "on_phase_end", "on_end")


class RunListener(Protocol):
    """What a listener may implement (every method optional)."""

    def on_start(self, run: Run) -> None:
        """The run started: its first readings are taken."""

    def on_tick(self, run: Run, snapshot: Snapshot) -> None:
        """The sampler read every sensor (on the sampler thread: return quickly)."""

    def on_phase_start(self, run: Run, phase: Phase) -> None:
        """A phase opened (in the thread or task that opened it)."""

    def on_phase_end(self, run: Run, phase: Phase) -> None:
        """A phase closed."""

    def on_end(self, run: Run, record: RunRecord) -> None:
        """The run ended and ``record`` is final (saved already, unless ``save=False``)."""


def add_listener(listener: RunListener) -> None:
    """Follow every run this process starts from now on with ``listener`` (until
    :func:`remove_listener` or :func:`footprint.runtime.reset`; a forked child starts with none)."""
    rt = runtime.get()
    with rt.lock:
        rt.listeners.append(listener)


def remove_listener(listener: RunListener) -> None:
    """Stop following new runs with ``listener`` (runs already started keep it)."""
    rt = runtime.get()
    with rt.lock:
        if listener in rt.listeners:
            rt.listeners.remove(listener)
