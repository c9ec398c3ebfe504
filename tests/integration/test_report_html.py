"""The generated pages: written where asked, escaped, self-contained; the CLI around them."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor
from synthetic import cost_rows, make_record, story_records

import footprint
from footprint.cli import main
from footprint.errors import RunNotFoundError
from footprint.record import RunRecord, as_record
from footprint.reporting import ReportError, ReportExistsError, report
from footprint.reporting.data import slug
from footprint.store import Store

EVIL = "<script>alert(1)</script>"


class Links(HTMLParser):
    """Every URL-bearing attribute, the scripts' and styles' text, and the visible text."""

    URL_ATTRS = {"src", "href", "xlink:href", "srcset", "data", "poster", "action", "formaction"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.URL_ATTRS and value is not None:
                self.urls.append((tag, name, value))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.text.append(data)


def parse(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


class Sections(HTMLParser):
    """A store page's run sections (``<details id="run-...">``): for each, whether it starts
    open, its summary's text, facts (dt -> dd text), table rows (cell texts, headers included),
    notes, the tags inside and all its text; plus every element id and in-page link."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self._cur: dict | None = None
        self._open: list[str] = []  # the text collectors now open: summary, dt, dd, cell, li
        self._dt = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        if tag == "details" and (a.get("id") or "").startswith("run-"):
            self._cur = self.sections[a["id"]] = {
                "open": "open" in a,
                "summary": "",
                "facts": {},
                "rows": [],
                "notes": [],
                "tags": [],
                "text": "",
            }
            return
        cur = self._cur
        if cur is None:
            return
        cur["tags"].append(tag)
        if tag == "tr":
            cur["rows"].append([])
        elif tag in ("td", "th"):
            cur["rows"][-1].append("")
        if tag in ("summary", "dt", "dd", "td", "th", "li"):
            self._open.append(tag)
            if tag == "dt":
                self._dt = ""
            elif tag == "dd":
                cur["facts"][self._dt] = ""
            elif tag == "li":
                cur["notes"].append("")

    def handle_endtag(self, tag):
        if tag == "details":
            self._cur = None
        if tag in self._open:
            self._open.remove(tag)

    def handle_data(self, data):
        cur = self._cur
        if cur is None:
            return
        cur["text"] += data
        for tag in self._open:
            if tag == "summary":
                cur["summary"] += data
            elif tag == "dt":
                self._dt += data
            elif tag == "dd":
                cur["facts"][self._dt] += data
            elif tag in ("td", "th"):
                cur["rows"][-1][-1] += data
            elif tag == "li":
                cur["notes"][-1] += data


def sections(path: Path) -> Sections:
    p = Sections()
    p.feed(path.read_text(encoding="utf-8"))
    return p


EVIL_UNIT = "<img src=x onerror=alert(1)>"  # no "/": a phase name and a count unit


def evil_records() -> list[RunRecord]:
    out = []
    for i, variant in enumerate(("fp32", "int8")):
        made = make_record(
            EVIL,
            seed=i + 1,
            phases=[("inference", 20.0, {"queries": 10_000}), (EVIL_UNIT, 2.0, {EVIL_UNIT: 3})],
            task=EVIL,
            model=EVIL,
            variant=variant,
            baseline=variant == "fp32",
            metrics={EVIL: 0.5 + i, "accuracy": 0.9},
            tags={EVIL: EVIL},
            points=20,
        )
        r = made.to_dict()
        r["notes"].append(EVIL)
        r["error"] = EVIL
        r["devices"][0].update(name=EVIL, method=EVIL, error=EVIL)
        r["carbon"].update(source=EVIL, source_url=EVIL, pue_source=EVIL)
        r["imported_from"] = {"tool": EVIL}
        out.append(RunRecord.from_dict(r))
    return out


