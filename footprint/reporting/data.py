"""The report's data: plain dicts built from run records, before any rendering.

Everything here reads records only (never hardware) and returns JSON-like data with raw SI
numbers; templates format them. Tested directly (tests/test_report_data.py).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from footprint.errors import FootprintError, RunNotFoundError
from footprint.formatting import measured_label
from footprint.record import CarbonRecord, HostRecord, RecordError, RunRecord
from footprint.units import J_PER_WH

#: Regions every what-if chart shows (plus the run's own): low- and high-carbon grids people know.
WHATIF_REGIONS = (
    "NO",
    "SE",
    "FR",
    "CA-QC",
    "BR",
    "US-CA",
    "GB",
    "US-VA",
    "US",
    "DE",
    "JP",
    "CN",
    "PL",
    "IN",
)

DEFAULT_OUT = Path("reports") / "footprint-report.html"


class ReportError(FootprintError, ValueError):
    """A report cannot be made from these arguments; the message says what to change."""


class ReportExistsError(ReportError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


# -- which runs -----------------------------------------------------------------------------------


def load_records(
    runs: Sequence[str | RunRecord | dict] | None = None, store: str | os.PathLike | None = None
) -> list[RunRecord]:
    """The records a report is about, in the order given (all runs of the store: newest first).

    ``runs``: None for every run of ``store``, or a list of run ids / unique id prefixes (looked
    up in ``store``) and/or records (typed, or dicts in any schema version). Raises
    :class:`RunNotFoundError` for an unknown or ambiguous id and for an empty store,
    :class:`ReportError` for an empty list or a bad item.
    """
    from footprint.store import Store

    st = Store(store)
    if runs is None:
        records = st.records()
        if not records:
            subs = st.sub_stores()
            if subs:
                names = ", ".join(p.name for p in subs[:5]) + (", ..." if len(subs) > 5 else "")
                raise RunNotFoundError(
                    f"no runs in store {str(st.path)!r}, but {len(subs)} run store"
                    f"{'s' if len(subs) != 1 else ''} inside it ({names}): report one with "
                    f"--store {subs[-1]} (store=)"
                )
            raise RunNotFoundError(
                f"no runs in store {str(st.path)!r} to report on: track a run first "
                "(footprint.track or `footprint run`), or point store= / --store (or "
                "$FOOTPRINT_DIR) at the directory holding your runs"
            )
        return records
    if isinstance(runs, (str, dict, RunRecord)) or not isinstance(runs, Iterable):
        raise ReportError(
            f"runs must be a list of run ids and/or record dicts (or None for the whole store), "
            f"got {type(runs).__name__}: wrap a single run as runs=[...]"
        )
    out: list[RunRecord] = []
    seen: set[str] = set()
    for item in runs:
        if isinstance(item, RunRecord):
            record = item
        elif isinstance(item, dict):
            try:
                record = RunRecord.from_dict(item)
            except RecordError as exc:
                raise ReportError(f"runs contains a record that cannot be read: {exc}") from exc
        elif isinstance(item, str):
            record = st.get(item)
        else:
            raise ReportError(
                f"runs items must be run ids (str) or record dicts, got {type(item).__name__}: "
                f"{item!r}"
            )
        if record.id not in seen:  # the same run named twice is shown once
            seen.add(record.id)
            out.append(record)
    if not out:
        raise ReportError(
            "runs is an empty list: give run ids, or runs=None for every run in the store"
        )
    return out


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe form of a user string (``"BERT base/int8"`` -> ``"bert-base-int8"``)."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return s[:limit].strip("-") or "run"


def default_out(records: Sequence[RunRecord]) -> Path:
    """``reports/<name>-<id8>.html`` for one run, ``reports/footprint-report.html`` for several."""
    if len(records) == 1:
        r = records[0]
        return Path("reports") / f"{slug(r.name)}-{r.id[:8]}.html"
    return DEFAULT_OUT


# -- one run --------------------------------------------------------------------------------------


def _phase_rows(record: RunRecord) -> list[dict]:
    """Phases by path, in order of first start: occurrences, time and energy summed."""
    rows: dict[str, dict] = {}
    for p in record.phases:
        row = rows.get(p.path)
        if row is None:
            row = rows[p.path] = {
                "path": p.path,
                "name": p.name,
                "depth": p.path.count("/"),
                "occurrences": 0,
                "duration_s": 0.0,
                "energy_j": 0.0,
                "energy_j_by_device": {},
                "counts": {},
                "start_s": p.start_s,
            }
        row["occurrences"] += 1
        row["duration_s"] += p.duration_s
        for dev, e in p.attributed_energy_j.items():  # concurrent phases divided: never > run
            row["energy_j"] += e
            row["energy_j_by_device"][dev] = row["energy_j_by_device"].get(dev, 0.0) + e
        for unit, n in p.counts.items():
            row["counts"][unit] = row["counts"].get(unit, 0) + n
    return list(rows.values())


def _max_power_w(record: RunRecord) -> dict[str, float]:
    """Each device's stated maximum power (W), where its record gives one (an estimate's
    ``max_power_w``: its model's power at full load)."""
    out = {}
    for d in record.devices:
        value = d.details.get("max_power_w")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            out[d.id] = float(value)
    return out


