"""Performance and accuracy benchmark of footprint's tracker on simulated hardware (issue 2).

Usage::

    python benchmarks/bench_tracker.py [--quick] [--json OUT]

Prints one table (figure, target, measured, verdict) and optionally writes every raw figure as
JSON. Everything runs locally against fakes: 2 GPUs behind a fake libnvidia-ml.so.1 and a fake
powercap tree (one CPU package + its DRAM) whose counters a thread rewrites every millisecond.
docs/performance.md explains how each figure is measured and records the latest results.
Exit status: 0 when every target is met, 1 when one is missed, 2 when the benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _sim  # noqa: E402  (also makes tests/fakes importable)
from fakes import FakeNvml, PowerProgram, build_fake_nvml, read_log  # noqa: E402
from fakes.powercap import REAL_PACKAGE_RANGE_UJ  # noqa: E402

CHILD = Path(__file__).resolve().with_name("_child.py")
MAX_POWER_W = 200.0  # the fake zones' constraint_0_max_power_uw: above every program's peak
WRAP_RANGE_UJ = 20_000_000  # 20 J: the package wraps ~11 times, DRAM ~2-3 times in 3 s
GPU_PROGRAM = dict(idle_w=60.0, idle_s=1.0, high_w=400.0, high_s=0.023, low_w=150.0, low_s=0.037)

TARGETS = {
    "accuracy_counter_rel": 0.0005,
    "accuracy_polling_rel": 0.02,
    "import_s": 0.100,
    "first_start_s": 0.100,
    "first_stop_s": 0.020,
    "later_start_s": 0.005,
    "later_stop_s": 0.005,
    "phase_boundary_s": 0.001,
    "cpu_fraction": 0.01,
}

# (fresh processes for timing, CodeCarbon processes, accuracy repeats, overhead run seconds)
PLANS = {"quick": (5, 1, 1, 0.0), "full": (20, 5, 3, 10.0)}


class BenchError(RuntimeError):
    """A child process failed or its output could not be matched to the fakes' logs."""


def run_child(mode: str, cfg: dict, env: dict, cwd: Path, timeout_s: float = 120.0) -> dict:
    """Run ``_child.py <mode>`` in a fresh interpreter; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode, json.dumps(cfg)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{mode} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def cached_env(env: dict, work: Path) -> dict:
    """``env`` with bytecode cached, as in an installed package, under ``work`` (not the
    checkout). The development environment sets PYTHONDONTWRITEBYTECODE=1, which would make
    every fresh process compile footprint from source (the no_pyc timing variant shows that)."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- timing in fresh processes ----------------------------------------------------------------


def bench_timing(work: Path, envs: dict[str, dict], root: Path, n: int, n_cc: int) -> dict:
    """import, first/later start and stop, phase boundaries (+ CodeCarbon): medians over
    fresh processes, which alternate between the variants so drifting load hits them alike.

    Variants: ``typical`` (bytecode cached, run body 0.3 s: the sampler's first tick and
    checkpoint happen during the body), ``short`` (body 0.05 s: the run stops before the first
    tick) and ``no_pyc`` (as typical, but every module compiled from source, as with
    PYTHONDONTWRITEBYTECODE=1 and no cache).
    """
    base = {"root": str(root), "region": "FR", "phases": 50}
    variants = {
        "typical": (envs["cached"], {**base, "body_s": 0.3}),
        "short": (envs["cached"], {**base, "body_s": 0.05}),
        "no_pyc": (envs["no_pyc"], {**base, "body_s": 0.3}),
    }
    for i, (_env, cfg) in enumerate(variants.values()):
        cfg["store"] = str(work / f"store-timing-{i}")
    run_child("startstop", variants["typical"][1], envs["cached"], work)  # warm-up: write pyc
    run_child("codecarbon", {}, envs["cached"], work, timeout_s=300)
    imports: dict[str, list[dict]] = {"cached": [], "no_pyc": []}
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    cc = []
    for i in range(n):
        for k in imports:
            imports[k].append(run_child("import", {}, envs[k], work))
        for k, (env, cfg) in variants.items():
            runs[k].append(run_child("startstop", cfg, env, work))
        if i < n_cc:
            cc.append(run_child("codecarbon", {}, envs["cached"], work, timeout_s=300))

    out: dict[str, Any] = {"processes": n}
    out["import_s"] = median([r["import_footprint_s"] for r in imports["cached"]])
    out["import_no_pyc_s"] = median([r["import_footprint_s"] for r in imports["no_pyc"]])
    out["import_pynvml_s"] = median([r["import_pynvml_s"] for r in imports["cached"]])
    for k, rs in runs.items():
        v: dict[str, Any] = {}
        for which in ("first", "second"):
            for key in ("start_s", "lazy_import_s", "track_call_s", "enter_s", "stop_s"):
                v[f"{which}_{key}"] = median([r[which][key] for r in rs])
            v[f"{which}_start_s_p90"] = _quantile([r[which]["start_s"] for r in rs], 0.9)
            v[f"{which}_stop_s_p90"] = _quantile([r[which]["stop_s"] for r in rs], 0.9)
        enter = [median(r[w]["phase_enter_s"]) for r in rs for w in ("first", "second")]
        exit_ = [median(r[w]["phase_exit_s"]) for r in rs for w in ("first", "second")]
        v["phase_enter_s"], v["phase_exit_s"] = median(enter), median(exit_)
        v["phase_boundary_s"] = max(v["phase_enter_s"], v["phase_exit_s"])
        v["heavy_modules_after_runs"] = sorted({m for r in rs for m in r["heavy_modules"]})
        v["devices"] = rs[0]["first"]["devices"]
        out[k] = v
    out["raw"] = {"import": imports, "startstop": runs}
    if cc:
        out["codecarbon"] = {
            "processes": len(cc),
            "import_s": median([r["import_s"] for r in cc]),
            "start_s": median([r["start_s"] for r in cc]),
            "stop_s": median([r["stop_s"] for r in cc]),
            "raw": cc,
        }
        out["codecarbon"]["start_ratio"] = (
            out["codecarbon"]["start_s"] / out["typical"]["first_start_s"]
        )
    return out


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# --- accuracy and CPU cost of one tracked run -------------------------------------------------


