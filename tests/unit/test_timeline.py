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


def test_a_signal_inside_a_critical_section_waits_for_the_outermost_end():
    """footprint's own code (a sensor read, a save) is never interrupted by SIGINT/SIGTERM."""
    import signal

    from footprint import interrupts

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.critical:
            with interrupts.critical:
                interrupts._on_sigint(signal.SIGINT, None)  # as if Ctrl-C arrived here
                reached.append("inner")
            reached.append("outer")
    assert reached == ["inner", "outer"]
    # outside a section the handler raises at once:
    with pytest.raises(KeyboardInterrupt):
        interrupts._on_sigint(signal.SIGINT, None)
