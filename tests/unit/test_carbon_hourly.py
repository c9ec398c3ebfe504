"""Hourly intensity files: both formats, every malformed-file error, exact integration."""

from __future__ import annotations

import warnings

import pytest

import footprint.carbon as fc
from footprint.carbon.hourly import (
    CoverageError,
    IntensityFileError,
    integrate,
    read_intensity_csv,
)
from footprint.errors import FootprintWarning, RegionError

PLAIN = (
    "timestamp,g_per_kwh\n"
    "2026-11-22T09:00:00Z,100\n"
    "2026-11-22T10:00:00+00:00,300\n"
    "2026-11-22T12:00:00+01:00,200\n"  # 11:00 UTC
)

EM_HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method\n"
)
EM_ROWS = (
    "2026-11-22 09:00:00,Germany,Germany,DE,80,100,50,40,entsoe.eu,false,\n"
    "2026-11-22 10:00:00,Germany,Germany,DE,250,300,50,40,entsoe.eu,false,\n"
    "2026-11-22 11:00:00,Germany,Germany,DE,170,200,50,40,entsoe.eu,false,\n"
)

# A 50-minute run from 09:30 UTC: 20 min at 150 W, then 30 min at 250 W straddling 10:00,
# where the intensity steps from 100 to 300 g/kWh.
RECORD = {
    "id": "0123456789abcdef0123456789abcdef",
    "started_at": "2026-11-22T09:30:00+00:00",
    "duration_s": 3000.0,
    "energy_kwh": 0.175,  # 150*1200 + 250*1800 = 630000 J
    "devices": [
        {"id": "gpu:0", "kind": "gpu", "name": "x", "energy_j": 480000.0, "method": "m",
         "measured": True},
        {"id": "cpu", "kind": "cpu", "name": "y", "energy_j": 150000.0, "method": "m",
         "measured": False},
    ],  # fmt: skip
    "timeline": {"t_s": [0.0, 1200.0, 3000.0], "power_w": {"gpu:0": [100.0, 200.0],
                                                           "cpu": [50.0, 50.0]}},
}  # fmt: skip
# Hand computation: 180000 J @100 + 150000 J @100 (09:50-10:00) + 300000 J @300 (10:00-10:20)
EMISSIONS_G_IT = (180000 * 100 + 150000 * 100 + 300000 * 300) / 3.6e6  # 34.1666... g
EFFECTIVE = EMISSIONS_G_IT / (630000 / 3.6e6)  # 195.238... g/kWh
TIME_WEIGHTED = (1800 * 100 + 1200 * 300) / 3000  # 180
PLAIN_MEAN = (100 + 300) / 2  # rows in force: 09:00 and 10:00


@pytest.fixture
def plain(tmp_path):
    p = tmp_path / "grid.csv"
    p.write_text(PLAIN, encoding="utf-8")
    return p


