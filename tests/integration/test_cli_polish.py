"""What a new user trips over on the command line (issue 17): readable units, tables that fit
80 columns, runs you can filter, show and delete, sub-stores found, wrapped commands that can
enter leaderboards, and ``--version``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.cli import main
from footprint.formatting import fmt_emissions, fmt_energy_j
from footprint.store import Store

REPO = Path(__file__).resolve().parents[2]


def _runs(clock, store: Path) -> list:
    made = []
    for name, task, model, variant, status in [
        ("bert-fp32", "sst2", "bert", "fp32", "completed"),
        ("bert-int8", "sst2", "bert", "int8", "completed"),
        ("resnet", "imagenet", "resnet50", None, "failed"),
    ]:
        sensor = ConstantPowerSensor(clock, 0.5, "gpu:0")
        tracker = footprint.track(
            name, sensors=[sensor], _clock=clock, store=store, task=task, model=model,
            variant=variant, region="FR",
        )  # fmt: skip
        with tracker as run:
            clock.advance(0.02)  # 10 mJ: a person reads "10.0 mJ", never 2.78e-09 kWh
            run.count(queries=100)
            if status == "failed":
                run.fail("boom")
        made.append(run.record)
    return made


@pytest.mark.parametrize(
    "energy_j,text",
    [(1.02e-05, "10.2 µJ"), (0.0102, "10.2 mJ"), (5.0, "5.00 J"), (3600.0, "1.00 Wh"),
     (9e6, "2.50 kWh"), (0.0, "0 J")],
)  # fmt: skip
def test_energy_reads_with_si_prefixes(energy_j, text):
    assert fmt_energy_j(energy_j) == text


@pytest.mark.parametrize(
    "kg,text",
    [(3.97e-11, "39.7 ng"), (3.97e-08, "39.7 µg"), (2e-6, "2.00 mg"), (0.5, "500 g"),
     (5.0, "5.00 kg")],
)  # fmt: skip
def test_emissions_read_with_si_prefixes(kg, text):
    assert fmt_emissions(kg) == text


@pytest.mark.slow
def test_version_through_the_real_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "footprint", "--version"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == f"footprint {footprint.__version__}"


def test_runs_filters_columns_and_csv(clock, store, capsys):
    made = _runs(clock, store)
    assert main(["runs", "--store", str(store), "--wide"]) == 0
    out = capsys.readouterr().out
    for header in ("task", "model", "variant", "status"):
        assert header in out
    assert "10.0 mJ" in out and "e-0" not in out  # no exponents for a person
    assert main(["runs", "--store", str(store), "--task", "sst2", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["variant"] for r in rows) == ["fp32", "int8"]
    assert main(["runs", "--store", str(store), "--status", "failed", "--format", "json"]) == 0
    (failed,) = json.loads(capsys.readouterr().out)
    assert failed["id"] == made[2].id
    args = ["runs", "--store", str(store), "--format", "json"]
    assert main([*args, "--name", "int8"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["bert-int8"]
    assert main([*args, "--model", "resnet50", "--since", "1d"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main([*args, "--since", "2999-01-01"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["runs", "--store", str(store), "--variant", "nope"]) == 0
    assert "no runs matching those filters" in capsys.readouterr().out
    assert main(["runs", "--store", str(store), "--since", "yesterday"]) == 2
    assert "--since must be a date or time" in capsys.readouterr().err
    assert main(["runs", "--store", str(store), "--status", "done"]) == 2
    assert "--status must be one of" in capsys.readouterr().err


@pytest.mark.slow
def test_tables_fit_80_columns_without_breaking_a_token(clock, store):
    made = _runs(clock, store)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"}
    for args in (
        ["runs"],
        ["leaderboard", "--quality", "accuracy", "--per", "queries", "--status", "completed"],
    ):
        if args[0] == "leaderboard":
            for r in made[:2]:  # a quality to rank on
                Store(store).save(r.replace(metrics={"accuracy": 0.9}))
        out = subprocess.run(
            [sys.executable, "-m", "footprint", *args, "--store", str(store)],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        table = [line for line in out.stdout.splitlines() if line[:1] in "┏┃┡│└"]
        assert table and all(len(line) <= 80 for line in table)
        if args[0] == "runs":
            assert all(r.id[:8] in out.stdout for r in made)  # ids whole, one line each
            assert "10.0 mJ" in out.stdout
            assert "--wide for all" in out.stdout  # it had to leave columns out: it says so
        else:
            assert "100 mJ" in out.stdout  # 10 mJ over 100 queries, per 1,000: 100 mJ


def test_show_one_run(clock, store, capsys):
    made = _runs(clock, store)
    assert main(["show", made[1].id[:6], "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"run {made[1].id}  bert-int8  (completed)" in out
    assert "task / model / variant: sst2 / bert / int8" in out
    assert "gpu:0" in out and "measured, fake-counter" in out
    assert "queries: 100, 100 µJ each" in out
    assert "CO2e in FR at" in out and "notes:" not in out or "notes:" in out
    assert main(["show", "ffffffff", "--store", str(store)]) != 0


def test_rm_asks_first_and_refuses_without_a_terminal(clock, store, capsys):
    made = _runs(clock, store)
    # pytest's stdin is not a terminal: no --yes, nothing deleted
    assert main(["rm", made[0].id[:8], "--store", str(store)]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert len(Store(store).records()) == 3
    assert main(["rm", made[0].id[:8], made[1].id[:8], "--store", str(store), "--yes"]) == 0
    assert "deleted 2 runs" in capsys.readouterr().out
    assert [r.id for r in Store(store).records()] == [made[2].id]
    assert main(["rm", "ffffffff", "--store", str(store), "--yes"]) != 0  # nothing half-done


@pytest.mark.slow
def test_rm_confirms_on_a_terminal(clock, store):
    import pty

    made = _runs(clock, store)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real entry point on a terminal
        os.environ["PYTHONPATH"] = str(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "footprint", "rm", made[0].id[:8],
                                  "--store", str(store)])  # fmt: skip
    out = b""
    while b"[y/N]" not in out:
        out += os.read(fd, 1024)
    os.write(fd, b"y\n")
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and b"deleted 1 run" in out
    assert made[0].id not in [r.id for r in Store(store).records()]


def test_reading_a_store_says_where_its_sub_stores_are(clock, tmp_path, capsys):
    outer = tmp_path / "footprint-runs"
    _runs(clock, outer / "demo-20261202-1300")
    assert main(["runs", "--store", str(outer)]) == 0
    out = capsys.readouterr().out
    assert "no runs in" in out
    assert "1 run store inside this one (demo-20261202-1300; 3 runs)" in out
    assert f"--store {outer / 'demo-20261202-1300'}" in out


@pytest.mark.slow
def test_footprint_run_can_enter_leaderboards_and_records_its_command(tmp_path):
    store = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "footprint", "run", "--store", str(store)]
    cmd = [
        *base, "--task", "sst2", "--model", "bert", "--variant", "int8", "--baseline",
        "--count", "queries=1000", "--metric", "accuracy=0.91", "--",
        sys.executable, "-c", "pass", "--token", "abc123", "--api-key=k3y", "HF_TOKEN=t0k",
    ]  # fmt: skip
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
    (r,) = Store(store).records()
    assert (r.task, r.model, r.variant, r.baseline) == ("sst2", "bert", "int8", True)
    assert r.counts == {"queries": 1000} and r.metrics == {"accuracy": 0.91}
    assert r.tags["cwd"] == str(tmp_path) or r.tags["cwd"]
    assert "--token '***'" in r.tags["command"] and "--api-key=***" in r.tags["command"]
    assert "HF_TOKEN=***" in r.tags["command"]
    assert "abc123" not in r.tags["command"] and "k3y" not in r.tags["command"]
    quiet = [*base, "--no-record-command", "--", sys.executable, "-c", "pass"]
    assert subprocess.run(quiet, env=env, capture_output=True, timeout=120).returncode == 0
    newest = Store(store).records()[0]
    assert "command" not in newest.tags and "cwd" not in newest.tags
    bad = subprocess.run(
        [*base, "--count", "queries", "--", "true"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--count must be UNIT=N" in bad.stderr


def test_whatif_without_regions_is_a_summary_and_all_gives_every_region(clock, store, capsys):
    made = _runs(clock, store)
    assert main(["whatif", made[0].id[:8], "--store", str(store), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert main(["whatif", made[0].id[:8], "--store", str(store), "--format", "json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert 20 <= len(summary) <= 40 < len(every)
    by = sorted(every, key=lambda r: r["g_per_kwh"])
    names = [r["region"] for r in summary]
    assert [r["region"] for r in by[:10]] == names[:10]  # the lowest ten, lowest first
    assert {r["region"] for r in by[-10:]} <= set(names)
    assert "FR" in names and "DE" in names  # the run's own, and the references
    assert main(["whatif", made[0].id[:8], "--store", str(store)]) == 0
    assert "--all for every region" in capsys.readouterr().out


def test_recompute_with_a_new_pue_alone(clock, store, capsys):
    made = _runs(clock, store)
    assert main(["recompute", made[0].id[:8], "--pue", "1.5", "--store", str(store)]) == 0
    capsys.readouterr()
    again = Store(store).get(made[0].id)
    assert again.pue == 1.5 and again.emissions_kg == pytest.approx(made[0].emissions_kg * 1.5)


def test_a_script_can_find_out_before_its_work_that_its_report_would_fail(tmp_path):
    from footprint.reporting import ReportError, ReportExistsError

    out = tmp_path / "reports" / "r.html"
    assert footprint.check_report(out) == out and out.parent.is_dir()  # made, nothing written
    out.write_text("an earlier report")
    with pytest.raises(ReportExistsError, match="choose another file .*or pass overwrite=True"):
        footprint.check_report(out)
    assert footprint.check_report(out, overwrite=True) == out
    with pytest.raises(ReportError, match="is a directory"):
        footprint.check_report(tmp_path)


def test_report_on_a_store_of_sub_stores_says_how_to_open_one(clock, tmp_path, capsys):
    outer = tmp_path / "footprint-runs"
    _runs(clock, outer / "demo-20261202-1300")
    assert main(["report", "--store", str(outer), "-o", str(tmp_path / "r.html")]) != 0
    err = capsys.readouterr().err
    assert "1 run store inside it (demo-20261202-1300)" in err
    assert f"--store {outer / 'demo-20261202-1300'}" in err


def test_every_printing_command_writes_a_file_with_out_and_force(clock, store, tmp_path, capsys):
    made = _runs(clock, store)
    target = tmp_path / "out" / "runs.csv"
    assert main(["runs", "--store", str(store), "--format", "csv", "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().err
    assert len(list(csv.DictReader(target.open()))) == 3
    # an existing file is refused before any work, and replaced with --force
    assert main(["runs", "--store", str(store), "--format", "json", "-o", str(target)]) == 2
    assert "already exists: pass --force" in capsys.readouterr().err
    assert target.read_text().startswith("id,name")
    args = ["runs", "--store", str(store), "--format", "json", "-o", str(target), "--force"]
    assert main(args) == 0
    assert len(json.loads(target.read_text())) == 3
    for argv, name in (
        (["show", made[0].id[:8]], "show.txt"),
        (["card", made[0].id[:8]], "card.md"),
        (["whatif", made[0].id[:8], "--regions", "FR,DE"], "whatif.txt"),
    ):
        path = tmp_path / name
        assert main([*argv, "--store", str(store), "-o", str(path)]) == 0
        assert path.read_text().strip() and capsys.readouterr().out == ""


def _md_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown table's body (header and rule left out)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines and set(lines[1]) <= set("|-"), text
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def test_whatif_regions_and_sensors_take_every_format_and_out(clock, store, tmp_path, capsys):
    made = _runs(clock, store)
    commands = {
        "whatif": ["whatif", made[0].id[:8], "--regions", "FR,PL", "--store", str(store)],
        "regions": ["regions", "fra"],
        "sensors": ["sensors", "--powercap-root", str(tmp_path / "none")],
    }
    for name, argv in commands.items():
        assert main([*argv, "--format", "csv"]) == 0, name
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert rows, name
        assert main([*argv, "--format", "markdown"]) == 0, name
        assert _md_rows(capsys.readouterr().out), name
        assert main([*argv, "--format", "json"]) == 0, name
        json.loads(capsys.readouterr().out)
        assert main([*argv, "--format", "yaml"]) == 2, name
        assert (
            "--format must be table, json, csv or markdown, got 'yaml'" in capsys.readouterr().err
        )
        out = tmp_path / f"{name}.md"
        assert main([*argv, "--format", "markdown", "-o", str(out)]) == 0, name
        assert _md_rows(out.read_text()) and capsys.readouterr().out == ""
        assert main([*argv, "-o", str(out)]) == 2, name  # exists: refused without --force
        assert main([*argv, "-o", str(out), "--force"]) == 0, name
    assert main([*commands["whatif"], "--format", "csv"]) == 0
    by_region = {r["region"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert set(by_region) == {"FR", "PL"}  # csv keeps numbers whole, in the units its names say
    assert float(by_region["PL"]["emissions_kg"]) > float(by_region["FR"]["emissions_kg"])


def test_markdown_keeps_user_strings_literal(clock, store, capsys):
    sensor = ConstantPowerSensor(clock, 0.5, "gpu:0")
    with footprint.track("*bold* [x](http://e) <b>|", sensors=[sensor], _clock=clock,
                         store=store, region="FR") as run:  # fmt: skip
        clock.advance(0.02)
    assert main(["whatif", run.id[:8], "--regions", "FR", "--store", str(store),
                 "--format", "markdown"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert r"\*bold\* \[x\](http://e) \<b\>\|" in text and "<b>" not in text


def test_whatif_regions_and_sensors_fit_80_columns(clock, store, tmp_path):
    made = _runs(clock, store)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"}
    for args in (
        ["whatif", made[0].id[:8], "--store", str(store)],
        ["regions", "aws:eu"],
        ["sensors", "--powercap-root", str(tmp_path / "none")],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "footprint", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        table = [line for line in out.stdout.splitlines() if line[:1] in "┏┃┡│└"]
        assert table and all(len(line) <= 80 for line in table), args
        if args[0] == "regions":  # region ids whole, never `aws:eu-central-` / `1`
            assert "aws:eu-central-1" in out.stdout
