"""Reading a set of sensors together, the bounded power timeline, and the sampling thread.

Totals never come from here: the tracker differences the exact readings it takes at its own
boundaries. The sampler only adds intermediate readings, for the timeline (plots, hourly carbon)
and to keep wrapping counters (RAPL) read often enough.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from footprint import runtime
from footprint.errors import describe
from footprint.interrupts import critical
from footprint.sensors.base import Sensor

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, Share

Clock = Callable[[], float]


@dataclass(frozen=True)
class Snapshot:
    """Cumulative readings of every sensor at one instant (``t`` from the set's clock).

    ``energy_j`` is the run's own share of each device; ``machine_j`` what the device itself
    read (the same where the device's energy is all the run's).
    """

    t: float
    energy_j: tuple[float, ...]
    uncertain_intervals: tuple[int, ...]
    machine_j: tuple[float, ...] = ()


class SensorSet:
    """The sensors of one run, read together. A sensor that fails is frozen, not fatal.

    A failing sensor keeps its last good reading (so it adds no energy afterwards) and the
    failure is kept in :attr:`failures` (device id -> message) for the record: the profiler
    never breaks the run it measures.
    """

    def __init__(
        self,
        sensors: Sequence[Sensor],
        clock: Clock = time.monotonic,
        accounting: CpuAccounting | None = None,
    ) -> None:
        self.sensors = list(sensors)
        self.clock = clock
        self.accounting = accounting
        #: per sensor, how to charge the run its share of a machine-wide device (None: all)
        self.shares: list[Share | None] = [
            _share(s, accounting) if accounting is not None else None for s in self.sensors
        ]
        self._tick_shares = [sh for sh in self.shares if sh is not None and _per_tick(sh)]
        self.failures: dict[str, str] = {}
        self.accounting_error: str | None = None
        #: device id -> (first bad value seen, how many): readings that were not a finite,
        #: non-decreasing number of joules; the last good value was held for each
        self.faults: dict[str, tuple[str, int]] = {}
        self._last = [0.0] * len(self.sensors)
        self._own = [0.0] * len(self.sensors)
        self._uncertain = [0] * len(self.sensors)
        self._lock = threading.Lock()

    def read(self, tick: bool = False) -> Snapshot:
        """Read every sensor now (thread-safe; a signal arriving meanwhile waits for the end).

        The CPU accounting is read first, so each interval's energy is charged by the share
        measured over that same interval; per-process GPU queries (slower) are made on the
        sampler's ``tick`` reads only, and other reads use the latest GPU share.
        """
        with critical:
            t = self.clock()
            with self._lock:
                if self.accounting is not None:
                    try:
                        self.accounting.update()
                    except Exception as exc:  # /proc vanished: keep the last share
                        self.accounting_error = self.accounting_error or describe(exc)
                if tick:
                    for sh in self._tick_shares:
                        sh.update()
                for i, sensor in enumerate(self.sensors):
                    if sensor.device.id in self.failures:
                        continue
                    try:
                        reading = sensor.read()
                        energy_j = reading.energy_j
                        uncertain = reading.uncertain_intervals
                    except Exception as exc:  # SensorError, or any bug of a user's sensor
                        self.failures[sensor.device.id] = describe(exc)
                        continue
                    if not _good(energy_j, self._last[i]) or not isinstance(uncertain, int):
                        shown, n = self.faults.get(sensor.device.id, ("", 0))
                        self.faults[sensor.device.id] = (shown or _shown(energy_j), n + 1)
                        continue  # hold the last good value: the run's totals stay finite
                    share = self.shares[i]
                    delta = float(energy_j) - self._last[i]
                    self._own[i] += delta if share is None else delta * share.fraction
                    self._last[i] = float(energy_j)
                    self._uncertain[i] = uncertain
                return Snapshot(t, tuple(self._own), tuple(self._uncertain), tuple(self._last))

    def fault_notes(self) -> list[str]:
        notes = []
        if self.accounting_error:
            notes.append(
                f"the run's CPU time could not be read ({self.accounting_error}): shares of "
                "machine-wide devices kept their last value from then on"
            )
        for sh, sensor in zip(self.shares, self.sensors):
            error = getattr(sh, "error", None)
            if error:
                notes.append(
                    f"{sensor.device.id}: per-process use could not be read ({error}): the run "
                    "was charged its last known share"
                )
        return notes + [
            f"{dev}: {n} reading(s) were not a finite, non-decreasing energy (first: {shown}); "
            "the last good value was held for each"
            for dev, (shown, n) in self.faults.items()
        ]

    def max_read_interval_s(self) -> float | None:
        limits = [s.max_read_interval_s for s in self.sensors if s.max_read_interval_s]
        return min(limits) if limits else None


def _share(sensor: Sensor, accounting: CpuAccounting) -> Share | None:
    try:
        return sensor.share(accounting)
    except Exception:  # a user's sensor, or an NVML without per-process queries: all of it
        return None


def _per_tick(share: Share) -> bool:
    from footprint.sensors.accounting import CpuTimeShare

    return not isinstance(share, CpuTimeShare)  # the CPU share updates with the accounting


def _good(energy_j: object, last_j: float) -> bool:
    return (
        isinstance(energy_j, (int, float))
        and not isinstance(energy_j, bool)
        and math.isfinite(energy_j)
        and energy_j >= last_j
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Timeline:
    """A per-device power timeline whose memory stays bounded however long the run.

    Buckets are closed from cumulative readings, so each bucket's energy is an exact counter
    difference and the buckets sum exactly to ``last - first`` reading. When there are more
    than ``max_buckets``, neighbours are merged pairwise and the bucket width doubles: memory is
    O(max_buckets x devices), resolution degrades gracefully, totals stay exact.
    """

    def __init__(self, first: Snapshot, resolution_s: float, max_buckets: int = 1000) -> None:
        if max_buckets < 2:
            raise ValueError(f"max_buckets must be >= 2, got {max_buckets}")
        self.resolution_s = resolution_s
        self.max_buckets = max_buckets
        self._t0 = first.t
        self._bounds = [first.t]
        self._energy: list[tuple[float, ...]] = []
        self._last = first.energy_j
        self._lock = threading.Lock()
        self.finished = False

    def add(self, snap: Snapshot, *, force: bool = False) -> None:
        """Close a bucket at ``snap`` if it is at least one resolution wide (or ``force``)."""
        with self._lock:
            if self.finished or snap.t <= self._bounds[-1]:
                return
            if not force and snap.t - self._bounds[-1] < self.resolution_s * 0.999:
                return
            self._energy.append(tuple(e - p for e, p in zip(snap.energy_j, self._last)))
            self._bounds.append(snap.t)
            self._last = snap.energy_j
            if len(self._energy) > self.max_buckets:
                self._merge()

    def finish(self, snap: Snapshot) -> None:
        """Close the last bucket at the run's stop reading; later adds are ignored."""
        self.add(snap, force=True)
        with self._lock:
            self.finished = True

    def _merge(self) -> None:
        e, b = self._energy, self._bounds
        merged = [tuple(x + y for x, y in zip(e[i], e[i + 1])) for i in range(0, len(e) - 1, 2)]
        bounds = b[0 : len(e) - len(e) % 2 + 1 : 2]
        if len(e) % 2:
            merged.append(e[-1])
            bounds.append(b[-1])
        self._energy, self._bounds = merged, bounds
        self.resolution_s *= 2

    def __len__(self) -> int:
        return len(self._energy)

    def to_dict(self, device_ids: Sequence[str]) -> dict:
        """``{"t_s": [bounds since start], "power_w": {device: [mean power per bucket]}}``."""
        with self._lock:
            bounds, energy = list(self._bounds), list(self._energy)
        t_s = [round(t - self._t0, 6) for t in bounds]
        widths = [b - a for a, b in zip(bounds, bounds[1:])]
        power = {
            dev: [round(e[i] / w, 6) if w > 0 else 0.0 for e, w in zip(energy, widths)]
            for i, dev in enumerate(device_ids)
        }
        return {"t_s": t_s, "power_w": power}


class Sampler:
    """Calls ``tick()`` every ``interval_s`` until stopped, on the process's sampler thread.

    All samplers share one daemon thread (:class:`SamplerThread`, owned by the runtime), started
    by the first run and parked between runs: starting a thread per run would cost each run's
    start ~2 ms (``Thread.start`` waits until the new thread is scheduled). ``tick`` exceptions
    go to ``on_error`` and no further: a sampler problem must never reach the user's code.
    :meth:`stop` returns at once; a tick already under way may still finish, so ticks must
    tolerate a stopped run. The schedule follows ``clock`` (seconds, monotonic); the thread
    waits in real time for the next due instant by that clock.
    """

    def __init__(
        self,
        tick: Callable[[], None],
        interval_s: float,
        on_error: Callable[[BaseException], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"sampling interval must be > 0 s, got {interval_s!r}")
        self.interval_s = interval_s
        self.clock = clock
        self._tick = tick
        self._on_error = on_error
        self._next_t = math.inf
        self.stopped = False

    def start(self, first_after_s: float | None = None) -> None:
        """Tick every ``interval_s``, the first time after ``first_after_s`` (default: one
        interval)."""
        first = self.interval_s if first_after_s is None else min(first_after_s, self.interval_s)
        self._next_t = self.clock() + first
        sampler_thread().add(self)

    def stop(self) -> None:
        self.stopped = True
        sampler_thread().remove(self)

    def due_in(self) -> float:
        """Seconds until the next tick is due, by this sampler's clock."""
        return self._next_t - self.clock()

    def run_tick(self) -> None:
        if self.stopped:
            return
        try:
            self._tick()
        except Exception as exc:  # never let a sampler error escape the thread
            if self._on_error is not None:
                self._on_error(exc)
        # A fixed grid; after a stall (a suspended process) restart from now.
        now = self.clock()
        self._next_t += self.interval_s
        if self._next_t < now:
            self._next_t = now + self.interval_s


class SamplerThread:
    """The sampler thread: wakes at the earliest due sampler, ticks every due one, parks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._samplers: list[Sampler] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, sampler: Sampler) -> None:
        with self._cond:
            self._samplers.append(sampler)
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(
                    target=self._loop, name="footprint-sampler", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def remove(self, sampler: Sampler) -> None:
        with self._cond:
            if sampler in self._samplers:
                self._samplers.remove(sampler)
            self._cond.notify()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (samplers still registered stop ticking) and wait for it."""
        with self._cond:
            self._closed = True
            self._samplers.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._samplers and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                waits = [(s.due_in(), s) for s in self._samplers]
                due = [s for wait, s in waits if wait <= 0]
                if not due:
                    self._cond.wait(min(wait for wait, _ in waits))
                    continue
            for sampler in due:  # outside the lock: runs may start and stop meanwhile
                sampler.run_tick()


def sampler_thread() -> SamplerThread:
    """This process's sampler thread (in the runtime; a forked child gets its own)."""
    return runtime.get().ensure("sampler", SamplerThread)
