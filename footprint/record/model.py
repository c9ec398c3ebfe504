"""The typed run record: frozen dataclasses for a run and its parts, read from and written to the
JSON the store keeps.

``RunRecord.from_dict`` upgrades any earlier schema version, then checks every field's type and
range (:mod:`footprint.record.checks`), raising :class:`RecordError` naming the field;
``to_dict`` gives back the JSON. Unknown fields (from a newer minor writer, or a user's own) are
kept in ``extra`` and written back unchanged. Mappings inside a record are plain dicts for
pickling and speed: treat them as read-only. Fields are documented in docs/schema.md.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from footprint.record import checks as c
from footprint.record.checks import Check, RecordError
from footprint.units import J_PER_KWH

STATUSES = ("running", "completed", "failed", "interrupted")
DEVICE_KINDS = ("gpu", "cpu", "dram", "ram")

P = TypeVar("P", bound="_Part")
_FIELDS: dict[type, list[dataclasses.Field]] = {}
_SCHEMAS: dict[type, tuple[list[tuple[str, Check, bool]], frozenset[str]]] = {}


#: JSON leaves, told apart by type: ``isinstance(x, Mapping)`` on a type the ABC has not seen
#: since the last ABC registration walks every Mapping subclass (~100 ms in a process that has
#: imported torch), on whichever thread builds a record
_LEAVES = frozenset((str, float, int, bool, type(None)))


def _dump(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        return {k: _dump(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_dump(v) for v in value]
    if isinstance(value, _Part):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


@dataclass(frozen=True, repr=False)
class _Part:
    """What every part of a record shares: checked construction from JSON, and back."""

    #: field name -> check; every dataclass field but ``extra`` has one.
    CHECKS: ClassVar[dict[str, Check]] = {}
    #: fields holding parts: name -> (part class, True for a list of them)
    NESTED: ClassVar[dict[str, tuple[type[_Part], bool]]] = {}

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True)

    # No generated __repr__ (one shared one): fewer functions to build at import.
    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self._fields())
        return f"{type(self).__name__}({shown})"

    @classmethod
    def _fields(cls) -> list[dataclasses.Field]:
        cached = _FIELDS.get(cls)
        if cached is None:
            cached = _FIELDS[cls] = [f for f in dataclasses.fields(cls) if f.name != "extra"]
        return cached

    @classmethod
    def _schema(cls) -> tuple[list[tuple[str, Check, bool]], frozenset[str]]:
        """(name, check, required) per field, and the field names: worked out once per class
        (records are checked on every load and every stop)."""
        cached = _SCHEMAS.get(cls)
        if cached is None:
            entries = [
                (
                    f.name,
                    cls.CHECKS[f.name],
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                )
                for f in cls._fields()
            ]
            cached = _SCHEMAS[cls] = (entries, frozenset(n for n, _, _ in entries))
        return cached

    @classmethod
    def check(cls: type[P], value: Any, path: str) -> P:
        """``value`` (a JSON object) as this part; RecordError naming the bad field."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise RecordError(f"field {path!r} holds {value!r:.60}, expected an object", path)
        prefix = f"{path}." if path else ""
        entries, known = cls._schema()
        kwargs: dict[str, Any] = {}
        for name, check, required in entries:
            if name in value:
                kwargs[name] = check(value[name], prefix + name)
            elif required:
                raise RecordError(f"field {prefix + name!r} is missing", prefix + name)
        extra = {k: c.json_value(v, prefix + str(k)) for k, v in value.items() if k not in known}
        try:
            return cls(**kwargs, extra=extra)
        except RecordError as exc:  # a check across fields (__post_init__): name it in full
            where = prefix + (exc.field or "")
            raise RecordError(f"field {where!r}: {exc}", where) from None

    def to_dict(self) -> dict[str, Any]:
        """This part as the JSON the store writes (a fresh dict)."""
        out = {f.name: _dump(getattr(self, f.name)) for f in self._fields()}
        out.update(copy.deepcopy(dict(self.extra)))
        return out

    @classmethod
    def fill_defaults(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with every missing optional field set to its default, nested parts
        included (dict level, no checks: the upgrade uses it so old records read as current
        ones). Dicts of parts are copied; other values are shared with ``data``, not copied."""
        out = dict(data)
        for f in cls._fields():
            if f.name not in out:
                if f.default is not dataclasses.MISSING:
                    out[f.name] = _dump(f.default)
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = _dump(f.default_factory())
        for name, (part, many) in cls.NESTED.items():
            value = out.get(name)
            if many and isinstance(value, list):
                out[name] = [part.fill_defaults(v) if isinstance(v, dict) else v for v in value]
            elif not many and isinstance(value, dict):
                out[name] = part.fill_defaults(value)
        return out


@dataclass(frozen=True, repr=False)
class DeviceRecord(_Part):
    """One device's energy over the run and how it was known."""

    id: str
    kind: str
    energy_j: float
    name: str | None = None
    method: str = "unknown"
    measured: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    uncertain: bool = False
    error: str | None = None
    #: what the sensor read for the whole device or machine, when that is more than the run's
    #: share (a RAPL package or a GPU other processes used too); None: ``energy_j`` is all of it
    machine_energy_j: float | None = None
    #: how ``energy_j``, the run's own share, was found (docs/attribution.md)
    attribution: str = "whole device"

    CHECKS: ClassVar[dict[str, Check]] = {
        "id": c.name,
        "kind": c.one_of(*DEVICE_KINDS),
        "energy_j": c.non_negative,
        "name": c.optional(c.text),
        "method": c.name,
        "measured": c.flag,
        "details": c.json_object,
        "uncertain": c.flag,
        "error": c.optional(c.text),
        "machine_energy_j": c.optional(c.non_negative),
        "attribution": c.text,
    }

    @property
    def label(self) -> str:
        """The device's name, else its id."""
        return self.name or self.id


@dataclass(frozen=True, repr=False)
class PhaseRecord(_Part):
    """One occurrence of a phase: its window (seconds from the run's start), the energy of each
    device in it, and the units counted while it was open.

    ``energy_j`` is the run's energy over the phase's whole window; ``attributed_energy_j``
    divides the stretches where phases of other threads or tasks were open at the same time
    among them, so that phases never add up to more than the run. ``counts`` holds every unit
    counted while the phase was open (its sub-phases' too); ``own_counts`` only those counted
    while it was the innermost open phase. ``parent`` is the index, in the run's ``phases``, of
    the phase it was opened in.
    """

    name: str
    path: str
    start_s: float
    end_s: float
    energy_j: Mapping[str, float] = field(default_factory=dict)
    counts: Mapping[str, float] = field(default_factory=dict)
    own_counts: Mapping[str, float] = field(default_factory=dict)
    attributed_energy_j: Mapping[str, float] = field(default_factory=dict)
    parent: int | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "name": c.name,
        "path": c.name,
        "start_s": c.non_negative,
        "end_s": c.non_negative,
        "energy_j": c.mapping(c.non_negative),
        "counts": c.mapping(c.non_negative),
        "own_counts": c.mapping(c.non_negative),
        "attributed_energy_j": c.mapping(c.non_negative),
        "parent": c.optional(c.index),
    }

    def __post_init__(self) -> None:
        if self.end_s < self.start_s:
            raise RecordError(f"ends ({self.end_s}) before it starts ({self.start_s})", "end_s")

    @classmethod
    def check(cls, value: Any, path: str) -> PhaseRecord:
        # A run may hold thousands of phases: the common, well-formed case is checked in one
        # pass without building each field's path; anything else takes the general check
        # (which names the bad field).
        if type(value) is dict and value.keys() <= _PHASE_KEYS and "end_s" in value:
            v = value
            maps = [v.get(k, _EMPTY) for k in _PHASE_MAPS]
            parent = v.get("parent")
            if (
                type(v.get("name")) is str
                and v["name"]
                and type(v.get("path")) is str
                and v["path"]
                and c.plain_non_negative(v.get("start_s"))
                and c.plain_non_negative(v["end_s"])
                and v["end_s"] >= v["start_s"]
                and (parent is None or (type(parent) is int and parent >= 0))
                and all(
                    type(m) is dict
                    and all(type(k) is str and c.plain_non_negative(x) for k, x in m.items())
                    for m in maps
                )
            ):
                energy, counts, own, attributed = (dict(m) for m in maps)
                return cls(
                    name=v["name"], path=v["path"], start_s=v["start_s"], end_s=v["end_s"],
                    energy_j=energy, counts=counts, own_counts=own,
                    attributed_energy_j=attributed, parent=parent,
                )  # fmt: skip
        return super().check(value, path)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def total_energy_j(self) -> float:
        """The run's energy over the phase's whole window (all devices)."""
        return math.fsum(self.energy_j.values())

    @property
    def attributed_j(self) -> float:
        """The phase's own share of the run's energy (concurrent phases divided), all devices."""
        return math.fsum(self.attributed_energy_j.values())


