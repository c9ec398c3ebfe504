"""Running one fault case in a fresh interpreter, and reading back what it saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

PRELUDE = """
import json, os, signal, sys, time
sys.path.insert(0, {tests!r})
from conftest import ConstantPowerSensor, FakeClock
import footprint
STORE = {store!r}
def sensors(power_w=100.0):
    return [ConstantPowerSensor(FakeClock(time.monotonic()), power_w)]
"""


def script(body: str, store: Path) -> str:
    return PRELUDE.format(tests=str(TESTS), store=str(store)) + textwrap.dedent(body)


def run_case(
    body: str, store: Path, timeout_s: float = 60, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``body`` (after the prelude) in a fresh interpreter; return the finished process."""
    return subprocess.run(
        [sys.executable, "-c", script(body, store)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        **kwargs,
    )


def start_case(body: str, store: Path, **kwargs) -> subprocess.Popen:
    """Start ``body`` in a fresh interpreter, in a session of its own (its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-c", script(body, store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def wait_for(path: Path, timeout_s: float = 30) -> str:
    """The contents of ``path`` once the case has written it (bounded in time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise TimeoutError(f"{path} was not written within {timeout_s} s")


def saved(store: Path) -> list[dict]:
    """Every record file in ``store``, as the JSON on disk."""
    return [json.loads(p.read_text()) for p in sorted(store.glob("*.json"))]


def footprint_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "footprint", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
