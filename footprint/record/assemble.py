"""Record assembly: a live run's readings turned into a :class:`RunRecord`.

The run hands over plain facts (its sensors, two snapshots, its phases, counts and notes); this
module differences the counters, builds the device and phase entries, adds the carbon fields and
makes the record through :func:`footprint.record.new_record`, like every other record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from footprint.units import J_PER_KWH

if TYPE_CHECKING:
    from footprint.carbon.model import CarbonSetup
    from footprint.options import RunConfig
    from footprint.record.model import RunRecord
    from footprint.sampler import Snapshot, Timeline
    from footprint.sensors.accounting import Share
    from footprint.sensors.base import Sensor, SourceStatus


@dataclass(frozen=True)
class PhaseSpan:
    """One phase occurrence as the run knows it: its path and boundary snapshots, counts, its
    attributed energy per device (``attributed_j``, in sensor order) and its parent's index."""

    name: str
    path: str
    start: Snapshot
    end: Snapshot | None
    counts: Mapping[str, float]
    own_counts: Mapping[str, float] | None = None
    attributed_j: Sequence[float] | None = None
    parent: int | None = None


def energies(a: Snapshot, b: Snapshot) -> list[float]:
    """Each device's energy between two snapshots (counters never run backwards)."""
    return [max(0.0, y - x) for x, y in zip(a.energy_j, b.energy_j)]


def assemble(
    *,
    run_id: str,
    name: str,
    status: str,
    config: RunConfig,
    carbon: CarbonSetup,
    wall_start: float,
    start: Snapshot,
    now: Snapshot,
    sensors: Sequence[Sensor],
    failures: Mapping[str, str],
    faults: Mapping[str, tuple[str, int]] | None = None,
    phases: Sequence[PhaseSpan],
    timeline: Timeline,
    sources: Sequence[SourceStatus],
    counts: Mapping[str, float],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    notes: Sequence[str],
    error: str | None,
    pid_create_time: float | None,
    heartbeat: bool = False,
    shares: Sequence[Share | None] | None = None,
    contention: Mapping[str, Any] | None = None,
    job: Mapping[str, Any] | None = None,
) -> RunRecord:
    """The record of a run at snapshot ``now`` (a checkpoint with ``heartbeat``, else final)."""
    from footprint import carbon as carbon_model
    from footprint.host import host_facts
    from footprint.record.builder import new_record

    ids = [s.device.id for s in sensors]
    device_j = energies(start, now)
    machine_j = [max(0.0, y - x) for x, y in zip(start.machine_j, now.machine_j)] or device_j
    shared = list(shares or [None] * len(sensors))
    devices = []
    for i, (s, e, u0, u1) in enumerate(
        zip(sensors, device_j, start.uncertain_intervals, now.uncertain_intervals)
    ):
        d: dict[str, Any] = s.device.to_dict()
        d["energy_j"] = e
        d["uncertain"] = u1 > u0
        share = shared[i] if i < len(shared) else None
        d["attribution"] = share.method if share is not None else s.attribution
        if share is not None:
            d["machine_energy_j"] = machine_j[i]
            seen = getattr(share, "mine_seen", None)
            if seen is not None:
                d["details"] = {**d.get("details", {}), "run_processes_seen": seen}
        if s.device.id in failures:
            d["error"] = failures[s.device.id]
        elif faults and s.device.id in faults:
            shown, n = faults[s.device.id]
            d["error"] = f"{n} bad reading(s), first {shown}: the last good value was held"
        devices.append(d)
    phase_rows = []
    for ph in phases:
        end = ph.end or now
        window = dict(zip(ids, energies(ph.start, end)))
        phase_rows.append(
            {
                "name": ph.name,
                "path": ph.path,
                "start_s": round(ph.start.t - start.t, 6),
                "end_s": round(end.t - start.t, 6),
                "energy_j": window,
                "counts": dict(ph.counts),
                "own_counts": dict(ph.counts if ph.own_counts is None else ph.own_counts),
                "attributed_energy_j": (
                    window
                    if ph.attributed_j is None
                    else {i: min(a, window[i]) for i, a in zip(ids, ph.attributed_j)}
                ),
                "parent": ph.parent,
            }
        )
    all_notes = list(notes)
    for dev_id, msg in failures.items():
        all_notes.append(
            f"{dev_id} stopped being readable ({msg}): its energy after that is missing"
        )
    uncertain = any(d["uncertain"] for d in devices)
    if uncertain:
        all_notes.append(
            "a counter was read too late to rule out a double wrap (a suspended process?): "
            "devices marked uncertain may be under-counted"
        )
    if contention is not None and contention.get("contended"):
        all_notes.append(
            f"{contention.get('reason')}: this run's figures are unreliable (contended; "
            "leaderboards leave it out while two clean repeats remain)"
        )
    started = datetime.fromtimestamp(wall_start, timezone.utc)
    record: dict[str, Any] = {
        "id": run_id,
        "name": name,
        "status": status,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=now.t - start.t)).isoformat(),
        "duration_s": now.t - start.t,
        "energy_kwh": sum(device_j) / J_PER_KWH,
        "devices": devices,
        "phases": phase_rows,
        "counts": dict(counts),
        "metrics": dict(metrics),
        "metric_directions": dict(config.higher_is_better),
        "tags": dict(tags),
        "task": config.task,
        "model": config.model,
        "variant": config.variant,
        "baseline": config.baseline,
        "timeline": timeline.to_dict(ids),
        "host": host_facts([s.device for s in sensors if s.device.kind == "gpu"]),
        "sources": [src.to_dict() for src in sources],
        "energy_uncertain": uncertain,
        "error": error,
        "checkpoint_interval_s": config.checkpoint_interval_s,
        "pid": os.getpid(),
        "pid_create_time": pid_create_time,
        "notes": all_notes,
    }
    if any(sh is not None for sh in shared):
        record["machine_energy_kwh"] = sum(machine_j) / J_PER_KWH
    if contention is not None:
        record["contention"] = dict(contention)
    if job is not None:
        record["job"] = dict(job)
    if heartbeat:
        record["heartbeat_at"] = datetime.now(timezone.utc).isoformat()
    record.update(carbon_model.emissions_for(record, carbon))
    return new_record(_owned=True, **record)
