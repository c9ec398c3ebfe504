"""The live line under a real pseudo-terminal, rendered by a terminal emulator (pyte): at most
one refresh a second, on the last row; the program's own output intact above it; nothing at
all when stderr is not a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ROWS, COLS = 24, 120
DRAW = f"\x1b[{ROWS};1H\x1b[2K\x1b[7m".encode()

PROGRAM = textwrap.dedent(
    """
    import sys, time
    for i in range(30):
        print(f"line {i:02d} " + "x" * 40, flush=True)
        if i == 15:  # a progress bar's way: carriage returns on one row
            for p in range(5):
                sys.stderr.write(f"\\rprogress {p * 25}%"); sys.stderr.flush(); time.sleep(0.02)
            sys.stderr.write("\\n")
        time.sleep(0.1)
    """
)

TRACKED = textwrap.dedent(
    """
    import footprint
    with footprint.track("live-in-code", live=True, sample_interval_s=0.05, store=STORE):
    """
) + textwrap.indent(PROGRAM, "    ")


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    store = str(tmp_path / "runs")
    return {
        "footprint run --live": [
            sys.executable, "-m", "footprint", "run", "--live", "--store", store,
            "--sample-interval", "0.05", "--", sys.executable, "-c", PROGRAM,
        ],
        "track(live=True)": [sys.executable, "-c", TRACKED.replace("STORE", repr(store))],
    }  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm"}


def _in_pty(cmd: list[str]) -> tuple[bytes, list[float], int]:
    """Run ``cmd`` on a 24x120 pseudo-terminal; its output, when each draw arrived, exit code."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    proc = subprocess.Popen(
        cmd, stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True
    )
    os.close(slave)
    out = bytearray()
    draws: list[float] = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            now = time.monotonic()
            draws += [now] * (bytes(out[-len(DRAW) :] + chunk).count(DRAW))
            out += chunk
    finally:
        os.close(master)
        rc = proc.wait(timeout=30)
    return bytes(out), draws, rc


@pytest.mark.parametrize("entry", ["footprint run --live", "track(live=True)"])
def test_the_line_refreshes_at_most_once_a_second_below_intact_output(tmp_path, entry):
    out, draws, rc = _in_pty(_commands(tmp_path)[entry])
    assert rc == 0, out.decode(errors="replace")[-2000:]
    assert len(draws) >= 2  # a 3-second run: drawn, then refreshed
    gaps = [b - a for a, b in zip(draws, draws[1:])]
    assert min(gaps) >= 0.8, gaps  # at most once a second (arrival times jitter a little)

    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    shown = []
    for piece in out.split(DRAW):
        stream.feed(DRAW + piece if shown or out.startswith(DRAW) else piece)
        shown.append(screen.display[ROWS - 1].rstrip())
    status = [s for s in shown if s.startswith("footprint ")]
    assert status, shown
    assert all(" | " in s and (" J" in s or "Wh" in s) for s in status)
    assert any(":00:0" in s for s in status)  # elapsed time
    # at the end: the row is cleared, and every line the program printed is intact, in order
    lines = [row.rstrip() for row in screen.display]
    assert lines[-1] == "" or not lines[-1].startswith("footprint ")
    printed = [row for row in lines if row.startswith("line ")]
    assert printed and all(row == f"{row[:8]}" + "x" * 40 for row in printed)
    numbers = [int(row[5:7]) for row in printed]
    assert numbers == list(range(numbers[0], 30))
    assert any(row.startswith("progress 100%") for row in lines)  # the bar's final state


def test_no_line_at_all_when_stderr_is_not_a_terminal(tmp_path):
    for cmd in _commands(tmp_path).values():
        proc = subprocess.run(cmd, capture_output=True, env=_env(), timeout=90)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert b"\x1b" not in proc.stderr and b"\x1b" not in proc.stdout
        assert proc.stdout.count(b"line ") == 30
