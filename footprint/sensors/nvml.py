"""NVIDIA GPUs through NVML (the ``nvidia-ml-py`` binding, imported only when GPUs are discovered).

Two methods, chosen per GPU when it is discovered (docs/sensors-nvml.md):

- ``"nvml-energy-counter"``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded;
  Volta and newer). A reading is the counter's difference since the sensor was created: exact at
  the instant of the read, no background work.
- ``"nvml-power-polling"``: older GPUs only report power (``nvmlDeviceGetPowerUsage``, mW). One
  background thread per :func:`discover_gpus` call integrates it for all such GPUs, only while a
  run has the sensor started, by *stratified jittered sampling*: time is cut into strata of
  ``poll_interval_s`` and power is sampled once at a uniformly random instant inside each
  stratum, whose energy is that power times the stratum's width. A workload that is periodic
  cannot alias against the sampling the way it can against a fixed period. All the GPUs share
  the strata and their instants (one wake-up per stratum), and the thread aims early by its
  usual wake-up lateness; a sample that comes late still counts for the stratum it was meant for.

Device selection follows CUDA: ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUIDs or unique UUID
prefixes; ``""`` or ``-1`` selects none; the list stops at the first invalid or repeated entry),
unless ``gpus=`` names physical devices explicitly. Sensor ids are ``"gpu:<NVML index>"``.
"""

from __future__ import annotations

import enum
import math
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from footprint import runtime
from footprint.errors import FootprintWarning, SensorError, UsageError
from footprint.sensors.base import DeviceInfo, Reading, Sensor, SourceStatus

METHOD_COUNTER = "nvml-energy-counter"
METHOD_POLLING = "nvml-power-polling"

_NO_LIBRARY_FIX = (
    "install the NVIDIA driver, or add the directory holding libnvidia-ml.so.1 to LD_LIBRARY_PATH"
)


class _FromEnvironment(enum.Enum):
    CUDA_VISIBLE_DEVICES = "read CUDA_VISIBLE_DEVICES when called"


FROM_ENVIRONMENT = _FromEnvironment.CUDA_VISIBLE_DEVICES


# ---------------------------------------------------------------------------------------------
# The NVML session: initialised once per process, then reused (a later run starts in microseconds)


@dataclass(frozen=True)
class _Gpu:
    index: int
    handle: Any
    name: str
    uuid: str


@dataclass(frozen=True)
class _Session:
    nvml: Any  # the pynvml module
    driver_version: str
    gpus: tuple[_Gpu, ...]


def _open_session() -> _Session | SourceStatus:
    """Initialise NVML and list the GPUs, once per process (the runtime keeps the session, or
    the SourceStatus saying why NVML is unusable: failures are cached too)."""
    rt = runtime.get()
    with rt.lock:
        if rt.nvml_session is None:
            rt.nvml_session = _init_nvml()
        return rt.nvml_session


def _init_nvml() -> _Session | SourceStatus:
    try:
        import pynvml
    except ImportError:
        return SourceStatus(
            "nvml", False, "nvidia-ml-py is not installed", "pip install nvidia-ml-py"
        )
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return SourceStatus("nvml", False, "libnvidia-ml.so.1 not found", _NO_LIBRARY_FIX)
    except pynvml.NVMLError as e:
        return SourceStatus(
            "nvml",
            False,
            f"NVML could not start: {_describe(e)}",
            "check the NVIDIA driver is loaded (`nvidia-smi` should list the GPUs)",
        )
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(_Gpu(i, handle, name, pynvml.nvmlDeviceGetUUID(handle)))
    except pynvml.NVMLError as e:
        return SourceStatus(
            "nvml",
            False,
            f"NVML started but could not list the GPUs: {_describe(e)}",
            "check `nvidia-smi`; a GPU that fell off the bus needs a reset or a reboot",
        )
    return _Session(pynvml, driver, tuple(gpus))


def _describe(error: Exception) -> str:
    code = getattr(error, "value", None)
    return f"{error} (NVML error {code})" if code is not None else str(error)