def capped_timeline(record: RunRecord) -> tuple[dict, list[str]]:
    """The run's timeline as plain data, each device's bucket powers capped at its stated
    maximum, and the devices that needed it. A bucket can read above the maximum although the
    device never drew it: an estimate's CPU time arrives in scheduler ticks, and time that
    lagged into the next bucket is counted there. The energy totals are not touched."""
    timeline = record.timeline.to_dict()
    limits = _max_power_w(record)
    capped = []
    for dev, powers in (timeline.get("power_w") or {}).items():
        limit = limits.get(dev)
        if limit is not None and powers and max(powers) > limit:
            timeline["power_w"][dev] = [min(p, limit) for p in powers]
            capped.append(dev)
    return timeline, capped


def _timeline_stats(timeline: dict) -> dict[str, dict]:
    """Per device: the peak of the timeline's bucket powers (W), if any."""
    out = {}
    for dev, powers in (timeline.get("power_w") or {}).items():
        if not powers:
            continue
        out[dev] = {"peak_power_w": max(powers), "points": len(powers)}
    return out


def _per_unit(record: RunRecord) -> list[dict]:
    """Energy per counted unit, by the leaderboard's rule (the phases where it was counted)."""
    from footprint.attribution import run_share

    rows = []
    for unit in sorted(record.counts):
        share = run_share(record, unit)
        if share is None:
            continue
        rows.append(
            {
                "unit": unit,
                "count": share.units,
                "energy_j": share.energy_j,
                "energy_j_per_unit": share.energy_j / share.units,
                "energy_wh_per_1k": share.energy_j / share.units * 1000 / J_PER_WH,
                "emissions_g_per_1k": (
                    None if share.emissions_kg is None else share.emissions_kg / share.units * 1e6
                ),
                "whole_run": share.whole_run,
            }
        )
    return rows


def _whatif(record: RunRecord, regions: Sequence[str]) -> list[dict]:
    from footprint.carbon import whatif

    own = record.carbon.region if record.carbon else None
    wanted = list(regions) + ([own] if own and own not in regions else [])
    try:
        rows = whatif(record, wanted)
    except FootprintError:
        # an own region that is not in the tables (a user intensity): compare the others
        rows = whatif(record, list(regions))
    if record.carbon_intensity_g_per_kwh is not None and not any(r["this_run"] for r in rows):
        # the run used its own figure (user value, hourly file): show it as it was applied
        carbon = record.carbon or CarbonRecord()
        rows.append(
            {
                "region": record.region or "this run",
                "name": "this run" + (f" ({carbon.kind})" if carbon.kind else ""),
                "kind": carbon.kind,
                "g_per_kwh": record.carbon_intensity_g_per_kwh,
                "emissions_kg": record.emissions_kg,
                "source": carbon.source,
                "year": carbon.year,
                "basis": carbon.basis,
                "gas": carbon.gas,
                "this_run": True,
            }
        )
        rows = [r for r in rows if r["emissions_kg"] is not None]
        rows.sort(key=lambda r: (r["emissions_kg"], str(r["region"])))
    return rows