_PHASE_KEYS = frozenset(
    ("name", "path", "start_s", "end_s", "energy_j", "counts", "own_counts",
     "attributed_energy_j", "parent")
)  # fmt: skip
_PHASE_MAPS = ("energy_j", "counts", "own_counts", "attributed_energy_j")
_EMPTY: dict[str, Any] = {}


@dataclass(frozen=True, repr=False)
class TimelineRecord(_Part):
    """The bounded power timeline: ``t_s`` holds n + 1 bucket boundaries (seconds since start),
    ``power_w`` each device's n mean powers."""

    t_s: tuple[float, ...] = ()
    power_w: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    CHECKS: ClassVar[dict[str, Check]] = {"t_s": c.floats, "power_w": c.mapping(c.floats)}

    def __post_init__(self) -> None:
        t = self.t_s
        if any(b < a for a, b in zip(t, t[1:])):
            raise RecordError("bucket boundaries are not in increasing order", "t_s")
        for dev, powers in self.power_w.items():
            if len(powers) != max(len(t) - 1, 0):
                raise RecordError(
                    f"{len(powers)} values for {max(len(t) - 1, 0)} buckets", f"power_w.{dev}"
                )


@dataclass(frozen=True, repr=False)
class GpuRecord(_Part):
    name: str | None = None
    uuid: str | None = None
    driver_version: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "name": c.optional(c.text),
        "uuid": c.optional(c.text),
        "driver_version": c.optional(c.text),
    }