def driver_version() -> str | None:
    """The NVIDIA driver version (e.g. ``"550.54.15"``), or None where NVML is unavailable.

    Initialises NVML on the first call of the process (cached, like :func:`discover_gpus`).
    """
    session = _open_session()
    return session.driver_version if isinstance(session, _Session) else None


# ---------------------------------------------------------------------------------------------
# Device selection


def _parse_visible(spec: str | None, uuids: Sequence[str]) -> list[int]:
    """NVML indices CUDA_VISIBLE_DEVICES=``spec`` makes visible, in CUDA's order.

    None: every device. Otherwise comma-separated entries, each an index or ``GPU-`` UUID (or a
    unique prefix of one); CUDA stops at the first entry that is invalid (``-1``, out of range,
    unknown or ambiguous UUID, a MIG instance) or repeated, so ``""`` and ``"-1"`` select none.
    """
    if spec is None:
        return list(range(len(uuids)))
    selected: list[int] = []
    for raw in spec.split(","):
        index = _match_device(raw.strip(), uuids)
        if index is None or index in selected:
            break
        selected.append(index)
    return selected


def _match_device(entry: str, uuids: Sequence[str]) -> int | None:
    if re.fullmatch(r"\d+", entry):
        index = int(entry)
        return index if index < len(uuids) else None
    if entry[:4].upper() == "GPU-":
        matches = [i for i, u in enumerate(uuids) if u.lower().startswith(entry.lower())]
        return matches[0] if len(matches) == 1 else None
    return None  # "-1", "", MIG-... instances (energy is only per physical GPU) and the like


def _resolve_explicit(gpus: Sequence[int | str], session: _Session) -> list[int]:
    """Physical NVML indices for ``gpus=``; SensorError naming the GPUs that exist otherwise."""
    uuids = [g.uuid for g in session.gpus]
    selected: list[int] = []
    missing: list[str] = []
    for wanted in gpus:
        if isinstance(wanted, int):
            index = wanted if 0 <= wanted < len(uuids) else None
        else:
            index = _match_device(wanted.strip(), uuids)
        if index is None:
            missing.append(repr(wanted))
        elif index not in selected:  # the same GPU asked for twice is measured once
            selected.append(index)
    if missing:
        existing = "; ".join(f"{g.index} ({g.uuid}, {g.name})" for g in session.gpus)
        raise SensorError(
            f"gpus= asked for GPU(s) that do not exist here (or match several): "
            f"{', '.join(missing)}. "
            f"This machine has {len(uuids)} GPU(s): {existing or 'none'}. "
            "Pass NVML indices or (prefixes of) these UUIDs, or gpus=None for CUDA_VISIBLE_DEVICES."
        )
    return selected


def _check_arguments(gpus: object, poll_interval_s: object, visible_devices: object) -> None:
    if gpus is not None:
        if isinstance(gpus, (str, bytes, int)) or not isinstance(gpus, Sequence):
            raise UsageError(
                f"gpus must be a list of NVML indices or UUIDs, got {gpus!r}; "
                f"did you mean gpus=[{gpus!r}]?"
            )
        bad = [g for g in gpus if isinstance(g, bool) or not isinstance(g, (int, str))]
        if bad:
            raise UsageError(f"gpus entries must be int indices or str UUIDs, got {bad!r}")
    if (
        isinstance(poll_interval_s, bool)
        or not isinstance(poll_interval_s, (int, float))
        or not math.isfinite(poll_interval_s)
        or poll_interval_s < 1e-4
    ):
        raise UsageError(
            f"poll_interval_s must be a number of seconds >= 0.0001, got {poll_interval_s!r} "
            "(the default, 0.005, suits most GPUs)"
        )
    if not (visible_devices is None or isinstance(visible_devices, (str, _FromEnvironment))):
        raise UsageError(
            "visible_devices must be a CUDA_VISIBLE_DEVICES string or None, "
            f"got {visible_devices!r}"
        )


# ---------------------------------------------------------------------------------------------
# Discovery


