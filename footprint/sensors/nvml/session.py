"""The NVML session: initialised once per process (kept by the runtime), then reused, so a
later run starts in microseconds; what it found and, if nothing, why."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from footprint import runtime
from footprint.sensors.base import SourceStatus

METHOD_COUNTER = "nvml-energy-counter"
METHOD_POLLING = "nvml-power-polling"

_NO_LIBRARY_FIX = (
    "install the NVIDIA driver, or add the directory holding libnvidia-ml.so.1 to LD_LIBRARY_PATH"
)


class _FromEnvironment(enum.Enum):
    CUDA_VISIBLE_DEVICES = "read CUDA_VISIBLE_DEVICES when called"


FROM_ENVIRONMENT = _FromEnvironment.CUDA_VISIBLE_DEVICES


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
