"""A job's record, built from the parts its processes saved (docs/distributed.md).

- **Devices**: each node's measurer's, once (ids prefixed ``<node>/`` when there are several
  nodes); a node with several measurer parts (a restart) keeps the latest and says so.
- **Counts** are summed over every part (each rank counts its own shard); **metrics** are global
  rank 0's, with other ranks' filling only names rank 0 did not log; tags likewise.
- **Phases** are global rank 0's (its parts in time order), with the other ranks' counts added
  to the same phase (same path, same occurrence). Each node's energy in a phase is its
  measurer's exact counter difference when the measurer opened that phase itself, else the
  integral of the measurer's power timeline over the phase's window.
- **Status**: running while any part runs; else failed if any part failed, interrupted if any
  was interrupted or a rank left no part; else completed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from footprint.record.model import RunRecord, TimelineRecord
from footprint.units import J_PER_KWH


def _end(r: RunRecord) -> datetime:
    return r.started + timedelta(seconds=r.duration_s)


def _rank_key(r: RunRecord) -> tuple[int, float]:
    assert r.job is not None
    rank = r.job.rank
    return (rank if rank is not None else math.inf, r.started.timestamp())  # type: ignore[return-value]


def assemble_job(parts: Sequence[RunRecord]) -> RunRecord:
    """The job record of ``parts`` (every one a part of the same job)."""
    from footprint.record.builder import new_record

    parts = sorted(parts, key=lambda r: r.started)
    first = parts[0]
    assert first.job is not None
    job_id = first.job.id
    t0 = min(r.started for r in parts)
    t1 = max(_end(r) for r in parts)
    members = [r for r in parts if not is_wrapper(r)]
    primary = min(members or parts, key=_rank_key)
    notes: list[str] = []

    # -- nodes and their measurers
    by_node: dict[str, list[RunRecord]] = {}
    for r in parts:
        assert r.job is not None
        by_node.setdefault(r.job.node or r.host.hostname or "?", []).append(r)
    multi = len(by_node) > 1
    measurers: dict[str, RunRecord] = {}
    for node, rs in by_node.items():
        ms = [r for r in rs if r.job is not None and r.job.measurer]
        if not ms:
            notes.append(f"node {node}: no part of its measurer: its devices are missing")
            continue
        chosen = max(ms, key=_end)
        if len(ms) > 1:
            notes.append(f"node {node}: {len(ms)} measurer parts (a restart?): the latest is used")
        measurers[node] = chosen

    def dev_id(node: str, d_id: str) -> str:
        return f"{node}/{d_id}" if multi else d_id

    devices: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    machine_kwh = 0.0
    any_machine = False
    emissions: float | None = None
    for node, rs in by_node.items():
        m = measurers.get(node)
        ranks = sorted({r.job.rank for r in rs if r.job is not None and r.job.rank is not None})
        row: dict[str, Any] = {
            "node": node,
            "status": _status(rs),
            "ranks": ranks,
            "hostname": (m or rs[0]).host.hostname,
        }
        if m is not None:
            kept = _used_devices(m, node, notes, _reported(rs))
            for d in kept:
                data = d.to_dict()
                data["id"] = dev_id(node, d.id)
                devices.append(data)
            row["devices"] = [dev_id(node, d.id) for d in kept]
            node_kwh = math.fsum(d.energy_j for d in kept) / J_PER_KWH
            row["energy_kwh"] = node_kwh
            row["measurer"] = m.id
            node_machine = math.fsum(
                d.machine_energy_j if d.machine_energy_j is not None else d.energy_j for d in kept
            )
            if m.machine_energy_kwh is not None:
                any_machine = True
                row["machine_energy_kwh"] = node_machine / J_PER_KWH
            machine_kwh += node_machine / J_PER_KWH
            node_e = _node_emissions(m, primary)
            if node_e is not None and m.energy_kwh > 0:
                node_e *= node_kwh / m.energy_kwh  # without the GPUs no rank used
            row["emissions_kg"] = node_e
            if node_e is not None:
                emissions = (emissions or 0.0) + node_e
            notes.extend(f"node {node}: {n}" for n in m.notes)
        node_rows.append(row)

    # -- ranks, the missing ones, status
    rank_rows = []
    for r in parts:
        assert r.job is not None
        rank_rows.append(
            {
                "run_id": r.id,
                "node": r.job.node or "?",
                "rank": r.job.rank,
                "local_rank": r.job.local_rank,
                "pid": r.pid,
                "status": r.status,
                "measurer": r.job.measurer,
                "error": r.error,
            }
        )
    world = max((r.job.world_size or 0 for r in parts if r.job is not None), default=0) or None
    seen = {r.job.rank for r in parts if r.job is not None and r.job.rank is not None}
    missing = [k for k in range(world)] if world and seen else []
    missing = [k for k in missing if k not in seen]
    status = _status(parts)
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        notes.append(
            f"rank(s) {shown} of {world} left no part: killed before saving, or their node's "
            "store was not gathered (`footprint merge` combines stores)"
        )
        if status == "completed":
            status = "interrupted"
    error = None
    for r in sorted(parts, key=_rank_key):
        if r.error:
            assert r.job is not None
            who = f"rank {r.job.rank}" if r.job.rank is not None else f"pid {r.pid}"
            error = f"{who}: {r.error}"
            break

    # -- counts, metrics, tags
    counts: dict[str, float] = {}
    for r in parts:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    directions: dict[str, bool] = {}
    for r in sorted(parts, key=lambda r: (r is not primary, _rank_key(r))):
        for k, v in r.metrics.items():
            metrics.setdefault(k, v)
        for k, t in r.tags.items():
            tags.setdefault(k, t)
        for k, b in r.metric_directions.items():
            directions.setdefault(k, b)

    phases = _phases(parts, primary, measurers, t0, dev_id, notes, by_node)
    energy_kwh = math.fsum(d["energy_j"] for d in devices) / J_PER_KWH
    named = primary if primary.name else first
    anchor = measurers.get(primary.job.node or "") if primary.job is not None else None
    anchor = anchor or next(iter(measurers.values()), None) or primary
    carbon = (
        anchor
        if anchor.carbon is not None and anchor.carbon_intensity_g_per_kwh is not None
        else primary
    ).carbon
    carbon_dict = carbon.to_dict() if carbon is not None else None
    if carbon_dict is not None:
        carbon_dict["it_energy_kwh"] = energy_kwh
        carbon_dict["facility_energy_kwh"] = energy_kwh * (carbon.pue or 1.0) if carbon else None
    contention = next((m.contention for m in measurers.values() if m.contended), None)
    contention = contention or anchor.contention
    fields: dict[str, Any] = {
        "id": job_id,
        "name": named.name,
        "status": status,
        "started_at": t0.isoformat(),
        "ended_at": t1.isoformat(),
        "duration_s": max(0.0, (t1 - t0).total_seconds()),
        "energy_kwh": energy_kwh,
        "emissions_kg": emissions,
        "region": (carbon.region if carbon else None) or primary.region,
        "carbon_intensity_g_per_kwh": carbon.carbon_intensity_g_per_kwh if carbon else None,
        "pue": carbon.pue if carbon and carbon.pue else primary.pue,
        "carbon": carbon_dict,
        "devices": devices,
        "phases": phases,
        "counts": counts,
        "metrics": metrics,
        "metric_directions": directions,
        "tags": tags,
        "task": primary.task,
        "model": primary.model,
        "variant": primary.variant,
        "baseline": primary.baseline,
        "timeline": _timeline(anchor, t0, dev_id, (anchor.job.node if anchor.job else None) or ""),
        "host": anchor.host.to_dict(),
        "sources": [s.to_dict() for s in anchor.sources],
        "notes": list(dict.fromkeys(notes)),
        "energy_uncertain": any(r.energy_uncertain for r in measurers.values()),
        "error": error,
        "checkpoint_interval_s": anchor.checkpoint_interval_s,
        "contention": contention.to_dict() if contention is not None else None,
        "job": {
            "id": job_id,
            "launcher": primary.job.launcher if primary.job else first.job.launcher,
            "role": "job",
            "key": (primary.job or first.job).key,
            "world_size": world,
            "nodes": node_rows,
            "ranks": rank_rows,
            "missing_ranks": missing,
            "parts": len(parts),
        },
    }
    if any_machine:
        fields["machine_energy_kwh"] = machine_kwh
    return new_record(**fields)


def _reported(parts: Sequence[RunRecord]) -> set[str] | None:
    """The GPUs (normalised UUIDs) the node's ranks said their torch used; None: none said."""
    from footprint.jobs.member import normal_uuid

    said = [p.job.gpus_used for p in parts if p.job is not None and p.job.gpus_used is not None]
    return {normal_uuid(u) for used in said for u in used} if said else None


