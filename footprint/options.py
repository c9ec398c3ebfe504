"""The options of a tracked run: one definition shared by ``track``, ``Tracker``, ``bench``,
``footprint run`` and the framework callbacks.

:class:`TrackOptions` is the typed form (for ``**options: Unpack[TrackOptions]`` signatures),
:data:`OPTIONS` the same names with their defaults and documentation (the ``track`` docstring is
built from it; a test keeps the two and docs/tracking.md equal), and :func:`resolve` checks a
set of options once, into the frozen :class:`RunConfig` a run starts from.
"""

from __future__ import annotations

import difflib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from footprint.errors import UsageError

if TYPE_CHECKING:
    from footprint.carbon.model import CarbonSetup
    from footprint.sensors.base import Sensor

DEFAULT_SAMPLE_INTERVAL_S = 0.5
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
DEFAULT_MAX_TIMELINE_POINTS = 1000
DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
DEFAULT_GATHER_TIMEOUT_S = 10.0
CPU_UTILISATION = ("machine", "process")
INTENSITY_BASES = ("life-cycle", "direct")
#: Longest interval a timer can wait (threading.TIMEOUT_MAX is ~49 days on Linux); a day is
#: far beyond any useful sampling or checkpoint interval.
MAX_INTERVAL_S = 86400.0


class TrackOptions(TypedDict, total=False):
    """Keyword options of :func:`footprint.track` (all optional; see :data:`OPTIONS`)."""

    region: str | None
    carbon_intensity: float | None
    pue: float | str | None
    intensity_csv: str | os.PathLike[str] | None
    intensity_basis: str
    embodied: bool | Mapping[str, Mapping[str, Any]] | None
    store: str | os.PathLike[str] | None
    save: bool
    task: str | None
    model: str | None
    variant: str | None
    baseline: bool
    tags: Mapping[str, object] | None
    higher_is_better: Mapping[str, bool] | None
    gpus: Sequence[int | str] | None
    cpu_utilisation: str
    cpu_power_w: float | None
    ram_w_per_gb: float | None
    sample_interval_s: float
    checkpoint_interval_s: float
    max_timeline_points: int
    powercap_root: str | os.PathLike[str]
    proc_root: str | os.PathLike[str]
    sensors: Sequence[Sensor] | None
    job: str | None
    gather_timeout_s: float
    live: bool


@dataclass(frozen=True)
class Option:
    """One option: its name, default and what it does (one line, for docstrings and docs)."""

    name: str
    default: Any
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option("region", None, "grid region: ISO 3166 code, sub-region, grid zone or provider:region"),
    Option("carbon_intensity", None, "g CO2e/kWh, instead of (or to override) a region's"),
    Option("pue", None, "power usage effectiveness: a number >= 1 or a preset (default 1.0)"),
    Option("intensity_csv", None, "hourly intensity file, integrated over the run's timeline"),
    Option("intensity_basis", "life-cycle", "Electricity Maps column: 'life-cycle' or 'direct'"),
    Option("embodied", None, "True (published defaults) or {kind: {...}}: embodied emissions"),
    Option("store", None, "run directory (default $FOOTPRINT_DIR or ./footprint-runs)"),
    Option("save", True, "False keeps the record in memory only"),
    Option("task", None, "leaderboard grouping: the task"),
    Option("model", None, "leaderboard grouping: the model"),
    Option("variant", None, "leaderboard grouping: the variant (int8, distilled, ...)"),
    Option("baseline", False, "this (task, model, variant) is the task's baseline"),
    Option("tags", None, "free-form {name: value}, values kept as strings"),
    Option("higher_is_better", None, "{metric: bool}, the direction of metrics you log"),
    Option("gpus", None, "NVML indices or UUIDs to measure (default: CUDA_VISIBLE_DEVICES)"),
    Option(
        "cpu_utilisation", "process", "whose CPU use is charged: 'process' (the run's) or 'machine'"
    ),
    Option("cpu_power_w", None, "W of all the CPUs the run may use at full load (estimate only)"),
    Option("ram_w_per_gb", None, "W per GiB of memory in use (estimate only; default 0.3725)"),
    Option(
        "sample_interval_s",
        DEFAULT_SAMPLE_INTERVAL_S,
        "timeline sampling period, s (grows with the run)",
    ),
    Option("checkpoint_interval_s", DEFAULT_CHECKPOINT_INTERVAL_S, "checkpoint period, seconds"),
    Option("max_timeline_points", DEFAULT_MAX_TIMELINE_POINTS, "timeline buckets kept (>= 2)"),
    Option("powercap_root", DEFAULT_POWERCAP_ROOT, "where RAPL's powercap tree is (tests)"),
    Option("proc_root", "/proc", "where procfs is (tests)"),
    Option("sensors", None, "your own Sensor objects instead of probing (e.g. a smart plug)"),
    Option("job", None, "join the job of this name (default $FOOTPRINT_JOB, else the launcher's)"),
    Option(
        "gather_timeout_s",
        DEFAULT_GATHER_TIMEOUT_S,
        "global rank 0 waits this long at its end for the other ranks' parts",
    ),
    Option("live", False, "a one-line status on stderr while the run runs (a terminal only)"),
)

