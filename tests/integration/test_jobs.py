"""Jobs of many processes, with real torch.distributed (gloo, CPU) under real torchrun, Slurm-like
environments and ``footprint run`` around a launcher: one job record, each device once
(docs/distributed.md). Hardware is simulated: the fake NVML (its init log says which processes
probed the GPUs) and powercap trees advanced in real time by the test."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import FakeNvml, FakeNvmlBuildError, PowerProgram, build_fake_nvml, read_log
from fakes.powercap import FakePowercap, constant

from footprint.store import Store

pytestmark = pytest.mark.slow

pytest.importorskip("torch.distributed")

REPO = Path(__file__).resolve().parents[2]

TRAIN = textwrap.dedent(
    """
    import os, signal, sys, time
    import torch
    import torch.distributed as dist
    import footprint

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    with footprint.track(
        "ddp-train", store=os.environ["TEST_STORE"], powercap_root=os.environ["TEST_POWERCAP"],
        sample_interval_s=0.05, carbon_intensity=100.0, task="toy", model="mlp",
    ) as run:
        with run.phase("epoch"):
            t = torch.ones(4)
            dist.all_reduce(t)
            run.count(samples=10 * (rank + 1))
            time.sleep(float(os.environ.get("TEST_EPOCH_S", "0.6")))
            if os.environ.get("TEST_KILL_RANK") == str(rank):
                os.kill(os.getpid(), signal.SIGKILL)
            deadline = time.monotonic() + float(os.environ.get("TEST_HANG_S", "0"))
            while time.monotonic() < deadline:
                time.sleep(0.05)
        run.log(accuracy=0.5 + rank)
    if rank == 0 and os.environ.get("TEST_JOB_OUT"):
        job = run.job_record
        with open(os.environ["TEST_JOB_OUT"], "w") as f:
            f.write(f"{job.id} {job.energy_kwh!r} {job.job.parts}")
    if os.environ.get("TEST_KILL_RANK") is None:
        dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hardware(tmp_path):
    try:
        lib_dir = build_fake_nvml(tmp_path / "lib")
    except FakeNvmlBuildError as exc:
        pytest.skip(str(exc))
    return lib_dir


def _node(tmp_path: Path, name: str, lib_dir: Path, *, gpus: int, scale: float, cpu_w: float):
    fake = FakeNvml(
        program=PowerProgram(t0_s=time.monotonic(), idle_s=0.3),
        gpu_count=gpus,
        scales=[scale] * gpus,
        log_path=tmp_path / f"{name}-nvml.log",
        init_log_path=tmp_path / f"{name}-nvml-inits.log",
    )
    pc = FakePowercap(
        tmp_path / f"{name}-sys", packages=1, psys=False, power={"intel-rapl:0": constant(cpu_w)}
    )
    return fake, pc


def _torchrun(nproc: int, port: int, extra: list[str] | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *(extra or ["--nnodes", "1", "--node-rank", "0"]),
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]


def _env(fake: FakeNvml, lib_dir: Path, pc: FakePowercap, store: Path, **more: str) -> dict:
    env = fake.env(lib_dir)
    env.update(
        GLOO_SOCKET_IFNAME="lo",
        OMP_NUM_THREADS="1",
        TEST_STORE=str(store),
        TEST_POWERCAP=str(pc.root),
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
        **more,
    )
    for key in list(env):
        if key.startswith(("RANK", "LOCAL_RANK", "SLURM_", "FOOTPRINT_", "TORCHELASTIC")):
            env.pop(key)
    return env


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    return path


def _gpu_exact(log: Path, gpu: int, scale: float, program: PowerProgram, part) -> float:
    calls = [c for c in read_log(log) if c.gpu == gpu and c.kind == "energy"]
    # calls[0]: discovery's read; calls[1]: the run's start read; the last: its stop read
    return program.energy_j(calls[1].t_s, calls[-1].t_s, scale=scale)