def discover_gpus(
    gpus: Sequence[int | str] | None = None,
    *,
    visible_devices: str | None | _FromEnvironment = FROM_ENVIRONMENT,
    poll_interval_s: float = 0.005,
) -> tuple[list[Sensor], SourceStatus]:
    """One sensor per selected NVIDIA GPU, and what NVML can do on this machine.

    ``gpus``: NVML indices and/or UUIDs (or unique UUID prefixes) of *physical* devices; takes
    precedence over ``visible_devices``. None selects what ``visible_devices`` makes visible: a
    CUDA_VISIBLE_DEVICES value (default: the environment variable at call time; None: all GPUs).
    ``poll_interval_s``: the stratum width for GPUs without an energy counter.

    Never raises because NVML or a GPU is missing: returns ``([], status)`` with the reason,
    warning (once per process, FootprintWarning) only when ``gpus`` asked for GPUs. Raises
    SensorError when ``gpus`` names GPUs that do not exist while others do, or a GPU it names
    cannot be read; UsageError for malformed arguments.
    """
    _check_arguments(gpus, poll_interval_s, visible_devices)
    if visible_devices is FROM_ENVIRONMENT:
        visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    asked = gpus is not None and len(gpus) > 0

    session = _open_session()
    if isinstance(session, _Session) and not session.gpus:
        status = SourceStatus("nvml", False, "NVML found no GPU")
    elif isinstance(session, SourceStatus):
        status = session
    else:
        status = None
    if status is not None:
        if asked and runtime.get().warn_once("nvml-missing"):
            fix = f"; fix: {status.fix}" if status.fix else ""
            warnings.warn(
                f"gpus={list(gpus or [])!r} asked for GPUs but none can be measured: "
                f"{status.summary}{fix}. The run continues without GPU energy.",
                FootprintWarning,
                stacklevel=2,
            )
        return [], status
    assert isinstance(session, _Session)

    why_none: str
    if gpus is not None:
        indices = _resolve_explicit(gpus, session)
        why_none = "gpus=[] selects no GPU"
    else:
        indices = _parse_visible(visible_devices, [g.uuid for g in session.gpus])
        why_none = (
            f"CUDA_VISIBLE_DEVICES={visible_devices!r} selects none of the "
            f"{len(session.gpus)} GPU(s)"
        )
    if not indices:
        remedy = None if gpus is not None else "unset CUDA_VISIBLE_DEVICES or pass gpus=[...]"
        return [], SourceStatus("nvml", False, why_none, remedy)

    sensors: list[Sensor] = []
    unreadable: list[str] = []
    poller: _PowerPoller | None = None
    nvml = session.nvml
    for index in indices:
        gpu = session.gpus[index]
        details = {"uuid": gpu.uuid, "nvml_index": index, "driver_version": session.driver_version}
        try:
            baseline_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
        except nvml.NVMLError:
            pass  # pre-Volta (NOT_SUPPORTED) or no permission: fall back to power polling
        else:
            sensors.append(_EnergyCounterSensor(gpu, details, nvml, baseline_mj))
            continue
        try:
            nvml.nvmlDeviceGetPowerUsage(gpu.handle)
        except nvml.NVMLError as e:
            if gpus is not None:
                raise SensorError(
                    f"gpu:{index} ({gpu.name}) reports neither its energy nor its power: "
                    f"{_describe(e)}; check `nvidia-smi -q -d POWER`, or leave it out of gpus="
                ) from e
            unreadable.append(f"gpu:{index} unreadable ({_describe(e)})")
            continue
        if poller is None:
            poller = _PowerPoller(poll_interval_s)
        details["poll_interval_s"] = poll_interval_s
        details["sampling"] = "stratified-jittered"
        sensors.append(_PowerPollingSensor(gpu, details, nvml, poller))

    return sensors, _summarise(sensors, unreadable, len(session.gpus), poll_interval_s)


def _summarise(
    sensors: Sequence[Sensor], unreadable: Sequence[str], total: int, poll_interval_s: float
) -> SourceStatus:
    counters = sum(s.device.method == METHOD_COUNTER for s in sensors)
    polled = len(sensors) - counters
    parts = []
    if counters:
        parts.append(f"{counters} by energy counter")
    if polled:
        parts.append(f"{polled} by power polling every {poll_interval_s * 1000:g} ms")
    n = len(sensors)
    summary = f"{n} GPU{'s' if n != 1 else ''}" + (f": {', '.join(parts)}" if parts else "")
    if n + len(unreadable) < total:
        summary += f" (of {total} on this machine)"
    if unreadable:
        summary += "; " + "; ".join(unreadable)
    fix = "check `nvidia-smi -q -d POWER` for the unreadable GPUs" if unreadable else None
    return SourceStatus("nvml", bool(sensors), summary, fix)


