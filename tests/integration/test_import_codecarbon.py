"""Import CodeCarbon's emissions.csv: a file CodeCarbon itself wrote, and hand-made edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

import footprint
import footprint.carbon as fc
from footprint.cli import main
from footprint.importers import ImportFormatError
from footprint.importers.codecarbon import import_codecarbon, read_codecarbon_csv
from footprint.store import Store

# Two offline CodeCarbon runs in Paris time; the first flushes once (a cumulative extra row) and
# has PUE 1.5. Prints what CodeCarbon itself reported, to compare the import with.
_WRITER = textwrap.dedent(
    """
    import json, sys, time, codecarbon
    out = sys.argv[1]
    res = []
    for name, pue, flush in (("fp32", 1.5, True), ("int8", 1.0, False)):
        t = codecarbon.OfflineEmissionsTracker(
            country_iso_code="FRA", output_dir=out, save_to_file=True, log_level="error",
            project_name=name, pue=pue)
        t0 = time.time()
        t.start()
        time.sleep(0.3)
        if flush:
            t.flush()
            time.sleep(0.2)
        t.stop()
        t1 = time.time()
        d = t.final_emissions_data
        res.append(dict(name=name, t0=t0, t1=t1, run_id=str(t.run_id), pue=pue,
                        energy_kwh=d.energy_consumed, emissions_kg=d.emissions,
                        duration_s=d.duration, cpu_kwh=d.cpu_energy, ram_kwh=d.ram_energy))
    print(json.dumps(res))
    """
)


@pytest.fixture(scope="module")
def codecarbon_csv(tmp_path_factory):
    out = tmp_path_factory.mktemp("codecarbon")
    env = {**__import__("os").environ, "TZ": "Europe/Paris"}
    proc = subprocess.run(
        [sys.executable, "-c", _WRITER, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return out / "emissions.csv", json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # runs the real CodeCarbon
def test_a_file_written_by_codecarbon(codecarbon_csv):
    path, truth = codecarbon_csv
    records = read_codecarbon_csv(path, tz="Europe/Paris")
    assert [r.name for r in records] == ["fp32", "int8"]  # flush()'s partial row not a run
    for rec, cc in zip(records, truth):
        assert rec.tags["codecarbon_run_id"] == cc["run_id"]
        assert rec.imported_from["tool"] == "codecarbon"
        assert rec.imported_from["version"] == "3.3.2"
        assert rec.status == "completed" and rec.pue == cc["pue"]
        # CodeCarbon's energy includes its PUE; footprint's energy_kwh is IT energy before PUE
        assert rec.energy_kwh == pytest.approx(cc["energy_kwh"] / cc["pue"], rel=1e-12)
        assert rec.emissions_kg == pytest.approx(cc["emissions_kg"], rel=1e-12)
        assert rec.duration_s == pytest.approx(cc["duration_s"], rel=1e-12)
        devices = {d.id: d for d in rec.devices}
        assert set(devices) == {"cpu", "ram"}  # no GPU on this machine
        assert devices["cpu"].energy_j == pytest.approx(cc["cpu_kwh"] / cc["pue"] * 3.6e6)
        assert devices["ram"].energy_j == pytest.approx(cc["ram_kwh"] / cc["pue"] * 3.6e6)
        assert all(d.measured is False for d in devices.values())
        # IT energy x PUE x intensity gives back CodeCarbon's emissions
        assert rec.energy_kwh * rec.pue * rec.carbon_intensity_g_per_kwh / 1000 == (
            pytest.approx(cc["emissions_kg"], rel=1e-12)
        )
        # timestamp = end in Paris wall-clock time, whole seconds; start = end - duration
        started = datetime.fromisoformat(rec.started_at)
        ended = datetime.fromisoformat(rec.ended_at)
        assert started.utcoffset() == timedelta(0)
        assert ended - started == timedelta(seconds=cc["duration_s"])
        assert cc["t1"] - 1.0 <= ended.timestamp() <= cc["t1"]
        assert cc["t0"] - 1.0 <= started.timestamp() <= cc["t1"]
    assert any("flush()" in n for n in records[0].notes)


@pytest.mark.slow  # runs the real CodeCarbon
def test_the_zone_decides_the_start(codecarbon_csv):
    path, truth = codecarbon_csv
    paris = read_codecarbon_csv(path, tz="Europe/Paris")[0]
    utc = read_codecarbon_csv(path, tz="UTC")[0]
    shift = datetime.fromisoformat(utc.started_at) - datetime.fromisoformat(paris.started_at)
    # Paris is UTC+1 or UTC+2 on the day the file was written
    offset = datetime.fromtimestamp(truth[0]["t1"], timezone.utc).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert shift == offset.utcoffset()
    with pytest.raises(ImportFormatError, match="unknown time zone 'Mars/Olympus'"):
        read_codecarbon_csv(path, tz="Mars/Olympus")


@pytest.mark.slow  # runs the real CodeCarbon
def test_imported_runs_join_the_leaderboard(codecarbon_csv, store):
    path, truth = codecarbon_csv
    common = {"task": "digits", "model": "mlp", "counts": {"queries": 1000}, "tz": "Europe/Paris"}
    fp32 = [r for r in read_codecarbon_csv(path, **common) if r.name == "fp32"]
    int8 = [r for r in read_codecarbon_csv(path, **common) if r.name == "int8"]
    st = Store(store)
    for r in fp32:
        st.save(r.replace(variant="fp32", baseline=True, metrics={"accuracy": 0.95}))
    for r in int8:
        st.save(r.replace(variant="int8", metrics={"accuracy": 0.93}))
    df = footprint.leaderboard(task="digits", quality="accuracy", per="queries", store=store)
    rows = df.set_index("variant")
    for variant, cc in zip(("fp32", "int8"), truth):
        # whole-run IT energy per 1,000 queries, in Wh; emissions as CodeCarbon reported them
        assert rows.loc[variant, "energy_wh_per_1k"] == pytest.approx(
            cc["energy_kwh"] / cc["pue"] * 1000
        )
        assert rows.loc[variant, "emissions_g_per_1k"] == pytest.approx(cc["emissions_kg"] * 1000)
        assert bool(rows.loc[variant, "imported"]) is True
    assert any("imported" in n for n in df.attrs["notes"])


@pytest.mark.slow  # runs the real CodeCarbon
def test_cli_import_is_idempotent(codecarbon_csv, store, capsys):
    path, _ = codecarbon_csv
    argv = ["import-codecarbon", str(path), "--store", str(store), "--tz", "Europe/Paris"]
    more = ["--task", "digits", "--model", "mlp", "--count", "queries=500", "--metric", "f1=0.8"]
    assert main(argv + more) == 0
    assert "imported 2 run(s)" in capsys.readouterr().out
    assert main(argv + more) == 0  # same ids: updated, not duplicated
    records = Store(store).records()
    assert len(records) == 2
    assert {r.task for r in records} == {"digits"}
    assert all(r.counts == {"queries": 500.0} and r.metrics == {"f1": 0.8} for r in records)
    assert main(argv + ["--count", "queries"]) == 2
    assert "--count must be UNIT=NUMBER" in capsys.readouterr().err
    # importing the file again without the flags keeps what the first import was told
    assert main(argv) == 0
    again = Store(store).records()
    assert {(r.task, r.model) for r in again} == {("digits", "mlp")}
    assert all(r.counts == {"queries": 500.0} and r.metrics == {"f1": 0.8} for r in again)
    # and a flag given again replaces its field only
    assert main(argv + ["--model", "cnn"]) == 0
    assert {(r.task, r.model) for r in Store(store).records()} == {("digits", "cnn")}


HEADER = "timestamp,project_name,run_id,duration,emissions,energy_consumed,cpu_energy,ram_energy\n"


def test_hand_made_files(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text(HEADER + "2026-03-01T12:00:10,p,,10,0.001,0.02,0.015,0.005\n")
    (rec,) = read_codecarbon_csv(ok, tz="UTC")
    assert rec.started_at == "2026-03-01T12:00:00+00:00"
    assert rec.ended_at == "2026-03-01T12:00:10+00:00"
    assert rec.energy_kwh == pytest.approx(0.02) and rec.pue == 1.0
    assert rec.carbon_intensity_g_per_kwh == pytest.approx(50.0)
    # a timestamp with an offset is taken as is, whatever tz says
    aware = tmp_path / "aware.csv"
    aware.write_text(HEADER + "2026-03-01T12:00:10+02:00,p,r1,10,0.001,0.02,0.015,0.005\n")
    assert read_codecarbon_csv(aware, tz="UTC")[0].started_at == "2026-03-01T10:00:00+00:00"

    bad = {
        "notcc.csv": ("a,b\n1,2\n", "lacks column.*timestamp, duration"),
        "empty.csv": (HEADER, "header but no runs"),
        "neg.csv": (HEADER + "2026-03-01T12:00:10,p,,10,-1,0.02,,\n", "'emissions'.*>= 0"),
        "text.csv": (HEADER + "2026-03-01T12:00:10,p,,ten,0,0,,\n", "line 2.*'duration' is 'ten'"),
        "time.csv": (HEADER + "yesterday,p,,10,0,0,,\n", "timestamp 'yesterday'"),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ImportFormatError, match=message):
            read_codecarbon_csv(tmp_path / name, tz="UTC")
    with pytest.raises(ImportFormatError, match="cannot read"):
        read_codecarbon_csv(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"counts\['queries'\] must be >= 0"):
        read_codecarbon_csv(ok, counts={"queries": -5})


def test_import_saves_to_the_store(tmp_path, store):
    ok = tmp_path / "ok.csv"
    ok.write_text(HEADER + "2026-03-01T12:00:10,p,run-a,10,0.001,0.02,0.015,0.005\n")
    (rec,) = import_codecarbon(ok, store=store, tz="UTC")
    assert Store(store).get(rec.id[:8]).imported_from["row"]["run_id"] == "run-a"


def test_imported_run_keeps_region_and_pue_through_whatif_and_recompute(
    codecarbon_csv, store, capsys
):
    path, truth = codecarbon_csv
    import_codecarbon(path, store=store, tz="Europe/Paris")
    fp32 = Store(store).get(read_codecarbon_csv(path, tz="Europe/Paris")[0].id)
    cc = truth[0]
    assert cc["pue"] == 1.5
    # CodeCarbon's country_iso_code FRA -> FR, with its PUE and implied intensity as provenance
    assert fp32.region == "FR"
    c = fp32.carbon
    assert (c.region, c.pue, c.pue_source, c.kind) == (
        "FR", 1.5, "CodeCarbon pue column", "imported",
    )  # fmt: skip
    assert c.source.startswith("CodeCarbon 3.3.2")
    assert c.carbon_intensity_g_per_kwh == pytest.approx(
        cc["emissions_kg"] / cc["energy_kwh"] * 1000
    )
    it_kwh = cc["energy_kwh"] / 1.5
    de = fc.carbon_intensity("DE").g_per_kwh
    fr = fc.carbon_intensity("FR").g_per_kwh

    # whatif: same IT energy x CodeCarbon's PUE x each region's intensity
    rows = {r["region"]: r for r in fc.whatif(fp32, ["FR", "DE"])}
    assert rows["DE"]["emissions_kg"] == pytest.approx(it_kwh * 1.5 * de / 1000)
    assert rows["FR"]["own_region"] and not rows["FR"]["this_run"]  # CodeCarbon's figure
    run = fp32.id[:8]
    assert main(["whatif", run, "--regions", "DE", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "PUE 1.5" in out and "this run:" in out and "CodeCarbon 3.3.2" in out

    # recompute: the PUE and region are kept, and saved
    assert main(["recompute", run, "--carbon-intensity", "100", "--store", str(store)]) == 0
    new = Store(store).get(run)
    assert new.emissions_kg == pytest.approx(it_kwh * 1.5 * 100 / 1000)
    assert (new.pue, new.region) == (1.5, "FR")
    assert new.carbon.pue_source == "CodeCarbon pue column"
    assert main(["recompute", run, "--region", "DE", "--store", str(store)]) == 0
    assert Store(store).get(run).emissions_kg == pytest.approx(it_kwh * 1.5 * de / 1000)

    # a record imported before the carbon field existed: PUE only at the top level
    old = fp32.replace(carbon=None, region=None)
    assert fc.recompute(old, region="FR").emissions_kg == pytest.approx(it_kwh * 1.5 * fr / 1000)
    rows = fc.whatif(old, ["FR"])
    assert rows[0]["emissions_kg"] == pytest.approx(it_kwh * 1.5 * fr / 1000)


def test_unknown_codecarbon_location_is_a_note(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(
        "timestamp,duration,emissions,energy_consumed,country_iso_code,pue\n"
        "2026-03-01T12:00:10,10,0.001,0.03,XXX,1.5\n"
    )
    (rec,) = read_codecarbon_csv(f, tz="UTC")
    assert rec.region is None and rec.carbon.pue == 1.5
    assert any("CodeCarbon's location (XXX) is not a region footprint knows" in n
               for n in rec.notes)  # fmt: skip


SUB = (
    "timestamp,duration,emissions,energy_consumed,cpu_energy,ram_energy,country_iso_code,"
    "region,pue\n"
)


def test_the_sub_region_is_kept_when_the_tables_have_it(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text(
        SUB + "2026-03-01T12:00:10,10,0.00179,0.01,0.008,0.002,USA,california,1.0\n"
        "2026-03-01T13:00:10,10,0.001,0.01,0.008,0.002,CAN,quebec,1.0\n"
        "2026-03-01T14:00:10,10,0.001,0.01,0.008,0.002,USA,atlantis,1.0\n"
    )
    ca, qc, unknown = read_codecarbon_csv(f, tz="UTC")
    assert (ca.region, qc.region) == ("US-CA", "CA-QC")  # was US and CA
    assert unknown.region == "US"
    assert any("sub-region 'atlantis' is not in footprint's tables" in n for n in unknown.notes)
    rows = {r["region"]: r for r in fc.whatif(ca, ["US", "US-CA"])}
    assert rows["US-CA"]["own_region"] and not rows["US"]["own_region"]


@pytest.mark.parametrize(
    ("pue", "message"),
    [("0.5", r"'pue' is '0.5'; a PUE is facility energy / IT energy, at least 1"),
     ("0", r"'pue' is '0'; a PUE")],
)  # fmt: skip
def test_a_pue_below_one_is_refused(tmp_path, pue, message):
    f = tmp_path / "e.csv"
    f.write_text(SUB + f"2026-03-01T12:00:10,10,0.001,0.01,0.008,0.002,FRA,,{pue}\n")
    with pytest.raises(ImportFormatError, match=message):
        read_codecarbon_csv(f, tz="UTC")


def test_doubtful_rows_are_imported_with_a_note_and_absurd_ones_refused(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(
        SUB + "2026-03-01T12:00:10,10,0.001,0.01,0.008,0.002,FRA,,\n"  # no PUE
        "2026-03-01T13:00:10,10,0.001,0.05,0.008,0.002,FRA,,1.0\n"  # 0.05 kWh vs 0.01 in parts
        "2026-03-01T14:00:10,10,0.001,0,0,0,FRA,,1.0\n"  # emissions for no energy
    )
    no_pue, parts, nothing = read_codecarbon_csv(f, tz="UTC")
    assert no_pue.pue == 1.0 and "CodeCarbon wrote no PUE: 1.0 assumed" in no_pue.notes
    assert any("differs from the sum of its cpu, gpu and ram energies" in n for n in parts.notes)
    assert any("emissions (0.001 kg) for no energy" in n for n in nothing.notes)
    huge = tmp_path / "huge.csv"
    huge.write_text(SUB + "2026-03-01T12:00:10,1e300,0.001,0.01,0.008,0.002,FRA,,1.0\n")
    with pytest.raises(ImportFormatError, match="'duration' is '1e300' seconds, which does not"):
        read_codecarbon_csv(huge, tz="UTC")


def test_local_times_at_a_dst_change_are_noted(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(
        SUB + "2026-10-25T02:30:00,10,0.001,0.01,0.008,0.002,FRA,,1.0\n"  # happens twice
        "2026-03-29T02:30:00,10,0.001,0.01,0.008,0.002,FRA,,1.0\n"  # never happens
        "2026-06-01T02:30:00,10,0.001,0.01,0.008,0.002,FRA,,1.0\n"
    )
    twice, never, fine = read_codecarbon_csv(f, tz="Europe/Paris")
    assert any("ambiguous in Europe/Paris" in n for n in twice.notes)
    assert twice.ended_at == "2026-10-25T00:30:00+00:00"  # the first (summer-time) 02:30
    assert any("does not exist in Europe/Paris" in n for n in never.notes)
    assert not any("Europe/Paris (" in n for n in fine.notes)
