"""Who is in a job and who measures, from the environment (footprint.jobs.identity)."""

from __future__ import annotations

import json
import os
import socket

import pytest

from footprint.jobs import identity
from footprint.jobs.identity import detect, job_id_for

TORCHRUN = {
    "RANK": "1",
    "LOCAL_RANK": "1",
    "WORLD_SIZE": "4",
    "LOCAL_WORLD_SIZE": "2",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "none",
    "TORCHELASTIC_RESTART_COUNT": "0",
    "TORCHELASTIC_USE_AGENT_STORE": "True",
}
SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "2",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "1",
    "SLURM_NTASKS": "4",
    "SLURM_CLUSTER_NAME": "hpc",
}


def test_no_launcher_is_no_job():
    assert detect(env={}) is None
    assert detect(env={"PATH": "/bin"}) is None


def test_a_job_of_one_process_is_a_run_as_today():
    assert detect(env={**TORCHRUN, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}) is None


def test_torchrun_ranks_need_a_nonce_and_the_local_rank_zero_measures():
    m = detect(env=TORCHRUN)
    assert m is not None and m.launcher == "torchrun"
    assert (m.rank, m.local_rank, m.world_size) == (1, 1, 4)
    assert m.key is None  # TORCHELASTIC_RUN_ID "none" and a reused port are never a key alone
    assert m.measurer is False
    assert m.agent_store == ("127.0.0.1", 29500)
    assert m.tree_root == os.getppid()  # the agent's tree holds every local rank
    leader = detect(env={**TORCHRUN, "RANK": "0", "LOCAL_RANK": "0"})
    assert leader is not None and leader.measurer is True


def test_two_torchrun_jobs_with_the_same_ids_differ_by_their_nonce():
    m = detect(env=TORCHRUN)
    assert m is not None
    a = m.job_id(m.full_key("nonce-a", "train", 0))
    b = m.job_id(m.full_key("nonce-b", "train", 0))
    assert a != b
    # and two runs of one process are two jobs: its first "train" and its first "eval"
    assert m.job_id(m.full_key("n", "train", 0)) != m.job_id(m.full_key("n", "eval", 0))
    assert m.job_id(m.full_key("n", "train", 0)) != m.job_id(m.full_key("n", "train", 1))


def test_slurm_keys_on_cluster_job_and_step_and_names_the_node():
    m = detect(env=SLURM)
    assert m is not None and m.launcher == "slurm"
    assert (m.rank, m.local_rank, m.world_size, m.measurer) == (2, 0, 4, True)
    assert m.node == f"{socket.gethostname()}/slurm-node-1"
    assert m.key is not None and "4242" in m.key
    other_step = detect(env={**SLURM, "SLURM_STEP_ID": "1"})
    assert other_step is not None and other_step.key != m.key
    assert detect(env={**SLURM, "SLURM_JOB_GPUS": "2,3"}).gpus == (2, 3)  # type: ignore[union-attr]


def test_an_sbatch_shell_without_a_step_is_not_a_job():
    env = {k: v for k, v in SLURM.items() if k != "SLURM_STEP_ID"}
    assert detect(env=env) is None


def test_an_explicit_job_is_one_job_whatever_the_runs_are_called():
    m = detect("nightly-7", env={})
    assert m is not None and m.explicit and m.measurer is None  # a per-host lock decides
    assert m.job_id(m.full_key(None, "a", 0)) == m.job_id(m.full_key(None, "b", 3))
    assert m.job_id(m.full_key(None, "a", 0)) == job_id_for("explicit:nightly-7")
    env = detect(env={identity.ENV_JOB: "nightly-7"})
    assert env is not None and env.key == m.key


def test_a_forked_child_is_not_a_member_unless_it_names_the_job(monkeypatch):
    monkeypatch.setattr(identity, "_forked", True)
    assert detect(env=TORCHRUN) is None  # a DataLoader worker of rank 1
    assert detect(env={identity.ENV_JOB: "x"}) is None  # inherited, not its own choice
    m = detect("x", env=TORCHRUN)
    assert m is not None and m.rank is None  # it names the job; it is not rank 1


def test_a_forked_child_after_import_is_marked(tmp_path):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"1" if identity._forked else b"0")
        os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    assert got == b"1" and identity._forked is False


def test_under_footprint_run_the_wrapper_measures(monkeypatch):
    parent = {"run": "a" * 32, "pid": os.getppid(), "store": "/tmp/s"}
    env = {identity.ENV_PARENT: json.dumps(parent)}
    m = detect(env=env)
    assert m is not None and m.launcher == "footprint-run" and m.measurer is False
    assert m.job_id(m.full_key(None, "x", 0)) == "a" * 32  # the job is the wrapper's run
    inner = detect(env={**env, **TORCHRUN, "RANK": "0", "LOCAL_RANK": "0"})
    assert inner is not None and inner.launcher == "torchrun" and inner.measurer is False
    assert inner.base.startswith("wrapped:")
    # one job for the wrapped launch: the run's name is not part of the key
    assert inner.full_key("n", "a", 0) == inner.full_key("n", "b", 0)


@pytest.mark.parametrize("value", ["not json", json.dumps({"run": "x"}), json.dumps([1])])
def test_a_malformed_parent_variable_is_ignored(value):
    assert detect(env={identity.ENV_PARENT: value}) is None


def test_a_parent_variable_of_a_dead_wrapper_or_of_itself_is_ignored():
    me = {"run": "b" * 32, "pid": os.getpid(), "store": "/tmp/s"}
    assert detect(env={identity.ENV_PARENT: json.dumps(me)}) is None
    gone = {"run": "b" * 32, "pid": 2**22 + 12345, "store": "/tmp/s"}
    assert detect(env={identity.ENV_PARENT: json.dumps(gone)}) is None


def test_accelerate_is_torchrun_with_its_own_name():
    m = detect(env={**TORCHRUN, "ACCELERATE_MIXED_PRECISION": "bf16"})
    assert m is not None and m.launcher == "accelerate" and m.key is None
