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

Python runs a handler only when the main thread next runs Python code. The kernel may hand a
process's signal to any of its threads (a pool's result thread, a loader's pin-memory thread),
and then nothing interrupts a main thread blocked in ``time.sleep`` or ``pool.map``: without
footprint the default SIGTERM would have ended the process at once, with it the process would go
on until the main thread woke. So while handlers are installed, a :class:`MainThreadWaker`
watches Python's wakeup fd and, when another thread took SIGTERM or SIGINT, pokes the main
thread with a signal of its own whose handler does nothing: the main thread's blocking call is
interrupted and the real handler runs there.
"""

from __future__ import annotations

import _thread
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
        self.waker: MainThreadWaker | None = None

    def restore_all(self) -> None:
        """Give the program its handlers back (from the main thread) and stop the waker."""
        with self.lock:
            self.active.clear()
            _restore(self)
            if self.waker is not None:
                self.waker.close()
                self.waker = None

    def restore_after_fork(self) -> None:
        """In a forked child: the handlers the program had before footprint, whatever thread
        forked (the child's only thread is its main thread)."""
        for signum, prev in self.previous.items():
            try:
                if signal.getsignal(signum) is _HANDLERS[signum]:
                    signal.signal(signum, prev)
            except (ValueError, OSError):  # not the main thread after all: leave it
                pass
        if self.waker is not None:
            self.waker.after_fork_in_child()
            self.waker = None


def _woken(signum: int, frame: Any) -> None:
    """The waker's signal: its only job was to interrupt the main thread's blocking call."""


class MainThreadWaker:
    """Brings a signal that another thread took to the main thread (see the module docstring).

    Made once per process, from the main thread; :meth:`arm` and :meth:`disarm` follow the
    handlers. It needs a real-time signal nobody handles (it takes none that is in use) and
    Python's wakeup fd unset: a program that set its own (asyncio's loop does) wakes its main
    thread itself, and the waker stays out of its way. The wake signal's do-nothing handler
    stays installed for the life of the process: a poke still on its way when the run ends must
    not meet the default action of a real-time signal, which is to terminate.
    """

    def __init__(self, wake_signum: int) -> None:
        self.wake_signum = wake_signum
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # Python's C handler writes to it
        self._main_ident = threading.main_thread().ident
        self._armed = False
        self._closed = False
        signal.signal(wake_signum, _woken)
        # A bare thread: Thread.start would wait until it is scheduled, on a run's start.
        _thread.start_new_thread(self._watch, (self._read_fd,))

    @staticmethod
    def make() -> MainThreadWaker | None:
        """A waker (main thread), or None where it cannot work: no real-time signals or
        ``pthread_kill`` (not Linux), every candidate signal taken, no fds or threads left."""
        if not hasattr(signal, "pthread_kill"):
            return None
        wake_signum = _free_realtime_signal()
        if wake_signum is None:
            return None
        try:
            return MainThreadWaker(wake_signum)
        except (OSError, RuntimeError, ValueError):  # signals then work as they did before
            return None

    def arm(self) -> None:
        """Watch the signals Python receives (main thread, footprint's handlers installed)."""
        if self._closed or self._armed:
            return
        try:
            old = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError):  # not the main thread: nothing armed
            return
        if old == -1:
            self._armed = True
        else:  # the program's own (asyncio's): it wakes its main thread already
            signal.set_wakeup_fd(old)

    def disarm(self) -> None:
        """Give the wakeup fd back (main thread)."""
        if not self._armed:
            return
        self._armed = False
        try:
            old = signal.set_wakeup_fd(-1)
            if old != self._write_fd:  # the program set its own meanwhile: keep that
                signal.set_wakeup_fd(old)
        except (ValueError, OSError):
            pass

    def close(self) -> None:
        """Disarm and end the watching thread (it reads end-of-file)."""
        self.disarm()
        if not self._closed:
            self._closed = True
            os.close(self._write_fd)

    def after_fork_in_child(self) -> None:
        """In a forked child: the pipe is the parent's and no thread watches it here."""
        if self._armed:
            self.disarm()
        self._closed = True
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def _watch(self, read_fd: int) -> None:
        # Never a candidate for the process's signals itself: they must go to a thread that a
        # signal can interrupt, ideally the main one.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        watched = {int(signum) for signum in _HANDLERS}
        try:
            while data := os.read(read_fd, 64):
                if watched.intersection(data) and self._main_ident is not None:
                    signal.pthread_kill(self._main_ident, self.wake_signum)
        except (OSError, ValueError):  # the pipe or the main thread is gone: nothing to wake
            pass
        finally:
            try:
                os.close(read_fd)
            except OSError:
                pass


def _free_realtime_signal() -> int | None:
    """A real-time signal with no handler but an earlier waker's, from the top of the range
    down."""
    top, bottom = getattr(signal, "SIGRTMAX", 0), getattr(signal, "SIGRTMIN", 0)
    for signum in range(top - 1, max(bottom, top - 8), -1):
        try:
            handler = signal.getsignal(signum)
            if handler == signal.SIG_DFL or handler is _woken:
                return signum
        except (ValueError, OSError):
            continue
    return None


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
    if signals.previous:
        if signals.waker is None:
            signals.waker = MainThreadWaker.make()
        if signals.waker is not None:
            signals.waker.arm()


def _restore(signals: SignalRegistry) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may; the handlers stay until a main-thread run ends
    for signum, prev in list(signals.previous.items()):
        if signal.getsignal(signum) is _HANDLERS[signum]:
            signal.signal(signum, prev)
        del signals.previous[signum]
    if signals.waker is not None:
        signals.waker.disarm()


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
