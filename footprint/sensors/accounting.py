"""The run's own share of machine-wide devices, and what else the machine was doing.

A RAPL package or a GPU measures everything that ran on it. :class:`CpuAccounting` reads the
run's process tree's CPU time and the machine's (``/proc/stat``) together at every reading of
the run's sensors; a machine-wide CPU counter is charged to the run by the tree's share of the
machine's busy CPU time over each interval (:class:`CpuTimeShare`). A GPU is charged by its
processes' share of the per-process SM utilisation NVML reports, when other processes use it
too, else in full (:class:`GpuProcessShare`). The same readings give the run's contention
figures (other processes' share of the CPUs, steal time, load, other processes on its GPUs).
docs/attribution.md explains the rules and their limits.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from footprint.sensors.procfs import (
    MachineCpu,
    ProcessTreeCpu,
    ProcFiles,
    load_avg_1m,
    machine_cpu,
)

CPU_SHARE_METHOD = "run's share: its process tree's CPU time / the machine's busy CPU time"
GPU_SHARE_METHOD = "run's share: its processes' SM utilisation / all processes' (NVML)"
GPU_WHOLE = "whole GPU: no other process used it during the run"

#: Other processes using more than this fraction of the CPUs (or stealing it) make a run's
#: figures unreliable: their load changes the run's own speed and power (docs/attribution.md).
CONTENTION_THRESHOLD = 0.25
#: Shorter runs are not judged: CPU times come in 10 ms ticks, too coarse for a shorter window.
MIN_JUDGED_S = 0.25


class Share(Protocol):
    """How much of a machine-wide device's energy over the latest interval is the run's."""

    @property
    def fraction(self) -> float: ...

    @property
    def method(self) -> str: ...

    def update(self) -> None: ...


class CpuAccounting:
    """The run's process tree's CPU time and the machine's, read together (``update``).

    ``tree`` and ``machine`` are injectable (tests give known CPU times). ``fraction`` is the
    tree's share of the machine's busy CPU time over the interval before the latest update (1
    when the machine was idle: there was nobody else to charge).
    """

    def __init__(
        self,
        pid: int,
        *,
        proc_root: str | os.PathLike[str] = "/proc",
        tree: ProcessTreeCpu | None = None,
        machine: Callable[[], MachineCpu | None] | None = None,
        load: Callable[[], float | None] | None = None,
        logical_cpus: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        root = os.fspath(proc_root)
        self.tree = tree if tree is not None else ProcessTreeCpu(pid, proc_root=root)
        self.files = ProcFiles.shared(f"machine:{root}")  # /proc/stat and /proc/loadavg
        self._machine = machine if machine is not None else (lambda: machine_cpu(root, self.files))
        self._load = load if load is not None else (lambda: load_avg_1m(root, self.files))
        self._clock = clock
        self._lock = threading.Lock()
        self.fraction = 1.0
        self.tree_s = self.tree.cpu_s()
        first = self._machine()
        self.logical_cpus = logical_cpus or (_cpu_lines(root) if machine is None else 0) or 1
        self.available = first is not None
        self._t0 = self._t = clock()
        self._m0 = self._m = first
        self._tree0 = self.tree_s
        self._max_load: float | None = None
        self._load_at = -1e300

    def update(self) -> None:
        """Read the tree and the machine now; set :attr:`fraction` for the interval since."""
        with self._lock:
            tree_s = self.tree.cpu_s()
            m = self._machine()
            now = self._clock()
            if m is not None and self._m is not None:
                d_busy = m.busy_s - self._m.busy_s
                d_tree = tree_s - self.tree_s
                if d_busy > 0:
                    self.fraction = min(1.0, max(0.0, d_tree / d_busy))
                self._m = m
            self.tree_s = tree_s
            self._t = now
            if now - self._load_at >= 5.0:  # the load average moves slowly: read it rarely
                self._load_at = now
                load = self._load()
                if load is not None:
                    self._max_load = load if self._max_load is None else max(self._max_load, load)

    def tree_cpu_s(self) -> float:
        """The tree's CPU-seconds at the latest update (the CPU estimate reads this, so the tree
        is read once per reading of the run's sensors)."""
        return self.tree_s

    @property
    def pids(self) -> frozenset[int]:
        return self.tree.pids

    def summary(self, gpu_others: int = 0) -> dict[str, Any]:
        """The run's contention figures (a ``ContentionRecord``'s fields)."""
        with self._lock:
            elapsed = self._t - self._t0
            out: dict[str, Any] = {
                "load_avg_1m": self._max_load,
                "gpu_other_processes": gpu_others,
                "threshold": CONTENTION_THRESHOLD,
            }
            if self._m is None or self._m0 is None or elapsed < MIN_JUDGED_S:
                out["contended"] = gpu_others > 0
                if gpu_others:
                    out["reason"] = f"{gpu_others} other process(es) used the run's GPUs"
                return out
            capacity_s = self.logical_cpus * elapsed
            run_s = max(0.0, self.tree_s - self._tree0)
            busy_s = max(0.0, self._m.busy_s - self._m0.busy_s)
            total_s = self._m.total_s - self._m0.total_s
            steal_s = max(0.0, self._m.steal_s - self._m0.steal_s)
        other = min(1.0, max(0.0, busy_s - run_s) / capacity_s)
        steal = min(1.0, steal_s / total_s) if total_s > 0 else 0.0
        out["other_cpu_fraction"] = round(other, 6)
        out["run_cpu_fraction"] = round(min(1.0, run_s / capacity_s), 6)
        out["steal_fraction"] = round(steal, 6)
        reasons = []
        if other > CONTENTION_THRESHOLD:
            reasons.append(f"other processes used {other:.0%} of the CPUs")
        if steal > CONTENTION_THRESHOLD:
            reasons.append(f"the hypervisor gave {steal:.0%} of the CPU time to other guests")
        if gpu_others:
            reasons.append(f"{gpu_others} other process(es) used the run's GPUs")
        out["contended"] = bool(reasons)
        out["reason"] = "; ".join(reasons) or None
        return out


