"""The probe chain: measured sources first, labelled estimates for whatever they leave uncovered.

GPUs come from NVML. CPU packages and DRAM come from RAPL; a CPU with no readable package domain
gets the utilisation x TDP estimate, and a machine with no DRAM domain gets the RAM estimate.
Discovered hardware sensors are cached per process, so a later run starts in microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from footprint import runtime
from footprint.options import DEFAULT_POWERCAP_ROOT
from footprint.sensors.base import Sensor, SourceStatus

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting


@dataclass
class Probe:
    """The sensors for a run and what each source said about this machine."""

    sensors: list[Sensor]
    sources: list[SourceStatus] = field(default_factory=list)
    #: overrides the user gave for a device that turned out to be measured
    unused: list[str] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return self.unused + [
            f"{s.source}: {s.summary}" + (f" (fix: {s.fix})" if s.fix else "")
            for s in self.sources
            if not s.available
        ]


def _cached(key: tuple, discover) -> tuple[list[Sensor], SourceStatus]:
    """Discovered once per process (the runtime's probe cache; a forked child probes again)."""
    rt = runtime.get()
    with rt.lock:
        if key not in rt.probe_cache:
            rt.probe_cache[key] = discover()
        return rt.probe_cache[key]


def probe(
    *,
    gpus: Sequence[int | str] | None = None,
    powercap_root: str | os.PathLike = DEFAULT_POWERCAP_ROOT,
    cpu_utilisation: str = "process",
    pid: int | None = None,
    accounting: CpuAccounting | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    cpu_power_w: float | None = None,
    ram_w_per_gb: float | None = None,
) -> Probe:
    """Find every sensor for a run on this machine (see the module docstring for the order)."""
    from footprint.sensors import estimate, nvml, rapl

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpu_key = ("nvml", tuple(gpus) if gpus is not None else None, visible)
    gpu_sensors, gpu_status = _cached(
        gpu_key, lambda: nvml.discover_gpus(gpus, visible_devices=visible)
    )
    rapl_sensors, rapl_status = _cached(
        ("rapl", os.fspath(powercap_root)), lambda: rapl.discover_rapl(powercap_root)
    )
    kinds = {s.device.kind for s in rapl_sensors}
    need_cpu, need_ram = "cpu" not in kinds, "dram" not in kinds
    sensors = [*gpu_sensors, *rapl_sensors]
    sources = [gpu_status, rapl_status]
    if need_cpu or need_ram:
        # Process-tree estimates belong to one pid; machine-wide ones can be shared.
        def discover_estimates():
            return estimate.discover_estimates(
                need_cpu=need_cpu,
                need_ram=need_ram,
                cpu_utilisation=cpu_utilisation,
                pid=pid,
                accounting=accounting,
                proc_root=proc_root,
                cpu_power_w=cpu_power_w,
                ram_w_per_gb=ram_w_per_gb,
            )

        overridden = cpu_power_w is not None or ram_w_per_gb is not None
        if cpu_utilisation == "machine" and not overridden and proc_root == "/proc":
            est, est_status = _cached(("estimate", need_cpu, need_ram), discover_estimates)
        else:
            est, est_status = discover_estimates()
        sensors += est
        sources.append(est_status)
    unused = []
    if cpu_power_w is not None and not need_cpu:
        unused.append(f"cpu_power_w={cpu_power_w:g} was not used: the CPU is measured (RAPL)")
    if ram_w_per_gb is not None and not need_ram:
        unused.append(f"ram_w_per_gb={ram_w_per_gb:g} was not used: DRAM is measured (RAPL)")
    return Probe(sensors, sources, unused)
