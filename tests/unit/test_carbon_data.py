"""codecarbon's data files keep their shape, and the shipped region index matches its sources.

If a test here fails after upgrading codecarbon or pycountry: check the change, adapt
footprint/carbon/tables.py if needed, and regenerate with `python scripts/build_region_index.py`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

import footprint.carbon as fc
from footprint.carbon import regions, tables
from footprint.errors import RegionError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import build_region_index as build_index  # noqa: E402  (dev tooling, not in the package)

DATA = tables.data_dir()


def raw(rel: str) -> dict:
    return json.loads((DATA / rel).read_text(encoding="utf-8"))


def test_shipped_index_matches_its_sources():
    shipped = build_index.INDEX_PATH.read_text(encoding="utf-8")
    assert shipped == build_index.dumps(build_index.build_index()), (
        "footprint/data/regions.json is stale: run python scripts/build_region_index.py"
    )


def test_check_mode_reports_a_stale_index(tmp_path):
    stale = tmp_path / "regions.json"
    stale.write_text("{}", encoding="utf-8")
    assert build_index.main(["--out", str(stale), "--check"]) == 1
    assert build_index.main(["--out", str(build_index.INDEX_PATH), "--check"]) == 0


def test_files_exist_with_expected_shape():
    for rel in tables.FILES.values():
        assert (DATA / rel).is_file(), rel
    assert len(tables.countries()) == 213
    assert len(tables.us_states()) == 51  # 50 states + DC; the national row is skipped
    assert len(tables.canada_provinces()) == 13
    assert len(tables.china_provinces()) == 30
    assert [r.key for r in tables.nordic_zones()] == [
        "NO1", "NO2", "NO3", "NO4", "NO5", "SE1", "SE2", "SE3", "SE4",
    ]  # fmt: skip
    assert len(tables.gcp_regions()) == 40


def test_moved_file_is_a_clear_error(tmp_path):
    with pytest.raises(tables.DataTableError, match="global_energy_mix.json is missing"):
        tables.countries(tmp_path)


def test_changed_unit_is_a_clear_error(tmp_path):
    (tmp_path / "private_infra/2023").mkdir(parents=True)
    data = raw(tables.FILES["us_states"])
    data["_unit"]["emissions"] = "kg/MWh"
    (tmp_path / tables.FILES["us_states"]).write_text(json.dumps(data))
    with pytest.raises(tables.DataTableError, match="lbs/MWh"):
        tables.us_states(tmp_path)


def test_country_values_are_the_tables_own():
    owid = raw(tables.FILES["countries"])
    for code, alpha3 in [("FR", "FRA"), ("DE", "DEU"), ("PL", "POL"), ("US", "USA")]:
        i = fc.carbon_intensity(code)
        assert i.g_per_kwh == owid[alpha3]["carbon_intensity"]
        assert i.year == owid[alpha3]["year"]
        assert (i.kind, i.basis, i.gas, i.region) == ("country", "life-cycle", "CO2e", code)
    assert fc.carbon_intensity("FR").g_per_kwh == 56.039
    assert fc.carbon_intensity("DE").g_per_kwh == 380.95


def test_us_state_converted_from_lbs_per_mwh():
    lbs = raw(tables.FILES["us_states"])["california"]["emissions"]
    i = fc.carbon_intensity("US-CA")
    assert i.g_per_kwh == pytest.approx(lbs * 453.59237 / 1000, rel=1e-12)
    assert i.g_per_kwh == pytest.approx(179.0642, abs=1e-4)
    assert (i.kind, i.basis, i.gas, i.year) == ("subregion", "direct", "CO2e", 2023)


def test_canadian_province_from_generation_mix():
    mix = raw(tables.FILES["canada_mix"])["quebec"]
    f = raw(tables.FILES["per_source"])
    expected = (
        mix["coal"] * f["coal"]
        + mix["petroleum"] * f["petroleum"]
        + mix["naturalGas"] * f["natural_gas"]
        + mix["nuclear"] * f["nuclear"]
        + mix["hydro"] * f["hydroelectricity"]
        + mix["wind"] * f["wind"]
        + mix["solar"] * f["solar"]
        + mix["biomass"] * f["biomass"]
    ) / mix["total"]
    i = fc.carbon_intensity("CA-QC")
    assert i.g_per_kwh == pytest.approx(expected, rel=1e-12)
    assert i.g_per_kwh == pytest.approx(31.2337, abs=1e-4)
    assert i.basis == "life-cycle"


def test_chinese_province_is_co2_only():
    i = fc.carbon_intensity("CN-BJ")
    assert i.g_per_kwh == raw(tables.FILES["china"])["data"]["CN-BJ"]["emission_factor"] == 555.4
    assert (i.gas, i.basis, i.year) == ("CO2", "direct", 2023)


def test_nordic_zone_and_fi_is_the_country():
    i = fc.carbon_intensity("SE-SE3")
    assert i.g_per_kwh == raw(tables.FILES["nordic"])["data"]["SE3"]["emission_factor"] == 27.0
    assert (i.kind, i.year, i.region) == ("zone", 2025, "SE-SE3")
    # The Nordic table's FI row (72.0) is not used: FI is the country, from OWID.
    assert (
        fc.carbon_intensity("FI").g_per_kwh
        == raw(tables.FILES["countries"])["FIN"]["carbon_intensity"]
    )
    assert fc.carbon_intensity("FI").g_per_kwh != 72.0


def test_gcp_region_from_impact_csv_and_typo_fixed():
    text = (DATA / tables.FILES["gcp"]).read_text(encoding="utf-8-sig")
    rows = {r["region"]: r for r in csv.DictReader(text.splitlines())}
    i = fc.carbon_intensity("gcp:europe-west9")
    assert i.g_per_kwh == float(rows["europe-west9"]["impact"]) == 34.0
    assert (i.kind, i.year, i.region, i.name) == ("cloud", None, "gcp:europe-west9", "Paris")
    doha = float(rows["me-cenrtal1"]["impact"])
    assert fc.carbon_intensity("gcp:me-central1").g_per_kwh == doha
    assert fc.canonical_region("gcp:me-cenrtal1") == "gcp:me-central1"


def test_aws_region_resolves_through_its_grid():
    lbs = raw(tables.FILES["us_states"])["virginia"]["emissions"]
    i = fc.carbon_intensity("aws:us-east-1")
    assert i.g_per_kwh == pytest.approx(lbs * 0.45359237, rel=1e-12)
    assert (i.kind, i.region, i.grid_region) == ("cloud", "aws:us-east-1", "US-VA")
    assert "docs.aws.amazon.com" in i.notes[0]
    assert fc.carbon_intensity("azure:westeurope").g_per_kwh == fc.carbon_intensity("NL").g_per_kwh


def test_every_cloud_row_maps_to_a_grid_region_with_data():
    with open(build_index.CLOUD_CSV_PATH, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 60
    for row in rows:
        assert row["source_url"].startswith("https://"), row
        i = fc.carbon_intensity(f"{row['provider']}:{row['region']}")
        assert i.grid_region == row["grid_region"]
        assert i.g_per_kwh == fc.carbon_intensity(row["grid_region"]).g_per_kwh


def test_zero_in_a_table_is_no_data_never_zero():
    assert raw(tables.FILES["countries"])["CAF"]["carbon_intensity"] == 0.0
    with pytest.raises(
        RegionError, match=r"no carbon-intensity data for CF .*0\.0.*carbon_intensity="
    ):
        fc.carbon_intensity("CF")


def test_country_missing_from_the_table_is_no_data():
    assert "LIE" not in raw(tables.FILES["countries"])
    with pytest.raises(RegionError, match=r"no carbon-intensity data for LI .*no entry"):
        fc.carbon_intensity("Liechtenstein")


def test_index_regions_cover_every_iso_country():
    import pycountry

    index = regions.load_index()
    assert {c.alpha_2 for c in pycountry.countries} <= set(index["regions"])
