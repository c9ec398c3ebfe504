"""Simulated hardware for tests and benchmarks: a fake ``libnvidia-ml.so.1`` (fake_nvml.c).

The fake exports the NVML C functions pynvml calls, so the *real* pynvml binding and
:mod:`footprint.sensors.nvml` run unchanged against it. It is loaded through ``LD_LIBRARY_PATH``,
which the dynamic loader reads at process start, so code that uses it runs in a subprocess::

    lib_dir = build_fake_nvml(tmp_path)                 # compiles once per directory
    fake = FakeNvml(gpu_count=2, counter_gpus=[0], program=PowerProgram(t0_s=time.monotonic()),
                    log_path=tmp_path / "nvml.log")
    out = run_python(CODE, env=fake.env(lib_dir))      # CODE prints one JSON value, last line
    calls = read_log(fake.log_path)                    # every energy/power call the code made
    exact_j = fake.program.energy_j(calls[0].t_s, calls[-1].t_s, scale=fake.scale(0))

Environment variables the fake reads (all written by :meth:`FakeNvml.env`; defaults in
fake_nvml.c's header):

- ``FAKE_NVML_GPU_COUNT``: number of GPUs (<= 16).
- ``FAKE_NVML_COUNTER_GPUS``: ``all``, ``none`` or ``0,2``: GPUs with the total-energy counter; the
  others answer NVML_ERROR_NOT_SUPPORTED to nvmlDeviceGetTotalEnergyConsumption.
- ``FAKE_NVML_UUIDS``, ``FAKE_NVML_NAME``, ``FAKE_NVML_DRIVER``: identity (default UUIDs:
  :func:`fake_uuid`).
- ``FAKE_NVML_INIT_ERROR``: an NVML error code nvmlInit returns (e.g. 9, driver not loaded).
- ``FAKE_NVML_FAIL_FILE`` / ``FAKE_NVML_FAIL_CODE``: while the file exists, energy and power calls
  fail with the code (default 15, NVML_ERROR_GPU_IS_LOST). Create it to break a GPU mid-run.
- ``FAKE_NVML_PROCS``: ``gpu:pid:sm,...`` compute processes and their constant SM utilisation
  (pid ``self``: the calling process), for nvmlDeviceGetComputeRunningProcesses_v3 and
  nvmlDeviceGetProcessUtilization.
- ``FAKE_NVML_INIT_LOG``: append the pid of each process whose nvmlInit succeeded.
- ``FAKE_NVML_LOG``: append ``"<energy|power> <monotonic s> <gpu> <mJ|mW>"`` per call
  (``energy-error``/``power-error`` with the code for failed calls).
- ``FAKE_NVML_T0``, ``FAKE_NVML_IDLE_W``, ``FAKE_NVML_IDLE_S``, ``FAKE_NVML_HIGH_W``,
  ``FAKE_NVML_HIGH_S``, ``FAKE_NVML_LOW_W``, ``FAKE_NVML_LOW_S``: the power program
  (:class:`PowerProgram`), ``FAKE_NVML_SCALES``: per-GPU multipliers of it.

Power is a pure function of CLOCK_MONOTONIC (= ``time.monotonic()`` on Linux), so
:meth:`PowerProgram.energy_j` gives the exact energy between any two instants; the energy counter
reports ``floor(1000 x that integral since T0)`` mJ.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FAKE_NVML_C = Path(__file__).with_name("fake_nvml.c")
REPO_ROOT = Path(__file__).resolve().parents[2]
LIB_NAME = "libnvidia-ml.so.1"


class FakeNvmlBuildError(RuntimeError):
    """The fake could not be compiled (no C compiler, or it failed). Tests skip on this."""


def build_fake_nvml(tmp_dir: str | os.PathLike) -> Path:
    """Compile fake_nvml.c into ``<tmp_dir>/libnvidia-ml.so.1``; return the directory.

    Reuses a library already built there. Raises FakeNvmlBuildError when no compiler is found
    (``$CC``, ``cc``, ``gcc`` or ``clang``) or compilation fails.
    """
    out_dir = Path(tmp_dir)
    lib = out_dir / LIB_NAME
    if lib.exists() and lib.stat().st_mtime >= FAKE_NVML_C.stat().st_mtime:
        return out_dir
    candidates = [os.environ.get("CC"), "cc", "gcc", "clang"]
    compiler = next((shutil.which(c) for c in candidates if c and shutil.which(c)), None)
    if compiler is None:
        raise FakeNvmlBuildError("no C compiler (cc, gcc, clang or $CC) to build the fake NVML")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_lib = out_dir / f".{LIB_NAME}.{os.getpid()}"
    cmd = [compiler, "-shared", "-fPIC", "-O2", "-o", str(tmp_lib), str(FAKE_NVML_C), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FakeNvmlBuildError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    os.replace(tmp_lib, lib)  # atomic: a concurrent user never loads a half-written library
    return out_dir


def fake_uuid(index: int) -> str:
    """The fake's default UUID of GPU ``index`` (0-14): ``GPU-11111111-1111-4111-8111-0...0``,..."""
    k = index + 1
    a, b, c = k * 0x11111111, k * 0x1111, (k * 0x111) & 0xFFF
    return f"GPU-{a:08x}-{b:04x}-4{c:03x}-8{c:03x}-{index:012x}"


