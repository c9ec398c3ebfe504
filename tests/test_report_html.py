"""The generated pages: written where asked, escaped, self-contained; the CLI around them."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.cli import main
from footprint.errors import RunNotFoundError
from footprint.reporting import ReportError, ReportExistsError, report
from footprint.reporting._synthetic import make_record, story_records
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


def evil_records() -> list[dict]:
    out = []
    for i, variant in enumerate(("fp32", "int8")):
        r = make_record(
            EVIL,
            seed=i + 1,
            task=EVIL,
            model=EVIL,
            variant=variant,
            baseline=variant == "fp32",
            metrics={EVIL: 0.5 + i, "accuracy": 0.9},
            tags={EVIL: EVIL},
            points=20,
        )
        r["notes"].append(EVIL)
        out.append(r)
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
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse(out)
    assert "".join(page.text).count(EVIL) >= 3  # shown as text: name, tags, notes...
    assert page.tags.count("script") == 1  # only the page's own script
    if several:  # the scatter's labels went through matplotlib's SVG writer
        assert page.tags.count("svg") == 2


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
    assert path == Path("reports") / f"bert-base-{record['id'][:8]}.html"
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
    path = run.report()
    assert path == Path("reports") / f"tracked-b-{run.to_dict()['id'][:8]}.html"
    html = path.read_text(encoding="utf-8")
    assert "tracked &lt;b&gt;" in html
    assert "2,500 J" in html  # 250 W x 10 s: under 1 Wh, shown in J
    with pytest.raises(ReportExistsError):
        run.report()
    assert run.report(overwrite=True) == path


def test_links_to_run_pages_next_to_the_report(tmp_path):
    records = story_records(1)
    run_page = report(runs=[records[0]], out=None)  # reports/<name>-<id8>.html (cwd: tmp)
    html = report(runs=records, out=run_page.parent / "all.html").read_text(encoding="utf-8")
    assert f'href="{run_page.name}"' in html
    assert html.count('href="digits-') == 1


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
    train = records[-1]["id"][:8]
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
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
