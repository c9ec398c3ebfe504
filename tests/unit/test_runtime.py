"""The runtime object: one place for process-wide state, one reset, a fresh runtime after fork;
the listener interface; the sampler's injected clock."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from conftest import ConstantPowerSensor, FakeClock

import footprint
from footprint import runtime
from footprint.sampler import Sampler, sampler_thread


def test_reset_stops_the_sampler_thread_and_forgets_state(clock, store):
    with footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock):
        pass
    rt = runtime.get()
    assert rt.sampler is not None and rt.sampler.alive
    rt.warn_once("k")
    rt.cached("table", lambda: {"a": 1})
    runtime.reset()
    assert not [t for t in threading.enumerate() if t.name == "footprint-sampler"]
    fresh = runtime.get()
    assert fresh is not rt and fresh.sampler is None and fresh.warn_once("k")
    assert "table" not in fresh.data
    # and footprint works afterwards, starting a new thread
    with footprint.track("y", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock):
        pass
    assert runtime.get().sampler.alive


def test_reset_gives_signal_handlers_back(clock, store):
    before = signal.getsignal(signal.SIGTERM)
    tracker = footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock)
    tracker.__enter__()
    assert signal.getsignal(signal.SIGTERM) is not before
    runtime.reset()
    assert signal.getsignal(signal.SIGTERM) is before
    tracker.__exit__(None, None, None)


def _wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_the_waker_holds_the_wakeup_fd_only_while_a_run_is_active(clock, store):
    assert _wakeup_fd() == -1
    with footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock):
        armed = _wakeup_fd()
        waker = runtime.get().signals.waker
        assert armed != -1 and waker is not None
        assert signal.getsignal(waker.wake_signum).__name__ == "_woken"
    assert _wakeup_fd() == -1
    # the do-nothing handler stays: a poke on its way must not meet the default (terminate)
    assert signal.getsignal(waker.wake_signum).__name__ == "_woken"
    runtime.reset()
    with footprint.track("y", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock):
        # a reset's new waker takes the same signal back, not the next one down
        assert runtime.get().signals.waker.wake_signum == waker.wake_signum


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_the_waker_leaves_a_programs_own_wakeup_fd_alone(clock, store):
    import asyncio

    async def tracked() -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)  # sets asyncio's wakeup fd
        try:
            ours = _wakeup_fd()
            with footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock):
                assert _wakeup_fd() == ours, "footprint took asyncio's wakeup fd"
            assert _wakeup_fd() == ours
            return ours
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert asyncio.run(tracked()) != -1
    assert _wakeup_fd() == -1


def test_data_tables_are_loaded_once(monkeypatch):
    calls = []
    rt = runtime.get()
    assert rt.cached("t", lambda: calls.append(1) or 5) == 5
    assert rt.cached("t", lambda: calls.append(1) or 6) == 5
    assert calls == [1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_fresh_runtime_and_never_acts_for_the_parent(clock, store):
    sensors = [ConstantPowerSensor(clock, 10.0)]
    before = signal.getsignal(signal.SIGTERM)
    read, write = os.pipe()
    with footprint.track("parent", sensors=sensors, _clock=clock, store=store) as run:
        parent_rt = runtime.get()
        regions = runtime.get().cached("regions", dict)
        pid = os.fork()
        if pid == 0:  # the child: report what it sees, then leave the block as a fork would
            try:
                rt = runtime.get()
                facts = {
                    "fresh": rt is not parent_rt and rt.pid == os.getpid(),
                    "no_sampler": rt.sampler is None and rt.signals is None,
                    "tables_kept": rt.data.get("regions") is regions,
                    "handler_restored": signal.getsignal(signal.SIGTERM) is before,
                    "parents_wakeup_fd_let_go": _wakeup_fd() == -1,
                }
                os.write(write, json.dumps(facts).encode())
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        facts = json.loads(os.read(read, 4096))
        clock.advance(2.0)
        run.count(samples=3)
    assert status == 0
    assert facts == dict.fromkeys(facts, True)
    saved = footprint.Store(store).get(run.id)
    assert saved.status == "completed" and saved.counts == {"samples": 3}
    assert saved.pid == os.getpid()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaving_the_block_does_not_save_the_parents_run(clock, store):
    sensors = [ConstantPowerSensor(clock, 10.0)]
    tracker = footprint.track("parent", sensors=sensors, _clock=clock, store=store)
    with tracker as run:
        pid = os.fork()
        if pid == 0:
            try:
                tracker.__exit__(None, None, None)  # the child's copy of the with block ends
                run.end("failed", "child")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        clock.advance(1.0)
        run.count(queries=7)
    saved = footprint.Store(store).get(run.id)
    assert (saved.status, saved.counts, saved.pid) == ("completed", {"queries": 7}, os.getpid())


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_start(self, run):
        self.events.append(("start", run.name))

    def on_phase_start(self, run, phase):
        self.events.append(("phase_start", phase.path))

    def on_phase_end(self, run, phase):
        self.events.append(("phase_end", phase.path))

    def on_end(self, run, record):
        self.events.append(("end", record.status, record.energy_j))


def test_listeners_follow_runs_in_order(clock, store):
    everywhere, mine = Recorder(), Recorder()
    footprint.add_listener(everywhere)
    sensors = [ConstantPowerSensor(clock, 100.0)]
    with footprint.track("a", sensors=sensors, _clock=clock) as run:
        run.add_listener(mine)
        with run.phase("epoch"):
            clock.advance(1.0)
    assert everywhere.events == [
        ("start", "a"),
        ("phase_start", "epoch"),
        ("phase_end", "epoch"),
        ("end", "completed", pytest.approx(100.0)),
    ]
    assert mine.events == everywhere.events[1:]


def test_a_failing_listener_is_detached_and_noted_never_breaking_the_run(clock, store):
    class Broken:
        def on_phase_start(self, run, phase):
            raise RuntimeError("exporter down")

    footprint.add_listener(Broken())
    with footprint.track("a", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock) as run:
        with run.phase("p"):
            pass
        with run.phase("q"):
            pass
    notes = [n for n in run.record.notes if "listener Broken" in n]
    assert len(notes) == 1 and "exporter down" in notes[0]
    assert run.record.status == "completed"


def test_sampler_follows_its_injected_clock():
    clock = FakeClock(0.0)
    ticks = []
    sampler = Sampler(lambda: ticks.append(clock()), 1.0, clock=clock)
    sampler.start()
    try:
        time.sleep(0.2)
        assert ticks == []  # not due by its clock, however long real time runs
        clock.advance(1.0)
        deadline = time.monotonic() + 5
        while not ticks and time.monotonic() < deadline:
            with sampler_thread()._cond:
                sampler_thread()._cond.notify()
            time.sleep(0.01)
        assert ticks == [1.0]
        assert sampler.due_in() == pytest.approx(1.0)
    finally:
        sampler.stop()
