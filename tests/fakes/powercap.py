"""A fake Linux powercap (RAPL) tree on disk, driven by power programs in simulated time.

Layout, like the kernel's: zone directories live under ``<base>/devices/virtual/powercap/`` and
the class directory ``<base>/class/powercap`` (the ``root`` given to ``discover_rapl``) lists
every zone flat, as symlinks. By default::

    intel-rapl:0       package-0  (+ intel-rapl:0:0 core, :0:1 uncore, :0:2 dram)
    intel-rapl:1       package-1  (+ core, uncore, dram)
    intel-rapl:2       psys       (platform; power = packages + DRAM + 15 W)
    intel-rapl-mmio:0  package-0  (the same counter as intel-rapl:0: a mirror)

Counters follow the kernel's semantics: a zone's ``energy_uj`` is the energy since the fake
started plus an initial offset, modulo one full turn of the counter
(``footprint.sensors.rapl.wrap_modulus_uj(max_energy_range_uj)``: the range plus one unit),
truncated to whole microjoules. Time is simulated: :meth:`FakePowercap.advance` moves it forward
deterministically; :meth:`FakePowercap.realtime` instead follows ``time.monotonic()`` from a
background thread (for tracker and benchmark tests).

Root-only counters: Linux >= 5.10 makes ``energy_uj`` mode 0400, owner root.
:meth:`FakePowercap.restrict_energy` sets that mode. A non-root test process then really gets
EACCES; root (these tests run as root) can read anything, so :meth:`FakePowercap.as_non_root`
additionally replaces rapl.py's single open seam (``_open_counter``) with one that applies the
permission check a non-root user would meet (no "other" read bit -> EACCES), for as long as the
context lasts. Nothing else in rapl.py is patched.

Values are rewritten in place (same inode, because the sensor keeps its file open), padded to a
fixed width so a value is never followed by stale digits.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from footprint.sensors.rapl import wrap_modulus_uj

#: A realistic package range: (2**32 - 1) units of 2**-14 J, truncated to whole microjoules as
#: the kernel does (units of 61035 nJ).
REAL_PACKAGE_RANGE_UJ = (2**32 - 1) * 61035 // 1000
_WIDTH = 24  # characters per counter file, value right-aligned


# --- power programs: watts as a function of simulated time, with exact integrals -------------


class PowerProgram:
    """Power in watts as a function of time in seconds, with an exact energy integral."""

    def power_w(self, t_s: float) -> float:
        raise NotImplementedError

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Exact integral of the power from t0_s to t1_s, in joules."""
        raise NotImplementedError

    def __add__(self, other: PowerProgram) -> PowerProgram:
        return Sum((self, other))


@dataclass(frozen=True)
class Sum(PowerProgram):
    parts: tuple[PowerProgram, ...]

    def power_w(self, t_s: float) -> float:
        return sum(p.power_w(t_s) for p in self.parts)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return sum(p.energy_j(t0_s, t1_s) for p in self.parts)


@dataclass(frozen=True)
class Linear(PowerProgram):
    """Piecewise linear through ``knots`` ((t_s, power_w), t ascending), constant outside them.

    Two knots at the same instant make a step; :func:`steps` builds piecewise-constant programs.
    """

    knots: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.knots or any(b[0] < a[0] for a, b in zip(self.knots, self.knots[1:])):
            raise ValueError(f"knots must be non-empty and ascending in time, got {self.knots}")

    def power_w(self, t_s: float) -> float:
        k = self.knots
        if t_s <= k[0][0]:
            return k[0][1]
        for (ta, wa), (tb, wb) in zip(k, k[1:]):
            if t_s < tb:
                return wa + (wb - wa) * (t_s - ta) / (tb - ta)
        return k[-1][1]

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self._cumulative_j(t1_s) - self._cumulative_j(t0_s)

    def _cumulative_j(self, t_s: float) -> float:
        # Integral from the first knot to t_s (negative before it): whole trapezoids, then the
        # partial one that contains t_s. Zero-length segments (steps) contribute nothing.
        k = self.knots
        if t_s <= k[0][0]:
            return (t_s - k[0][0]) * k[0][1]
        total = 0.0
        for (ta, wa), (tb, wb) in zip(k, k[1:]):
            if t_s < tb:
                return total + (wa + self.power_w(t_s)) / 2 * (t_s - ta)
            total += (wa + wb) / 2 * (tb - ta)
        return total + (t_s - k[-1][0]) * k[-1][1]


def constant(power_w: float) -> Linear:
    return Linear(((0.0, power_w),))


def steps(changes: Sequence[tuple[float, float]]) -> Linear:
    """Piecewise constant: ``[(t_s, power_w), ...]`` -> power_w from t_s until the next change."""
    knots: list[tuple[float, float]] = []
    for t_s, power_w in changes:
        if knots:
            knots.append((t_s, knots[-1][1]))
        knots.append((t_s, power_w))
    return Linear(tuple(knots))


