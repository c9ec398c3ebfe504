"""A run's membership in a job: its key and id, the node's lock, the part it saves, and the
gathering of parts at its end (docs/distributed.md)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from footprint import runtime
from footprint.jobs.identity import Membership

if TYPE_CHECKING:
    from footprint.record.model import RunRecord
    from footprint.store import Store


class JobPart:
    """What a run that is a member of a job knows about it."""

    def __init__(self, m: Membership, name: str, store: Store) -> None:
        rt = runtime.get()
        with rt.lock:
            seq = rt.job_runs.get((m.base, name), 0)
            rt.job_runs[(m.base, name)] = seq + 1
        self.name, self.seq = name, seq
        self.notes: list[str] = []
        self.id: str | None = None
        self._lock_fd: int | None = None
        self.gpus_used: list[str] | None = None
        self.m = m
        if m.key is not None:
            self.id = m.job_id(m.full_key(None, name, seq))
        if m.measurer is None:  # no local rank: the per-host lock decides, keyed by the job
            job_id = self.id or self.resolve(final=False)
            if job_id is not None:
                measurer = self._take_lock(store, job_id, m.node)
            else:
                measurer = m.rank in (None, 0)
                self.notes.append(
                    "no local rank and no job key yet: global rank 0 measures this node"
                )
            self.m = dataclasses.replace(m, measurer=measurer)

    @property
    def measurer(self) -> bool:
        return bool(self.m.measurer)

    def _take_lock(self, store: Store, job_id: str, node: str) -> bool:
        """The per-host lock: the process holding it measures the node. The kernel releases it
        when the process exits, however it exits, so a crashed measurer never blocks the next."""
        import fcntl
        import hashlib

        digest = hashlib.sha256(node.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        path = store.jobs_path / ".locks" / f"{job_id}-{digest}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self.notes.append(f"no per-host lock ({exc}): this process measures node {node}")
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def resolve(self, *, final: bool) -> str | None:
        """The job id, agreeing the key's nonce through the launcher's store when it needs one.

        Before the run's end (``final`` False) torch is never imported for it and None means
        "not yet"; at the end the id is always known: without a channel the key falls back to
        this node's launcher process (a job of this node only, with a note)."""
        if final and self.gpus_used is None:
            self.gpus_used = torch_gpus_used()
        if self.id is not None:
            return self.id
        from footprint.jobs import channel

        m = self.m
        store = channel.open_channel(m, may_import=final)
        nonce = channel.agree_nonce(store, m) if store is not None else None
        if nonce is None:
            if not final:
                return None
            from footprint.store import process_create_time

            nonce = f"node:{m.node}:{m.tree_root}:{process_create_time(m.tree_root)}"
            self.notes.append(
                f"the job's processes could not agree on a job key (no torchrun agent store or "
                f"process group reached): this part joins the processes of node {m.node} "
                "started by the same launcher process only"
            )
        self.id = m.job_id(m.full_key(nonce, self.name, self.seq))
        return self.id

    def fields(self) -> dict[str, Any] | None:
        """The record's ``job`` entry (None while the id is not agreed yet)."""
        if self.id is None:
            return None
        m = self.m
        return {
            "id": self.id,
            "launcher": m.launcher,
            "role": "part",
            "key": m.base,
            "world_size": m.world_size,
            "rank": m.rank,
            "local_rank": m.local_rank,
            "node": m.node,
            "measurer": self.measurer,
            "wrapper": m.wrapper.run_id if m.wrapper is not None else None,
            "gpus_used": self.gpus_used,
        }

    def after_save(self, record: RunRecord, store: Store, timeout_s: float) -> str | None:
        """Tell a wrapping ``footprint run`` which job its command joined, and gather parts
        through the job's channel. Returns a note for global rank 0's part (None: nothing
        gathered)."""
        m = self.m
        if m.wrapper is not None and self.id is not None:
            try:
                store.mark_wrapped(m.wrapper.run_id, self.id)
            except OSError as exc:
                self.notes.append(f"could not tell footprint run which job this is: {exc}")
        if m.rank is None or self.id is None or not m.world_size or m.world_size < 2:
            return None
        from footprint.jobs import channel

        ch = channel.open_channel(m, may_import=False)
        if ch is None:
            return None
        if m.rank != 0:
            channel.publish(ch, self.id, m.rank, record.to_json())
            return None
        return self._collect(ch, store, record, timeout_s)

    def _collect(self, ch: Any, store: Store, record: RunRecord, timeout_s: float) -> str:
        import json

        from footprint.jobs import channel
        from footprint.record.checks import RecordError
        from footprint.record.model import RunRecord

        assert self.id is not None and self.m.world_size is not None
        others = list(range(1, self.m.world_size))
        # A run that ended early (a signal, an exception) takes what is there: the other ranks
        # may never get to their end.
        wait_s = timeout_s if record.status == "completed" else 0.0
        t0 = time.monotonic()
        got = channel.collect(ch, self.id, others, wait_s, stop=_signal_waiting)
        took_ms = (time.monotonic() - t0) * 1e3
        saved = 0
        for _, text in sorted(got.items()):
            try:
                part = RunRecord.from_dict(json.loads(text))
            except (RecordError, ValueError):
                continue
            if part.job is None or part.job.id != self.id:
                continue
            target = store.part_file(self.id, part.id)
            if target.exists() and part.status == "running":
                continue
            try:
                store.save(part)
                saved += 1
            except OSError:
                continue
        via = "torchrun's agent store" if self.m.agent_store else "the process group's store"
        missing = [r for r in others if r not in got]
        note = (
            f"gathered {saved} of {len(others)} other ranks' parts through {via} "
            f"in {took_ms:.0f} ms"
        )
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            note += f"; none from rank(s) {shown} (their own stores may hold them)"
        return note


