"""Fault injection, the command line and the store: bad paths and values, damaged and hostile
store files, a read-only store, a full disk, and `footprint run` under signals."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import footprint_cli, run_case, saved, start_case, wait_for

pytestmark = pytest.mark.slow


def one_run(store: Path) -> None:
    res = run_case(
        """
        with footprint.track("ok", sensors=sensors(), store=STORE, region="FR") as run:
            run.count(queries=3)
        run.log(accuracy=0.9)
        """,
        store,
    )
    assert res.returncode == 0, res.stderr


def one_line_error(res: subprocess.CompletedProcess) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert "Traceback" not in res.stderr, res.stderr
    assert lines and lines[0].startswith("footprint: error:"), res.stderr
    return lines[0]


def test_an_unwritable_output_is_one_line_and_a_nonzero_exit(tmp_path):
    one_run(tmp_path / "s")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = footprint_cli("report", "-o", str(blocker / "r.html"), "--store", str(tmp_path / "s"))
    assert res.returncode != 0 and "cannot create" in one_line_error(res)
    # a directory that exists but cannot be written (procfs): the OSError itself, one line
    res = footprint_cli(
        "report", "-o", "/proc/footprint-report.html", "--store", str(tmp_path / "s")
    )
    assert res.returncode == 1 and "/proc" in one_line_error(res)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["runs", "--store", ""], "--store"),
        (["runs", "--store", "/no/such/store"], "no run store at '/no/such/store'"),
        (
            ["leaderboard", "--quality", "a", "--per", "q", "--store", "/nonexistent"],
            "no run store",
        ),
        (["whatif", "x", "--kind", "planet"], "--kind must be one of country"),
    ],
)
def test_bad_command_line_input_is_refused_clearly(argv, message, tmp_path):
    res = footprint_cli(*argv)
    assert res.returncode in (1, 2) and message in one_line_error(res)


def test_a_missing_fallback_store_is_empty_not_an_error(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "footprint", "runs"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "FOOTPRINT_DIR"},
        timeout=60,
    )
    assert res.returncode == 0 and "no runs" in res.stdout


def test_intervals_beyond_what_a_timer_can_wait_are_refused(tmp_path):
    res = run_case(
        """
        for kw in ({"sample_interval_s": 1e9}, {"checkpoint_interval_s": float("inf")}):
            try:
                footprint.track("x", **kw)
            except ValueError as e:
                print("refused:", e)
        """,
        tmp_path,
    )
    assert res.stdout.count("refused:") == 2, res.stderr


def test_damaged_mistyped_and_symlinked_store_files_are_skipped(tmp_path):
    store = tmp_path / "s"
    one_run(store)
    (good,) = saved(store)
    (store / ("1" * 32 + ".json")).write_text('{"id": "' + "1" * 32 + '", "start')  # truncated
    (store / ("2" * 32 + ".json")).write_bytes(b"\xff\xfe\x00garbage")  # not UTF-8
    (store / ("3" * 32 + ".json")).write_text(json.dumps({**good, "id": "3" * 32, "pue": "x"}))
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({**good, "id": "4" * 32}))
    (store / ("4" * 32 + ".json")).symlink_to(outside)  # a link: read as what it points at
    (store / ("5" * 32 + ".json")).symlink_to(tmp_path / "dangling.json")
    res = footprint_cli("runs", "--format", "json", "--store", str(store))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    ids = {r["id"] for r in json.loads(res.stdout)}
    assert ids == {good["id"], "4" * 32}
    warned = [line for line in res.stderr.splitlines() if "skipping run file" in line]
    assert len(warned) == 4


def _as_root_with_mount() -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root (mount a small tmpfs) to make a read-only store or a full disk")


@pytest.fixture
def tmpfs(tmp_path):
    _as_root_with_mount()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)])
    if mounted.returncode != 0:
        pytest.skip("mount -t tmpfs is not allowed here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_a_read_only_store_fails_before_the_tracked_code_runs(tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    res = run_case(
        """
        try:
            with footprint.track("x", sensors=sensors(), store=os.path.join(STORE, "runs")):
                print("body ran")
        except footprint.FootprintError as e:
            print("refused:", e)
        """,
        tmpfs,
    )
    assert "body ran" not in res.stdout and "cannot write run store" in res.stdout


def test_a_full_disk_loses_the_save_not_the_run(tmpfs):
    (tmpfs / "filler").write_bytes(b"\0" * 200_000)
    res = run_case(
        """
        import warnings
        with footprint.track("x", sensors=sensors(), store=STORE) as run:
            with open(os.path.join(STORE, "filler2"), "wb") as f:   # the disk fills up
                try:
                    f.write(b"\\0" * 10_000_000)
                except OSError:
                    pass
            run.count(samples=1)
        print("finished", run.record.status)
        """,
        tmpfs,
    )
    assert res.returncode == 0 and "finished completed" in res.stdout, res.stderr
    assert "could not save run" in res.stderr or "cannot checkpoint" in res.stderr


CHILD = """
import signal, sys, time
got = []
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, lambda n, f: got.append(n))
print("ready", flush=True)
t = time.time()
while time.time() - t < 5 and len(got) < {n}:
    time.sleep(0.02)
