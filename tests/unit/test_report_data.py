"""The report's data layer, on hand-built records: every expected number is worked out here."""

from __future__ import annotations

import math

import pytest
from synthetic import hand_record, make_record, story_records

from footprint import carbon
from footprint.errors import RunNotFoundError
from footprint.ranking import build
from footprint.record import RunRecord, new_record
from footprint.reporting.data import (
    ReportError,
    default_out,
    infer_board_args,
    load_records,
    run_summary,
    run_view,
    short_ids,
    slug,
    store_view,
)
from footprint.store import Store

FR_G_PER_KWH = carbon.carbon_intensity("FR").g_per_kwh
DE_G_PER_KWH = carbon.carbon_intensity("DE").g_per_kwh


def test_run_view_headline_devices_and_per_unit():
    v = run_view(hand_record())
    assert v["energy_j"] == pytest.approx(9000.0)
    assert v["mean_power_w"] == pytest.approx(900.0)
    assert v["emissions_kg"] == pytest.approx(9000 / 3.6e6 * FR_G_PER_KWH / 1000)
    assert v["measured_j"] == 7200.0 and v["estimated_j"] == 1800.0
    gpu, cpu = v["devices"]
    assert (gpu["share"], cpu["share"]) == (pytest.approx(0.8), pytest.approx(0.2))
    assert gpu["mean_power_w"] == pytest.approx(720.0)
    assert gpu["peak_power_w"] == 840.0 and cpu["peak_power_w"] == 180.0
    assert (gpu["measured"], cpu["measured"]) == (True, False)
    # queries were counted in "infer": its 8,400 J / 4,000 queries, not the whole run's 9,000 J
    (unit,) = v["per_unit"]
    assert unit["unit"] == "queries" and unit["count"] == 4000
    assert unit["energy_j_per_unit"] == pytest.approx(2.1)
    assert unit["energy_wh_per_1k"] == pytest.approx(2.1 * 1000 / 3600)
    assert unit["whole_run"] is False


def test_run_view_phases_are_summed_by_path_in_order():
    phases = run_view(hand_record())["phases"]
    assert [(p["path"], p["depth"], p["occurrences"]) for p in phases] == [
        ("load", 0, 1),
        ("infer", 0, 1),
        ("infer/post", 1, 2),
    ]
    post = phases[2]
    assert post["duration_s"] == pytest.approx(1.5)
    assert post["energy_j"] == pytest.approx(240.0)
    assert post["energy_j_by_device"] == {"gpu:0": 200.0, "cpu": 40.0}
    assert phases[1]["counts"] == {"queries": 4000}


def test_run_view_carbon_whatif_equivalents_and_host():
    v = run_view(hand_record(), whatif_regions=("DE",))
    c = v["carbon"]
    assert (c["region"], c["name"], c["year"], c["basis"]) == ("FR", "France", 2023, "life-cycle")
    assert c["pue"] == 1.0 and c["facility_energy_kwh"] == pytest.approx(0.0025)
    # the run's own region is added to the regions asked for, and rows are sorted by emissions
    assert [(r["region"], r["this_run"]) for r in v["whatif"]] == [("FR", True), ("DE", False)]
    assert v["whatif"][1]["emissions_kg"] == pytest.approx(0.0025 * DE_G_PER_KWH / 1000)
    car = v["equivalents"]["car_km"]["value"]
    assert car == pytest.approx(0.0025 * FR_G_PER_KWH / (400 / 1.609344))
    assert v["equivalents"]["smartphone_charges"]["value"] == pytest.approx(0.0025 / 0.019)
    host = {row["label"]: row["value"] for row in v["host"]}
    assert host == {
        "Host": "node-1",
        "Memory": "64 GiB",
        "Virtual machine": "no",
        "GPU 0": "A100 (driver 550, UUID GPU-1)",
    }


