"""What bench_tracker.py runs in fresh interpreters: ``python _child.py <mode> '<json config>'``.

Every mode prints one JSON object as its last stdout line. The parent sets the environment (the
fake libnvidia-ml on LD_LIBRARY_PATH, its power program) and creates the fake powercap tree; this
file only exercises footprint (or CodeCarbon) the way a user would and times it.

Modes:

- ``import``: ``import footprint`` (and, afterwards, ``import pynvml``) wall time.
- ``startstop``: two runs in one process: start, phase boundaries, stop, each timed.
- ``accuracy``: one run over a sleeping workload; logs the boundary reads of every sensor (main
  thread only: the sampler's reads are not boundaries) and the CPU time of footprint's threads.
- ``codecarbon``: CodeCarbon's import, construction, start and stop.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

_clock = time.perf_counter
HEAVY_MODULES = ("pandas", "matplotlib", "codecarbon", "torch", "cpuinfo", "pycountry", "scipy")


def heavy_loaded() -> list[str]:
    """Heavy modules present in this interpreter (none should be, for a tracked run)."""
    return [m for m in HEAVY_MODULES if m in sys.modules]


def mode_import(cfg: dict) -> dict:
    t0 = _clock()
    import footprint  # noqa: F401

    t1 = _clock()
    import pynvml  # noqa: F401

    t2 = _clock()
    return {"import_footprint_s": t1 - t0, "import_pynvml_s": t2 - t1}


def _timed_run(footprint: Any, cfg: dict, phases: int) -> dict:
    """One run; times are seconds. start = ``footprint.track(...)`` + ``__enter__``."""
    t0 = _clock()
    track = footprint.track  # first access imports footprint.tracker (lazily)
    t1 = _clock()
    tracker = track(
        "bench", store=cfg["store"], region=cfg.get("region"), powercap_root=cfg["root"]
    )
    t2 = _clock()
    run = tracker.__enter__()
    t3 = _clock()
    enter_s, exit_s = [], []
    for _ in range(phases):
        cm = run.phase("step")
        a = _clock()
        cm.__enter__()
        b = _clock()
        cm.__exit__(None, None, None)
        c = _clock()
        enter_s.append(b - a)
        exit_s.append(c - b)
    time.sleep(cfg.get("body_s", 0.05))
    t4 = _clock()
    tracker.__exit__(None, None, None)
    t5 = _clock()
    return {
        "lazy_import_s": t1 - t0,
        "track_call_s": t2 - t1,
        "enter_s": t3 - t2,
        "start_s": t3 - t0,
        "stop_s": t5 - t4,
        "phase_enter_s": enter_s,
        "phase_exit_s": exit_s,
        "devices": [d["id"] + "/" + d["method"] for d in run.to_dict()["devices"]],
        "saved": run.path is not None,
    }


def mode_startstop(cfg: dict) -> dict:
    t0 = _clock()
    import footprint

    t1 = _clock()
    first = _timed_run(footprint, cfg, cfg["phases"])
    second = _timed_run(footprint, cfg, cfg["phases"])
    return {
        "import_footprint_s": t1 - t0,
        "first": first,
        "second": second,
        "heavy_modules": heavy_loaded(),
    }


def _thread_cpu_s() -> dict[str, float]:
    """CPU time (s) of each live footprint thread, from the kernel's per-thread schedstat (ns)."""
    out = {}
    for th in threading.enumerate():
        if th.name.startswith("footprint") and th.native_id is not None:
            try:
                with open(f"/proc/self/task/{th.native_id}/schedstat") as f:
                    out[f"{th.name}:{th.native_id}"] = int(f.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                pass
    return out


def mode_accuracy(cfg: dict) -> dict:
    import footprint
    from footprint.sensors.probe import probe

    # Probe first (the same arguments track() passes, so it reuses these cached sensors), then
    # log each sensor's reads made by this (the user's) thread: exactly the run's start and stop.
    found = probe(powercap_root=cfg["root"], pid=os.getpid())
    main = threading.get_ident()
    reads: dict[str, list[dict]] = {}
    for sensor in found.sensors:
        log = reads.setdefault(sensor.device.id, [])
        raw: list[int] = []  # the raw counter value of the read in progress (RAPL only)
        orig_read = sensor.read

        def read(orig_read=orig_read, log=log, raw=raw):
            if threading.get_ident() != main:
                return orig_read()
            a = time.monotonic()
            reading = orig_read()
            entry = {"t0": a, "t1": time.monotonic(), "energy_j": reading.energy_j}
            if raw:
                entry["raw_uj"] = raw.pop()
            log.append(entry)
            return reading

        sensor.read = read
        if sensor.device.method == "rapl":
            # The raw value read identifies exactly which of the fake's writes was read.
            orig_raw = sensor._read_raw_uj

            def read_raw(orig_raw=orig_raw, raw=raw):
                value = orig_raw()
                if threading.get_ident() == main:
                    raw[:] = [value]
                return value

            sensor._read_raw_uj = read_raw

    tracker = footprint.track("accuracy", store=cfg["store"], powercap_root=cfg["root"])
    settle_s = 0.5  # past the sampler's first tick, which also writes the first checkpoint
    with tracker as run:
        cpu0, p0, w0 = _thread_cpu_s(), time.process_time(), time.monotonic()
        time.sleep(settle_s)
        cpu_mid, w_mid = _thread_cpu_s(), time.monotonic()
        time.sleep(cfg["duration_s"] - settle_s)
        cpu1, p1, w1 = _thread_cpu_s(), time.process_time(), time.monotonic()
    record = run.to_dict()
    missed = {s.device.id: s.missed_strata for s in found.sensors if hasattr(s, "missed_strata")}
    return {
        "devices": {
            # what the device measured: the whole package or GPU (the run's share, energy_j,
            # is its attribution, which bench_attribution.py checks)
            d["id"]: {
                "energy_j": d["machine_energy_j"]
                if d.get("machine_energy_j") is not None
                else d["energy_j"],
                "method": d["method"],
                "uncertain": d["uncertain"],
            }
            for d in record["devices"]
        },
        "reads": reads,
        "body_s": w1 - w0,
        "thread_cpu_s": {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
        "steady_s": w1 - w_mid,
        "steady_thread_cpu_s": {k: cpu1[k] - cpu_mid.get(k, 0.0) for k in cpu1},
        "missed_strata": missed,
        "process_cpu_s": p1 - p0,
        "timeline_buckets": len(record["timeline"]["t_s"]) - 1,
        "notes": record["notes"],
    }


def mode_idle(cfg: dict) -> dict:
    """The same sleeping body without tracking: the baseline of process CPU time."""
    import footprint  # noqa: F401

    p0, w0 = time.process_time(), time.monotonic()
    time.sleep(cfg["duration_s"])
    return {"process_cpu_s": time.process_time() - p0, "body_s": time.monotonic() - w0}


def mode_codecarbon(cfg: dict) -> dict:
    t0 = _clock()
    from codecarbon import OfflineEmissionsTracker

    t1 = _clock()
    tracker = OfflineEmissionsTracker(country_iso_code="FRA", log_level="error", save_to_file=False)
    t2 = _clock()
    tracker.start()
    t3 = _clock()
    time.sleep(cfg.get("body_s", 0.05))
    t4 = _clock()
    tracker.stop()
    t5 = _clock()
    return {
        "import_s": t1 - t0,
        "init_s": t2 - t1,
        "start_call_s": t3 - t2,
        "start_s": t3 - t1,  # construction + start(), like footprint's track() + __enter__
        "stop_s": t5 - t4,
    }


MODES = {
    "import": mode_import,
    "startstop": mode_startstop,
    "accuracy": mode_accuracy,
    "idle": mode_idle,
    "codecarbon": mode_codecarbon,
}

if __name__ == "__main__":
    result = MODES[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result))