_HOST_FIELDS = (
    ("hostname", "Host"),
    ("cpu_model", "CPU"),
    ("cpu_count_logical", "Logical CPUs"),
    ("memory_total_bytes", "Memory"),
    ("os", "OS"),
    ("os_release", "Kernel / release"),
    ("machine", "Architecture"),
    ("python_version", "Python"),
    ("torch_version", "PyTorch"),
    ("footprint_version", "footprint"),
    ("is_vm", "Virtual machine"),
    ("is_container", "Container"),
)


def _host_rows(host: HostRecord) -> list[dict]:
    rows = []
    for key, label in _HOST_FIELDS:
        value = getattr(host, key)
        if value is None or value == "":
            continue
        if key == "memory_total_bytes" and isinstance(value, (int, float)):
            value = f"{value / 1024**3:.0f} GiB"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append({"label": label, "value": str(value)})
    for i, gpu in enumerate(host.gpus):
        extra = ", ".join(
            f"{label} {value}"
            for value, label in ((gpu.driver_version, "driver"), (gpu.uuid, "UUID"))
            if value is not None
        )
        rows.append(
            {"label": f"GPU {i}", "value": str(gpu.name) + (f" ({extra})" if extra else "")}
        )
    return rows


def _carbon_view(r: RunRecord) -> dict:
    """The run's carbon figures with their provenance."""
    carbon = r.carbon or CarbonRecord()
    facility = carbon.facility_energy_kwh
    return {
        "region": r.region,
        "name": carbon.name,
        "kind": carbon.kind,
        "carbon_intensity_g_per_kwh": r.carbon_intensity_g_per_kwh,
        "source": carbon.source,
        "source_url": carbon.source_url,
        "year": carbon.year,
        "basis": carbon.basis,
        "gas": carbon.gas,
        "grid_region": carbon.grid_region,
        "hourly": carbon.hourly,
        "pue": r.pue,
        "pue_source": carbon.pue_source,
        "facility_energy_kwh": facility if facility is not None else r.energy_kwh * r.pue,
        "embodied_emissions_kg": r.embodied_emissions_kg,
        "embodied_devices": carbon.embodied_devices,
    }


def run_view(record: RunRecord, *, whatif_regions: Sequence[str] = WHATIF_REGIONS) -> dict:
    """Everything a run page shows, as plain data (energies in J/kWh, powers in W, times in s).

    Keys: the record's identity fields; ``energy_j``/``energy_kwh``, ``emissions_kg``,
    ``duration_s``, ``mean_power_w``; ``per_unit`` (energy per counted unit, by the leaderboard's
    phase rule); ``devices`` (with ``share`` of the device total, ``mean_power_w``,
    ``peak_power_w``); ``measured_j``/``estimated_j``; ``phases`` (summed by path);
    ``carbon`` (provenance); ``whatif`` (rows of :func:`footprint.carbon.whatif`, sorted);
    ``equivalents``; ``host`` (label/value rows).
    """
    from footprint.carbon import equivalents

    r = record
    energy_j = r.energy_j
    duration_s = r.duration_s
    device_total_j = r.device_energy_j()
    timeline, capped = capped_timeline(r)
    stats = _timeline_stats(timeline)
    devices = _device_rows(r)
    for d, raw in zip(devices, r.devices):
        d["mean_power_w"] = d["energy_j"] / duration_s if duration_s > 0 else None
        d["peak_power_w"] = stats.get(d["id"], {}).get("peak_power_w")
        d["details"] = dict(raw.details)
    measured_j = math.fsum(d["energy_j"] for d in devices if d["measured"])
    carbon = _carbon_view(r)
    try:
        whatif_rows = _whatif(r, whatif_regions)
    except FootprintError:
        whatif_rows = []
    return {
        **_identity(r),
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "tags": dict(r.tags),
        "metrics": dict(r.metrics),
        "counts": dict(r.counts),
        "error": r.error,
        "notes": list(r.notes),
        "energy_uncertain": r.energy_uncertain,
        "imported_from": r.imported_from,
        "energy_j": energy_j,
        "energy_kwh": r.energy_kwh,
        "emissions_kg": r.emissions_kg,
        "duration_s": duration_s,
        "mean_power_w": energy_j / duration_s if duration_s > 0 else None,
        "per_unit": _per_unit(r),
        "devices": devices,
        "device_total_j": device_total_j,
        "measured_j": measured_j,
        "estimated_j": device_total_j - measured_j,
        "phases": _phase_rows(r),
        "carbon": carbon,
        "whatif": whatif_rows,
        "equivalents": equivalents(r.emissions_kg, carbon["facility_energy_kwh"]),
        "host": _host_rows(r.host),
        "sources": [src.to_dict() for src in r.sources],
        "timeline": timeline,
        "power_capped": capped,
        "job": _job_view(r),
    }


