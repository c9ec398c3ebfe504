"""Fault injection, processes: forked children, signals to the process group, runs that never
ended, killed processes, many writers. Each case runs in fresh interpreters and checks what was
saved, not only that nothing crashed."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from helpers import footprint_cli, run_case, saved, start_case, wait_for

pytestmark = pytest.mark.slow


def test_a_forked_child_leaving_the_block_never_overwrites_the_parents_run(tmp_path):
    res = run_case(
        """
        with footprint.track("parent", sensors=sensors(), store=STORE) as run:
            pid = os.fork()
            if pid == 0:
                time.sleep(0.3)       # the child leaves the block after the parent saved
            else:
                run.count(samples=5)
        if pid == 0:
            os._exit(0)
        run.log(accuracy=0.5)       # the parent is done with its run...
        os.waitpid(pid, 0)          # ...before the child leaves its copy of the block
        print(json.dumps({"pid": os.getpid(), "id": run.id}))
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    (rec,) = saved(tmp_path)
    assert rec["id"] == out["id"] and rec["pid"] == out["pid"]
    assert rec["status"] == "completed" and rec["counts"] == {"samples": 5}
    assert rec["metrics"] == {"accuracy": 0.5}


def test_the_with_block_ending_in_a_forked_child_saves_nothing(tmp_path):
    res = run_case(
        """
        tracker = footprint.track("parent", sensors=sensors(), store=STORE)
        with tracker as run:
            pid = os.fork()
            if pid == 0:
                try:
                    time.sleep(0.3)                      # after the parent has saved:
                    tracker.__exit__(None, None, None)   # the child leaves the block...
                    run.end("failed", "child")          # ...and even ends the run by hand
                finally:
                    os._exit(0)
            run.count(queries=7)
        os.waitpid(pid, 0)
        print(os.getpid())
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    (rec,) = saved(tmp_path)
    assert (rec["status"], rec["counts"], rec["pid"]) == (
        "completed",
        {"queries": 7},
        int(res.stdout),
    )


POOL = """
import multiprocessing
def work(x):
    time.sleep(60)
    return x
with footprint.track("pool", sensors=sensors(), store=STORE) as run:
    run.count(samples=3)
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map_async(work, range(4))
    open(os.path.join(STORE, "ready"), "w").write(str(os.getpid()))
    time.sleep(60)
"""


def test_sigterm_to_the_group_with_a_fork_pool_saves_the_parents_run(tmp_path):
    proc = start_case(POOL, tmp_path)
    try:
        parent = int(wait_for(tmp_path / "ready"))
        time.sleep(0.5)  # the workers are up
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGTERM
    (rec,) = saved(tmp_path)
    assert rec["pid"] == parent, "a pool worker wrote the parent's record"
    assert rec["status"] == "interrupted" and rec["error"] == "SIGTERM"
    assert rec["counts"] == {"samples": 3}


OTHER_THREAD_TAKES = """
import threading
def other():
    time.sleep(0.3)
    # The kernel may hand the process's signal to any thread: here, to this one.
    signal.pthread_kill(threading.get_ident(), signal.{signal})
    time.sleep(60)
with footprint.track("blocked", sensors=sensors(), store=STORE) as run:
    run.count(samples=4)
    threading.Thread(target=other, daemon=True).start()
    time.sleep(60)   # the main thread, blocked: nothing but a signal interrupts it
"""


@pytest.mark.parametrize(
    ("name", "returncode", "error"),
    [("SIGTERM", -signal.SIGTERM, "SIGTERM"), ("SIGINT", -signal.SIGINT, "KeyboardInterrupt")],
)
def test_a_signal_another_thread_took_still_reaches_the_blocked_main_thread(
    tmp_path, name, returncode, error
):
    """Bug: a SIGTERM the kernel gave to a pool's thread waited for the main thread's sleep to
    end (the 60 s here), where without footprint it would have ended the process at once."""
    t0 = time.monotonic()
    res = run_case(OTHER_THREAD_TAKES.format(signal=name), tmp_path, timeout_s=20)
    assert time.monotonic() - t0 < 15, "the main thread slept through the signal"
    assert res.returncode == returncode, res.stderr
    (rec,) = saved(tmp_path)
    assert rec["status"] == "interrupted" and rec["counts"] == {"samples": 4}
    assert error in (rec["error"] or ""), rec["error"]


def test_sigterm_to_the_group_with_torch_dataloader_workers(tmp_path):
    pytest.importorskip("torch")
    proc = start_case(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset
        class Slow(Dataset):
            def __len__(self): return 1000
            def __getitem__(self, i):
                time.sleep(0.05)
                return torch.zeros(1)
        with footprint.track("loader", sensors=sensors(), store=STORE) as run:
            run.count(samples=2)
            it = iter(DataLoader(Slow(), batch_size=1, num_workers=2))
            next(it)
            open(os.path.join(STORE, "ready"), "w").write(str(os.getpid()))
            for _ in it:
                pass
        """,
        tmp_path,
    )
    try:
        parent = int(wait_for(tmp_path / "ready", timeout_s=60))
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (rec,) = saved(tmp_path)
    assert rec["pid"] == parent and rec["status"] == "interrupted"
    assert rec["counts"] == {"samples": 2}