def _cpu_lines(root: str) -> int:
    """The ``cpuN`` lines of the whole ``/proc/stat`` (logical CPUs online), once per process."""
    from footprint import runtime

    def count() -> int:
        m = machine_cpu(root)
        return (m.cpus if m else 0) or os.cpu_count() or 1

    return runtime.get().cached(f"proc_stat_cpus:{root}", count)


class CpuTimeShare:
    """A machine-wide CPU or DRAM counter (RAPL) charged by the run's share of CPU time."""

    method = CPU_SHARE_METHOD

    def __init__(self, accounting: CpuAccounting) -> None:
        self._accounting = accounting

    @property
    def fraction(self) -> float:
        return self._accounting.fraction

    def update(self) -> None:
        """Nothing: the accounting is updated once per reading for every device."""


class GpuProcessShare:
    """A GPU charged by the run's processes' share of its per-process SM utilisation.

    ``processes()`` lists the pids with a compute context on the GPU; ``utilisation(since)``
    the per-process SM utilisation samples NVML kept since a timestamp, as (pid, sm %) pairs.
    While no process outside the run uses the GPU, the run gets all of it.
    """

    def __init__(
        self,
        pids: Callable[[], frozenset[int]],
        processes: Callable[[], list[int]],
        utilisation: Callable[[int], list[tuple[int, float, int]]],
        clock_us: Callable[[], int] = lambda: int(time.time() * 1e6),
    ) -> None:
        self._pids, self._processes, self._utilisation = pids, processes, utilisation
        self._clock_us = clock_us
        self._since_us = clock_us()
        self.fraction = 1.0
        self.others_seen = 0
        #: whether a process of the run was seen on the GPU (None: never asked successfully):
        #: a job drops a GPU none of its ranks used
        self.mine_seen: bool | None = None
        self.error: str | None = None

    @property
    def method(self) -> str:
        return GPU_SHARE_METHOD if self.others_seen else GPU_WHOLE

    def update(self) -> None:
        """Ask NVML who uses the GPU; a failure keeps the previous fraction (and is noted)."""
        try:
            mine = self._pids()
            running = self._processes()
            others = [p for p in running if p not in mine]
            self.mine_seen = bool(self.mine_seen) or len(others) < len(running)
            self.others_seen = max(self.others_seen, len(others))
            if not others:
                self.fraction = 1.0
                self._since_us = self._clock_us()
                return
            samples = self._utilisation(self._since_us)
        except Exception as exc:  # NVML may not support per-process queries on this GPU
            self.error = self.error or str(exc)
            return
        if samples:
            self._since_us = max(ts for _, _, ts in samples)
            total = sum(sm for _, sm, _ in samples)
            own = sum(sm for pid, sm, _ in samples if pid in mine)
            if total > 0:
                self.fraction = min(1.0, own / total)


def busy_now(interval_s: float = 0.5, proc_root: str | os.PathLike[str] = "/proc") -> float | None:
    """The fraction of the machine's CPUs busy over the next ``interval_s`` (before a job
    starts, all of it is other processes'), or None where /proc/stat cannot be read."""
    first = machine_cpu(proc_root)
    t0 = time.monotonic()
    time.sleep(interval_s)
    last = machine_cpu(proc_root)
    elapsed = time.monotonic() - t0
    if first is None or last is None or elapsed <= 0:
        return None
    cpus = last.cpus or os.cpu_count() or 1
    return min(1.0, max(0.0, (last.busy_s - first.busy_s) / (cpus * elapsed)))