_opt_text = c.optional(c.text)
_opt_count = c.optional(c.whole)


@dataclass(frozen=True, repr=False)
class HostRecord(_Part):
    """The machine the run happened on (every field optional: imported runs know little)."""

    hostname: str | None = None
    os: str | None = None
    os_release: str | None = None
    os_version: str | None = None
    machine: str | None = None
    python_version: str | None = None
    python_implementation: str | None = None
    footprint_version: str | None = None
    cpu_model: str | None = None
    cpu_count_logical: int | None = None
    cpu_count_physical: int | None = None
    memory_total_bytes: int | None = None
    is_vm: bool | None = None
    is_container: bool | None = None
    torch_version: str | None = None
    boot_id: str | None = None
    pid_namespace: str | None = None
    gpus: tuple[GpuRecord, ...] = ()

    CHECKS: ClassVar[dict[str, Check]] = {
        **{
            k: _opt_text
            for k in (
                "hostname",
                "os",
                "os_release",
                "os_version",
                "machine",
                "python_version",
                "python_implementation",
                "footprint_version",
                "cpu_model",
                "torch_version",
                "boot_id",
                "pid_namespace",
            )
        },
        "cpu_count_logical": _opt_count,
        "cpu_count_physical": _opt_count,
        "memory_total_bytes": _opt_count,
        "is_vm": c.optional(c.flag),
        "is_container": c.optional(c.flag),
        "gpus": c.items(GpuRecord.check),
    }
    NESTED: ClassVar[dict[str, tuple[type[_Part], bool]]] = {"gpus": (GpuRecord, True)}


