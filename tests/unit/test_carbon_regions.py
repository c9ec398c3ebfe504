"""Region resolution: every accepted form, and every bad input's error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import footprint.carbon as fc
from footprint.errors import RegionError


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FR", "FR"),
        ("fr", "FR"),
        ("FRA", "FR"),
        ("France", "FR"),
        ("  france ", "FR"),
        ("French Republic", "FR"),
        ("Côte d'Ivoire", "CI"),
        ("cote d'ivoire", "CI"),
        ("US-CA", "US-CA"),
        ("us-ca", "US-CA"),
        ("California", "US-CA"),
        ("CA-QC", "CA-QC"),
        ("Quebec", "CA-QC"),
        ("CN-BJ", "CN-BJ"),
        ("beijing", "CN-BJ"),
        ("SE-SE3", "SE-SE3"),
        ("no-no1", "NO-NO1"),
        ("aws:us-east-1", "aws:us-east-1"),
        ("AWS:US-EAST-1", "aws:us-east-1"),
        ("gcp:europe-west9", "gcp:europe-west9"),
        ("azure:westeurope", "azure:westeurope"),
    ],
)
def test_accepted_forms(text, canonical):
    assert fc.canonical_region(text) == canonical


def test_ambiguous_name_lists_both():
    with pytest.raises(RegionError, match=r"ambiguous.*GE \(Georgia, country\).*US-GA"):
        fc.canonical_region("Georgia")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
        ("turkiye", "TR"),
        ("Russia", "RU"),
        ("South Korea", "KR"),
        ("Iran", "IR"),
        ("Vietnam", "VN"),
        ("Czechia", "CZ"),
        ("Czech Republic", "CZ"),
        ("DR Congo", "CD"),
        ("Ivory Coast", "CI"),
        ("UAE", "AE"),
    ],
)
def test_common_country_names(text, canonical):
    assert fc.canonical_region(text) == canonical
    assert fc.carbon_intensity(text).region == canonical


def test_congo_is_ambiguous_and_lists_both():
    for text in ("Congo", "congo"):
        with pytest.raises(RegionError, match=r"ambiguous") as err:
            fc.canonical_region(text)
        assert "CG (Congo, country)" in str(err.value)
        assert "CD (Congo, The Democratic Republic of the, country)" in str(err.value)
    assert fc.canonical_region("Republic of the Congo") == "CG"


def test_cloud_cities_are_searched_but_never_resolved():
    paris = [r["region"] for r in fc.search_regions("paris")]
    assert set(paris) == {"gcp:europe-west9", "aws:eu-west-3", "azure:francecentral"}
    frankfurt = fc.search_regions("frankfurt")
    assert {r["region"] for r in frankfurt} == {
        "gcp:europe-west3", "aws:eu-central-1", "azure:germanywestcentral",
    }  # fmt: skip
    assert all(r["match"] == "contains" for r in frankfurt)
    # a city shared with a country does not make the country's name ambiguous
    assert fc.canonical_region("Singapore") == "SG"
    assert fc.canonical_region("Hong Kong") == "HK"
    assert "aws:ap-southeast-1" in {r["region"] for r in fc.search_regions("singapore")}


def test_search_says_when_rows_are_only_closest():
    rows = fc.search_regions("frnkfurt")
    assert rows and all(r["match"] == "closest" for r in rows)
    assert rows[0]["region"] == "gcp:europe-west3"
    assert fc.search_regions("fra")[0]["match"] == "contains"


def test_search_filters_kinds_before_the_limit():
    rows = fc.search_regions("us", kinds=("cloud",))
    assert len(rows) == 20 and all(r["kind"] == "cloud" for r in rows)
    assert "aws:us-east-1" in {r["region"] for r in fc.search_regions("us-", kinds=("cloud",))}
    fuzzy = fc.search_regions("frnkfurt", kinds=("country",))
    assert fuzzy and all(r["kind"] == "country" for r in fuzzy)


def test_typo_suggests_closest():
    with pytest.raises(RegionError, match=r"unknown region 'Frnace': did you mean FR \(France\)"):
        fc.canonical_region("Frnace")


def test_unknown_cloud_region_suggests_same_provider():
    with pytest.raises(RegionError, match=r"unknown region 'aws:us-east-9'.*aws:us-east-1"):
        fc.canonical_region("aws:us-east-9")


def test_unknown_provider():
    with pytest.raises(RegionError, match=r"unknown cloud provider 'oci'.*aws:, azure:, gcp:"):
        fc.canonical_region("oci:eu-frankfurt-1")


def test_iso_subdivision_without_data_points_to_the_country():
    with pytest.raises(RegionError, match=r"no sub-regional data for DE-BY \(Bayern\).*'DE'"):
        fc.carbon_intensity("DE-BY")


def test_gibberish_has_no_silent_default():
    with pytest.raises(RegionError, match=r"unknown region 'zzqqxx'.*carbon_intensity="):
        fc.carbon_intensity("zzqqxx")


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_region(bad):
    with pytest.raises(RegionError, match="region is empty"):
        fc.canonical_region(bad)


def test_region_must_be_a_string():
    with pytest.raises(RegionError, match="must be a string.*not int"):
        fc.canonical_region(33)


def test_region_error_is_a_value_error():
    with pytest.raises(ValueError):
        fc.carbon_intensity("Atlantis")


def test_search_by_code_and_name():
    assert fc.search_regions("fra")[0]["region"] == "FR"
    rows = fc.search_regions("aws:eu-")
    assert {r["region"] for r in rows} >= {"aws:eu-west-3", "aws:eu-central-1"}
    assert all(r["region"].startswith("aws:eu-") for r in rows)
    assert fc.search_regions("Frnace")[0]["region"] == "FR"  # fuzzy when nothing contains it


def test_list_regions_has_values_and_sources():
    rows = {r["region"]: r for r in fc.list_regions()}
    assert rows["FR"]["g_per_kwh"] == 56.039 and rows["FR"]["source"] == "owid"
    assert rows["aws:us-east-1"]["grid_region"] == "US-VA"
    assert "CF" not in rows  # no data: left out by default
    assert "CF" in {r["region"] for r in fc.list_regions(with_data_only=False)}
    assert {r["kind"] for r in fc.list_regions(kinds=("zone",))} == {"zone"}


def test_import_is_light_and_resolution_fast():
    code = (
        "import sys, time\n"
        "import footprint.carbon as fc\n"
        "t = time.perf_counter(); fc.resolve('US-CA'); fc.resolve('aws:us-east-1', pue='cloud')\n"
        "dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'codecarbon', 'torch', 'pycountry',\n"
        "         'rapidfuzz') if m in sys.modules]\n"
        "print(heavy, dt)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env
    )
    heavy, dt = out.stdout.rsplit("]", 1)
    assert heavy + "]" == "[]"
    assert float(dt) < 0.05  # ~2 ms in practice (first call loads the index)


def test_warm_resolution_under_a_millisecond():
    fc.resolve("DE")
    t = time.perf_counter()
    for _ in range(100):
        fc.resolve("gcp:europe-west9", pue="cloud")
    assert (time.perf_counter() - t) / 100 < 1e-3