def test_run_view_without_region_has_no_emissions_but_a_whatif():
    r = hand_record()
    r = r.replace(**carbon.emissions_for(r.to_dict(), carbon.resolve()))
    v = run_view(r, whatif_regions=("FR",))
    assert v["emissions_kg"] is None and v["carbon"]["region"] is None
    assert v["equivalents"]["car_km"]["value"] is None
    assert [(w["region"], w["this_run"]) for w in v["whatif"]] == [("FR", False)]


def test_run_view_user_intensity_is_shown_as_applied():
    r = hand_record()
    r = r.replace(**carbon.emissions_for(r.to_dict(), carbon.resolve(carbon_intensity=1000.0)))
    rows = run_view(r, whatif_regions=("FR",))["whatif"]
    assert [(w["region"], w["this_run"]) for w in rows] == [("FR", False), ("this run", True)]
    assert rows[1]["emissions_kg"] == pytest.approx(0.0025 * 1000 / 1000)


def test_load_records_by_prefix_dict_and_whole_store(tmp_path):
    st = Store(tmp_path / "runs")
    a = make_record("a", seed=1)
    b = make_record("b", seed=2)
    st.save(a)
    st.save(b)
    got = load_records([b.id[:6], a.to_dict(), a.id], store=st.path)
    assert [r.id for r in got] == [b.id, a.id]  # order kept, duplicates once
    assert {r.id for r in load_records(None, store=st.path)} == {a.id, b.id}


def test_load_records_errors_say_what_to_do(tmp_path):
    with pytest.raises(RunNotFoundError, match="no runs in store .*track a run first"):
        load_records(None, store=tmp_path / "empty")
    with pytest.raises(RunNotFoundError, match="no run 'zzz'"):
        load_records(["zzz"], store=tmp_path / "empty")
    with pytest.raises(ReportError, match="empty list"):
        load_records([], store=tmp_path)
    with pytest.raises(ReportError, match=r"wrap a single run as runs=\[\.\.\.\]"):
        load_records("abc", store=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="run ids .str. or record dicts, got int"):
        load_records([3], store=tmp_path)  # type: ignore[list-item]
    with pytest.raises(ReportError, match="cannot be read.*id"):
        load_records([{"name": "no id"}], store=tmp_path)


def test_default_out_and_slug():
    r = hand_record(name="BERT base / int8 <x>")
    assert slug(r.name) == "bert-base-int8-x"
    assert str(default_out([r])) == f"reports/bert-base-int8-x-{r.id[:8]}.html"
    assert str(default_out([r, hand_record(id="cd" * 16)])) == "reports/footprint-report.html"
    assert slug("////") == "run"


def rec(units: dict, metrics: dict, **kw) -> RunRecord:
    return new_record(
        id=str(kw.pop("id")) * 32,
        started_at="2026-01-01T00:00:00+00:00",
        counts=units,
        metrics=metrics,
        **kw,
    )


def test_infer_board_args_picks_the_most_common_unit_and_a_directed_metric():
    records = [
        rec({"samples": 10}, {"loss": 0.3}, id="1"),
        rec({"queries": 5}, {"accuracy": 0.9, "my_metric": 1.0}, id="2"),
        rec({"queries": 5}, {"accuracy": 0.8, "my_metric": 2.0}, id="3"),
    ]
    q, p, how = infer_board_args(records)
    assert (q, p) == ("accuracy", "queries")
    assert "most runs (2)" in how
    # the same runs, asked per sample: loss is the only metric of those runs
    assert infer_board_args(records, per="samples")[:2] == ("loss", "samples")
    # an unknown direction is never guessed
    only_unknown = [rec({"queries": 5}, {"my_metric": 1.0}, id="4")]
    q, p, how = infer_board_args(only_unknown)
    assert (q, p) == (None, "queries") and "no known direction: my_metric" in how
    assert infer_board_args([rec({}, {}, id="5")])[1] is None
    q, p, how = infer_board_args(records, per="tokens")
    assert p is None and "no run counted 'tokens' (units counted: queries, samples)" in how


