"""What the framework callbacks share (footprint.integrations._fit), without any framework: the
runs of a fit, where per-batch units are charged, how a fit cut short ends, the figures logged
back, and the counting helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ConstantPowerSensor

from footprint.errors import UsageError
from footprint.integrations._fit import FIGURES, FitRuns, batch_size, batched_samples, numeric
from footprint.store import Store


def _fits(clock, store, **options) -> FitRuns:
    sensor = ConstantPowerSensor(clock, 50.0, "cpu:0", kind="cpu")
    return FitRuns("TestCallback", None, {"sensors": [sensor], "store": store, **options})


def test_an_unknown_option_fails_when_the_callback_is_made_naming_the_closest(store):
    with pytest.raises(
        UsageError, match=r"TestCallback\(\) got an unknown option 'regoin'.*region"
    ):
        FitRuns("TestCallback", None, {"regoin": "FR"})
    with pytest.raises(ValueError, match="samples_per_epoch must be a whole number > 0"):
        FitRuns("TestCallback", None, {}, samples_per_epoch=0)
    with pytest.raises(ValueError, match="batch_size must be a whole number > 0"):
        FitRuns("TestCallback", None, {}, batch_size=True)  # type: ignore[arg-type]


def test_per_batch_units_are_charged_to_the_phase_they_were_done_in(clock, store):
    fits = _fits(clock, store)
    fits.begin("fit")
    fits.phase_start("epoch")
    for _ in range(3):
        fits.add("samples", 8)
    fits.phase_start("eval")  # a validation inside the epoch (Lightning, Keras)
    fits.add("queries", 4)
    fits.phase_end("eval")
    fits.add("samples", 8)
    fits.phase_end("epoch")
    run = fits.end()
    record = run.record
    assert record.name == "fit" and record.tags["stage"] == "fit"
    assert record.counts == {"samples": 32, "queries": 4}
    assert [(p.path, dict(p.own_counts)) for p in record.phases] == [
        ("epoch", {"samples": 32}),
        ("epoch/eval", {"queries": 4}),
    ]


def test_a_run_cut_short_closes_its_phases_and_keeps_its_units(clock, store):
    fits = _fits(clock, store)
    closed: list[str] = []
    fits.on_close = lambda: closed.append("called")
    fits.begin("fit")
    fits.phase_start("epoch")
    fits.phase_start("eval")
    fits.close_inside("epoch")
    assert fits.in_phase("epoch") and not fits.in_phase("eval")
    fits.add("samples", 5)
    fits.abandon(RuntimeError, RuntimeError("boom"), None)
    record = Store(store).get(fits.last.id)
    assert record.status == "failed" and record.error == "RuntimeError: boom"
    assert record.counts == {"samples": 5} and closed == ["called"]
    assert all(p.end_s is not None for p in record.phases)
    assert not fits.live and fits.abandon(None, None, None) is None  # nothing open: no-op


def test_a_new_fit_ends_one_left_open_and_exit_ends_it_as_interrupted(clock, store):
    fits = _fits(clock, store)
    first = fits.begin("fit")
    second = fits.begin("evaluate")  # the first fit raised and was caught: no end came
    assert first.record.status == "failed" and "a new evaluate began" in first.record.error
    assert fits.stage == "evaluate" and fits.run is second
    fits.abandon(None, None, None, reason="the program exited while the fit was running")
    assert second.record.status == "interrupted"


def test_the_figures_are_the_runs_energy_power_and_emissions(clock, store):
    fits = _fits(clock, store, carbon_intensity=100.0, pue=1.0)
    assert fits.figures() == {}  # no run yet
    fits.begin("fit")
    clock.advance(36.0)  # 50 W for 36 s: 1800 J
    figures = fits.figures()
    assert set(figures) == set(FIGURES)
    assert figures["footprint_energy_kwh"] == pytest.approx(1800 / 3.6e6)
    assert figures["footprint_emissions_g"] == pytest.approx(1800 / 3.6e6 * 100.0)
    assert figures["footprint_power_w"] > 0
    fits.end()
    assert fits.figures() == {}  # after the run: nothing live to report


def test_metrics_that_cannot_be_kept_become_a_note_not_a_failure(clock, store):
    fits = _fits(clock, store)
    fits.begin("fit")
    fits.log({"eval_loss": 0.5})
    fits.log({"eval_acc": float("inf")})  # a value the record refuses
    run = fits.end()
    assert run.record.metrics == {"eval_loss": 0.5}
    assert any("metrics not kept" in n for n in run.record.notes)


class _Tensor:
    def __init__(self, *shape: int, value: float = 1.0) -> None:
        self.shape = shape
        self.value = value

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def item(self) -> float:
        return self.value


@pytest.mark.parametrize(
    "batch,expected",
    [
        (_Tensor(8, 3), 8),
        ((_Tensor(5, 2), _Tensor(5)), 5),
        ({"input_ids": _Tensor(4, 16), "labels": _Tensor(4)}, 4),
        ([[_Tensor(6, 1)]], 6),
        ([1, 2, 3], 3),
        (_Tensor(), None),  # a scalar: no batch dimension
        ("text", None),
        (None, None),
        ([], None),
    ],
)
def test_batch_size_is_the_first_tensors_first_dimension(batch, expected):
    assert batch_size(batch) == expected


def test_numeric_keeps_finite_numbers_the_filter_accepts():
    metrics = {
        "eval_loss": 0.25,
        "eval_acc": _Tensor(value=0.5),
        "eval_many": _Tensor(3),
        "eval_nan": float("nan"),
        "eval_flag": True,
        "eval_name": "x",
        "lr": 0.1,
    }
    assert numeric(metrics, lambda k: k.startswith("eval_")) == {"eval_loss": 0.25, "eval_acc": 0.5}


def test_batched_samples_counts_each_passes_partial_last_batch():
    adapter = SimpleNamespace(
        batch_size=16, num_batches=3, has_partial_batch=True, partial_batch_size=8
    )
    assert batched_samples(3, adapter, None) == 40  # one pass over 40 samples
    assert batched_samples(4, adapter, None) == 56  # and a full batch of the next
    assert batched_samples(6, adapter, None) == 80
    assert batched_samples(2, adapter, 10) == 20  # the callback's batch_size= wins
    whole = SimpleNamespace(batch_size=10, num_batches=4, has_partial_batch=False)
    assert batched_samples(4, whole, None) == 40
    assert batched_samples(4, None, 10) == 40  # no adapter, the option alone
    assert batched_samples(4, SimpleNamespace(batch_size=None), None) is None  # a generator


def test_import_footprint_loads_no_framework():
    code = (
        "import sys, footprint\n"
        "print(sorted(m for m in ('footprint.integrations', 'transformers', 'lightning', 'keras',"
        " 'huggingface_hub', 'torch', 'mlflow', 'prometheus_client') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_a_sensor_that_fails_mid_fit_is_a_note_not_a_broken_training(clock, store):
    sensor = ConstantPowerSensor(clock, 50.0, "cpu:0", kind="cpu")
    fits = FitRuns("TestCallback", None, {"sensors": [sensor], "store": store})
    fits.begin("fit")
    fits.phase_start("epoch")
    clock.advance(10.0)
    assert fits.figures()["footprint_energy_kwh"] == pytest.approx(500 / 3.6e6)
    sensor.fail_after = clock()
    clock.advance(10.0)
    fits.figures()  # must not raise, whatever it can still say
    fits.add("samples", 8)
    fits.phase_end("epoch")
    record = fits.end().record
    assert record.status == "completed" and record.counts == {"samples": 8}
    assert any("cpu:0 went away" in n for n in record.notes) or any(
        d.error and "went away" in d.error for d in record.devices
    )


def test_a_note_is_added_once_and_only_to_an_open_run(clock, store):
    fits = _fits(clock, store)
    fits.note("before any run")  # nothing open: nowhere to say it
    fits.begin("fit")
    fits.note("samples: counted so")
    fits.note("samples: counted so")
    run = fits.end()
    fits.note("after the run")
    assert [n for n in run.record.notes if n.startswith("TestCallback")] == [
        "TestCallback: samples: counted so"
    ]


def test_a_fit_of_known_length_forecasts_itself_from_its_second_epoch(clock, store):
    fits = _fits(clock, store)
    fits.begin("fit")
    fits.total_epochs = 4
    seen = []
    for _ in range(4):
        fits.phase_start("epoch")
        clock.advance(10.0)  # 50 W: 500 J an epoch
        fits.phase_end("epoch")
        fits.epoch_ended()
        seen.append(fits.figures().get("footprint_forecast_energy_kwh"))
    assert seen[0] is None  # one epoch: no spread to learn from
    assert seen[1] == pytest.approx(2000 / 3.6e6) and seen[2] == pytest.approx(2000 / 3.6e6)
    record = fits.end().record
    assert [(f.done, f.total) for f in record.forecasts] == [(2, 4), (3, 4)]
    assert all(
        f.error_fraction == pytest.approx(0.0) and f.within_interval for f in record.forecasts
    )