@dataclass(frozen=True)
class PowerProgram:
    """The fake's power program: ``idle_w`` until ``t0_s + idle_s``, then ``high_w`` for
    ``high_s`` and ``low_w`` for ``low_s``, repeated. Times are ``time.monotonic()`` seconds.
    Before ``t0_s`` the power is ``idle_w`` but the energy counter stays at 0."""

    t0_s: float
    idle_w: float = 60.0
    idle_s: float = 1.0
    high_w: float = 400.0
    high_s: float = 0.023
    low_w: float = 150.0
    low_s: float = 0.037

    def power_w(self, t_s: float, scale: float = 1.0) -> float:
        """Instantaneous power at monotonic instant ``t_s``."""
        t = t_s - self.t0_s
        period = self.high_s + self.low_s
        if t < self.idle_s or period <= 0:
            return scale * self.idle_w
        phase = math.fmod(t - self.idle_s, period)
        return scale * (self.high_w if phase < self.high_s else self.low_w)

    def _cumulative_j(self, t_s: float) -> float:
        # Same formula as program_energy_j in fake_nvml.c, so the counter can be predicted.
        t = t_s - self.t0_s
        if t <= 0:
            return 0.0
        if t <= self.idle_s:
            return self.idle_w * t
        period = self.high_s + self.low_s
        e = self.idle_w * self.idle_s
        r = t - self.idle_s
        if period <= 0:
            return e + self.idle_w * r
        n = math.floor(r / period)
        phase = r - n * period
        e += n * (self.high_w * self.high_s + self.low_w * self.low_s)
        if phase < self.high_s:
            return e + self.high_w * phase
        return e + self.high_w * self.high_s + self.low_w * (phase - self.high_s)

    def energy_j(self, t_start_s: float, t_end_s: float, scale: float = 1.0) -> float:
        """Exact energy (J) between two monotonic instants, both at or after ``t0_s``."""
        return scale * (self._cumulative_j(t_end_s) - self._cumulative_j(t_start_s))

    def counter_mj(self, t_s: float, scale: float = 1.0) -> int:
        """What the fake's nvmlDeviceGetTotalEnergyConsumption answers at ``t_s`` (mJ)."""
        return math.floor(scale * self._cumulative_j(t_s) * 1000.0)

    def mean_power_w(self) -> float:
        """Mean power over one burst period (after the idle part)."""
        return (self.high_w * self.high_s + self.low_w * self.low_s) / (self.high_s + self.low_s)


