"""The framework callbacks with the real libraries: the Hugging Face Trainer (a 1-layer BERT
built from a config), Lightning and Keras 3 on the torch backend, tiny models on the CPU, nothing
downloaded (docs/integrations.md). Each runs in a subprocess (a framework's import is heavy and
its exit handling is part of what is tested); the CPU is a simulated RAPL package drawing a
constant power, so the measured energy is known."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.powercap import FakePowercap, constant

from footprint.store import Store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "frameworks"
CPU_W = 20.0


def _needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f"{module} is not installed (pip install -e '.[transformers,lightning,keras]')"
            )


def _powercap(base: Path) -> FakePowercap:
    return FakePowercap(
        base, packages=1, dram="none", psys=False, power={"intel-rapl:0": constant(CPU_W)}
    )


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return _powercap(tmp_path / "sys")


@pytest.fixture(scope="module")
def hf_fit(tmp_path_factory) -> Path:
    """One Trainer fit (then evaluate() and predict()), shared by the tests that read it."""
    _needs("transformers", "accelerate", "huggingface_hub")
    base = tmp_path_factory.mktemp("hf")
    out = base / "hf"
    _ok(_run("hf_job.py", out, "fit", _powercap(base / "sys")))
    return out


def _env(powercap: FakePowercap) -> dict[str, str]:
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(
            ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_", "FOOTPRINT_", "TORCHELASTIC")
        ):
            env.pop(key)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
        TEST_POWERCAP=str(powercap.root),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        KERAS_BACKEND="torch",
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def _run(
    script: str,
    out: Path,
    mode: str,
    powercap: FakePowercap,
    prefix: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [*(prefix or [sys.executable]), str(SCRIPTS / script), str(out), mode]
    env = {**_env(powercap), **(extra_env or {})}
    with powercap.realtime():
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=out)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr[-4000:]


def _facts(out: Path, name: str = "facts.json") -> dict:
    return json.loads((out / name).read_text())


def _phases(record) -> list[tuple[str, dict]]:
    return [(p.path, dict(p.counts)) for p in record.phases]


def _measured_like_the_program(record) -> None:
    """The simulated package's whole energy is its constant power over the run (its counters
    advance from a thread of the test: up to ~20 ms behind on a loaded machine)."""
    (cpu,) = [d for d in record.devices if d.kind == "cpu"]
    assert cpu.measured and cpu.method.startswith("rapl"), cpu
    whole = cpu.machine_energy_j if cpu.machine_energy_j is not None else cpu.energy_j
    assert whole == pytest.approx(CPU_W * record.duration_s, rel=0.05, abs=CPU_W * 0.02)


# -- the Hugging Face Trainer ---------------------------------------------------------------


def test_trainer_fit_is_one_run_with_epochs_evaluations_and_logs(hf_fit):
    out = hf_fit
    facts = _facts(out, "facts-0.json")
    store = Store(out / "store")
    fit = store.get(facts["run"])
    assert fit.name == "fit" and fit.status == "completed" and fit.tags["stage"] == "fit"
    assert (fit.task, fit.model, fit.variant) == ("toy", "bert-tiny", "fp32")
    # 32 examples, batch 8, 2 epochs: each epoch 32 samples; each evaluation 16 queries
    assert fit.counts == {"samples": 64, "queries": 32}
    assert _phases(fit) == [
        ("epoch", {"samples": 32}),
        ("eval", {"queries": 16}),
        ("epoch", {"samples": 32}),
        ("eval", {"queries": 16}),
    ]
    assert set(fit.metrics) == {"eval_loss", "train_loss"}  # no runtime, speed or lr
    assert any("per_device_train_batch_size" in n for n in fit.notes)  # how it was counted
    _measured_like_the_program(fit)

    # every log step carries the figures, in log_history and in what later callbacks received
    history = facts["log_history"]
    assert len(history) >= 5 and all("footprint_energy_kwh" in h for h in history)
    energies = [h["footprint_energy_kwh"] for h in history]
    assert energies == sorted(energies) and 0 < energies[-1] <= fit.energy_kwh
    assert all(h["footprint_emissions_g"] > 0 for h in history)
    assert any(h["footprint_power_w"] > 0 for h in history)
    probe = [p for p in facts["probe"] if "loss" in p or "eval_loss" in p]
    assert probe and all("footprint_energy_kwh" in p for p in probe)

    # a later evaluate() and predict() are runs of their own
    evaluate = store.get(facts["evaluate"])
    assert evaluate.name == "evaluate" and evaluate.tags["stage"] == "evaluate"
    assert evaluate.counts == {"queries": 16} and _phases(evaluate) == [("eval", {"queries": 16})]
    assert "eval_loss" in evaluate.metrics
    predict = store.get(facts["predict"])
    assert predict.counts == {"queries": 12} and _phases(predict) == [("predict", {"queries": 12})]


def test_the_model_card_gets_co2_eq_emissions_and_keeps_the_rest(hf_fit):
    from huggingface_hub import ModelCard

    out = hf_fit
    fit = Store(out / "store").get(_facts(out, "facts-0.json")["run"])
    before = ModelCard.load(out / "card-before.md")
    after = ModelCard.load(out / "card-after.md")
    co2 = after.data.co2_eq_emissions
    assert co2["emissions"] == pytest.approx(fit.emissions_kg * 1000, rel=1e-3)
    assert co2["source"].startswith("footprint ") and co2["training_type"] == "pre-training"
    assert co2["geographical_location"] == "France (FR)"
    rest = after.data.to_dict()
    rest.pop("co2_eq_emissions")
    assert rest == before.data.to_dict() and after.text == before.text
    assert "tiny-bert" in after.text  # the Trainer's own card, kept
    # push_to_hub's path: the card the Trainer writes before uploading gets the block too
    pushed = ModelCard.load(out / "model" / "README.md")
    assert pushed.data.co2_eq_emissions["training_type"] == "fine-tuning"
    assert "scratch" in str(pushed.data.to_dict()) or "scratch" in pushed.text


def test_a_trainer_step_that_raises_saves_the_fit_as_failed(tmp_path, powercap):
    _needs("transformers", "accelerate")
    out = tmp_path / "caught"
    _ok(_run("hf_job.py", out, "caught", powercap))
    facts = _facts(out, "facts-0.json")
    assert facts["caught"] == "Boom: step 3 failed"  # the user's exception, unchanged
    fit = Store(out / "store").get(facts["run"])
    assert fit.status == "failed" and fit.error == "Boom: step 3 failed"
    assert fit.counts == {"samples": 16}  # the two steps done before it

    out = tmp_path / "uncaught"
    proc = _run("hf_job.py", out, "uncaught", powercap)
    assert proc.returncode == 1 and "Boom: step 3 failed" in proc.stderr
    (fit,) = Store(out / "store").records()
    assert fit.status == "failed" and fit.error == "Boom: step 3 failed"


def test_trainer_reporting_to_mlflow_gets_footprints_figures_in_its_run(tmp_path, powercap):
    _needs("transformers", "accelerate", "mlflow")
    out = tmp_path / "hf"
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "tiny"}
    _ok(_run("hf_job.py", out, "mlflow", powercap, extra_env=env))
    fit_id = _facts(out, "facts-0.json")["run"]
    import mlflow

    client = mlflow.MlflowClient(uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "tiny"]
    (mlrun,) = client.search_runs([exp.experiment_id])  # the Trainer's own run, nothing more
    assert mlrun.data.tags["footprint.record_id"] == fit_id
    assert mlrun.data.metrics["footprint.energy_j"] == Store(out / "store").get(fit_id).energy_j
    assert "eval_loss" in mlrun.data.metrics  # what the Trainer logged itself, beside it
    # the Trainer's own metric history has footprint's figures too (they were in its logs)
    assert client.get_metric_history(mlrun.info.run_id, "footprint_energy_kwh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trainer_under_torchrun_is_one_job_with_each_ranks_samples_once(tmp_path, powercap):
    _needs("transformers", "accelerate", "torch.distributed")
    out = tmp_path / "ddp"
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
    ]  # fmt: skip
    _ok(_run("hf_job.py", out, "ddp", powercap, prefix=torchrun))
    ranks = [_facts(out, f"facts-{r}.json") for r in (0, 1)]
    assert ranks[0]["job"] is not None and ranks[0]["job"] == ranks[1]["job"]
    store = Store(out / "store")
    (job,) = store.records()
    assert job.id == ranks[0]["job"] and job.job.world_size == 2
    # each rank trains on its half: 16 samples an epoch, 2 epochs, summed once over 2 ranks
    assert job.counts == {"samples": 64, "queries": 32}
    assert [p.counts["samples"] for p in job.phases if p.name == "epoch"] == [32, 32]
    parts = store.parts(job.id)
    assert len(parts) == 2
    # every rank had the callback; only the node's measurer read the devices
    assert sorted(p.job.measurer for p in parts) == [False, True]
    assert all(not p.devices for p in parts if not p.job.measurer)
    (cpu,) = [d for d in job.devices if d.kind == "cpu"]  # the node's package, read once
    assert cpu.measured


# -- Lightning ---------------------------------------------------------------------------------


def test_lightning_fit_test_and_predict(tmp_path, powercap):
    _needs("lightning")
    out = tmp_path / "pl"
    _ok(_run("lightning_job.py", out, "fit", powercap))
    facts = _facts(out)
    store = Store(out / "store")
    fit = store.get(facts["fit"])
    assert fit.status == "completed" and fit.name == "fit"
    # 40 samples x 2 epochs; the sanity check's validation batches are not counted
    assert fit.counts == {"samples": 80, "queries": 32}
    assert _phases(fit) == [
        ("epoch", {"samples": 40, "queries": 16}),
        ("epoch/eval", {"queries": 16}),
        ("epoch", {"samples": 40, "queries": 16}),
        ("epoch/eval", {"queries": 16}),
    ]
    own = [dict(p.own_counts) for p in fit.phases]
    assert own == [{"samples": 40}, {"queries": 16}] * 2  # each unit charged where it was done
    assert set(fit.metrics) == {"train_loss", "val_loss"}
    assert any("each training batch" in n for n in fit.notes)
    _measured_like_the_program(fit)
    test = store.get(facts["test"])
    assert test.name == "test" and test.counts == {"queries": 16} and "test_loss" in test.metrics
    predict = store.get(facts["predict"])
    assert predict.counts == {"queries": 16} and _phases(predict) == [("predict", {"queries": 16})]
    # the figures went to Lightning's logger, at its cadence
    import csv

    with open(out / facts["csv"]) as f:
        rows = [r for r in csv.DictReader(f) if r.get("footprint_energy_kwh")]
    assert len(rows) >= 4
    assert all(float(r["footprint_power_w"]) >= 0 and r["footprint_emissions_g"] for r in rows)


def test_lightning_on_exception_saves_the_fit_as_failed(tmp_path, powercap):
    _needs("lightning")
    out = tmp_path / "pl"
    _ok(_run("lightning_job.py", out, "raise", powercap))
    facts = _facts(out)
    assert facts["caught"] == "Boom: step 3 failed"
    fit = Store(out / "store").get(facts["fit"])
    assert fit.status == "failed" and fit.error == "Boom: step 3 failed"
    assert fit.counts == {"samples": 16}


def test_lightnings_own_ddp_launcher_makes_one_job(tmp_path, powercap):
    _needs("lightning", "torch.distributed")
    out = tmp_path / "pl"
    _ok(_run("lightning_job.py", out, "ddp", powercap))
    ranks = [_facts(out, f"facts-{r}.json") for r in (0, 1)]
    assert ranks[0]["job"] is not None and ranks[0]["job"] == ranks[1]["job"]
    (job,) = Store(out / "store").records()
    assert job.id == ranks[0]["job"] and job.job.world_size == 2
    # each of the 2 processes trains on half of the 40 samples, 2 epochs: 80 in all
    assert job.counts["samples"] == 80


# -- Keras 3 (torch backend) ----------------------------------------------------------------------


def test_keras_fit_evaluate_predict_and_history(tmp_path, powercap):
    _needs("keras")
    out = tmp_path / "keras"
    _ok(_run("keras_job.py", out, "fit", powercap))
    facts = _facts(out)
    store = Store(out / "store")
    fit = store.get(facts["fit"])
    assert fit.status == "completed"
    # 40 samples in batches of 16 (the last holds 8), 2 epochs; validation on 10
    assert fit.counts == {"samples": 80, "queries": 20}
    assert [dict(p.own_counts) for p in fit.phases] == [{"samples": 40}, {"queries": 10}] * 2
    assert set(fit.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert any("the batch size fit was given" in n for n in fit.notes)  # how it was counted
    _measured_like_the_program(fit)
    history = facts["history"]
    assert len(history["footprint_energy_kwh"]) == 2 and len(history["footprint_power_w"]) == 2
    assert history["footprint_energy_kwh"][0] < history["footprint_energy_kwh"][1]
    assert history["footprint_energy_kwh"][1] <= fit.energy_kwh
    evaluate = store.get(facts["evaluate"])
    assert evaluate.name == "evaluate" and evaluate.counts == {"queries": 40}
    assert {"loss", "accuracy"} <= set(evaluate.metrics)
    predict = store.get(facts["predict"])
    assert predict.name == "predict" and predict.counts == {"queries": 40}


def test_keras_fit_forecasts_itself_into_history_and_the_record(tmp_path, powercap):
    _needs("keras")
    out = tmp_path / "keras"
    _ok(_run("keras_job.py", out, "forecast", powercap))
    facts = _facts(out)
    fit = Store(out / "store").get(facts["fit"])
    # forecasts after epochs 2 and 3 of 4, each then checked against the truth
    assert [(f.done, f.total) for f in fit.forecasts] == [(2, 4), (3, 4)]
    assert all(f.actual_energy_kwh == fit.energy_kwh for f in fit.forecasts)
    assert all(f.error_fraction is not None for f in fit.forecasts)
    forecast = facts["history"]["footprint_forecast_energy_kwh"]  # History from epoch 2 on
    assert len(forecast) == 3 and forecast[0] == pytest.approx(fit.forecasts[0].energy_kwh)
    low = facts["history"]["footprint_forecast_energy_kwh_low"]
    high = facts["history"]["footprint_forecast_energy_kwh_high"]
    assert all(lo <= f <= hi for lo, f, hi in zip(low, forecast, high))


def test_keras_counts_from_the_batch_size_option_when_keras_knows_none(tmp_path, powercap):
    _needs("keras")
    out = tmp_path / "keras"
    _ok(_run("keras_job.py", out, "generator", powercap))
    facts = _facts(out)
    fit = Store(out / "store").get(facts["fit"])
    assert fit.counts == {"samples": 80}  # 4 steps x batch_size=10, 2 epochs
    assert "FootprintCallback: samples: steps x 10 (batch_size=)" in fit.notes
    bare = Store(out / "store").get(facts["bare"])  # no option, and Keras knows no batch size
    assert bare.status == "completed" and "samples" not in bare.counts
    assert any("samples not counted" in n and "batch_size=" in n for n in bare.notes)


def test_a_keras_fit_whose_exception_leaves_the_program_is_saved_as_failed(tmp_path, powercap):
    _needs("keras")
    out = tmp_path / "keras"
    proc = _run("keras_job.py", out, "uncaught", powercap)
    assert proc.returncode == 1 and "Boom: step 5 failed" in proc.stderr
    (fit,) = Store(out / "store").records()
    assert fit.status == "failed" and fit.error == "Boom: step 5 failed"
    # the first epoch (40) and validation (10), then one step of the second epoch (16)
    assert fit.counts == {"samples": 56, "queries": 10}
    assert [dict(p.own_counts) for p in fit.phases] == [
        {"samples": 40},
        {"queries": 10},
        {"samples": 16},
    ]


def test_keras_without_a_usable_backend_says_to_set_keras_backend(tmp_path, powercap):
    _needs("keras")
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: Keras's default backend loads")
    env = _env(powercap)
    env.pop("KERAS_BACKEND")
    env["KERAS_HOME"] = str(tmp_path / "keras-home")  # no keras.json naming a backend
    proc = subprocess.run(
        [sys.executable, "-c", "import footprint.integrations.keras"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "set KERAS_BACKEND=torch (or jax) before Keras is first imported" in proc.stderr
