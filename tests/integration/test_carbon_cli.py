"""``footprint regions``, ``footprint whatif`` and ``footprint recompute`` through main()."""

from __future__ import annotations

import json

import pytest

import footprint.carbon as fc
from footprint.cli import main
from footprint.record import RunRecord
from footprint.store import Store

RECORD = {
    "schema_version": 1,
    "id": "abcdef0123456789" + "0" * 16,
    "name": "train",
    "status": "completed",
    "started_at": "2026-11-22T09:30:00+00:00",
    "duration_s": 3600.0,
    "energy_kwh": 0.25,  # 250 W for one hour
    "devices": [
        {
            "id": "gpu:0",
            "kind": "gpu",
            "name": "x",
            "energy_j": 900000.0,
            "method": "m",
            "measured": True,
        }
    ],  # fmt: skip
    "timeline": {"t_s": [0.0, 1800.0, 3600.0], "power_w": {"gpu:0": [250.0, 250.0]}},
    "notes": ["gpu:0: measured"],
}


@pytest.fixture
def store(tmp_path):
    record = {**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE", pue=1.2))}
    Store(tmp_path).save(RunRecord.from_dict(record))
    return tmp_path


def test_regions_search_json(capsys):
    assert main(["regions", "fra", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["region"] == "FR" and rows[0]["g_per_kwh"] == 56.039


def test_regions_table_lists_sources(capsys):
    assert main(["regions", "--kind", "zone"]) == 0
    out = capsys.readouterr().out
    assert "SE-SE3" in out and "entsoe-nordic" in out and "FR " not in out


def test_regions_kind_filter_applies_before_the_row_limit(capsys):
    # "us" matches over 20 countries and sub-regions before any cloud region
    assert main(["regions", "us", "--kind", "cloud", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["kind"] == "cloud" for r in rows)
    assert main(["regions", "us", "--kind", "cloud"]) == 0
    assert "no region matches" not in capsys.readouterr().out


def test_regions_paris_lists_cloud_regions_and_fuzzy_has_a_heading(capsys):
    assert main(["regions", "paris", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["region"] for r in rows} == {"gcp:europe-west9", "aws:eu-west-3",
                                           "azure:francecentral"}  # fmt: skip
    assert main(["regions", "paris"]) == 0
    assert "closest" not in capsys.readouterr().out
    assert main(["regions", "frnkfurt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no region code or name contains 'frnkfurt'; the closest names")


def test_regions_bad_kind(capsys):
    assert main(["regions", "--kind", "planet"]) == 2
    assert "--kind must be one of country, subregion, zone, cloud" in capsys.readouterr().err


def test_whatif_json(store, capsys):
    assert main(["whatif", "abcdef", "--regions", "FR, DE", "--store", str(store),
                 "--format", "json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["region"] for r in rows] == ["FR", "DE"]
    assert rows[0]["emissions_kg"] == pytest.approx(0.25 * 1.2 * 56.039 / 1000)
    assert rows[1]["this_run"] is True


def test_whatif_unknown_region_is_one_clear_line(store, capsys):
    assert main(["whatif", "abcdef", "--regions", "Frnace", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("footprint: error: unknown region 'Frnace': did you mean FR (France)")


def test_whatif_unknown_run(store, capsys):
    assert main(["whatif", "zzz", "--store", str(store)]) == 1
    assert "zzz" in capsys.readouterr().err


def test_recompute_with_hourly_file_saves(store, tmp_path, capsys):
    csv = tmp_path / "grid.csv"
    csv.write_text(
        "timestamp,g_per_kwh\n2026-11-22T09:00:00Z,100\n2026-11-22T10:00:00Z,300\n",
        encoding="utf-8",
    )
    assert main(["recompute", "abc", "--intensity-csv", str(csv), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "-> " in out and "saved" in out
    rec = Store(store).get("abc")
    # 0.125 kWh at 100 then 0.125 kWh at 300, PUE 1.2 kept from the run
    assert rec.emissions_kg == pytest.approx((0.125 * 100 + 0.125 * 300) * 1.2 / 1000)
    assert rec.carbon.kind == "hourly" and rec.carbon.region == "DE"
    assert rec.notes[0] == "gpu:0: measured"


def test_recompute_dry_run_does_not_save(store, capsys):
    before = Store(store).get("abc").emissions_kg
    assert main(["recompute", "abc", "--carbon-intensity", "10", "--dry-run",
                 "--store", str(store)]) == 0  # fmt: skip
    assert "dry run" in capsys.readouterr().out
    assert Store(store).get("abc").emissions_kg == before


def test_recompute_malformed_file_names_file_and_line(store, tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,lots\n", encoding="utf-8")
    assert main(["recompute", "abc", "--intensity-csv", str(csv), "--store", str(store)]) == 2
    assert "bad.csv, line 2: intensity 'lots' is not a number" in capsys.readouterr().err


def test_recompute_with_a_file_that_does_not_cover_the_run_saves_nothing(store, tmp_path, capsys):
    before = Store(store).get("abc")
    assert before.emissions_kg is not None
    csv = tmp_path / "old.csv"
    csv.write_text("timestamp,g_per_kwh\n2020-01-01T00:00:00Z,100\n2020-01-01T01:00:00Z,200\n")
    assert main(["recompute", "abc", "--intensity-csv", str(csv), "--store", str(store)]) == 2
    captured = capsys.readouterr()
    assert "old.csv has no intensity at 2026-11-22" in captured.err
    assert "nothing recomputed or saved" in captured.err and "saved" not in captured.out
    assert Store(store).get("abc") == before


def test_recompute_explicit_pue_one_is_user_supplied(store, capsys):
    assert main(["recompute", "abc", "--region", "FR", "--pue", "1.0", "--store", str(store)]) == 0
    rec = Store(store).get("abc")
    assert rec.pue == 1.0 and rec.carbon.pue_source.startswith("user-supplied")


def test_whatif_table_shows_basis_and_stars_only_a_used_table_value(store, tmp_path, capsys):
    assert main(["whatif", "abc", "--regions", "FR,DE,US-CA", "--wide", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "basis" in out and "life-cycle, CO2e" in out and "direct, CO2e" in out
    assert "DE *" in out and "PUE 1.2" in out
    # the same region with a user-given intensity: no star, the run's own figure beside it
    user_store = tmp_path / "user"
    Store(user_store).save(
        RunRecord.from_dict({**RECORD, **fc.emissions_for(RECORD, fc.resolve("DE", 500))})
    )
    assert main(["whatif", "abc", "--regions", "FR,DE", "--store", str(user_store)]) == 0
    out = capsys.readouterr().out
    assert "DE *" not in out and "DE +" in out and "(run: 500.0," in out
    assert "this run: 500.0 g/kWh (user-supplied)" in out
    # a run with only an intensity: its figure under the table
    bare = tmp_path / "bare"
    Store(bare).save(
        RunRecord.from_dict({**RECORD, **fc.emissions_for(RECORD, fc.resolve(carbon_intensity=50))})
    )
    assert main(["whatif", "abc", "--regions", "FR", "--store", str(bare)]) == 0
    assert "this run: 50.0 g/kWh (user-supplied)" in capsys.readouterr().out