def _job_view(r: RunRecord) -> dict | None:
    """A job of many processes: its launcher, nodes (energy, devices, ranks, status) and the
    processes that took part; None for a run of one process."""
    job = r.job
    if job is None:
        return None
    return {
        "id": job.id,
        "role": job.role,
        "launcher": job.launcher,
        "world_size": job.world_size,
        "rank": job.rank,
        "node": job.node,
        "measurer": job.measurer,
        "missing_ranks": list(job.missing_ranks),
        "nodes": [
            {
                "node": n.node,
                "status": n.status,
                "energy_kwh": n.energy_kwh,
                "machine_energy_kwh": n.machine_energy_kwh,
                "emissions_kg": n.emissions_kg,
                "devices": list(n.devices),
                "ranks": list(n.ranks),
                "share": n.energy_kwh / r.energy_kwh if r.energy_kwh > 0 else None,
            }
            for n in job.nodes
        ],
        "ranks": [x.to_dict() for x in job.ranks],
    }


def _identity(r: RunRecord) -> dict:
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "task": r.task,
        "model": r.model,
        "variant": r.variant,
        "baseline": r.baseline,
    }


def _device_rows(r: RunRecord) -> list[dict]:
    """One row per device: what it is, how it was known, its energy and share of the run."""
    total_j = r.device_energy_j()
    return [
        {
            "id": d.id,
            "kind": d.kind,
            "name": d.name,
            "method": d.method,
            "measured": d.measured,
            "energy_j": d.energy_j,
            "share": d.energy_j / total_j if total_j > 0 else None,
            "uncertain": d.uncertain,
            "error": d.error,
        }
        for d in r.devices
    ]


def run_summary(r: RunRecord) -> dict:
    """What a store page's collapsed section shows of one run: :func:`run_view` without the
    timeline, what-if, equivalents, host and sources (no charts: a store page must stay fast at
    1,000 runs). Same keys and units as :func:`run_view` for what it has."""
    energy_j = r.energy_j
    phases = _phase_rows(r)
    for ph in phases:
        del ph["energy_j_by_device"], ph["start_s"]
    return {
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_s": r.duration_s,
        "energy_j": energy_j,
        "emissions_kg": r.emissions_kg,
        "mean_power_w": energy_j / r.duration_s if r.duration_s > 0 else None,
        "devices": _device_rows(r),
        "phases": phases,
        "metrics": dict(r.metrics),
        "counts": dict(r.counts),
        "per_unit": _per_unit(r),
        "tags": dict(r.tags),
        "carbon": _carbon_view(r),
        "notes": list(r.notes),
        "error": r.error,
        "energy_uncertain": r.energy_uncertain,
        "imported_from": r.imported_from,
    }


def short_ids(ids: Sequence[str], length: int = 8) -> dict[str, str]:
    """Each id's first ``length`` characters, more where two ids share them: unique on a page,
    for the anchors ``#run-<id8>`` (a run's section) and ``#row-<id8>`` (its row in the table)."""
    ids = list(dict.fromkeys(ids))
    n = length
    while len({i[:n] for i in ids}) < len(ids) and any(len(i) > n for i in ids):
        n += 4
    return {i: i[:n] for i in ids}


# -- several runs ---------------------------------------------------------------------------------


def _known_direction(metric: str, records: Iterable[RunRecord]) -> bool:
    from footprint.ranking import default_higher_is_better

    if any(metric in r.metric_directions for r in records):
        return True
    return default_higher_is_better(metric) is not None


