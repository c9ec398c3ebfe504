"""Benchmark: render the comparison page of a 1,000-run store (target: under 5 s).

    python benchmarks/bench_report.py [--runs 1000] [--repeats 3]

Records are synthetic (tests/synthetic.py), saved to a temporary store, then
``footprint.report()`` runs in a fresh process each repeat, so the time includes importing
matplotlib and jinja2 and reading the store, as a user's first call would. Prints per-step times
and the page size; exits 1 if the median total is over the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from footprint.store import Store
from footprint.reporting import render_html
from footprint.reporting.data import load_records
records = load_records(None, store=sys.argv[1])
t1 = time.perf_counter()
html = render_html(records)
t2 = time.perf_counter()
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(html)
t3 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "render_s": t2 - t1, "write_s": t3 - t2,
                  "total_s": t3 - t0, "bytes": len(html.encode()), "runs": len(records)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from synthetic import bulk_records

    from footprint.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "runs")
        for r in bulk_records(args.runs):
            store.save(r)
        results = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(store.path), str(Path(tmp) / "r.html")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out))
    for key in ("load_s", "render_s", "write_s", "total_s"):
        values = [r[key] for r in results]
        print(f"{key:>9}: median {statistics.median(values):.3f} s  (min {min(values):.3f})")
    print(f"     page: {results[0]['bytes'] / 1e6:.2f} MB for {results[0]['runs']} runs")
    total = statistics.median(r["total_s"] for r in results)
    verdict = "OK" if total < TARGET_S else "TOO SLOW"
    print(f"  target: < {TARGET_S} s for {args.runs} runs -> {verdict}")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    t = time.perf_counter()
    code = main()
    print(f"(benchmark wall time {time.perf_counter() - t:.1f} s)")
    sys.exit(code)
