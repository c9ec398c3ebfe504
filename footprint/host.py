"""Facts about the machine a run happened on, for its record.

Cheap on purpose: it reads /proc (cpuinfo, meminfo, cgroup) and the os module, never
py-cpuinfo, psutil or torch; the machine's part is cached per process and only the torch
version (torch may be imported after the first call) and the GPUs are looked at each call.
"""

from __future__ import annotations

import copy
import os
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

from footprint import runtime
from footprint._version import __version__
from footprint.sensors.base import DeviceInfo
from footprint.sensors.cpu_models import read_cpuinfo

_CONTAINER_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio")


def host_facts(
    gpus: Iterable[DeviceInfo] | None = None,
    *,
    proc_root: str | os.PathLike[str] = "/proc",
    root: str | os.PathLike[str] = "/",
) -> dict:
    """Return the host's facts as a JSON-serialisable dict (a fresh copy each call).

    Keys: ``hostname``, ``os``, ``os_release`` (the kernel), ``os_version``, ``machine``,
    ``python_version``, ``python_implementation``, ``footprint_version``, ``cpu_model``,
    ``cpu_count_logical``, ``cpu_count_physical`` (None if unknown), ``memory_total_bytes``,
    ``is_vm``, ``is_container``, ``torch_version`` (None unless torch is already imported: it is
    never imported here), and ``gpus`` (``[{name, uuid, driver_version}]``, only when ``gpus``
    is given: DeviceInfo of kind "gpu" from the GPU sensors; others are ignored).
    ``proc_root`` and ``root`` (for /.dockerenv, /run/.containerenv) are for tests.
    """
    key = (os.fspath(proc_root), os.fspath(root))
    cache = runtime.get().host_facts
    base = cache.get(key)
    if base is None:
        base = cache.setdefault(key, _machine_facts(Path(proc_root), Path(root)))
    facts = copy.copy(base)
    torch = sys.modules.get("torch")
    facts["torch_version"] = str(getattr(torch, "__version__", "unknown")) if torch else None
    if gpus is not None:
        facts["gpus"] = [
            {
                "name": gpu.name,
                "uuid": gpu.details.get("uuid"),
                "driver_version": gpu.details.get("driver_version"),
            }
            for gpu in gpus
            if gpu.kind == "gpu"
        ]
    return facts


def clear_cache() -> None:
    """Forget the cached machine facts (tests; :func:`footprint.runtime.reset` does it too)."""
    runtime.get().host_facts.clear()


def _machine_facts(proc_root: Path, root: Path) -> dict:
    # os.uname and sys, not the platform module: importing it compiles ~10 regular expressions
    # (~10 ms), which the first checkpoint would pay on the sampler thread.
    uname = os.uname() if hasattr(os, "uname") else None
    if uname is None:  # Windows
        import platform

        system, release, version, machine = (
            platform.system(), platform.release(), platform.version(), platform.machine()
        )  # fmt: skip
    else:
        system, release, version, machine = (
            uname.sysname, uname.release, uname.version, uname.machine
        )  # fmt: skip
    info = read_cpuinfo(proc_root)
    impl = sys.implementation.name
    return {
        "hostname": socket.gethostname(),
        "os": system,
        "os_release": release,
        "os_version": version,
        "machine": machine,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(impl, impl),
        "footprint_version": __version__,
        "cpu_model": info.model or machine or "unknown",
        "cpu_count_logical": info.logical_cpus,
        "cpu_count_physical": info.physical_cores,
        "memory_total_bytes": _memory_total_bytes(proc_root),
        "is_vm": info.hypervisor,
        "is_container": _is_container(proc_root, root),
        **machine_identity(proc_root),
    }


def machine_identity(proc_root: str | os.PathLike[str] = "/proc") -> dict[str, str | None]:
    """What tells this running machine and process namespace apart from any other: the kernel's
    boot id (new at every boot; containers on one host share it) and this process's pid
    namespace (``pid:[4026531836]``; containers have their own). Two records with the same pair
    come from processes that can see each other's pids. None where Linux does not say."""
    root = Path(proc_root)
    try:
        boot_id: str | None = (root / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        boot_id = None
    try:
        pid_namespace: str | None = os.readlink(root / "self/ns/pid")
    except OSError:
        pid_namespace = None
    return {"boot_id": boot_id, "pid_namespace": pid_namespace}


def _memory_total_bytes(proc_root: Path) -> int | None:
    try:
        with open(proc_root / "meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    value, _, unit = line.split(":", 1)[1].strip().partition(" ")
                    return int(value) * (1024 if unit.strip().lower() == "kb" else 1)
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _is_container(proc_root: Path, root: Path) -> bool:
    """A container runtime's marker file, or its name in PID 1's cgroup path."""
    if (root / ".dockerenv").exists() or (root / "run" / ".containerenv").exists():
        return True
    try:
        text = (proc_root / "1" / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(marker in text for marker in _CONTAINER_MARKERS)