@dataclass(frozen=True, repr=False)
class SourceRecord(_Part):
    """What one source (nvml, rapl, estimate, ...) said when the run started."""

    source: str
    available: bool
    summary: str = ""
    fix: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "source": c.name,
        "available": c.flag,
        "summary": c.text,
        "fix": c.optional(c.text),
    }


@dataclass(frozen=True, repr=False)
class ContentionRecord(_Part):
    """What else the machine was doing during the run (docs/attribution.md): fractions of the
    CPU capacity available to the run, over the whole run."""

    #: busy CPU time of every other process / capacity (available CPUs x duration)
    other_cpu_fraction: float | None = None
    #: the run's own process tree's CPU time / capacity
    run_cpu_fraction: float | None = None
    #: time the hypervisor gave other guests / all CPU time (/proc/stat steal)
    steal_fraction: float | None = None
    #: the highest 1-minute load average seen
    load_avg_1m: float | None = None
    #: the most processes outside the run seen on the run's GPUs at once
    gpu_other_processes: int = 0
    #: True when another process's use passed :attr:`threshold` (the figures are unreliable)
    contended: bool = False
    threshold: float | None = None
    reason: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "other_cpu_fraction": c.optional(c.non_negative),
        "run_cpu_fraction": c.optional(c.non_negative),
        "steal_fraction": c.optional(c.non_negative),
        "load_avg_1m": c.optional(c.non_negative),
        "gpu_other_processes": c.index,
        "contended": c.flag,
        "threshold": c.optional(c.non_negative),
        "reason": c.optional(c.text),
    }


JOB_ROLES = ("part", "job")


@dataclass(frozen=True, repr=False)
class JobRankRecord(_Part):
    """One process of a job (a rank, a wrapped command's tracker, a wrapper) and how it ended."""

    run_id: str
    node: str
    rank: int | None = None
    local_rank: int | None = None
    pid: int | None = None
    status: str = "completed"
    measurer: bool = False
    error: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "run_id": c.run_id,
        "node": c.text,
        "rank": c.optional(c.index),
        "local_rank": c.optional(c.index),
        "pid": c.optional(c.whole),
        "status": c.one_of(*STATUSES),
        "measurer": c.flag,
        "error": c.optional(c.text),
    }


@dataclass(frozen=True, repr=False)
class JobNodeRecord(_Part):
    """One node of a job: what its measurer read (device ids as in the job's ``devices``)."""

    node: str
    status: str = "completed"
    energy_kwh: float = 0.0
    machine_energy_kwh: float | None = None
    emissions_kg: float | None = None
    devices: tuple[str, ...] = ()
    ranks: tuple[int, ...] = ()
    measurer: str | None = None
    hostname: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "node": c.text,
        "status": c.one_of(*STATUSES),
        "energy_kwh": c.non_negative,
        "machine_energy_kwh": c.optional(c.non_negative),
        "emissions_kg": c.optional(c.non_negative),
        "devices": c.items(c.name),
        "ranks": c.items(c.index),
        "measurer": c.optional(c.run_id),
        "hostname": c.optional(c.text),
    }


