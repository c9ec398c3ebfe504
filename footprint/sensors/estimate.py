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

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footprint.errors import SensorError
from footprint.sensors.base import DeviceInfo, Reading, Sensor, SourceStatus
from footprint.sensors.cpu_models import cores_in_model_name, lookup_tdp, read_cpuinfo
from footprint.sensors.procfs import (
    ProcessTreeCpu,
    _root_process,
    _tree_rss_bytes,
    available_cpus,
    busy_cpu_s,
)

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        _check_mode(cpu_utilisation)
        details: dict[str, Any] = {"utilisation": cpu_utilisation}
        if cpu_utilisation == "process":
            root = _root_process(pid)
            pid = root.pid
            tree = ProcessTreeCpu(pid)
            self._busy_s: Callable[[], float] = tree.cpu_s
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
            details["utilisation_basis"] = (
                "machine busy time (user+nice+system+irq+softirq) / available CPUs"
            )
        self.model = model or cpu_power_model(
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

    ``scope="machine"``: ``psutil.virtual_memory().used``; ``"process"``: the RSS of ``pid``
    (default: this process) and its descendants (shared pages counted once per process).
    ``used_bytes`` and ``clock`` are injectable.
    """

    def __init__(
        self,
        *,
        scope: str = "machine",
        pid: int | None = None,
        w_per_gb: float = RAM_W_PER_GB,
        used_bytes: Callable[[], float] | None = None,
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
        if used_bytes is None:
            import psutil

            if scope == "process":
                root = _root_process(pid)
                details["pid"] = root.pid
                details["memory_basis"] = "RSS of the process tree"
                used_bytes = lambda: _tree_rss_bytes(root)  # noqa: E731
            else:
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


def discover_estimates(
    *,
    need_cpu: bool,
    need_ram: bool,
    cpu_utilisation: str = "machine",
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
) -> tuple[list[Sensor], SourceStatus]:
    """Build the estimate sensors the probe chain needs (CPU when RAPL gives no package, RAM
    when it gives no DRAM domain). ``cpu_utilisation`` ("machine" or "process", with ``pid``,
    default this process) also sets the RAM scope."""
    _check_mode(cpu_utilisation)
    sensors: list[Sensor] = []
    parts: list[str] = []
    fix: str | None = None
    if need_cpu:
        cpu = CpuEstimateSensor(
            cpu_utilisation=cpu_utilisation, pid=pid, proc_root=proc_root, sys_root=sys_root
        )
        sensors.append(cpu)
        m = cpu.model
        parts.append(
            f"CPU {m.cpu_model!r}: {m.tdp_w:g} W per {m.tdp_per} x {m.share:.4g} "
            f"= {m.max_power_w:.4g} W at full load ({cpu_utilisation} utilisation)"
        )
        if m.tdp_per != "package":
            fix = (
                f"no usable TDP for {m.cpu_model!r} ({m.tdp_source}); CPU energy is measured "
                "instead where RAPL is readable (/sys/class/powercap/intel-rapl*)"
            )
    if need_ram:
        sensors.append(RamEstimateSensor(scope=cpu_utilisation, pid=pid))
        parts.append(f"RAM: {RAM_W_PER_GB} W per GB in use")
    if not sensors:
        return [], SourceStatus("estimate", True, "not needed: CPU and RAM are measured")
    return sensors, SourceStatus("estimate", True, "; ".join(parts), fix)
