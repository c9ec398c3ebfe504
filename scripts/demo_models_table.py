"""Print the demo workload's table in docs/demo.md (accuracy, speed, size of each variant).

    python scripts/demo_models_table.py [--quick] [--repeats N]

Dev tooling: not part of the package. Needs the demo extra (torch, scikit-learn).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch

from footprint.demo.models import (
    FULL,
    accuracy,
    build_variants,
    demo_config,
    load_digits_data,
    measure_inference_s_per_1000,
    predict_all,
    setup_torch,
    train_full_model,
    train_student,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table in docs/demo.md."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python scripts/demo_models_table.py", description="print the table in docs/demo.md"
    )
    parser.add_argument("--quick", action="store_true", help="the quick profile")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes per variant")
    args = parser.parse_args(argv)
    overrides = {} if args.repeats is None else {"repeats": args.repeats}
    config = demo_config(quick=args.quick, **overrides)
    threads = setup_torch(config)
    t0 = time.perf_counter()
    data = load_digits_data(config)
    start_s = time.perf_counter()
    full = train_full_model(data, config)
    full_s = time.perf_counter() - start_s
    start_s = time.perf_counter()
    student = train_student(full, data, config)
    student_s = time.perf_counter() - start_s
    start_s = time.perf_counter()
    variants = build_variants(full, student, config)
    build_s = time.perf_counter() - start_s
    print(
        f"torch {torch.__version__}, {threads} threads, {len(data.y_train)} train / "
        f"{len(data.y_test)} test samples, inference batch {config.inference_batch_size}"
    )
    print(
        f"training: full {config.epochs} epochs {full_s:.1f} s, "
        f"distilled {config.student_epochs} epochs {student_s:.1f} s; "
        f"int8 + bf16 + pruned built in {build_s:.1f} s"
    )
    # Round-robin over the variants, so a burst of load from elsewhere on the machine hits
    # every variant's figures instead of all the repeats of one of them.
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(config.repeats):
        for name, variant in variants.items():
            times[name] += measure_inference_s_per_1000(
                variant.predict, data.batches, repeats=1, warmup=1 if repeat == 0 else 0
            )
    print(
        "| variant | accuracy | ms per 1,000 queries: median (min-max) | vs full "
        "| nonzero / params | size |"
    )
    print("|---|---|---|---|---|---|")
    baseline_s = statistics.median(times[FULL])
    for name, variant in variants.items():
        acc = accuracy(predict_all(variant.predict, data.batches), data.y_test)
        median_s = statistics.median(times[name])
        print(
            f"| {name} | {acc:.3f} | {median_s * 1000:.1f} ({min(times[name]) * 1000:.1f}-"
            f"{max(times[name]) * 1000:.1f}) | {baseline_s / median_s:.2f}x | "
            f"{variant.nonzero_parameter_count:,} / {variant.parameter_count:,} | "
            f"{variant.size_bytes / 1e6:.1f} MB |"
        )
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