NAMES: tuple[str, ...] = tuple(o.name for o in OPTIONS)


def docstring() -> str:
    """The options as a docstring section (``track`` and ``bench`` append it to their own)."""
    width = max(len(n) for n in NAMES)
    lines = ["Options (footprint.options.TrackOptions):", ""]
    for o in OPTIONS:
        lines.append(f"- ``{o.name}``{' ' * (width - len(o.name))}  {o.doc} [{o.default!r}]")
    return "\n".join(lines)


def _path_or(key: str, value: Any, default: str) -> str | os.PathLike[str]:
    if value is None:
        return default
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"{key} must name a directory, got {value!r}")
    return value


def check_names(given: Mapping[str, Any], where: str = "footprint.track") -> None:
    """UsageError for a keyword that is not an option, naming the closest one."""
    for key in given:
        if key not in NAMES:
            close = difflib.get_close_matches(key, NAMES, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}=?" if close else ""
            raise UsageError(
                f"{where}() got an unknown option {key!r}{hint} (options: {', '.join(NAMES)})"
            )


@dataclass(frozen=True)
class RunConfig:
    """Checked options a run starts from (made by :func:`resolve`, before any of the user's work).

    ``default_name`` is True when no name was given (a decorated function then names its run).
    """

    name: str
    default_name: bool
    carbon: CarbonSetup
    store: str | os.PathLike[str] | None
    save: bool
    task: str | None
    model: str | None
    variant: str | None
    baseline: bool
    tags: Mapping[str, str]
    higher_is_better: Mapping[str, bool]
    gpus: tuple[int | str, ...] | None
    cpu_utilisation: str
    cpu_power_w: float | None
    ram_w_per_gb: float | None
    sample_interval_s: float
    checkpoint_interval_s: float
    max_timeline_points: int
    powercap_root: str | os.PathLike[str]
    proc_root: str | os.PathLike[str]
    sensors: tuple[Sensor, ...] | None
    job: str | None = None
    gather_timeout_s: float = DEFAULT_GATHER_TIMEOUT_S
    live: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def named(self, name: str) -> RunConfig:
        """This configuration for a run called ``name``."""
        from dataclasses import replace

        return replace(self, name=name, default_name=False)


def _interval(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_INTERVAL_S
    ):
        raise ValueError(
            f"{name} must be a number of seconds above 0 and at most {MAX_INTERVAL_S:g}, "
            f"got {value!r}"
        )
    return float(value)