def test_store_view_board_matches_the_leaderboard_and_links_runs():
    records = story_records(repeats=2)
    view = store_view(records)
    board = view["board"]
    assert (board["quality"], board["per"], board["inferred"]) == ("accuracy", "queries", True)
    expected = build(records, quality="accuracy", per="queries")
    assert [r["energy_wh_per_1k"] for r in board["rows"]] == [
        r["energy_wh_per_1k"] for r in expected.rows
    ]
    assert board["notes"] == expected.notes
    fp32 = next(r for r in board["rows"] if r["variant"] == "fp32")
    assert fp32["label"] == "mlp/fp32" and fp32["energy_vs_baseline"] == 1.0
    assert sorted(fp32["run_ids"]) == sorted(r.id for r in records if r.variant == "fp32")
    t = view["totals"]
    assert t["runs"] == len(records) == 11
    assert t["energy_kwh"] == pytest.approx(math.fsum(r.energy_kwh for r in records))
    assert t["statuses"] == {"completed": 11}
    train = next(r for r in view["runs"] if r["name"] == "train-mlp-fp32")
    assert train["energy_wh_per_1k"] is None  # it counted samples, not queries


def test_store_view_explicit_arguments_fail_loudly_inferred_ones_become_a_note():
    records = [rec({"queries": 5}, {"my_metric": 1.0}, id=str(i)) for i in range(2)]
    view = store_view(records)
    assert view["board"] is None
    assert "no known direction" in view["board_missing"]
    with pytest.raises(ReportError, match="no run counted 'tokens'"):
        store_view(records, per="tokens")
    with pytest.raises(ReportError, match="no run has task 'x'; no run has a task"):
        store_view(records, task="x")
    from footprint.ranking import LeaderboardError

    with pytest.raises(LeaderboardError, match="cannot tell whether a higher 'my_metric'"):
        store_view(records, quality="my_metric", per="queries")


def test_run_summary_is_the_run_view_without_charts_or_host():
    record = hand_record()
    summary, view = run_summary(record), run_view(record)
    for key in ("status", "duration_s", "energy_j", "emissions_kg", "mean_power_w", "per_unit"):
        assert summary[key] == view[key], key
    assert summary["carbon"] == view["carbon"]
    assert summary["energy_j"] == pytest.approx(9000.0)
    assert [(d["id"], d["energy_j"], d["share"], d["measured"]) for d in summary["devices"]] == [
        ("gpu:0", 7200.0, pytest.approx(0.8), True),
        ("cpu", 1800.0, pytest.approx(0.2), False),
    ]
    assert [
        (p["path"], p["occurrences"], p["energy_j"], p["duration_s"], p["counts"])
        for p in summary["phases"]
    ] == [
        ("load", 1, 600.0, 2.0, {}),
        ("infer", 1, 8400.0, 8.0, {"queries": 4000}),
        ("infer/post", 2, 240.0, 1.5, {}),
    ]
    assert not {"timeline", "whatif", "equivalents", "host", "sources"} & set(summary)


def test_short_ids_are_unique_on_the_page():
    assert short_ids(["ab" * 16, "cd" * 16]) == {"ab" * 16: "abababab", "cd" * 16: "cdcdcdcd"}
    ids = ["abcdef0123", "abcdef0199", "ff"]
    assert short_ids(ids) == {"abcdef0123": "abcdef0123", "abcdef0199": "abcdef0199", "ff": "ff"}
    view = store_view(story_records(repeats=1))
    keys = [r["key"] for r in view["runs"]]
    assert keys == [r["id"][:8] for r in view["runs"]] and len(set(keys)) == len(keys)
    assert all(r["summary"]["devices"] for r in view["runs"])
    assert view["board"]["rows"][0]["run_keys"] == [
        k[:8] for k in view["board"]["rows"][0]["run_ids"]
    ]


def test_legend_labels_never_repeat_the_kind():
    from footprint.reporting.plots import device_label

    assert device_label("cpu", "cpu") == "cpu"
    assert device_label("gpu:0", "gpu") == "gpu:0"
    assert device_label("ram", "ram") == "ram"
    assert device_label("dram:0", "ram") == "dram:0 · ram"
    assert device_label("plug", "other") == "plug · other"