def torch_gpus_used() -> list[str] | None:
    """The UUIDs of the GPUs this process's torch holds memory on or made current (None: torch
    never initialised CUDA here). Asks torch only, never a device library of footprint's."""
    torch = sys.modules.get("torch")
    try:
        cuda = torch.cuda if torch is not None else None
        if cuda is None or not cuda.is_initialized():
            return None
        used = {cuda.current_device()}
        used.update(i for i in range(cuda.device_count()) if cuda.memory_allocated(i) > 0)
        return sorted(normal_uuid(str(cuda.get_device_properties(i).uuid)) for i in used)
    except Exception:  # an old torch without .uuid, a driver error: the GPUs stay unknown
        return None


def normal_uuid(uuid: str) -> str:
    """A GPU UUID as NVML writes it (``GPU-`` and lowercase), from NVML's or torch's form."""
    u = uuid.strip().lower()
    return u if u.startswith("gpu-") or u.startswith("mig-") else f"gpu-{u}"


def _signal_waiting() -> bool:
    """A SIGTERM or SIGINT held while the run ends: stop waiting for other ranks' parts."""
    signals = runtime.get().signals
    return bool(signals is not None and signals.pending)


def adopt(run_id: str, record: RunRecord, store: Store) -> RunRecord | None:
    """Make a wrapping ``footprint run``'s record its node's measurer part of the job its command
    joined (None: no tracker in the command joined one; the record stays a run of its own)."""
    job_id = store.wrapped_job(run_id)
    if job_id is None:
        return None
    inner = [p for p in store.parts(job_id) if p.job is not None and p.job.wrapper == run_id]
    if not inner:
        return None
    ref = inner[0].job
    assert ref is not None
    part = record.replace(
        job={
            "id": job_id,
            "launcher": ref.launcher,
            "role": "part",
            "key": ref.key,
            "world_size": ref.world_size,
            "node": ref.node,
            "measurer": True,
            "wrapper": run_id,
        }
    )
    store.save(part)
    store.remove(run_id)  # its checkpoints were a run of its own
    return store.job(job_id)
