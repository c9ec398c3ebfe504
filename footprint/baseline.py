"""Baseline files: a workload's repeats as a small, versioned JSON file to commit.

``footprint baseline export`` writes one; ``footprint check --baseline FILE`` and
:func:`footprint.compare` read it as a side of a comparison. Each repeat keeps its energy per
unit for the whole run's share and for every phase, its duration and power, its metrics and the
setup it was measured with (devices, methods, measured or estimated, scope), so a check against
it can refuse a different machine. Format: docs/ci.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from footprint.comparison import (
    CompareError,
    Repeat,
    Side,
    filter_text,
    matches,
    repeat_of,
    side_from_records,
)
from footprint.record import RunRecord, as_record

#: the key that marks a baseline file, and the version of its format
MARK = "footprint_baseline"
VERSION = 1


def export_baseline(
    records: Sequence[RunRecord | dict],
    *,
    per: str,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The baseline document of the completed runs among ``records`` matching the filters:
    one workload, one setup (else :class:`~footprint.comparison.CompareError`)."""
    from footprint import __version__

    filters = {"task": task, "model": model, "variant": variant, "tags": dict(tags or {})}
    side = side_from_records(records, "the store", per=per, filters=filters)
    by_id = {r.id: r for r in map(as_record, records)}
    repeats = []
    for rep in side.repeats:
        record = by_id[rep.run_id]
        phases: dict[str, Any] = {}
        for path in dict.fromkeys(p.path for p in record.phases):
            prep = repeat_of(record, per, path)
            if prep is not None:
                phases[path] = {
                    "energy_j_per_unit": prep.energy_j_per_unit,
                    "units": prep.units,
                    "duration_s": prep.duration_s,
                    "power_w": prep.power_w,
                }
        repeats.append({**rep.to_dict(), "phases": phases})
    return {
        MARK: VERSION,
        "footprint_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "per": per,
        "workload": side.workload,
        "filters": {k: v for k, v in filters.items() if v},
        "setup": dict(side.setup),
        "metric_directions": dict(side.directions),
        "repeats": repeats,
    }


def is_baseline_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` reads as a footprint baseline file (by its mark, whatever its version)."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return f'"{MARK}"' in head


def read_baseline(path: str | os.PathLike) -> dict[str, Any]:
    """The baseline document in ``path``; :class:`CompareError` naming what is wrong."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareError(f"cannot read the baseline file {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CompareError(
            f"the baseline file {str(path)!r} is not valid JSON ({exc}): export it again with "
            "footprint baseline export"
        ) from exc
    if not isinstance(doc, dict) or MARK not in doc:
        raise CompareError(f"{str(path)!r} is not a footprint baseline file (no {MARK!r} key)")
    if doc[MARK] != VERSION:
        raise CompareError(
            f"the baseline file {str(path)!r} has format version {doc[MARK]!r}; this footprint "
            f"reads version {VERSION}: export it again with this version"
        )
    if not isinstance(doc.get("repeats"), list) or not doc["repeats"]:
        raise CompareError(f"the baseline file {str(path)!r} holds no repeats")
    return doc


def load_baseline(
    path: str | os.PathLike,
    *,
    per: str,
    phase: str | None = None,
    filters: Mapping[str, Any] | None = None,
) -> Side:
    """The side a baseline file gives for ``per`` (and ``phase``)."""
    doc = read_baseline(path)
    label = f"baseline {Path(path).name}"
    if doc.get("per") != per:
        raise CompareError(
            f"{label} is per {doc.get('per')!r}, not per {per!r}: compare it --per "
            f"{doc.get('per')}, or export a baseline per {per}"
        )
    filters = dict(filters or {})
    repeats = []
    try:
        for item in doc["repeats"]:
            if not matches(item, None, filters):  # tags: applied at export
                continue
            figures = item
            if phase is not None:
                phases = item.get("phases") or {}
                key = phase if phase in phases else next(
                    (p for p in phases if p.rsplit("/", 1)[-1] == phase), None)  # fmt: skip
                if key is None:
                    continue
                figures = phases[key]
            setup = {**item["setup"], "phase": phase}
            repeats.append(
                Repeat(
                    run_id=str(item["run_id"]),
                    name=str(item.get("name", "")),
                    started_at=item.get("started_at"),
                    task=item.get("task"),
                    model=item.get("model"),
                    variant=item.get("variant"),
                    energy_j_per_unit=float(figures["energy_j_per_unit"]),
                    units=float(figures["units"]),
                    duration_s=float(figures["duration_s"]),
                    power_w=None if figures.get("power_w") is None else float(figures["power_w"]),
                    metrics={k: float(v) for k, v in (item.get("metrics") or {}).items()},
                    contended=bool(item.get("contended", False)),
                    setup=setup,
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise CompareError(
            f"{label} is damaged ({type(exc).__name__}: {exc}): export it again"
        ) from exc
    if not repeats:
        where = f" with phase {phase!r}" if phase else ""
        raise CompareError(f"{label}: no repeat matches {filter_text(filters)}{where}")
    directions = {str(k): bool(v) for k, v in (doc.get("metric_directions") or {}).items()}
    return Side(label, per, phase, tuple(repeats), (), directions)
