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
