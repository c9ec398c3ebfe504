"""The run record: plain, versioned, JSON-serialisable data. Everything downstream reads records.

The schema grows by optional fields and a version bump. :func:`upgrade` loads every earlier version
into the current shape, so readers (store, leaderboard, report) only ever see the current one.
Fields are documented in docs/schema.md.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("running", "completed", "failed", "interrupted")

# Current-version defaults for every optional field: a record missing one (an older writer, an
# imported run) gets the default, never a KeyError downstream.
_DEFAULTS: dict[str, Any] = {
    "name": "run",
    "status": "completed",
    "duration_s": 0.0,
    "energy_kwh": 0.0,
    "emissions_kg": None,
    "region": None,
    "carbon_intensity_g_per_kwh": None,
    "pue": 1.0,
    "carbon": None,
    "embodied_emissions_kg": None,
    "devices": [],
    "phases": [],
    "counts": {},
    "metrics": {},
    "metric_directions": {},
    "tags": {},
    "task": None,
    "model": None,
    "variant": None,
    "baseline": False,
    "timeline": {"t_s": [], "power_w": {}},
    "host": {},
    "sources": [],
    "notes": [],
    "energy_uncertain": False,
    "error": None,
    "heartbeat_at": None,
    "checkpoint_interval_s": None,
    "pid": None,
    "pid_create_time": None,
    "imported_from": None,
}

REQUIRED = ("id", "started_at")


class RecordError(ValueError):
    """A record cannot be read (missing required fields, written by a newer footprint...)."""


def upgrade(data: dict) -> dict:
    """Return ``data`` in the current schema (a new dict; the input is not modified).

    Raises :class:`RecordError` for a record from a newer footprint or one missing its id or
    start time.
    """
    if not isinstance(data, dict):
        raise RecordError(f"a run record must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise RecordError(f"bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"record schema_version {version} is newer than this footprint understands "
            f"({SCHEMA_VERSION}): upgrade footprint (pip install -U footprint)"
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RecordError(f"record lacks required field(s) {', '.join(missing)}")
    out = copy.deepcopy(data)
    # Version 1 is the first; later versions add their migrations here, oldest first.
    for key, default in _DEFAULTS.items():
        if key not in out:
            out[key] = copy.deepcopy(default)
    out["schema_version"] = SCHEMA_VERSION
    _check_shape(out)
    return out


# Field -> the types a readable record may hold there (None allowed where the default is None).
_SHAPE: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "status": (str,),
    "started_at": (str,),
    "duration_s": (int, float),
    "energy_kwh": (int, float),
    "emissions_kg": (int, float, type(None)),
    "pue": (int, float),
    "devices": (list,),
    "phases": (list,),
    "counts": (dict,),
    "metrics": (dict,),
    "tags": (dict,),
    "timeline": (dict,),
    "host": (dict,),
    "notes": (list,),
    "heartbeat_at": (str, type(None)),
}


def _check_shape(record: dict) -> None:
    """Refuse a record whose core fields have the wrong type: readers must never crash on it."""
    for key, types in _SHAPE.items():
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RecordError(
                f"field {key!r} holds {value!r}, not {'/'.join(t.__name__ for t in types)}"
            )
    if record["status"] not in STATUSES:
        raise RecordError(f"status {record['status']!r} is not one of {', '.join(STATUSES)}")
    for d in record["devices"]:
        if (
            not isinstance(d, dict)
            or isinstance(d.get("energy_j"), bool)
            or not isinstance(d.get("energy_j"), (int, float))
            or not isinstance(d.get("kind"), str)
        ):
            raise RecordError(f"device entry {d!r} lacks a kind and a numeric energy_j")


def check_number(field: str, value: Any, *, allow_zero: bool = True) -> int | float:
    """A user-given count or metric as a plain int or float: finite and non-negative, else a
    ValueError naming the field. NumPy and other ``numbers.Real`` scalars are accepted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{field} must be a number, got {value!r} ({type(value).__name__})")
    try:
        plain = int(value) if isinstance(value, numbers.Integral) else float(value)
        finite = math.isfinite(plain)
    except OverflowError:
        finite = False
    if not finite:
        raise ValueError(f"{field} must be finite, got {value!r}")
    if plain < 0 or (not allow_zero and plain == 0):
        raise ValueError(f"{field} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return plain


def device_energy_j(record: dict, kind: str | None = None) -> float:
    """Total energy of a record's devices (optionally of one kind), in joules."""
    return sum(d["energy_j"] for d in record["devices"] if kind is None or d["kind"] == kind)
