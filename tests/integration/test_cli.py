"""The command line: `footprint run`, `runs`, `sensors`, and its error lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from footprint.cli import main

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier


def fp(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "footprint", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_run_passes_exit_code_through_and_prints_one_summary_line(tmp_path):
    store = tmp_path / "s"
    res = fp(
        "run",
        "--name",
        "job",
        "--carbon-intensity",
        "100",
        "--store",
        str(store),
        "--",
        sys.executable,
        "-c",
        "import sys; print('hi'); sys.exit(3)",
    )
    assert res.returncode == 3
    assert res.stdout == "hi\n"
    lines = [line for line in res.stderr.splitlines() if line.startswith("footprint: 'job'")]
    assert len(lines) == 1 and "failed" in lines[0] and "CO2e" in lines[0]
    (rec_file,) = store.glob("*.json")
    rec = json.loads(rec_file.read_text())
    assert rec["status"] == "failed" and rec["name"] == "job"
    assert rec["carbon_intensity_g_per_kwh"] == 100


def test_run_then_runs_lists_it(tmp_path, capsys):
    store = tmp_path / "s"
    assert main(["run", "--store", str(store), "--", sys.executable, "-c", "pass"]) == 0
    capsys.readouterr()
    assert main(["runs", "--store", str(store), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1 and listed[0]["status"] == "completed"
    assert main(["runs", "--store", str(store)]) == 0
    assert listed[0]["id"][:8] in capsys.readouterr().out


def test_run_charges_the_commands_tree_by_default_with_the_users_cpu_power(tmp_path):
    store = tmp_path / "s"
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    argv = ["run", "--store", str(store), "--cpu-power-w", "40", "--ram-w-per-gb", "1.5"]
    argv += ["--powercap-root", str(tmp_path / "no-rapl"), "--", sys.executable, "-c", busy]
    assert main(argv) == 0
    (rec,) = (json.loads(p.read_text()) for p in store.glob("*.json"))
    cpu = next(d for d in rec["devices"] if d["id"] == "cpu")
    assert cpu["attribution"].startswith("run's own: its process tree's CPU time")
    assert cpu["details"]["tdp_source"] == "user-supplied: cpu_power_w=40 W at full load"
    per_cpu_w = 40 / cpu["details"]["available_cpus"]
    # the child's 0.3 CPU-s (and the interpreter's start-up) at 40 W / available CPUs, no more
    assert 0.3 * per_cpu_w * 0.9 <= cpu["energy_j"] <= 1.5 * per_cpu_w
    ram = next(d for d in rec["devices"] if d["id"] == "ram")
    assert ram["details"]["w_per_gb"] == 1.5


def test_runs_on_empty_store_says_so_and_a_missing_one_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["runs", "--store", str(tmp_path / "empty")]) == 0
    assert "no runs" in capsys.readouterr().out
    # a typo in --store must not read as "no runs"
    assert main(["runs", "--store", str(tmp_path / "none")]) == 1
    assert "no run store at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--region", "Atlantis", "--", "true"], "Atlantis"),
        (["run", "--", "/no/such/command"], "cannot run '/no/such/command'"),
        (["runs", "--format", "xml"], "--format must be table, csv or json"),
        (["nosuch"], "No such command"),
    ],
)
def test_errors_are_one_clear_line_and_nonzero(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert err.splitlines()[0].startswith("footprint: error: ")


def test_sensors_reports_sources_and_devices(capsys, tmp_path):
    assert main(["sensors", "--format", "json", "--powercap-root", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {s["source"] for s in out["sources"]} >= {"nvml", "rapl"}
    # No GPU and no RAPL here: the CPU is estimated, and says so.
    cpu = [d for d in out["devices"] if d["kind"] == "cpu"]
    assert cpu and cpu[0]["measured"] is False


def test_python_dash_m_and_help():
    res = fp("--help")
    assert res.returncode == 0 and "run" in res.stdout and "sensors" in res.stdout


def test_leaderboard_and_report_flag_contended_and_single_run_rows(tmp_path, capsys):
    from unit.test_leaderboard import CONTENDED, rec

    from footprint.store import Store

    store = Store(tmp_path / "s")
    for r in [
        rec("mlp", "int8", wh_per_1k=75.0, contention=CONTENDED),
        rec("mlp", "int8", wh_per_1k=1.0),
        rec("mlp", "fp32", wh_per_1k=3.0, baseline=True),
        rec("mlp", "fp32", wh_per_1k=3.1, baseline=True),
        rec("mlp", "bf16", wh_per_1k=2.0),
    ]:
        store.save(r)
    argv = ["leaderboard", "--store", str(store.path), "--quality", "accuracy", "--per", "queries"]
    assert main([*argv, "--format", "csv"]) == 0
    rows = {line.split(",")[2]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["int8"].endswith(",1,contended") and rows["bf16"].endswith(",0,needs repeats")
    out = tmp_path / "r.html"
    report = ["report", "--store", str(store.path), "--quality", "accuracy", "--per", "queries"]
    assert main([*report, "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "contended ×1" in html and ">needs repeats</span>" in html