def _used_devices(
    m: RunRecord, node: str, notes: list[str], reported: set[str] | None = None
) -> list[Any]:
    """The measurer's devices but the GPUs none of the node's ranks used. The ranks' own word
    (the GPUs their torch used) decides when they gave it; else, where NVML's process lists
    showed a process of the job on some GPU, a GPU that never showed one is dropped."""
    from footprint.jobs.member import normal_uuid

    gpus = [d for d in m.devices if d.kind == "gpu"]
    if reported:
        unused = [
            d.id
            for d in gpus
            if isinstance(d.details.get("uuid"), str)
            and normal_uuid(d.details["uuid"]) not in reported
        ]
        if unused:
            notes.append(
                f"node {node}: {', '.join(unused)} dropped: no rank of the node used them "
                "(the GPUs each rank's torch used), so their energy is not the job's"
            )
        return [d for d in m.devices if d.id not in unused]
    seen = [d.details.get("run_processes_seen") for d in gpus]
    if True not in seen:
        return list(m.devices)  # no process list (or none used a GPU): every GPU is kept
    unused = [d.id for d, s in zip(gpus, seen) if s is False]
    if unused:
        notes.append(
            f"node {node}: {', '.join(unused)} dropped: no process of the job used them "
            "(NVML's process lists), so their energy is not the job's"
        )
    return [d for d in m.devices if d.id not in unused]