@dataclass(frozen=True, repr=False)
class JobRecord(_Part):
    """A record's place in a job of many processes (docs/distributed.md).

    On a *part* (``role="part"``, what one process saved) it says which process wrote it:
    ``rank``, ``local_rank``, ``node``, whether it read the node's devices (``measurer``) and
    the wrapping ``footprint run`` (``wrapper``). On the *job* (``role="job"``, assembled from
    its parts) it lists the ``nodes`` and ``ranks`` that took part and the ranks that left no
    part (``missing_ranks``).
    """

    id: str
    launcher: str
    role: str = "part"
    key: str | None = None
    world_size: int | None = None
    rank: int | None = None
    local_rank: int | None = None
    node: str | None = None
    measurer: bool = False
    wrapper: str | None = None
    #: UUIDs of the GPUs this process's torch used (None: it did not say)
    gpus_used: tuple[str, ...] | None = None
    nodes: tuple[JobNodeRecord, ...] = ()
    ranks: tuple[JobRankRecord, ...] = ()
    missing_ranks: tuple[int, ...] = ()
    parts: int = 0

    CHECKS: ClassVar[dict[str, Check]] = {
        "id": c.run_id,
        "launcher": c.name,
        "role": c.one_of(*JOB_ROLES),
        "key": c.optional(c.text),
        "world_size": c.optional(c.whole),
        "rank": c.optional(c.index),
        "local_rank": c.optional(c.index),
        "node": c.optional(c.text),
        "measurer": c.flag,
        "wrapper": c.optional(c.run_id),
        "gpus_used": c.optional(c.items(c.text)),
        "nodes": c.items(JobNodeRecord.check),
        "ranks": c.items(JobRankRecord.check),
        "missing_ranks": c.items(c.index),
        "parts": c.index,
    }
    NESTED: ClassVar[dict[str, tuple[type[_Part], bool]]] = {
        "nodes": (JobNodeRecord, True),
        "ranks": (JobRankRecord, True),
    }


@dataclass(frozen=True, repr=False)
class ForecastRecord(_Part):
    """A forecast of the whole run made while it ran (``run.forecast``: footprint/forecast.py),
    and, in the final record, how far it was from the truth."""

    made_at: str
    phase: str
    total: int
    done: int
    energy_kwh: float
    energy_kwh_low: float
    energy_kwh_high: float
    ends_at: str
    epochs_used: int
    warmup_dropped: bool = False
    method: str = "per-epoch-t"
    emissions_kg: float | None = None
    #: the run's real energy, when it ended with ``total`` epochs of ``phase`` (else None)
    actual_energy_kwh: float | None = None
    #: (forecast - actual) / actual
    error_fraction: float | None = None
    #: whether the real energy fell inside [energy_kwh_low, energy_kwh_high]
    within_interval: bool | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "made_at": c.timestamp,
        "phase": c.text,
        "total": c.whole,
        "done": c.index,
        "energy_kwh": c.non_negative,
        "energy_kwh_low": c.non_negative,
        "energy_kwh_high": c.non_negative,
        "ends_at": c.timestamp,
        "epochs_used": c.whole,
        "warmup_dropped": c.flag,
        "method": c.name,
        "emissions_kg": c.optional(c.non_negative),
        "actual_energy_kwh": c.optional(c.non_negative),
        "error_fraction": c.optional(c.number),
        "within_interval": c.optional(c.flag),
    }


