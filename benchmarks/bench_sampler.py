"""The sampler's own cost: CPU time of footprint's threads during a tracked run at default
settings, as a fraction of one core (issue 12: <= 0.3 % on a 3 s run).

Usage::

    python benchmarks/bench_sampler.py [--seconds 3] [--repeats 5] [--compare OLD_CHECKOUT]

Each repeat runs a fresh interpreter that tracks ``time.sleep(seconds)`` twice with
footprint's defaults (saving to a temporary store, so the first checkpoint counts) on this
machine (whatever the probe finds; here: the CPU and RAM estimates) and reads the CPU time of
every footprint thread (``/proc/self/task/<tid>/schedstat``, in ns): for the later run, over
its whole life; for the first, over its whole life (the process's one-time warm-up included)
and after its first 0.5 s. With ``--compare``, the same is measured for another checkout,
interleaved with this one in the same session, so the ratio is free of the machine's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, threading, time
import footprint

def thread_cpu():
    out = {}
    for t in threading.enumerate():
        if not t.name.startswith("footprint"):
            continue
        try:  # nanoseconds on a CPU (stat's utime/stime come in 10 ms ticks)
            with open(f"/proc/self/task/{t.native_id}/schedstat") as f:
                out[t.name] = int(f.read().split()[0]) / 1e9
        except OSError:
            continue
    return out

seconds = float(sys.argv[1])
# default settings, saving included (its first checkpoint is part of the cost)
t0 = time.monotonic()
with footprint.track("bench-sampler", store=tempfile.mkdtemp()) as run:
    time.sleep(0.5)
    mid, t_mid = thread_cpu(), time.monotonic()
    time.sleep(seconds - 0.5)
    after = thread_cpu()  # the threads' whole lives so far: the one-time warm-up included
    t1 = time.monotonic()
# a later run in the same process: its whole life, the process's one-time work already done
before = thread_cpu()
t2 = time.monotonic()
with footprint.track("bench-sampler-2", store=tempfile.mkdtemp()) as run:
    time.sleep(seconds)
    later = thread_cpu()
    t3 = time.monotonic()
later_s = sum(later.values()) - sum(before.get(k, 0.0) for k in later)
print(json.dumps({
    "later_cpu_s": later_s, "later_wall_s": t3 - t2,
    "threads_cpu_s": sum(after.values()), "wall_s": t1 - t0,
    "steady_cpu_s": sum(after.values()) - sum(mid.get(k, 0.0) for k in after),
    "steady_wall_s": t1 - t_mid, "threads": sorted(after),
}))
"""


def measure(checkout: Path, seconds: float, cache: Path) -> dict:
    # bytecode cached, as in an installed package (this environment sets
    # PYTHONDONTWRITEBYTECODE=1, which would make every lazy import compile from source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=str(cache / checkout.name))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(seconds)],
        capture_output=True, text=True, env=env, cwd=checkout, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", type=Path, help="another checkout to measure alongside")
    args = parser.parse_args()
    checkouts = {"this": ROOT} | ({"compare": args.compare.resolve()} if args.compare else {})
    fractions: dict[str, list[float]] = {k: [] for k in checkouts}
    steady: dict[str, list[float]] = {k: [] for k in checkouts}
    later: dict[str, list[float]] = {k: [] for k in checkouts}
    with tempfile.TemporaryDirectory() as cache:
        for path in checkouts.values():  # fill the bytecode cache
            measure(path, 1.0, Path(cache))
        for _ in range(args.repeats):  # interleaved: both see the same machine
            for label, path in checkouts.items():
                m = measure(path, args.seconds, Path(cache))
                fractions[label].append(m["threads_cpu_s"] / m["wall_s"])
                steady[label].append(m["steady_cpu_s"] / m["steady_wall_s"])
                later[label].append(m["later_cpu_s"] / m["later_wall_s"])
    print(f"CPU of footprint's threads over a {args.seconds:g} s run, % of one core "
          f"(median of {args.repeats}):")  # fmt: skip
    print(
        "  checkout  later run (whole)  first run after 0.5 s  first run (whole, one-time "
        "warm-up included)"
    )
    for label in fractions:
        m = [100 * statistics.median(v[label]) for v in (later, steady, fractions)]
        print(f"  {label:8s}  {m[0]:17.3f}  {m[1]:21.3f}  {m[2]:.3f}")
    if args.compare:
        for name, v in (("later run", later), ("first, after 0.5 s", steady), ("first", fractions)):
            a, b = (statistics.median(v[k]) for k in ("this", "compare"))
            print(f"  this / compare, {name}: {a / b:.2f}" if b > 0 else "  compare: no CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