# ---------------------------------------------------------------------------------------------
# Method 1: the energy counter


class _EnergyCounterSensor(Sensor):
    """Energy = NVML's total-energy counter minus its value when the sensor was created."""

    def __init__(self, gpu: _Gpu, details: dict, nvml: Any, baseline_mj: int) -> None:
        super().__init__()
        self.device = DeviceInfo(f"gpu:{gpu.index}", "gpu", gpu.name, METHOD_COUNTER, True, details)
        self._gpu, self._nvml = gpu, nvml
        self._lock = threading.Lock()
        self._offset_mj = -baseline_mj  # energy_mj = counter + offset
        self._last_mj = 0
        self._uncertain = 0

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


# ---------------------------------------------------------------------------------------------
# Method 2: power polling with stratified jittered sampling


class _Slots:
    """The strata of one poller, shared by all its GPUs: a grid of ``width_s`` from ``origin``
    (set by the first :meth:`anchor`) and one uniformly random offset per stratum, drawn once.

    Every GPU is sampled at the same planned instant in a stratum, so the poller wakes once per
    stratum for all of them. Each GPU's integral stays stratified and unbiased: its planned
    instants are uniform within their strata and independent from one stratum to the next (the
    GPUs' errors are merely correlated with each other).
    """

    def __init__(self, width_s: float, uniform: Callable[[], float]) -> None:
        self.width_s = width_s
        self.uniform = uniform
        self.origin = 0.0
        self._anchored = False
        self._offsets: dict[int, float] = {}

    def anchor(self, now: float) -> None:
        if not self._anchored:
            self.origin, self._anchored = now, True

    def start(self, k: int) -> float:
        return self.origin + k * self.width_s

    def index(self, t: float) -> int:
        """The stratum holding ``t``: ``start(k) <= t < start(k + 1)``."""
        k = math.floor((t - self.origin) / self.width_s)
        if self.start(k) > t:  # floating-point rounding at a boundary
            k -= 1
        elif self.start(k + 1) <= t:
            k += 1
        return k

    def instant(self, k: int) -> float:
        """Stratum ``k``'s planned sample instant (drawn the first time it is asked for)."""
        u = self._offsets.get(k)
        if u is None:
            u = self._offsets[k] = self.uniform()
            if len(self._offsets) > 16:
                for old in [j for j in self._offsets if j < k - 4]:
                    del self._offsets[old]
        return self.start(k) + u * self.width_s


