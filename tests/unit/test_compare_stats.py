"""The CI gate's statistics (issue 18): Welch and Fieller against scipy, and the decision rule's
error rates in 100 seeded trials of tracked runs on simulated sensors with 2 % run-to-run noise."""

from __future__ import annotations

import random

import pytest
from conftest import ConstantPowerSensor, FakeClock

import footprint
from footprint.comparison import compare
from footprint.stats import fieller, summarise, welch


def test_the_fractional_t_quantile_is_never_below_scipys_and_close_to_it():
    stats = pytest.importorskip("scipy.stats")
    from footprint.stats import _t_975

    for df in (2.0, 2.3, 3.5, 4.2, 5.5, 7.9, 12.4, 30.5, 200.7):
        exact = stats.t.ppf(0.975, df)
        assert exact - 1e-12 <= _t_975(df) <= exact + (0.06 if df < 4 else 0.003)


def test_welch_matches_scipy_where_the_degrees_of_freedom_are_whole():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for _ in range(50):
        a = [rng.gauss(10, 1) for _ in range(5)]
        b = [rng.gauss(10.5, 1) for _ in range(5)]
        ours = welch(summarise(a), summarise(b))
        theirs = stats.ttest_ind(b, a, equal_var=False)
        assert ours is not None
        # ours uses the whole degrees of freedom below Welch's: never less conservative
        assert ours.p_value >= theirs.pvalue - 1e-12
        assert ours.p_value == pytest.approx(theirs.pvalue, abs=0.03)
    # equal variances and sizes: Welch's df is exactly n_a + n_b - 2 = 8
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0]
    ours = welch(summarise(a), summarise(b))
    assert ours.df == pytest.approx(8.0)
    assert ours.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)


def test_fiellers_interval_holds_the_ratio_and_inverts_the_test():
    a = summarise([100.0, 102.0, 98.0, 101.0, 99.0])
    b = summarise([120.0, 122.0, 119.0, 118.0, 121.0])
    r = fieller(a, b)
    assert r.estimate == pytest.approx(1.2) and r.ci_low < 1.2 < r.ci_high
    assert 1.15 < r.ci_low and r.ci_high < 1.25
    # at a bound, b - bound * a is exactly on the edge of the t test: (mb - r ma)^2 = t^2 var
    from footprint.stats import _t_975

    va, vb = a.std**2 / a.n, b.std**2 / b.n
    for bound in (r.ci_low, r.ci_high):  # t at n_a + n_b - 2 = 8 degrees of freedom
        lhs = (b.mean - bound * a.mean) ** 2
        assert lhs == pytest.approx(_t_975(8) ** 2 * (vb + bound**2 * va), rel=1e-9)
    # one repeat: no interval; a baseline indistinguishable from zero: unbounded
    assert fieller(summarise([1.0]), b) is None
    wide = fieller(summarise([0.1, -0.1, 0.2]), b)
    assert wide.ci_low is None and wide.ci_high is None


def _workload(rng: random.Random, cost: float, repeats: int, cv: float = 0.02) -> list:
    """``repeats`` tracked runs of 1,000 queries each on a simulated 100 W device, each run's
    energy off by Gaussian noise of ``cv`` (the coefficient of variation)."""
    records = []
    for _ in range(repeats):
        clock = FakeClock()
        power_w = 100.0 * cost * (1 + rng.gauss(0, cv))
        tracker = footprint.track(
            "serve", sensors=[ConstantPowerSensor(clock, power_w)], _clock=clock, save=False,
            task="digits", model="mlp", variant="fp32", sample_interval_s=1000,
        )  # fmt: skip
        with tracker as run:
            clock.advance(1.0)
            run.count(queries=1000)
            run.log(accuracy=0.95)
        records.append(run.record)
    return records


def _decisions(cost: float, repeats: int, trials: int = 100) -> dict[str, int]:
    counts = {"pass": 0, "regression": 0, "inconclusive": 0}
    for seed in range(trials):
        rng = random.Random(seed)
        base = _workload(rng, 1.0, repeats)
        cand = _workload(rng, cost, repeats)
        result = compare(base, cand, per="queries").check(max_regression=0.05)
        counts[result.decision] += 1
    return counts


@pytest.mark.slow
def test_a_workload_made_20_percent_costlier_fails_in_95_percent_of_trials():
    counts = _decisions(1.20, repeats=5)
    assert counts["regression"] >= 95, counts


@pytest.mark.slow
def test_identical_workloads_pass_in_90_percent_and_regress_in_at_most_5_percent():
    counts = _decisions(1.0, repeats=5)
    assert counts["pass"] >= 90, counts
    assert counts["regression"] <= 5, counts


def test_a_single_repeat_is_inconclusive_whatever_the_difference():
    for cost in (1.0, 1.2, 2.0):
        rng = random.Random(7)
        result = compare(_workload(rng, 1.0, 1), _workload(rng, cost, 1), per="queries").check(
            max_regression=0.05
        )
        assert result.decision == "inconclusive" and result.exit_code() == 3
        assert "at least 2 on each side" in result.decisions[0].reason


def test_an_inconclusive_check_says_how_many_repeats_would_decide():
    rng = random.Random(3)
    base = _workload(rng, 1.0, 3, cv=0.05)
    cand = _workload(rng, 1.04, 3, cv=0.05)
    (decision,) = compare(base, cand, per="queries").check(max_regression=0.05).decisions
    if decision.decision == "inconclusive":
        assert "repeats on each side would decide" in decision.reason or "would not" in (
            decision.reason
        )
    else:  # the seed happened to decide: the rule still holds
        assert decision.decision in ("pass", "regression")


def test_contended_repeats_never_decide():
    rng = random.Random(5)
    base = _workload(rng, 1.0, 5)
    cand = _workload(rng, 1.5, 5)
    # the candidate's runs were all made while other processes were busy
    from footprint.record.model import ContentionRecord

    busy = [
        r.replace(contention=ContentionRecord(other_cpu_fraction=0.6, contended=True)) for r in cand
    ]
    result = compare(base, busy, per="queries").check(max_regression=0.05)
    assert result.decision == "inconclusive"
    assert any("contended" in n for n in result.notes)
    assert compare(base, cand, per="queries").check(max_regression=0.05).decision == "regression"