@pytest.mark.parametrize("several", [False, True], ids=["run page", "comparison page"])
def test_user_strings_are_escaped(tmp_path, several):
    records = evil_records() if several else evil_records()[:1]
    out = report(
        runs=records,
        out=tmp_path / "r.html",
        quality="accuracy" if several else None,
        per="queries" if several else None,
    )
    html = out.read_text(encoding="utf-8")
    assert EVIL not in html and EVIL_UNIT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse(out)
    assert "".join(page.text).count(EVIL) >= 3  # shown as text: name, tags, notes...
    assert page.tags.count("script") == 1  # only the page's own script
    assert not any(tag == "img" for tag in page.tags)
    if several:  # the scatter's labels went through matplotlib's SVG writer
        assert page.tags.count("svg") == 2
        # every run's section: run name and error, task, model, metric, tag key and value,
        # importer, carbon source, URL and PUE source, device name, method and error, note
        found = sections(out).sections
        assert len(found) == 2
        for sec in found.values():
            assert sec["text"].count(EVIL) >= 15, sec["text"]
            # the phase's name, its unit in the facts and in the phase's work cell
            assert sec["text"].count(EVIL_UNIT) >= 3, sec["text"]
            assert "img" not in sec["tags"] and "script" not in sec["tags"]


@pytest.mark.parametrize("which", ["run", "store"])
def test_page_is_self_contained(tmp_path, which):
    records = story_records(repeats=2)
    out = report(runs=records[-1:] if which == "run" else records, out=tmp_path / "p.html")
    page = parse(out)
    for tag, attr, url in page.urls:
        # only in-page anchors and relative links to sibling run pages
        assert url.startswith("#") or ("://" not in url and not url.startswith("//")), (
            tag,
            attr,
            url,
        )
    assert not any(t in page.tags for t in ("link", "img", "iframe", "object", "embed"))
    css = "".join(page.styles)
    assert "@import" not in css and "@font-face" not in css and "url(" not in css
    assert page.tags.count("script") == 1 and page.tags.count("svg") >= 2


def test_run_page_shows_the_headline_and_provenance(tmp_path):
    record = story_records(repeats=1)[-1]
    html = report(runs=[record], out=tmp_path / "x.html").read_text(encoding="utf-8")
    for text in (
        "7.25 Wh",
        "406 mg",
        "57.0 s",
        "458 W",
        "Energy per unit · samples",
        "Our World in Data / Ember",
        "2023",
        "life-cycle",
        "45.2 mg",
        "nvml-energy-counter",
        "estimate:tdp-x-utilisation",
        "co2_eq_emissions",
        "AMD EPYC 7763 64-Core Processor",
        "epoch-1",
    ):
        assert text in html, text


def test_overwrite_rules_and_parent_directories(tmp_path):
    record = make_record("one", points=10)
    out = tmp_path / "a" / "b" / "r.html"
    assert report(runs=[record], out=out) == out
    first = out.read_text(encoding="utf-8")
    out.write_text("mine", encoding="utf-8")
    with pytest.raises(ReportExistsError, match=r"--force \(CLI\) or overwrite=True"):
        report(runs=[record], out=out)
    assert out.read_text(encoding="utf-8") == "mine"  # untouched
    report(runs=[record], out=out, overwrite=True)
    assert out.read_text(encoding="utf-8") == first  # same input, same page
    with pytest.raises(ReportError, match="is a directory"):
        report(runs=[record], out=tmp_path / "a", overwrite=True)
    assert not list(out.parent.glob(".*.tmp"))


def test_out_none_names_the_file_after_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = make_record("BERT base", points=10)
    path = report(runs=[record], out=None)
    assert path == Path("reports") / f"bert-base-{record.id[:8]}.html"
    assert (tmp_path / path).is_file()
    assert report(runs=story_records(1), out=None) == Path("reports/footprint-report.html")


