"""Which GPUs a run measures: CUDA_VISIBLE_DEVICES or ``gpus=``, then one sensor per GPU (the
energy counter where the GPU has one, power polling otherwise)."""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence

from footprint import runtime
from footprint.errors import FootprintWarning, SensorError, UsageError
from footprint.sensors.base import Sensor, SourceStatus
from footprint.sensors.nvml.counter import EnergyCounterSensor
from footprint.sensors.nvml.polling import PowerPoller, PowerPollingSensor
from footprint.sensors.nvml.session import (
    FROM_ENVIRONMENT,
    METHOD_COUNTER,
    _describe,
    _FromEnvironment,
    _open_session,
    _Session,
)


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
    poller: PowerPoller | None = None
    nvml = session.nvml
    for index in indices:
        gpu = session.gpus[index]
        details = {"uuid": gpu.uuid, "nvml_index": index, "driver_version": session.driver_version}
        try:
            baseline_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
        except nvml.NVMLError:
            pass  # pre-Volta (NOT_SUPPORTED) or no permission: fall back to power polling
        else:
            sensors.append(EnergyCounterSensor(gpu, details, nvml, baseline_mj))
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
            poller = PowerPoller(poll_interval_s)
        details["poll_interval_s"] = poll_interval_s
        details["sampling"] = "stratified-jittered"
        sensors.append(PowerPollingSensor(gpu, details, nvml, poller))

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