def _inits(path: Path) -> set[int]:
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def test_torchrun_two_ranks_make_one_job_with_each_device_once(tmp_path, hardware):
    fake, pc = _node(tmp_path, "a", hardware, gpus=4, scale=1.0, cpu_w=40.0)
    store = tmp_path / "store"
    cmd = [*_torchrun(2, _free_port()), str(_script(tmp_path))]
    out = tmp_path / "job.txt"
    env = _env(fake, hardware, pc, store, TEST_JOB_OUT=str(out))
    with pc.realtime():
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = Store(store)
    records = st.records()
    assert len(records) == 1, [r.name for r in records]  # one job, not one run per rank
    # rank 0's run.job_record, read right after its end, is the whole job
    job_id, energy_kwh, n_parts = out.read_text().split()
    assert (job_id, float(energy_kwh), int(n_parts)) == (records[0].id, records[0].energy_kwh, 2)
    job = records[0]
    assert job.job is not None and job.job.role == "job" and job.job.launcher == "torchrun"
    assert job.job.world_size == 2 and job.job.parts == 2 and job.job.missing_ranks == ()
    assert job.status == "completed" and job.name == "ddp-train" and job.task == "toy"
    ids = [d.id for d in job.devices]
    assert sorted(ids) == ["cpu:0", "dram:0", "gpu:0", "gpu:1", "gpu:2", "gpu:3"]  # each once
    parts = {p.job.rank: p for p in st.records(parts=True) if p.is_part}
    measurer, other = parts[0], parts[1]
    assert measurer.job.measurer and not other.job.measurer
    assert other.devices == () and other.energy_kwh == 0  # the other rank read nothing
    assert _inits(fake.init_log_path) == {measurer.pid}  # only the measurer probed the GPUs
    for i in range(4):
        d = next(d for d in job.devices if d.id == f"gpu:{i}")
        whole = d.machine_energy_j if d.machine_energy_j is not None else d.energy_j
        exact = _gpu_exact(fake.log_path, i, 1.0, fake.program, measurer)
        assert whole == pytest.approx(exact, abs=2e-3)
    cpu = next(d for d in job.devices if d.id == "cpu:0")
    whole_cpu = cpu.machine_energy_j if cpu.machine_energy_j is not None else cpu.energy_j
    # the realtime fake rewrites the counters every 1 ms: exact to that step
    assert whole_cpu == pytest.approx(40.0 * measurer.duration_s, abs=40.0 * 0.01)
    assert job.energy_j == pytest.approx(sum(d.energy_j for d in job.devices))
    assert job.counts == {"samples": 30}  # 10 + 20: each rank's shard
    assert job.metrics == {"accuracy": 0.5}  # global rank 0's
    (epoch,) = job.phases
    assert epoch.counts == {"samples": 30} and epoch.own_counts == {"samples": 30}
    assert set(epoch.energy_j) == set(ids)  # the measurer's exact phase window
    assert epoch.energy_j["gpu:0"] == pytest.approx(measurer.phases[0].energy_j["gpu:0"])
    assert job.emissions_kg == pytest.approx(job.energy_kwh * 100.0 / 1000.0)
    assert any("gathered 1 of 1" in n for n in measurer.notes)
    assert [n.node for n in job.job.nodes] == [socket.gethostname()]
    assert st.get(job.id[:10]).id == job.id  # the job is found by its id
    assert st.get(other.id).id == other.id  # and each part by its own


def test_a_rank_killed_mid_run_leaves_an_interrupted_job_naming_it(tmp_path, hardware):
    fake, pc = _node(tmp_path, "a", hardware, gpus=1, scale=1.0, cpu_w=40.0)
    store = tmp_path / "store"
    cmd = [*_torchrun(2, _free_port()), str(_script(tmp_path))]
    env = _env(fake, hardware, pc, store, TEST_KILL_RANK="1", TEST_HANG_S="60")
    with pc.realtime():
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    (job,) = Store(store).records()
    assert job.status == "interrupted"
    assert job.job is not None and job.job.missing_ranks == (1,)
    assert any("rank(s) 1 of 2 left no part" in n for n in job.notes)
    assert job.energy_kwh > 0 and sorted(d.id for d in job.devices) == ["cpu:0", "dram:0", "gpu:0"]


