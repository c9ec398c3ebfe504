"""resolve / emissions_for arithmetic, PUE, embodied emissions, what-if, equivalents."""

from __future__ import annotations

import math

import pytest

import footprint.carbon as fc
from footprint.carbon import embodied, pue
from footprint.errors import RegionError, UsageError

RECORD = {
    "id": "0123456789abcdef0123456789abcdef",
    "started_at": "2026-11-22T04:15:32.123456+00:00",
    "duration_s": 7200.0,
    "energy_kwh": 2.0,
    "devices": [
        {"id": "gpu:0", "kind": "gpu", "name": "A100", "energy_j": 5.4e6, "method": "m",
         "measured": True},
        {"id": "gpu:1", "kind": "gpu", "name": "A100", "energy_j": 1.08e6, "method": "m",
         "measured": True},
        {"id": "cpu", "kind": "cpu", "name": "Xeon", "energy_j": 720000.0, "method": "m",
         "measured": False},
    ],  # fmt: skip
    "timeline": {"t_s": [0.0, 7200.0], "power_w": {"gpu:0": [750.0], "gpu:1": [150.0],
                                                   "cpu": [100.0]}},
}  # fmt: skip


def test_no_region_no_intensity_leaves_emissions_empty():
    setup = fc.resolve()
    assert setup.intensity is None and setup.region is None
    assert setup.notes == (
        "carbon: no region given: emissions left empty; pass region= or carbon_intensity=",
    )
    out = fc.emissions_for(RECORD, setup)
    assert out["emissions_kg"] is None and out["carbon_intensity_g_per_kwh"] is None
    assert out["notes"] == list(setup.notes)
    assert out["embodied_emissions_kg"] is None
    assert out["region"] is None and out["pue"] == 1.0
    assert setup.emissions_kg(2.0) is None


def test_notes_merge_with_the_records_without_duplicates():
    setup = fc.resolve("aws:us-east-1")
    record = {**RECORD, "notes": ["cpu: estimated", *setup.notes]}  # as the tracker builds it
    out = fc.emissions_for(record, setup)
    assert out["notes"] == ["cpu: estimated", *setup.notes]


def test_operational_emissions_it_energy_times_pue_times_intensity():
    out = fc.emissions_for(RECORD, fc.resolve("FR", pue=1.25))
    assert out["emissions_kg"] == pytest.approx(2.0 * 1.25 * 56.039 / 1000, rel=1e-12)
    c = out["carbon"]
    assert c["it_energy_kwh"] == 2.0 and c["facility_energy_kwh"] == 2.5
    assert (c["region"], c["kind"], c["year"], c["basis"], c["gas"]) == (
        "FR", "country", 2023, "life-cycle", "CO2e",
    )  # fmt: skip
    assert c["pue"] == 1.25 and c["pue_source"] == "user-supplied"
    assert out["carbon_intensity_g_per_kwh"] == 56.039
    assert (out["region"], out["pue"]) == ("FR", 1.25)
    assert fc.resolve("FR", pue=1.25).emissions_kg(2.0) == out["emissions_kg"]


def test_user_intensity_with_and_without_region():
    out = fc.emissions_for(RECORD, fc.resolve(carbon_intensity=120))
    assert out["emissions_kg"] == pytest.approx(0.24)
    assert out["carbon"]["kind"] == "user" and out["carbon"]["region"] is None
    setup = fc.resolve("fra", carbon_intensity=120)
    assert setup.region == "FR" and setup.intensity.g_per_kwh == 120.0
    assert setup.notes == (
        "carbon: user intensity 120 g/kWh used for FR instead of the table's 56.039 g/kWh",
    )
    # a region without data is fine when the user gives the intensity
    assert fc.resolve("CF", carbon_intensity=10).intensity.g_per_kwh == 10.0


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, -math.inf, "120", True, [120]])
def test_bad_intensity(bad):
    with pytest.raises(ValueError, match="carbon_intensity must be"):
        fc.resolve(carbon_intensity=bad)


def test_none_intensity_means_not_given():
    setup = fc.resolve("FR", carbon_intensity=None)
    assert setup.intensity.kind == "country" and setup.intensity.g_per_kwh == 56.039
    assert fc.resolve(carbon_intensity=None).intensity is None