def test_empty_store_and_unknown_run_are_errors_not_pages(tmp_path):
    with pytest.raises(RunNotFoundError, match="no runs in store"):
        report(store=tmp_path / "none", out=tmp_path / "r.html")
    Store(tmp_path / "s").save(make_record("x", points=5))
    with pytest.raises(RunNotFoundError, match="no run 'ffff'"):
        report(runs=["ffff"], store=tmp_path / "s", out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_tracked_run_report(clock, store):
    sensors = [ConstantPowerSensor(clock, 200.0), ConstantPowerSensor(clock, 50.0, "cpu", "cpu")]
    with footprint.track("tracked <b>", sensors=sensors, _clock=clock, region="FR") as run:
        with run.phase("work"):
            clock.advance(10.0)
            run.count(samples=100)
    path = footprint.report(runs=[run.record], out=None)
    assert path == Path("reports") / f"tracked-b-{run.to_dict()['id'][:8]}.html"
    html = path.read_text(encoding="utf-8")
    assert "tracked &lt;b&gt;" in html
    assert "2,500 J" in html  # 250 W x 10 s: under 1 Wh, shown in J
    with pytest.raises(ReportExistsError):
        footprint.report(runs=[run.record], out=None)
    assert footprint.report(runs=[run.record], out=None, overwrite=True) == path


def test_links_to_run_pages_next_to_the_report(tmp_path):
    records = story_records(1)
    run_page = report(runs=[records[0]], out=None)  # reports/<name>-<id8>.html (cwd: tmp)
    html = report(runs=records, out=run_page.parent / "all.html").read_text(encoding="utf-8")
    assert f'href="{run_page.name}"' in html
    assert html.count('href="digits-') == 2  # its name in the table, "own page" in its section


@pytest.mark.slow
def test_cli_report_and_card(tmp_path, capsys):
    st = Store(tmp_path / "runs")
    records = story_records(1)
    for r in records:
        st.save(r)
    assert main(["report", "--store", str(st.path), "-o", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    assert main(["report", "--store", str(st.path), "-o", str(tmp_path / "r.html")]) == 2
    assert "--force" in capsys.readouterr().err
    code = main(
        [
            "report",
            "--store",
            str(st.path),
            "-o",
            str(tmp_path / "r.html"),
            "--force",
            "--task",
            "digits",
            "--quality",
            "accuracy",
            "--per",
            "queries",
        ]
    )
    assert code == 0
    assert "Leaderboard: accuracy per energy per 1,000 queries" in (tmp_path / "r.html").read_text()
    assert main(["report", "nope", "--store", str(st.path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 'nope'" in err
    assert main(["report", "--store", str(st.path), "--per", "tokens", "-o", "z.html"]) == 2
    assert "no run counted 'tokens'" in capsys.readouterr().err
    train = records[-1].id[:8]
    assert main(["card", train, "--store", str(st.path), "--training-type", "fine-tuning"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\nco2_eq_emissions:\n") and 'training_type: "fine-tuning"' in out


def test_importing_the_report_stays_light():
    code = (
        "import sys, footprint, footprint.reporting, footprint.reporting.card;"
        "footprint.report;"
        "heavy = {'matplotlib', 'pandas', 'codecarbon', 'torch', 'jinja2'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2]
    )


# -- the store page's run sections and run pages ---------------------------------------------------


def two_hand_records() -> list[RunRecord]:
    from synthetic import hand_record

    from footprint import carbon

    other = hand_record(
        id="cd" * 16,
        name="other",
        started_at="2026-11-20T10:00:00+00:00",
        ended_at="2026-11-20T10:00:10+00:00",
        error="CUDA out of memory",
        notes=["energy counter wrapped once"],
    )
    other = other.replace(**carbon.emissions_for(other.to_dict(), carbon.resolve()))  # no region
    return [hand_record(), other]


def test_every_run_has_a_collapsed_section_with_its_figures(tmp_path):
    out = report(runs=two_hand_records(), out=tmp_path / "r.html")
    page = sections(out)
    assert set(page.sections) == {"run-abababab", "run-cdcdcdcd"}
    assert not any(sec["open"] for sec in page.sections.values())  # collapsed by default
    assert not any("svg" in sec["tags"] for sec in page.sections.values())  # no per-run charts
    assert out.read_text(encoding="utf-8").count("<svg") == 2  # the page's own two charts

    # hand_record: 10 s, gpu 7,200 J measured + cpu 1,800 J estimated = 9,000 J = 2.50 Wh;
    # FR 56.04 g/kWh x 0.0025 kWh = 140 mg; queries: infer's 8,400 J / 4,000 = 0.583 Wh per 1k
    sec = page.sections["run-abababab"]
    summary = sec["summary"]
    for text in ("bert-base", "abababab", "completed", "2026-11-20 09:00:00 UTC", "10.0 s"):
        assert text in summary, text
    assert summary.endswith("2.50 Wh140 mg")
    facts = sec["facts"]
    assert facts["Run id"] == "ab" * 16  # whole, for footprint commands
    assert facts["When"] == "2026-11-20 09:00:00 UTC → 2026-11-20 09:00:10 UTC"
    assert facts["Duration"] == "10.0 s"
    assert facts["Energy"] == "2.50 Wh IT, before PUE · mean 900 W"
    assert facts["CO2e"] == "140 mg"
    assert facts["accuracy"] == "0.9000"
    assert facts["queries"] == "4,000 counted · 2,100 J / 1k"  # 0.583 Wh, as a person reads it
    assert facts["Region"] == "France (FR) · country"
    assert facts["Intensity"] == "56.04 g CO2e/kWh"
    assert facts["Source"].startswith("Our World in Data / Ember")
    assert "https://ourworldindata.org/" in facts["Source"]
    assert facts["Year · basis"] == "2023 · life-cycle, CO2e"
    assert facts["PUE"] == "1 — default: 1.0 (IT energy only) · facility 2.50 Wh"
    assert sec["rows"] == [
        ["device", "how", "energy", "share"],
        ["gpu:0 A100", "measured nvml-energy-counter", "2.00 Wh", "80%"],
        ["cpu EPYC", "estimated estimate:tdp-x-utilisation", "1,800 J", "20%"],
        ["phase", "energy", "share", "time", "work"],
        ["load", "600 J", "6.7%", "2.00 s", ""],  # 400 + 200 J of 9,000
        ["infer", "2.33 Wh", "93%", "8.00 s", "4,000 queries"],  # 8,400 J
        ["post ×2", "240 J", "2.7%", "1.50 s", ""],  # nested, twice: 2 x 120 J, 0.5 + 1 s
    ]
    assert sec["notes"] == []

    other = page.sections["run-cdcdcdcd"]
    assert other["facts"]["Region"] == "none given"
    assert other["facts"]["CO2e"].startswith("– no region: footprint recompute cdcdcdcd")
    assert "Error: CUDA out of memory" in other["text"]
    assert other["notes"][0] == "energy counter wrapped once"
    assert "no region given" in other["notes"][1]


def test_links_resolve_to_sections_rows_and_pages(tmp_path):
    records = story_records(repeats=2)
    out = report(runs=records, out=tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    page = sections(out)
    ours = [i for i in page.ids if i.startswith(("run-", "row-"))]
    assert len(ours) == len(set(ours)) == 2 * len(records)  # unique: a section and a row each
    internal = [h for h in page.hrefs if h.startswith("#")]
    assert internal and all(h[1:] in page.ids for h in internal)
    assert {h for h in internal if h.startswith("#run-")} == {"#" + i for i in page.sections}
    assert any(h.startswith("#row-") for h in internal)  # the leaderboard's n
    # no run page beside it: each name in the runs table links to its section
    for r in records:
        key = r.id[:8]
        assert f'<tr id="row-{key}">' in html
        row = html[html.index(f'<tr id="row-{key}">') :]
        assert row.split("<b>", 1)[0].endswith(f'<a href="#run-{key}">'), key


@pytest.mark.slow
def test_run_pages_are_written_beside_and_linked(tmp_path, capsys):
    from footprint.reporting import write_report

    records = story_records(repeats=1)
    other_task = make_record("elsewhere", seed=7, task="other", points=10)
    out = tmp_path / "site" / "all.html"
    path, pages = write_report(records + [other_task], out, task="digits", run_pages=True)
    assert path == out
    expected = {out.parent / f"{slug(r.name)}-{r.id[:8]}.html" for r in records}
    assert set(pages) == expected and len(pages) == len(records)  # not the other task's run
    assert set(out.parent.iterdir()) == expected | {out}
    for r in records:
        run_page = out.parent / f"{slug(r.name)}-{r.id[:8]}.html"
        html = run_page.read_text(encoding="utf-8")
        assert "footprint · run report" in html and html.count("<svg") == 2
        assert r.id[:8] in html
    store = out.read_text(encoding="utf-8")
    links = {h for h in sections(out).hrefs if not h.startswith("#")}
    assert links == {p.name for p in expected}
    for r in records:  # the name links to the page, the id to the section
        key = r.id[:8]
        row = store[store.index(f'<tr id="row-{key}">') :]
        name = f"{slug(r.name)}-{key}.html"
        assert row.split("<b>", 1)[0].endswith(f'<a href="{name}">'), key
        assert f'<a class="small mono" href="#run-{key}"' in row.split("</tr>", 1)[0]

    # report(..., run_pages=True) returns the page's path only
    again = report(runs=records, out=out, run_pages=True, overwrite=True)
    assert again == out


@pytest.mark.slow
def test_run_pages_overwrite_rules(tmp_path):
    records = story_records(repeats=1)
    out = tmp_path / "all.html"
    mine = tmp_path / f"{slug(records[2].name)}-{records[2].id[:8]}.html"
    mine.write_text("mine", encoding="utf-8")
    with pytest.raises(ReportExistsError, match=rf"{mine.name}.*--force \(CLI\) or overwrite=True"):
        report(runs=records, out=out, run_pages=True)
    assert list(tmp_path.iterdir()) == [mine]  # nothing written, not even the report
    assert mine.read_text(encoding="utf-8") == "mine"
    # bad arguments fail before any page is written, too
    with pytest.raises(ReportError, match="no run counted 'tokens'"):
        report(runs=records, out=out, run_pages=True, per="tokens", overwrite=True)
    assert list(tmp_path.iterdir()) == [mine]
    report(runs=records, out=out, run_pages=True, overwrite=True)
    assert "footprint · run report" in mine.read_text(encoding="utf-8")
    assert len(list(tmp_path.iterdir())) == len(records) + 1
    with pytest.raises(ReportExistsError, match=rf"{len(records) + 1} files"):
        report(runs=records, out=out, run_pages=True)
    # a report named like a run's page would be overwritten by it
    with pytest.raises(ReportError, match="also the name of a run's own page"):
        report(runs=records, out=mine, run_pages=True, overwrite=True)


@pytest.mark.slow
def test_cli_run_pages(tmp_path, capsys):
    st = Store(tmp_path / "runs")
    records = story_records(1)
    for r in records:
        st.save(r)
    out = tmp_path / "reports" / "r.html"
    args = ["report", "--store", str(st.path), "-o", str(out), "--run-pages"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [str(out), f"{len(records)} run pages written in {out.parent}"]
    assert len(list(out.parent.glob("*.html"))) == len(records) + 1
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exist" in err and "--force" in err
    assert main([*args, "--force"]) == 0


def test_the_comparison_page_says_estimates_stars_and_units_plainly(tmp_path):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    a = make_record(
        "a",
        task="t",
        model="m",
        variant="fp32",
        baseline=True,
        metrics={"accuracy": 0.9},
        started_at=t0,
    )
    b = make_record("b", seed=1, task="t", model="m", variant="int8", gpu_w=306.0,
                    metrics={"accuracy": 0.89}, started_at=t0 + timedelta(hours=1))  # fmt: skip
    records = [as_record(r) for r in (a, b)]
    html = report(runs=records, out=tmp_path / "p.html", quality="accuracy", per="queries")
    text = html.read_text(encoding="utf-8")
    # the CPU and RAM of synthetic runs are estimates: a page-level banner says so, with the
    # stated uncertainty
    assert (
        'id="estimate-banner"' in text and "of the device energy on this page is estimated" in text
    )
    assert "factor of about 2" in text
    assert "Stars rank the rows against each other on this page" in text
    assert "energy / 1k queries" in text and "Wh / 1k" not in text
    assert " mWh" in text or " Wh" in text or " J" in text
    from footprint.reporting.render import fmt_time

    last_end = max(r.ended_at or "" for r in records)  # the time range ends at the last end
    assert last_end and f"→ {fmt_time(last_end)}" in text
    assert f"→ {fmt_time(records[-1].started_at)}" not in text
    ratio = records[1].energy_j / records[0].energy_j
    assert f"×{ratio:.2f}" in text  # two decimals: ×1.02, never ×1.0


def test_no_estimate_banner_when_everything_was_measured(tmp_path):
    rec = as_record(make_record("only-gpu", task="t", metrics={"accuracy": 0.9}))
    measured = rec.replace(devices=[d.to_dict() for d in rec.devices if d.measured])
    html = report(runs=[measured, measured.replace(id="f" * 32, name="again")],
                  out=tmp_path / "p.html")  # fmt: skip
    assert 'id="estimate-banner"' not in html.read_text(encoding="utf-8")


def test_a_power_peak_is_drawn_at_most_at_the_devices_stated_maximum(tmp_path):
    """Bug: an estimated CPU's bucket could read above its model's full-load power (CPU time
    arriving in scheduler ticks, lagging into the next bucket), and the page said so as a peak."""
    rec = make_record("peaky", seed=3).to_dict()
    cpu = next(d for d in rec["devices"] if d["id"] == "cpu")
    powers = rec["timeline"]["power_w"]["cpu"]
    limit = max(powers) * 0.9  # the model says the CPU draws at most this
    cpu["details"] = {"max_power_w": limit}
    record = as_record(rec)
    from footprint.reporting.data import capped_timeline, run_view

    view = run_view(record)
    shown = {d["id"]: d for d in view["devices"]}
    assert shown["cpu"]["peak_power_w"] == pytest.approx(limit)
    assert max(view["timeline"]["power_w"]["cpu"]) == pytest.approx(limit)
    assert view["power_capped"] == ["cpu"]
    assert shown["cpu"]["energy_j"] == pytest.approx(cpu["energy_j"])  # totals untouched
    assert max(record.timeline.power_w["cpu"]) > limit  # the record itself is left as it was
    # a device with no stated maximum, or under it, is drawn as measured
    assert capped_timeline(make_record("calm", seed=3))[1] == []
    out = report([record], out=tmp_path / "peaky.html")
    text = out.read_text()
    assert "drawn at that maximum" in text
    assert f"{max(powers):.4g} W" not in text


def test_absolute_stars_are_fixed_bands_against_the_baseline(tmp_path, capsys):
    from footprint.ranking import absolute_stars, build

    assert [absolute_stars(x) for x in (0.2, 0.25, 0.4, 0.9, 1.0, 1.1, 1.5, None)] == [
        5, 5, 4, 3, 2, 2, 1, None,
    ]  # fmt: skip
    records = story_records()
    board = build(records, quality="accuracy", per="queries", task="digits", stars="absolute")
    for row in board.rows:
        assert row["stars"] == absolute_stars(row["energy_vs_baseline"])
    assert any("fixed bands" in n for n in board.notes)
    relative = build(records, quality="accuracy", per="queries", task="digits")
    assert {r["label"] if "label" in r else r["variant"]: r["stars"] for r in relative.rows} != {
        r["variant"]: r["stars"] for r in board.rows
    }
    out = report(records, out=tmp_path / "abs.html", task="digits", quality="accuracy",
                 per="queries", stars="absolute")  # fmt: skip
    text = out.read_text()
    assert "fixed bands of energy per unit against the baseline" in text
    assert "--stars absolute" not in text  # the relative wording's hint is gone
    store = tmp_path / "store"
    for r in records:
        Store(store).save(r)
    argv = ["leaderboard", "--quality", "accuracy", "--per", "queries", "--store", str(store)]
    assert main([*argv, "--stars", "absolute", "--format", "json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)["rows"]
    assert {r["variant"]: r["stars"] for r in rows} == {
        r["variant"]: r["stars"] for r in board.rows
    }
    assert main([*argv, "--stars", "fixed"]) == 2
    assert "stars must be 'relative' or 'absolute', got 'fixed'" in capsys.readouterr().err


def test_the_report_can_show_more_boards_and_the_cost_to_pay_back(tmp_path, capsys):
    records = story_records()
    costs = cost_rows(
        {"variant": "<b>odd</b>", "build_j": 5100.0, "extra_j": 100.0, "energy_j_per_query": 0.6,
         "saving_j_per_query": -0.1, "break_even_queries": None},
    )  # fmt: skip
    out = report(records, out=tmp_path / "more.html", task="digits", quality="accuracy",
                 per="queries", also_per=["samples"], costs=costs)  # fmt: skip
    secs = sections(out)
    text = out.read_text()
    assert "leaderboard-samples" in secs.ids and "costs" in secs.ids
    assert "Leaderboard: accuracy per energy per 1,000 samples" in text
    assert "mlp/fp32-train" in text  # the training run ranks per samples
    assert "667 queries" in text and "never (no saving)" in text and "baseline" in text
    assert "&lt;b&gt;odd&lt;/b&gt;" in text and "<b>odd</b>" not in text
    with pytest.raises(Exception, match="samples|sample"):
        report(records, out=tmp_path / "bad.html", task="digits", quality="accuracy",
               per="queries", also_per=["widgets"])  # fmt: skip
    store = tmp_path / "store"
    for r in records:
        Store(store).save(r)
    page = tmp_path / "cli.html"
    argv = ["report", "--store", str(store), "-o", str(page), "--task", "digits",
            "--quality", "accuracy", "--per", "queries", "--also-per", "samples"]  # fmt: skip
    assert main(argv) == 0
    assert "leaderboard-samples" in sections(page).ids
