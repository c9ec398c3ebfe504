"""MLflow both ways, against real tracking stores: a SQLite backend file, and a real
``mlflow server`` on 127.0.0.1 started (and killed) by the test (docs/integrations.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.cli import main
from footprint.store import Store

pytestmark = pytest.mark.slow

mlflow = pytest.importorskip("mlflow", reason="pip install -e '.[mlflow]'")
from footprint.integrations.mlflow import (  # noqa: E402
    ARTIFACT,
    RECORD_TAG,
    load_records,
    log_run,
    mlflow_key,
)


@pytest.fixture
def uri(tmp_path, monkeypatch):
    """A fresh SQLite tracking store, artifacts beside it, as MLflow's tracking URI."""
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts under the cwd
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("Default")  # not an earlier test's experiment, of another store
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _track(clock, store, name, variant, queries, accuracy, sensor_id="gpu:0", **options):
    sensor = ConstantPowerSensor(clock, 100.0, sensor_id)
    with footprint.track(
        name, sensors=[sensor], _clock=clock, store=store, task="sst2", model="bert",
        variant=variant, region="FR", **options,
    ) as run:  # fmt: skip
        with run.phase("inference"):
            clock.advance(10.0)
            run.count(queries=queries)
        run.log(accuracy=accuracy)
    return run


def test_log_run_writes_metrics_params_tags_and_the_record(uri, clock, store):
    mlflow.set_experiment("sst2")
    with mlflow.start_run() as active:
        run = _track(clock, store, "bert-int8", "int8", 500, 0.91, sensor_id="plug#1 (lab)")
        assert log_run(run) == active.info.run_id
    record = run.record
    got = mlflow.MlflowClient(uri).get_run(active.info.run_id)
    m = got.data.metrics
    assert m["footprint.energy_j"] == record.energy_j == pytest.approx(1000.0)
    assert m["footprint.energy_kwh"] == record.energy_kwh
    assert m["footprint.emissions_kg"] == record.emissions_kg
    assert m["footprint.duration_s"] == record.duration_s
    # a device id MLflow would refuse ('#', '(' ...) is made a valid key
    assert m["footprint.device.plug_1 _lab_.energy_j"] == record.devices[0].energy_j
    assert m["footprint.count.queries"] == 500
    assert m["footprint.energy_j_per.queries"] == pytest.approx(record.energy_j / 500)
    p = got.data.params
    assert (p["footprint.task"], p["footprint.model"], p["footprint.variant"]) == (
        "sst2",
        "bert",
        "int8",
    )
    assert p["footprint.region"] == "FR"
    t = got.data.tags
    assert t[RECORD_TAG] == record.id and t["footprint.status"] == "completed"
    assert t["footprint.measured"] == "all" and t["footprint.methods"] == "gpu:fake-counter"
    text = mlflow.artifacts.load_text(f"runs:/{active.info.run_id}/{ARTIFACT}")
    assert text == record.to_json()


def test_a_second_record_in_one_mlflow_run_goes_to_a_nested_run(uri, clock, store):
    with mlflow.start_run() as active:
        a = _track(clock, store, "a", "fp32", 10, 0.9)
        b = _track(clock, store, "b", "int8", 10, 0.8)
        assert log_run(a) == active.info.run_id
        assert log_run(a) == active.info.run_id  # the same record again: same MLflow run
        child = log_run(b)
    assert child != active.info.run_id
    got = mlflow.MlflowClient(uri).get_run(child)
    assert got.data.tags["mlflow.parentRunId"] == active.info.run_id
    assert got.data.tags[RECORD_TAG] == b.record.id and got.info.status == "FINISHED"


def test_without_an_active_run_a_new_one_is_made_and_ended_with_the_status(uri, clock, store):
    sensor = ConstantPowerSensor(clock, 10.0)
    with pytest.raises(RuntimeError, match="boom"):
        with footprint.track("crash", sensors=[sensor], _clock=clock, store=store) as run:
            clock.advance(1.0)
            raise RuntimeError("boom")
    mlrun_id = log_run(run, experiment="crashes")
    assert mlflow.active_run() is None
    client = mlflow.MlflowClient(uri)
    got = client.get_run(mlrun_id)
    assert got.info.status == "FAILED" and got.info.run_name == "crash"
    assert client.get_experiment(got.info.experiment_id).name == "crashes"