def _optional_power(name: str, value: Any, unit: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")
    return float(value)


def _optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def resolve(
    name: str | None,
    options: Mapping[str, Any],
    *,
    clock: Callable[[], float] | None = None,
    where: str = "footprint.track",
) -> RunConfig:
    """Check ``options`` (keys of :class:`TrackOptions`) and resolve the carbon inputs.

    Raises UsageError for an unknown option (naming the closest), ValueError for a bad value,
    RegionError for a region or intensity that cannot be resolved: all before any work.
    """
    check_names(options, where)
    o = {opt.name: opt.default for opt in OPTIONS}
    o.update(options)
    if o["cpu_utilisation"] not in CPU_UTILISATION:
        raise ValueError(
            f"cpu_utilisation must be 'machine' or 'process', got {o['cpu_utilisation']!r}"
        )
    if o["intensity_basis"] not in INTENSITY_BASES:
        raise ValueError(
            f"intensity_basis must be 'life-cycle' or 'direct', got {o['intensity_basis']!r}"
        )
    points = o["max_timeline_points"]
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"max_timeline_points must be an integer >= 2, got {points!r}")
    for key in ("save", "baseline", "live"):
        if not isinstance(o[key], bool):
            raise ValueError(f"{key} must be True or False, got {o[key]!r}")
    for key in ("task", "model", "variant"):
        _optional_text(key, o[key])
    job = _optional_text("job", o["job"])
    if job is not None and not job.strip():
        raise ValueError("job must name the job (any non-empty text), got an empty string")
    gather = o["gather_timeout_s"]
    if isinstance(gather, bool) or not isinstance(gather, (int, float)) or not 0 <= gather <= 3600:
        raise ValueError(f"gather_timeout_s must be seconds from 0 to 3600, got {gather!r}")
    tags: dict[str, str] = {}
    for k, v in (o["tags"] or {}).items():
        if not isinstance(k, str):
            raise ValueError(f"tag names must be strings, got {k!r}")
        tags[k] = str(v)
    directions = dict(o["higher_is_better"] or {})
    for k, v in directions.items():
        if not isinstance(k, str) or not isinstance(v, bool):
            raise ValueError(
                f"higher_is_better must map metric names to True/False, got {k!r}: {v!r}"
            )
    if o["store"] is not None and not os.fspath(o["store"]):
        raise ValueError("store must name a directory, got an empty string")
    from footprint import carbon

    # Resolved when track() is called: a bad region fails before any of the user's work.
    setup = carbon.resolve(
        region=o["region"],
        carbon_intensity=o["carbon_intensity"],
        pue=o["pue"],
        intensity_csv=o["intensity_csv"],
        intensity_basis=o["intensity_basis"],
        embodied=o["embodied"],
    )
    return RunConfig(
        name=name or "run",
        default_name=name is None,
        carbon=setup,
        store=o["store"],
        save=o["save"],
        task=o["task"],
        model=o["model"],
        variant=o["variant"],
        baseline=o["baseline"],
        tags=tags,
        higher_is_better=directions,
        gpus=tuple(o["gpus"]) if o["gpus"] is not None else None,
        cpu_utilisation=o["cpu_utilisation"],
        cpu_power_w=_optional_power("cpu_power_w", o["cpu_power_w"], "watts"),
        ram_w_per_gb=_optional_power("ram_w_per_gb", o["ram_w_per_gb"], "watts per GiB"),
        sample_interval_s=_interval("sample_interval_s", o["sample_interval_s"]),
        checkpoint_interval_s=_interval("checkpoint_interval_s", o["checkpoint_interval_s"]),
        max_timeline_points=points,
        # None (from a config file or a wrapper passing its own default) means the default
        powercap_root=_path_or("powercap_root", o["powercap_root"], DEFAULT_POWERCAP_ROOT),
        proc_root=_path_or("proc_root", o["proc_root"], "/proc"),
        sensors=tuple(o["sensors"]) if o["sensors"] is not None else None,
        job=job,
        gather_timeout_s=float(gather),
        live=o["live"],
        clock=clock or time.monotonic,
    )
