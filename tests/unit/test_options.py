"""One definition of the options: track, Tracker, bench and the docs agree; bad options fail
before any work, naming the fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint import options
from footprint.errors import UsageError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def test_typed_definition_table_and_docstring_name_the_same_options():
    typed = set(options.TrackOptions.__annotations__)
    assert typed == set(options.NAMES)
    for name in options.NAMES:
        assert f"``{name}``" in footprint.track.__doc__
    assert options.docstring() in footprint.bench.__doc__.replace("\n    ", "\n")


def test_docs_list_exactly_the_options():
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)`", section, re.M))
    assert documented == set(options.NAMES)


@pytest.mark.parametrize(
    "call",
    [
        lambda: footprint.track("x", regoin="FR"),
        lambda: footprint.Tracker("x", regoin="FR"),
        lambda: footprint.bench(len, [[1]], regoin="FR"),
    ],
    ids=["track", "Tracker", "bench"],
)
def test_an_unknown_option_names_the_closest(call):
    with pytest.raises(UsageError, match=r"unknown option 'regoin'; did you mean region=\?"):
        call()


def test_an_unknown_option_with_nothing_close_lists_them_all():
    with pytest.raises(UsageError, match=r"unknown option 'colour' \(options: region, "):
        footprint.track("x", colour="red")


def test_documented_carbon_options_work(clock, store):
    sensors = [ConstantPowerSensor(clock, 100.0)]
    with footprint.track(
        "x", region="FR", embodied=True, sensors=sensors, _clock=clock, store=store
    ) as run:
        clock.advance(3600.0)
    assert run.record.embodied_emissions_kg is not None and run.record.embodied_emissions_kg > 0
    with pytest.raises(ValueError, match="intensity_basis must be 'life-cycle' or 'direct'"):
        footprint.track("x", intensity_basis="lca")
    direct = footprint.track("x", region="FR", intensity_basis="direct")
    assert direct.config.carbon.region == "FR"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sample_interval_s": 1e9}, "sample_interval_s must be .* at most 86400"),
        ({"checkpoint_interval_s": 0}, "checkpoint_interval_s must be .* above 0"),
        ({"store": ""}, "store must name a directory"),
        ({"baseline": "yes"}, "baseline must be True or False"),
        ({"higher_is_better": {"acc": 1}}, "higher_is_better must map metric names"),
        ({"task": 3}, "task must be a string"),
        ({"max_timeline_points": 1}, "max_timeline_points must be an integer >= 2"),
        ({"powercap_root": ""}, "powercap_root must name a directory"),
        ({"proc_root": 3}, "proc_root must name a directory"),
    ],
)
def test_bad_values_fail_at_the_call(kwargs, message):
    with pytest.raises(ValueError, match=message):
        footprint.track("x", **kwargs)


def test_none_for_a_root_means_its_default():
    # a wrapper (a framework callback, a config file) passes None for "not given"
    config = footprint.track("x", powercap_root=None, proc_root=None).config
    assert os.fspath(config.powercap_root) == "/sys/class/powercap"
    assert config.proc_root == "/proc"


def test_the_config_is_frozen_and_shared_by_every_run_of_a_tracker(clock, store):
    tracker = footprint.track("x", sensors=[ConstantPowerSensor(clock, 1.0)], _clock=clock)
    with pytest.raises(AttributeError):
        tracker.config.name = "y"  # type: ignore[misc]
    with tracker as a:
        pass
    with tracker as b:
        pass
    assert a.config is b.config and a.id != b.id
