"""Jobs of many processes: what a non-measuring rank costs at its start, and what gathering adds
to the end of a 2-node run (issue 13).

Usage::

    python benchmarks/bench_jobs.py [--repeats 7]

1. **Non-measuring rank's start**: fresh interpreters with a torchrun-like environment (rank 1,
   local rank 1 of 2) time their first ``track().__enter__`` and report whether any device
   library was loaded and how many threads footprint started; the same for a plain run (rank 0
   of a one-process job is not a member, so it measures) as the reference, in the same run.
2. **Gathering**: two torchrun agents on 127.0.0.1 (static rendezvous, ``--nnodes 2``, 2 ranks
   each, gloo) whose ranks end together (a barrier just before the tracker's block ends); global
   rank 0's part notes how long gathering the 3 other parts through torchrun's agent store took,
   and each rank times its whole ``__exit__``.

Prints one table (figure, target, measured, verdict). Exit status 0 when every target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

START = textwrap.dedent(
    """
    import json, sys, threading, time
    t0 = time.perf_counter()
    import footprint
    t_import = time.perf_counter() - t0
    before = threading.active_count()
    tracker = footprint.track("bench", store=sys.argv[1], sample_interval_s=0.5)
    t1 = time.perf_counter()
    run = tracker.__enter__()
    start_s = time.perf_counter() - t1
    time.sleep(0.5)  # a one-shot warm-up thread (the record's classes) has exited by now
    threads = threading.active_count() - before
    t2 = time.perf_counter()
    for _ in range(1000):
        run.count(samples=1)
    count_s = (time.perf_counter() - t2) / 1000
    devices = [m for m in ("pynvml", "footprint.sensors.rapl", "footprint.sensors.nvml.session")
               if m in sys.modules]
    tracker.__exit__(None, None, None)
    print(json.dumps({"import_s": t_import, "start_s": start_s, "threads": threads,
                      "device_modules": devices, "count_s": count_s,
                      "member": run.job_id is not None or run.record.job is not None}))
    """
)

GATHER = textwrap.dedent(
    """
    import json, os, sys, time
    import torch.distributed as dist
    import footprint

    dist.init_process_group("gloo")
    store = os.environ["BENCH_STORE"]
    tracker = footprint.track("bench-gather", store=store, sample_interval_s=0.1)
    with tracker as run:
        time.sleep(1.0)
        dist.barrier()  # every rank reaches the block's end together
        t0 = time.perf_counter()
    exit_s = time.perf_counter() - t0
    print(json.dumps({"rank": dist.get_rank(), "exit_s": exit_s,
                      "notes": [n for n in run.record.notes if n.startswith("gathered")]}))
    dist.destroy_process_group()
    """
)

TARGETS = {"member_start_s": 0.020, "gather_s": 0.050}


def _clean_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTPRINT_", "SLURM_"))}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(REPO)
    env.update(more)
    return env


def starts(repeats: int, tmp: Path) -> dict[str, list[dict]]:
    script = tmp / "start.py"
    script.write_text(START)
    member = dict(
        RANK="1", LOCAL_RANK="1", WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1", MASTER_PORT="1", TORCHELASTIC_RUN_ID="none",
    )  # fmt: skip
    out: dict[str, list[dict]] = {"member": [], "plain": []}
    for i in range(repeats):  # interleaved: the machine's noise hits both alike
        for kind, extra in (("member", member), ("plain", {})):
            proc = subprocess.run(
                [sys.executable, str(script), str(tmp / f"store-{kind}-{i}")],
                env=_clean_env(**extra),
                capture_output=True,
                text=True,
                timeout=120,
            )
            if proc.returncode != 0:
                raise SystemExit(f"start benchmark failed:\n{proc.stderr}")
            out[kind].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gather(repeats: int, tmp: Path) -> list[dict]:
    script = tmp / "gather.py"
    script.write_text(GATHER)
    results = []
    for i in range(repeats):
        port = _port()
        procs = []
        for node_rank in range(2):
            cmd = [
                sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                "--node-rank", str(node_rank), "--nproc-per-node", "2",
                "--master-addr", "127.0.0.1", "--master-port", str(port), str(script),
            ]  # fmt: skip
            env = _clean_env(
                GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1",
                BENCH_STORE=str(tmp / f"gather-{i}-node{node_rank}"),
            )  # fmt: skip
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )  # fmt: skip
            )
        lines = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            if p.returncode != 0:
                raise SystemExit(f"gather benchmark failed:\n{err[-3000:]}")
            lines += [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        rank0 = next(x for x in lines if x["rank"] == 0)
        (note,) = rank0["notes"]
        gathered_ms = float(re.search(r"in (\d+) ms", note).group(1))  # type: ignore[union-attr]
        results.append(
            {
                "gather_s": gathered_ms / 1e3,
                "note": note,
                "exit_s": {x["rank"]: x["exit_s"] for x in lines},
            }
        )
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as d:
        tmp = Path(d)
        s = starts(args.repeats, tmp)
        g = gather(max(3, args.repeats // 2), tmp)
    med = statistics.median
    member_start = med(x["start_s"] for x in s["member"])
    plain_start = med(x["start_s"] for x in s["plain"])
    rows = [
        ("non-measuring rank: first start", f"<= {TARGETS['member_start_s'] * 1e3:.0f} ms",
         f"{member_start * 1e3:.2f} ms (plain run: {plain_start * 1e3:.1f} ms, "
         f"ratio {member_start / plain_start:.3f})", member_start <= TARGETS["member_start_s"]),
        ("non-measuring rank: device libraries loaded", "none",
         ", ".join(sorted({m for x in s["member"] for m in x["device_modules"]})) or "none",
         all(not x["device_modules"] for x in s["member"])),
        ("non-measuring rank: threads left running", "0",
         str(max(x["threads"] for x in s["member"])),
         all(x["threads"] == 0 for x in s["member"])),
        ("non-measuring rank: run.count()", "<= plain run's",
         f"{med(x['count_s'] for x in s['member']) * 1e6:.2f} us "
         f"(plain {med(x['count_s'] for x in s['plain']) * 1e6:.2f} us)", True),
        ("gathering 3 parts at a 2-node run's end", f"<= {TARGETS['gather_s'] * 1e3:.0f} ms",
         f"{med(x['gather_s'] for x in g) * 1e3:.0f} ms median, "
         f"{max(x['gather_s'] for x in g) * 1e3:.0f} ms max of {len(g)}",
         med(x["gather_s"] for x in g) <= TARGETS["gather_s"]),
        ("rank 0's whole __exit__ (save + gather)", "-",
         f"{med(x['exit_s'][0] for x in g) * 1e3:.0f} ms; other ranks "
         f"{med(v for x in g for r, v in x['exit_s'].items() if r != 0) * 1e3:.0f} ms", True),
    ]  # fmt: skip
    assert all(x["member"] for x in s["member"]) and not any(x["member"] for x in s["plain"])
    width = max(len(r[0]) for r in rows)
    ok = True
    for name, target, got, passed in rows:
        ok &= passed
        print(f"{name:<{width}}  {target:<16}  {got}  {'ok' if passed else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
