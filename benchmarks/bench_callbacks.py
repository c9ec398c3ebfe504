"""What footprint's framework callbacks add to each training step (issue 14: <= 1 ms).

Usage::

    python benchmarks/bench_callbacks.py [--steps 400] [--repeats 3]

For each framework (the Hugging Face Trainer on a 1-layer BERT built from a config, Lightning
and Keras 3 on the torch backend, on tiny models), a fresh interpreter trains for ``--steps``
steps with the callback, logging every 10 steps (so the figures are computed and sent often),
and reports:

- **in the callback, per step**: the time spent inside the callback's hooks, summed over the
  fit and divided by its steps, leaving out the hooks that start and end the run (reported
  apart: they run once per fit). Every hook is timed with ``perf_counter`` around the call.
- **start / end of the fit**: the hooks that start the run (the tracker's start) and end it
  (its stop and save).
- **wall-clock difference per step**: the same fit without the callback, alternated with the
  runs with it in the same interpreter, median of ``--repeats`` each, less the start and end,
  divided by the steps: what the user sees, noisy on a shared machine (it includes the sampler
  thread's share of the CPU), so informational.

Prints one table (framework, figure, target, measured, verdict). Exit status 0 when every target
is met.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _report import child_json, print_rows

CHILD = Path(__file__).resolve().parent / "_callbacks_child.py"
FRAMEWORKS = {"Hugging Face Trainer": "hf", "Lightning": "lightning", "Keras 3 (torch)": "keras"}
TARGET_STEP_S = 1e-3


def measure(framework: str, steps: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return child_json(
            [str(CHILD), framework, tmp, str(steps), str(repeats)],
            env={"OMP_NUM_THREADS": "1"},
            timeout_s=1800,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    ns = parser.parse_args()
    rows, ok = [], True
    for name, framework in FRAMEWORKS.items():
        r = measure(framework, ns.steps, ns.repeats)
        met = r["step_s"] <= TARGET_STEP_S
        ok &= met
        diff = (r["wall_with_s"] - r["wall_without_s"] - r["once_s"]) / r["steps"]
        rows += [
            (name, "in the callback, per step", "<= 1 ms", f"{r['step_s'] * 1e6:.1f} us",
             "met" if met else "MISSED"),
            (name, "start + end of the fit (once)", "-", f"{r['once_s'] * 1e3:.1f} ms", ""),
            (name, "wall-clock difference per step", "-", f"{diff * 1e6:+.0f} us",
             f"(start, end left out; fit {r['wall_without_s']:.2f} s -> {r['wall_with_s']:.2f} s)"),
        ]  # fmt: skip
    print_rows(rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
