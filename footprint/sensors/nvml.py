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
  cannot alias against the sampling the way it can against a fixed period.

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


_session_lock = threading.Lock()
_session: _Session | SourceStatus | None = None  # a SourceStatus records why NVML is unusable
_warned = False


def _open_session() -> _Session | SourceStatus:
    """Initialise NVML and list the GPUs, once per process; failures are cached too."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _init_nvml()
        return _session


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
    global _warned
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
        with _session_lock:
            warn, _warned = asked and not _warned, _warned or asked
        if warn:
            fix = f"; fix: {status.fix}" if status.fix else ""
            warnings.warn(
                f"gpus={list(gpus)!r} asked for GPUs but none can be measured: {status.summary}"
                f"{fix}. The run continues without GPU energy.",
                FootprintWarning,
                stacklevel=2,
            )
        return [], status
    assert isinstance(session, _Session)

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
        fix = None if gpus is not None else "unset CUDA_VISIBLE_DEVICES or pass gpus=[...]"
        return [], SourceStatus("nvml", False, why_none, fix)

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


class _Strata:
    """Stratified jittered integration of one GPU's power; pure bookkeeping, no clock or NVML.

    Time is cut into strata of ``width_s`` from the start instant. ``sample_at`` is a uniformly
    random instant of the current stratum ``[seg_start, end)``; the poller calls :meth:`record`
    there. A stratum's energy is its sample x its width. A read at ``now`` inside the stratum
    (:meth:`cut`) commits ``[seg_start, now)``: with the stratum's sample if it is already taken
    (given it fell before ``now`` it is uniform in that segment) or else with a sample taken at
    ``now``; the rest keeps (or redraws) a uniform sample instant of its own. Readings therefore
    never decrease, and a read costs at most one NVML call.

    A stratum whose sample never came (the thread fell behind) holds the last sampled power.
    """

    def __init__(self, width_s: float, uniform: Callable[[], float]) -> None:
        self.width_s = width_s
        self._uniform = uniform
        self.energy_j = 0.0
        self.active = False
        self.missed = 0  # strata that held the last value because no sample came
        self.seg_start = self.end = self.sample_at = 0.0
        self.sample_w: float | None = None
        self.last_w = 0.0
        self._next_u = 0.0

    def begin(self, now: float, power_w: float) -> None:
        """Start integrating at ``now``; ``power_w`` (sampled now) is the hold value until the
        first stratum's own sample."""
        self.active = True
        self.last_w = power_w
        self._next_u = self._uniform()
        self._new_stratum(now)

    def _new_stratum(self, start: float) -> None:
        self.seg_start, self.end = start, start + self.width_s
        self.sample_at = start + self._next_u * self.width_s
        # Drawn one stratum ahead so the poller can sleep straight to the next sample instant.
        self._next_u = self._uniform()
        self.sample_w = None

    def settle(self, now: float) -> None:
        """Commit every stratum that ended at or before ``now``."""
        if not self.active:
            return
        while self.end <= now:
            if self.sample_w is None:
                self.missed += 1
            value = self.last_w if self.sample_w is None else self.sample_w
            self.energy_j += value * (self.end - self.seg_start)
            whole = math.floor((now - self.end) / self.width_s)
            if whole > 0:  # long stall: skip whole strata in one step, holding the value
                self.energy_j += self.last_w * whole * self.width_s
                self.missed += whole
            self._new_stratum(self.end + max(whole, 0) * self.width_s)

    def due(self, now: float) -> bool:
        return self.active and self.sample_w is None and self.sample_at <= now

    def next_wake(self) -> float:
        """When the poller should look at this GPU next: its next sample instant."""
        if self.sample_w is None:
            return self.sample_at
        return self.end + self._next_u * self.width_s

    def record(self, power_w: float) -> None:
        """The current stratum's sample (taken at, or as soon as possible after, sample_at)."""
        self.sample_w = self.last_w = power_w

    def cut(self, now: float, power_now: Callable[[], float]) -> None:
        """Commit up to ``now`` (after :meth:`settle`); ``power_now()`` samples at ``now``."""
        if not self.active or now <= self.seg_start:
            return
        if self.sample_w is not None:
            value = self.sample_w
            redraw = True
        else:
            value = self.last_w = power_now()
            redraw = self.sample_at <= now  # the planned instant passed unsampled (thread late)
        self.energy_j += value * (now - self.seg_start)
        self.seg_start = now
        if redraw:
            self.sample_at = now + self._uniform() * (self.end - now)
            self.sample_w = None

    def finish(self, now: float, power_now: Callable[[], float]) -> None:
        """Stop integrating at ``now``."""
        self.settle(now)
        self.cut(now, power_now)
        self.active = False


class _PowerPoller:
    """One thread sampling every started power-polling sensor of a discover_gpus call."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._active: list[_PowerPollingSensor] = []
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    def strata(self) -> _Strata:
        return _Strata(self.interval_s, self._rng.random)

    def activate(self, sensor: _PowerPollingSensor) -> None:
        with self._lock:
            initial_w = sensor._power_w_or_hold()
            sensor._strata.begin(time.monotonic(), initial_w)
            self._active.append(sensor)
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="footprint-nvml-poller", daemon=True
                )
                self._thread.start()

    def deactivate(self, sensor: _PowerPollingSensor) -> None:
        thread = None
        with self._lock:
            if sensor not in self._active:
                return
            sensor._strata.finish(time.monotonic(), sensor._power_w_at_stop)
            self._active.remove(sensor)
            if not self._active and self._thread is not None:
                assert self._stop is not None
                self._stop.set()
                thread, self._thread = self._thread, None
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
                strata.settle(now)
                try:
                    strata.cut(now, sensor._power_w)
                except sensor._nvml.NVMLError as e:
                    raise _read_error(sensor.device, "power", e) from e
            return Reading(strata.energy_j, sensor._failures)

    def _run(self, stop: threading.Event) -> None:
        while True:
            with self._lock:
                if stop.is_set():
                    return
                now = time.monotonic()
                wake = math.inf
                for sensor in self._active:
                    strata = sensor._strata
                    strata.settle(now)
                    if strata.due(now):
                        strata.record(sensor._power_w_or_hold())
                    wake = min(wake, strata.next_wake())
            stop.wait(max(0.0, wake - time.monotonic()))


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
        """Strata whose sample never came (the poller fell behind) and held the last power."""
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