def test_pue_source_says_who_gave_it():
    assert fc.resolve("FR").pue_source == "default: 1.0 (IT energy only)"
    assert fc.resolve("FR", pue=None).pue_source == "default: 1.0 (IT energy only)"
    explicit = fc.resolve("FR", pue=1.0)
    assert explicit.pue == 1.0 and explicit.pue_source == "user-supplied: 1.0 (IT energy only)"
    assert fc.resolve("FR", pue=1).pue_source.startswith("user-supplied")
    assert "unverified" in fc.resolve("azure:westeurope", pue="cloud").pue_source


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (0, "greater than 0"),
        (-1.2, "greater than 0"),
        (math.nan, "greater than 0"),
        (math.inf, "greater than 0"),
        (0.9, "must be >= 1.0"),
        ("cheap", "unknown pue preset 'cheap'"),
        (True, "pue must be a number"),
        ([1.2], "pue must be a number"),
    ],
)
def test_bad_pue(bad, message):
    with pytest.raises(ValueError, match=message):
        fc.resolve("FR", pue=bad)


def test_pue_presets():
    gcp = fc.resolve("gcp:europe-west9", pue="cloud")
    assert gcp.pue == 1.09 and "google.com" in gcp.pue_source
    assert fc.resolve("aws:us-east-1", pue="cloud").pue == pue.CLOUD_PUE["aws"][0]
    assert fc.resolve("azure:westeurope", pue="Cloud").pue == pue.CLOUD_PUE["azure"][0]
    onprem = fc.resolve("DE", pue="on-prem")
    assert onprem.pue == 1.56 and "Uptime Institute" in onprem.pue_source
    with pytest.raises(RegionError, match="pue='cloud' needs a cloud region"):
        fc.resolve("FR", pue="cloud")


def test_embodied_defaults_amortised_and_reported_apart():
    out = fc.emissions_for(RECORD, fc.resolve("FR", embodied=True))
    lifetime_s = 6 * 365.25 * 86400
    per_gpu = 150.0 * 7200.0 / lifetime_s
    assert out["embodied_emissions_kg"] == pytest.approx(2 * per_gpu, rel=1e-12)
    assert out["emissions_kg"] == pytest.approx(2.0 * 56.039 / 1000)  # not mixed in
    devices = out["carbon"]["embodied"]["devices"]
    assert [d["id"] for d in devices] == ["gpu:0", "gpu:1"]
    assert "Luccioni" in devices[0]["source"]
    assert out["notes"][-1].startswith("carbon: no embodied figure for device kind 'cpu'")


def test_embodied_user_figures():
    config = {"cpu": {"embodied_kg": 30, "lifetime_years": 4}, "gpu": True}
    out = fc.emissions_for(RECORD, fc.resolve(carbon_intensity=100, embodied=config))
    expected = 30 * 7200 / (4 * 365.25 * 86400) + 2 * 150 * 7200 / (6 * 365.25 * 86400)
    assert out["embodied_emissions_kg"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("yes", "embodied must be True"),
        ({"gpu": {"embodied_kg": 150}}, r"embodied\['gpu'\] lacks lifetime_years"),
        ({"gpu": {"embodied_kg": -1, "lifetime_years": 5}}, "greater than 0"),
        ({"gpu": {"kg": 1, "lifetime_years": 5}}, r"embodied\['gpu'\] must be"),
        ({"cpu": True}, r"embodied\['cpu'\] must be"),  # no published default for cpu
    ],
)
def test_bad_embodied(config, message):
    with pytest.raises(RegionError, match=message):
        fc.resolve("FR", embodied=config)


def test_embodied_function_directly():
    total, rows, notes = embodied.embodied_emissions(
        [{"id": "gpu:0", "kind": "gpu"}], 3600.0,
        {"gpu": {"embodied_kg": 876.6, "lifetime_years": 1.0, "source": "s"}},
    )  # fmt: skip
    assert total == pytest.approx(876.6 / 8766)  # one hour of a 8766-hour year
    assert rows[0]["embodied_emissions_kg"] == total and notes == []


def test_emissions_for_from_the_record_alone_and_missing_setup():
    setup = fc.resolve("DE", pue=1.1, embodied=True)
    record = {**RECORD, **fc.emissions_for(RECORD, setup)}
    again = fc.emissions_for(record)
    assert again["emissions_kg"] == record["emissions_kg"]
    assert again["embodied_emissions_kg"] == record["embodied_emissions_kg"]
    assert again["carbon"]["source"] == record["carbon"]["source"]
    with pytest.raises(UsageError, match="no 'carbon' field"):
        fc.emissions_for({"energy_kwh": 1.0})