time.sleep(0.3)  # would a second copy arrive?
print("child got", sorted(got), flush=True)
sys.exit(len(got))
"""


def test_footprint_run_forwards_each_signal_sent_to_it_once(tmp_path):
    store = tmp_path / "s"
    proc = subprocess.Popen(
        [sys.executable, "-m", "footprint", "run", "--store", str(store), "--",
         sys.executable, "-c", CHILD.format(n=3)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):  # to the wrapper's pid alone
        os.kill(proc.pid, sig)
        time.sleep(0.2)
    out, err = proc.communicate(timeout=30)
    assert "child got [1, 2, 15]" in out
    assert proc.returncode == 3  # the command's own exit status
    (rec,) = saved(store)
    assert rec["status"] == "interrupted"
    assert "SIGINT, SIGHUP, SIGTERM to footprint run" in rec["error"]


def test_a_terminals_ctrl_c_reaches_the_command_once(tmp_path):
    store = tmp_path / "s"
    pid, fd = pty.fork()
    if pid == 0:  # the child: footprint run in the foreground of a new terminal
        argv = ["-m", "footprint", "run", "--store", str(store), "--"]
        os.execv(sys.executable, [sys.executable, *argv, sys.executable, "-c", CHILD.format(n=2)])
    output = b""
    deadline = time.monotonic() + 30
    while b"ready" not in output and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            output += os.read(fd, 4096)
    os.write(fd, b"\x03")  # Ctrl-C: the terminal signals the whole foreground group
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(fd)
    text = output.decode(errors="replace")
    assert "child got [2]" in text, text  # once: not also forwarded by footprint run


def test_a_command_that_does_not_exist_exits_127_with_one_line(tmp_path):
    res = footprint_cli("run", "--store", str(tmp_path / "s"), "--", "no-such-command-xyz")
    assert res.returncode == 127
    assert "cannot run 'no-such-command-xyz'" in one_line_error(res)
    (rec,) = saved(tmp_path / "s")
    assert rec["status"] == "failed"


def test_sigterm_to_a_tracked_program_saves_interrupted_and_terminates(tmp_path):
    proc = start_case(
        """
        with footprint.track("term", sensors=sensors(), store=STORE) as run:
            run.count(samples=4)
            open(os.path.join(STORE, "ready"), "w").write("1")
            time.sleep(30)
        """,
        tmp_path,
    )
    wait_for(tmp_path / "ready")
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    (rec,) = saved(tmp_path)
    assert (rec["status"], rec["error"], rec["counts"]) == (
        "interrupted",
        "SIGTERM",
        {"samples": 4},
    )
