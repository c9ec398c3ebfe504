"""Tests of ``footprint demo`` (footprint/demo/run.py, footprint/cli/demo.py).

The end-to-end tests run the real demo through ``footprint.cli.main`` with the hidden test
profile (``--tiny``: 1 epoch, 2 repeats of ~0.15 s per variant; every step still runs), twice:
once into a given store, once into a fresh default store. The rest is fast and needs no torch.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from footprint.cli import main
from footprint.demo.run import (
    DemoDependencyError,
    build_costs,
    check_out,
    describe_energy,
    prepare_store,
    require_demo_dependencies,
    run_demo,
)
from footprint.errors import RegionError, StoreError, UsageError
from footprint.record import RunRecord, new_record

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier

VARIANTS = {"fp32", "int8", "bf16", "pruned", "distilled"}
N_TRAIN = 1797 - 360  # digits, 20 % held out (sklearn rounds the test share up)
NOW = datetime(2026, 11, 22, 4, 5, 6, tzinfo=timezone.utc)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", *args])
    return code, out.getvalue(), err.getvalue()


def records_in(store: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(store.glob("*.json"))]


def leaderboard_rows(html: str) -> dict[str, tuple[float, float]]:
    """{model/variant: (accuracy, Wh per 1k queries)} from the report's leaderboard table."""
    table = re.search(r'id="leaderboard-table">(.*?)</table>', html, re.S)
    assert table, "the report has no leaderboard table"
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        values = re.findall(r'<td[^>]*data-v="([^"]*)"', tr)
        if not values:  # the header row
            continue
        rows[values[1]] = (float(values[3]), float(values[4]))  # rank, label, n, quality, energy
    return rows


# --- the end-to-end runs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    tmp = tmp_path_factory.mktemp("demo")
    store, out = tmp / "store", tmp / "reports" / "demo.html"
    code, stdout, stderr = run_cli("--quick", "--tiny", "--store", str(store), "-o", str(out))
    assert code == 0, stderr
    return SimpleNamespace(tmp=tmp, store=store, out=out, stdout=stdout, stderr=stderr)


def test_demo_report_has_every_variant_with_plausible_figures(first_demo):
    assert first_demo.out.is_file()
    rows = leaderboard_rows(first_demo.out.read_text(encoding="utf-8"))
    assert set(rows) == {f"mlp/{v}" for v in VARIANTS}
    assert rows["mlp/fp32"][0] > 0.8
    assert all(0.5 < accuracy <= 1.0 for accuracy, _ in rows.values())
    assert all(energy > 0 for _, energy in rows.values())


def test_demo_runs_in_the_store(first_demo):
    records = records_in(first_demo.store)
    by_step: dict[str, list[dict]] = {}
    for r in records:
        assert r["status"] == "completed" and r["task"] == "digits" and r["model"] == "mlp"
        assert r["energy_kwh"] > 0
        by_step.setdefault(r["tags"]["demo_step"], []).append(r)
    assert len(records) == 2 + 3 + 2 * 5  # training, compression, 2 repeats x 5 variants

    train = {r["variant"]: r for r in by_step["train"]}
    assert set(train) == {"fp32", "distilled"}
    assert train["fp32"]["baseline"] and not train["distilled"]["baseline"]
    # tiny profile: 1 epoch of the full model, 3 of the student; a phase per epoch
    for variant, epochs in (("fp32", 1), ("distilled", 3)):
        phases = train[variant]["phases"]
        assert [p["name"] for p in phases] == ["epoch"] * epochs
        assert [p["counts"] for p in phases] == [{"samples": N_TRAIN}] * epochs
        assert train[variant]["counts"] == {"samples": N_TRAIN * epochs}
        assert train[variant]["metrics"]["accuracy"] > 0.8

    compress = {r["variant"]: r for r in by_step["compress"]}
    assert set(compress) == {"int8", "bf16", "pruned"}
    assert all([p["name"] for p in r["phases"]] == ["compress"] for r in compress.values())

    inference = sorted(by_step["inference"], key=lambda r: r["started_at"])
    # Interleaved, each repeat starting one variant further along.
    order = ["fp32", "int8", "bf16", "pruned", "distilled"]
    assert [r["variant"] for r in inference] == order + order[1:] + order[:1]
    assert [r["tags"]["repeat"] for r in inference] == ["1"] * 5 + ["2"] * 5
    for r in inference:
        (phase,) = r["phases"]
        assert phase["name"] == "inference"
        # every pass is over the 360 test images, many passes per run
        assert phase["counts"]["queries"] == 360 * int(r["tags"]["passes"])
        assert r["baseline"] == (r["variant"] == "fp32")
    # accuracy is deterministic: the same on both repeats, and the fp32 one equals training's
    acc = {}
    for r in inference:
        acc.setdefault(r["variant"], set()).add(r["metrics"]["accuracy"])
    assert all(len(values) == 1 for values in acc.values())
    assert acc["fp32"] == {train["fp32"]["metrics"]["accuracy"]}
    assert acc["distilled"] == {train["distilled"]["metrics"]["accuracy"]}


