"""CPU package and DRAM energy from RAPL, read through Linux's powercap sysfs interface.

Layout (``/sys/class/powercap`` lists every zone flat, as symlinks into ``/sys/devices``)::

    intel-rapl:0        name "package-0"  (AMD Zen uses the same driver and names)
    intel-rapl:0:0      name "core"       (inside the package: never added on top of it)
    intel-rapl:0:1      name "uncore"     (same)
    intel-rapl:0:2      name "dram"       (a device of its own)
    intel-rapl:1        name "psys"       (whole platform: includes the packages; not summed)
    intel-rapl-mmio:0   name "package-0"  (the same package through MMIO: a mirror, counted once)

Each zone has a cumulative ``energy_uj`` counter that wraps. The kernel derives it from a 32-bit
hardware counter of energy units: ``energy_uj = raw * unit`` (raw in 0 .. 2**32 - 1) and
``max_energy_range_uj = (2**32 - 1) * unit``. After ``max_energy_range_uj`` the counter goes to 0
one unit later, so one full turn is ``max_energy_range_uj * 2**32 / (2**32 - 1)`` microjoules:
the range plus one unit (~61 uJ for packages), not the range itself nor the range + 1 uJ.

See docs/sensors-rapl.md for the permission fix (``energy_uj`` is root-only since Linux 5.10).
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from footprint.errors import FootprintWarning, SensorError
from footprint.sensors.base import DeviceInfo, DeviceKind, Reading, Sensor, SourceStatus

if TYPE_CHECKING:
    from footprint.sensors.accounting import CpuAccounting, Share

__all__ = ["DEFAULT_MAX_POWER_W", "RaplSensor", "discover_rapl", "wrap_modulus_uj"]

#: Power assumed for a zone whose constraint files give no maximum, in watts. Deliberately above
#: any current server package (the largest are ~400-500 W), so the read interval derived from it
#: errs on the short, safe side.
DEFAULT_MAX_POWER_W = 500.0

_COUNTER_STEPS = 2**32  # the kernel's ENERGY_STATUS_MASK is 32 bits wide
_ZONE_RE = re.compile(r"^(intel-rapl|intel-rapl-mmio):(\d+)(?::(\d+))?$")
_PACKAGE_RE = re.compile(r"^package-(\d+)(?:-die-(\d+))?$")
_CONSTRAINT_RE = re.compile(r"^constraint_(\d+)_(max_power_uw|power_limit_uw)$")

# Root-only counters are warned about once per process and powercap root (each test tree has
# its own root); the runtime keeps what was warned.


def wrap_modulus_uj(max_energy_range_uj: int) -> float:
    """Energy of one full turn of a powercap counter, in microjoules (range plus one unit)."""
    return max_energy_range_uj * _COUNTER_STEPS / (_COUNTER_STEPS - 1)


def _open_counter(path: str) -> int:
    """Open a counter file for reading. A module-level seam: tests emulate a non-root user here."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


