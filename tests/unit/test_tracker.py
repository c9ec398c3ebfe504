"""The tracker through its public API, on in-process sensors driven by a fake clock."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.errors import StoreError, UsageError


def sensors(clock):
    return [
        ConstantPowerSensor(clock, 250.0, "gpu:0", "gpu"),
        ConstantPowerSensor(clock, 40.0, "cpu", "cpu", measured=False),
    ]


def test_context_manager_totals_are_exact_counter_differences(clock, store):
    devs = sensors(clock)
    with footprint.track("train", sensors=devs, _clock=clock, carbon_intensity=100) as run:
        clock.advance(12.5)
    assert run.status == "completed"
    assert run.duration_s == pytest.approx(12.5)
    assert run.energy_j == pytest.approx(290.0 * 12.5)
    assert run.energy_kwh == pytest.approx(290.0 * 12.5 / 3.6e6)
    assert run.emissions_kg == pytest.approx(290.0 * 12.5 / 3.6e6 * 100 / 1000)
    rec = run.to_dict()
    by_id = {d["id"]: d for d in rec["devices"]}
    assert by_id["gpu:0"]["energy_j"] == pytest.approx(250 * 12.5)
    assert by_id["gpu:0"]["measured"] is True and by_id["cpu"]["measured"] is False
    assert by_id["cpu"]["method"] == "estimate:fake"
    saved = json.loads((store / f"{run.id}.json").read_text())
    assert saved["energy_kwh"] == pytest.approx(rec["energy_kwh"])
    assert saved["status"] == "completed"


def test_phases_nest_repeat_and_get_exact_energy_and_counts(clock, store):
    with footprint.track("train", sensors=sensors(clock), _clock=clock) as run:
        clock.advance(1.0)  # outside any phase
        for _ in range(2):
            with run.phase("epoch"):
                clock.advance(2.0)
                with run.phase("eval"):
                    clock.advance(0.5)
                    run.count(samples=10)
                run.count(samples=5)
        run.count(samples=1)
    rec = run.to_dict()
    paths = [p["path"] for p in rec["phases"]]
    assert paths == ["epoch", "epoch/eval", "epoch", "epoch/eval"]
    epoch, ev = rec["phases"][0], rec["phases"][1]
    assert epoch["energy_j"]["gpu:0"] == pytest.approx(250 * 2.5)
    assert ev["energy_j"]["cpu"] == pytest.approx(40 * 0.5)
    assert epoch["start_s"] == pytest.approx(1.0) and epoch["end_s"] == pytest.approx(3.5)
    assert rec["phases"][2]["start_s"] == pytest.approx(3.5)
    assert epoch["counts"] == {"samples": 15} and ev["counts"] == {"samples": 10}
    assert rec["counts"] == {"samples": 31}


def test_bare_decorator_and_decorator_with_arguments(clock, store):
    @footprint.track
    def plain():
        assert footprint.current_run() is not None
        return 42

    @footprint.track("named", sensors=sensors(clock), _clock=clock, tags={"lr": 0.1})
    def step(x):
        clock.advance(3.0)
        footprint.current_run().count(samples=x)
        return x * 2

    assert plain() == 42
    assert plain.last_run.name.endswith("plain")
    assert step(4) == 8
    assert step.last_run.energy_j == pytest.approx(290 * 3.0)
    assert step.last_run.counts == {"samples": 4}
    assert step.last_run.tags == {"lr": "0.1"}
    first = step.last_run
    step(1)
    assert step.last_run is not first  # each call is a new run
    assert footprint.current_run() is None


def test_async_function_decorator(clock, store):
    @footprint.track("async-job", sensors=sensors(clock), _clock=clock)
    async def job():
        clock.advance(2.0)
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(job()) == "done"
    assert job.last_run.energy_j == pytest.approx(580.0)
    assert job.last_run.status == "completed"


def test_user_exception_propagates_unchanged_and_run_saved_as_failed(clock, store):
    boom = RuntimeError("user bug")
    with pytest.raises(RuntimeError) as info:
        with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
            clock.advance(1.0)
            with run.phase("inner"):
                raise boom
    assert info.value is boom
    rec = json.loads((store / f"{run.id}.json").read_text())
    assert rec["status"] == "failed"
    assert rec["error"] == "RuntimeError: user bug"
    assert rec["phases"][0]["end_s"] == pytest.approx(1.0)  # open phase closed with the run


def test_keyboard_interrupt_saves_interrupted(clock, store):
    with pytest.raises(KeyboardInterrupt):
        with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
            raise KeyboardInterrupt
    assert json.loads((store / f"{run.id}.json").read_text())["status"] == "interrupted"


def test_sensor_failure_degrades_and_is_recorded(clock, store):
    devs = sensors(clock)
    devs[0].fail_after = clock() + 5.0
    with footprint.track("x", sensors=devs, _clock=clock, sample_interval_s=1000) as run:
        clock.advance(4.0)
        assert run.energy_j == pytest.approx(290 * 4.0)  # a read while the sensor works
        clock.advance(6.0)
    rec = run.to_dict()
    gpu = next(d for d in rec["devices"] if d["id"] == "gpu:0")
    assert gpu["energy_j"] == pytest.approx(250 * 4.0)  # up to its last good read
    assert "went away" in gpu["error"]
    assert any("gpu:0 stopped being readable" in n for n in rec["notes"])
    assert run.status == "completed"


def test_timeline_is_bounded_and_sums_to_totals(clock, store):
    import threading
    import time

    devs = sensors(clock)
    stop = threading.Event()

    def tick_clock():  # the fake clock moves while the real sampler thread samples
        while not stop.is_set():
            clock.advance(0.05)
            time.sleep(0.0005)

    mover = threading.Thread(target=tick_clock)
    with footprint.track(
        "long", sensors=devs, _clock=clock, sample_interval_s=0.001, max_timeline_points=8
    ) as run:
        mover.start()
        time.sleep(0.3)
        stop.set()
        mover.join()
    tl = run.to_dict()["timeline"]
    n = len(tl["t_s"]) - 1
    assert 1 <= n <= 8
    assert tl["t_s"][0] == 0.0
    assert tl["t_s"][-1] == pytest.approx(run.duration_s, abs=1e-6)
    gpu_j = sum(p * (b - a) for p, a, b in zip(tl["power_w"]["gpu:0"], tl["t_s"], tl["t_s"][1:]))
    assert gpu_j == pytest.approx(250 * run.duration_s, rel=1e-6)


def test_misuse_errors_say_the_fix(clock, store, tmp_path):
    tracker = footprint.track("x", sensors=sensors(clock), _clock=clock)
    with tracker as run:
        with pytest.raises(UsageError, match="already running"):
            tracker.__enter__()
    with pytest.raises(UsageError, match="after run 'x' ended"):
        with run.phase("late"):
            pass
    with pytest.raises(UsageError, match="after run 'x' ended"):
        run.count(samples=1)
    with pytest.raises(UsageError, match="cannot decorate a class"):

        @footprint.track("x")
        class Model:
            pass

    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    ran = []
    with pytest.raises(StoreError, match="is a file, not a directory"):
        with footprint.track("x", store=a_file, sensors=sensors(clock)):
            ran.append(1)
    assert ran == []  # failed before the user's code


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"samples": -1}, "samples"), ({"tokens": math.nan}, "tokens"), ({"q": "3"}, "q")],
)
def test_bad_counts_raise_value_error_naming_the_field(clock, store, kwargs, field):
    with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
        with pytest.raises(ValueError, match=field):
            run.count(**kwargs)
        with pytest.raises(ValueError, match=field):
            run.log(**kwargs)
    assert run.counts == {} and run.metrics == {}


def test_log_after_the_block_updates_the_saved_record(clock, store):
    with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
        clock.advance(1)
    run.log(accuracy=0.93)
    saved = json.loads((store / f"{run.id}.json").read_text())
    assert saved["metrics"] == {"accuracy": 0.93}


def test_no_region_leaves_emissions_empty_with_a_note(clock, store):
    with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
        clock.advance(1)
    rec = run.to_dict()
    assert rec["emissions_kg"] is None and run.emissions_kg is None
    assert any("region" in n for n in rec["notes"])


def test_bad_arguments_fail_at_track_call():
    with pytest.raises(ValueError, match="sample_interval_s"):
        footprint.track("x", sample_interval_s=0)
    with pytest.raises(ValueError, match="cpu_utilisation"):
        footprint.track("x", cpu_utilisation="gpu")
    with pytest.raises(UsageError, match="run name"):
        footprint.track(3)


def test_runs_share_one_parked_sampler_thread_and_leak_none(clock, store):
    import threading

    for _ in range(20):
        with footprint.track("x", sensors=sensors(clock), _clock=clock, sample_interval_s=0.001):
            clock.advance(1.0)
    names = [t.name for t in threading.enumerate() if t.name.startswith("footprint")]
    assert names == ["footprint-sampler"]


def test_phases_in_concurrent_threads_nest_and_count_only_their_own(clock, store):
    import threading

    barrier = threading.Barrier(2)

    def request(run, name, n):
        with run.phase(name):
            barrier.wait()  # both phases open at once
            run.count(requests=n)
            barrier.wait()

    with footprint.track("server", sensors=sensors(clock), _clock=clock) as run:
        threads = [
            threading.Thread(target=request, args=(run, name, n))
            for name, n in (("req-a", 1), ("req-b", 10))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    phases = {p["path"]: p["counts"] for p in run.to_dict()["phases"]}
    assert phases == {"req-a": {"requests": 1}, "req-b": {"requests": 10}}
    assert run.counts == {"requests": 11}


def test_generators_cannot_be_decorated_and_the_error_says_why():
    with pytest.raises(UsageError, match="generator"):

        @footprint.track("x")
        def batches():
            yield 1

    with pytest.raises(UsageError, match="generator"):

        @footprint.track
        async def stream():
            yield 1


def test_a_run_that_outlives_a_chdir_keeps_its_store(clock, tmp_path, monkeypatch):
    import os

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with footprint.track("x", store="runs", sensors=sensors(clock), _clock=clock) as run:
        os.chdir(tmp_path / "b")
    assert run.path == tmp_path / "a" / "runs" / f"{run.id}.json"
    assert not (tmp_path / "b" / "runs").exists()


def test_numpy_scalars_count_and_huge_numbers_fail_clearly(clock, store):
    np = pytest.importorskip("numpy")
    with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
        run.count(tokens=np.int64(32), samples=np.float32(2.0))
        run.log(accuracy=np.float64(0.5))
        with pytest.raises(ValueError, match="tokens must be finite"):
            run.count(tokens=10**400)
    assert run.counts == {"tokens": 32, "samples": 2.0}
    assert type(run.counts["tokens"]) is int and run.metrics == {"accuracy": 0.5}
    json.dumps(run.to_dict())  # plain JSON, no numpy types


def test_a_user_sensor_with_a_bug_degrades_instead_of_hanging_the_run(clock, store):
    import threading

    class Broken(ConstantPowerSensor):
        def read(self):
            raise ValueError("bad JSON from the smart plug")

    devs = [*sensors(clock), Broken(clock, 1.0, "plug", "cpu")]
    with footprint.track("x", sensors=devs, _clock=clock) as run:
        clock.advance(2.0)
    rec = run.to_dict()
    plug = next(d for d in rec["devices"] if d["id"] == "plug")
    assert rec["status"] == "completed" and "bad JSON" in plug["error"]
    assert rec["devices"][0]["energy_j"] == pytest.approx(500.0)
    assert json.loads(run.path.read_text())["status"] == "completed"
    assert [t for t in threading.enumerate() if t.name == "footprint-sampler"]  # parked, one


def test_log_after_the_run_never_crashes_on_a_broken_store(clock, store):
    import shutil

    with footprint.track("x", sensors=sensors(clock), _clock=clock) as run:
        pass
    shutil.rmtree(store)
    store.write_text("now a file")
    with pytest.warns(footprint.FootprintWarning, match="could not save"):
        run.log(accuracy=0.9)
    assert run.metrics == {"accuracy": 0.9}


def test_so_far_gives_energy_time_and_emissions_from_one_reading(clock, store):
    sensor = ConstantPowerSensor(clock, 100.0, "cpu:0", kind="cpu")
    reads = []
    real_read = sensor.read
    sensor.read = lambda: reads.append(1) or real_read()  # type: ignore[method-assign]
    live = footprint.track(
        "live", sensors=[sensor], _clock=clock, carbon_intensity=500, sample_interval_s=86400
    )  # no sampler tick reads the sensor meanwhile
    with live as run:
        clock.advance(36.0)
        before = len(reads)
        energy_j, duration_s, emissions_kg = run.so_far()
        assert len(reads) - before == 1
        assert (energy_j, duration_s) == (pytest.approx(3600.0), pytest.approx(36.0))
        assert emissions_kg == pytest.approx(0.001 * 0.5)  # 1 Wh at 500 g/kWh
        assert (run.energy_j, run.duration_s) == (pytest.approx(energy_j), pytest.approx(36.0))
    assert run.so_far() == (run.energy_j, run.duration_s, run.record.emissions_kg)


def test_a_count_or_metric_without_a_name_is_refused(clock, store):
    """Bug: run.log(**{"": 0.5}) was saved as a metric with an empty name."""
    with footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock) as run:
        for call in (run.log, run.count):
            with pytest.raises(ValueError, match="needs a name"):
                call(**{"": 1.0})
            with pytest.raises(ValueError, match="needs a name"):
                call(**{"  ": 1.0})
        run.log(accuracy=0.5)
    assert run.record.metrics == {"accuracy": 0.5} and run.record.counts == {}
