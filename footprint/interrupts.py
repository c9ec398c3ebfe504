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
from typing import Any

_local = threading.local()
_pending: list[int] = []
_lock = threading.Lock()
_previous: dict[int, Any] = {}
_active: list[Any] = []  # runs, oldest first (Run objects; typed loosely to avoid a cycle)


class _Critical:
    """``with critical:`` — footprint code that a signal handler must not interrupt (re-entrant)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> bool:
        _local.depth -= 1
        if _local.depth == 0 and _pending and threading.current_thread() is threading.main_thread():
            _deliver_pending()
        return False


critical = _Critical()


def _in_critical() -> bool:
    return getattr(_local, "depth", 0) > 0


def _deliver_pending() -> None:
    while _pending:
        signum = _pending.pop(0)
        _HANDLERS[signum](signum, None)


def _on_sigterm(signum: int, frame: Any) -> None:
    if _in_critical():
        _pending.append(signum)
        return
    prev = _previous.get(signal.SIGTERM, signal.SIG_DFL)
    if callable(prev):
        # The program handles SIGTERM itself (e.g. finish the step, checkpoint, exit): its
        # runs go on and end as it decides; they are recorded as interrupted.
        for run in list(_active):
            run._signalled("SIGTERM")
        prev(signum, frame)
        return
    for run in reversed(list(_active)):
        run._end("interrupted", error="SIGTERM")
    _restore()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # terminate exactly as SIGTERM would have


def _on_sigint(signum: int, frame: Any) -> None:
    if _in_critical():
        _pending.append(signum)
        return
    prev = _previous.get(signal.SIGINT, signal.default_int_handler)
    if callable(prev):
        prev(signum, frame)  # Python's default raises KeyboardInterrupt here


_HANDLERS: dict[int, Callable[[int, Any], None]] = {
    signal.SIGTERM: _on_sigterm,
    signal.SIGINT: _on_sigint,
}


def _install() -> None:
    if _previous or threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in _HANDLERS.items():
        prev = signal.getsignal(signum)
        if signum == signal.SIGTERM and prev == signal.SIG_IGN:
            continue  # the program chose to ignore SIGTERM; leave it so
        if signum == signal.SIGINT and prev is not signal.default_int_handler:
            continue  # a custom SIGINT handler is the program's business
        _previous[signum] = prev
        signal.signal(signum, handler)


def _restore() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may; the handlers stay until a main-thread run ends
    for signum, prev in list(_previous.items()):
        if signal.getsignal(signum) is _HANDLERS[signum]:
            signal.signal(signum, prev)
        del _previous[signum]


def register(run: Any) -> None:
    """A run started: handle signals on its behalf (installs handlers on the first)."""
    with _lock:
        _active.append(run)
        _install()


def unregister(run: Any) -> None:
    """A run ended: restore the program's handlers after the last one."""
    with _lock:
        if run in _active:
            _active.remove(run)
        if not _active:
            _restore()