class _Strata:
    """Stratified jittered integration of one GPU's power; pure bookkeeping, no clock or NVML.

    The strata are the :class:`_Slots` grid (the first one starts at :meth:`begin`, so it may be
    partial). Each has a planned sample instant ``sample_at``, uniform in it, and is charged with
    the power sampled *for* that instant x its width. That sample is:

    - the poller's reading on the wake-up aimed at the instant (:meth:`poll`). The thread aims
      early by its usual lateness (``lead``), so the reading lands a little before or after the
      instant, and it stays this stratum's sample even if it lands in a neighbouring stratum
      (the next one's sample may likewise be taken early: ``next_w``). Charging every stratum a
      power sampled at its uniform instant plus a timing error that does not depend on that
      instant integrates the power over a window shifted by the error: unbiased, even for a load
      whose period is a multiple of the strata's, up to the error x power at the ends;
    - failing that (the thread fell behind past the stratum's end), the first reading taken after
      the stratum ended, by the poller or by a read: :meth:`settle`. One reading serves every
      stratum it is the first after, so a long stall costs one step. ``missed`` counts them.

    A read at ``now`` (:meth:`cut`) commits ``[seg_start, now)``: with the stratum's sample if
    its planned instant is before ``now`` (it is then uniform in that segment), else with a
    reading taken at ``now``; the rest keeps the planned instant (and its sample) if that is
    after ``now``, or else gets an instant of its own, uniform in ``[now, end)``. Readings
    therefore never decrease, and a read costs at most one NVML call.
    """

    def __init__(self, slots: _Slots) -> None:
        self.slots = slots
        self.energy_j = 0.0
        self.active = False
        self.missed = 0  # strata whose sample came after they ended (the poller fell behind)
        self.k = 0  # the current stratum's index in the grid
        self.seg_start = self.end = self.sample_at = self.next_at = 0.0
        self.sample_w: float | None = None
        self.next_w: float | None = None  # the next stratum's sample, when taken early
        self.last_w = 0.0  # the last power read (what a failing NVML call holds)

    def begin(self, now: float, power_w: float) -> None:
        """Start integrating at ``now``; ``power_w`` (sampled now) is the last power read."""
        slots = self.slots
        slots.anchor(now)
        self.active = True
        self.last_w = power_w
        self.k = slots.index(now)
        self.seg_start, self.end = now, slots.start(self.k + 1)
        planned = slots.instant(self.k)
        if planned < now:  # the shared instant has passed: one of our own in what is left
            planned = now + slots.uniform() * (self.end - now)
        self.sample_at, self.sample_w = planned, None
        self.next_at, self.next_w = slots.instant(self.k + 1), None

    def _enter(self, k: int) -> None:
        """Make stratum ``k`` current (everything before it is committed)."""
        slots = self.slots
        if k == self.k + 1:
            self.sample_at, self.sample_w = self.next_at, self.next_w
            self.next_at = slots.instant(k + 1)
        else:
            self.sample_at, self.sample_w = slots.instant(k), None
            self.next_at = slots.instant(k + 1)
        self.k, self.next_w = k, None
        self.seg_start, self.end = slots.start(k), slots.start(k + 1)

    def settle(self, now: float, power_now: Callable[[], float]) -> None:
        """Commit every stratum that ended at or before ``now``; one still without its sample
        takes ``power_now()``, a reading at ``now``. ``power_now`` should cache its reading."""
        if not self.active:
            return
        while self.end <= now:
            if self.sample_w is None:
                self.sample_w = self.last_w = power_now()
                self.missed += 1
            self.energy_j += self.sample_w * (self.end - self.seg_start)
            self._enter(self.k + 1)
            behind = self.slots.index(now) - self.k  # further strata that ended before now
            if behind > 1 and self.sample_w is None and self.next_w is None:
                value = self.last_w = power_now()  # a long stall: settle it in one step
                self.energy_j += value * (self.slots.start(self.k + behind) - self.seg_start)
                self.missed += behind
                self._enter(self.k + behind)

    def due(self, now: float, lead: float = 0.0) -> bool:
        """Whether a wake-up at ``now`` aiming ``lead`` early should sample the current stratum."""
        return self.active and self.sample_w is None and self.sample_at - lead <= now

    def poll(self, now: float, lead: float, power_now: Callable[[], float]) -> None:
        """The poller's wake-up at ``now`` (after aiming ``lead`` early): settle, then take the
        reading as the sample of the current stratum, or of the next one, if it is due."""
        self.settle(now, power_now)
        if not self.active:
            return
        if self.sample_w is None:
            if self.sample_at - lead <= now:
                self.sample_w = self.last_w = power_now()
        elif self.next_w is None and self.next_at - lead <= now:
            self.next_w = self.last_w = power_now()

    def next_wake(self, lead: float) -> float:
        """When the poller should wake for this GPU: its next unsampled planned instant - lead."""
        if self.sample_w is None:
            return self.sample_at - lead
        if self.next_w is None:
            return self.next_at - lead
        return self.slots.instant(self.k + 2) - lead

    def record(self, power_w: float) -> None:
        """The current stratum's sample (as :meth:`poll` takes it)."""
        self.sample_w = self.last_w = power_w

    def cut(self, now: float, power_now: Callable[[], float]) -> None:
        """Commit up to ``now`` (after :meth:`settle`); ``power_now()`` reads at ``now``."""
        if not self.active or now <= self.seg_start:
            return
        passed = self.sample_at <= now
        if passed and self.sample_w is not None:
            value = self.sample_w
        else:
            value = self.last_w = power_now()
        self.energy_j += value * (now - self.seg_start)
        self.seg_start = now
        if passed:
            self.sample_at = now + self.slots.uniform() * (self.end - now)
            self.sample_w = None

    def finish(self, now: float, power_now: Callable[[], float]) -> None:
        """Stop integrating at ``now``."""
        self.settle(now, power_now)
        self.cut(now, power_now)
        self.active = False