def test_records_round_trip_and_the_leaderboard_is_the_stores(uri, clock, store, capsys):
    mlflow.set_experiment("sst2")
    for variant, queries, accuracy in [("fp32", 400, 0.92), ("int8", 500, 0.91)] * 2:
        with mlflow.start_run():
            log_run(_track(clock, store, f"bert-{variant}", variant, queries, accuracy))
    mlflow.set_experiment("other")
    with mlflow.start_run():
        log_run(_track(clock, store, "elsewhere", "x", 1, 0.1))
    back = load_records(uri, experiment="sst2")
    mine = sorted(Store(store).records(), key=lambda r: r.id)
    assert len(back) == 4
    assert sorted(back, key=lambda r: r.id) == [r for r in mine if r.name != "elsewhere"]
    assert len(load_records(uri)) == 5  # every experiment
    from_mlflow = footprint.leaderboard(records=back, quality="accuracy", per="queries")
    from_store = footprint.leaderboard(
        records=[r for r in mine if r.name != "elsewhere"], quality="accuracy", per="queries"
    )
    assert from_mlflow.equals(from_store)

    capsys.readouterr()
    args = ["leaderboard", "--quality", "accuracy", "--per", "queries", "--format", "csv"]
    assert main([*args, "--mlflow", uri, "--experiment", "sst2"]) == 0
    via_mlflow = capsys.readouterr().out
    only = tmp_store = Path(store).parent / "only-sst2"
    for r in mine:
        if r.name != "elsewhere":
            Store(tmp_store).save(r)
    assert main([*args, "--store", str(only)]) == 0
    assert via_mlflow == capsys.readouterr().out and "int8" in via_mlflow

    assert main(["runs", "--mlflow", uri, "--experiment", "sst2", "--format", "json"]) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["id"] for r in listed) == sorted(r.id for r in back)

    out = Path(store).parent / "report.html"
    assert main(["report", "--mlflow", uri, "--experiment", "sst2", "-o", str(out)]) == 0
    assert "bert-int8" in out.read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--experiment", "sst2"], "--experiment reads MLflow experiments: give --mlflow URI"),
        (["--mlflow", "sqlite:///x.db", "--store", "s"], "give --store or --mlflow, not both"),
        (["--mlflow", "{uri}", "--experiment", "nope"], "no MLflow experiment 'nope'"),
    ],
)
def test_reading_options_misused_say_how_to_fix_it(uri, argv, message, capsys):
    argv = [a.replace("{uri}", uri) for a in argv]
    code = main(["leaderboard", "--quality", "accuracy", "--per", "queries", *argv])
    assert code != 0 and message in capsys.readouterr().err


def test_mlflow_keys_keep_what_mlflow_allows_and_replace_the_rest():
    assert mlflow_key("footprint.device.gpu:0.energy_j") == "footprint.device.gpu:0.energy_j"
    assert mlflow_key("a/b c-d_e") == "a/b c-d_e"
    assert mlflow_key("tok€ns?<x>") == "tok_ns__x_"
    assert mlflow_key("") == "_" and len(mlflow_key("x" * 999)) == 250


def test_a_callback_logs_into_the_active_mlflow_run(uri, clock, store):
    from footprint.integrations._fit import FitRuns

    fits = FitRuns("TestCallback", None, {"sensors": [ConstantPowerSensor(clock, 5.0)]})
    with mlflow.start_run() as active:
        fits.begin("fit")
        clock.advance(2.0)
        run = fits.end()
    got = mlflow.MlflowClient(uri).get_run(active.info.run_id)
    assert got.data.tags[RECORD_TAG] == run.record.id
    assert got.data.metrics["footprint.energy_j"] == pytest.approx(10.0)


def test_a_callback_never_imports_mlflow_for_a_program_that_does_not(tmp_path):
    code = (
        "import sys\n"
        "from footprint.integrations._fit import FitRuns\n"
        f"f = FitRuns('cb', None, {{'store': {str(tmp_path / 's')!r}}})\n"
        "f.begin('fit'); f.end()\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- a real tracking server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [
            str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
        start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "mlflow server did not start:\n" + (tmp_path / "server.log").read_text()
                )
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def test_log_and_read_back_through_a_real_mlflow_server(server, clock, store, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = [_track(clock, store, f"bert-{v}", v, 100, acc) for v, acc in (("a", 0.9), ("b", 0.8))]
    ids = [log_run(r, tracking_uri=server, experiment="served") for r in runs]
    client = mlflow.MlflowClient(server)
    assert client.get_run(ids[0]).data.metrics["footprint.energy_j"] == runs[0].record.energy_j
    back = load_records(server, experiment="served")
    assert sorted(back, key=lambda r: r.id) == sorted((r.record for r in runs), key=lambda r: r.id)


def test_the_ci_gate_reads_the_candidate_and_the_baseline_from_mlflow(uri, clock, store, tmp_path):
    mlflow.set_experiment("gate")
    for accuracy in (0.91, 0.9105, 0.9098):
        with mlflow.start_run():
            log_run(_track(clock, store, "bert-fp32", "fp32", 400, accuracy))
    baseline = tmp_path / "b.json"
    argv = ["baseline", "export", "--mlflow", uri, "--experiment", "gate", "--per", "queries"]
    assert main([*argv, "-o", str(baseline)]) == 0
    assert len(json.loads(baseline.read_text())["repeats"]) == 3
    # the same runs as the candidate: a constant 100 W for 10 s per 400 queries, exactly equal
    check = ["check", "--baseline", str(baseline), "--mlflow", uri, "--experiment", "gate",
             "--per", "queries", "--format", "json"]  # fmt: skip
    assert main(check) == 0
    assert main([*check, "--store", str(store)]) == 2  # one place or the other, not both
