"""The process's footprint state, in one object: what every run of the process shares.

:func:`get` returns the :class:`Runtime` (made on first use). It owns the sensor probe cache, the
NVML session, the sampler thread, the signal registry, the host facts, the warned-once keys, the
process-wide listeners and the read-only data tables (region index, CPU tables). :func:`reset`
closes all of it (tests call it between cases; nothing else needs to).

A forked child (``os.fork``, a fork-based ``multiprocessing`` pool, a PyTorch DataLoader
worker) gets a fresh runtime: none of its parent's runs, sampler, signal handling or listeners,
only the read-only data tables. The parent's signal handlers, if footprint had installed any,
are put back to what they were before footprint in the child.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from footprint.interrupts import SignalRegistry
    from footprint.listeners import RunListener
    from footprint.sampler import SamplerThread

T = TypeVar("T")


class Runtime:
    """Process-wide state (one per process; see the module docstring)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.pid = os.getpid()
        self.lock = threading.RLock()
        #: discovered sensors by source and arguments: later runs start in microseconds
        self.probe_cache: dict[tuple, Any] = {}
        #: the NVML session (or why NVML is unusable), once per process
        self.nvml_session: Any = None
        self.sampler: SamplerThread | None = None
        self.signals: SignalRegistry | None = None
        #: machine facts by (proc root, root): read once per process
        self.host_facts: dict[tuple[str, str], dict] = {}
        #: keys of warnings already given in this process (each is given once)
        self.warned: set[tuple] = set()
        self.listeners: list[RunListener] = []
        #: runs of each (job launcher ids, run name) begun in this process: which one is which
        self.job_runs: dict[tuple[str, str], int] = {}
        #: read-only tables loaded from package data (kept across forks: they never change)
        self.data: dict[str, Any] = dict(data or {})

    def cached(self, key: str, load: Callable[[], T]) -> T:
        """The read-only table ``key``, loaded by ``load()`` on first use."""
        try:
            return self.data[key]
        except KeyError:
            pass
        with self.lock:
            if key not in self.data:
                self.data[key] = load()
            return self.data[key]

    def ensure(self, attr: str, make: Callable[[], T]) -> T:
        """The part held in ``attr`` (``sampler``, ``signals``...), made by ``make()`` on first
        use."""
        value = getattr(self, attr)
        if value is None:
            with self.lock:
                value = getattr(self, attr)
                if value is None:
                    value = make()
                    setattr(self, attr, value)
        return value

    def warn_once(self, *key: object) -> bool:
        """True the first time ``key`` is seen in this process (then warn), False after."""
        with self.lock:
            if key in self.warned:
                return False
            self.warned.add(key)
            return True

    def close(self) -> None:
        """Stop the sampler thread, restore signal handlers, close NVML; drop every cache."""
        if self.sampler is not None:
            self.sampler.close()
        if self.signals is not None:
            self.signals.restore_all()
        session = self.nvml_session
        nvml = getattr(session, "nvml", None)
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except Exception:  # already shut down, or the library went away: nothing to keep
                pass
        self.__init__()  # type: ignore[misc]


_current: Runtime | None = None
_lock = threading.Lock()

#: Held by footprint's background threads while they may import a module or build a record. A
#: fork waits for it (up to 5 s): a thread that holds an import lock at the instant of a fork
#: leaves that lock held forever in the child, and the child's first import of the module hangs
#: (a DataLoader worker forked while the sampler's first checkpoint imports the record's code).
fork_guard = threading.RLock()
_guard_held = False


def get() -> Runtime:
    """This process's runtime (made on first use)."""
    rt = _current
    if rt is None:
        rt = _make()
    return rt


def _make() -> Runtime:
    global _current
    with _lock:
        if _current is None:
            _current = Runtime()
        return _current


def reset() -> None:
    """Close the runtime and start afresh: sampler stopped, signal handlers restored, NVML shut
    down, caches and warned-once keys forgotten, listeners removed. For tests and for programs
    that want footprint to let go of everything it holds; runs still active are not ended."""
    global _current
    with _lock:
        old, _current = _current, None
    if old is not None:
        old.close()


def _before_fork() -> None:
    global _guard_held
    _guard_held = fork_guard.acquire(timeout=5.0)


def _after_fork_in_parent() -> None:
    global _guard_held
    if _guard_held:
        _guard_held = False
        fork_guard.release()


def _after_fork_in_child() -> None:
    # The child has one thread (the one that forked) and a copy of the parent's memory: the
    # parent's runs, sampler thread and locks are not its own. Start afresh, keeping only the
    # read-only tables, and give signals back to the handlers the program had before footprint.
    global _current, _lock, fork_guard, _guard_held
    _lock = threading.Lock()
    fork_guard, _guard_held = threading.RLock(), False
    old, _current = _current, None
    if old is None:
        return
    if old.signals is not None:
        old.signals.restore_after_fork()
    _current = Runtime(data=old.data)


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
