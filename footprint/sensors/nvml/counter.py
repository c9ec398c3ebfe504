"""Method 1: NVML's total-energy counter (Volta and newer), exact at every read."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from footprint.errors import SensorError
from footprint.sensors.base import DeviceInfo, Reading, Sensor

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, Share
from footprint.sensors.nvml.session import METHOD_COUNTER, _describe, _Gpu


class EnergyCounterSensor(Sensor):
    """Energy = NVML's total-energy counter minus its value when the sensor was created."""

    def __init__(self, gpu: _Gpu, details: dict, nvml: Any, baseline_mj: int) -> None:
        super().__init__()
        self.device = DeviceInfo(f"gpu:{gpu.index}", "gpu", gpu.name, METHOD_COUNTER, True, details)
        self._gpu, self._nvml = gpu, nvml
        self._lock = threading.Lock()
        self._offset_mj = -baseline_mj  # energy_mj = counter + offset
        self._last_mj = 0
        self._uncertain = 0

    def share(self, accounting: CpuAccounting) -> Share | None:
        from footprint.sensors.nvml.processes import gpu_share

        return gpu_share(self._nvml, self._gpu.handle, accounting)

    def read(self) -> Reading:
        # NVML is read under the lock too: two racing readers must not see their values in
        # the wrong order, which would look like the counter going backwards.
        with self._lock:
            try:
                counter_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._gpu.handle)
            except self._nvml.NVMLError as e:
                raise _read_error(self.device, "energy counter", e) from e
            energy_mj = counter_mj + self._offset_mj
            if energy_mj < self._last_mj:
                # The counter went backwards (driver reload, GPU reset): what happened since
                # the last read is unknown. Continue from the last value; flag the interval.
                self._offset_mj = self._last_mj - counter_mj
                self._uncertain += 1
                energy_mj = self._last_mj
            self._last_mj = energy_mj
            return Reading(energy_mj / 1000.0, self._uncertain)


def _read_error(device: DeviceInfo, what: str, error: Exception) -> SensorError:
    return SensorError(
        f"{device.id} ({device.name}): could not read the NVML {what}: {_describe(error)}. "
        "Check `nvidia-smi`; a lost GPU needs a reset or a reboot."
    )