@dataclass(frozen=True)
class FakeNvml:
    """One configuration of the fake; :meth:`env` turns it into the environment it reads."""

    program: PowerProgram
    gpu_count: int = 1
    counter_gpus: Sequence[int] | None = None  # None: every GPU has the energy counter
    scales: Sequence[float] = ()  # per-GPU multipliers of the program; missing ones are 1
    log_path: Path | None = None
    #: FAKE_NVML_INIT_LOG: one line with the pid of each process that initialised NVML
    init_log_path: Path | None = None
    fail_file: Path | None = None
    fail_code: int = 15
    init_error: int = 0
    uuids: Sequence[str] | None = None
    name: str = "NVIDIA Fake A100"
    driver_version: str = "550.54.15"
    #: compute processes (gpu, pid or "self", SM utilisation %): FAKE_NVML_PROCS
    processes: Sequence[tuple[int, int | str, int]] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def scale(self, gpu: int) -> float:
        return self.scales[gpu] if gpu < len(self.scales) else 1.0

    def uuid(self, gpu: int) -> str:
        return self.uuids[gpu] if self.uuids is not None else fake_uuid(gpu)

    def env(self, lib_dir: str | os.PathLike, base: Mapping[str, str] | None = None) -> dict:
        """A full environment for a subprocess: ``base`` (default os.environ) + the fake's."""
        env = dict(os.environ if base is None else base)
        p = self.program
        counters = "all" if self.counter_gpus is None else ",".join(map(str, self.counter_gpus))
        env.update(
            LD_LIBRARY_PATH=os.fspath(lib_dir),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            FAKE_NVML_GPU_COUNT=str(self.gpu_count),
            FAKE_NVML_COUNTER_GPUS=counters or "none",
            FAKE_NVML_NAME=self.name,
            FAKE_NVML_DRIVER=self.driver_version,
            FAKE_NVML_INIT_ERROR=str(self.init_error),
            FAKE_NVML_FAIL_CODE=str(self.fail_code),
            FAKE_NVML_T0=repr(p.t0_s),
            FAKE_NVML_IDLE_W=repr(p.idle_w),
            FAKE_NVML_IDLE_S=repr(p.idle_s),
            FAKE_NVML_HIGH_W=repr(p.high_w),
            FAKE_NVML_HIGH_S=repr(p.high_s),
            FAKE_NVML_LOW_W=repr(p.low_w),
            FAKE_NVML_LOW_S=repr(p.low_s),
            FAKE_NVML_SCALES=",".join(repr(self.scale(i)) for i in range(self.gpu_count)),
        )
        for key in (
            "FAKE_NVML_LOG",
            "FAKE_NVML_FAIL_FILE",
            "FAKE_NVML_UUIDS",
            "FAKE_NVML_PROCS",
            "FAKE_NVML_INIT_LOG",
        ):
            env.pop(key, None)
        if self.init_log_path is not None:
            env["FAKE_NVML_INIT_LOG"] = os.fspath(self.init_log_path)
        if self.processes:
            env["FAKE_NVML_PROCS"] = ",".join(f"{g}:{p}:{sm}" for g, p, sm in self.processes)
        if self.log_path is not None:
            env["FAKE_NVML_LOG"] = os.fspath(self.log_path)
        if self.fail_file is not None:
            env["FAKE_NVML_FAIL_FILE"] = os.fspath(self.fail_file)
        if self.uuids is not None:
            env["FAKE_NVML_UUIDS"] = ",".join(self.uuids)
        env.pop("CUDA_VISIBLE_DEVICES", None)  # tests set it explicitly when they mean to
        env.update(self.extra_env)
        return env


class LogEntry(NamedTuple):
    """One call the fake logged: ``kind`` is energy, power, energy-error or power-error."""

    kind: str
    t_s: float
    gpu: int
    value: int  # mJ for energy, mW for power, the NVML error code for *-error


def read_log(path: str | os.PathLike) -> list[LogEntry]:
    """Every call in the fake's log, in file order (calls from several threads may interleave
    in time by a few microseconds; sort by ``t_s`` if order matters)."""
    p = Path(path)
    if not p.exists():
        return []
    entries = []
    for line in p.read_text().splitlines():
        kind, t_s, gpu, value = line.split()
        entries.append(LogEntry(kind, float(t_s), int(gpu), int(value)))
    return entries


def run_python(code: str, env: Mapping[str, str], timeout_s: float = 60.0) -> Any:
    """Run ``code`` in a fresh interpreter with ``env``; return the JSON value of its last
    stdout line. Raises AssertionError with the subprocess's stderr if it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(
            f"subprocess failed (exit {proc.returncode}):\n{proc.stderr}\nstdout:\n{proc.stdout}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])
