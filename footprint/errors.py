"""The project's own errors. Every message says what was wrong and how to fix it."""

from __future__ import annotations


class FootprintError(Exception):
    """Base class of every error footprint raises on purpose."""


class UsageError(FootprintError, TypeError):
    """The API was misused (e.g. ``run.phase`` after the run ended)."""


class SensorError(FootprintError):
    """A sensor could not be read. Raised at the hardware edge, chained with ``from``."""


class RegionError(FootprintError, ValueError):
    """A region or carbon-intensity input could not be resolved."""


class StoreError(FootprintError):
    """The run store cannot be used (not writable, a file instead of a directory, ...)."""


class RunNotFoundError(FootprintError, LookupError):
    """No run (or more than one run) matches an id prefix."""


class FootprintWarning(UserWarning):
    """A degraded measurement (a sensor unreadable, an estimate used instead, ...)."""


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` for any exception, even one whose ``__str__`` raises: the
    profiler describes the user's and its sensors' errors without ever failing on them."""
    try:
        text = str(exc)
    except Exception:
        text = "(a message that cannot be printed)"
    return f"{type(exc).__name__}: {text}".rstrip(": ")
