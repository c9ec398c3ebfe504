"""The energy regression gate (issue 18): ``footprint baseline export``, ``footprint check`` and
``footprint compare`` through the CLI, and ``footprint.compare`` as a test would use it."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor, FakeClock

import footprint
from footprint.baseline import load_baseline
from footprint.cli import main
from footprint.comparison import CompareError, side_from_records
from footprint.store import Store

REPO = Path(__file__).resolve().parents[2]


def workload(
    store: Path, cost: float, repeats: int, seed: int, *, cv: float = 0.01, model: str = "mlp",
    measured: bool = True, accuracy: float = 0.95,
) -> list:  # fmt: skip
    """``repeats`` runs of 1,000 queries (in phase "infer") on a simulated 100 W device."""
    rng = random.Random(seed)
    made = []
    for _ in range(repeats):
        clock = FakeClock()
        sensor = ConstantPowerSensor(clock, 100.0 * cost * (1 + rng.gauss(0, cv)),
                                     measured=measured)  # fmt: skip
        tracker = footprint.track(
            "serve", sensors=[sensor], _clock=clock, store=store, task="digits", model=model,
            variant="fp32", sample_interval_s=1000,
        )  # fmt: skip
        with tracker as run:
            with run.phase("load"):
                clock.advance(0.5)
            with run.phase("infer"):
                clock.advance(1.0)
                run.count(queries=1000)
            run.log(accuracy=accuracy + rng.gauss(0, 0.0005))
        made.append(run.record)
    return made


@pytest.fixture
def stores(tmp_path):
    base, same, worse = tmp_path / "base", tmp_path / "same", tmp_path / "worse"
    workload(base, 1.0, 5, seed=1, cv=0.005)
    workload(same, 1.0, 5, seed=2, cv=0.005)
    workload(worse, 1.2, 5, seed=3, cv=0.005)
    return base, same, worse


def _check(*args: str) -> int:
    return main(["check", "--per", "queries", *args])


def test_baseline_files_round_trip(stores, tmp_path, capsys):
    base, _, _ = stores
    out = tmp_path / "energy-baseline.json"
    assert main(["baseline", "export", "--store", str(base), "--task", "digits",
                 "--per", "queries", "-o", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["footprint_baseline"] == 1 and len(doc["repeats"]) == 5
    gpu = {"name": "fake gpu", "method": "fake-counter", "measured": True, "scope": "whole device"}
    assert doc["setup"]["devices"]["gpu[0]"] == gpu
    records = Store(base).records()
    direct = side_from_records(records, "store", per="queries")
    loaded = load_baseline(out, per="queries")
    by_id = {r.run_id: r for r in loaded.repeats}
    for rep in direct.repeats:  # every figure of every repeat comes back exactly
        got = by_id[rep.run_id]
        assert got.energy_j_per_unit == rep.energy_j_per_unit == pytest.approx(0.1, rel=0.05)
        assert (got.duration_s, got.power_w, dict(got.metrics)) == (
            rep.duration_s, rep.power_w, dict(rep.metrics))  # fmt: skip
    # per phase too: the infer phase's 1 s against the run's 1.5 s
    phase = load_baseline(out, per="queries", phase="infer")
    direct_phase = side_from_records(records, "store", per="queries", phase="infer")
    assert sorted(r.energy_j_per_unit for r in phase.repeats) == pytest.approx(
        sorted(r.energy_j_per_unit for r in direct_phase.repeats))  # fmt: skip
    assert all(r.duration_s == pytest.approx(1.0) for r in phase.repeats)
    # the file compares exactly as its store does
    a = footprint.compare(out, base, per="queries").energy
    b = footprint.compare(base, base, per="queries").energy
    assert (a.ratio.estimate, a.ratio.ci_low, a.ratio.ci_high) == pytest.approx(
        (b.ratio.estimate, b.ratio.ci_low, b.ratio.ci_high))  # fmt: skip
    # an existing file is refused before any work, and replaced with --force
    argv = ["baseline", "export", "--store", str(base), "--per", "queries", "-o", str(out)]
    assert main(argv) == 2
    assert main([*argv, "--force"]) == 0


def test_each_exit_code_through_the_cli(stores, tmp_path, capsys):
    base, same, worse = stores
    baseline = tmp_path / "b.json"
    main(["baseline", "export", "--store", str(base), "--per", "queries", "-o", str(baseline)])
    capsys.readouterr()
    assert _check("--baseline", str(baseline), "--store", str(same)) == 0
    assert "footprint check: PASS" in capsys.readouterr().out
    assert _check("--baseline", str(baseline), "--store", str(worse)) == 1
    assert "REGRESSION" in capsys.readouterr().out
    one = tmp_path / "one"
    workload(one, 1.0, 1, seed=9)
    assert _check("--baseline", str(baseline), "--store", str(one)) == 3
    assert "at least 2 on each side" in capsys.readouterr().out
    assert _check("--baseline", str(baseline), "--store", str(one), "--inconclusive", "pass") == 0
    assert _check("--baseline", str(baseline), "--store", str(one), "--inconclusive", "fail") == 1
    # usage and input errors are 2, never the generic 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"footprint_baseline": 1, "repeats": [')
    cases = [
        (["--baseline", str(broken), "--store", str(same)], "not valid JSON"),
        (["--baseline", str(baseline), "--store", str(same), "--task", "nope"],
         "matches --task nope"),
        (["--baseline", str(baseline), "--store", str(tmp_path / "empty")], "no run"),
        (["--baseline", str(baseline), "--store", str(same), "--max-regression", "5"],
         "write 5% if you mean that"),
        (["--baseline", str(baseline), "--store", str(same), "-o", "/proc/nope/summary.md"],
         "cannot be written"),
        (["--baseline", str(baseline), "--store", str(same), "--metric", "accuracy"],
         "--metric and --max-drop go together"),
        (["--baseline", str(baseline), "--store", str(same), "--metric", "f1",
          "--max-drop", "0.01"], "'f1' was not logged by both sides"),
    ]  # fmt: skip
    (tmp_path / "empty").mkdir()
    for args, message in cases:
        assert _check(*args) == 2, args
        assert message in capsys.readouterr().err, args
    # the real entry point gives the same codes
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for source, store, code in ((baseline, same, 0), (baseline, worse, 1), (broken, same, 2),
                                (baseline, one, 3)):  # fmt: skip
        res = subprocess.run(
            [sys.executable, "-m", "footprint", "check", "--baseline", str(source),
             "--store", str(store), "--per", "queries"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert res.returncode == code, res.stderr


def test_incomparable_setups_are_refused_naming_the_difference(stores, tmp_path, capsys):
    base, _, _ = stores
    estimated = tmp_path / "estimated"
    workload(estimated, 1.0, 5, seed=4, measured=False)
    assert _check("--baseline", str(base), "--store", str(estimated)) == 2
    err = capsys.readouterr().err
    assert "gpu[0] was measured vs estimated" in err and "method differs" in err
    assert "--allow-different-setup" in err
    # another GPU model: the record says so
    other = tmp_path / "other"
    for r in workload(tmp_path / "tmp", 1.0, 5, seed=5):
        dev = r.devices[0]
        Store(other).save(r.replace(devices=(dataclasses.replace(dev, name="NVIDIA H100"),)))
    with pytest.raises(CompareError, match="gpu\\[0\\] model differs: 'fake gpu' vs 'NVIDIA H100'"):
        footprint.compare(base, other, per="queries")
    # allowed, the summary says it loudly
    assert _check("--baseline", str(base), "--store", str(other), "--allow-different-setup",
                  "--format", "markdown") == 0  # fmt: skip
    assert "SETUPS DIFFER" in capsys.readouterr().out
    # a different unit is a different setup too (and a baseline file per queries says so)
    with pytest.raises(CompareError, match="not per 'samples'"):
        baseline = tmp_path / "b.json"
        main(["baseline", "export", "--store", str(base), "--per", "queries", "-o", str(baseline)])
        footprint.compare(baseline, base, per="samples")


def _md_table(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) >= 3 and set(lines[1]) <= set("|-"), text
    head = [c.strip() for c in lines[0].strip("|").split(" | ")]
    return [
        dict(zip(head, (c.strip() for c in line.strip("|").split(" | ")))) for line in lines[2:]
    ]


def test_the_markdown_summary_is_a_table_and_escapes_user_strings(tmp_path, capsys):
    evil = "m*x*|<b>[x](http://e)"
    base, cand = tmp_path / "base", tmp_path / "cand"
    workload(base, 1.0, 5, seed=1, cv=0.005, model=evil)
    workload(cand, 1.2, 5, seed=2, cv=0.005, model=evil, accuracy=0.90)
    summary = tmp_path / "summary.md"
    code = _check("--baseline", str(base), "--store", str(cand), "--metric", "accuracy",
                  "--max-drop", "0.5%", "--format", "markdown", "-o", str(summary))  # fmt: skip
    assert code == 1
    text = summary.read_text()
    assert text.startswith("### footprint check: REGRESSION")
    rows = _md_table(text)
    assert [r["figure"] for r in rows] == ["energy per query", "accuracy"]
    assert [r["decision"] for r in rows] == ["REGRESSION", "REGRESSION"]
    assert rows[0]["change (95 % CI)"].startswith("+")
    assert r"m\*x\*\|\<b\>\[x\](http://e)" in text and "<b>" not in text
    # json: the full result
    assert _check("--baseline", str(base), "--store", str(cand), "--format", "json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["decision"] == "regression" and len(doc["comparison"]["a"]["repeats"]) == 5


def test_compare_takes_run_ids_stores_and_baselines_in_every_format(stores, tmp_path, capsys):
    base, same, worse = stores
    a, b = Store(base).records()[0], Store(worse).records()[0]
    both = tmp_path / "both"
    Store(both).save(a)
    Store(both).save(b)
    assert main(["compare", a.id[:8], b.id[:8], "--store", str(both), "--per", "queries"]) == 0
    assert "too few repeats" in capsys.readouterr().out  # one run each: no interval
    assert main(["compare", str(base), str(worse), "--per", "queries", "--phase", "infer",
                 "--format", "json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    energy = next(f for f in doc["figures"] if f["name"] == "energy_per_unit")
    assert energy["verdict"] == "higher" and 1.15 < energy["ratio"]["estimate"] < 1.25
    assert energy["ratio"]["ci_low"] > 1 and energy["difference"]["p_value"] < 0.01
    assert main(["compare", str(base), str(same), "--per", "queries", "--format", "csv"]) == 0
    import csv
    import io

    rows = {r["figure"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["energy_per_unit"]["verdict"] == "within noise"
    assert rows["duration"]["verdict"] == "within noise"
    assert main(["compare", str(base), str(worse), "--per", "queries", "--format",
                 "markdown"]) == 0  # fmt: skip
    assert _md_table(capsys.readouterr().out)[0]["verdict"] == "higher"
    assert main(["compare", str(base), str(tmp_path / "nothing"), "--per", "queries"]) == 2
    assert "not a baseline file, a store directory or a run id" in capsys.readouterr().err


def test_the_python_api_is_what_a_test_asserts_on(stores):
    base, same, worse = stores
    ok = footprint.compare(base, same, per="queries")
    assert ok.check(max_regression=0.05).passed
    assert ok.figure("metric:accuracy").verdict == "within noise"
    bad = footprint.compare(base, worse, per="queries", phase="infer").check(max_regression=0.05)
    assert bad.decision == "regression" and bad.exit_code() == 1
    assert "costs 2" in bad.decisions[0].reason  # "costs 20.x % more (95 % CI ...)"
    with pytest.raises(CompareError, match="workloads"):
        mixed = Store(base).records() + [r.replace(variant="int8") for r in Store(worse).records()]
        footprint.compare(mixed, same, per="queries")


def test_a_side_measured_on_two_setups_is_refused(tmp_path):
    mixed = tmp_path / "mixed"
    workload(mixed, 1.0, 3, seed=1)
    workload(mixed, 1.0, 3, seed=2, measured=False)
    with pytest.raises(
        CompareError,
        match=r"measured on different setups .*gpu\[0\] was (measured|estimated) vs",
    ):
        footprint.compare(mixed, mixed, per="queries")
