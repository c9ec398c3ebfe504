"""``footprint.track``: one object that is a context manager and a decorator.

The options are defined once in :mod:`footprint.options`; the live run is :mod:`footprint.run`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from footprint import interrupts, options
from footprint.errors import FootprintWarning, UsageError, describe
from footprint.interrupts import critical
from footprint.run import Run, outcome

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from footprint.options import RunConfig, TrackOptions

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("footprint_run", default=None)


def current_run() -> Run | None:
    """The innermost run active in this thread or task, or None."""
    return _current.get()


class Tracker:
    """What :func:`track` returns: a context manager, and a decorator for sync and async functions.

    Each ``with`` (or each call of a decorated function) is a new :class:`Run`.
    ``Tracker(name, **options)`` is the same as ``footprint.track(name, **options)``.
    """

    @overload
    def __init__(self, name: str | None = None, **opts: Unpack[TrackOptions]) -> None: ...

    @overload
    def __init__(self, name: RunConfig) -> None: ...

    def __init__(self, name: Any = None, **opts: Any) -> None:
        if isinstance(name, options.RunConfig):
            self.config = name
        else:
            self.config = options.resolve(name, opts, where="footprint.Tracker")
        self._run: Run | None = None
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Run:
        if self._run is not None and self._run._mine:
            raise UsageError(
                f"this footprint.track({self.config.name!r}) object is already running; a "
                "tracker can be entered once at a time: create another with footprint.track(...) "
                "for a nested or concurrent run"
            )
        run = Run(self.config)
        try:
            with critical:
                self._run = run
                try:
                    run.begin()
                except BaseException:
                    self._run = None
                    run.abandon()
                    raise
                interrupts.register(run)
                self._token = _current.set(run)
        except BaseException as exc:
            # A signal held while the run started (Ctrl-C during a slow first read, Jupyter's
            # "interrupt kernel") is delivered as the critical section ends, here: the block
            # never runs and no __exit__ will come. End the run now, as what happened.
            if self._run is run:
                self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return run

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        run, self._run = self._run, None
        if run is None:
            return False
        with critical:  # a signal now waits until the record is saved
            try:
                run.end(*outcome(run, exc_type, exc))
            except Exception as bug:  # a profiler bug must not replace the user's outcome
                warnings.warn(
                    f"footprint: failed to finish run {run.id}: {describe(bug)}",
                    FootprintWarning,
                    stacklevel=2,
                )
            finally:
                interrupts.unregister(run)
                if self._token is not None:
                    try:
                        _current.reset(self._token)
                    except ValueError:  # exited in another context (a generator); harmless
                        pass
                    self._token = None
        return False  # the user's exception propagates unchanged

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        if inspect.isclass(func):
            raise UsageError(
                f"@footprint.track cannot decorate a class ({func.__name__}): decorate a function "
                "or method, or use `with footprint.track(...)` inside it"
            )
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise UsageError(
                f"@footprint.track cannot decorate the generator {func.__qualname__}: its body "
                "runs while it is iterated, after the call returns; use `with "
                "footprint.track(...)` inside it or around the loop that consumes it"
            )
        if not callable(func):
            raise UsageError(
                f"footprint.track(...) object called with {func!r}: use it as a decorator on a "
                "function or as `with footprint.track(...) as run:`"
            )
        cfg = self.config
        if cfg.default_name:
            cfg = cfg.named(getattr(func, "__qualname__", None) or repr(func))

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with Tracker(cfg) as run:
                    async_wrapper.last_run = run  # type: ignore[attr-defined]
                    return await func(*args, **kwargs)

            async_wrapper.last_run = None  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Tracker(cfg) as run:
                wrapper.last_run = run  # type: ignore[attr-defined]
                return func(*args, **kwargs)

        wrapper.last_run = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


@overload
def track(name: F) -> F: ...


@overload
def track(
    name: str | None = None,
    _clock: Callable[[], float] | None = None,
    **opts: Unpack[TrackOptions],
) -> Tracker: ...


def track(name: Any = None, _clock: Callable[[], float] | None = None, **opts: Any) -> Any:
    """Measure the energy and carbon footprint of a block or a function.

    As a context manager::

        with footprint.track("train", region="FR") as run:
            with run.phase("epoch"):
                run.count(samples=32)
            run.log(accuracy=0.91)

    As a decorator: ``@footprint.track``, ``@footprint.track("train", region="DE")``, on sync or
    async functions (the run of the latest call is ``func.last_run``; inside the function,
    ``footprint.current_run()``). Every option is checked here, before any of your work: an
    unknown one is a UsageError naming the closest.
    """
    if callable(name) and not isinstance(name, str):
        if opts:
            raise UsageError("use @footprint.track or @footprint.track(name, ...), not both")
        return track()(name)
    if name is not None and not isinstance(name, str):
        raise UsageError(
            f"footprint.track's first argument is the run name (a string), got {name!r}; "
            "did you mean footprint.track(name=...)?"
        )
    return Tracker(options.resolve(name, opts, clock=_clock))


track.__doc__ = (track.__doc__ or "") + "\n    " + options.docstring().replace("\n", "\n    ")