def write(tmp_path, text, name="f.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_plain_format(plain):
    h = read_intensity_csv(plain)
    assert h.format == "plain"
    assert h.values == (100.0, 300.0, 200.0)
    assert h.starts_s[1] - h.starts_s[0] == 3600.0
    assert h.starts_s[2] - h.starts_s[1] == 3600.0  # +01:00 honoured
    assert h.step_s == 3600.0 and h.ends_s[-1] == h.starts_s[-1] + 3600.0
    assert h.zone is None


def test_electricitymaps_export_life_cycle_default_and_direct(tmp_path):
    p = write(tmp_path, "\ufeff" + EM_HEADER + EM_ROWS)
    lca = read_intensity_csv(p)
    assert (lca.format, lca.basis, lca.zone) == ("electricitymaps", "life-cycle", "DE")
    assert lca.values == (100.0, 300.0, 200.0)
    assert lca.column == "Carbon Intensity gCO₂eq/kWh (LCA)"
    direct = read_intensity_csv(p, basis="direct")
    assert direct.values == (80.0, 250.0, 170.0)
    # naive timestamps in the (UTC) column are UTC: same instants as the plain file
    assert lca.starts_s == read_intensity_csv(write(tmp_path, PLAIN, "p.csv")).starts_s


@pytest.mark.parametrize(
    "lca_header",
    [
        "Carbon intensity gCO₂eq/kWh (Life cycle)",
        "carbon intensity gco2eq/kwh (life cycle assessment)",
        "CARBON INTENSITY GCO₂EQ/KWH (LCA)",
    ],
)
def test_header_aliases(tmp_path, lca_header):
    text = (
        f"Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
        f"{lca_header}\n2026-11-22 09:00:00,Sweden,Sweden,SE,2.5,30.0\n"
    )
    h = read_intensity_csv(write(tmp_path, text))
    assert h.values == (30.0,) and h.zone == "SE" and h.step_s == 3600.0


BAD_FILES = [
    ("", r"f\.csv, line 1: empty file"),
    ("time,value\n2026-11-22T09:00:00Z,1\n", r"line 1: unrecognised header"),
    (
        "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct)\n2026-11-22 09:00:00,DE,1\n",
        r"line 1: expected one life-cycle carbon-intensity column",
    ),
    ("timestamp,g_per_kwh\n", r"line 2: no data rows"),
    ("timestamp,g_per_kwh\nyesterday,100\n", r"line 2: cannot parse timestamp 'yesterday'"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00,100\n", r"line 2: .*no time zone"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,abc\n", r"line 2: intensity 'abc' is not a number"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,\n", r"line 2: intensity '' is not a number"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,-5\n", r"line 2: .*finite number > 0"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,0\n", r"line 2: .*finite number > 0"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z,nan\n", r"line 2: .*finite number > 0"),
    ("timestamp,g_per_kwh\n2026-11-22T09:00:00Z\n", r"line 2: expected 2 columns, found 1"),
    (
        "timestamp,g_per_kwh\n2026-11-22T10:00:00Z,1\n2026-11-22T09:00:00Z,1\n",
        r"line 3: timestamp 2026-11-22T09:00:00Z is out of order",
    ),
    (
        "timestamp,g_per_kwh\n2026-11-22T10:00:00Z,1\n2026-11-22T11:00:00+01:00,1\n",
        r"line 3: timestamp 2026-11-22T11:00:00\+01:00 is duplicate",
    ),
    (
        EM_HEADER + EM_ROWS.replace("11:00:00,Germany,Germany,DE", "11:00:00,France,France,FR"),
        r"line 4: zone 'FR' differs from 'DE'",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_malformed_files_name_file_line_and_problem(tmp_path, text, message):
    with pytest.raises(IntensityFileError, match=message):
        read_intensity_csv(write(tmp_path, text))


def test_missing_file_and_bad_basis(tmp_path, plain):
    with pytest.raises(IntensityFileError, match=r"cannot read intensity file .*nope\.csv"):
        read_intensity_csv(tmp_path / "nope.csv")
    with pytest.raises(RegionError, match="basis must be one of life-cycle, direct"):
        read_intensity_csv(plain, basis="lca")


def test_integration_with_a_step_change_mid_run(plain):
    stats = integrate(read_intensity_csv(plain), RECORD["started_at"], 3000.0, RECORD["timeline"])
    assert stats["g_per_kwh"] == pytest.approx(EFFECTIVE, rel=1e-12)
    assert stats["time_weighted_g_per_kwh"] == pytest.approx(TIME_WEIGHTED, rel=1e-12)
    assert stats["plain_mean_g_per_kwh"] == PLAIN_MEAN
    assert stats["timeline_energy_kwh"] == pytest.approx(0.175, rel=1e-12)
    assert stats["rows_used"] == 2 and stats["weighting"] == "energy"


def test_emissions_for_hourly_applies_pue(plain):
    setup = fc.resolve(intensity_csv=plain, pue=1.5)
    out = fc.emissions_for(RECORD, setup)
    assert out["emissions_kg"] == pytest.approx(EMISSIONS_G_IT * 1.5 / 1000, rel=1e-12)
    c = out["carbon"]
    assert c["kind"] == "hourly" and c["basis"] == "life-cycle"
    assert c["hourly"]["time_weighted_g_per_kwh"] == pytest.approx(TIME_WEIGHTED)
    assert c["hourly"]["plain_mean_g_per_kwh"] == PLAIN_MEAN
    assert out["carbon_intensity_g_per_kwh"] == pytest.approx(EFFECTIVE)
    assert c["facility_energy_kwh"] == pytest.approx(0.2625)


def test_without_timeline_time_weighting_is_used_and_noted(plain):
    record = {**RECORD, "timeline": None}
    out = fc.emissions_for(record, fc.resolve(intensity_csv=plain))
    assert out["emissions_kg"] == pytest.approx(0.175 * TIME_WEIGHTED / 1000, rel=1e-12)
    assert any("no power timeline" in n for n in out["notes"])


def test_run_outside_the_file_leaves_emissions_empty_with_a_note(plain):
    record = {**RECORD, "started_at": "2026-11-22T11:30:00+00:00"}  # ends 12:20, file ends 12:00
    out = fc.emissions_for(record, fc.resolve(intensity_csv=plain))
    assert out["emissions_kg"] is None
    assert any("no intensity at 2026-11-22T12:00:00+00:00" in n and "recompute" in n
               for n in out["notes"])  # fmt: skip


def test_gap_in_the_file_is_an_error(tmp_path):
    gap = write(
        tmp_path, "timestamp,g_per_kwh\n2026-11-22T09:00:00Z,100\n2026-11-22T11:00:00Z,300\n"
    )
    h = read_intensity_csv(gap)
    assert h.step_s == 7200.0  # one interval: that is the file's step, no gap
    gap2 = write(
        tmp_path,
        "timestamp,g_per_kwh\n2026-11-22T08:00:00Z,1\n2026-11-22T09:00:00Z,100\n"
        "2026-11-22T11:00:00Z,300\n",
        "gap2.csv",
    )
    with pytest.raises(CoverageError, match=r"no intensity at 2026-11-22T10:00:00\+00:00 \(a gap"):
        integrate(read_intensity_csv(gap2), RECORD["started_at"], 3000.0, RECORD["timeline"])


def test_one_stray_row_does_not_set_the_step_and_is_warned_about(tmp_path):
    rows = ["2026-11-22T08:00:00Z,100", "2026-11-22T09:00:00Z,200", "2026-11-22T09:05:00Z,300",
            "2026-11-22T10:00:00Z,400", "2026-11-22T11:00:00Z,500"]  # fmt: skip
    path = write(tmp_path, "timestamp,g_per_kwh\n" + "\n".join(rows) + "\n")
    with pytest.warns(FootprintWarning, match=r"line 4 fall between the file's usual 3600 s"):
        h = read_intensity_csv(path)
    assert h.step_s == 3600.0
    # every row holds until the next: no hour turned into 5 minutes and a gap
    assert list(h.ends_s[:-1]) == list(h.starts_s[1:])


def test_zone_mismatch_warns_and_is_recorded(tmp_path):
    p = write(tmp_path, EM_HEADER + EM_ROWS)
    with pytest.warns(FootprintWarning, match=r"zone 'DE' differs from the run's region 'FR'"):
        setup = fc.resolve("FR", intensity_csv=p)
    assert any("zone 'DE' differs" in n for n in setup.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc.resolve("DE", intensity_csv=p)
        fc.resolve("aws:eu-central-1", intensity_csv=p)  # grid region DE


def test_csv_and_intensity_together_is_an_error(plain):
    with pytest.raises(RegionError, match="either carbon_intensity= .* or intensity_csv="):
        fc.resolve(carbon_intensity=100, intensity_csv=plain)


def test_recompute_applies_a_file_to_a_finished_run(plain):
    first = {**RECORD, "notes": ["sensor: estimated cpu"]}
    first.update({k: v for k, v in fc.emissions_for(first, fc.resolve("DE", pue=1.5)).items()
                  if k != "notes"})  # fmt: skip
    assert first["emissions_kg"] == pytest.approx(0.175 * 1.5 * 380.95 / 1000)
    new = fc.recompute(first, plain)
    assert new.emissions_kg == pytest.approx(EMISSIONS_G_IT * 1.5 / 1000, rel=1e-12)
    assert new.carbon.region == "DE" and new.carbon.pue == 1.5
    assert new.carbon.kind == "hourly"
    assert new.notes[0] == "sensor: estimated cpu"
    assert any("recomputed (previous emissions_kg" in n for n in new.notes)
    assert first["carbon"]["kind"] == "country"  # the input record is not modified


def test_emissions_for_without_setup_rereads_the_recorded_file(plain):
    setup = fc.resolve(intensity_csv=plain)
    record = {**RECORD, **fc.emissions_for(RECORD, setup)}
    again = fc.emissions_for(record)
    assert again["emissions_kg"] == record["emissions_kg"]
    plain.write_text(PLAIN.replace(",300", ",301"), encoding="utf-8")
    with pytest.raises(RegionError, match="changed since the run was recorded"):
        fc.emissions_for(record)
