"""host_facts: keys, types, values from a fake /proc, torch and GPUs, and its cost."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import footprint
from footprint import host
from footprint.host import host_facts
from footprint.sensors import cpu_models
from footprint.sensors.base import DeviceInfo

KEYS = {
    "hostname": str,
    "os": str,
    "os_release": str,
    "os_version": str,
    "machine": str,
    "python_version": str,
    "python_implementation": str,
    "footprint_version": str,
    "cpu_model": str,
    "cpu_count_logical": int,
    "cpu_count_physical": (int, type(None)),
    "memory_total_bytes": (int, type(None)),
    "is_vm": bool,
    "is_container": bool,
    "torch_version": (str, type(None)),
    "boot_id": (str, type(None)),
    "pid_namespace": (str, type(None)),
}


@pytest.fixture(autouse=True)
def _fresh_caches():
    host.clear_cache()
    cpu_models.clear_cpuinfo_cache()
    yield
    host.clear_cache()
    cpu_models.clear_cpuinfo_cache()


def fake_machine(tmp_path: Path, *, container: bool) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "root"
    (proc / "1").mkdir(parents=True)
    root.mkdir()
    blocks = []
    for n in range(4):  # 2 cores x 2 threads, one package, in a VM
        blocks.append(
            f"processor\t: {n}\nmodel name\t: Test CPU 9000\nphysical id\t: 0\n"
            f"siblings\t: 4\ncore id\t\t: {n // 2}\nflags\t\t: fpu hypervisor sse2\n"
        )
    (proc / "cpuinfo").write_text("\n".join(blocks))
    (proc / "meminfo").write_text("MemTotal:       16384000 kB\nMemFree:        1000 kB\n")
    cgroup = "0::/kubepods/burstable/pod1/abc\n" if container else "0::/init.scope\n"
    (proc / "1" / "cgroup").write_text(cgroup)
    return proc, root


def test_keys_and_types_on_this_machine() -> None:
    facts = host_facts()
    for key, kind in KEYS.items():
        assert isinstance(facts[key], kind), key
    assert set(facts) == set(KEYS)  # no "gpus" unless GPUs are given
    assert facts["footprint_version"] == footprint.__version__
    assert facts["python_version"] == platform.python_version()
    assert facts["cpu_count_logical"] == os.cpu_count()
    json.dumps(facts)


def test_values_from_a_fake_proc(tmp_path: Path) -> None:
    proc, root = fake_machine(tmp_path, container=True)
    facts = host_facts(proc_root=proc, root=root)
    assert facts["cpu_model"] == "Test CPU 9000"
    assert facts["cpu_count_logical"] == 4
    assert facts["cpu_count_physical"] == 2
    assert facts["memory_total_bytes"] == 16384000 * 1024
    assert facts["is_vm"] is True
    assert facts["is_container"] is True


def test_not_a_container_without_markers(tmp_path: Path) -> None:
    proc, root = fake_machine(tmp_path, container=False)
    assert host_facts(proc_root=proc, root=root)["is_container"] is False
    host.clear_cache()
    (root / ".dockerenv").touch()
    assert host_facts(proc_root=proc, root=root)["is_container"] is True


def test_torch_version_only_when_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert host_facts()["torch_version"] is None
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(__version__="9.9.9+cpu"))
    assert host_facts()["torch_version"] == "9.9.9+cpu"  # looked at on each call, not cached


def test_gpus_from_device_infos() -> None:
    devices = [
        DeviceInfo(
            "gpu:0",
            "gpu",
            "NVIDIA A100-SXM4-40GB",
            "nvml-energy-counter",
            True,
            {"uuid": "GPU-1234", "driver_version": "550.54.15"},
        ),
        DeviceInfo("cpu", "cpu", "AMD EPYC", "estimate:tdp-x-utilisation", False, {}),
    ]
    facts = host_facts(devices)
    assert facts["gpus"] == [
        {"name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1234", "driver_version": "550.54.15"}
    ]
    assert host_facts([])["gpus"] == []


def test_returns_a_copy() -> None:
    host_facts()["hostname"] = "changed"
    assert host_facts()["hostname"] != "changed"


def test_fast_first_and_cached() -> None:
    start = time.perf_counter()
    host_facts()
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(100):
        host_facts()
    cached_s = (time.perf_counter() - start) / 100
    assert first_s < 0.02
    assert cached_s < 0.005


def test_never_imports_torch_or_psutil() -> None:
    code = (
        "import sys, footprint.host\n"
        "footprint.host.host_facts()\n"
        "print(sorted({'torch', 'psutil', 'cpuinfo', 'pandas'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(host.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_machine_identity_reads_the_boot_id_and_the_pid_namespace(tmp_path):
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text("1234-abcd\n")
    (tmp_path / "self/ns").mkdir(parents=True)
    os.symlink("pid:[4026531836]", tmp_path / "self/ns/pid")
    assert host.machine_identity(tmp_path) == {
        "boot_id": "1234-abcd",
        "pid_namespace": "pid:[4026531836]",
    }
    assert host.machine_identity(tmp_path / "missing") == {"boot_id": None, "pid_namespace": None}