def test_footprint_run_around_torchrun_with_trackers_inside_is_one_job(tmp_path, hardware):
    fake, pc = _node(tmp_path, "a", hardware, gpus=2, scale=1.0, cpu_w=40.0)
    store = tmp_path / "store"
    footprint_cmd = [
        sys.executable,
        "-m",
        "footprint",
        "run",
        "--store",
        str(store),
        "--carbon-intensity",
        "100",
        "--sample-interval",
        "0.05",
        "--powercap-root",
        str(pc.root),
        "--",
    ]
    cmd = [*footprint_cmd, *_torchrun(2, _free_port()), str(_script(tmp_path))]
    with pc.realtime():
        proc = subprocess.run(
            cmd, env=_env(fake, hardware, pc, store), capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = Store(store)
    records = st.records()
    assert len(records) == 1, [(r.name, r.id) for r in records]  # not three runs
    job = records[0]
    assert job.job is not None and job.job.parts == 3 and job.job.launcher == "torchrun"
    assert "saved as job" in proc.stderr and job.id[:8] in proc.stderr
    assert sorted(d.id for d in job.devices) == ["cpu:0", "dram:0", "gpu:0", "gpu:1"]
    parts = st.records(parts=True)
    wrapper = next(p for p in parts if p.is_part and p.job.wrapper == p.id)
    assert _inits(fake.init_log_path) == {wrapper.pid}  # the wrapper alone probed
    assert job.counts == {"samples": 30} and job.metrics == {"accuracy": 0.5}
    assert job.name == "ddp-train"
    (epoch,) = job.phases
    # the wrapper opened no phase: the epoch's energy comes from its timeline
    assert 0 < epoch.total_energy_j < job.energy_j
    assert any("integral of the measurer's power timeline" in n for n in job.notes)


def _can_unshare() -> str | None:
    if os.geteuid() != 0:
        return "simulated nodes need `unshare --uts` as root"
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return "unshare or hostname is not installed"
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare --uts fails here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def _footprint_run(store: Path, pc: FakePowercap) -> list[str]:
    return [
        sys.executable, "-m", "footprint", "run", "--store", str(store),
        "--carbon-intensity", "100", "--sample-interval", "0.05",
        "--powercap-root", str(pc.root), "--",
    ]  # fmt: skip


@pytest.mark.parametrize("wrapped", [False, True], ids=["torchrun", "footprint-run-on-each-node"])
def test_two_simulated_nodes_make_one_job_with_each_nodes_energy(tmp_path, hardware, wrapped):
    why = _can_unshare()
    if why:
        pytest.skip(why)
    port = _free_port()
    script = _script(tmp_path)
    nodes = {
        "node-a": _node(tmp_path, "node-a", hardware, gpus=2, scale=1.0, cpu_w=40.0),
        "node-b": _node(tmp_path, "node-b", hardware, gpus=2, scale=2.0, cpu_w=70.0),
    }
    procs = {}
    with nodes["node-a"][1].realtime(), nodes["node-b"][1].realtime():
        for node_rank, (name, (fake, pc)) in enumerate(nodes.items()):
            launch = _torchrun(2, port, ["--nnodes", "2", "--node-rank", str(node_rank)])
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh"]
            env = _env(fake, hardware, pc, tmp_path / f"store-{name}")
            wrap = _footprint_run(tmp_path / f"store-{name}", pc) if wrapped else []
            procs[name] = subprocess.Popen(
                [*cmd, *wrap, *launch, str(script)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        outs = {name: p.communicate(timeout=180) for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, outs[name][1][-3000:]
    if wrapped:
        # Each wrapper measured its node and joined the job its launcher's ranks agreed on; the
        # wrappers' parts stay in their node's store until the stores are merged.
        from footprint.cli import main

        merged = tmp_path / "merged"
        stores = [str(tmp_path / f"store-{n}") for n in nodes]
        assert main(["merge", *stores, "--store", str(merged)]) == 0
        (job,) = Store(merged).records()
        assert job.job is not None and job.job.parts == 6 and job.status == "completed"
        by_node = {n.node: n for n in job.job.nodes}
        assert set(by_node) == set(nodes)
        for name, (fake, _) in nodes.items():
            assert len(by_node[name].devices) == 4 and len(by_node[name].ranks) == 2
            measurer = Store(merged).get(by_node[name].measurer)
            assert measurer.job is not None and measurer.job.wrapper == measurer.id
            assert _inits(fake.init_log_path) == {measurer.pid}  # the wrapper alone probed
        assert job.counts == {"samples": 10 + 20 + 30 + 40}
        return
    # Global rank 0 gathered every part through torchrun's store into its node's store.
    jobs = {name: Store(tmp_path / f"store-{name}").records() for name in nodes}
    full = [rs[0] for rs in jobs.values() if rs and rs[0].job and rs[0].job.parts == 4]
    assert len(full) == 1, {
        n: [(r.id, r.job and r.job.parts) for r in rs] for n, rs in jobs.items()
    }
    job = full[0]
    assert job.job is not None and job.status == "completed" and job.job.world_size == 4
    by_node = {n.node: n for n in job.job.nodes}
    assert set(by_node) == set(nodes)  # each node named by its own hostname
    for name, (fake, _) in nodes.items():
        node = by_node[name]
        assert sorted(node.devices) == sorted(
            f"{name}/{d}" for d in ("cpu:0", "dram:0", "gpu:0", "gpu:1")
        )
        assert len(node.ranks) == 2
        measurer = Store(tmp_path / f"store-{name}").get(node.measurer)
        assert _inits(fake.init_log_path) == {measurer.pid}
        scale = fake.scales[0]
        for i in range(2):
            d = next(d for d in job.devices if d.id == f"{name}/gpu:{i}")
            whole = d.machine_energy_j if d.machine_energy_j is not None else d.energy_j
            exact = _gpu_exact(fake.log_path, i, scale, fake.program, measurer)
            assert whole == pytest.approx(exact, abs=2e-3)
        assert node.energy_kwh == pytest.approx(measurer.energy_kwh)
    assert job.energy_kwh == pytest.approx(sum(n.energy_kwh for n in job.job.nodes))
    assert job.counts == {"samples": 10 + 20 + 30 + 40}
    # The other node's own store holds its half, shown as a job missing ranks 0 and 1 ...
    other = next(rs[0] for rs in jobs.values() if rs[0].id == job.id and rs[0] is not job)
    assert other.job is not None and other.job.missing_ranks == (0, 1)
    # ... and `footprint merge` brings both stores together into the same job.
    from footprint.cli import main

    merged = tmp_path / "merged"
    stores = [str(tmp_path / f"store-{n}") for n in nodes]
    assert main(["merge", *stores, "--store", str(merged)]) == 0
    (again,) = Store(merged).records()
    assert again.id == job.id and again.job is not None and again.job.parts == 4
    assert again.energy_kwh == pytest.approx(job.energy_kwh)


SLURM_TASK = textwrap.dedent(
    """
    import os, sys, time
    import footprint

    with footprint.track(
        "slurm-task", store=os.environ["TEST_STORE"], powercap_root=os.environ["TEST_POWERCAP"],
        sample_interval_s=0.05,
    ) as run:
        with run.phase("work"):
            run.count(items=int(os.environ["SLURM_PROCID"]) + 1)
            time.sleep(0.4)
    print(run.job_id)
    """
)


def test_slurm_like_tasks_without_a_process_group_merge_into_one_job(tmp_path, hardware):
    script = tmp_path / "task.py"
    script.write_text(SLURM_TASK)
    fakes = [_node(tmp_path, f"n{i}", hardware, gpus=1, scale=1.0, cpu_w=40.0) for i in range(2)]
    store = tmp_path / "store"
    procs = []
    with fakes[0][1].realtime(), fakes[1][1].realtime():
        for procid in range(4):
            node = procid // 2
            fake, pc = fakes[node]
            env = _env(fake, hardware, pc, store)
            env.update(
                SLURM_JOB_ID="777",
                SLURM_STEP_ID="0",
                SLURM_PROCID=str(procid),
                SLURM_LOCALID=str(procid % 2),
                SLURM_NODEID=str(node),
                SLURM_NTASKS="4",
                SLURM_NTASKS_PER_NODE="2",
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
                )
            )
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1  # every task knew the job id from Slurm's ids at once
    (job,) = Store(store).records()
    assert job.id == outs[0] and job.job is not None and job.job.launcher == "slurm"
    assert job.job.parts == 4 and job.status == "completed"
    assert len(job.job.nodes) == 2 and all(len(n.devices) == 3 for n in job.job.nodes)
    assert job.counts == {"items": 1 + 2 + 3 + 4}
    for fake, _ in fakes:
        assert len(_inits(fake.init_log_path)) == 1  # one measurer per node


def test_gpus_no_rank_used_are_dropped_with_a_note(tmp_path, hardware):
    fake, pc = _node(tmp_path, "a", hardware, gpus=4, scale=1.0, cpu_w=40.0)
    # NVML lists the measurer (rank 0, in the job's process tree) on GPUs 0 and 1 only
    fake = dataclasses.replace(fake, processes=[(0, "self", 50), (1, "self", 50)])
    store = tmp_path / "store"
    cmd = [*_torchrun(2, _free_port()), str(_script(tmp_path))]
    with pc.realtime():
        proc = subprocess.run(
            cmd, env=_env(fake, hardware, pc, store), capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = Store(store).records()
    assert sorted(d.id for d in job.devices) == ["cpu:0", "dram:0", "gpu:0", "gpu:1"]
    assert any("gpu:2, gpu:3 dropped: no process of the job used them" in n for n in job.notes)
    assert job.energy_j == pytest.approx(sum(d.energy_j for d in job.devices))
    assert set(job.phases[0].energy_j) == {"cpu:0", "dram:0", "gpu:0", "gpu:1"}


FORKING = textwrap.dedent(
    """
    import json, multiprocessing, os, time
    import footprint

    def worker(store):
        with footprint.track("worker", store=store, sample_interval_s=0.05) as run:
            time.sleep(0.1)
        print(json.dumps({"worker_job": run.job_id, "worker_id": run.id}), flush=True)

    if __name__ == "__main__":
        store = os.environ["TEST_STORE"]
        with footprint.track("rank", store=store, sample_interval_s=0.05) as run:
            ctx = multiprocessing.get_context(os.environ["TEST_START"])
            p = ctx.Process(target=worker, args=(store,))
            p.start()
            p.join()
        print(json.dumps({"job": run.job_id, "id": run.id}))
    """
)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_worker_of_a_rank_is_a_run_of_its_own(tmp_path, start):
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTPRINT_", "SLURM_"))}
    env.update(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="1",
        TEST_STORE=str(store), TEST_START=start, PYTHONPATH=str(REPO),
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.split("\n") if x.startswith("{")]
    worker = next(x for x in lines if "worker_job" in x)
    rank = next(x for x in lines if "job" in x)
    assert worker["worker_job"] is None and rank["job"] is not None
    st = Store(store)
    plain = st.get(worker["worker_id"])
    assert plain.job is None and plain.devices  # it measured as a run of its own
    part = st.get(rank["id"])
    assert part.is_part and part.job is not None and part.job.measurer
    # no torchrun agent store and no process group: the key falls back to this node, and says so
    assert any("could not agree on a job key" in n for n in part.notes)


LOCKED = textwrap.dedent(
    """
    import json, os, sys, time
    import footprint

    with footprint.track("nightly", store=os.environ["TEST_STORE"], sample_interval_s=0.05) as run:
        open(os.environ["TEST_READY"] + str(os.getpid()), "w").close()
        deadline = time.monotonic() + 20
        while len(os.listdir(os.path.dirname(os.environ["TEST_READY"]))) < 2:
            if time.monotonic() > deadline:
                sys.exit("the other process never started")
            time.sleep(0.01)
    print(json.dumps({"job": run.job_id, "id": run.id}))
    """
)


def test_an_explicit_job_elects_one_measurer_per_host_with_a_lock(tmp_path):
    script = tmp_path / "locked.py"
    script.write_text(LOCKED)
    (tmp_path / "ready").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTPRINT_", "SLURM_"))}
    env.pop("RANK", None)
    env.update(
        FOOTPRINT_JOB="nightly-42", TEST_STORE=str(tmp_path / "store"),
        TEST_READY=str(tmp_path / "ready" / "p"), PYTHONPATH=str(REPO),
    )  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0]["job"] == outs[1]["job"]
    (job,) = Store(tmp_path / "store").records()
    assert job.job is not None and job.job.launcher == "explicit" and job.job.parts == 2
    measurers = [r for r in job.job.ranks if r.measurer]
    assert len(measurers) == 1  # both ran at once on this host: the lock let one measure
    assert job.devices


SPAWNED = textwrap.dedent(
    """
    import os, sys, time
    import torch.distributed as dist
    import torch.multiprocessing as mp
    import footprint

    def main(rank, world, port, store):
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
        with footprint.track("spawned", store=store, sample_interval_s=0.05) as run:
            run.count(samples=rank + 1)
            time.sleep(0.3)
        dist.barrier()
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(main, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2)
    """
)


def test_mp_spawn_ranks_gather_through_the_process_groups_store(tmp_path):
    script = tmp_path / "spawned.py"
    script.write_text(SPAWNED)
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTPRINT_", "SLURM_"))}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    env.update(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(script), str(_free_port()), str(store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = Store(store).records()
    assert job.job is not None and job.job.launcher == "torch.distributed"
    assert job.job.parts == 2 and job.counts == {"samples": 3}
    assert sum(r.measurer for r in job.job.ranks) == 1  # the per-host lock chose one
    rank0 = next(p for p in Store(store).parts(job.id) if p.job and p.job.rank == 0)
    assert any("gathered 1 of 1" in n and "process group's store" in n for n in rank0.notes)


def test_two_launches_with_the_same_ids_are_two_jobs(tmp_path, hardware):
    # static rendezvous: TORCHELASTIC_RUN_ID is "none" and the port is the same both times
    fake, pc = _node(tmp_path, "a", hardware, gpus=1, scale=1.0, cpu_w=40.0)
    store = tmp_path / "store"
    port = _free_port()
    cmd = [*_torchrun(2, port), str(_script(tmp_path))]
    env = _env(fake, hardware, pc, store, TEST_EPOCH_S="0.2")
    with pc.realtime():
        for _ in range(2):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = Store(store).records()
    assert len(jobs) == 2 and len({j.id for j in jobs}) == 2
    assert all(j.job is not None and j.job.parts == 2 for j in jobs)
    assert {j.job.key for j in jobs if j.job} == {f"torch:127.0.0.1:{port}:none:2:0"}
