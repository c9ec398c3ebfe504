"""Who is in a job, and who measures: decided from the environment when a run starts.

Membership comes from the environment a process was started with. A forked child (a DataLoader
worker, a fork ``multiprocessing`` pool) and any ``multiprocessing`` child inherit their parent's
launcher variables, so they are never members on their own: only with an explicit ``job=``.
A process group initialised in a ``multiprocessing`` child (``torch.multiprocessing.spawn``)
makes it a member too.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

ENV_JOB = "FOOTPRINT_JOB"
#: What ``footprint run`` exports to its command: its run id, pid and store (JSON).
ENV_PARENT = "FOOTPRINT_PARENT"
#: Variables whose presence means a launcher (or a wrapper) may be around this process.
HINTS = (ENV_JOB, ENV_PARENT, "RANK", "LOCAL_RANK", "SLURM_PROCID", "TORCHELASTIC_RUN_ID")

_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


@dataclass(frozen=True)
class Wrapper:
    """The ``footprint run`` around this process (from :data:`ENV_PARENT`)."""

    run_id: str
    pid: int
    store: str


@dataclass(frozen=True)
class Membership:
    """This process's place in a job.

    ``key`` is the job's key when the environment gives all of it; None when it still needs a
    nonce agreed through the launcher's store (torchrun: its ids alone can repeat from one job
    to the next). ``base`` is the launcher's ids (shown, and the nonce's name). ``measurer`` is
    None when the node's measurer is decided by a per-host lock in the store.
    """

    launcher: str
    base: str
    key: str | None
    rank: int | None
    local_rank: int | None
    world_size: int | None
    node: str
    measurer: bool | None
    tree_root: int
    wrapper: Wrapper | None = None
    agent_store: tuple[str, int] | None = None
    gpus: tuple[int, ...] | None = None
    explicit: bool = False

    def full_key(self, nonce: str | None, name: str, seq: int) -> str:
        """The job's key: the launcher's ids, the nonce its processes agreed, and, for a
        launcher's job, which of the process's runs this is (its name and how many runs of that
        name came before it: every rank runs the same code). An explicit job and a wrapped
        command are one job whatever their runs are called."""
        key = self.key or (self.base if nonce is None else f"{self.base}|{nonce}")
        if self.explicit or self.wrapper is not None:
            return key
        return f"{key}|{name}#{seq}"

    def job_id(self, key: str) -> str:
        """The job's id: 32 hex from its key (a wrapped command without a launcher inside is
        its wrapper's run)."""
        if self.wrapper is not None and self.launcher == "footprint-run" and not self.explicit:
            return self.wrapper.run_id
        return job_id_for(key)


def job_id_for(key: str) -> str:
    import hashlib  # here: loading OpenSSL costs a rank's start ~4 ms

    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _int(env: dict[str, str] | os._Environ[str], name: str) -> int | None:
    value = env.get(name, "")
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None


