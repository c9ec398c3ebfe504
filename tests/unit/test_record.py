"""The typed record: every field checked once, at the edge; a store survives any file in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from footprint.errors import FootprintWarning, RunNotFoundError, StoreError
from footprint.record import (
    SCHEMA_VERSION,
    RecordError,
    RunRecord,
    new_record,
    upgrade,
)
from footprint.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "records"
GOOD_ID = "a" * 32
BAD_ID = "b" * 32


def good_record(run_id: str = GOOD_ID) -> dict:
    """A complete record that ranks: one device, an inference phase, queries and accuracy."""
    return new_record(
        id=run_id,
        name="good",
        started_at="2026-11-01T10:00:00+00:00",
        energy_kwh=0.001,
        devices=[{"id": "cpu", "kind": "cpu", "energy_j": 3600.0, "method": "m"}],
        phases=[
            {
                "name": "infer",
                "path": "infer",
                "start_s": 0.0,
                "end_s": 1.0,
                "energy_j": {"cpu": 3600.0},
                "counts": {"queries": 10},
            }
        ],
        counts={"queries": 10},
        metrics={"accuracy": 0.9},
        task="t",
        model="m",
    ).to_dict()


#: Well-formed JSON, mistyped records: each took a whole store down before the typed record.
MISTYPED = {
    "metric-null": ({"metrics": {"accuracy": None}}, "metrics.accuracy"),
    "region-number": ({"region": 5}, "region"),
    "phase-not-object": ({"phases": [1]}, "phases[0]"),
    "carbon-string": ({"carbon": "FR"}, "carbon"),
    "count-string": ({"counts": {"samples": "ten"}}, "counts.samples"),
    "bad-date": ({"started_at": "not-a-date"}, "started_at"),
    "source-number": ({"sources": [1]}, "sources[0]"),
    "device-without-id": (
        {"devices": [{"kind": "cpu", "energy_j": 1.0}]},
        "devices[0].id",
    ),
    "embodied-string": ({"embodied_emissions_kg": "x"}, "embodied_emissions_kg"),
}


@pytest.mark.parametrize("damage,field", MISTYPED.values(), ids=MISTYPED.keys())
def test_from_dict_names_the_bad_field(damage, field):
    with pytest.raises(RecordError) as caught:
        RunRecord.from_dict({**good_record(), **damage})
    assert caught.value.field == field
    assert repr(field) in str(caught.value)


@pytest.mark.parametrize(
    "damage,field",
    [
        ({"energy_kwh": -1.0}, "energy_kwh"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"status": "exploded"}, "status"),
        ({"baseline": "yes"}, "baseline"),
        ({"tags": {"a": 1}}, "tags.a"),
        ({"notes": ["ok", 3]}, "notes[1]"),
        ({"devices": [{"id": "cpu", "kind": "toaster", "energy_j": 1.0}]}, "devices[0].kind"),
        ({"devices": [{"id": "cpu", "kind": "cpu", "energy_j": True}]}, "devices[0].energy_j"),
        (
            {"phases": [{"name": "a", "path": "a", "start_s": 2.0, "end_s": 1.0}]},
            "phases[0].end_s",
        ),
        # schema 2's phase fields, past the one-pass check of well-formed phases
        (
            {
                "phases": [
                    {
                        "name": "a",
                        "path": "a",
                        "start_s": 0.0,
                        "end_s": 1.0,
                        "attributed_energy_j": {"cpu": -1.0},
                    }
                ]
            },
            "phases[0].attributed_energy_j.cpu",
        ),
        (
            {
                "phases": [
                    {
                        "name": "a",
                        "path": "a",
                        "start_s": 0.0,
                        "end_s": 1.0,
                        "own_counts": {"q": float("inf")},
                    }
                ]
            },
            "phases[0].own_counts.q",
        ),
        (
            {"phases": [{"name": "a", "path": "a", "start_s": 0.0, "end_s": 1.0, "parent": -1}]},
            "phases[0].parent",
        ),
        (
            {"phases": [{"name": "a", "path": "a", "start_s": 0.0, "end_s": 1.0, "parent": 0}]},
            "phases[0].parent",
        ),
        ({"timeline": {"t_s": [0.0, 1.0], "power_w": {"cpu": [1.0, 2.0]}}}, "timeline.power_w.cpu"),
        ({"timeline": {"t_s": [0.0, float("inf")], "power_w": {}}}, "timeline.t_s"),
        ({"timeline": {"t_s": [1.0, 0.0], "power_w": {}}}, "timeline.t_s"),
        ({"host": {"cpu_count_logical": "8"}}, "host.cpu_count_logical"),
        ({"host": {"gpus": [{"name": 3}]}}, "host.gpus[0].name"),
        ({"carbon": {"pue": 0}}, "carbon.pue"),
        ({"carbon": {"embodied": {"devices": "x"}}}, "carbon.embodied.devices"),
        ({"started_at": "2026-11-01T10:00:00"}, "started_at"),  # no UTC offset
        ({"heartbeat_at": 12345}, "heartbeat_at"),
        ({"pid": 1.5}, "pid"),
        ({"some_new_field": float("nan")}, "some_new_field"),  # kept, but must be JSON
    ],
)
def test_every_part_is_checked(damage, field):
    with pytest.raises(RecordError) as caught:
        RunRecord.from_dict({**good_record(), **damage})
    assert caught.value.field == field


@pytest.mark.parametrize(
    "bad_id", ["../../elsewhere/x", "ABCDEF0123456789ABCDEF0123456789", "a" * 31, 7, ""]
)
def test_ids_are_32_lowercase_hex(bad_id):
    with pytest.raises(RecordError, match="32 lowercase hexadecimal") as caught:
        RunRecord.from_dict({**good_record(), "id": bad_id})
    assert caught.value.field == "id"


def test_round_trip_and_unknown_fields_kept():
    data = {**good_record(), "future_field": {"x": [1, 2]}}
    data["devices"][0]["vendor_extra"] = "kept"
    record = RunRecord.from_dict(data)
    assert record.extra == {"future_field": {"x": [1, 2]}}
    assert record.devices[0].extra == {"vendor_extra": "kept"}
    assert record.to_dict() == upgrade(data)
    assert json.loads(json.dumps(record.to_dict())) == json.loads(json.dumps(upgrade(data)))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("v*.json")), ids=lambda p: p.name)
def test_every_schema_version_fixture_loads_and_round_trips(path, tmp_path):
    data = json.loads(path.read_text())
    assert 1 <= data["schema_version"] <= SCHEMA_VERSION
    record = RunRecord.from_dict(data)
    assert record.schema_version == SCHEMA_VERSION
    assert record.to_dict() == upgrade(data)
    # and through the store, as a user's old store would be read
    (tmp_path / f"{data['id']}.json").write_text(path.read_text())
    (loaded,) = Store(tmp_path).records()
    assert loaded == record


def test_a_fixture_exists_for_every_schema_version():
    versions = {json.loads(p.read_text())["schema_version"] for p in FIXTURES.glob("v*.json")}
    assert versions == set(range(1, SCHEMA_VERSION + 1))


def test_upgrade_fills_nested_defaults_and_does_not_touch_its_input():
    data = {
        "id": GOOD_ID,
        "started_at": "2026-11-01T10:00:00+00:00",
        "devices": [{"id": "cpu", "kind": "cpu", "energy_j": 1.0}],
    }
    out = upgrade(data)
    assert out["devices"][0]["measured"] is False and out["devices"][0]["details"] == {}
    assert out["host"]["hostname"] is None and out["timeline"] == {"t_s": [], "power_w": {}}
    assert "measured" not in data["devices"][0]


def test_replace_checks_what_it_changes():
    record = RunRecord.from_dict(good_record())
    assert record.replace(status="failed").status == "failed"
    with pytest.raises(RecordError, match="'status'"):
        record.replace(status="exploded")
    with pytest.raises(TypeError, match="no field 'colour'"):
        record.replace(colour="red")


# -- the store survives its files -----------------------------------------------------------


def write(store: Path, name: str, data: object) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    path = store / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("damage,field", MISTYPED.values(), ids=MISTYPED.keys())
def test_a_mistyped_file_is_skipped_with_one_warning_naming_file_and_field(tmp_path, damage, field):
    st = Store(tmp_path)
    st.save(RunRecord.from_dict(good_record()))
    bad = write(tmp_path, BAD_ID, {**good_record(BAD_ID), **damage})
    with pytest.warns(FootprintWarning) as caught:
        assert [r.id for r in st.records()] == [GOOD_ID]
    (warning,) = caught
    assert str(bad) in str(warning.message) and repr(field) in str(warning.message)


def fp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "footprint", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_every_reading_command_exits_0_with_one_warning_per_bad_file(tmp_path):
    store = tmp_path / "s"
    Store(store).save(RunRecord.from_dict(good_record()))
    bad = {}
    for i, (damage, field) in enumerate(MISTYPED.values()):
        run_id = f"{i:032x}"
        write(store, run_id, {**good_record(run_id), **damage})
        bad[run_id] = field
    listing = [
        ["runs"],
        ["runs", "--format", "json"],
        ["leaderboard", "--quality", "accuracy", "--per", "queries"],
        ["report", "-o", str(tmp_path / "r.html")],
    ]
    for argv in listing:
        res = fp(*argv, "--store", str(store))
        assert res.returncode == 0 and "Traceback" not in res.stderr, (argv, res.stderr)
        warned = [line for line in res.stderr.splitlines() if "skipping run file" in line]
        assert len(warned) == len(bad), (argv, res.stderr)
        for run_id, field in bad.items():
            (line,) = [w for w in warned if run_id in w]
            assert repr(field) in line, line
    assert GOOD_ID[:8] in fp("runs", "--store", str(store)).stdout
    # commands that read one run are not disturbed by the others
    res = fp("whatif", GOOD_ID[:8], "--regions", "FR", "--store", str(store))
    assert res.returncode == 0 and "FR" in res.stdout and res.stderr == ""


@pytest.mark.slow
def test_a_hostile_id_never_becomes_a_path(tmp_path):
    store = tmp_path / "store" / "runs"
    elsewhere = tmp_path / "elsewhere"  # where store/runs/../../elsewhere/x.json would land
    elsewhere.mkdir()
    data = {**good_record(BAD_ID), "id": "../../elsewhere/x", "region": "FR"}
    write(store, BAD_ID, data)
    res = fp("recompute", BAD_ID[:8], "--region", "DE", "--store", str(store))
    assert res.returncode == 1 and "cannot be read" in res.stderr
    assert "32 lowercase hexadecimal" in res.stderr
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in store.iterdir()) == [f"{BAD_ID}.json"]
    with pytest.raises(StoreError, match="not a run id"):
        Store(store).file_for("../../elsewhere/x")


@pytest.mark.slow
def test_a_file_whose_name_and_id_disagree_is_reported_never_written_twice(tmp_path):
    store = tmp_path / "runs"
    write(store, BAD_ID, {**good_record(GOOD_ID), "region": "FR"})  # a copy under another name
    st = Store(store)
    with pytest.warns(FootprintWarning, match="has id 'a{32}', not its file name's"):
        assert st.records() == []
    with pytest.warns(FootprintWarning), pytest.raises(RunNotFoundError, match="cannot be read"):
        st.get(BAD_ID[:8])
    res = fp("recompute", BAD_ID[:8], "--region", "DE", "--store", str(store))
    assert res.returncode == 1
    assert sorted(p.name for p in store.iterdir()) == [f"{BAD_ID}.json"]


def test_files_that_are_not_run_files_are_skipped(tmp_path):
    Store(tmp_path).save(RunRecord.from_dict(good_record()))
    write(tmp_path, "notes", {"hello": 1})
    with pytest.warns(FootprintWarning, match="notes.json.*not <run id>.json"):
        assert [r.id for r in Store(tmp_path).records()] == [GOOD_ID]


def test_store_save_takes_typed_records_only(tmp_path):
    with pytest.raises(TypeError, match="takes a RunRecord"):
        Store(tmp_path).save(good_record())  # type: ignore[arg-type]


def test_dumping_json_leaves_asks_no_abc(monkeypatch):
    # isinstance(x, Mapping) on a type the ABC has not cached walks every Mapping subclass:
    # ~115 ms on the first record built after torch's import registered its ABCs (a job's rank
    # took that long to end; global rank 0 waited for it). Plain JSON values never ask.
    from footprint.record import model

    calls = []

    class Meta(type):
        def __instancecheck__(cls, obj):
            calls.append(type(obj))
            return False

    class CountingMapping(metaclass=Meta):
        pass

    monkeypatch.setattr(model, "Mapping", CountingMapping)
    value = {"a": [1.0, "x", None, {"b": True, "c": 3}], "d": ("e", 2.5)}
    assert model._dump(value) == {"a": [1.0, "x", None, {"b": True, "c": 3}], "d": ["e", 2.5]}
    assert calls == []
