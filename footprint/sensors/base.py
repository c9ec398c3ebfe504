"""The one small interface every energy source sits behind.

A sensor stands for one device (a GPU, a CPU package, a DRAM domain, the machine's RAM...). It
gives a *cumulative* energy in joules since the sensor was created, monotonically non-decreasing,
and says how it got it. The tracker never integrates power itself: it differences two readings
taken at the exact instants it cares about (run start/stop, phase boundaries).

Sensors are long-lived (created once per process by :mod:`footprint.sensors.probe` and reused by
later runs, so a second run starts fast). Reads may come from several threads at once (the
sampler thread and the user's thread at a phase boundary): implementations must be thread-safe.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, Share

DeviceKind = Literal["gpu", "cpu", "dram", "ram"]


@dataclass(frozen=True)
class DeviceInfo:
    """What a device is and how its energy is obtained.

    ``id`` is stable within a machine and unique among the sensors of one probe, e.g. ``"gpu:0"``,
    ``"cpu:0"`` (RAPL package 0), ``"dram:0"``, ``"cpu"`` (an estimate for the whole CPU),
    ``"ram"``. ``method`` is a short label documented in docs/ (e.g. ``"nvml-energy-counter"``,
    ``"nvml-power-polling"``, ``"rapl"``, ``"estimate:tdp-x-utilisation"``,
    ``"estimate:ram-w-per-gb"``). ``measured`` is False for every estimate.
    ``details`` holds method-specific facts worth recording (TDP used and where it came from,
    the share of a host's CPUs, a GPU's UUID, ...); it must be JSON-serialisable.
    """

    id: str
    kind: DeviceKind
    name: str
    method: str
    measured: bool
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "method": self.method,
            "measured": self.measured,
            "details": copy.deepcopy(self.details),
        }


@dataclass(frozen=True)
class Reading:
    """One cumulative reading of a sensor.

    ``energy_j`` is the energy since the sensor was created. ``uncertain_intervals`` is a
    cumulative count of read-to-read intervals whose energy could not be known for sure (e.g. a
    RAPL counter read so late that it may have wrapped twice); a window whose count went up is
    flagged as uncertain by the tracker, never silently trusted.
    """

    energy_j: float
    uncertain_intervals: int = 0


class Sensor(ABC):
    """A device's cumulative energy counter (measured, integrated, or estimated)."""

    device: DeviceInfo

    #: Longest safe time between two reads, in seconds (e.g. the shortest time in which a RAPL
    #: counter could wrap at the domain's maximum power, halved). The sampler reads at least
    #: this often. None: no limit.
    max_read_interval_s: float | None = None
    #: How the energy it reads relates to the run, for the record (docs/attribution.md): a
    #: device that measures only the run's work says so; one that measures a whole device
    #: other processes may share returns a :meth:`share` to charge the run its part.
    attribution: str = "whole device"

    def __init__(self) -> None:
        self._active = 0
        self._active_lock = threading.Lock()

    @abstractmethod
    def read(self) -> Reading:
        """Return the cumulative energy now. Thread-safe. Raises SensorError on failure."""

    def share(self, accounting: CpuAccounting) -> Share | None:
        """How to find the run's share of this device's energy (None: all of it is the run's).
        ``accounting`` reads the run's process tree and the machine's CPU time."""
        return None

    def start(self) -> None:
        """A run begins using this sensor (reference counted: runs may nest)."""
        with self._active_lock:
            self._active += 1
            if self._active == 1:
                self._on_first_start()

    def stop(self) -> None:
        """A run stopped using this sensor."""
        with self._active_lock:
            if self._active == 0:
                return
            self._active -= 1
            if self._active == 0:
                self._on_last_stop()

    def _on_first_start(self) -> None:
        """Start background work (e.g. a fast power-polling thread). Default: nothing."""

    def _on_last_stop(self) -> None:
        """Stop background work started in :meth:`_on_first_start`. Default: nothing."""

    def close(self) -> None:
        """Release the device for good (end of process). Default: nothing."""


@dataclass(frozen=True)
class SourceStatus:
    """What one source (``"nvml"``, ``"rapl"``, ``"estimate"``) can do on this machine.

    Shown by ``footprint sensors`` and kept in run records. ``summary`` says what was found
    (``"2 GPUs, energy counter"``) or why nothing was (``"libnvidia-ml.so.1 not found"``);
    ``fix`` says exactly how to make it work, when something can be done.
    """

    source: str
    available: bool
    summary: str
    fix: str | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "available": self.available,
            "summary": self.summary,
            "fix": self.fix,
        }
