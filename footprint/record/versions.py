"""Schema versions and the upgrade from every earlier one (the rule: docs/schema.md).

A change of shape bumps :data:`SCHEMA_VERSION` and adds a step to :data:`_STEPS` that turns a
record of the version before into the next; a new optional field only needs a default in the
typed model (:mod:`footprint.record.model`), which :func:`upgrade` fills in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from footprint.record.checks import RecordError

SCHEMA_VERSION = 2

REQUIRED = ("id", "started_at")

#: How a version-1 device's energy was attributed: the whole device, as footprint then did.
V1_ATTRIBUTION = "whole device (recorded before footprint attributed shares: schema 1)"


def _v1_to_v2(record: dict[str, Any]) -> None:
    """Schema 2 keeps each phase's parent, own counts and attributed energy (derived for a
    version-1 record when it is read: :func:`derive_phase_structure`), and each device's run
    share beside its whole-device energy: version 1 charged the whole device."""
    for device in record.get("devices") or []:
        if isinstance(device, dict):
            device.setdefault("attribution", V1_ATTRIBUTION)


def derive_phase_structure(phases: list[Any]) -> list[Any]:
    """Phase dicts given what a record written without them implies (version 1, or a writer
    that gives inclusive counts only): the parent is the innermost earlier phase whose path and
    window contain the phase's; own counts are the counts minus the direct sub-phases' (a count
    was added to every open phase); the attributed energy is the window's (no phase known to
    run concurrently). Phases that have the fields keep them; the input is not modified."""
    if not all(isinstance(p, dict) for p in phases):
        return phases
    if all("parent" in p and "own_counts" in p and "attributed_energy_j" in p for p in phases):
        return phases
    out = [dict(p) for p in phases]
    for i, ph in enumerate(out):
        if "parent" not in ph:
            ph["parent"] = _implied_parent(out, i)
        if "attributed_energy_j" not in ph and isinstance(ph.get("energy_j"), dict):
            ph["attributed_energy_j"] = dict(ph["energy_j"])
    for i, ph in enumerate(out):
        counts = ph.get("counts")
        if "own_counts" in ph or not isinstance(counts, dict):
            continue
        own = dict(counts)
        for child in out:
            if child.get("parent") == i and isinstance(child.get("counts"), dict):
                for key, value in child["counts"].items():
                    if _is_number(own.get(key)) and _is_number(value):
                        own[key] -= value
        ph["own_counts"] = {k: v for k, v in own.items() if not _is_number(v) or v > 0}
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _implied_parent(phases: list[dict[str, Any]], i: int) -> int | None:
    ph = phases[i]
    path, start, end = ph.get("path"), ph.get("start_s"), ph.get("end_s")
    if not isinstance(path, str) or "/" not in path:
        return None
    want = path.rsplit("/", 1)[0]
    for j in range(i - 1, -1, -1):
        q = phases[j]
        try:
            if q.get("path") == want and q["start_s"] <= start and end <= q["end_s"]:
                return j
        except (KeyError, TypeError):
            continue
    return None


#: version N -> the step that turns a version-N record into version N + 1 (in place).
_STEPS: dict[int, Callable[[dict[str, Any]], None]] = {1: _v1_to_v2}


def upgrade(data: Any) -> dict[str, Any]:
    """``data`` in the current schema, with every optional field's default filled in: a new
    dict (the input is not modified; unchanged values are shared with it). Types are not checked
    here: :meth:`RunRecord.from_dict` does that on the result.

    Raises :class:`RecordError` for a record from a newer footprint, or one missing its id or
    start time.
    """
    from footprint.record.model import RunRecord

    if not isinstance(data, dict):
        raise RecordError(f"a run record must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"field 'schema_version' holds {version!r}, expected a whole number")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"record schema_version {version} is newer than this footprint understands "
            f"({SCHEMA_VERSION}): upgrade footprint (pip install -U footprint)",
            "schema_version",
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RecordError(f"record lacks required field(s) {', '.join(missing)}", missing[0])
    out = data
    if version < SCHEMA_VERSION:  # steps edit in place: on a copy (loading a current record, the
        out = copy.deepcopy(data)  # common case, copies only the dicts it fills in)
        while version < SCHEMA_VERSION:
            _STEPS[version](out)
            version += 1
    out = RunRecord.fill_defaults(out)
    out["schema_version"] = SCHEMA_VERSION
    return out
