"""Method 2: power polling for GPUs without an energy counter: one thread per discovery
samples every started GPU at the strata's planned instants (:mod:`footprint.sensors.stratified`),
by the poller's clock."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from footprint.sensors.base import DeviceInfo, Reading, Sensor

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, Share
from footprint.sensors.nvml.counter import _read_error
from footprint.sensors.nvml.session import METHOD_POLLING, _Gpu
from footprint.sensors.stratified import Lateness, Slots, Strata, once, poll_all


class _Bell:
    """Wakes the poller's thread early (a re-plan) or for good (stop). A bare lock used as a
    binary semaphore: cheaper to wait on than an Event, which matters 200 times a second."""

    def __init__(self) -> None:
        self.stopped = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def ring(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:
            pass  # already rung, not yet heard

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s`` (math.inf: until rung); True if rung."""
        if timeout_s == math.inf:
            return self._lock.acquire()
        return self._lock.acquire(timeout=timeout_s)


class PowerPoller:
    """One thread sampling every started power-polling sensor of a discover_gpus call, at one
    shared planned instant per stratum (:class:`Slots`)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._slots = Slots(interval_s, self._rng.random)
        self.lateness = Lateness(interval_s)
        self.wakeups = 0  # for benchmarks and tests
        self._active: list[PowerPollingSensor] = []
        self._thread: threading.Thread | None = None
        self._bell: _Bell | None = None
        self._target = math.inf  # when the thread will wake next (under the lock)

    def strata(self) -> Strata:
        return Strata(self._slots)

    def activate(self, sensor: PowerPollingSensor) -> None:
        with self._lock:
            initial_w = sensor._power_w_or_hold()
            sensor._strata.begin(self.clock(), initial_w)
            self._active.append(sensor)
            if self._thread is None:
                self._bell = bell = _Bell()
                self._target = -math.inf
                self._thread = threading.Thread(
                    target=self._run, args=(bell,), name="footprint-nvml-poller", daemon=True
                )
                self._thread.start()
            else:
                self._replan(sensor)

    def _replan(self, sensor: PowerPollingSensor) -> None:
        """Ring the thread if ``sensor`` now needs it before it means to wake (under the lock)."""
        if self._bell is not None and sensor._strata.active:
            if sensor._strata.next_wake(self.lateness.lead) < self._target:
                self._bell.ring()

    def deactivate(self, sensor: PowerPollingSensor) -> None:
        thread = None
        with self._lock:
            if sensor not in self._active:
                return
            sensor._strata.finish(self.clock(), once(sensor._power_w_at_stop))
            self._active.remove(sensor)
            if not self._active and self._thread is not None:
                assert self._bell is not None
                self._bell.stopped = True
                self._bell.ring()
                thread, self._thread, self._bell = self._thread, None, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def read(self, sensor: PowerPollingSensor) -> Reading:
        with self._lock:
            failed, sensor._failed = sensor._failed, None
            if failed is not None:
                raise _read_error(sensor.device, "power", failed) from failed
            strata = sensor._strata
            if strata.active:
                now = self.clock()
                power = once(sensor._power_w)
                try:
                    strata.settle(now, power)
                    strata.cut(now, power)
                except sensor._nvml.NVMLError as e:
                    raise _read_error(sensor.device, "power", e) from e
                self._replan(sensor)  # the cut may have drawn an earlier instant
            return Reading(strata.energy_j, sensor._failures)

    def _run(self, bell: _Bell) -> None:
        while True:
            with self._lock:
                if bell.stopped:
                    return
                self.wakeups += 1
                gpus = [(s._strata, s._power_w_or_hold) for s in self._active]
                wake = poll_all(gpus, self.clock(), self.lateness.lead)
                self._target = wake
            timeout = wake - self.clock()
            if timeout > 0 and not bell.wait(timeout):
                self.lateness.observe(self.clock() - wake)  # woke by itself: how late?


class PowerPollingSensor(Sensor):
    """Energy integrated from sampled power while started (see :class:`Strata`)."""

    def __init__(self, gpu: _Gpu, details: dict, nvml: Any, poller: PowerPoller) -> None:
        super().__init__()
        self.device = DeviceInfo(f"gpu:{gpu.index}", "gpu", gpu.name, METHOD_POLLING, True, details)
        self._gpu, self._nvml, self._poller = gpu, nvml, poller
        self._strata = poller.strata()
        # Guarded by the poller's lock: an NVML error met off the read path (raised by the next
        # read) and how many samples failed (reported as uncertain intervals).
        self._failed: Exception | None = None
        self._failures = 0

    @property
    def missed_strata(self) -> int:
        """Strata whose sample came only after they ended (the poller fell behind): each took
        the first power reading after its end instead (see :class:`Strata`)."""
        return self._strata.missed

    def _power_w(self) -> float:
        return self._nvml.nvmlDeviceGetPowerUsage(self._gpu.handle) / 1000.0

    def _power_w_or_hold(self, report: bool = True) -> float:
        # Off the read path (poller thread, start, stop) an NVML error must not break the run:
        # hold the last value, count an uncertain interval and (unless stopping: a later run
        # would get a stale error) let the next read raise it.
        try:
            return self._power_w()
        except self._nvml.NVMLError as e:
            if report:
                self._failed = e
            self._failures += 1
            return self._strata.last_w

    def _power_w_at_stop(self) -> float:
        return self._power_w_or_hold(report=False)

    def share(self, accounting: CpuAccounting) -> Share | None:
        from footprint.sensors.nvml.processes import gpu_share

        return gpu_share(self._nvml, self._gpu.handle, accounting)

    def read(self) -> Reading:
        return self._poller.read(self)

    def _on_first_start(self) -> None:
        self._poller.activate(self)

    def _on_last_stop(self) -> None:
        self._poller.deactivate(self)

    def close(self) -> None:
        with self._active_lock:
            if self._active:
                self._active = 0
                self._poller.deactivate(self)