def test_missing_energy_leaves_emissions_empty():
    out = fc.emissions_for({**RECORD, "energy_kwh": None}, fc.resolve("FR"))
    assert out["emissions_kg"] is None
    assert "carbon: the run has no energy figure: emissions left empty" in out["notes"]


def test_recompute_with_a_new_region_keeps_pue():
    record = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE", pue=1.2))}
    new = fc.recompute(record, region="FR")
    assert new.emissions_kg == pytest.approx(2.0 * 1.2 * 56.039 / 1000)
    with pytest.raises(RegionError, match="nothing to recompute with"):
        fc.recompute(record)


def test_whatif_named_regions_sorted():
    record = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE", pue=1.5))}
    rows = fc.whatif(record, ["DE", "france", "US-CA", "aws:us-east-1"])
    assert [r["region"] for r in rows] == ["FR", "US-CA", "aws:us-east-1", "DE"]
    by = {r["region"]: r for r in rows}
    assert by["FR"]["emissions_kg"] == pytest.approx(2.0 * 1.5 * 56.039 / 1000)
    assert by["US-CA"]["emissions_kg"] == pytest.approx(2.0 * 1.5 * 394.769 * 0.45359237 / 1000)
    assert by["DE"]["this_run"] and not by["FR"]["this_run"]
    with pytest.raises(RegionError, match="unknown region 'Narnia'"):
        fc.whatif(record, ["Narnia"])


def test_whatif_stars_the_own_region_only_when_its_table_value_was_used():
    user = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("FR", carbon_intensity=120))}
    by = {r["region"]: r for r in fc.whatif(user, ["FR", "DE"])}
    assert by["FR"]["own_region"] and not by["FR"]["this_run"]  # 120 g/kWh, not the table's
    assert not by["DE"]["own_region"] and not by["DE"]["this_run"]
    assert all(r["basis"] and r["gas"] for r in by.values())


def test_recompute_with_a_file_that_does_not_cover_the_run_raises(tmp_path):
    record = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE"))}
    old = tmp_path / "old.csv"
    old.write_text("timestamp,g_per_kwh\n2020-01-01T00:00:00Z,100\n2020-01-01T01:00:00Z,200\n")
    with pytest.raises(RegionError, match="no intensity at .*nothing recomputed or saved"):
        fc.recompute(record, old)
    # while tracking, the same problem stays a note (a run is never lost to it)
    out = fc.emissions_for(record, fc.resolve("DE", intensity_csv=old))
    assert out["emissions_kg"] is None and any("emissions left empty" in n for n in out["notes"])


def test_whatif_all_countries():
    rows = fc.whatif({**RECORD, "energy_kwh": 1.0}, kinds=("country",))
    assert len(rows) == 212  # 213 OWID countries, minus CAF (0.0)
    assert rows == sorted(rows, key=lambda r: (r["emissions_kg"], r["region"]))


def test_equivalents():
    eq = fc.equivalents(emissions_kg=1.0, energy_kwh=1.9)
    assert eq["car_km"]["value"] == pytest.approx(1000 / (400 / 1.609344))  # 4.02 km
    assert eq["smartphone_charges"]["value"] == pytest.approx(100.0)
    assert "epa.gov" in eq["car_km"]["source"]
    assert fc.equivalents(None, None)["car_km"]["value"] is None


def test_a_new_pue_alone_is_a_recompute_with_the_runs_own_intensity():
    record = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE", pue=1.2))}
    new = fc.recompute(record, pue=1.5)
    assert new.region == "DE" and new.pue == 1.5
    assert new.emissions_kg == pytest.approx(record["emissions_kg"] / 1.2 * 1.5)
    given = {**RECORD, **fc.emissions_for(RECORD, fc.resolve(carbon_intensity=300.0))}
    assert fc.recompute(given, pue=2.0).emissions_kg == pytest.approx(2.0 * 2.0 * 0.3)
    bare = {**RECORD, **fc.emissions_for(RECORD, fc.resolve())}
    with pytest.raises(RegionError, match="no region or carbon intensity to apply a PUE to"):
        fc.recompute(bare, pue=1.5)
    with pytest.raises(RegionError, match="on the command line: --intensity-csv"):
        fc.recompute(record)
