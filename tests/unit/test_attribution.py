"""Per-unit attribution (issue: nested and concurrent phases), through the public API on sensors
of known power driven by a fake clock: every expected figure is worked out by hand."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.attribution import run_share

POWER_W = 100.0  # one device: every joule below is 100 x seconds


def track(clock, **kw):
    sensor = ConstantPowerSensor(clock, POWER_W, "gpu:0", "gpu")
    return footprint.track("attr", sensors=[sensor], _clock=clock, save=False, **kw)


def wh_per_1k(share) -> float:
    return share.energy_j / share.units * 1000 / 3600


def test_units_belong_to_the_innermost_phase_that_counted_them(clock):
    # docs/tracking.md's pattern: an eval phase inside each epoch, queries counted in eval,
    # samples counted in the epoch. Per epoch: 8 s training (800 J) + 2 s eval (200 J).
    with track(clock) as run:
        for _ in range(3):
            with run.phase("epoch"):
                clock.advance(8.0)
                run.count(samples=1000)
                with run.phase("eval"):
                    clock.advance(2.0)
                    run.count(queries=50)
    record = run.record
    epoch = record.phases[0]
    assert epoch.counts == {"samples": 1000, "queries": 50}  # inclusive, as before
    assert epoch.own_counts == {"samples": 1000}
    assert record.phases[1].own_counts == {"queries": 50} and record.phases[1].parent == 0
    queries = run_share(record, "queries")
    assert queries.energy_j == pytest.approx(3 * 200.0)  # the eval phases only: not the epochs
    assert queries.units == 150
    samples = run_share(record, "samples")
    assert samples.energy_j == pytest.approx(3 * 800.0)  # epoch minus eval
    # --phase stays an explicit choice: the epochs' whole energy over the queries counted in them
    chosen = run_share(record, "queries", phase="epoch")
    assert chosen.energy_j == pytest.approx(3000.0) and chosen.units == 150


def test_sub_phases_that_counted_nothing_stay_in_and_time_between_steps_is_left_out(clock):
    with track(clock) as run:
        with run.phase("epoch"):
            for _ in range(4):
                with run.phase("step"):  # counts nothing: stays in the epoch's samples
                    clock.advance(1.0)
                run.count(samples=10)
                clock.advance(0.5)  # between steps
        with run.phase("epoch2"):
            for _ in range(4):
                with run.phase("step"):
                    clock.advance(1.0)
                    run.count(tokens=10)  # counted in the step: the gaps are not theirs
                clock.advance(0.5)
    samples = run_share(run.record, "samples")
    assert samples.energy_j == pytest.approx(600.0) and samples.units == 40
    tokens = run_share(run.record, "tokens")
    assert tokens.energy_j == pytest.approx(400.0) and tokens.units == 40


def test_units_counted_outside_every_phase_get_the_run_minus_phases_counting_others(clock):
    with track(clock) as run:
        clock.advance(1.0)  # start-up
        with run.phase("train"):
            clock.advance(5.0)
            run.count(samples=100)
        with run.phase("predict"):  # counts nothing itself
            clock.advance(2.0)
        run.count(queries=20)  # counted once predictions are done
    queries = run_share(run.record, "queries")
    assert queries.energy_j == pytest.approx(300.0) and queries.whole_run  # run - train
    samples = run_share(run.record, "samples")
    assert samples.energy_j == pytest.approx(500.0) and not samples.whole_run
    # --phase predict: its energy over the units counted outside every phase
    assert run_share(run.record, "queries", phase="predict").energy_j == pytest.approx(200.0)


def test_concurrent_phases_in_threads_divide_their_overlap(clock):
    # Two requests served at once in two threads: 36 s with both open at 100 W = 3600 J, 500
    # queries each. Each phase gets half; together they are the run, never twice it.
    started = threading.Barrier(3)
    done = threading.Barrier(3)
    with track(clock) as run:

        def serve() -> None:
            with run.phase("request"):
                started.wait()
                done.wait()
                run.count(queries=500)

        threads = [threading.Thread(target=serve) for _ in range(2)]
        for t in threads:
            t.start()
        started.wait()
        clock.advance(36.0)
        done.wait()
        for t in threads:
            t.join()
    record = run.record
    requests = [p for p in record.phases if p.name == "request"]
    assert [p.total_energy_j for p in requests] == pytest.approx([3600.0, 3600.0])  # raw window
    assert [p.attributed_j for p in requests] == pytest.approx([1800.0, 1800.0])
    share = run_share(record, "queries")
    assert wh_per_1k(share) == pytest.approx(1.0)  # not 2.0
    board = footprint.leaderboard(records=[record.replace(metrics={"accuracy": 0.9})],
                                  quality="accuracy", per="queries")  # fmt: skip
    assert board["energy_wh_per_1k"].iloc[0] == pytest.approx(1.0)


def test_overlap_is_divided_by_wall_time_and_ancestors_are_not_concurrent(clock):
    # Task A: 0-4 s alone, 4-6 s with B; B: 4-10 s (6-10 alone). Inside A, a sub-phase for
    # 0-2 s. Overlap 4-6 (200 J) split in two.
    async def main(run) -> None:
        async def a() -> None:
            with run.phase("a"):
                with run.phase("inner"):
                    clock.advance(2.0)
                clock.advance(2.0)
                await asyncio.sleep(0)  # b opens at t=4
                clock.advance(2.0)
                run.count(queries=1)

        async def b() -> None:
            with run.phase("b"):
                await asyncio.sleep(0)
                await asyncio.sleep(0)  # a closes at t=6
                clock.advance(4.0)
                run.count(queries=1)

        await asyncio.gather(a(), b())

    with track(clock) as run:
        asyncio.run(main(run))
    by_path = {p.path: p for p in run.record.phases}
    assert by_path["a/inner"].attributed_j == pytest.approx(200.0)  # parent open: not shared
    assert by_path["a"].attributed_j == pytest.approx(400 + 100.0)
    assert by_path["b"].attributed_j == pytest.approx(100 + 400.0)
    tops = sum(p.attributed_j for p in run.record.phases if p.parent is None)
    assert tops == pytest.approx(run.record.energy_j)  # phases add up to the run, not more
    assert run_share(run.record, "queries").energy_j == pytest.approx(1000.0)


def test_a_live_record_includes_the_open_phases_share_so_far(clock):
    with track(clock) as run:
        with run.phase("serve"):
            clock.advance(3.0)
            live = run.record
    assert live.phases[0].attributed_j == pytest.approx(300.0)
    assert run.record.phases[0].attributed_j == pytest.approx(300.0)