def test_demo_output_says_where_and_how(first_demo):
    stdout = first_demo.stdout
    assert f"store:  {first_demo.store}" in stdout
    assert f"report: {first_demo.out}" in stdout
    # this machine's devices, and whether they were measured or estimated
    label, _ = describe_energy(RunRecord.from_dict(records_in(first_demo.store)[0]))
    assert f"Energy on this machine: {label}." in stdout
    assert "Region: none given, so emissions are left empty" in stdout
    for title in ("Training: energy per 1,000 samples", "energy per 1,000 queries"):
        assert title in stdout
    for variant in VARIANTS:  # ranked, or honestly unranked when the machine was busy
        assert re.search(rf"^\s+(\d+|contended|needs repeats)\s+{variant}\b", stdout, re.M), variant
    # progress lines (stderr is not a terminal here), from the first step to the last
    assert "footprint demo [0/" in first_demo.stderr
    assert re.search(r"footprint demo \[(\d+)/\1\] done", first_demo.stderr)


def test_second_demo_gets_its_own_store_and_replaces_its_report(first_demo, monkeypatch):
    monkeypatch.chdir(first_demo.tmp)
    monkeypatch.delenv("FOOTPRINT_DIR", raising=False)
    before = sorted(p.name for p in first_demo.store.iterdir())
    old_ids = {r["id"] for r in records_in(first_demo.store)}

    code, stdout, stderr = run_cli("--tiny", "-o", str(first_demo.out))

    assert code == 0, stderr
    (store,) = (first_demo.tmp / "footprint-runs").iterdir()
    assert re.fullmatch(r"demo-\d{8}T\d{6}Z", store.name)
    assert f"store:  {Path('footprint-runs') / store.name}" in stdout
    new_ids = {r["id"] for r in records_in(store)}
    assert len(new_ids) == 15 and not new_ids & old_ids
    assert sorted(p.name for p in first_demo.store.iterdir()) == before  # untouched
    # the report was replaced: it now shows the second demo's runs only
    html = first_demo.out.read_text(encoding="utf-8")
    assert all(run_id in html for run_id in new_ids)
    assert not any(run_id in html for run_id in old_ids)


# --- argument checks (no torch needed) --------------------------------------------------------


