"""RAPL sensor: discovery, exact unwrapping of wrapping counters, permissions, failure modes."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest
from fakes.powercap import (
    REAL_PACKAGE_RANGE_UJ,
    FakePowercap,
    Linear,
    Sine,
    constant,
    steps,
)

from footprint.errors import FootprintWarning, SensorError
from footprint.sensors.base import DeviceInfo
from footprint.sensors.rapl import (
    DEFAULT_MAX_POWER_W,
    RaplSensor,
    discover_rapl,
    wrap_modulus_uj,
)

COUNTER_UJ = 1e-6  # energy_uj is truncated to whole microjoules: the finest a reading can be


def by_id(sensors):
    return {s.device.id: s for s in sensors}


@pytest.fixture
def fake(tmp_path):
    f = FakePowercap(tmp_path / "sys")
    yield f
    f.close()


def discover(fake: FakePowercap):
    sensors, status = discover_rapl(fake.root, clock=fake.clock)
    return by_id(sensors), status


def read_along(sensor, fake: FakePowercap, duration_s: float, step_s: float) -> float:
    """Advance the fake in step_s steps for duration_s, reading after each; last energy_j."""
    n = round(duration_s / step_s)
    for _ in range(n):
        fake.advance(step_s)
        reading = sensor.read()
    return reading.energy_j


# --- exact energies across wraps -------------------------------------------------------------


def test_constant_power_across_four_wraps_is_exact(fake):
    # Range 10 J, counter starts at 9 J; package-0 at 40 W for 1 s = 40 J: the counter wraps 4
    # times. Read every 0.02 s (below the 0.05 s max_read_interval_s).
    sensors, _ = discover(fake)
    cpu0 = sensors["cpu:0"]
    assert read_along(cpu0, fake, 1.0, 0.02) == pytest.approx(40.0, abs=COUNTER_UJ)
    assert cpu0.read().uncertain_intervals == 0
    assert fake.counter_uj("intel-rapl:0") < 9_000_000  # it really did wrap


def test_varying_power_many_wraps_matches_the_analytic_integral(tmp_path):
    program = Sine(mean_w=60.0, amplitude_w=30.0, period_s=0.7)
    fake = FakePowercap(tmp_path, power={"intel-rapl:1": program}, initial_fraction=0.5)
    sensors, _ = discover(fake)
    energy_j = read_along(sensors["cpu:1"], fake, 2.0, 0.04)
    w = 2 * math.pi / 0.7
    expected_j = 60.0 * 2.0 + 30.0 / w * (1 - math.cos(w * 2.0))  # computed here, not by the fake
    assert expected_j > 10 * 10  # > 10 wraps of a 10 J range
    assert energy_j == pytest.approx(expected_j, abs=COUNTER_UJ)
    assert sensors["cpu:1"].read().uncertain_intervals == 0
    fake.close()


def test_step_program_and_dram_energy(tmp_path):
    pkg = steps([(0.0, 20.0), (0.5, 90.0), (1.0, 10.0)])  # 10 + 45 + 5 = 60 J over 1.5 s
    fake = FakePowercap(tmp_path, power={"intel-rapl:0": pkg, "intel-rapl:0:2": constant(7.5)})
    sensors, _ = discover(fake)
    for _ in range(75):
        fake.advance(0.02)
        e_cpu, e_dram = sensors["cpu:0"].read().energy_j, sensors["dram:0"].read().energy_j
    assert e_cpu == pytest.approx(60.0, abs=COUNTER_UJ)
    assert e_dram == pytest.approx(7.5 * 1.5, abs=COUNTER_UJ)
    fake.close()


def test_one_unit_past_the_range_is_one_unit_of_energy(tmp_path):
    # Kernel semantics: energy_uj = raw * unit, max_energy_range_uj = (2**32 - 1) * unit, so
    # going from max_energy_range_uj to 0 is one more unit (61.035 uJ for 2**-14 J units).
    path = tmp_path / "energy_uj"
    path.write_text(f"{REAL_PACKAGE_RANGE_UJ}\n")
    device = DeviceInfo("cpu:0", "cpu", "package-0", "rapl", True)
    sensor = RaplSensor(device, path, max_energy_range_uj=REAL_PACKAGE_RANGE_UJ, max_power_w=100)
    path.write_text("0\n")  # same inode: the sensor keeps its file open
    unit_uj = 1e6 / 2**14
    assert sensor.read().energy_j * 1e6 == pytest.approx(unit_uj, abs=1.0)
    assert wrap_modulus_uj(REAL_PACKAGE_RANGE_UJ) - REAL_PACKAGE_RANGE_UJ == pytest.approx(
        REAL_PACKAGE_RANGE_UJ / (2**32 - 1)
    )


def test_concurrent_reads_count_each_wrap_once(fake):
    sensors, _ = discover(fake)
    cpu1 = sensors["cpu:1"]  # 50 W
    stop = threading.Event()
    seen: list[list[float]] = [[] for _ in range(3)]

    def reader(out: list[float]) -> None:
        while not stop.is_set():
            out.append(cpu1.read().energy_j)

    threads = [threading.Thread(target=reader, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for _ in range(100):
        fake.advance(0.01)
        cpu1.read()  # also read from here, so no interval exceeds the wrap time
    stop.set()
    for t in threads:
        t.join()
    assert cpu1.read().energy_j == pytest.approx(50.0, abs=COUNTER_UJ)
    for out in seen:
        assert out == sorted(out)  # cumulative energy never goes backwards


# --- which zones become devices -------------------------------------------------------------


def test_devices_mirror_counted_once_core_uncore_not_added(tmp_path):
    # core draws more than its package here: adding it would be visible at once.
    fake = FakePowercap(tmp_path, power={"intel-rapl:0:0": constant(300.0)})
    sensors, status = discover(fake)
    assert list(sensors) == ["cpu:0", "cpu:1", "dram:0", "dram:1"]
    assert [s.device.kind for s in sensors.values()] == ["cpu", "cpu", "dram", "dram"]
    assert all(s.device.method == "rapl" and s.device.measured for s in sensors.values())
    cpu0 = sensors["cpu:0"].device
    assert cpu0.name == "package-0"
    assert cpu0.details["zone"] == "intel-rapl:0"  # the MSR zone, not its MMIO mirror
    assert cpu0.details["mirrored_by"] == ["intel-rapl-mmio:0"]
    assert cpu0.details["subzones_not_summed"] == [
        "intel-rapl:0:0 (core)",
        "intel-rapl:0:1 (uncore)",
    ]
    assert sensors["dram:0"].device.details["package"] == "package-0"
    assert status.available and status.fix is None
    assert status.summary.startswith("2 CPU packages, 2 DRAM domains")
    assert "psys platform zone intel-rapl:2 present, not summed" in status.summary
    assert "intel-rapl-mmio:0 mirrors intel-rapl:0" in status.summary
    json.dumps([s.device.to_dict() for s in sensors.values()])  # details are serialisable

    # Energies: package-0 alone (40 W), not package + core + uncore, not doubled by the mirror.
    total = read_along(sensors["cpu:0"], fake, 0.5, 0.01)
    assert total == pytest.approx(20.0, abs=COUNTER_UJ)
    fake.close()


def test_top_level_dram_zones_are_found_and_assigned_to_packages(tmp_path):
    fake = FakePowercap(tmp_path, dram="top-level", mmio_mirror=False)
    sensors, status = discover(fake)
    assert list(sensors) == ["cpu:0", "cpu:1", "dram:0", "dram:1"]
    assert sensors["dram:0"].device.details["zone"] == "intel-rapl:2"
    assert sensors["dram:1"].device.details["zone"] == "intel-rapl:3"
    assert sensors["dram:1"].device.details["package_inferred_from_zone_order"] is True
    assert "psys platform zone intel-rapl:4" in status.summary
    assert read_along(sensors["dram:1"], fake, 0.4, 0.02) == pytest.approx(2.0, abs=COUNTER_UJ)
    fake.close()


def test_single_package_without_dram_or_psys(tmp_path):
    fake = FakePowercap(tmp_path, packages=1, dram="none", psys=False, mmio_mirror=False)
    sensors, status = discover(fake)
    assert list(sensors) == ["cpu:0"]
    assert status.summary == "1 CPU package, 0 DRAM domains"
    fake.close()


def test_multi_die_packages_get_distinct_ids(tmp_path):
    fake = FakePowercap(tmp_path, mmio_mirror=False)
    (fake.zones["intel-rapl:0"].path / "name").write_text("package-0-die-0\n")
    (fake.zones["intel-rapl:1"].path / "name").write_text("package-0-die-1\n")
    sensors, _ = discover(fake)
    assert list(sensors) == ["cpu:0-die-0", "cpu:0-die-1", "dram:0-die-0", "dram:0-die-1"]
    fake.close()


# --- read intervals and uncertainty -----------------------------------------------------------


def test_max_read_interval_from_the_largest_constraint(fake):
    sensors, _ = discover(fake)
    # range 10 J, constraint_0_max_power_uw 100 W (power limit 60 W): 10 J / 100 W / 2
    assert sensors["cpu:0"].max_read_interval_s == pytest.approx(0.05)
    assert sensors["cpu:0"].device.details["max_power_source"] == "constraint_0_max_power_uw"
    (fake.zones["intel-rapl:1"].path / "constraint_1_power_limit_uw").write_text("250000000\n")
    sensors, _ = discover(fake)
    assert sensors["cpu:1"].max_read_interval_s == pytest.approx(10 / 250 / 2)
    assert sensors["cpu:1"].device.details["max_power_w"] == 250.0


def test_max_read_interval_default_without_constraints(tmp_path):
    fake = FakePowercap(tmp_path, max_power_w=None, max_energy_range_uj=REAL_PACKAGE_RANGE_UJ)
    sensors, _ = discover(fake)
    assert DEFAULT_MAX_POWER_W == 500.0
    expected_s = REAL_PACKAGE_RANGE_UJ / 1e6 / 500.0 / 2  # 262 kJ at 500 W, halved: ~262 s
    assert sensors["cpu:0"].max_read_interval_s == pytest.approx(expected_s)
    assert 260 < expected_s < 263
    assert sensors["cpu:0"].device.details["max_power_source"] == "default (no constraint files)"
    fake.close()


def test_interval_longer_than_the_wrap_time_is_flagged(fake):
    sensors, _ = discover(fake)
    cpu0 = sensors["cpu:0"]  # wrap time at 100 W: 0.1 s
    fake.advance(0.099)
    assert cpu0.read().uncertain_intervals == 0
    fake.advance(0.3)  # 12 J at 40 W: one wrap more than the counter can show
    reading = cpu0.read()
    assert reading.uncertain_intervals == 1
    assert reading.energy_j < fake.energy_j("intel-rapl:0", 0, fake.time_s)  # under-counted
    fake.advance(0.05)
    assert cpu0.read().uncertain_intervals == 1  # cumulative; a short interval adds nothing
    fake.advance(5.0)
    assert cpu0.read().uncertain_intervals == 2


# --- permissions and failures -------------------------------------------------------------------


def test_root_only_counters_warn_once_with_the_fix_and_give_no_sensors(fake):
    fake.restrict_energy()
    fix = f"sudo chmod o+r {fake.root}/intel-rapl:*/energy_uj"
    with fake.as_non_root():
        with pytest.warns(FootprintWarning, match=re.escape(fix)) as caught:
            sensors, status = discover_rapl(fake.root)
        assert len(caught) == 1
        assert "root only" in str(caught[0].message)
        assert sensors == []
        assert not status.available
        assert status.fix is not None and status.fix.startswith(fix)
        assert "udev rule" in status.fix
        assert "EACCES" in status.summary
        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            assert discover_rapl(fake.root)[0] == []
        assert again == []  # once per process (and powercap root)


def test_one_restricted_zone_leaves_the_others(tmp_path):
    fake = FakePowercap(tmp_path)
    fake.restrict_energy(["intel-rapl:1:2"])
    with fake.as_non_root(), pytest.warns(FootprintWarning):
        sensors, status = discover_rapl(fake.root)
    assert list(by_id(sensors)) == ["cpu:0", "cpu:1", "dram:0"]
    assert status.available and "intel-rapl:1:2 energy_uj not readable" in status.summary
    fake.close()


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0, reason="needs root to drop")
def test_real_eacces_as_nobody():
    # No emulation: a forked child drops to uid 65534 and meets the kernel's own check.
    base = Path(tempfile.mkdtemp(prefix="footprint-rapl-"))
    try:
        base.chmod(0o755)
        fake = FakePowercap(base, mmio_mirror=False)
        fake.restrict_energy()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            try:
                os.setgid(65534)
                os.setuid(65534)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    sensors, status = discover_rapl(fake.root)
                out = {
                    "n": len(sensors),
                    "available": status.available,
                    "fix": status.fix,
                    "warnings": [str(c.message) for c in caught],
                }
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            out = json.loads(f.read())
        assert out["n"] == 0 and out["available"] is False
        assert len(out["warnings"]) == 1
        assert f"sudo chmod o+r {fake.root}/intel-rapl:*/energy_uj" in out["warnings"][0]
        fake.close()
    finally:
        for p in sorted(base.rglob("*"), key=lambda p: -len(p.parts)):
            p.unlink() if p.is_symlink() or p.is_file() else p.rmdir()
        base.rmdir()


def test_missing_tree_explains(tmp_path):
    sensors, status = discover_rapl(tmp_path / "no-powercap")
    assert sensors == [] and not status.available and status.source == "rapl"
    assert f"{tmp_path / 'no-powercap'} does not exist" in status.summary
    assert "modprobe intel_rapl_msr" in status.fix


def test_unusable_roots_explain(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    sensors, status = discover_rapl(a_file)
    assert sensors == [] and not status.available
    assert status.summary.startswith(f"cannot list {a_file}")
    empty = tmp_path / "empty"
    empty.mkdir()
    sensors, status = discover_rapl(empty)
    assert sensors == [] and status.summary == f"no readable RAPL zone in {empty}"
    zone = empty / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")  # no counter files
    assert "intel-rapl:0 lack" in discover_rapl(empty)[1].summary


def test_read_failing_later_raises_sensor_error_from_oserror(fake, monkeypatch):
    sensors, _ = discover(fake)

    def eio(fd, n, offset):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "pread", eio)
    with pytest.raises(SensorError, match="energy_uj failed") as info:
        sensors["cpu:0"].read()
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()
    sensors["cpu:1"].close()
    with pytest.raises(SensorError, match="closed"):
        sensors["cpu:1"].read()


def test_garbage_counter_raises_sensor_error(fake):
    sensors, _ = discover(fake)
    fake.close()  # stop the fake rewriting the file
    fake.zones["intel-rapl:0"].energy_path.write_text("n/a\n")
    with pytest.raises(SensorError, match="not an integer") as info:
        sensors["cpu:0"].read()
    assert isinstance(info.value.__cause__, ValueError)


# --- cost and real time -----------------------------------------------------------------------


def test_reading_every_sensor_costs_well_under_a_millisecond(fake):
    sensors = list(discover(fake)[0].values())
    rounds = 300
    t0 = time.perf_counter()
    for _ in range(rounds):
        for s in sensors:
            s.read()
    per_round_s = (time.perf_counter() - t0) / rounds
    assert per_round_s < 1e-3


def test_realtime_mode_follows_the_monotonic_clock(tmp_path):
    fake = FakePowercap(tmp_path, max_energy_range_uj=REAL_PACKAGE_RANGE_UJ)
    sensors, _ = discover_rapl(fake.root)
    cpu0 = by_id(sensors)["cpu:0"]  # 40 W
    with fake.realtime(interval_s=0.001):
        t0 = time.monotonic()
        e0 = cpu0.read().energy_j
        time.sleep(0.3)
        e1 = cpu0.read().energy_j
        t1 = time.monotonic()
    # The fake lags real time by about one update interval; allow 50 ms of scheduling.
    assert e1 - e0 == pytest.approx(40.0 * (t1 - t0), abs=40.0 * 0.05)
    assert fake.energy_j("intel-rapl:0", fake.sim_time(t0), fake.sim_time(t1)) == pytest.approx(
        40.0 * (t1 - t0)
    )
    fake.close()


def test_fake_programs_integrate_exactly():
    program = steps([(0.0, 20.0), (0.5, 90.0), (1.0, 10.0)])
    assert program.energy_j(0.0, 1.5) == pytest.approx(60.0)
    assert program.energy_j(0.25, 0.75) == pytest.approx(5.0 + 22.5)
    assert program.energy_j(2.0, 3.0) == pytest.approx(10.0)
    ramp = Linear(((0.0, 0.0), (2.0, 10.0)))
    assert ramp.energy_j(0.0, 1.0) == pytest.approx(2.5)
    assert ramp.energy_j(1.0, 3.0) == pytest.approx(7.5 + 10.0)
    assert (ramp + constant(1.0)).energy_j(-1.0, 1.0) == pytest.approx(2.5 + 2.0)
