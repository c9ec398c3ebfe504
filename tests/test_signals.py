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

import footprint

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
    code = SCRIPT.format(tests=str(Path(__file__).parent), store=str(tmp_path), ckpt=ckpt)
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
    assert rec["status"] == "interrupted"
    assert rec["energy_kwh"] * 3.6e6 >= 100 * 0.5  # measured up to the last checkpoint
    assert any("last checkpoint" in n for n in rec["notes"])


def test_sigint_in_the_child_is_keyboard_interrupt_and_saved(tmp_path):
    proc, run_id = start(tmp_path)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) != 0
    assert json.loads((tmp_path / f"{run_id}.json").read_text())["status"] == "interrupted"