def _wrapper(env: os._Environ[str] | dict[str, str]) -> Wrapper | None:
    raw = env.get(ENV_PARENT)
    if not raw:
        return None
    import json

    try:
        data = json.loads(raw)
        w = Wrapper(str(data["run"]), int(data["pid"]), str(data["store"]))
    except (ValueError, KeyError, TypeError):
        return None
    if w.pid == os.getpid() or not _alive(w.pid):
        return None  # footprint run's own tracker, or a process that outlived its wrapper
    return w


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dist_rank() -> tuple[int, int] | None:
    """(rank, world size) of an initialised default process group (torch already imported)."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except Exception:  # a group torn down half-way: not a member through it
        return None
    return None


def _slurm_gpus(env: os._Environ[str] | dict[str, str]) -> tuple[int, ...] | None:
    raw = env.get("SLURM_STEP_GPUS") or env.get("SLURM_JOB_GPUS")
    if not raw:
        return None
    try:
        return tuple(int(x) for x in raw.split(",") if x.strip())
    except ValueError:
        return None


def detect(
    job: str | None = None, env: os._Environ[str] | dict[str, str] | None = None
) -> Membership | None:
    """This process's membership, or None: a run of its own, exactly as without jobs.

    ``job`` is the run's explicit ``job=`` option (it makes even a forked child a member).
    """
    env = os.environ if env is None else env
    forked = _forked or _multiprocessing_child()
    explicit = job if job is not None or forked else (env.get(ENV_JOB) or None)
    found = _dist_rank()
    if explicit is None and found is None and (forked or not any(n in env for n in HINTS)):
        return None  # no launcher; or a worker of a rank, which is a run of its own
    wrapper = None if forked else _wrapper(env)
    host = socket.gethostname()
    node = host
    rank = local_rank = world = None
    launcher = base = key = None
    agent = None
    tree_root = os.getpid()
    gpus = None
    if not forked and ("TORCHELASTIC_RUN_ID" in env or ("RANK" in env and "WORLD_SIZE" in env)):
        rank, local_rank = _int(env, "RANK"), _int(env, "LOCAL_RANK")
        world = _int(env, "WORLD_SIZE")
        elastic = "TORCHELASTIC_RUN_ID" in env
        launcher = "torchrun" if elastic else "torch.distributed"
        if any(k.startswith("ACCELERATE_") for k in env):
            launcher = "accelerate"
        ids = [env.get("MASTER_ADDR", ""), env.get("MASTER_PORT", "")]
        ids += [env.get("TORCHELASTIC_RUN_ID", "-"), str(world)]
        base = ":".join(("torch", *ids, env.get("TORCHELASTIC_RESTART_COUNT", "0")))
        if elastic:
            tree_root = os.getppid()  # the agent: every local rank is its child
            port = _int(env, "MASTER_PORT")
            if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and port is not None:
                agent = (env.get("MASTER_ADDR") or "127.0.0.1", port)
    elif not forked and all(n in env for n in ("SLURM_PROCID", "SLURM_JOB_ID", "SLURM_STEP_ID")):
        rank, local_rank = _int(env, "SLURM_PROCID"), _int(env, "SLURM_LOCALID")
        world = _int(env, "SLURM_NTASKS") or _int(env, "SLURM_NPROCS")
        launcher = "slurm"
        # Slurm's job ids are unique within a cluster; its start time tells a reused id apart.
        ids = [env.get(n, "") for n in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_JOB_START_TIME")]
        key = base = ":".join(("slurm", env.get("SLURM_CLUSTER_NAME", ""), *ids))
        if "SLURM_NODEID" in env:
            node = f"{host}/slurm-node-{env['SLURM_NODEID']}"
        tree_root = os.getppid()  # slurmstepd: the step's tasks on this node
        gpus = _slurm_gpus(env)
    elif found is not None:  # a process group made without a launcher (mp.spawn)
        rank, world = found
        local_rank = None if forked else _int(env, "LOCAL_RANK")
        launcher = "torch.distributed"
        ids = [env.get("MASTER_ADDR", ""), env.get("MASTER_PORT", "")]
        base = ":".join(("torch", *ids, "-", str(world)))
        if forked:  # torch.multiprocessing.spawn: the parent's tree holds every rank
            tree_root = os.getppid()
    if explicit is not None:
        key = base = f"explicit:{explicit}"
        launcher = launcher or "explicit"
    elif wrapper is not None:
        if launcher is None:
            launcher = "footprint-run"
            key = base = f"footprint-run:{wrapper.run_id}"
        else:  # one job for the wrapped launch, whatever its runs are called
            base = f"wrapped:{base}"
            key = None if key is None else f"wrapped:{key}"
    elif launcher is None or (world is not None and world <= 1):
        return None  # a job of one process is a run as today
    assert base is not None and launcher is not None
    if wrapper is not None:
        measurer: bool | None = False  # footprint run reads this node's devices
        tree_root = wrapper.pid
    elif local_rank is not None:
        measurer = local_rank == 0
    else:
        measurer = None  # a per-host lock in the store decides
    return Membership(
        launcher=launcher,
        base=base,
        key=key,
        rank=rank,
        local_rank=local_rank,
        world_size=world,
        node=node,
        measurer=measurer,
        tree_root=tree_root,
        wrapper=wrapper,
        agent_store=agent,
        gpus=gpus,
        explicit=explicit is not None,
    )


def _multiprocessing_child() -> bool:
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return False
    try:
        return mp.parent_process() is not None
    except Exception:
        return False
