"""The store: atomic files, many writers, corrupt files, id prefixes, stale runs, old records."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import footprint
from footprint.errors import FootprintWarning, RunNotFoundError, StoreError
from footprint.record import SCHEMA_VERSION, RecordError, RunRecord, new_record, upgrade
from footprint.store import Store, resolve_stale


def record_dict(run_id: str, started: str = "2026-11-01T10:00:00+00:00", **extra) -> dict:
    base = {"schema_version": 1, "id": run_id, "name": "r", "started_at": started}
    base.update(extra)
    return base


def record(run_id: str, started: str = "2026-11-01T10:00:00+00:00", **extra) -> RunRecord:
    return new_record(id=run_id, name="r", started_at=started, **extra)


def _writer(path: str, worker: int) -> None:
    st = Store(path)
    for i in range(20):
        st.save(record(f"{worker:02d}{i:04d}" + "0" * 26, energy_kwh=worker + i / 100))


def test_many_processes_write_at_once_and_every_record_is_whole(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    recs = Store(tmp_path).records()
    assert len(recs) == 120
    assert sorted({round(r.energy_kwh - int(r.energy_kwh), 2) for r in recs})[-1] == 0.19
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_corrupt_and_truncated_files_are_skipped_with_a_warning(tmp_path):
    st = Store(tmp_path)
    st.save(record("a" * 32))
    (tmp_path / ("b" * 32 + ".json")).write_text('{"schema_version": 1, "id": "bbb", "sta')
    (tmp_path / ("c" * 32 + ".json")).write_text("[]")
    with pytest.warns(FootprintWarning, match="skipping run file") as caught:
        recs = st.records()
    assert [r.id for r in recs] == ["a" * 32]
    assert len(caught) == 2


def test_records_newest_first_and_prefix_resolution(tmp_path):
    st = Store(tmp_path)
    st.save(record("abc1" + "0" * 28, started="2026-11-01T10:00:00+00:00"))
    st.save(record("abc2" + "0" * 28, started="2026-11-02T10:00:00+00:00"))
    assert [r.id[:4] for r in st.records()] == ["abc2", "abc1"]
    assert st.get("abc1").id.startswith("abc1")
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        st.get("abc")
    with pytest.raises(RunNotFoundError, match="no run 'zzz'"):
        st.get("zzz")


def test_store_that_cannot_be_written_fails_clearly(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store(f).ensure_writable()
    with pytest.raises(StoreError, match="cannot write run store"):
        Store(f / "sub").ensure_writable()


def test_default_store_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOTPRINT_DIR", str(tmp_path / "env-store"))
    assert Store().path == tmp_path / "env-store"
    monkeypatch.delenv("FOOTPRINT_DIR")
    assert Store().path == Path("footprint-runs").absolute()


def test_upgrade_fills_optional_fields_and_refuses_newer_versions():
    old = upgrade({"id": "a" * 32, "started_at": "2026-01-01T00:00:00+00:00"})
    assert old["schema_version"] == SCHEMA_VERSION
    assert old["devices"] == [] and old["emissions_kg"] is None and old["status"] == "completed"
    with pytest.raises(RecordError, match="newer than this footprint"):
        upgrade({"schema_version": SCHEMA_VERSION + 1, "id": "x", "started_at": "t"})
    with pytest.raises(RecordError, match="lacks required"):
        upgrade({"schema_version": 1})


def test_stale_running_record_reads_as_interrupted():
    beat = datetime.now(timezone.utc) - timedelta(seconds=500)
    rec = record(
        "e" * 32,
        status="running",
        heartbeat_at=beat.isoformat(),
        checkpoint_interval_s=60,
        pid=2**22 + 12345,  # no such process
        host={"hostname": os.uname().nodename},
    )
    assert resolve_stale(rec).status == "interrupted"
    fresh = rec.replace(heartbeat_at=datetime.now(timezone.utc).isoformat())
    assert resolve_stale(fresh).status == "running"
    alive = rec.replace(pid=os.getpid(), pid_create_time=None)
    assert resolve_stale(alive).status == "running"


def test_load_runs_dataframe(tmp_path):
    st = Store(tmp_path)
    devices = [
        {"id": "gpu:0", "kind": "gpu", "energy_j": 100.0, "measured": True},
        {"id": "ram", "kind": "ram", "energy_j": 5.0, "measured": False},
    ]
    st.save(record("a" * 32, devices=devices, counts={"samples": 10}, metrics={"acc": 0.9}))
    df = footprint.load_runs(tmp_path)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["energy_j_gpu"] == 100.0 and row["energy_j_ram"] == 5.0
    assert not row["measured"]
    assert row["count_samples"] == 10 and row["metric_acc"] == 0.9
    assert str(df["started_at"].dtype).startswith("datetime64")


def test_saved_file_is_plain_json(tmp_path):
    path = Store(tmp_path).save(record("d" * 32))
    assert json.loads(path.read_text())["id"] == "d" * 32


@pytest.mark.parametrize(
    "damage",
    [
        {"started_at": None},
        {"host": None, "status": "running", "heartbeat_at": "2020-01-01T00:00:00+00:00"},
        {"heartbeat_at": 12345, "status": "running"},
        {"energy_kwh": "x"},
        {"devices": [{"id": "gpu:0", "kind": "gpu"}]},
        {"status": "exploded"},
    ],
)
def test_valid_json_with_wrong_types_is_skipped_not_a_crash(tmp_path, damage):
    st = Store(tmp_path)
    st.save(record("a" * 32))
    (tmp_path / ("b" * 32 + ".json")).write_text(json.dumps(record_dict("b" * 32, **damage)))
    with pytest.warns(FootprintWarning, match="skipping run file"):
        assert [r.id for r in st.records()] == ["a" * 32]
    with pytest.warns(FootprintWarning):
        assert len(footprint.load_runs(tmp_path)) == 1


def test_a_recycled_pid_does_not_keep_a_dead_run_running():
    from footprint.store import process_create_time

    beat = datetime.now(timezone.utc) - timedelta(seconds=500)
    rec = record(
        "f" * 32,
        status="running",
        heartbeat_at=beat.isoformat(),
        checkpoint_interval_s=60,
        pid=os.getpid(),  # alive, but not the process that wrote the record
        pid_create_time=process_create_time() - 3600,
        host={"hostname": os.uname().nodename},
    )
    assert resolve_stale(rec).status == "interrupted"
