"""Simulated hardware for the tracker benchmark, and the exact values it is compared with.

- GPUs: the fake ``libnvidia-ml.so.1`` from ``tests/fakes`` (power is a pure function of
  CLOCK_MONOTONIC; every counter/power call is logged with its instant).
- CPU package and DRAM: the powercap fake from ``tests/fakes/powercap.py`` in real-time mode,
  subclassed here to log every write (simulated instant, raw value of each counter). A counter
  value the tracker read therefore names the exact write it came from, and the exact energy of a
  window is the program's integral between the two write instants (see docs/performance.md).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/fakes is importable as "fakes"

from fakes import LogEntry  # noqa: E402
from fakes.powercap import FakePowercap  # noqa: E402
from fakes.powercap import PowerProgram as CapProgram  # noqa: E402

_WIDTH = 24  # characters per counter file, as in fakes.powercap


@dataclass(frozen=True)
class Bursty(CapProgram):
    """``idle_w`` until ``idle_s``, then ``high_w`` for ``high_s`` and ``low_w`` for ``low_s``,
    repeated (simulated seconds since the fake tree was created). Exact closed-form integral."""

    idle_w: float
    idle_s: float
    high_w: float
    high_s: float
    low_w: float
    low_s: float

    def power_w(self, t_s: float) -> float:
        if t_s < self.idle_s:
            return self.idle_w
        phase = math.fmod(t_s - self.idle_s, self.high_s + self.low_s)
        return self.high_w if phase < self.high_s else self.low_w

    def _cumulative_j(self, t_s: float) -> float:
        if t_s <= self.idle_s:
            return self.idle_w * t_s
        period = self.high_s + self.low_s
        r = t_s - self.idle_s
        n = math.floor(r / period)
        phase = r - n * period
        e = self.idle_w * self.idle_s + n * (self.high_w * self.high_s + self.low_w * self.low_s)
        if phase < self.high_s:
            return e + self.high_w * phase
        return e + self.high_w * self.high_s + self.low_w * (phase - self.high_s)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self._cumulative_j(t1_s) - self._cumulative_j(t0_s)

    @property
    def max_w(self) -> float:
        return max(self.idle_w, self.high_w, self.low_w)


# The CPU package and DRAM loads: bursty like the GPUs, each with its own period (46 ms, 20 ms).
PACKAGE = Bursty(idle_w=30.0, idle_s=1.0, high_w=120.0, high_s=0.017, low_w=70.0, low_s=0.029)
DRAM = Bursty(idle_w=8.0, idle_s=1.0, high_w=30.0, high_s=0.007, low_w=15.0, low_s=0.013)
ZONES = {"cpu:0": "intel-rapl:0", "dram:0": "intel-rapl:0:2"}  # footprint id -> zone key


class LoggingPowercap(FakePowercap):
    """The powercap fake with one package and its DRAM subzone, logging every counter write."""

    def __init__(self, base: Path, *, max_energy_range_uj: int, max_power_w: float) -> None:
        self.writes: list[tuple[float, tuple[int, ...]]] = []  # (simulated s, raw per ZONES)
        self._logged = tuple(ZONES.values())
        super().__init__(
            base,
            packages=1,
            dram="subzone",
            mmio_mirror=False,
            psys=False,
            max_energy_range_uj=max_energy_range_uj,
            max_power_w=max_power_w,
            power={"intel-rapl:0": PACKAGE, "intel-rapl:0:2": DRAM},
        )

    def _write_all(self) -> None:  # called with the fake's lock held
        values = {}
        for key, fd in self._fds.items():
            values[key] = value = self.counter_uj(key)
            os.pwrite(fd, f"{value:>{_WIDTH - 1}}\n".encode(), 0)
        self.writes.append((self._t_s, tuple(values[k] for k in self._logged)))


# --- exact values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One device's energy in one run: the tracker's figure against the exact one."""

    device: str
    method: str
    tracker_j: float
    exact_j: float
    #: Exact energy between the *read* instants instead (RAPL: shows the fake's update lag).
    at_read_instants_j: float | None = None
    #: How far the boundary instants are known (J), when they are not exact (power polling).
    boundary_uncertainty_j: float = 0.0
    note: str = ""

    @property
    def error_rel(self) -> float:
        return (self.tracker_j - self.exact_j) / self.exact_j

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "method": self.method,
            "tracker_j": self.tracker_j,
            "exact_j": self.exact_j,
            "error_rel": self.error_rel,
            "at_read_instants_j": self.at_read_instants_j,
            "boundary_uncertainty_j": self.boundary_uncertainty_j,
            "note": self.note,
        }


def write_read(
    writes: list[tuple[float, tuple[int, ...]]], column: int, raw_uj: int, read_sim_s: float
) -> float:
    """The simulated instant of the write whose value a read returned: the latest write at or
    before the read holding that raw value. Raises LookupError if no write matches."""
    best = None
    for t_s, raws in writes:
        if t_s > read_sim_s + 1e-6:  # writes are in time order
            break
        if raws[column] == raw_uj:
            best = t_s
    if best is None:
        raise LookupError(f"no write of raw value {raw_uj} before t={read_sim_s:.6f}")
    return best


