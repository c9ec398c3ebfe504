"""footprint: measure the energy and carbon footprint of machine-learning runs.

``import footprint`` is light: every public name below is loaded on first use, so pandas,
matplotlib, codecarbon and torch are imported only by the features that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from footprint._version import __version__

# public name -> (module, attribute)
_LAZY = {
    "track": ("footprint.tracker", "track"),
    "current_run": ("footprint.tracker", "current_run"),
    "Run": ("footprint.run", "Run"),
    "add_listener": ("footprint.listeners", "add_listener"),
    "Tracker": ("footprint.tracker", "Tracker"),
    "Store": ("footprint.store", "Store"),
    "load_runs": ("footprint.frames", "load_runs"),
    "carbon_intensity": ("footprint.carbon", "carbon_intensity"),
    "leaderboard": ("footprint.frames", "leaderboard"),
    "bench": ("footprint.steady_state", "bench"),
    "bench_interleaved": ("footprint.steady_state", "bench_interleaved"),
    "Candidate": ("footprint.steady_state", "Candidate"),
    "report": ("footprint.reporting", "report"),
    "check_report": ("footprint.reporting", "check_report"),
    "compare": ("footprint.comparison", "compare"),
    "FootprintError": ("footprint.errors", "FootprintError"),
    "FootprintWarning": ("footprint.errors", "FootprintWarning"),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # real imports for type checkers and IDEs only
    from footprint.carbon import carbon_intensity  # noqa: F401
    from footprint.comparison import compare  # noqa: F401
    from footprint.errors import FootprintError, FootprintWarning  # noqa: F401
    from footprint.frames import leaderboard, load_runs  # noqa: F401
    from footprint.listeners import add_listener  # noqa: F401
    from footprint.reporting import check_report, report  # noqa: F401
    from footprint.run import Run  # noqa: F401
    from footprint.steady_state import Candidate, bench, bench_interleaved  # noqa: F401
    from footprint.store import Store  # noqa: F401
    from footprint.tracker import Tracker, current_run, track  # noqa: F401


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'footprint' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
