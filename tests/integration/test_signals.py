"""SIGTERM, SIGKILL and checkpoints, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import footprint

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier

SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import ConstantPowerSensor
    import footprint

    class Clock:
        def __call__(self):
            return time.monotonic()

    with footprint.track("victim", store={store!r}, checkpoint_interval_s={ckpt},
                         sensors=[ConstantPowerSensor(Clock(), 100.0)]) as run:
        print(run.id, flush=True)
        time.sleep(60)
    """
)


def start(tmp_path: Path, ckpt: float = 60.0) -> tuple[subprocess.Popen, str]:
    code = SCRIPT.format(
        tests=str(Path(__file__).resolve().parents[1]), store=str(tmp_path), ckpt=ckpt
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert run_id, "the child did not start its run"
    return proc, run_id


def test_sigterm_saves_interrupted_then_terminates_as_sigterm_would(tmp_path):
    proc, run_id = start(tmp_path)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM  # the signal still did what it does
    rec = json.loads((tmp_path / f"{run_id}.json").read_text())
    assert rec["status"] == "interrupted"
    assert rec["error"] == "SIGTERM"
    assert rec["energy_kwh"] * 3.6e6 >= 100 * 0.4  # the energy until the signal


def test_killed_process_leaves_a_checkpoint_read_back_as_interrupted(tmp_path):
    proc, run_id = start(tmp_path, ckpt=0.2)
    time.sleep(1.0)
    before = json.loads((tmp_path / f"{run_id}.json").read_text())
    assert before["status"] == "running" and before["heartbeat_at"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)  # > 2 x checkpoint interval: the heartbeat is stale
    rec = footprint.Store(tmp_path).get(run_id[:8])
    assert rec.status == "interrupted"
    assert rec.energy_kwh * 3.6e6 >= 100 * 0.5  # measured up to the last checkpoint
    assert any("last checkpoint" in n for n in rec.notes)


def test_sigint_in_the_child_is_keyboard_interrupt_and_saved(tmp_path):
    proc, run_id = start(tmp_path)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) in (-signal.SIGINT, 130)  # died of KeyboardInterrupt
    rec = json.loads((tmp_path / f"{run_id}.json").read_text())
    assert rec["status"] == "interrupted" and rec["error"].startswith("KeyboardInterrupt")


def child(code: str) -> subprocess.Popen:
    prelude = textwrap.dedent(
        f"""
        import sys, time, os, signal, json
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from conftest import ConstantPowerSensor
        import footprint
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_programs_own_sigterm_handler_runs_and_its_runs_go_on(tmp_path):
    proc = child(
        f"""
        stop = []
        signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
        with footprint.track("graceful", store={str(tmp_path)!r},
                             sensors=[ConstantPowerSensor(time.monotonic, 10.0)]) as run:
            for step in range(200):
                with run.phase("step"):
                    time.sleep(0.01)
                    run.count(samples=1)
                if step == 5:
                    os.kill(os.getpid(), signal.SIGTERM)
                if stop:
                    break  # the program's graceful shutdown: finish the step, leave
        print(json.dumps([run.status, run.error, run.counts["samples"]]))
        """
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    status, error, samples = json.loads(out)
    assert (status, error) == ("interrupted", "SIGTERM")
    assert samples >= 6  # the run went on after the signal until the program stopped it


def test_sigterm_arriving_inside_footprints_own_read_waits_and_saves(tmp_path):
    """The signal lands while a sensor's lock is held: no deadlock, the record is saved."""
    proc = child(
        f"""
        class Nasty(ConstantPowerSensor):
            calls = 0
            def read(self):
                Nasty.calls += 1
                if Nasty.calls == 4:
                    os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode
                    time.sleep(0.05)
                return super().read()

        with footprint.track("x", store={str(tmp_path)!r}, sample_interval_s=1000,
                             sensors=[Nasty(time.monotonic, 10.0)]) as run:
            print(run.id, flush=True)
            for _ in range(10):
                with run.phase("p"):
                    pass
        """
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    rec = json.loads((tmp_path / f"{out.strip()}.json").read_text())
    assert rec["status"] == "interrupted" and rec["error"] == "SIGTERM"


def test_sigterm_with_power_polled_gpus_never_hangs(tmp_path):
    from fakes import FakeNvml, FakeNvmlBuildError, PowerProgram, build_fake_nvml

    try:
        lib_dir = build_fake_nvml(tmp_path / "lib")
    except FakeNvmlBuildError as exc:
        import pytest

        pytest.skip(str(exc))
    env = FakeNvml(program=PowerProgram(t0_s=time.monotonic()), counter_gpus=[]).env(lib_dir)
    code = f"""
import time, footprint
with footprint.track("poll", store={str(tmp_path / "s")!r}, powercap_root="/nonexistent") as run:
    print("go", flush=True)
    while True:
        with run.phase("step"):
            run.count(samples=1)
"""
    for delay_s in (0.05, 0.2, 0.45):
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "go"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM
    statuses = [json.loads(p.read_text())["status"] for p in (tmp_path / "s").glob("*.json")]
    assert statuses == ["interrupted"] * 3


def test_ctrl_c_on_an_async_entry_point_is_interrupted(tmp_path):
    proc = child(
        f"""
        import asyncio

        @footprint.track("serve", store={str(tmp_path)!r},
                         sensors=[ConstantPowerSensor(time.monotonic, 10.0)])
        async def serve():
            print("up", flush=True)
            await asyncio.sleep(60)

        asyncio.run(serve())
        """
    )
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    (rec_file,) = tmp_path.glob("*.json")
    assert json.loads(rec_file.read_text())["status"] == "interrupted"
