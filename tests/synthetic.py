"""Deterministic, realistic-looking run records for the report's tests, benchmark and previews.

Not measurements: every figure is made up from a seed. The records are complete current-schema
records (carbon fields from :mod:`footprint.carbon`), so the report sees what a tracked run gives.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone

from footprint import carbon
from footprint.record import RunRecord, new_record

_HOST = {
    "hostname": "gpu-node-07",
    "os": "Linux",
    "os_release": "6.8.0-45-generic",
    "machine": "x86_64",
    "python_version": "3.11.9",
    "python_implementation": "CPython",
    "footprint_version": "0.1.0",
    "cpu_model": "AMD EPYC 7763 64-Core Processor",
    "cpu_count_logical": 32,
    "cpu_count_physical": 16,
    "memory_total_bytes": 128 * 1024**3,
    "is_vm": True,
    "is_container": False,
    "torch_version": "2.13.0",
    "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-5e1c0d2a", "driver_version": "550.54"}],
}

# (device id, kind, name, method, measured, idle W, busy W)
_DEVICES = (
    ("gpu:0", "gpu", "NVIDIA A100-SXM4-40GB", "nvml-energy-counter", True, 55.0, 1.0),
    ("cpu", "cpu", "AMD EPYC 7763 64-Core Processor", "estimate:tdp-x-utilisation", False, 18, 0.2),
    ("ram", "ram", "RAM (128 GiB)", "estimate:ram-w-per-gb", False, 9.0, 0.03),
)


def structured(phases: list[dict]) -> list[dict]:
    """Phase rows written with inclusive ``counts`` only (a count added to every open phase),
    given their ``parent``, ``own_counts`` and ``attributed_energy_j`` the way a schema-1 record
    is upgraded: parents by path and window, own counts = counts minus the direct sub-phases',
    attributed = window energy (no concurrency)."""
    from footprint.record.versions import derive_phase_structure

    rows = [
        {k: v for k, v in p.items() if k not in ("parent", "own_counts", "attributed_energy_j")}
        for p in phases
    ]
    return derive_phase_structure(rows)


def make_record(
    name: str,
    *,
    seed: int = 0,
    phases: list[tuple[str, float, dict[str, float]]] | None = None,
    gpu_w: float = 300.0,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    baseline: bool = False,
    metrics: dict[str, float] | None = None,
    region: str | None = "FR",
    pue: float | str = 1.0,
    embodied: bool | None = None,
    started_at: datetime | None = None,
    points: int = 240,
    status: str = "completed",
    tags: dict[str, str] | None = None,
) -> dict:
    """One record: ``phases`` are (path, duration_s, counts) run back to back after a 2 s start-up.

    The GPU draws about ``gpu_w`` while a phase runs (with seeded noise and a ramp), idles
    otherwise; CPU and RAM are estimates following the GPU's load. The timeline has ``points``
    buckets and its integral is the devices' energy, as in a tracked run.
    """
    rng = random.Random(seed)
    phases = phases or [("inference", 20.0, {"queries": 10_000})]
    spans, t = [], 2.0
    for path, dur, counts in phases:
        spans.append((path, t, t + dur, counts))
        t += dur
    duration_s = t + 1.0
    edges = [duration_s * i / points for i in range(points + 1)]
    power: dict[str, list[float]] = {d[0]: [] for d in _DEVICES}
    wobble = rng.uniform(0, math.tau)
    for i in range(points):
        mid = (edges[i] + edges[i + 1]) / 2
        busy = 0.0
        for _, a, b, _counts in spans:
            if a <= mid < b:
                busy = min(1.0, (mid - a) / 0.8)  # ramps up over ~0.8 s
        for dev_id, _kind, _n, _m, _meas, idle_w, scale in _DEVICES:
            base = idle_w + busy * gpu_w * scale
            noise = 1 + 0.04 * math.sin(mid * 2.1 + wobble) + rng.gauss(0, 0.015) * busy
            power[dev_id].append(round(base * noise, 3))
    width = duration_s / points
    devices = [
        {
            "id": dev_id,
            "kind": kind,
            "name": dev_name,
            "method": method,
            "measured": measured,
            "details": {},
            "energy_j": math.fsum(p * width for p in power[dev_id]),
            "uncertain": False,
        }
        for dev_id, kind, dev_name, method, measured, _i, _s in _DEVICES
    ]

    def energy_between(dev_id: str, a: float, b: float) -> float:
        total = 0.0
        for i, p in enumerate(power[dev_id]):
            lo, hi = max(a, edges[i]), min(b, edges[i + 1])
            if hi > lo:
                total += p * (hi - lo)
        return total

    totals: dict[str, float] = {}
    phase_rows = []
    for path, a, b, counts in spans:
        phase_rows.append(
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "start_s": a,
                "end_s": b,
                "energy_j": {d["id"]: energy_between(d["id"], a, b) for d in devices},
                "counts": dict(counts),
            }
        )
        if "/" not in path:
            for unit, n in counts.items():
                totals[unit] = totals.get(unit, 0) + n
    start = started_at or datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc) + timedelta(
        minutes=seed * 7
    )
    energy_kwh = math.fsum(d["energy_j"] for d in devices) / 3.6e6
    record = {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        "name": name,
        "status": status,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=duration_s)).isoformat(),
        "duration_s": duration_s,
        "energy_kwh": energy_kwh,
        "devices": devices,
        "phases": structured(phase_rows),
        "counts": totals,
        "metrics": dict(metrics or {}),
        "tags": dict(tags or {}),
        "task": task,
        "model": model,
        "variant": variant,
        "baseline": baseline,
        "timeline": {"t_s": edges, "power_w": power},
        "host": dict(_HOST),
        "sources": [
            {"source": "nvml", "available": True, "summary": "1 GPU, energy counter", "fix": None},
            {
                "source": "rapl",
                "available": False,
                "summary": "no /sys/class/powercap/intel-rapl",
                "fix": "run on bare metal with powercap readable",
            },
        ],
        "notes": [
            "cpu: estimated from TDP x utilisation (docs/estimates.md)",
            "ram: estimated from memory in use x W per GB (docs/estimates.md)",
        ],
    }
    setup = carbon.resolve(region=region, pue=pue, embodied=embodied)
    record.update(carbon.emissions_for(record, setup))
    return new_record(**record)


def story_records(repeats: int = 3) -> list[RunRecord]:
    """The compressed-versus-full story: an fp32 baseline, int8, bf16, pruned and a distilled
    student, ``repeats`` inference runs each (task ``digits``, accuracy, queries), plus a training
    run with epochs and nested evaluation phases (it counts samples, not queries)."""
    variants = (
        # model, variant, GPU W, s per 10k queries, accuracy
        ("mlp", "fp32", 310.0, 21.0, 0.9633),
        ("mlp", "bf16", 250.0, 12.0, 0.9628),
        ("mlp", "int8", 205.0, 8.5, 0.9533),
        ("mlp", "pruned-50", 240.0, 14.0, 0.9561),
        ("student", "distilled", 160.0, 7.0, 0.9312),
    )
    out = []
    seed = 0
    for model, variant, gpu_w, secs, acc in variants:
        for r in range(repeats):
            seed += 1
            rng = random.Random(seed * 31)
            out.append(
                make_record(
                    f"digits-{model}-{variant}",
                    seed=seed,
                    phases=[
                        ("load", 1.5, {}),
                        ("inference", secs * rng.uniform(0.95, 1.05), {"queries": 10_000}),
                    ],
                    gpu_w=gpu_w,
                    task="digits",
                    model=model,
                    variant=variant,
                    baseline=variant == "fp32",
                    metrics={"accuracy": round(acc + rng.gauss(0, 0.002), 4)},
                    tags={"seed": str(r)},
                )
            )
    train = [(f"epoch-{e}", 18.0, {"samples": 60_000}) for e in range(3)]
    record = make_record(
        "train-mlp-fp32",
        seed=99,
        phases=train,
        gpu_w=330.0,
        task="digits",
        model="mlp",
        variant="fp32-train",
        metrics={"accuracy": 0.9641, "loss": 0.118},
        embodied=True,
        points=600,
    )
    # nested evaluation phases: the last 3 s of every epoch
    nested = []
    for ph in record.phases:
        a, b = ph.end_s - 3.0, ph.end_s
        share = 3.0 / ph.duration_s
        nested.append(
            {
                "name": "eval",
                "path": ph.path + "/eval",
                "start_s": a,
                "end_s": b,
                "energy_j": {k: v * share for k, v in ph.energy_j.items()},
                "counts": {},
            }
        )
    phases = [p.to_dict() for p in record.phases] + nested
    out.append(record.replace(phases=structured(sorted(phases, key=lambda p: p["start_s"]))))
    return out


def bulk_records(n: int, seed: int = 0) -> list[RunRecord]:
    """``n`` inference runs over a few tasks, models and variants (for the benchmark)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        task = f"task-{i % 4}"
        model = f"model-{(i // 4) % 5}"
        variant = ("fp32", "bf16", "int8")[(i // 20) % 3]
        out.append(
            make_record(
                f"{task}-{model}-{variant}",
                seed=seed * 100_000 + i,
                phases=[("inference", rng.uniform(5, 30), {"queries": 1000})],
                gpu_w=rng.uniform(120, 320),
                task=task,
                model=model,
                variant=variant,
                baseline=variant == "fp32" and model == "model-0",
                metrics={"accuracy": round(rng.uniform(0.8, 0.97), 4)},
                points=100,
            )
        )
    return out


def hand_record(**extra) -> RunRecord:
    """10 s; gpu:0 measured 600 W then 840 W (7,200 J), cpu estimated 180 W (1,800 J).

    Phases: load 0-2 s (400 + 200 J), infer 2-10 s (6,800 + 1,600 J, 4,000 queries) with a
    nested infer/post twice (100 + 20 J each).
    """
    record = {
        "id": "ab" * 16,
        "name": "bert-base",
        "started_at": "2026-11-20T09:00:00+00:00",
        "ended_at": "2026-11-20T09:00:10+00:00",
        "duration_s": 10.0,
        "energy_kwh": 9000 / 3.6e6,
        "devices": [
            {
                "id": "gpu:0",
                "kind": "gpu",
                "name": "A100",
                "method": "nvml-energy-counter",
                "measured": True,
                "energy_j": 7200.0,
                "uncertain": False,
            },
            {
                "id": "cpu",
                "kind": "cpu",
                "name": "EPYC",
                "method": "estimate:tdp-x-utilisation",
                "measured": False,
                "energy_j": 1800.0,
                "uncertain": False,
            },
        ],
        "phases": structured(
            [
                {
                    "name": "load",
                    "path": "load",
                    "start_s": 0.0,
                    "end_s": 2.0,
                    "energy_j": {"gpu:0": 400.0, "cpu": 200.0},
                    "counts": {},
                },
                {
                    "name": "infer",
                    "path": "infer",
                    "start_s": 2.0,
                    "end_s": 10.0,
                    "energy_j": {"gpu:0": 6800.0, "cpu": 1600.0},
                    "counts": {"queries": 4000},
                },
                {
                    "name": "post",
                    "path": "infer/post",
                    "start_s": 3.0,
                    "end_s": 3.5,
                    "energy_j": {"gpu:0": 100.0, "cpu": 20.0},
                    "counts": {},
                },
                {
                    "name": "post",
                    "path": "infer/post",
                    "start_s": 6.0,
                    "end_s": 7.0,
                    "energy_j": {"gpu:0": 100.0, "cpu": 20.0},
                    "counts": {},
                },
            ]
        ),
        "counts": {"queries": 4000},
        "metrics": {"accuracy": 0.9},
        "timeline": {
            "t_s": [0.0, 5.0, 10.0],
            "power_w": {"gpu:0": [600.0, 840.0], "cpu": [180.0, 180.0]},
        },
        "host": {
            "hostname": "node-1",
            "memory_total_bytes": 64 * 1024**3,
            "is_vm": False,
            "gpus": [{"name": "A100", "uuid": "GPU-1", "driver_version": "550"}],
        },
    }
    record.update(extra)
    record.update(carbon.emissions_for(record, carbon.resolve(region="FR")))
    return new_record(**record)


def cost_rows(*extra: dict) -> list[dict]:
    """Rows of the report's cost-and-pay-back table (as footprint.demo.run.build_costs makes
    them): the fp32 baseline, an int8 that pays back after ~667 queries, then ``extra``."""
    base = {"within_noise": False, "unranked": None, "baseline": False}
    return [
        {**base, "variant": "fp32", "build_j": 5000.0, "extra_j": 0.0, "energy_j_per_query": 0.5,
         "saving_j_per_query": 0.0, "break_even_queries": None, "baseline": True},
        {**base, "variant": "int8", "build_j": 5200.0, "extra_j": 200.0,
         "energy_j_per_query": 0.2, "saving_j_per_query": 0.3, "break_even_queries": 666.7},
        *({**base, **row} for row in extra),
    ]  # fmt: skip
