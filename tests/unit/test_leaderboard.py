"""Leaderboards on hand-built records: every expected number is computed by hand in the test."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

import footprint
from footprint.attribution import run_share
from footprint.ranking import COLUMNS, LeaderboardError, build, default_higher_is_better
from footprint.record import new_record
from footprint.stats import summarise, t_quantile_975
from footprint.store import Store

OVERHEAD_J = 5000.0  # start-up energy outside the inference phase: never part of per-query figures


def rec(
    model: str,
    variant: str | None = None,
    *,
    wh_per_1k: float,
    quality: float | None = 0.9,
    metric: str = "accuracy",
    task: str | None = "digits",
    baseline: bool = False,
    status: str = "completed",
    queries: float = 1000,
    intensity_g_per_kwh: float | None = None,
    name: str | None = None,
    **extra,
) -> dict:
    """A record whose inference phase used exactly ``wh_per_1k`` Wh per 1,000 queries."""
    phase_j = wh_per_1k * 3600 * queries / 1000
    total_j = phase_j + OVERHEAD_J
    energy_kwh = total_j / 3.6e6
    data = {
        "id": uuid.uuid4().hex,
        "started_at": "2026-01-01T00:00:00+00:00",
        "name": name or f"{model}-{variant}",
        "status": status,
        "task": task,
        "model": model,
        "variant": variant,
        "baseline": baseline,
        "energy_kwh": energy_kwh,
        "emissions_kg": (
            None if intensity_g_per_kwh is None else energy_kwh * intensity_g_per_kwh / 1000
        ),
        "devices": [{"id": "gpu:0", "kind": "gpu", "energy_j": total_j, "measured": True}],
        "phases": [
            {
                "name": "inference",
                "path": "inference",
                "start_s": 1.0,
                "end_s": 2.0,
                "energy_j": {"gpu:0": phase_j * 0.75, "cpu": phase_j * 0.25},
                "counts": {"queries": queries},
            }
        ],
        "counts": {"queries": queries},
        "metrics": {} if quality is None else {metric: quality},
    }
    data.update(extra)
    return new_record(**data)


def row_of(board, model, variant=None):
    (row,) = [r for r in board.rows if r["model"] == model and r["variant"] == variant]
    return row


# -- Student t --------------------------------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 30, 31, 120, 1999, 2000, 2001, 50000])
def test_t_quantile_matches_scipy(df):
    from scipy import stats  # imported here: the fast tier collects without scipy

    assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-10, abs=0)


def test_t_quantile_known_values_and_bad_df():
    assert t_quantile_975(1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-12)  # Cauchy
    assert t_quantile_975(2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025), rel=1e-12)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile_975(0)


def test_summarise_matches_scipy_interval():
    from scipy import stats  # imported here: the fast tier collects without scipy

    values = [10.0, 12.0, 17.0]
    s = summarise(values)
    mean = 13.0
    std = math.sqrt(((3**2) + 1 + 4**2) / 2)  # sample std, n - 1
    low, high = stats.t.interval(0.95, df=2, loc=mean, scale=std / math.sqrt(3))
    assert (s.n, s.mean, s.std) == (3, pytest.approx(mean), pytest.approx(std))
    assert s.ci_low == pytest.approx(low, rel=1e-12)
    assert s.ci_high == pytest.approx(high, rel=1e-12)
    assert summarise([4.0]) == type(s)(1, 4.0, None, None, None)


# -- energy per unit ------------------------------------------------------------------------------


def test_energy_per_unit_uses_the_counting_phase_only_and_scales_emissions():
    r = rec("mlp", "fp32", wh_per_1k=2.0, queries=500, intensity_g_per_kwh=100.0)
    share = run_share(r, "queries")
    phase_j = 2.0 * 3600 * 500 / 1000  # 3600 J in the phase; the 5000 J start-up is excluded
    assert share.energy_j == pytest.approx(phase_j)
    assert share.units == 500 and share.whole_run is False
    assert share.emissions_kg == pytest.approx(phase_j / 3.6e6 * 100 / 1000)
    board = build([r], quality="accuracy", per="queries")
    row = board.rows[0]
    assert row["energy_wh_per_1k"] == pytest.approx(2.0)
    # 1 kWh -> 100 g, so 2 Wh per 1,000 queries -> 0.2 g per 1,000 queries
    assert row["emissions_g_per_1k"] == pytest.approx(0.2)
    # accuracy 0.9 per (2 Wh / 1000 queries = 2e-6 kWh per query)
    assert row["quality_per_kwh"] == pytest.approx(0.9 / 2e-6)


def test_nested_phases_count_each_unit_once_and_outside_units_use_whole_run():
    base = rec("m", wh_per_1k=1.0)
    epoch = {
        "name": "epoch",
        "path": "epoch",
        "start_s": 0.0,
        "end_s": 10.0,
        "energy_j": {"gpu:0": 1000.0},
        "counts": {"samples": 30},
    }
    ev = {
        "name": "eval",
        "path": "epoch/eval",
        "start_s": 5.0,
        "end_s": 6.0,
        "energy_j": {"gpu:0": 100.0},
        "counts": {"samples": 10},
    }
    nested = base.replace(phases=[epoch, ev], counts={"samples": 30})
    share = run_share(nested, "samples")
    assert (share.energy_j, share.units) == (1000.0, 30)  # the outer phase only
    # phase= picks the inner phase and its own count
    share = run_share(nested, "samples", phase="epoch/eval")
    assert (share.energy_j, share.units) == (100.0, 10)
    assert run_share(nested, "samples", phase="eval").energy_j == 100.0  # by name too
    assert run_share(nested, "samples", phase="warmup") is None
    # 5 more samples counted outside any phase: the whole run is used
    outside = base.replace(phases=[epoch, ev], counts={"samples": 35})
    share = run_share(outside, "samples")
    assert share.whole_run and share.units == 35
    assert share.energy_j == pytest.approx(base.energy_kwh * 3.6e6)
    # queries counted after the phase: phase= divides that phase's energy by the run's count
    after = base.replace(phases=[dict(epoch, counts={})], counts={"samples": 20})
    assert (run_share(after, "samples", phase="epoch").units) == 20
    assert run_share(after, "queries") is None


def test_phase_without_units_never_borrows_another_phases_units():
    # 36 kJ training with no queries counted in it; 1,000 queries counted in inference only
    train = {
        "name": "train",
        "path": "train",
        "start_s": 0.0,
        "end_s": 1.0,
        "energy_j": {"cpu": 36000.0},
        "counts": {},
    }
    infer = {"name": "inference", "path": "inference", "start_s": 1.0, "end_s": 2.0,
             "energy_j": {"cpu": 3600.0}, "counts": {"queries": 1000}}  # fmt: skip
    base = rec("a", wh_per_1k=1.0)
    r = base.replace(phases=[train, infer], counts={"queries": 1000})
    # before: 36 kJ / the inference phase's 1,000 queries
    assert run_share(r, "queries", phase="train") is None
    assert run_share(r, "queries", phase="inference").units == 1000
    # 200 queries counted outside every phase do stand in for the phase's own
    r_out = base.replace(phases=[train, infer], counts={"queries": 1200})
    share = run_share(r_out, "queries", phase="train")
    assert (share.energy_j, share.units) == (36000.0, 200)
    # on a board, the run without such units is left out with the usual note
    board = build([r, r_out.replace(id="b" * 32, name="b")], quality="accuracy", per="queries",
                  phase="train")  # fmt: skip
    assert [row["n"] for row in board.rows] == [1]
    assert board.rows[0]["energy_wh_per_1k"] == pytest.approx(36000 / 3600 / 200 * 1000)
    assert any("have no phase 'train' with 'queries' and are left out" in n for n in board.notes)
    with pytest.raises(LeaderboardError, match="counted in it or outside every phase"):
        build([r], quality="accuracy", per="queries", phase="train")


# -- the board ------------------------------------------------------------------------------------


def crafted():
    """Pareto: A and E tie on both axes (both optimal), B is best quality, C and D dominated."""
    return [
        rec("A", wh_per_1k=10.0, quality=0.90),
        rec("B", wh_per_1k=20.0, quality=0.95),
        rec("C", wh_per_1k=15.0, quality=0.89),  # worse than A on both
        rec("D", wh_per_1k=25.0, quality=0.95),  # same quality as B, more energy
        rec("E", wh_per_1k=10.0, quality=0.90),
    ]


def test_pareto_flags_and_default_order():
    board = build(crafted(), quality="accuracy", per="queries")
    flags = {r["model"]: r["pareto"] for r in board.rows}
    assert flags == {"A": True, "B": True, "C": False, "D": False, "E": True}
    order = [r["model"] for r in board.rows]
    assert order[:3] in (["A", "E", "B"], ["E", "A", "B"]) and order[3:] == ["C", "D"]


def test_pareto_with_lower_is_better_metric():
    records = [
        rec("A", wh_per_1k=10.0, quality=2.0, metric="val_loss"),
        rec("B", wh_per_1k=20.0, quality=1.5, metric="val_loss"),
        rec("C", wh_per_1k=15.0, quality=2.5, metric="val_loss"),
    ]
    board = build(records, quality="val_loss", per="queries")
    assert board.higher_is_better is False
    assert {r["model"]: r["pareto"] for r in board.rows} == {"A": True, "B": True, "C": False}
    assert all(r["quality_per_kwh"] is None for r in board.rows)
    assert any("quality_per_kwh is empty" in n for n in board.notes)
    # overriding the direction flips the front: higher val_loss "better" makes C optimal
    flipped = build(records, quality="val_loss", per="queries", higher_is_better=True)
    assert {r["model"]: r["pareto"] for r in flipped.rows} == {"A": True, "B": False, "C": True}


def test_stars_cut_the_task_range_into_five_equal_bands():
    # range 10..30, bands of 4 Wh: [10,14) 5, [14,18) 4, [18,22) 3, [22,26) 2, [26,30] 1
    energies = {"a": 10.0, "b": 13.5, "c": 14.0, "d": 21.0, "e": 22.0, "f": 26.0, "g": 30.0}
    expected = {"a": 5, "b": 5, "c": 4, "d": 3, "e": 2, "f": 1, "g": 1}
    board = build(
        [rec(m, wh_per_1k=e, quality=0.5 + e / 100) for m, e in energies.items()],
        quality="accuracy",
        per="queries",
    )
    assert {r["model"]: r["stars"] for r in board.rows} == expected


def test_stars_at_exact_band_boundaries_follow_the_formula():
    # 0.1..0.6: 0.3 is exactly (0.3 - 0.1) x 5 / 0.5 = 2 bands up: 3 stars (was 4: 1.99999...)
    energies = {"a": 0.1, "b": 0.3, "c": 0.6}
    board = build(
        [rec(m, wh_per_1k=e, quality=0.5 + e) for m, e in energies.items()],
        quality="accuracy",
        per="queries",
    )
    assert {r["model"]: r["stars"] for r in board.rows} == {"a": 5, "b": 3, "c": 1}


CONTENDED = {"contended": True, "other_cpu_fraction": 0.63, "reason": "other processes used 63%"}


def test_contended_repeats_are_left_out_while_two_clean_ones_remain():
    clean = [rec("mlp", "int8", wh_per_1k=1.0 + d) for d in (0.0, 0.02, 0.04)]
    busy = rec("mlp", "int8", wh_per_1k=75.0, contention=CONTENDED)
    base = [rec("mlp", "fp32", wh_per_1k=3.0 + d, baseline=True) for d in (0.0, 0.01)]
    board = build([*clean, busy, *base], quality="accuracy", per="queries")
    row = row_of(board, "mlp", "int8")
    assert row["n"] == 3 and row["energy_wh_per_1k"] == pytest.approx(1.02)
    assert row["contended"] == 1 and row["unranked"] is None and row["rank"] == 1
    assert any("contended runs" in n and "mlp/int8 (1 of 4)" in n for n in board.notes)


def test_a_row_without_two_clean_repeats_is_shown_unranked_never_ranked_wrongly():
    # under load the int8 runs looked 75x worse; with one clean run left they are not ranked
    int8 = [rec("mlp", "int8", wh_per_1k=75.0, contention=CONTENDED) for _ in range(2)]
    int8.append(rec("mlp", "int8", wh_per_1k=1.0))
    base = [rec("mlp", "fp32", wh_per_1k=3.0 + d, baseline=True) for d in (0.0, 0.01)]
    board = build([*int8, *base], quality="accuracy", per="queries")
    row = row_of(board, "mlp", "int8")
    assert row["unranked"] == "contended" and row["rank"] is None and row["tie_with"] == []
    assert row_of(board, "mlp", "fp32")["rank"] == 1
    assert any("fewer than two clean repeats for mlp/int8" in n for n in board.notes)


def test_a_single_run_is_shown_unranked_needs_repeats():
    board = build(
        [rec("a", wh_per_1k=1.0), rec("b", wh_per_1k=2.0), rec("b", wh_per_1k=2.1)],
        quality="accuracy",
        per="queries",
    )
    assert row_of(board, "a")["unranked"] == "needs repeats" and row_of(board, "a")["rank"] is None
    assert row_of(board, "b")["rank"] == 1 and row_of(board, "b")["tie_with"] == []


def test_stars_all_five_when_range_is_zero():
    board = build(
        [rec("a", wh_per_1k=3.0), rec("b", wh_per_1k=3.0, quality=0.8)],
        quality="accuracy",
        per="queries",
    )
    assert [r["stars"] for r in board.rows] == [5, 5]
    assert any("all get 5 stars" in n for n in board.notes)


def test_baseline_ratios_are_per_task():
    records = [
        rec("mlp", "fp32", wh_per_1k=20.0, quality=0.96, baseline=True),
        rec("mlp", "int8", wh_per_1k=5.0, quality=0.94),
        rec("student", "distilled", wh_per_1k=2.0, quality=0.92),
        rec("bert", "full", wh_per_1k=40.0, quality=0.80, task="nli", baseline=True),
        rec("bert", "pruned", wh_per_1k=30.0, quality=0.78, task="nli"),
    ]
    board = build(records, quality="accuracy", per="queries")
    ratio = {(r["model"], r["variant"]): r["energy_vs_baseline"] for r in board.rows}
    delta = {(r["model"], r["variant"]): r["quality_delta_vs_baseline"] for r in board.rows}
    assert ratio == {
        ("mlp", "fp32"): pytest.approx(1.0),
        ("mlp", "int8"): pytest.approx(0.25),
        ("student", "distilled"): pytest.approx(0.1),
        ("bert", "full"): pytest.approx(1.0),
        ("bert", "pruned"): pytest.approx(0.75),
    }
    assert delta[("mlp", "int8")] == pytest.approx(-0.02)
    assert delta[("student", "distilled")] == pytest.approx(-0.04)
    assert delta[("bert", "pruned")] == pytest.approx(-0.02)
    # one task at a time gives the same figures
    only = build(records, quality="accuracy", per="queries", task="nli")
    assert [r["model"] for r in only.rows] == ["bert", "bert"]


def test_several_baselines_is_an_error_naming_them_and_none_is_a_note():
    records = [
        rec("mlp", "fp32", wh_per_1k=20.0, baseline=True),
        rec("mlp", "fp16", wh_per_1k=10.0, baseline=True),
    ]
    with pytest.raises(LeaderboardError, match=r"2 baselines \(mlp/fp32, mlp/fp16\)"):
        build(records, quality="accuracy", per="queries")
    board = build([rec("mlp", "fp32", wh_per_1k=20.0)], quality="accuracy", per="queries")
    assert board.rows[0]["energy_vs_baseline"] is None
    assert board.rows[0]["quality_delta_vs_baseline"] is None
    assert any("no baseline" in n for n in board.notes)


def test_repeats_are_aggregated_with_confidence_intervals():
    from scipy import stats  # imported here: the fast tier collects without scipy

    energies, accs = [10.0, 12.0, 17.0], [0.90, 0.92, 0.97]
    records = [rec("mlp", "int8", wh_per_1k=e, quality=a) for e, a in zip(energies, accs)]
    records.append(rec("mlp", "fp32", wh_per_1k=30.0, quality=0.99))
    board = build(records, quality="accuracy", per="queries")
    row = row_of(board, "mlp", "int8")
    assert row["n"] == 3
    sem = stats.sem(energies)
    low, high = stats.t.interval(0.95, df=2, loc=13.0, scale=sem)
    assert row["energy_wh_per_1k"] == pytest.approx(13.0)
    assert row["energy_wh_per_1k_std"] == pytest.approx(stats.tstd(energies))
    assert (row["energy_wh_per_1k_ci_low"], row["energy_wh_per_1k_ci_high"]) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    qlow, qhigh = stats.t.interval(0.95, df=2, loc=0.93, scale=stats.sem(accs))
    assert row["quality"] == pytest.approx(0.93)
    assert (row["quality_ci_low"], row["quality_ci_high"]) == (
        pytest.approx(qlow),
        pytest.approx(qhigh),
    )
    single = row_of(board, "mlp", "fp32")
    assert single["n"] == 1 and single["energy_wh_per_1k_ci_low"] is None
    assert single["quality_std"] is None
    assert any("n = 1" in n and "mlp/fp32" in n for n in board.notes)


def test_overlapping_intervals_are_ties_and_share_a_rank():
    # two runs each: half-width = t(1) * |a - b| / 2, here 12.706 * 0.05 = 0.635 Wh
    records = [
        rec("A", wh_per_1k=10.0, quality=0.90),
        rec("A", wh_per_1k=10.1, quality=0.90),
        rec("B", wh_per_1k=10.5, quality=0.91),  # B: [9.92, 11.19] overlaps A: [9.42, 10.69]
        rec("B", wh_per_1k=10.6, quality=0.91),
        rec("C", wh_per_1k=20.0, quality=0.95),  # far above both
        rec("C", wh_per_1k=20.1, quality=0.95),
    ]
    board = build(records, quality="accuracy", per="queries")
    ties = {r["model"]: r["tie_with"] for r in board.rows}
    assert ties == {"A": ["B"], "B": ["A"], "C": []}
    assert {r["model"]: r["rank"] for r in board.rows} == {"A": 1, "B": 1, "C": 3}


def test_status_filter_uncounted_runs_and_partial_quality_are_notes():
    records = [
        rec("A", wh_per_1k=10.0),
        rec("A", wh_per_1k=12.0, quality=None),
        rec("A", wh_per_1k=99.0, status="failed"),
        rec("B", wh_per_1k=8.0, status="interrupted"),
        rec("C", wh_per_1k=5.0, quality=None),
        rec("train", wh_per_1k=1.0, counts={"samples": 60000}, phases=[], name="training"),
    ]
    board = build(records, quality="accuracy", per="queries")
    assert sorted(r["model"] for r in board.rows) == ["A", "C"]
    a, c = row_of(board, "A"), row_of(board, "C")
    assert a["n"] == 2 and a["energy_wh_per_1k"] == pytest.approx(11.0)
    assert a["quality"] == pytest.approx(0.9)  # over the one run that logged it
    assert c["quality"] is None and c["pareto"] is False
    notes = " | ".join(board.notes)
    assert "2 run(s) excluded by status (1 failed, 1 interrupted)" in notes
    assert "1 run(s) counted no 'queries' and are left out: training" in notes
    assert "'accuracy' missing from some runs" in notes and "A (1 of 2)" in notes
    assert "no run of C logged 'accuracy'" in notes
    # failed runs can be included on request
    more = build(records, quality="accuracy", per="queries", statuses=("completed", "failed"))
    assert row_of(more, "A")["n"] == 3


def test_bad_input_errors_say_what_to_do():
    records = [rec("A", wh_per_1k=1.0, counts={"queries": 1000, "tokens": 5})]
    with pytest.raises(LeaderboardError, match=r"no run counted 'samples'.*queries, tokens"):
        build(records, quality="accuracy", per="samples")
    with pytest.raises(LeaderboardError, match=r"no ranked run logged 'f1'.*accuracy"):
        build(records, quality="f1", per="queries")
    with pytest.raises(LeaderboardError, match=r"no runs with task 'nlp'.*digits"):
        build(records, quality="accuracy", per="queries", task="nlp")
    with pytest.raises(LeaderboardError, match="no runs to rank.*store is empty"):
        build([], quality="accuracy", per="queries")
    weird = [rec("A", wh_per_1k=1.0, metric="goodness", quality=3.0)]
    with pytest.raises(LeaderboardError, match="higher_is_better"):
        build(weird, quality="goodness", per="queries")
    with pytest.raises(LeaderboardError, match="cannot sort by 'speed'"):
        build(records, quality="accuracy", per="queries", sort_by="speed")
    with pytest.raises(LeaderboardError, match="phase 'decode'.*inference"):
        build(records, quality="accuracy", per="queries", phase="decode")


def test_direction_from_the_runs_and_by_name():
    told = [
        rec(
            "A",
            wh_per_1k=1.0,
            metric="goodness",
            quality=3.0,
            metric_directions={"goodness": False},
        ),
        rec("B", wh_per_1k=2.0, metric="goodness", quality=2.0),
    ]
    board = build(told, quality="goodness", per="queries")
    assert board.higher_is_better is False
    assert {r["model"]: r["pareto"] for r in board.rows} == {"A": True, "B": True}
    for name, expected in [
        ("accuracy", True),
        ("top1_accuracy", True),
        ("f1", True),
        ("BLEU", True),
        ("loss", False),
        ("val_loss", False),
        ("perplexity", False),
        ("wer", False),
        ("vibes", None),
        # the frameworks' prefixes and suffixes are stripped; nothing else is guessed
        ("eval_loss", False),
        ("val_acc", True),
        ("val_acc_epoch", True),
        ("test_f1_step", True),
        ("train_loss_epoch", False),
        ("error_reduction", None),  # was taken as lower-is-better
        ("acc_drop", None),  # was taken as higher-is-better
        ("loss_improvement", None),
    ]:
        assert default_higher_is_better(name) is expected, name


def test_sort_override_puts_empty_values_last():
    records = crafted() + [rec("F", wh_per_1k=1.0, quality=None)]
    board = build(records, quality="accuracy", per="queries", sort_by="quality", ascending=False)
    order = [r["model"] for r in board.rows]
    assert order[:2] in (["B", "D"], ["D", "B"]) and order[-1] == "F"
    assert order[2:4] in (["A", "E"], ["E", "A"]) and order[4] == "C"


def test_dataframe_from_a_store_with_notes(store):
    st = Store(store)
    for r in crafted() + [rec("A", wh_per_1k=50.0, status="failed")]:
        st.save(r)
    df = footprint.leaderboard(task="digits", quality="accuracy", per="queries", store=store)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 5
    assert df.attrs["per"] == "queries" and df.attrs["quality"] == "accuracy"
    assert any("1 failed" in n for n in df.attrs["notes"])
    assert df.set_index("model").loc["C", "energy_wh_per_1k"] == pytest.approx(15.0)
    assert bool(df.set_index("model").loc["C", "pareto"]) is False


def test_tracked_runs_end_to_end(clock, store):
    from conftest import ConstantPowerSensor

    powers = {"fp32": 200.0, "int8": 50.0}
    for variant, power_w in powers.items():
        sensor = ConstantPowerSensor(clock, power_w)
        with footprint.track(
            f"clf-{variant}",
            task="digits",
            model="mlp",
            variant=variant,
            baseline=variant == "fp32",
            sensors=[sensor],
            _clock=clock,
            store=store,
        ) as run:
            clock.advance(3.0)  # start-up, not inference
            with run.phase("inference"):
                clock.advance(2.0)
                run.count(queries=400)
        run.log(accuracy=0.95 if variant == "fp32" else 0.93)
    df = footprint.leaderboard(task="digits", quality="accuracy", per="queries", store=store)
    by_variant = df.set_index("variant")
    # fp32: 200 W x 2 s / 400 queries = 1 J per query = 1000 J per 1,000 = 1000/3600 Wh
    assert by_variant.loc["fp32", "energy_wh_per_1k"] == pytest.approx(1000 / 3600)
    assert by_variant.loc["int8", "energy_vs_baseline"] == pytest.approx(0.25)
    assert by_variant.loc["int8", "quality_delta_vs_baseline"] == pytest.approx(-0.02)
    assert list(df["variant"]) == ["int8", "fp32"]  # both Pareto-optimal, cheapest first


def test_import_is_light_and_the_name_stays_callable():
    import subprocess
    import sys

    code = (
        "import sys, footprint, footprint.ranking\n"
        "assert 'pandas' not in sys.modules and 'scipy' not in sys.modules\n"
        "assert callable(footprint.leaderboard) and callable(footprint.bench)\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# -- command line ---------------------------------------------------------------------------------


def _cli_store(store):
    st = Store(store)
    for r in crafted() + [
        rec("A", wh_per_1k=12.0, quality=0.90),
        rec("B", wh_per_1k=20.0, quality=0.95, baseline=True, status="failed"),
    ]:
        st.save(r)
    return ["leaderboard", "--task", "digits", "--quality", "accuracy", "--per", "queries"] + [
        "--store",
        str(store),
    ]


def test_cli_json_and_csv(store, capsys):
    import csv
    import io
    import json

    from footprint.cli import main

    argv = _cli_store(store)
    assert main(argv + ["--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert (data["quality"], data["per"], data["higher_is_better"]) == ("accuracy", "queries", True)
    a = next(r for r in data["rows"] if r["model"] == "A")
    assert a["n"] == 2 and a["energy_wh_per_1k"] == pytest.approx(11.0)
    assert "1 failed" in err and data["notes"] == [
        line.removeprefix("footprint: note: ") for line in err.splitlines()
    ]
    assert main(argv + ["--format", "csv", "--sort", "energy_wh_per_1k", "--descending"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["model"] for r in rows] == ["D", "B", "C", "A", "E"]
    assert rows[-1]["energy_wh_per_1k_ci_low"] == ""  # n = 1: empty, not 0


def test_cli_table_and_markdown(store, capsys):
    from footprint.cli import main

    argv = _cli_store(store)
    assert main(argv + ["--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| rank | task | model | variant | n | accuracy | energy/1k queries |")
    assert "| - | digits | C | - | 1 | 0.89 | 15.0 Wh | - |" in out  # prefixed units for people
    assert "- 1 run(s) excluded by status (1 failed)" in out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "energy per 1,000 queries" in out and "note: " in out and "*****" in out


def test_cli_errors_are_one_line(store, capsys):
    from footprint.cli import main

    argv = _cli_store(store)
    assert main([*argv[:-4], "--per", "samples", *argv[-2:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("footprint: error: no run counted 'samples'") and err.count("\n") == 1
    assert main(argv + ["--format", "xml"]) == 2
    assert "--format must be one of table, csv, markdown, json" in capsys.readouterr().err


def test_worked_example_of_the_docs():
    runs = {
        ("mlp", "fp32"): ([20.0, 21.0, 22.0], [0.96, 0.96, 0.97]),
        ("mlp", "int8"): ([6.0, 6.5, 7.0], [0.95, 0.95, 0.96]),
        ("student", "distilled"): ([5.0, 6.0, 7.0], [0.93, 0.92, 0.94]),
    }
    records = [
        rec(m, v, wh_per_1k=e, quality=q, baseline=v == "fp32", intensity_g_per_kwh=56.0)
        for (m, v), (es, qs) in runs.items()
        for e, q in zip(es, qs)
    ]
    records.append(rec("mlp", "train", wh_per_1k=1.0, counts={"samples": 1}, name="train-mlp"))
    board = build(records, quality="accuracy", per="queries", task="digits")
    assert [(r["model"], r["variant"]) for r in board.rows] == [
        ("student", "distilled"),
        ("mlp", "int8"),
        ("mlp", "fp32"),
    ]
    d = board.rows[0]
    half = 4.302652729749464 / math.sqrt(3)  # t(0.975, 2) x std 1 / sqrt(3)
    assert d["energy_wh_per_1k_ci_low"] == pytest.approx(6 - half)
    assert d["energy_wh_per_1k_ci_high"] == pytest.approx(6 + half)
    assert d["emissions_g_per_1k"] == pytest.approx(0.336)
    assert d["quality_per_kwh"] == pytest.approx(155000)
    assert d["energy_vs_baseline"] == pytest.approx(6 / 21)
    assert [r["stars"] for r in board.rows] == [5, 5, 1]
    assert [r["rank"] for r in board.rows] == [1, 1, 3]
    assert [r["pareto"] for r in board.rows] == [True, True, True]
    assert board.notes == ["1 run(s) counted no 'queries' and are left out: train-mlp"]