def _hourly(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    out = c.json_object(value, path)
    for key in ("path", "basis"):
        if key in out:
            c.text(out[key], f"{path}.{key}")
    return out


def _embodied(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    out = c.json_object(value, path)
    if out.get("config") is not None:
        c.json_object(out["config"], f"{path}.config")
    if out.get("devices") is not None:
        c.items(c.json_object)(out["devices"], f"{path}.devices")
    return out


@dataclass(frozen=True, repr=False)
class CarbonRecord(_Part):
    """Where a run's carbon intensity and PUE came from (docs/methodology.md). ``hourly`` (an
    intensity file's provenance and statistics) and ``embodied`` (its configuration and
    per-device rows) are kept as checked JSON objects."""

    region: str | None = None
    carbon_intensity_g_per_kwh: float | None = None
    kind: str | None = None
    name: str | None = None
    source: str | None = None
    source_url: str | None = None
    year: int | None = None
    basis: str | None = None
    gas: str | None = None
    grid_region: str | None = None
    pue: float | None = None
    pue_source: str | None = None
    it_energy_kwh: float | None = None
    facility_energy_kwh: float | None = None
    hourly: Mapping[str, Any] | None = None
    embodied: Mapping[str, Any] | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        **{
            k: _opt_text
            for k in (
                "region",
                "kind",
                "name",
                "source",
                "source_url",
                "basis",
                "gas",
                "grid_region",
                "pue_source",
            )
        },
        "carbon_intensity_g_per_kwh": c.optional(c.non_negative),
        "year": c.optional(c.whole),
        "pue": c.optional(c.positive),
        "it_energy_kwh": c.optional(c.non_negative),
        "facility_energy_kwh": c.optional(c.non_negative),
        "hourly": _hourly,
        "embodied": _embodied,
    }

    @property
    def embodied_devices(self) -> list[Mapping[str, Any]]:
        return list((self.embodied or {}).get("devices") or [])


@dataclass(frozen=True, repr=False)
class RunRecord(_Part):
    """One run, as saved in the store and read by everything downstream.

    Build one with :func:`footprint.record.new_record` (fills defaults, checks everything) or
    :meth:`from_dict` (a stored JSON record of any earlier schema version).
    """

    id: str
    started_at: str
    schema_version: int = 2
    name: str = "run"
    status: str = "completed"
    ended_at: str | None = None
    duration_s: float = 0.0
    energy_kwh: float = 0.0
    emissions_kg: float | None = None
    region: str | None = None
    carbon_intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    carbon: CarbonRecord | None = None
    embodied_emissions_kg: float | None = None
    devices: tuple[DeviceRecord, ...] = ()
    phases: tuple[PhaseRecord, ...] = ()
    counts: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    metric_directions: Mapping[str, bool] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    task: str | None = None
    model: str | None = None
    variant: str | None = None
    baseline: bool = False
    timeline: TimelineRecord = field(default_factory=TimelineRecord)
    host: HostRecord = field(default_factory=HostRecord)
    sources: tuple[SourceRecord, ...] = ()
    notes: tuple[str, ...] = ()
    energy_uncertain: bool = False
    error: str | None = None
    heartbeat_at: str | None = None
    checkpoint_interval_s: float | None = None
    pid: int | None = None
    pid_create_time: float | None = None
    imported_from: Mapping[str, Any] | None = None
    #: every device's whole-device energy summed (None: the same as ``energy_kwh``)
    machine_energy_kwh: float | None = None
    contention: ContentionRecord | None = None
    #: the record's place in a job of many processes (None: a run of one process)
    job: JobRecord | None = None
    #: forecasts of the whole run made while it ran (footprint/forecast.py)
    forecasts: tuple[ForecastRecord, ...] = ()

    CHECKS: ClassVar[dict[str, Check]] = {
        "id": c.run_id,
        "started_at": c.timestamp,
        "schema_version": c.whole,
        "name": c.text,
        "status": c.one_of(*STATUSES),
        "ended_at": c.optional(c.timestamp),
        "duration_s": c.non_negative,
        "energy_kwh": c.non_negative,
        "emissions_kg": c.optional(c.non_negative),
        "region": c.optional(c.text),
        "carbon_intensity_g_per_kwh": c.optional(c.non_negative),
        "pue": c.positive,
        "carbon": c.optional(CarbonRecord.check),
        "embodied_emissions_kg": c.optional(c.non_negative),
        "devices": c.items(DeviceRecord.check),
        "phases": c.items(PhaseRecord.check),
        "counts": c.mapping(c.non_negative),
        "metrics": c.mapping(c.number),
        "metric_directions": c.mapping(c.flag),
        "tags": c.mapping(c.text),
        "task": _opt_text,
        "model": _opt_text,
        "variant": _opt_text,
        "baseline": c.flag,
        "timeline": TimelineRecord.check,
        "host": HostRecord.check,
        "sources": c.items(SourceRecord.check),
        "notes": c.items(c.text),
        "energy_uncertain": c.flag,
        "error": _opt_text,
        "heartbeat_at": c.optional(c.timestamp),
        "checkpoint_interval_s": c.optional(c.positive),
        "pid": c.optional(c.whole),
        "pid_create_time": c.optional(c.non_negative),
        "imported_from": c.optional(c.json_object),
        "machine_energy_kwh": c.optional(c.non_negative),
        "contention": c.optional(ContentionRecord.check),
        "job": c.optional(JobRecord.check),
        "forecasts": c.items(ForecastRecord.check),
    }
    NESTED: ClassVar[dict[str, tuple[type[_Part], bool]]] = {
        "carbon": (CarbonRecord, False),
        "contention": (ContentionRecord, False),
        "job": (JobRecord, False),
        "forecasts": (ForecastRecord, True),
        "devices": (DeviceRecord, True),
        "phases": (PhaseRecord, True),
        "timeline": (TimelineRecord, False),
        "host": (HostRecord, False),
        "sources": (SourceRecord, True),
    }

    @classmethod
    def fill_defaults(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        phases = data.get("phases")
        if isinstance(phases, list):
            from footprint.record.versions import derive_phase_structure

            derived = derive_phase_structure(phases)
            if derived is not phases:
                data = {**data, "phases": derived}
        return super().fill_defaults(data)

    def __post_init__(self) -> None:
        for i, ph in enumerate(self.phases):
            if ph.parent is not None and ph.parent >= i:
                raise RecordError(
                    f"names phase {ph.parent} as its parent, which is not an earlier phase",
                    f"phases[{i}].parent",
                )

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """A stored record (any earlier schema version) as a checked RunRecord.

        Raises :class:`RecordError` naming the field that is missing, mistyped or out of range,
        or saying the record comes from a newer footprint.
        """
        from footprint.record.versions import upgrade

        return cls.check(upgrade(data), "")

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with ``changes`` (record field names, JSON or typed values), each checked."""
        typed = {}
        for key, value in changes.items():
            if key not in self.CHECKS:
                raise TypeError(f"RunRecord has no field {key!r}")
            value = _dump(value)
            if key == "phases" and isinstance(value, list):
                from footprint.record.versions import derive_phase_structure

                value = derive_phase_structure(value)
            typed[key] = self.CHECKS[key](value, key)
        return dataclasses.replace(self, **typed)

    def to_json(self) -> str:
        """The record as compact JSON text (what the store writes)."""
        import json

        source = self.__dict__.get("_json_source")
        data = source if source is not None else self.to_dict()
        return json.dumps(data, separators=(",", ":"), allow_nan=False)

    # -- derived figures -------------------------------------------------------------------

    @cached_property
    def started(self) -> datetime:
        """``started_at`` as an aware datetime."""
        return datetime.fromisoformat(self.started_at)

    @property
    def energy_j(self) -> float:
        return self.energy_kwh * J_PER_KWH

    def device_energy_j(self, kind: str | None = None) -> float:
        """Total energy of the devices (of one ``kind``), in joules."""
        return math.fsum(d.energy_j for d in self.devices if kind is None or d.kind == kind)

    @property
    def is_part(self) -> bool:
        """True for one process's part of a job (the store shows the job built from them)."""
        return self.job is not None and self.job.role == "part"

    @property
    def contended(self) -> bool:
        """True when other processes' use of the machine made this run's figures unreliable."""
        return self.contention is not None and self.contention.contended

    @property
    def measured(self) -> bool:
        """True when the run has devices and every one was measured (none estimated)."""
        return bool(self.devices) and all(d.measured for d in self.devices)

    @property
    def effective_pue(self) -> float:
        """The PUE its emissions used: the carbon provenance's, else the top-level ``pue``."""
        if self.carbon is not None and self.carbon.pue is not None:
            return float(self.carbon.pue)
        return float(self.pue)

    def __repr__(self) -> str:
        return f"<RunRecord {self.id[:8]} {self.name!r} {self.status}>"