def test_non_empty_store_is_an_error_before_any_work(tmp_path):
    store = tmp_path / "runs"
    store.mkdir()
    (store / "old.json").write_text("{}")
    code, stdout, stderr = run_cli("--store", str(store), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert "is not empty" in stderr and "omit --store" in stderr
    assert [p.name for p in store.iterdir()] == ["old.json"]
    assert not (tmp_path / "r.html").exists()


def test_store_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        prepare_store(tmp_path / "f")


def test_given_store_absent_or_empty_is_used(tmp_path):
    assert prepare_store(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "empty").mkdir()
    assert prepare_store(tmp_path / "empty") == tmp_path / "empty"


def test_default_stores_are_fresh_even_in_the_same_second(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOTPRINT_DIR", str(tmp_path / "fp"))
    first = prepare_store(now=NOW)
    second = prepare_store(now=NOW)
    assert first == tmp_path / "fp" / "demo-20261122T040506Z"
    assert second == tmp_path / "fp" / "demo-20261122T040506Z-2"
    assert first.is_dir() and second.is_dir()


def test_example_reports_are_never_overwritten(tmp_path):
    example = tmp_path / "example-demo.html"
    example.write_text('<meta name="generator" content="footprint 0.1.0">')
    with pytest.raises(UsageError, match="never overwrites"):
        check_out(example)
    code, _, stderr = run_cli("--store", str(tmp_path / "s"), "-o", str(example))
    assert code == 2 and "committed example report" in stderr
    assert not (tmp_path / "s").exists()
    # a new example file may be created (that is how the committed one is made)
    assert check_out(tmp_path / "example-new.html") == tmp_path / "example-new.html"


def test_out_replaces_only_footprint_reports(tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    with pytest.raises(UsageError, match="not a footprint report"):
        check_out(mine)
    earlier = tmp_path / "demo.html"
    earlier.write_text('<!DOCTYPE html>\n<meta name="generator" content="footprint 0.1.0">')
    assert check_out(earlier) == earlier
    with pytest.raises(UsageError, match="is a directory"):
        check_out(tmp_path)


def test_bad_repeats_and_region_fail_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="--repeats must be a whole number >= 1, got 0"):
        run_demo(repeats=0, store=tmp_path / "s")
    with pytest.raises(RegionError):
        run_demo(region="Atlantis", store=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    code, _, stderr = run_cli("--repeats", "0", "--store", str(tmp_path / "s"))
    assert code == 2 and "--repeats" in stderr


def test_missing_torch_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(DemoDependencyError, match=r"pip install -e '\.\[demo\]'"):
        require_demo_dependencies()
    code, _, stderr = run_cli("--store", str(tmp_path / "s"), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert "footprint demo needs torch" in stderr and "pip install -e '.[demo]'" in stderr
    assert not (tmp_path / "s").exists()


# --- pure helpers -----------------------------------------------------------------------------


def record(variant: str, step: str, energy_j: float, status: str = "completed") -> RunRecord:
    return new_record(
        variant=variant, status=status, energy_kwh=energy_j / 3.6e6, tags={"demo_step": step}
    )


def test_build_costs_break_even():
    records = [
        record("fp32", "train", 36_000.0),
        record("distilled", "train", 3_600.0),
        record("int8", "compress", 360.0),
        record("pruned", "compress", 720.0),
        record("int8", "compress", 99_999.0, status="failed"),  # ignored
        record("fp32", "inference", 5.0),  # inference runs are not build costs
    ]
    # Wh per 1,000 queries -> J per query: x 3.6
    board = SimpleNamespace(
        rows=[
            {"variant": "fp32", "energy_wh_per_1k": 1.0, "tie_with": ["mlp/pruned"]},
            {"variant": "int8", "energy_wh_per_1k": 0.5, "tie_with": ["mlp/distilled"]},
            {"variant": "distilled", "energy_wh_per_1k": 0.1, "tie_with": ["mlp/int8"]},
            {"variant": "pruned", "energy_wh_per_1k": 1.2, "tie_with": ["mlp/fp32"]},
        ]
    )
    costs = {row["variant"]: row for row in build_costs(records, board)}
    assert costs["fp32"]["build_j"] == pytest.approx(36_000.0)
    assert costs["fp32"]["extra_j"] == 0.0 and costs["fp32"]["break_even_queries"] is None
    assert costs["int8"]["build_j"] == pytest.approx(36_360.0)
    assert costs["int8"]["saving_j_per_query"] == pytest.approx(3.6 - 1.8)
    assert costs["int8"]["break_even_queries"] == pytest.approx(360.0 / 1.8)  # 200
    assert costs["distilled"]["build_j"] == pytest.approx(39_600.0)
    assert costs["distilled"]["break_even_queries"] == pytest.approx(3_600.0 / 3.24)
    assert costs["pruned"]["saving_j_per_query"] == pytest.approx(3.6 - 4.32)
    assert costs["pruned"]["break_even_queries"] is None  # costs more per query: never pays
    assert [v for v, row in costs.items() if row["within_noise"]] == ["pruned"]
    assert build_costs([record("int8", "compress", 1.0)], board) == []  # no baseline training


def test_describe_energy():
    rec = {
        "devices": [
            {
                "id": "cpu",
                "kind": "cpu",
                "energy_j": 1.0,
                "method": "estimate:tdp-x-utilisation",
                "measured": False,
                "details": {"max_power_w": 12.0, "tdp_source": "default", "utilisation": "process"},
            },
            {
                "id": "gpu:0",
                "kind": "gpu",
                "energy_j": 1.0,
                "method": "nvml:energy-counter",
                "measured": True,
                "details": {},
            },
        ],
        "sources": [
            {"source": "nvml", "available": True, "summary": "1 GPU"},
            {"source": "rapl", "available": False, "summary": "no powercap"},
        ],
    }
    label, lines = describe_energy(new_record(**rec))
    assert label == "mixed"
    assert lines == [
        "cpu: estimated, estimate:tdp-x-utilisation: 12.0 W at full load (default) x CPU "
        "utilisation (process)",
        "gpu:0: measured, nvml:energy-counter",
        "rapl: not available (no powercap)",
    ]
    assert describe_energy(new_record(devices=rec["devices"][1:]))[0] == "measured"
    assert describe_energy(new_record(devices=rec["devices"][:1]))[0] == "estimated"


def test_quick_demo_as_a_user_types_it(tmp_path):
    """`footprint demo --quick` exactly (no test profile), in a subprocess, as the README says."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import subprocess

    out = tmp_path / "reports" / "demo.html"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "footprint",
            "demo",
            "--quick",
            "--region",
            "FR",
            "--store",
            str(tmp_path / "store"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rows = leaderboard_rows(out.read_text(encoding="utf-8"))
    assert set(rows) == {f"mlp/{v}" for v in VARIANTS}
    assert rows["mlp/fp32"][0] > 0.8
    assert all(energy > 0 for _, energy in rows.values())
    records = records_in(tmp_path / "store")
    assert all(r["emissions_kg"] > 0 and r["region"] == "FR" for r in records)