def infer_board_args(
    records: Sequence[RunRecord], quality: str | None = None, per: str | None = None
) -> tuple[str | None, str | None, str]:
    """Pick the leaderboard's ``quality`` and ``per`` when not given, and say how.

    ``per``: the unit counted by the most runs (ties: alphabetical). ``quality``: among the
    metrics logged by runs that counted ``per``, those whose direction is known (given to
    ``track(higher_is_better=...)`` or conventional by name, e.g. accuracy, loss), the one logged
    by the most of those runs (ties: alphabetical). Returns ``(quality, per, explanation)``;
    quality or per is None when nothing fits (the explanation says what to pass).
    """
    explain = []
    if per is None:
        units = Counter(u for r in records for u in r.counts)
        if not units:
            return quality, None, "no run counted a unit of work (run.count(queries=n))"
        per = sorted(units.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        explain.append(f"per {per!r}: the unit counted by the most runs ({units[per]})")
    counted = [r for r in records if r.counts.get(per)]
    if not counted:
        seen = sorted({u for r in records for u in r.counts})
        return (
            quality,
            None,
            (f"no run counted {per!r} (units counted: {', '.join(seen) or 'none'})"),
        )
    if quality is None:
        metrics = Counter(m for r in counted for m in r.metrics)
        usable = {m: n for m, n in metrics.items() if _known_direction(m, counted)}
        if not usable:
            why = (
                "their metrics have no known direction: "
                + ", ".join(sorted(metrics))
                + " (pass quality= and higher_is_better via track)"
                if metrics
                else "they logged no metric (run.log(accuracy=...))"
            )
            return None, per, f"no quality metric for runs counting {per!r}: {why}"
        quality = sorted(usable.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        explain.append(
            f"quality {quality!r}: the metric with a known direction logged by the most of "
            f"those runs ({usable[quality]})"
        )
    return quality, per, "; ".join(explain)


def _row_key(r: RunRecord) -> tuple:
    return (r.task, r.model if r.model is not None else r.name, r.variant)


def _board_view(b: Any, records: Sequence[RunRecord]) -> dict[str, Any]:
    """A leaderboard as the page shows it: each row labelled and linked to its runs."""
    runs_by_row: dict[tuple, list[str]] = {}
    for r in records:
        runs_by_row.setdefault(_row_key(r), []).append(r.id)
    rows = []
    for row in b.rows:
        row = dict(row)
        variant = row["variant"]
        row["label"] = row["model"] + ("" if variant is None else f"/{variant}")
        row["run_ids"] = runs_by_row.get((row["task"], row["model"], row["variant"]), [])
        rows.append(row)
    return {
        "quality": b.quality,
        "per": b.per,
        "higher_is_better": b.higher_is_better,
        "rows": rows,
        "notes": list(b.notes),
        "stars": b.stars,
        "how": "",
        "inferred": False,
        "tasks": list(dict.fromkeys(row["task"] for row in rows)),
    }


def store_view(
    records: Sequence[RunRecord],
    *,
    quality: str | None = None,
    per: str | None = None,
    task: str | None = None,
    run_pages: dict[str, str] | None = None,
    stars: str = "relative",
    also_per: Sequence[str] = (),
    costs: Sequence[dict] | None = None,
) -> dict:
    """Everything a comparison / store page shows, as plain data.

    ``task`` keeps one task's runs (an unknown task is a :class:`ReportError` listing the tasks).
    The leaderboard uses ``quality`` and ``per`` when given (errors from the leaderboard then
    propagate: the user asked for it), else :func:`infer_board_args` (then a board that cannot
    be built is a note on the page, with the reason). ``run_pages`` maps run ids to relative
    links of their own pages. Keys: ``runs`` (table rows, each with its ``key`` for in-page
    anchors, see :func:`short_ids`, and the ``summary`` of :func:`run_summary`), ``totals``,
    ``board`` (None or the rows, notes, how quality/per were chosen, and ``run_ids`` /
    ``run_keys`` linking rows to runs), ``board_missing`` (why there is no board), ``boards``
    (one more board per unit of ``also_per``, same quality: errors propagate, they were asked
    for), ``costs`` (the rows given, see :func:`footprint.reporting.report`). ``stars``: see
    :func:`footprint.ranking.build`."""
    from footprint.ranking import LeaderboardError, build

    records = list(records)
    if task is not None:
        kept = [r for r in records if r.task == task]
        if not kept:
            tasks = sorted({str(r.task) for r in records if r.task is not None})
            raise ReportError(
                f"no run has task {task!r}"
                + (f"; tasks: {', '.join(tasks)}" if tasks else "; no run has a task")
                + "; drop --task / task= or give runs track(task=...)"
            )
        records = kept
    # Asked for (quality or per given): a board that cannot be built is an error. Inferred: a note.
    asked = quality is not None or per is not None
    q, p, how = infer_board_args(records, quality, per)
    if asked and (q is None or p is None):
        raise ReportError(f"cannot build the leaderboard asked for: {how}")
    board: dict[str, Any] | None = None
    missing = None
    if also_per and q is None:
        raise ReportError(f"also_per / --also-per needs a quality to rank by: {how}")
    if q is not None and p is not None:
        try:
            board = _board_view(build(records, quality=q, per=p, task=task, stars=stars), records)
        except LeaderboardError as exc:
            if asked or also_per:
                raise
            missing = f"no leaderboard: {exc}"
        else:
            board["how"] = how
            board["inferred"] = quality is None or per is None
    else:
        missing = f"no leaderboard: {how}"
    boards = []
    for unit in also_per:
        extra = _board_view(build(records, quality=q or "", per=unit, task=task, stars=stars),
                            records)  # fmt: skip
        boards.append(extra)

    per_unit = board["per"] if board else p
    quality_name = board["quality"] if board else q
    key = short_ids([r.id for r in records])
    for b in [board, *boards] if board else boards:
        for row in b["rows"]:
            row["run_keys"] = [key[i] for i in row["run_ids"]]
    runs = []
    from footprint.attribution import run_share

    for r in records:
        share = run_share(r, per_unit) if per_unit else None
        runs.append(
            {
                **_identity(r),
                "started_at": r.started_at,
                "duration_s": r.duration_s,
                "energy_kwh": r.energy_kwh,
                "emissions_kg": r.emissions_kg,
                "region": r.region,
                "how": measured_label(r.devices),
                "quality": r.metrics.get(quality_name) if quality_name else None,
                "energy_wh_per_1k": (
                    None if share is None else share.energy_j / share.units * 1000 / J_PER_WH
                ),
                "href": (run_pages or {}).get(r.id),
                "key": key[r.id],
                "error": r.error,
                "summary": run_summary(r),
            }
        )
    emitted = [r.emissions_kg for r in records if r.emissions_kg is not None]
    by_kind: dict[str, float] = {}
    for r in records:
        for d in r.devices:
            by_kind[d.kind] = by_kind.get(d.kind, 0.0) + d.energy_j
    device_j = math.fsum(by_kind.values())
    measured_j = math.fsum(d.energy_j for r in records for d in r.devices if d.measured)
    times = sorted(r.started for r in records)
    from datetime import datetime, timedelta

    ends = [
        datetime.fromisoformat(r.ended_at)
        if r.ended_at
        else r.started + timedelta(seconds=r.duration_s)
        for r in records
    ]
    estimated_kinds = sorted({d.kind for r in records for d in r.devices if not d.measured})
    return {
        "task": task,
        "runs": runs,
        "totals": {
            "runs": len(records),
            "energy_kwh": math.fsum(r.energy_kwh for r in records),
            "emissions_kg": math.fsum(emitted) if emitted else None,
            "runs_without_emissions": len(records) - len(emitted),
            "duration_s": math.fsum(r.duration_s for r in records),
            "statuses": dict(Counter(r.status for r in records)),
            "energy_j_by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
            "measured_share": measured_j / device_j if device_j > 0 else None,
            "first_started_at": times[0].isoformat() if times else None,
            "last_started_at": times[-1].isoformat() if times else None,
            # the page's time range ends when the last run ended, not when it started
            "last_ended_at": max(ends).isoformat() if ends else None,
            "estimated_kinds": estimated_kinds,
            "tasks": sorted({str(r.task) for r in records if r.task is not None}),
            "regions": sorted({str(r.region) for r in records if r.region is not None}),
        },
        "board": board,
        "board_missing": missing,
        "boards": boards,
        "costs": [dict(row) for row in costs or []],
        "quality": quality_name,
        "per": per_unit,
    }
