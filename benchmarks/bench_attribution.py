"""Per-unit figures on simulated sensors with known energy (issue 12's accuracy targets).

Usage::

    python benchmarks/bench_attribution.py

Three cases, each through ``footprint.track`` and ``footprint.leaderboard`` on simulated
hardware whose exact energy is known, printed as expected vs measured energy per 1,000 units:

- nested: 5 epochs of 8 s training (samples) with a 2 s eval phase (queries) inside each, and
  1 s of start-up, on a 100 W device;
- concurrent: 4 threads each serving 250 queries in its own phase, 36 s all open together;
- shared machine: a simulated RAPL package (60 W) and DRAM (6 W) on a simulated /proc where
  other processes use 3 of every 4 busy CPU-seconds, with an inference phase where they use 1.

``FOOTPRINT_CHECKOUT=DIR`` measures the footprint in another checkout instead (the fakes stay
this one's). Exit status 0 when every figure is within 1 % (the target), 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# FOOTPRINT_CHECKOUT=<dir>: measure another checkout's footprint (e.g. an older commit)
sys.path[:0] = [os.environ.get("FOOTPRINT_CHECKOUT", str(ROOT)), str(ROOT / "tests")]

from conftest import ConstantPowerSensor, FakeClock  # noqa: E402
from fakes.powercap import FakePowercap, constant  # noqa: E402
from fakes.procfs import FakeProc  # noqa: E402

import footprint  # noqa: E402

WH = 3600.0


def per_1k(record, unit: str) -> float:
    board = footprint.leaderboard(
        records=[record.replace(metrics={"accuracy": 0.9})], quality="accuracy", per=unit
    )
    return float(board["energy_wh_per_1k"].iloc[0])


def nested() -> list[tuple[str, float, float]]:
    clock = FakeClock()
    sensor = ConstantPowerSensor(clock, 100.0)
    with footprint.track("nested", sensors=[sensor], _clock=clock, save=False) as run:
        clock.advance(1.0)
        for _ in range(5):
            with run.phase("epoch"):
                clock.advance(8.0)
                run.count(samples=1000)
                with run.phase("eval"):
                    clock.advance(2.0)
                    run.count(queries=100)
    return [
        ("nested: queries in eval", 200.0 / 100 * 1000 / WH, per_1k(run.record, "queries")),
        ("nested: samples in epoch", 800.0 / 1000 * 1000 / WH, per_1k(run.record, "samples")),
    ]


def concurrent() -> list[tuple[str, float, float]]:
    clock = FakeClock()
    sensor = ConstantPowerSensor(clock, 100.0)
    started, done = threading.Barrier(5), threading.Barrier(5)
    with footprint.track("concurrent", sensors=[sensor], _clock=clock, save=False) as run:

        def serve() -> None:
            with run.phase("request"):
                started.wait()
                done.wait()
                run.count(queries=250)

        threads = [threading.Thread(target=serve) for _ in range(4)]
        for t in threads:
            t.start()
        started.wait()
        clock.advance(36.0)
        done.wait()
        for t in threads:
            t.join()
    return [("concurrent: 4 threads", 3600.0 / 1000 * 1000 / WH, per_1k(run.record, "queries"))]


def shared(tmp: Path) -> list[tuple[str, float, float]]:
    cap = FakePowercap(
        tmp / "sys",
        packages=1,
        psys=False,
        mmio_mirror=False,
        max_energy_range_uj=10**12,
        power={"intel-rapl:0": constant(60.0), "intel-rapl:0:2": constant(6.0)},
    )
    proc = FakeProc(tmp / "proc", cpus=4)
    opts = dict(powercap_root=cap.root, proc_root=proc.root, _clock=cap.clock, save=False)
    with footprint.track("shared", sample_interval_s=1000, **opts) as run:  # type: ignore[arg-type]
        for _ in range(4):
            cap.advance(1.0)
            proc.work(run_s=1.0, other_s=3.0)
            assert run.energy_j >= 0  # a reading per second, as the sampler takes them
        with run.phase("inference"):
            for _ in range(2):
                cap.advance(1.0)
                proc.work(run_s=3.0, other_s=1.0)
                run.count(queries=500)
    expected = 66.0 * 2 * 0.75 / 1000 * 1000 / WH  # the run's 3/4 of 2 s at 66 W
    whole = 66.0 * 2 / 1000 * 1000 / WH  # what charging the whole machine would give
    rows = [("shared machine: the run's share", expected, per_1k(run.record, "queries"))]
    print(f"  (the whole machine's figure would be {whole:.6g} Wh/1k, {whole / expected:.2f}x)")
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rows = nested() + concurrent()
        try:
            rows += shared(Path(tmp))
        except footprint.FootprintError as exc:  # a footprint without proc_root (comparisons)
            print(f"  shared machine: not measurable with this footprint ({exc})")
    ok = True
    print(f"{'case':36s} {'expected Wh/1k':>15s} {'measured':>12s} {'error':>9s}")
    for name, expected, got in rows:
        err = (got - expected) / expected
        ok &= abs(err) <= 0.01
        print(f"{name:36s} {expected:15.6g} {got:12.6g} {100 * err:8.4f} %")
    print("all within 1 %" if ok else "MISSED: some figure is more than 1 % off")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
