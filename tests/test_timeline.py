"""Unit tests of the bounded timeline: exact sums under merging."""

from __future__ import annotations

import pytest

from footprint.sampler import Snapshot, Timeline


def snap(t, *e):
    return Snapshot(t, tuple(e), tuple(0 for _ in e))


def test_merging_keeps_energy_exact_and_memory_bounded():
    tl = Timeline(snap(0.0, 0.0, 0.0), resolution_s=0.1, max_buckets=16)
    energy = [0.0, 0.0]
    t = 0.0
    for i in range(1, 5001):
        t = i * 0.1
        energy = [energy[0] + (i % 7), energy[1] + 0.5]
        tl.add(snap(t, *energy))
        assert len(tl) <= 16
    tl.finish(snap(t + 0.03, energy[0] + 1.0, energy[1]))
    d = tl.to_dict(["a", "b"])
    widths = [b - a for a, b in zip(d["t_s"], d["t_s"][1:])]
    assert sum(p * w for p, w in zip(d["power_w"]["a"], widths)) == pytest.approx(energy[0] + 1.0)
    assert sum(p * w for p, w in zip(d["power_w"]["b"], widths)) == pytest.approx(energy[1])
    assert d["t_s"][-1] == pytest.approx(t + 0.03)
    assert tl.resolution_s > 0.1


def test_readings_closer_than_resolution_do_not_open_buckets():
    tl = Timeline(snap(10.0, 0.0), resolution_s=1.0)
    tl.add(snap(10.2, 2.0))
    tl.add(snap(10.5, 5.0))
    assert len(tl) == 0
    tl.add(snap(11.0, 10.0))
    assert tl.to_dict(["x"]) == {"t_s": [0.0, 1.0], "power_w": {"x": [10.0]}}
    tl.finish(snap(11.5, 11.0))
    tl.add(snap(20.0, 99.0))  # after finish: ignored
    assert tl.to_dict(["x"])["t_s"] == [0.0, 1.0, 1.5]


def test_a_signal_handler_reading_during_a_read_does_not_deadlock():
    """SIGTERM may arrive while the main thread is inside a read; its handler reads again."""
    import threading

    from footprint.sampler import SensorSet
    from footprint.sensors.base import DeviceInfo, Reading, Sensor

    class Interrupted(Sensor):
        device = DeviceInfo("x", "cpu", "x", "fake", True)

        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()  # like a real sensor's own lock
            self.nested = None
            self.n = 0.0

        def read(self):
            with self.lock:
                self.n += 1.0
                if self.nested is None:  # "the handler runs here"
                    self.nested = sset.read()
                return Reading(self.n)

    sensor = Interrupted()
    sset = SensorSet([sensor], clock=lambda: 5.0)
    first = sset.read()
    assert sensor.nested.energy_j == (0.0,)  # the handler got the readings so far
    assert first.energy_j == (1.0,)
    assert sset.read().energy_j == (2.0,)
