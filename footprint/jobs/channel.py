"""The job's key-value channel: torchrun's agent store, else the default process group's store.

Only the store's key-value calls are used, on a connection of footprint's own (torchrun's agent
store) or the group's store: never a collective, so the user's own collectives are never
blocked or reordered, and a group on NCCL needs no CUDA tensor. Every call has a timeout; a
channel that fails is given up and the store directory is the fallback (docs/distributed.md).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from footprint.jobs.identity import Membership, job_id_for

#: How long a connection or a single call to the channel may take.
CALL_TIMEOUT_S = 5.0
_PREFIX = "footprint/"
_stores: dict[tuple[int, tuple[str, int] | None], Any] = {}


def open_channel(m: Membership, *, may_import: bool) -> Any | None:
    """A key-value store all of the job's processes reach, or None.

    torch is imported only with ``may_import`` (at a run's end, never at its start)."""
    if m.agent_store is None and "torch.distributed" not in sys.modules:
        return None
    if "torch" not in sys.modules and not may_import:
        return None
    cache_key = (os.getpid(), m.agent_store)  # a connection is never used across a fork
    if cache_key in _stores:
        return _stores[cache_key]
    store: Any = None
    try:
        import torch.distributed as dist

        if m.agent_store is not None:
            host, port = m.agent_store
            store = dist.TCPStore(
                host,
                port,
                is_master=False,
                timeout=timedelta(seconds=CALL_TIMEOUT_S),
                wait_for_workers=False,
            )
        elif dist.is_available() and dist.is_initialized():
            from torch.distributed import distributed_c10d

            store = distributed_c10d._get_default_store()
    except Exception:  # unreachable, or the group is gone: the store directory is the fallback
        store = None
    if store is not None or m.agent_store is not None:
        _stores[cache_key] = store
    return store


def forget() -> None:
    """Drop the connections (tests)."""
    _stores.clear()


def agree_nonce(store: Any, m: Membership) -> str | None:
    """A value only this job's processes share: the first to ask sets it, the rest read it."""
    try:
        got = store.compare_set(f"{_PREFIX}nonce/{job_id_for(m.base)}", "", os.urandom(8).hex())
    except Exception:
        return None
    return got.decode("ascii", "replace") if isinstance(got, bytes) else str(got)


def _part_key(job_id: str, rank: int) -> str:
    return f"{_PREFIX}{job_id}/part/{rank}"


def publish(store: Any, job_id: str, rank: int, payload: str) -> bool:
    """Put one rank's part (its record's JSON) where global rank 0 collects it."""
    try:
        store.set(_part_key(job_id, rank), payload)
    except Exception:
        return False
    return True


def collect(
    store: Any,
    job_id: str,
    ranks: list[int],
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] = lambda: False,
) -> dict[int, str]:
    """The parts ``ranks`` published, waiting up to ``timeout_s`` for the missing ones (0: take
    what is there), and no longer once ``stop()`` is true (a signal is waiting)."""
    deadline = clock() + timeout_s
    got: dict[int, str] = {}
    pause = 0.002
    while True:
        for rank in ranks:
            if rank in got:
                continue
            key = _part_key(job_id, rank)
            try:
                if store.check([key]):
                    value = store.get(key)
                    got[rank] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            except Exception:
                return got  # the channel went away: what arrived is kept
        if len(got) == len(ranks) or clock() >= deadline or stop():
            return got
        time.sleep(min(pause, max(0.0, deadline - clock())))
        pause = min(pause * 2, 0.05)
