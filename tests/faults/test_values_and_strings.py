"""Fault injection, values and strings: sensors that return garbage, counts that overflow, and
hostile user strings through every renderer (terminal tables, HTML, plots, model card, CSV and
JSON). Each case checks what was saved or shown."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from helpers import footprint_cli, run_case, saved

pytestmark = pytest.mark.slow

BAD_SENSOR = """
from conftest import ConstantPowerSensor
from footprint.sensors.base import Reading
class Bad(ConstantPowerSensor):
    n = 0
    def read(self):
        Bad.n += 1
        good = super().read()
        if Bad.n % 3 == 0:
            return Reading({bad})
        return good
clock = FakeClock(time.monotonic())
with footprint.track("bad", sensors=[Bad(clock, 100.0)], store=STORE, _clock=clock,
                     sample_interval_s=0.01) as run:
    for _ in range(10):
        clock.advance(1.0)
        with run.phase("step"):
            clock.advance(1.0)
print(run.record.status)
"""


@pytest.mark.parametrize("bad", ["float('nan')", "float('inf')", "None", "'x'", "-5.0"])
def test_a_sensor_returning_garbage_degrades_and_the_record_is_saved(tmp_path, bad):
    res = run_case(BAD_SENSOR.replace("{bad}", bad), tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "completed", res.stderr
    (rec,) = saved(tmp_path)
    (dev,) = rec["devices"]
    assert "bad reading" in dev["error"] and "last good value was held" in dev["error"]
    assert any("not a finite, non-decreasing energy" in n for n in rec["notes"])
    assert 0 < dev["energy_j"] <= 100.0 * 20 + 1e-6  # never more than the sensor really did


def test_a_count_that_overflows_is_marked_invalid_and_the_run_saved(tmp_path):
    res = run_case(
        """
        with footprint.track("big", sensors=sensors(), store=STORE) as run:
            with run.phase("p"):
                run.count(tokens=1e308, samples=3)
                run.count(tokens=1e308, samples=3)
                run.count(tokens=1.0)
        print(run.record.status)
        """,
        tmp_path,
    )
    assert res.stdout.strip() == "completed", res.stderr
    (rec,) = saved(tmp_path)
    assert rec["counts"] == {"samples": 6} and rec["phases"][0]["counts"] == {"samples": 6}
    assert any("'tokens' overflowed" in n and "invalid" in n for n in rec["notes"])


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "</script>",
    "bert [int8] [/] [link=http://evil]x[/link]",
    r"cost $\alpha$ sweep $\foo$ $x^$",
    "batch $5 to $10",
    "rtl \u202egnp.exe\u202c \x1b[31mred\x1b[0m",
    "x" * 100_000,
]


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("hostile")
    body = (
        "for i, s in enumerate(" + repr(HOSTILE) + "):\n"
        "    with footprint.track(s, sensors=sensors(), store=STORE, task='t', model=s,\n"
        "                         variant=s[:50] + str(i), region='FR', tags={s: s}) as run:\n"
        "        with run.phase(s):\n"
        "            run.count(queries=10)\n"
        "    run.log(accuracy=0.9)\n"
    )
    res = run_case(body, store, timeout_s=120)
    assert res.returncode == 0, res.stderr
    return store


def test_terminal_tables_show_every_string_literally(hostile_store):
    for argv in (["runs"], ["leaderboard", "--quality", "accuracy", "--per", "queries", "--wide"]):
        res = footprint_cli(*argv, "--store", str(hostile_store))
        if res.returncode == 2 and "--wide" in res.stderr:  # no --wide yet: the plain table
            res = footprint_cli(*argv[:-1], "--store", str(hostile_store))
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        out = res.stdout
        assert "\x1b" not in out and "\u202e" not in out  # escaped, never sent raw
        assert "\\x1b" in out.replace("\n", "") or "\\u202e" in out.replace("\n", "")
        flat = re.sub(r"\s*\n\s*│?\s*", "", out)
        assert "[int8]" in flat and "[/]" in flat and "[link=http://evil]" in flat


def test_json_and_csv_outputs_keep_the_strings_exactly(hostile_store):
    res = footprint_cli("runs", "--format", "json", "--store", str(hostile_store))
    assert {r["name"] for r in json.loads(res.stdout)} == set(HOSTILE)
    res = footprint_cli(
        "leaderboard", "--quality", "accuracy", "--per", "queries", "--format", "csv",
        "--store", str(hostile_store),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    models = {row["model"] for row in csv.DictReader(io.StringIO(res.stdout))}
    assert models == set(HOSTILE)


def test_the_html_report_and_its_plots_show_every_string_as_text(hostile_store, tmp_path):
    out = tmp_path / "r.html"
    res = footprint_cli("report", "-o", str(out), "--store", str(hostile_store))
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{7*7}}" in html  # shown as written: a template would have made it 49
    assert "\u202e" not in html and "\x1b" not in html  # escaped, like on the terminal
    assert "rtl \\u202egnp.exe" in html
    # every run's own page draws its phases and devices: mathtext must stay text there
    run_id = json.loads(
        footprint_cli("runs", "--format", "json", "--store", str(hostile_store)).stdout
    )
    math = next(r for r in run_id if r["name"].startswith("cost $"))
    page = tmp_path / "one.html"
    res = footprint_cli("report", math["id"][:8], "-o", str(page), "--store", str(hostile_store))
    assert res.returncode == 0, res.stderr
    text = page.read_text(encoding="utf-8")
    assert "cost $\\alpha$ sweep $\\foo$" in text


def test_the_model_card_escapes_markdown_and_refuses_unknown_training_types(tmp_path):
    res = run_case(
        """
        name = "evil ![x](http://e.test/p.png) [click](javascript:alert(1)) <b>\\n# H"
        with footprint.track(name, sensors=sensors(), store=STORE, region="FR",
                             tags={"training_type": "pre-training\\n## injected"}) as run:
            pass
        from footprint.reporting.card import card
        print(card(run.record, training_type="fine-tuning"))
        try:
            card(run.record)
        except ValueError as e:
            print("REFUSED", e)
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    body = res.stdout.split("## Environmental impact", 1)[1]
    assert "![x](" not in body and "[click](" not in body and "<b>" not in body
    assert "\\!" in body or "!\\[x\\]" in body
    assert "\n# H" not in body and "REFUSED" in res.stdout
