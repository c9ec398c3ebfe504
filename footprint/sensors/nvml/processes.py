"""Which processes use a GPU, and how much of it each: the run's share of a shared GPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, GpuProcessShare


def gpu_share(nvml: Any, handle: Any, accounting: CpuAccounting) -> GpuProcessShare:
    """The run's share of one GPU: NVML's compute processes on it, and their SM utilisation
    samples (``nvmlDeviceGetProcessUtilization``) when processes outside the run use it."""
    from footprint.sensors.accounting import GpuProcessShare

    def processes() -> list[int]:
        return [int(p.pid) for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)]

    def utilisation(since_us: int) -> list[tuple[int, float, int]]:
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
        except nvml.NVMLError as exc:
            if getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_NOT_FOUND", -1):
                return []  # no sample since then
            raise
        return [(int(s.pid), float(s.smUtil), int(s.timeStamp)) for s in samples]

    return GpuProcessShare(lambda: accounting.pids, processes, utilisation)