def is_wrapper(r: RunRecord) -> bool:
    """True for the part a wrapping ``footprint run`` saved (it names itself as the wrapper)."""
    return r.job is not None and r.job.wrapper == r.id


def _status(parts: Iterable[RunRecord]) -> str:
    statuses = {r.status for r in parts}
    for s in ("running", "failed", "interrupted"):
        if s in statuses:
            return s
    return "completed"


def _node_emissions(m: RunRecord, primary: RunRecord) -> float | None:
    """The node's operational emissions: its measurer's own figure (its region, PUE, an hourly
    file), else its energy at the intensity and PUE of global rank 0's run."""
    if m.emissions_kg is not None:
        return m.emissions_kg
    if primary.carbon_intensity_g_per_kwh is None:
        return None
    return m.energy_kwh * primary.effective_pue * primary.carbon_intensity_g_per_kwh / 1000.0


def _occurrences(phases: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    out = []
    for ph in phases:
        n = seen.get(ph["path"], 0)
        seen[ph["path"]] = n + 1
        out.append((ph["path"], n))
    return out


def _sequence(parts: Sequence[RunRecord], t0: datetime) -> list[dict[str, Any]]:
    """The phases of one process's parts in time order, each with its window in seconds since
    the job's start and its parent's index in this list."""
    out: list[dict[str, Any]] = []
    for r in sorted(parts, key=lambda r: r.started):
        offset = (r.started - t0).total_seconds()
        base = len(out)
        for ph in r.phases:
            row = ph.to_dict()
            row["start_s"] = round(ph.start_s + offset, 6)
            row["end_s"] = round(max(ph.end_s + offset, row["start_s"]), 6)
            row["parent"] = None if ph.parent is None else ph.parent + base
            row["_part"] = r
            row["_local"] = (ph.start_s, ph.end_s)
            out.append(row)
    return out


def _phases(
    parts: Sequence[RunRecord],
    primary: RunRecord,
    measurers: Mapping[str, RunRecord],
    t0: datetime,
    dev_id: Any,
    notes: list[str],
    by_node_parts: Mapping[str, Sequence[RunRecord]],
) -> list[dict[str, Any]]:
    def rank_of(r: RunRecord) -> Any:
        assert r.job is not None
        return r.job.rank if r.job.rank is not None else ("pid", r.pid)

    groups: dict[Any, list[RunRecord]] = {}
    for r in parts:
        if r.phases or r is primary:
            groups.setdefault(rank_of(r), []).append(r)
    main_key = rank_of(primary)
    seq = _sequence(groups.get(main_key, [primary]), t0)
    index = {occ: i for i, occ in enumerate(_occurrences(seq))}
    for ph in seq:
        ph["counts"], ph["own_counts"] = dict(ph["counts"]), dict(ph["own_counts"])
        ph["energy_j"], ph["attributed_energy_j"] = {}, {}
    for key, rs in groups.items():
        if key == main_key:
            continue
        other = _sequence(rs, t0)
        for occ, ph in zip(_occurrences(other), other):
            i = index.get(occ)
            if i is None:
                continue
            for field in ("counts", "own_counts"):
                for k, v in ph[field].items():
                    seq[i][field][k] = seq[i][field].get(k, 0) + v
    timeline_nodes = []
    for node, m in measurers.items():
        own = _sequence([m], t0) if m.phases else []
        own_index = {occ: ph for occ, ph in zip(_occurrences(own), own)}
        used_timeline = False
        kept = {d.id for d in _used_devices(m, node, [], _reported(by_node_parts.get(node, [])))}
        for occ, ph in zip(_occurrences(seq), seq):
            exact = own_index.get(occ)
            if exact is not None:
                for d_id, e in exact["energy_j"].items():
                    if d_id in kept:
                        ph["energy_j"][dev_id(node, d_id)] = e
                for d_id, e in exact["attributed_energy_j"].items():
                    if d_id in kept:
                        ph["attributed_energy_j"][dev_id(node, d_id)] = e
                continue
            used_timeline = True
            offset = (m.started - t0).total_seconds()
            window = _window_j(m.timeline, ph["start_s"] - offset, ph["end_s"] - offset)
            for d_id, e in window.items():
                if d_id not in kept:
                    continue
                ph["energy_j"][dev_id(node, d_id)] = e
                ph["attributed_energy_j"][dev_id(node, d_id)] = e
        if used_timeline and seq:
            timeline_nodes.append(node)
    if timeline_nodes:
        notes.append(
            "phase energy of node(s) " + ", ".join(timeline_nodes) + " is the integral of the "
            "measurer's power timeline over each phase's window (the measurer did not open "
            "the phases itself): as fine as the timeline's buckets"
        )
    for ph in seq:
        ph.pop("_part", None)
        ph.pop("_local", None)
    return seq


def _window_j(timeline: TimelineRecord, a: float, b: float) -> dict[str, float]:
    """Each device's energy between ``a`` and ``b`` seconds (the timeline's own clock): exact
    over whole buckets, the bucket's mean power over part of one."""
    out: dict[str, float] = {}
    t = timeline.t_s
    for dev, powers in timeline.power_w.items():
        total = 0.0
        for i, p in enumerate(powers):
            lo, hi = max(a, t[i]), min(b, t[i + 1])
            if hi > lo:
                total += p * (hi - lo)
        out[dev] = total
    return out


def _timeline(m: RunRecord, t0: datetime, dev_id: Any, node: str) -> dict[str, Any]:
    """The anchor node's power timeline, moved to the job's clock."""
    offset = (m.started - t0).total_seconds()
    return {
        "t_s": [round(x + offset, 6) for x in m.timeline.t_s],
        "power_w": {dev_id(node, d): list(v) for d, v in m.timeline.power_w.items()},
    }