def bench_accuracy(
    work: Path,
    lib_dir: Path,
    label: str,
    *,
    duration_s: float,
    counters: bool,
    range_uj: int,
    log_nvml: bool = True,
) -> dict:
    """One run of ``duration_s`` over a sleeping body, on fresh fakes; every device's energy
    against the exact value, and the CPU time of footprint's threads during the body."""
    base = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    cap = _sim.LoggingPowercap(
        base / "powercap", max_energy_range_uj=range_uj, max_power_w=MAX_POWER_W
    )
    program = PowerProgram(t0_s=time.monotonic(), **GPU_PROGRAM)
    log_path = base / "nvml.log" if (counters and log_nvml) else None
    nvml = FakeNvml(program, gpu_count=2, counter_gpus=None if counters else [], log_path=log_path)
    cfg = {"store": str(base / "store"), "root": str(cap.root), "duration_s": duration_s}
    try:
        with cap.realtime(interval_s=0.001):
            env = cached_env(nvml.env(lib_dir), work)
            out = run_child("accuracy", cfg, env, work, timeout_s=duration_s + 120)
    finally:
        cap.close()
    comparisons = []
    log = read_log(log_path) if log_path else []
    for dev, info in out["devices"].items():
        reads = out["reads"][dev]
        if dev in _sim.ZONES:
            comparisons.append(_sim.compare_rapl(cap, dev, info["energy_j"], reads))
        elif info["method"] == "nvml-energy-counter":
            if log_path is None:
                continue  # the overhead run: no call log, so nothing to compare against
            gpu = int(dev.split(":")[1])
            comparisons.append(
                _sim.compare_gpu_counter(log, gpu, program, 1.0, info["energy_j"], reads)
            )
        elif info["method"] == "nvml-power-polling":
            comparisons.append(_sim.compare_gpu_polling(program, 1.0, info["energy_j"], reads, dev))
        else:
            raise BenchError(f"unexpected device {dev} ({info['method']}) in the run")
    wraps = {}
    for column, dev in enumerate(_sim.ZONES):
        values = [raws[column] for _, raws in cap.writes]
        wraps[dev] = sum(b < a for a, b in zip(values, values[1:]))

    def by_name(per_thread: dict[str, float]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, cpu_s in per_thread.items():
            kind = name.rsplit(":", 1)[0]  # "footprint-sampler:<tid>"
            totals[kind] = totals.get(kind, 0.0) + cpu_s
        return totals

    shutil.rmtree(base, ignore_errors=True)
    return {
        "label": label,
        "duration_s": duration_s,
        "body_s": out["body_s"],
        "comparisons": [c.to_dict() for c in comparisons],
        "uncertain": [d for d, i in out["devices"].items() if i["uncertain"]],
        "rapl_wraps_written": wraps,
        "fake_writes": len(cap.writes),
        "thread_cpu_s": by_name(out["thread_cpu_s"]),
        "steady_s": out["steady_s"],
        "steady_thread_cpu_s": by_name(out["steady_thread_cpu_s"]),
        "missed_strata": out["missed_strata"],
        "process_cpu_s": out["process_cpu_s"],
        "timeline_buckets": out["timeline_buckets"],
    }


def summarise_accuracy(runs: list[dict]) -> dict:
    """Worst relative error per device kind over the repeats, and CPU fractions."""
    worst: dict[str, float] = {}
    for r in runs:
        for c in r["comparisons"]:
            kind = "gpu" if c["device"].startswith("gpu") else "rapl"
            worst[kind] = max(worst.get(kind, 0.0), abs(c["error_rel"]))
    body = sum(r["body_s"] for r in runs)
    steady = sum(r["steady_s"] for r in runs)
    threads: dict[str, float] = {}
    steady_threads: dict[str, float] = {}
    for r in runs:
        for k, v in r["thread_cpu_s"].items():
            threads[k] = threads.get(k, 0.0) + v
        for k, v in r["steady_thread_cpu_s"].items():
            steady_threads[k] = steady_threads.get(k, 0.0) + v
    return {
        "worst_error_rel": worst,
        "thread_cpu_fraction": {k: v / body for k, v in threads.items()},
        "threads_cpu_fraction": sum(threads.values()) / body,
        "steady_threads_cpu_fraction": sum(steady_threads.values()) / steady,
        "process_cpu_fraction": sum(r["process_cpu_s"] for r in runs) / body,
        "runs": runs,
    }


def bench_idle(work: Path, env: dict, duration_s: float) -> dict:
    """Process CPU time of the same sleeping body, untracked (the baseline)."""
    out = run_child("idle", {"duration_s": duration_s}, env, work)
    return {"process_cpu_fraction": out["process_cpu_s"] / out["body_s"]}


# --- report -----------------------------------------------------------------------------------


def machine_facts() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for dist in ("codecarbon", "nvidia-ml-py", "psutil"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = None
    commit = subprocess.run(
        ["git", "-C", str(_sim.REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "footprint_commit": commit,
        "versions": versions,
        "loadavg_start": os.getloadavg()[0],
    }


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def table(results: dict) -> tuple[str, bool]:
    """The printed table, and whether every target was met."""
    rows: list[tuple[str, str, str, str]] = []
    all_ok = True

    def add(name: str, target: float | None, value: float, fmt: Callable[[float], str]) -> None:
        nonlocal all_ok
        v = verdict(value, target) if target is not None else "info"
        all_ok &= v != "MISSED"
        rows.append((name, fmt(target) if target is not None else "-", fmt(value), v))

    pct = lambda x: f"{100 * x:.4f} %"  # noqa: E731
    pct2 = lambda x: f"{100 * x:.2f} %"  # noqa: E731
    ms = lambda x: f"{1000 * x:.2f} ms"  # noqa: E731
    acc = results["accuracy"]
    for label, title in (
        ("counters", "3 s bursty, GPU counters + RAPL"),
        ("wrapping", "3 s bursty, RAPL wrapping"),
        ("polling", "10 s bursty, GPU power polling"),
    ):
        worst = acc[label]["worst_error_rel"]
        gpu_target = TARGETS[
            "accuracy_polling_rel" if label == "polling" else "accuracy_counter_rel"
        ]
        add(f"{title}: GPU |error| (worst)", gpu_target, worst["gpu"], pct)
        add(
            f"{title}: CPU+DRAM |error| (worst)",
            TARGETS["accuracy_counter_rel"],
            worst["rapl"],
            pct,
        )
    t = results["timing"]
    typ, short, nopyc = t["typical"], t["short"], t["no_pyc"]
    add("import footprint (median)", TARGETS["import_s"], t["import_s"], ms)
    add("first run: start (median)", TARGETS["first_start_s"], typ["first_start_s"], ms)
    add("first run: stop (median)", TARGETS["first_stop_s"], typ["first_stop_s"], ms)
    add("first run: stop, run shorter than 0.1 s", TARGETS["first_stop_s"],
        short["first_stop_s"], ms)  # fmt: skip
    add("later run: start (median)", TARGETS["later_start_s"], typ["second_start_s"], ms)
    add("later run: stop (median)", TARGETS["later_stop_s"], typ["second_stop_s"], ms)
    add("phase boundary (median, enter/exit worst)", TARGETS["phase_boundary_s"],
        typ["phase_boundary_s"], ms)  # fmt: skip
    add("first run: start, no bytecode cache", None, nopyc["first_start_s"], ms)
    add("first run: stop, no bytecode cache", None, nopyc["first_stop_s"], ms)
    ov = results["overhead"]
    add("CPU of footprint threads, default (counters)", TARGETS["cpu_fraction"],
        ov["default"]["threads_cpu_fraction"], pct2)  # fmt: skip
    add("  same, after the first 0.5 s (steady state)", TARGETS["cpu_fraction"],
        ov["default"]["steady_threads_cpu_fraction"], pct2)  # fmt: skip
    add("CPU of footprint threads, RAPL wrapping (20 Hz)", None,
        acc["wrapping"]["threads_cpu_fraction"], pct2)  # fmt: skip
    add("CPU of footprint threads, GPU power polling", None,
        acc["polling"]["threads_cpu_fraction"], pct2)  # fmt: skip
    add("  same, poller thread only", None,
        acc["polling"]["thread_cpu_fraction"].get("footprint-nvml-poller", 0.0), pct2)  # fmt: skip
    if "codecarbon" in t:
        cc = t["codecarbon"]
        add("CodeCarbon start (median, construct+start)", None, cc["start_s"], ms)
        rows.append(("CodeCarbon start / footprint first start", "-",
                     f"{cc['start_ratio']:.0f}x", "info"))  # fmt: skip
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("figure", "target", "measured", "verdict")
    w = [max(a, len(b)) for a, b in zip(w, head)]
    lines = ["  ".join(h.ljust(n) for h, n in zip(head, w))]
    lines.append("  ".join("-" * n for n in w))
    for r in rows:
        lines.append("  ".join([r[0].ljust(w[0]), r[1].rjust(w[1]), r[2].rjust(w[2]), r[3]]))
    return "\n".join(lines), all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (well under a minute)")
    parser.add_argument("--json", dest="out", type=Path, help="write every raw figure here")
    args = parser.parse_args(argv)
    n, n_cc, repeats, overhead_s = PLANS["quick" if args.quick else "full"]
    _sim.self_check()
    t_begin = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="footprint-bench-"))
    try:
        lib_dir = build_fake_nvml(work / "lib")
        results: dict[str, Any] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or [])])}
        results["mode"] = "quick" if args.quick else "full"
        results["machine"] = machine_facts()

        # Timing: a static powercap tree suffices (values need not move to time the calls).
        static = _sim.LoggingPowercap(
            work / "static", max_energy_range_uj=REAL_PACKAGE_RANGE_UJ, max_power_w=MAX_POWER_W
        )
        env = FakeNvml(PowerProgram(t0_s=time.monotonic()), gpu_count=2).env(lib_dir)
        cached = cached_env(env, work)
        # As this development environment runs: PYTHONDONTWRITEBYTECODE=1 and no __pycache__
        # in the checkout, so footprint's own modules compile from source in every process.
        no_pyc = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        envs = {"cached": cached, "no_pyc": no_pyc}
        print(f"timing: {n} x 3 fresh processes ({n_cc} with CodeCarbon)...", file=sys.stderr)
        results["timing"] = bench_timing(work, envs, static.root, n, n_cc)
        static.close()

        scenarios = {
            "counters": dict(duration_s=3.0, counters=True, range_uj=REAL_PACKAGE_RANGE_UJ),
            "wrapping": dict(duration_s=3.0, counters=True, range_uj=WRAP_RANGE_UJ),
            "polling": dict(duration_s=10.0, counters=False, range_uj=REAL_PACKAGE_RANGE_UJ),
        }
        results["accuracy"] = {}
        for label, kw in scenarios.items():
            print(f"accuracy: {label}, {repeats} x {kw['duration_s']:g} s...", file=sys.stderr)
            runs = [bench_accuracy(work, lib_dir, label, **kw) for _ in range(repeats)]
            results["accuracy"][label] = summarise_accuracy(runs)

        # Default settings, longer and without the NVML call log (its writes are not footprint's).
        if overhead_s:
            print(f"overhead: {overhead_s:g} s tracked + untracked...", file=sys.stderr)
            run = bench_accuracy(
                work, lib_dir, "overhead", duration_s=overhead_s, counters=True,
                range_uj=REAL_PACKAGE_RANGE_UJ, log_nvml=False,
            )  # fmt: skip
            default = summarise_accuracy([run])
        else:
            default = results["accuracy"]["counters"]
        results["overhead"] = {
            "default": {k: v for k, v in default.items() if k != "runs"},
            "untracked": bench_idle(work, cached, overhead_s or 3.0),
        }
        results["machine"]["loadavg_end"] = os.getloadavg()[0]
        results["elapsed_s"] = time.monotonic() - t_begin
    except (BenchError, LookupError, ValueError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)

    text, ok = table(results)
    m = results["machine"]
    print(
        f"footprint {m['footprint_commit']} on {m['cpu_model']} ({m['cpus']} CPUs), Python "
        f"{m['python']}, load {m['loadavg_start']:.2f} -> {m['loadavg_end']:.2f}, "
        f"{results['mode']} mode, {results['elapsed_s']:.0f} s"
    )
    print(text)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
