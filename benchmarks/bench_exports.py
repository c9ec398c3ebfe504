"""What the exports cost (issue 15): the Prometheus endpoint while idle, and ``log_run`` against
a local MLflow store.

Usage::

    python benchmarks/bench_exports.py [--idle-s 10] [--logs 20]

1. **The endpoint while idle** (target <= 0.2 % of a core): fresh interpreters, alternately with
   and without ``serve()``, each following one live run that does nothing (the sampler ticking
   at its default period) for ``--idle-s`` seconds with no scrape; the process's CPU time over
   that window, per second of wall time, with minus without, as a percentage of one core. The
   same with no run at all (the server thread alone).
2. **log_run** (target <= 200 ms): one interpreter, a SQLite tracking store in a temporary
   directory, MLflow imported and the store created first (a program that logs to MLflow has
   both); then ``--logs`` runs, each inside ``mlflow.start_run()``, timed around ``log_run``:
   median and worst. ``load_records`` of them all, timed once, for information.

Prints one table (figure, target, measured, verdict). Exit status 0 when every target is met.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap

from _report import child_json, print_rows

IDLE = textwrap.dedent(
    """
    import json, sys, time
    import footprint
    serve, with_run, idle_s = sys.argv[1] == "1", sys.argv[2] == "1", float(sys.argv[3])
    if serve:
        from footprint.integrations.prometheus import serve as start
        start(0)
    tracker = footprint.track("idle", store=sys.argv[4]) if with_run else None
    run = tracker.__enter__() if tracker else None
    time.sleep(1.0)  # past the start's own work
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(idle_s)
    cpu = (time.process_time() - c0) / (time.monotonic() - t0)
    if tracker:
        tracker.__exit__(None, None, None)
    print(json.dumps({"cpu_per_s": cpu}))
    """
)

LOG = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    import mlflow
    import footprint
    from footprint.integrations.mlflow import load_records, log_run
    tmp, n = sys.argv[1], int(sys.argv[2])
    os.chdir(tmp)
    uri = f"sqlite:///{tmp}/mlruns.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        pass  # the store's tables exist, as for any program already logging to it
    times = []
    for i in range(n + 1):
        with mlflow.start_run():
            with footprint.track(f"r{i}", store=tmp + "/runs", region="FR", task="t",
                                 variant=f"v{i % 3}") as run:
                run.count(queries=100)
            run.log(accuracy=0.9)
            t = time.perf_counter()
            log_run(run)
            if i:
                times.append(time.perf_counter() - t)  # the first: the process's first log
    t = time.perf_counter()
    back = load_records(uri, experiment="bench")
    load_s = time.perf_counter() - t
    print(json.dumps({"median_s": statistics.median(times), "max_s": max(times),
                      "load_s": load_s, "loaded": len(back)}))
    """
)


def _child(code: str, *args: str) -> dict:
    return child_json(["-c", code, *args])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--logs", type=int, default=20)
    ns = parser.parse_args()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for with_run, what in (("1", "with a live idle run"), ("0", "no run")):
            cpu: dict[str, list[float]] = {"1": [], "0": []}
            for _ in range(ns.repeats):
                for serve in ("1", "0"):  # alternated: the machine's noise hits both
                    r = _child(IDLE, serve, with_run, str(ns.idle_s), tmp + "/runs")
                    cpu[serve].append(r["cpu_per_s"])
            added = statistics.median(cpu["1"]) - statistics.median(cpu["0"])
            met = added <= 0.002
            ok &= met
            rows.append(
                (f"endpoint while idle, {what}", "<= 0.2 % of a core", f"{added * 100:+.3f} %",
                 "met" if met else "MISSED",
                 f"(process {statistics.median(cpu['0']) * 100:.3f} % -> "
                 f"{statistics.median(cpu['1']) * 100:.3f} %)")
            )  # fmt: skip
        r = _child(LOG, tmp, str(ns.logs))
        met = r["median_s"] <= 0.2
        ok &= met
        rows.append(
            ("log_run, local SQLite store", "<= 200 ms", f"{r['median_s'] * 1e3:.0f} ms",
             "met" if met else "MISSED", f"(median of {ns.logs}; worst {r['max_s'] * 1e3:.0f} ms)")
        )  # fmt: skip
        rows.append(
            ("load_records of them", "-", f"{r['load_s'] * 1e3:.0f} ms", "",
             f"({r['loaded']} records)")
        )  # fmt: skip
    print_rows(rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