def compare_rapl(
    fake: LoggingPowercap, device: str, tracker_j: float, reads: list[dict]
) -> Comparison:
    """Exact energy between the writes the run's start and stop reads returned."""
    if len(reads) != 2:
        raise ValueError(f"{device}: expected the start and stop reads, got {len(reads)}")
    column = list(ZONES).index(device)
    program = fake.zones[ZONES[device]].program
    start, stop = reads
    w0 = write_read(fake.writes, column, start["raw_uj"], fake.sim_time(start["t1"]))
    w1 = write_read(fake.writes, column, stop["raw_uj"], fake.sim_time(stop["t1"]))
    r0 = fake.sim_time((start["t0"] + start["t1"]) / 2)
    r1 = fake.sim_time((stop["t0"] + stop["t1"]) / 2)
    lag_ms = 1000 * max(r0 - w0, r1 - w1)
    return Comparison(
        device,
        "rapl",
        tracker_j,
        program.energy_j(w0, w1),
        at_read_instants_j=program.energy_j(r0, r1),
        note=f"boundary values written up to {lag_ms:.2f} ms before they were read",
    )


def compare_gpu_counter(
    log: list[LogEntry], gpu: int, program, scale: float, tracker_j: float, reads: list[dict]
) -> Comparison:
    """Exact energy between the instants the fake answered the start and stop counter reads.

    A boundary read's NVML call is the one logged inside its [t0, t1] window; should a sampler
    read fall in the same window, the pair whose counter difference is the tracker's is used.
    """
    device = f"gpu:{gpu}"
    if len(reads) != 2:
        raise ValueError(f"{device}: expected the start and stop reads, got {len(reads)}")
    calls = [c for c in log if c.kind == "energy" and c.gpu == gpu]

    def window(read: dict) -> list[LogEntry]:
        return [c for c in calls if read["t0"] <= c.t_s <= read["t1"]]

    want_mj = round((reads[1]["energy_j"] - reads[0]["energy_j"]) * 1000)
    pairs = [(a, b) for a in window(reads[0]) for b in window(reads[1])]
    matching = [(a, b) for a, b in pairs if b.value - a.value == want_mj]
    if not matching:
        raise LookupError(f"{device}: no logged NVML call pair matches the boundary reads")
    a, b = matching[0]
    return Comparison(
        device, "nvml-energy-counter", tracker_j, program.energy_j(a.t_s, b.t_s, scale)
    )


def compare_gpu_polling(
    program, scale: float, tracker_j: float, reads: list[dict], device: str
) -> Comparison:
    """Exact energy between the middles of the start and stop read calls (the polled sensor
    cuts its integral at an instant inside each call); the calls' widths bound that instant."""
    if len(reads) != 2:
        raise ValueError(f"{device}: expected the start and stop reads, got {len(reads)}")
    start, stop = reads
    t0 = (start["t0"] + start["t1"]) / 2
    t1 = (stop["t0"] + stop["t1"]) / 2
    width_s = (start["t1"] - start["t0"]) / 2 + (stop["t1"] - stop["t0"]) / 2
    return Comparison(
        device,
        "nvml-power-polling",
        tracker_j,
        program.energy_j(t0, t1, scale),
        boundary_uncertainty_j=width_s * scale * max(program.high_w, program.idle_w),
    )


def self_check() -> None:
    """Cheap checks of the reference values themselves (a wrong reference would hide a bug)."""
    import random

    rng = random.Random(7)
    for prog in (PACKAGE, DRAM):
        for _ in range(8):
            a = rng.uniform(0.0, 5.0)
            b = a + rng.uniform(0.0, 3.0)
            n = 20_000
            dt = (b - a) / n
            riemann = sum(prog.power_w(a + (i + 0.5) * dt) for i in range(n)) * dt
            # Midpoint sums err by at most one step's worth at each of the jumps.
            jumps = (b - a) / (prog.high_s + prog.low_s) * 2 + 2
            bound = jumps * dt * (prog.max_w - min(prog.high_w, prog.low_w, prog.idle_w))
            if abs(prog.energy_j(a, b) - riemann) > bound:
                raise AssertionError(f"Bursty integral wrong on [{a}, {b}]")
    writes = [(0.0, (5, 7)), (0.001, (9, 8)), (0.002, (5, 9))]
    assert write_read(writes, 0, 5, 0.0015) == 0.0
    assert write_read(writes, 0, 5, 0.0025) == 0.002
    assert write_read(writes, 1, 8, 0.0025) == 0.001
    try:
        write_read(writes, 1, 8, 0.0005)
    except LookupError:
        pass
    else:
        raise AssertionError("write_read matched a write made after the read")
