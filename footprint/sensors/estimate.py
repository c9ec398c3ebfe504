"""Estimated CPU and RAM energy, for where nothing can be read (no RAPL package or DRAM domain).

Both sensors say ``measured=False`` and record every assumption in ``DeviceInfo.details``;
docs/estimates.md explains the models and their sources.

CPU (``estimate:tdp-x-utilisation``)::

    power_w = tdp_w x utilisation x share

``tdp_w`` is the TDP of one package from codecarbon's table (exact match only) or a labelled
default per logical CPU; ``share`` is how much of that unit this machine or container has (e.g.
4 of a 64-thread package = 0.0625); ``utilisation`` is the busy fraction of the CPUs it has,
over the interval since the previous read. Summed over intervals this is simply
``busy CPU-seconds x W per busy logical CPU``, so the answer does not depend on how often the
sensor is read.

RAM (``estimate:ram-w-per-gb``)::

    power_w = 0.3725 W/GB x memory in use (GB = 2**30 bytes), trapezoid-integrated between reads

psutil is imported when a sensor is built, not when this module is imported. What the kernel
says about CPUs and processes is read by :mod:`footprint.sensors.procfs`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footprint.errors import SensorError
from footprint.sensors.base import DeviceInfo, Reading, Sensor, SourceStatus
from footprint.sensors.cpu_models import cores_in_model_name, lookup_tdp, read_cpuinfo
from footprint.sensors.procfs import (
    ProcessTreeCpu,
    ProcFiles,
    _root_process,
    available_cpus,
    busy_cpu_s,
    tree_memory_bytes,
)

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting

CPU_METHOD = "estimate:tdp-x-utilisation"
RAM_METHOD = "estimate:ram-w-per-gb"
CPU_UTILISATION_MODES = ("machine", "process")

#: Green Algorithms' TDP per core for an unknown CPU ("Any", 12 W per core, data/v3.0/TDP_cpu.csv
#: of GreenAlgorithms/green-algorithms-tool), split over the 2 hardware threads per core that
#: cloud vCPUs and SMT hosts have.
DEFAULT_W_PER_CORE = 12.0
ASSUMED_THREADS_PER_CORE = 2
DEFAULT_W_PER_LOGICAL_CPU = DEFAULT_W_PER_CORE / ASSUMED_THREADS_PER_CORE

#: Green Algorithms' memory power (Lannelongue et al. 2021, referenceValues.csv "memoryPower").
RAM_W_PER_GB = 0.3725
BYTES_PER_GB = 2**30  # memory is sold in binary gigabytes

# Busy time the kernel reports late (it counts in clock ticks) may be credited against this much
# recently unused capacity, so a read right after a tick boundary does not lose energy.
_SPARE_CAPACITY_S = 0.1


@dataclass(frozen=True)
class CpuPowerModel:
    """How the CPU estimate turns busy CPU time into watts on this machine.

    ``tdp_w`` is the power of one ``tdp_per`` unit ("package" or "logical cpu") at full load;
    ``share`` is how many such units this machine or container has; ``available_cpus`` is how
    many logical CPUs it may keep busy at once.
    """

    cpu_model: str
    tdp_w: float
    tdp_per: str
    tdp_source: str
    share: float
    share_basis: str
    available_cpus: float
    available_cpus_basis: str
    logical_cpus: int
    host_threads_per_package: int | None
    host_threads_source: str
    vm: bool

    @property
    def max_power_w(self) -> float:
        """Power with every available logical CPU busy."""
        return self.tdp_w * self.share

    @property
    def w_per_busy_cpu(self) -> float:
        """Power of one logical CPU kept busy for a second, in W."""
        return self.max_power_w / self.available_cpus

    def details(self) -> dict:
        """JSON-serialisable facts for :attr:`DeviceInfo.details`."""
        return {
            "cpu_model": self.cpu_model,
            "tdp_w": self.tdp_w,
            "tdp_per": self.tdp_per,
            "tdp_source": self.tdp_source,
            "share": self.share,
            "share_basis": self.share_basis,
            "available_cpus": self.available_cpus,
            "available_cpus_basis": self.available_cpus_basis,
            "logical_cpus": self.logical_cpus,
            "host_threads_per_package": self.host_threads_per_package,
            "host_threads_source": self.host_threads_source,
            "vm": self.vm,
            "max_power_w": self.max_power_w,
        }


def cpu_power_model(
    *,
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
    table: Path | None = None,
) -> CpuPowerModel:
    """Work out the TDP, the host's threads per package and this machine's share of them.

    ``pid`` selects whose CPU quota and affinity count (default: this process). ``table``
    replaces codecarbon's ``cpu_power.csv`` (tests).
    """
    info = read_cpuinfo(proc_root)
    model = info.model or "unknown"
    logical = info.logical_cpus
    available, available_basis = available_cpus(
        logical, pid=pid, proc_root=proc_root, sys_root=sys_root
    )

    # Threads per package of the *host*: true on bare metal; inside a VM the topology is virtual.
    threads: int | None = None
    if not info.hypervisor:
        if info.siblings:
            threads = info.siblings
            threads_source = "/proc/cpuinfo 'siblings' (bare metal, so the real package)"
        elif info.packages:
            threads = max(1, logical // info.packages)
            threads_source = f"{logical} logical CPUs / {info.packages} packages in /proc/cpuinfo"
        else:
            threads_source = "unknown: /proc/cpuinfo gives no siblings or physical ids"
    else:
        cores = cores_in_model_name(model)
        if cores:
            threads = cores * ASSUMED_THREADS_PER_CORE
            threads_source = (
                f"VM: model name states {cores} cores; "
                f"{ASSUMED_THREADS_PER_CORE} threads per core assumed (SMT)"
            )
        else:
            threads_source = "unknown: VM (hypervisor flag) and the model name states no cores"

    match = lookup_tdp(model, table) if info.model else None
    if match is not None and match.tdp_w is not None and threads:
        return CpuPowerModel(
            cpu_model=model,
            tdp_w=match.tdp_w,
            tdp_per="package",
            tdp_source=match.reason,
            share=available / threads,
            share_basis=f"{available:g} of the host package's {threads} logical CPUs",
            available_cpus=available,
            available_cpus_basis=available_basis,
            logical_cpus=logical,
            host_threads_per_package=threads,
            host_threads_source=threads_source,
            vm=info.hypervisor,
        )

    default = f"default: {DEFAULT_W_PER_LOGICAL_CPU:g} W per logical CPU"
    if match is None:
        why = "no CPU model name in /proc/cpuinfo"
    elif match.tdp_w is None:
        why = match.reason
    else:  # a TDP but no package size to divide it by
        why = (
            f"{match.reason} ({match.tdp_w:g} W per package) unusable: "
            f"host threads per package {threads_source}"
        )
    return CpuPowerModel(
        cpu_model=model,
        tdp_w=DEFAULT_W_PER_LOGICAL_CPU,
        tdp_per="logical cpu",
        tdp_source=f"{default}, {why}",
        share=available,
        share_basis=f"{available:g} logical CPUs",
        available_cpus=available,
        available_cpus_basis=available_basis,
        logical_cpus=logical,
        host_threads_per_package=threads,
        host_threads_source=threads_source,
        vm=info.hypervisor,
    )


def cached_power_model(
    *,
    pid: int | None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
) -> CpuPowerModel:
    """:func:`cpu_power_model`, worked out once per process and pid (~2 ms of /proc and cgroup
    reads that every run's start would otherwise repeat)."""
    from footprint import runtime

    key = f"cpu_power_model:{os.getpid()}:{pid}:{os.fspath(proc_root)}:{os.fspath(sys_root)}"
    return runtime.get().cached(
        key, lambda: cpu_power_model(pid=pid, proc_root=proc_root, sys_root=sys_root)
    )


def _check_mode(cpu_utilisation: str) -> None:
    if cpu_utilisation not in CPU_UTILISATION_MODES:
        raise ValueError(
            f"cpu_utilisation={cpu_utilisation!r} is not one of {CPU_UTILISATION_MODES}: use "
            "'machine' for the whole machine's CPU use, or 'process' for one process tree's"
        )


# --- sensors ----------------------------------------------------------------------------------


class CpuEstimateSensor(Sensor):
    """The whole CPU's energy estimated as TDP x utilisation x share (id ``"cpu"``).

    ``cpu_utilisation="machine"`` uses the machine's busy time (``psutil.cpu_times``);
    ``"process"`` uses the CPU time of ``pid`` (default: this process) and all its descendants,
    including those that exited. ``model``, ``cpu_times`` and ``clock`` are injectable.
    """

    def __init__(
        self,
        *,
        cpu_utilisation: str = "machine",
        pid: int | None = None,
        proc_root: str | os.PathLike[str] = "/proc",
        sys_root: str | os.PathLike[str] = "/sys",
        model: CpuPowerModel | None = None,
        cpu_times: Callable[[], Any] | None = None,
        tree_cpu_s: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        _check_mode(cpu_utilisation)
        details: dict[str, Any] = {"utilisation": cpu_utilisation}
        if cpu_utilisation == "process":
            pid = os.getpid() if pid is None else pid
            if tree_cpu_s is None:
                _root_process(pid)  # a clear error for a pid that does not exist
                tree_cpu_s = ProcessTreeCpu(pid, proc_root=proc_root).cpu_s
            self._busy_s: Callable[[], float] = tree_cpu_s
            self.attribution = "run's own: its process tree's CPU time"
            details["pid"] = pid
            details["utilisation_basis"] = (
                "CPU time (user+system, plus reaped children) of the process tree / available CPUs"
            )
        else:
            if cpu_times is None:
                import psutil

                cpu_times = psutil.cpu_times
            times_fn = cpu_times
            self._busy_s = lambda: busy_cpu_s(times_fn())
            self.attribution = "whole machine: every process's CPU time (cpu_utilisation='machine')"
            details["utilisation_basis"] = (
                "machine busy time (user+nice+system+irq+softirq) / available CPUs"
            )
        self.model = model or cached_power_model(
            pid=pid if cpu_utilisation == "process" else None,
            proc_root=proc_root,
            sys_root=sys_root,
        )
        self.device = DeviceInfo(
            id="cpu",
            kind="cpu",
            name=self.model.cpu_model,
            method=CPU_METHOD,
            measured=False,
            details={**self.model.details(), **details},
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._energy_j = 0.0
        self._spare_cpu_s = 0.0
        self._last_t = clock()
        self._last_busy_s = self._busy_s()

    def read(self) -> Reading:
        with self._lock:
            now = self._clock()
            try:
                busy_s = self._busy_s()
            except Exception as exc:  # psutil or /proc failure, at the hardware edge
                raise SensorError(f"CPU time could not be read for the estimate: {exc}") from exc
            dt = now - self._last_t
            if dt <= 0.0:
                return Reading(self._energy_j)
            # a counter going backwards (e.g. a CPU taken offline) counts as no work
            used_s = max(0.0, busy_s - self._last_busy_s)
            # Busy time beyond the available CPUs is not ours (a container sees the host's
            # /proc/stat), except for tick lag that unused capacity just before can absorb.
            capacity_s = self.model.available_cpus * dt + self._spare_cpu_s
            counted_s = min(used_s, capacity_s)
            self._spare_cpu_s = min(
                capacity_s - counted_s, self.model.available_cpus * _SPARE_CAPACITY_S
            )
            self._energy_j += counted_s * self.model.w_per_busy_cpu
            self._last_t, self._last_busy_s = now, busy_s
            return Reading(self._energy_j)


class RamEstimateSensor(Sensor):
    """RAM energy estimated as 0.3725 W per GB of memory in use (id ``"ram"``).

    ``scope="machine"``: ``psutil.virtual_memory().used``; ``"process"``: the proportional set
    size of ``pid`` (default: this process) and its descendants (:class:`TreeMemory`), so a
    forked worker's shared pages are counted once. ``used_bytes`` and ``clock`` are injectable.
    """

    def __init__(
        self,
        *,
        scope: str = "machine",
        pid: int | None = None,
        w_per_gb: float = RAM_W_PER_GB,
        used_bytes: Callable[[], float] | None = None,
        pids: Callable[[], frozenset[int]] | None = None,
        proc_root: str = "/proc",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        _check_mode(scope)
        if not w_per_gb > 0:
            raise ValueError(f"w_per_gb must be a positive power per GB of memory, not {w_per_gb}")
        details: dict[str, Any] = {
            "w_per_gb": w_per_gb,
            "bytes_per_gb": BYTES_PER_GB,
            "w_per_gb_source": "Green Algorithms memoryPower (Lannelongue et al. 2021)",
            "scope": scope,
        }
        self.attribution = (
            "run's own: its process tree's proportional set size"
            if scope == "process"
            else "whole machine: all memory in use (cpu_utilisation='machine')"
        )
        if used_bytes is None:
            if scope == "process":
                pid = os.getpid() if pid is None else pid
                if pids is None:
                    tree = ProcessTreeCpu(_root_process(pid).pid, proc_root=proc_root)
                    pids = lambda: tree.pids  # noqa: E731
                details["pid"] = pid
                details["memory_basis"] = TreeMemory.BASIS
                used_bytes = TreeMemory(pids, proc_root, clock=clock)
            else:
                import psutil

                details["memory_basis"] = "psutil.virtual_memory().used"
                used_bytes = lambda: psutil.virtual_memory().used  # noqa: E731
        self._used_bytes = used_bytes
        self._w_per_byte = w_per_gb / BYTES_PER_GB
        self.device = DeviceInfo(
            id="ram",
            kind="ram",
            name="RAM",
            method=RAM_METHOD,
            measured=False,
            details=details,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._energy_j = 0.0
        self._last_t = clock()
        self._last_power_w = self._power_w()

    def _power_w(self) -> float:
        try:
            return max(0.0, float(self._used_bytes())) * self._w_per_byte
        except Exception as exc:
            raise SensorError(f"memory in use could not be read for the estimate: {exc}") from exc

    def read(self) -> Reading:
        with self._lock:
            now = self._clock()
            power_w = self._power_w()
            dt = now - self._last_t
            if dt > 0.0:
                self._energy_j += 0.5 * (self._last_power_w + power_w) * dt
                self._last_t, self._last_power_w = now, power_w
            return Reading(self._energy_j)


class TreeMemory:
    """Memory in use by a process tree: its proportional set size (PSS), between PSS reads its
    resident set size scaled by the latest PSS/RSS ratio.

    Reading PSS (``smaps_rollup``) walks every page table: ~0.2 ms for a small process, ~7 ms
    with PyTorch loaded. It is read on the sampler thread only, the first time
    ``min_pss_interval_s`` after the start, then at most once per ``min_pss_interval_s`` and
    never more than 0.1 % of the time; every other read costs one ``statm`` per process (held
    open). Until the first PSS read, the tree is charged its RSS.
    """

    BASIS = "proportional set size (PSS) of the process tree"

    def __init__(
        self,
        pids: Callable[[], frozenset[int]],
        proc_root: str = "/proc",
        *,
        min_pss_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pids, self._root, self._clock = pids, proc_root, clock
        self._files = ProcFiles.shared(f"memory:{proc_root}")
        self._min_interval_s = min_pss_interval_s
        self._ratio = 1.0
        # the first PSS read 5 s in: a short run is charged its RSS rather than pay for it
        self._next_pss = clock() + min_pss_interval_s

    def __call__(self) -> float:
        pids = self._pids()
        rss = tree_memory_bytes(pids, self._root, pss=False, files=self._files)
        self._files.keep_only({f"{self._root}/{p}/" for p in pids})
        now = self._clock()
        # PSS on the sampler thread only: a phase boundary in the user's loop never waits for it
        if now >= self._next_pss and threading.current_thread().name == "footprint-sampler":
            t0 = time.perf_counter()
            pss = tree_memory_bytes(pids, self._root, pss=True)
            cost_s = time.perf_counter() - t0
            self._next_pss = now + max(self._min_interval_s, cost_s * 1000)
            if rss > 0 and pss > 0:
                self._ratio = min(1.0, pss / rss)
        return rss * self._ratio


def user_power_model(cpu_power_w: float, base: CpuPowerModel) -> CpuPowerModel:
    """``base`` with the user's power for all the CPUs the run may use, at full load."""
    return dataclasses.replace(
        base,
        tdp_w=cpu_power_w,
        tdp_per="the CPUs available to the run",
        tdp_source=f"user-supplied: cpu_power_w={cpu_power_w:g} W at full load",
        share=1.0,
        share_basis="cpu_power_w is for all the CPUs the run may use",
    )


def discover_estimates(
    *,
    need_cpu: bool,
    need_ram: bool,
    cpu_utilisation: str = "process",
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
    accounting: CpuAccounting | None = None,
    cpu_power_w: float | None = None,
    ram_w_per_gb: float | None = None,
) -> tuple[list[Sensor], SourceStatus]:
    """Build the estimate sensors the probe chain needs (CPU when RAPL gives no package, RAM
    when it gives no DRAM domain). ``cpu_utilisation`` ("process", with ``pid``, default this
    process, or "machine") also sets the RAM scope; ``accounting`` (the run's CPU accounting)
    supplies the process tree so it is read once per reading. ``cpu_power_w`` (all the CPUs the
    run may use, at full load) and ``ram_w_per_gb`` replace the tables' figures."""
    _check_mode(cpu_utilisation)
    sensors: list[Sensor] = []
    parts: list[str] = []
    fix: str | None = None
    process = cpu_utilisation == "process"
    if need_cpu:
        model = None
        if cpu_power_w is not None:
            model = user_power_model(
                cpu_power_w,
                cached_power_model(
                    pid=pid if process else None, proc_root=proc_root, sys_root=sys_root
                ),
            )
        cpu = CpuEstimateSensor(
            cpu_utilisation=cpu_utilisation,
            pid=pid,
            proc_root=proc_root,
            sys_root=sys_root,
            model=model,
            tree_cpu_s=accounting.tree_cpu_s if accounting is not None and process else None,
        )
        sensors.append(cpu)
        m = cpu.model
        parts.append(
            f"CPU {m.cpu_model!r}: {m.tdp_w:g} W per {m.tdp_per} x {m.share:.4g} "
            f"= {m.max_power_w:.4g} W at full load ({cpu_utilisation} utilisation)"
        )
        if m.tdp_per == "logical cpu":
            fix = (
                f"no usable TDP for {m.cpu_model!r} ({m.tdp_source}); CPU energy is measured "
                "instead where RAPL is readable (/sys/class/powercap/intel-rapl*), or give "
                "cpu_power_w= (--cpu-power-w) if you know it"
            )
    if need_ram:
        ram = RamEstimateSensor(
            scope=cpu_utilisation,
            pid=pid,
            w_per_gb=RAM_W_PER_GB if ram_w_per_gb is None else ram_w_per_gb,
            pids=(lambda: accounting.pids) if accounting is not None and process else None,
            proc_root=os.fspath(proc_root),
        )
        if ram_w_per_gb is not None:
            ram.device.details["w_per_gb_source"] = f"user-supplied: ram_w_per_gb={ram_w_per_gb:g}"
        sensors.append(ram)
        parts.append(f"RAM: {ram.device.details['w_per_gb']:g} W per GB in use")
    if not sensors:
        return [], SourceStatus("estimate", True, "not needed: CPU and RAM are measured")
    return sensors, SourceStatus("estimate", True, "; ".join(parts), fix)