class _Lateness:
    """How late the poller's thread wakes after the instant it asked for: a running mean (EWMA)
    of the observed lateness, between 0 and half a stratum. The poller aims that much early."""

    def __init__(self, width_s: float, weight: float = 0.05) -> None:
        self.lead = 0.0
        self._cap = width_s / 2
        self._weight = weight

    def observe(self, late_s: float) -> None:
        self.lead += self._weight * (min(max(late_s, 0.0), self._cap) - self.lead)


def _once(read: Callable[[], float]) -> Callable[[], float]:
    """``read``, called at most once: one NVML call serves everything due at one instant."""
    cache: list[float] = []

    def reading() -> float:
        if not cache:
            cache.append(read())
        return cache[0]

    return reading


def _poll_all(
    gpus: Sequence[tuple[_Strata, Callable[[], float]]], now: float, lead: float
) -> float:
    """One wake-up of the poller at ``now``: poll each GPU (its strata and its power reading);
    return the instant to wake at next."""
    wake = math.inf
    for strata, power in gpus:
        strata.poll(now, lead, _once(power))
        wake = min(wake, strata.next_wake(lead))
    return wake


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


class _PowerPoller:
    """One thread sampling every started power-polling sensor of a discover_gpus call, at one
    shared planned instant per stratum (:class:`_Slots`)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._slots = _Slots(interval_s, self._rng.random)
        self.lateness = _Lateness(interval_s)
        self.wakeups = 0  # for benchmarks and tests
        self._active: list[_PowerPollingSensor] = []
        self._thread: threading.Thread | None = None
        self._bell: _Bell | None = None
        self._target = math.inf  # when the thread will wake next (under the lock)

    def strata(self) -> _Strata:
        return _Strata(self._slots)

    def activate(self, sensor: _PowerPollingSensor) -> None:
        with self._lock:
            initial_w = sensor._power_w_or_hold()
            sensor._strata.begin(time.monotonic(), initial_w)
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

    def _replan(self, sensor: _PowerPollingSensor) -> None:
        """Ring the thread if ``sensor`` now needs it before it means to wake (under the lock)."""
        if self._bell is not None and sensor._strata.active:
            if sensor._strata.next_wake(self.lateness.lead) < self._target:
                self._bell.ring()

    def deactivate(self, sensor: _PowerPollingSensor) -> None:
        thread = None
        with self._lock:
            if sensor not in self._active:
                return
            sensor._strata.finish(time.monotonic(), _once(sensor._power_w_at_stop))
            self._active.remove(sensor)
            if not self._active and self._thread is not None:
                assert self._bell is not None
                self._bell.stopped = True
                self._bell.ring()
                thread, self._thread, self._bell = self._thread, None, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def read(self, sensor: _PowerPollingSensor) -> Reading:
        with self._lock:
            failed, sensor._failed = sensor._failed, None
            if failed is not None:
                raise _read_error(sensor.device, "power", failed) from failed
            strata = sensor._strata
            if strata.active:
                now = time.monotonic()
                power = _once(sensor._power_w)
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
                wake = _poll_all(gpus, time.monotonic(), self.lateness.lead)
                self._target = wake
            timeout = wake - time.monotonic()
            if timeout > 0 and not bell.wait(timeout):
                self.lateness.observe(time.monotonic() - wake)  # woke by itself: how late?


class _PowerPollingSensor(Sensor):
    """Energy integrated from sampled power while started (see :class:`_Strata`)."""

    def __init__(self, gpu: _Gpu, details: dict, nvml: Any, poller: _PowerPoller) -> None:
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
        the first power reading after its end instead (see :class:`_Strata`)."""
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
