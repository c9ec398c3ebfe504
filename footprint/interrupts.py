"""SIGTERM and SIGINT while runs are active.

SIGTERM (a scheduler pre-empting a job) saves every active run as ``"interrupted"`` and then does
what it would have done: the default terminates the process; a handler of the program's own is
called instead, and the runs go on (a graceful shutdown ends them itself, as ``"interrupted"``).
SIGINT keeps Python's behaviour (``KeyboardInterrupt``).

Either signal may arrive while the main thread is inside footprint itself, holding a sensor's
lock or half-way through saving a record. Handling it there could deadlock or lose the record, so
footprint's own code runs in :data:`critical` sections: a signal that arrives inside one is held
and delivered the moment the outermost section ends. Handlers are installed only while a run is
active and only from the main thread (the only place Python allows it).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any, Literal

from footprint import runtime

_local = threading.local()  # critical-section depth, per thread


class SignalRegistry:
    """The runs that signals act for, the handlers footprint replaced, and signals held while
    footprint's own code ran (one per process, owned by :mod:`footprint.runtime`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}
        self.active: list[Any] = []  # runs, oldest first (Run objects; loosely typed: no cycle)

    def restore_all(self) -> None:
        """Give the program its handlers back (from the main thread)."""
        with self.lock:
            self.active.clear()
            _restore(self)

    def restore_after_fork(self) -> None:
        """In a forked child: the handlers the program had before footprint, whatever thread
        forked (the child's only thread is its main thread)."""
        for signum, prev in self.previous.items():
            try:
                if signal.getsignal(signum) is _HANDLERS[signum]:
                    signal.signal(signum, prev)
            except (ValueError, OSError):  # not the main thread after all: leave it
                pass


def _registry() -> SignalRegistry:
    return runtime.get().ensure("signals", SignalRegistry)


class _Critical:
    """``with critical:`` — footprint code that a signal handler must not interrupt (re-entrant)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> Literal[False]:
        _local.depth -= 1
        if _local.depth == 0 and threading.current_thread() is threading.main_thread():
            signals = runtime.get().signals
            if signals is not None and signals.pending:
                _deliver_pending(signals)
        return False


critical = _Critical()


def _in_critical() -> bool:
    return getattr(_local, "depth", 0) > 0


def _deliver_pending(signals: SignalRegistry) -> None:
    while signals.pending:
        signum = signals.pending.pop(0)
        _HANDLERS[signum](signum, None)


def _on_sigterm(signum: int, frame: Any) -> None:
    signals = _registry()
    if _in_critical():
        signals.pending.append(signum)
        return
    prev = signals.previous.get(signal.SIGTERM, signal.SIG_DFL)
    if callable(prev):
        # The program handles SIGTERM itself (e.g. finish the step, checkpoint, exit): its
        # runs go on and end as it decides; they are recorded as interrupted.
        for run in list(signals.active):
            run.signalled("SIGTERM")
        prev(signum, frame)
        return
    # The process is about to end: no other Python handler may cut this one short. A SIGCHLD
    # from workers the same SIGTERM killed would otherwise run, say, torch's DataLoader
    # handler here, which raises before the run is saved.
    _quiet_other_handlers()
    for run in reversed(list(signals.active)):
        run.interrupt("SIGTERM")
    _restore(signals)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # terminate exactly as SIGTERM would have


#: signals whose Python handlers are set aside while a SIGTERM ends the process
_QUIETED = tuple(
    getattr(signal, name)
    for name in ("SIGCHLD", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)


def _quiet_other_handlers() -> None:
    for signum in _QUIETED:
        try:
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_IGN)
        except (OSError, ValueError):  # not the main thread, or not settable here
            pass


def _on_sigint(signum: int, frame: Any) -> None:
    signals = _registry()
    if _in_critical():
        signals.pending.append(signum)
        return
    prev = signals.previous.get(signal.SIGINT, signal.default_int_handler)
    if callable(prev):
        prev(signum, frame)  # Python's default raises KeyboardInterrupt here


_HANDLERS: dict[int, Callable[[int, Any], None]] = {
    signal.SIGTERM: _on_sigterm,
    signal.SIGINT: _on_sigint,
}


def _install(signals: SignalRegistry) -> None:
    if signals.previous or threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in _HANDLERS.items():
        prev = signal.getsignal(signum)
        if signum == signal.SIGTERM and prev == signal.SIG_IGN:
            continue  # the program chose to ignore SIGTERM; leave it so
        if signum == signal.SIGINT and prev is not signal.default_int_handler:
            continue  # a custom SIGINT handler is the program's business
        signals.previous[signum] = prev
        signal.signal(signum, handler)


def _restore(signals: SignalRegistry) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may; the handlers stay until a main-thread run ends
    for signum, prev in list(signals.previous.items()):
        if signal.getsignal(signum) is _HANDLERS[signum]:
            signal.signal(signum, prev)
        del signals.previous[signum]


def register(run: Any) -> None:
    """A run started: handle signals on its behalf (installs handlers on the first)."""
    signals = _registry()
    with signals.lock:
        signals.active.append(run)
        _install(signals)


def unregister(run: Any) -> None:
    """A run ended: restore the program's handlers after the last one."""
    signals = _registry()
    with signals.lock:
        if run in signals.active:
            signals.active.remove(run)
        if not signals.active:
            _restore(signals)