@dataclass(frozen=True)
class Sine(PowerProgram):
    """mean_w + amplitude_w * sin(2 pi t / period_s)."""

    mean_w: float
    amplitude_w: float
    period_s: float

    def power_w(self, t_s: float) -> float:
        return self.mean_w + self.amplitude_w * math.sin(2 * math.pi * t_s / self.period_s)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        w = 2 * math.pi / self.period_s
        return self.mean_w * (t1_s - t0_s) + self.amplitude_w / w * (
            math.cos(w * t0_s) - math.cos(w * t1_s)
        )


# --- the tree ---------------------------------------------------------------------------------


@dataclass
class FakeZone:
    key: str  # e.g. "intel-rapl:0:2"
    name: str  # e.g. "dram"
    path: Path
    program: PowerProgram
    max_energy_range_uj: int
    initial_uj: float
    source: str | None = None  # key of the zone whose counter this one mirrors
    constraints_uw: dict[str, int] = field(default_factory=dict)

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"


class FakePowercap:
    """A powercap tree under ``base``; ``root`` is its class directory (pass it to discover_rapl).

    ``packages``: number of CPU packages. ``dram``: ``"subzone"`` (intel-rapl:N:2 under each
    package), ``"top-level"`` (one intel-rapl:K zone named "dram" per package, after the
    packages), or ``"none"``. ``max_energy_range_uj``: every zone's range (small in tests, so
    counters wrap often). ``max_power_w``: written as ``constraint_0_max_power_uw`` (plus a lower
    ``constraint_0_power_limit_uw``) on packages and DRAM; None writes no constraint files.
    ``initial_fraction``: where counters start, as a fraction of the range. ``power``: programs
    by zone key, overriding the defaults (package N: 40 + 10 N W, core 60 % and uncore 10 % of
    it, DRAM 5 W, psys packages + DRAM + 15 W).
    """

    def __init__(
        self,
        base: Path,
        *,
        packages: int = 2,
        dram: str = "subzone",
        mmio_mirror: bool = True,
        psys: bool = True,
        max_energy_range_uj: int = 10_000_000,
        max_power_w: float | None = 100.0,
        initial_fraction: float = 0.9,
        power: dict[str, PowerProgram] | None = None,
    ) -> None:
        if dram not in ("subzone", "top-level", "none"):
            raise ValueError(f"dram must be 'subzone', 'top-level' or 'none', got {dram!r}")
        self.base = Path(base)
        self.root = self.base / "class" / "powercap"
        self._devices = self.base / "devices" / "virtual" / "powercap"
        self.max_energy_range_uj = max_energy_range_uj
        self.modulus_uj = wrap_modulus_uj(max_energy_range_uj)
        self.zones: dict[str, FakeZone] = {}
        self._lock = threading.Lock()
        self._t_s = 0.0
        self._fds: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._offset_s: float | None = None  # monotonic - simulated time, in realtime()
        overrides = dict(power or {})
        initial_uj = initial_fraction * max_energy_range_uj
        limits = {}
        if max_power_w is not None:
            limits = {
                "constraint_0_max_power_uw": round(max_power_w * 1e6),
                "constraint_0_power_limit_uw": round(max_power_w * 0.6e6),
            }

        def add(key, name, program, *, source=None, constraints=None):
            parts = key.split(":")
            if len(parts) == 2:
                path = self._devices / parts[0] / key
            else:
                path = self._devices / parts[0] / f"{parts[0]}:{parts[1]}" / key
            program = overrides.pop(key, program)
            self.zones[key] = FakeZone(
                key,
                name,
                path,
                program,
                max_energy_range_uj,
                initial_uj,
                source,
                dict(constraints or {}),
            )

        drams: list[PowerProgram] = []
        pkgs: list[PowerProgram] = []
        for n in range(packages):
            pkg = constant(40.0 + 10 * n)
            add(f"intel-rapl:{n}", f"package-{n}", pkg, constraints=limits)
            pkgs.append(self.zones[f"intel-rapl:{n}"].program)
            add(f"intel-rapl:{n}:0", "core", constant((40.0 + 10 * n) * 0.6))
            add(f"intel-rapl:{n}:1", "uncore", constant((40.0 + 10 * n) * 0.1))
            if dram == "subzone":
                add(f"intel-rapl:{n}:2", "dram", constant(5.0), constraints=limits)
                drams.append(self.zones[f"intel-rapl:{n}:2"].program)
        nxt = packages
        if dram == "top-level":
            for _ in range(packages):
                add(f"intel-rapl:{nxt}", "dram", constant(5.0), constraints=limits)
                drams.append(self.zones[f"intel-rapl:{nxt}"].program)
                nxt += 1
        if psys:
            add(f"intel-rapl:{nxt}", "psys", Sum((*pkgs, *drams, constant(15.0))))
        if mmio_mirror and packages:
            add("intel-rapl-mmio:0", "package-0", pkgs[0], source="intel-rapl:0")
        if overrides:
            raise ValueError(f"power given for unknown zones {sorted(overrides)}")
        self._build()

    # -- building and writing

    def _build(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for control in {z.key.split(":")[0] for z in self.zones.values()}:
            (self._devices / control).mkdir(parents=True, exist_ok=True)
            (self._devices / control / "enabled").write_text("1\n")
            _symlink(self.root / control, self._devices / control)
        for zone in self.zones.values():
            zone.path.mkdir(parents=True, exist_ok=True)
            (zone.path / "name").write_text(zone.name + "\n")
            (zone.path / "max_energy_range_uj").write_text(f"{zone.max_energy_range_uj}\n")
            (zone.path / "enabled").write_text("1\n")
            for fname, value in zone.constraints_uw.items():
                (zone.path / fname).write_text(f"{value}\n")
            zone.energy_path.write_text(" " * (_WIDTH - 1) + "\n")
            zone.energy_path.chmod(0o444)  # as before Linux 5.10
            _symlink(self.root / zone.key, zone.path)
            self._fds[zone.key] = os.open(zone.energy_path, os.O_WRONLY)
        self._write_all()

    def _true_energy_uj(self, zone: FakeZone, t_s: float) -> float:
        src = self.zones[zone.source] if zone.source else zone
        return src.initial_uj + src.program.energy_j(0.0, t_s) * 1e6

    def counter_uj(self, key: str, t_s: float | None = None) -> int:
        """The value ``energy_uj`` of zone ``key`` holds at simulated time t_s (default: now)."""
        true_uj = self._true_energy_uj(self.zones[key], self._t_s if t_s is None else t_s)
        return math.floor(math.fmod(true_uj, self.modulus_uj))

    def _write_all(self) -> None:
        for key, fd in self._fds.items():
            data = f"{self.counter_uj(key):>{_WIDTH - 1}}\n".encode()
            os.pwrite(fd, data, 0)

    # -- time

    @property
    def time_s(self) -> float:
        """Simulated time now, in seconds since the fake was created."""
        return self._t_s

    def clock(self) -> float:
        """The simulated time: pass as ``discover_rapl(..., clock=fake.clock)``."""
        return self._t_s

    def advance(self, duration_s: float) -> None:
        """Move simulated time forward by duration_s and rewrite every counter."""
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        with self._lock:
            self._t_s += duration_s
            self._write_all()

    def energy_j(self, key: str, t0_s: float, t1_s: float) -> float:
        """Exact energy zone ``key`` drew between simulated instants t0_s and t1_s, in joules."""
        zone = self.zones[key]
        src = self.zones[zone.source] if zone.source else zone
        return src.program.energy_j(t0_s, t1_s)

    @contextlib.contextmanager
    def realtime(self, interval_s: float = 0.001) -> Iterator[FakePowercap]:
        """Advance simulated time with time.monotonic() from a thread, every interval_s.

        Within the context, simulated time t maps to monotonic time ``t + offset_s`` (see
        :meth:`sim_time`); counters lag real time by at most interval_s (plus scheduling).
        """
        if self._thread is not None:
            raise RuntimeError("realtime() is already running")
        self._offset_s = time.monotonic() - self._t_s
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                with self._lock:
                    self._t_s = max(self._t_s, time.monotonic() - self._offset_s)
                    self._write_all()

        self._thread = threading.Thread(target=run, name="fake-powercap", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def sim_time(self, monotonic_s: float) -> float:
        """The simulated instant of a time.monotonic() value taken inside :meth:`realtime`."""
        if self._offset_s is None:
            raise RuntimeError("sim_time() maps monotonic times taken inside realtime() only")
        return monotonic_s - self._offset_s

    # -- permissions

    def restrict_energy(self, keys: Sequence[str] | None = None) -> None:
        """Make energy_uj root-only (mode 0400), as Linux >= 5.10 does. Default: every zone."""
        for key in keys if keys is not None else list(self.zones):
            self.zones[key].energy_path.chmod(stat.S_IRUSR)

    @contextlib.contextmanager
    def as_non_root(self) -> Iterator[None]:
        """Open counters as a non-root user would: no "other" read bit -> EACCES.

        Only needed when the tests run as root (root reads any file). Patches
        ``footprint.sensors.rapl._open_counter`` for the duration, for every tree.
        """
        from footprint.sensors import rapl

        real = rapl._open_counter

        def open_as_other(path: str) -> int:
            if os.geteuid() == 0 and not os.stat(path).st_mode & stat.S_IROTH:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return real(path)

        rapl._open_counter = open_as_other
        try:
            yield
        finally:
            rapl._open_counter = real

    def close(self) -> None:
        """Stop writing: close the fake's own file descriptors."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _symlink(link: Path, target: Path) -> None:
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)