def test_an_exception_whose_str_raises_still_ends_the_run(tmp_path):
    res = run_case(
        """
        class Nasty(Exception):
            def __str__(self):
                raise RuntimeError("no")
        try:
            with footprint.track("nasty", sensors=sensors(), store=STORE):
                raise Nasty()
        except Nasty:
            print("propagated")
        """,
        tmp_path,
    )
    assert res.stdout.strip() == "propagated", res.stderr
    (rec,) = saved(tmp_path)
    assert rec["status"] == "failed" and rec["error"].startswith("Nasty:")


def test_ctrl_c_inside_a_nested_trackers_enter_ends_it_and_restores_handlers(tmp_path):
    res = run_case(
        """
        import threading
        from conftest import ConstantPowerSensor
        class SlowFirstRead(ConstantPowerSensor):
            slow = True
            def read(self):
                if self.slow:
                    SlowFirstRead.slow = False
                    time.sleep(0.5)       # a slow first read: Ctrl-C arrives now
                return super().read()
        clock = FakeClock(time.monotonic())
        inner = footprint.track("inner", sensors=[SlowFirstRead(clock, 5.0)], store=STORE)
        with footprint.track("outer", sensors=sensors(), store=STORE):
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                with inner:
                    print("body ran")
            except KeyboardInterrupt:
                print("interrupted")
        with inner:                       # usable again: not "already running"
            pass
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["interrupted", "True"]
    by_name = {}
    for rec in saved(tmp_path):
        by_name.setdefault(rec["name"], []).append(rec["status"])
    assert sorted(by_name["inner"]) == ["completed", "interrupted"]
    assert by_name["outer"] == ["completed"]


def test_a_killed_process_reads_as_interrupted_at_once_on_the_same_machine(tmp_path):
    proc = start_case(
        """
        with footprint.track("killed", sensors=sensors(), store=STORE,
                             checkpoint_interval_s=60) as run:
            run.count(samples=1)
            time.sleep(0.4)               # the first checkpoint is written on the first tick
            open(os.path.join(STORE, "ready"), "w").write("1")
            time.sleep(60)
        """,
        tmp_path,
    )
    wait_for(tmp_path / "ready")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    res = footprint_cli("runs", "--format", "json", "--store", str(tmp_path))
    (row,) = json.loads(res.stdout)
    # 60 s checkpoints: the heartbeat is fresh, but the process is provably gone
    assert row["status"] == "interrupted"


def _writer(store: str, worker: int) -> None:
    from conftest import ConstantPowerSensor, FakeClock

    import footprint

    for i in range(10):
        clock = FakeClock()
        with footprint.track(f"w{worker}-{i}", sensors=[ConstantPowerSensor(clock, 1.0)],
                             _clock=clock, store=store) as run:  # fmt: skip
            clock.advance(1.0)
            run.count(samples=i)


def test_64_processes_times_10_runs_into_one_store_none_lost(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(64)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    records = saved(tmp_path)
    assert len(records) == 640
    assert {r["name"] for r in records} == {f"w{w}-{i}" for w in range(64) for i in range(10)}
    assert all(r["status"] == "completed" and r["energy_kwh"] > 0 for r in records)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_python_handler_firing_during_the_sigterm_path_cannot_cut_it_short(tmp_path):
    # SIGTERM to a process group also kills its workers; their SIGCHLD then runs the program's
    # handler (torch's DataLoader raises from it) in the middle of footprint's SIGTERM handling
    res = run_case(
        """
        def boom(*args):
            raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated")
        signal.signal(signal.SIGCHLD, boom)
        with footprint.track("loader", sensors=sensors(), store=STORE) as run:
            run.count(samples=2)
            interrupt = run.interrupt
            def interrupted(reason):
                os.kill(os.getpid(), signal.SIGCHLD)  # arrives while the run is being ended
                return interrupt(reason)
            run.interrupt = interrupted
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        """,
        tmp_path,
    )
    assert res.returncode == -signal.SIGTERM, res.stderr
    (rec,) = saved(tmp_path)
    assert rec["status"] == "interrupted" and rec["error"] == "SIGTERM"
    assert rec["counts"] == {"samples": 2}


def test_a_tracked_script_exits_without_noise(tmp_path):
    """Bug: at interpreter exit the held-open /proc files' __del__ met a module whose globals
    were gone and printed "Exception ignored in ... ProcFiles.__del__" after every script."""
    res = run_case(
        """
        # the real sensors (/proc files held open, estimates); nothing touched after the block
        with footprint.track("quiet", save=False) as run:
            run.count(samples=1)
        """,
        tmp_path,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