class RaplSensor(Sensor):
    """One RAPL domain's energy counter, unwrapped into a cumulative energy in joules.

    The file stays open and every read is one ``os.pread`` at offset 0 (sysfs regenerates the
    value on each read from the start), so a read costs microseconds and never globs.
    ``max_read_interval_s`` is half the time the counter takes to wrap at ``max_power_w``; a
    read-to-read interval longer than a whole wrap time may hide a second wrap and is counted in
    :attr:`Reading.uncertain_intervals` (at the read that ends it).
    """

    def share(self, accounting: CpuAccounting) -> Share | None:
        """A RAPL domain measures the whole package (or DRAM): the run is charged its process
        tree's share of the machine's busy CPU time."""
        from footprint.sensors.accounting import CpuTimeShare

        return CpuTimeShare(accounting)

    def __init__(
        self,
        device: DeviceInfo,
        energy_path: str | os.PathLike,
        *,
        max_energy_range_uj: int,
        max_power_w: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Open ``energy_path`` and take the baseline reading.

        Raises OSError (PermissionError when the counter is root-only) if the file cannot be
        opened, SensorError if it cannot be read, and ValueError for a non-positive range or power.
        """
        super().__init__()
        if max_energy_range_uj <= 0:
            raise ValueError(
                f"max_energy_range_uj must be > 0, got {max_energy_range_uj}; "
                "pass the zone's max_energy_range_uj file content"
            )
        if not max_power_w > 0:
            raise ValueError(f"max_power_w must be > 0, got {max_power_w}")
        self.device = device
        self.energy_path = os.fspath(energy_path)
        self.max_energy_range_uj = max_energy_range_uj
        self.max_power_w = float(max_power_w)
        self._modulus_uj = wrap_modulus_uj(max_energy_range_uj)
        #: Shortest time in which the counter can wrap once, at max_power_w.
        self.wrap_time_s = max_energy_range_uj / 1e6 / self.max_power_w
        self.max_read_interval_s = self.wrap_time_s / 2
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = _open_counter(self.energy_path)
        try:
            self._first_uj = self._last_uj = self._read_raw_uj()
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise
        self._last_s = clock()
        self._wraps = 0
        self._uncertain = 0

    def _read_raw_uj(self) -> int:
        fd = self._fd
        if fd is None:
            raise SensorError(
                f"RAPL sensor {self.device.id} was closed; probe the sensors again to read it"
            )
        try:
            data = os.pread(fd, 32, 0)
        except OSError as e:
            raise SensorError(
                f"reading {self.energy_path} failed ({e.strerror or e}); the RAPL zone may have "
                "gone away (CPU hotplug, driver unloaded): probe the sensors again"
            ) from e
        try:
            return int(data)
        except ValueError as e:
            raise SensorError(
                f"{self.energy_path} holds {data[:32]!r}, not an integer count of microjoules; "
                "is the root really a powercap tree?"
            ) from e

    def read(self) -> Reading:
        """Cumulative energy since the sensor was created. Thread-safe; raises SensorError."""
        with self._lock:
            now_s = self._clock()
            now_uj = self._read_raw_uj()
            if now_uj < self._last_uj:
                self._wraps += 1
            if now_s - self._last_s > self.wrap_time_s:
                # Long enough for an extra, invisible wrap: the energy may be under-counted.
                self._uncertain += 1
            self._last_uj, self._last_s = now_uj, now_s
            energy_uj = now_uj - self._first_uj + self._wraps * self._modulus_uj
            return Reading(energy_j=energy_uj / 1e6, uncertain_intervals=self._uncertain)

    def close(self) -> None:
        """Close the counter file; later reads raise SensorError."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class _Zone:
    key: str  # directory name, e.g. "intel-rapl:0:2"
    path: str
    interface: str  # "intel-rapl" (MSR) or "intel-rapl-mmio"
    top: int
    sub: int | None
    name: str = ""
    max_energy_range_uj: int = 0
    max_power_w: float | None = None
    max_power_source: str = ""
    notes: dict = field(default_factory=dict)


def _read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _find_zones(root: str) -> dict[str, str]:
    """Zone directory name -> path: the flat class listing plus subzones nested in zones."""
    found: dict[str, str] = {}
    for entry in sorted(os.listdir(root)):
        if _ZONE_RE.match(entry):
            found.setdefault(entry, os.path.join(root, entry))
    for key, path in list(found.items()):
        try:
            children = os.listdir(path)
        except OSError:
            continue
        for child in children:
            if _ZONE_RE.match(child) and child.startswith(key + ":"):
                found.setdefault(child, os.path.join(path, child))
    return found


def _load_zone(key: str, path: str) -> _Zone | None:
    m = _ZONE_RE.match(key)
    assert m is not None
    zone = _Zone(key, path, m[1], int(m[2]), None if m[3] is None else int(m[3]))
    try:
        zone.name = _read_text(os.path.join(path, "name"))
        zone.max_energy_range_uj = int(_read_text(os.path.join(path, "max_energy_range_uj")))
    except (OSError, ValueError):
        return None
    if zone.max_energy_range_uj <= 0 or not os.path.exists(os.path.join(path, "energy_uj")):
        return None
    # The largest power any constraint allows bounds the rate the counter can advance at.
    # Some platforms answer ENODATA for unset constraints: those are skipped.
    best_uw, best_file = 0, ""
    for entry in sorted(os.listdir(path)):
        if not _CONSTRAINT_RE.match(entry):
            continue
        try:
            value_uw = int(_read_text(os.path.join(path, entry)))
        except (OSError, ValueError):
            continue
        if value_uw > best_uw:
            best_uw, best_file = value_uw, entry
    if best_uw > 0:
        zone.max_power_w, zone.max_power_source = best_uw / 1e6, best_file
    return zone


def _package_label(zone: _Zone) -> tuple[tuple[int, int], str]:
    """Sort key and id label of a package zone: "0", or "0-die-1" on multi-die packages."""
    m = _PACKAGE_RE.match(zone.name)
    if m is None:  # unexpected name: fall back to the kernel's zone index
        return (zone.top, 0), str(zone.top)
    if m[2] is None:
        return (int(m[1]), 0), m[1]
    return (int(m[1]), int(m[2])), f"{m[1]}-die-{m[2]}"


def _permission_fix(root: str, interfaces: set[str]) -> str:
    globs = " ".join(f"{root}/{iface}:*/energy_uj" for iface in sorted(interfaces))
    return (
        f"sudo chmod o+r {globs} (until reboot; to keep it, add a udev rule: "
        "see docs/sensors-rapl.md), or run as root"
    )


def discover_rapl(
    root: str | os.PathLike = "/sys/class/powercap",
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Sensor], SourceStatus]:
    """Find the RAPL domains under ``root`` and open one sensor per CPU package and DRAM domain.

    Never raises for a missing or unusable tree: it returns no sensors and a SourceStatus that
    says why and how to fix it. Root-only counters (Linux >= 5.10) also warn once per process
    (FootprintWarning), naming the chmod that fixes it. ``clock`` times read-to-read intervals.
    """
    root_s = os.fspath(root)
    try:
        found = _find_zones(root_s)
    except FileNotFoundError:
        return [], SourceStatus(
            "rapl",
            False,
            f"{root_s} does not exist: no powercap interface (not Linux, a VM or container "
            "that hides it, or the RAPL driver not loaded)",
            fix="on bare-metal Linux with an Intel or AMD Zen CPU: sudo modprobe intel_rapl_msr; "
            "containers need the host's /sys/class/powercap mounted; VMs and most cloud "
            "instances do not expose RAPL (CPU energy is then estimated)",
        )
    except OSError as e:
        return [], SourceStatus(
            "rapl",
            False,
            f"cannot list {root_s}: {e.strerror or e}",
            fix=f"pass the powercap directory (a readable directory such as {root_s!r})",
        )

    zones: list[_Zone] = []
    broken: list[str] = []
    for key, path in found.items():
        zone = _load_zone(key, path)
        if zone is None:
            broken.append(key)
        else:
            zones.append(zone)
    if not zones:
        return [], SourceStatus(
            "rapl",
            False,
            f"no readable RAPL zone in {root_s}"
            + (f" ({', '.join(broken)} lack name/max_energy_range_uj/energy_uj)" if broken else ""),
            fix="on bare-metal Linux with an Intel or AMD Zen CPU: sudo modprobe intel_rapl_msr",
        )

    # MSR zones first, so that an MMIO zone with the same name is recognised as its mirror.
    zones.sort(key=lambda z: (z.interface != "intel-rapl", z.top, -1 if z.sub is None else z.sub))
    tops: dict[tuple[str, int], _Zone] = {}
    msr_top_by_name: dict[str, _Zone] = {}
    packages: list[_Zone] = []
    top_drams: list[_Zone] = []
    sub_drams: list[tuple[_Zone, _Zone]] = []  # (dram zone, its package zone)
    psys: list[str] = []
    ignored: list[str] = []
    mirrors: list[str] = []
    for zone in zones:
        if zone.sub is None:
            tops[(zone.interface, zone.top)] = zone
            if zone.interface == "intel-rapl-mmio" and zone.name in msr_top_by_name:
                target = msr_top_by_name[zone.name]
                target.notes.setdefault("mirrored_by", []).append(zone.key)
                zone.notes["mirror_of"] = target.key
                mirrors.append(f"{zone.key} mirrors {target.key}")
                continue
            if zone.interface == "intel-rapl":
                msr_top_by_name[zone.name] = zone
            if zone.name.startswith("package"):
                packages.append(zone)
            elif zone.name == "dram":
                top_drams.append(zone)
            elif zone.name == "psys":
                psys.append(zone.key)
            else:
                ignored.append(f"{zone.key} ({zone.name})")
            continue
        parent = tops.get((zone.interface, zone.top))
        if parent is None or "mirror_of" in parent.notes:
            # The subzones of a mirrored package are mirrors too.
            if parent is not None:
                mirrors.append(f"{zone.key} mirrors a subzone of {parent.notes['mirror_of']}")
            else:
                ignored.append(f"{zone.key} ({zone.name}, no parent zone)")
            continue
        if zone.name == "dram" and parent.name.startswith("package"):
            sub_drams.append((zone, parent))
        elif zone.name in ("core", "uncore"):
            # Part of the package's energy already: recorded, never added.
            parent.notes.setdefault("subzones_not_summed", []).append(f"{zone.key} ({zone.name})")
        else:
            ignored.append(f"{zone.key} ({zone.name})")

    packages.sort(key=lambda z: _package_label(z)[0])
    package_labels = {z.key: _package_label(z)[1] for z in packages}

    plans: list[tuple[_Zone, str, str, str, dict]] = []  # zone, kind, id, name, details
    for zone in packages:
        plans.append((zone, "cpu", f"cpu:{package_labels[zone.key]}", zone.name, {}))
    for zone, parent in sub_drams:
        label = package_labels[parent.key]
        plans.append((zone, "dram", f"dram:{label}", f"dram-{label}", {"package": parent.name}))
    # A top-level "dram" zone says nothing about its socket: the k-th one (by zone index) is
    # taken to belong to the k-th package, which is exact on the usual one-per-socket layout.
    used = {p[2] for p in plans}
    for k, zone in enumerate(sorted(top_drams, key=lambda z: z.top)):
        label = package_labels[packages[k].key] if k < len(packages) else str(k)
        if f"dram:{label}" in used:
            label = f"{label}-zone-{zone.top}"
        details = {"package_inferred_from_zone_order": True}
        plans.append((zone, "dram", f"dram:{label}", f"dram-{label}", details))

    sensors: list[Sensor] = []
    denied: list[_Zone] = []
    failed: list[str] = []
    for zone, kind, dev_id, name, extra in plans:
        max_power_w = zone.max_power_w or DEFAULT_MAX_POWER_W
        device_details: dict[str, object] = {
            "zone": zone.key,
            "path": zone.path,
            "interface": zone.interface,
            "max_energy_range_uj": zone.max_energy_range_uj,
            "max_power_w": max_power_w,
            "max_power_source": zone.max_power_source or "default (no constraint files)",
            **extra,
            **zone.notes,
        }
        device = DeviceInfo(dev_id, cast(DeviceKind, kind), name, "rapl", True, device_details)
        try:
            sensors.append(
                RaplSensor(
                    device,
                    os.path.join(zone.path, "energy_uj"),
                    max_energy_range_uj=zone.max_energy_range_uj,
                    max_power_w=max_power_w,
                    clock=clock,
                )
            )
        except PermissionError:
            denied.append(zone)
        except (OSError, SensorError) as e:
            failed.append(f"{zone.key}: {e}")

    fix = None
    if denied:
        fix = _permission_fix(root_s, {z.interface for z in denied})
        from footprint import runtime

        if runtime.get().warn_once("rapl-root-only", root_s):
            warnings.warn(
                f"RAPL energy counters in {root_s} are readable by root only (Linux >= 5.10, "
                "since the PLATYPUS attack), so CPU/DRAM energy will be estimated, not measured. "
                f"Fix: {fix}.",
                FootprintWarning,
                stacklevel=2,
            )

    n_cpu = sum(s.device.kind == "cpu" for s in sensors)
    n_dram = sum(s.device.kind == "dram" for s in sensors)
    parts = [f"{n_cpu} CPU package{'s' * (n_cpu != 1)}, {n_dram} DRAM domain{'s' * (n_dram != 1)}"]
    if denied:
        parts.append(
            f"{', '.join(z.key for z in denied)} energy_uj not readable "
            f"({errno.errorcode[errno.EACCES]}: root only)"
        )
    if failed:
        parts.append("unreadable: " + "; ".join(failed))
    if psys:
        parts.append(
            f"psys platform zone {', '.join(psys)} present, not summed (includes packages)"
        )
    if mirrors:
        parts.append("counted once: " + ", ".join(mirrors))
    if ignored:
        parts.append("ignored: " + ", ".join(ignored))
    if broken:
        parts.append("incomplete zones skipped: " + ", ".join(broken))
    if not sensors and not denied and not failed:
        parts.append("no package or DRAM zone")
    return sensors, SourceStatus("rapl", bool(sensors), "; ".join(parts), fix)
