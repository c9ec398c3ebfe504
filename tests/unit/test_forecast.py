"""The forecast of a whole run (footprint/forecast.py): the interval's coverage on simulated
epochs with a known spread, the warm-up epoch, an open epoch, and run.forecast's record."""

from __future__ import annotations

import random

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.errors import UsageError
from footprint.forecast import predict
from footprint.store import Store


def _coverage(warmup: float, done: int, trials: int = 200, total: int = 50) -> float:
    hits = 0
    for seed in range(trials):
        rng = random.Random(seed)
        epochs = [rng.gauss(100.0, 10.0) for _ in range(total)]  # J, sd 10 %
        epochs[0] *= warmup
        durations = [rng.gauss(60.0, 3.0) for _ in range(total)]
        p = predict(epochs[:done], durations[:done], total, spent_j=sum(epochs[:done]))
        hits += p.low_j <= sum(epochs) <= p.high_j
    return hits / trials


@pytest.mark.parametrize("done", [3, 5, 10])
def test_the_95_percent_interval_covers_the_true_total_in_90_percent_of_trials(done):
    assert _coverage(warmup=1.0, done=done) >= 0.90


@pytest.mark.parametrize("done", [3, 5, 10])
def test_so_it_does_with_a_warm_up_epoch_twice_as_costly(done):
    assert _coverage(warmup=2.0, done=done) >= 0.90


def test_the_warm_up_epoch_is_what_it_leaves_out():
    p = predict([200.0, 100.0, 100.0], [2.0, 1.0, 1.0], 10, spent_j=400.0)
    assert p.warmup_dropped and p.epochs_used == 2
    assert p.energy_j == pytest.approx(400 + 7 * 100) and p.low_j == p.high_j == p.energy_j
    assert p.remaining_s == pytest.approx(7.0)
    two = predict([200.0, 100.0], [1.0, 1.0], 4, spent_j=300.0)  # too few to leave one out
    assert not two.warmup_dropped and two.energy_j == pytest.approx(300 + 2 * 150)


def test_an_open_epoch_counts_what_it_spent_towards_its_own_cost():
    p = predict(
        [100.0, 100.0, 100.0], [1.0] * 3, 5, spent_j=340.0, open_energy_j=40.0, open_elapsed_s=0.4
    )
    # 3 done + the open one's remaining 60 J + one more epoch
    assert p.energy_j == pytest.approx(340 + 60 + 100)
    assert p.remaining_s == pytest.approx(0.6 + 1.0)


def test_a_forecast_needs_two_epochs_and_a_total_not_yet_passed():
    with pytest.raises(ValueError, match="at least 2 finished epochs"):
        predict([100.0], [1.0], 10, spent_j=100.0)
    with pytest.raises(ValueError, match="total=2 epochs, but 3 are done"):
        predict([1.0, 1.0, 1.0], [1.0] * 3, 2, spent_j=3.0)


def test_run_forecast_is_kept_in_the_record_with_how_far_it_was(clock, store):
    sensor = ConstantPowerSensor(clock, 100.0)
    with footprint.track("fc", sensors=[sensor], _clock=clock, carbon_intensity=500) as run:
        with pytest.raises(UsageError, match="at least 2 finished epochs"):
            run.forecast(6)
        with pytest.raises(UsageError, match="total must be a whole number"):
            run.forecast(0)
        for i, seconds in enumerate([20.0, 10.0, 10.0, 12.0, 10.0, 10.0]):
            with run.phase("epoch"):
                clock.advance(seconds)
            if i == 2:
                f = run.forecast(6)
    # 2 000 J warm-up, then 1 000 J epochs: 4 000 J + 3 x 1 000 predicted; the truth is 7 200 J
    assert f.done == 3 and f.warmup_dropped and f.energy_kwh == pytest.approx(7000 / 3.6e6)
    assert f.emissions_kg == pytest.approx(7000 / 3.6e6 * 0.5)
    (kept,) = Store(store).get(run.id).forecasts
    assert kept.energy_kwh == pytest.approx(f.energy_kwh) and kept.total == 6
    assert kept.actual_energy_kwh == pytest.approx(7200 / 3.6e6)
    assert kept.error_fraction == pytest.approx((7000 - 7200) / 7200)
    assert kept.within_interval is False  # the spread of 2 epochs used was 0


def test_a_run_that_ends_short_of_its_forecast_total_says_no_error(clock, store):
    sensor = ConstantPowerSensor(clock, 100.0)
    with footprint.track("short", sensors=[sensor], _clock=clock) as run:
        for _ in range(3):
            with run.phase("epoch"):
                clock.advance(1.0)
        run.forecast(10)
    (kept,) = run.record.forecasts
    assert kept.actual_energy_kwh is None and kept.error_fraction is None
