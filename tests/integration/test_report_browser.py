"""The report in a real headless browser (Debian's chromium + chromedriver, via selenium):
it renders without console errors, clicking a leaderboard header sorts the rows, and a run's
name in the runs table opens its section."""

from __future__ import annotations

import shutil

import pytest
from synthetic import cost_rows, story_records

from footprint.reporting import report

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip(
        "chromium/chromedriver not installed (apt-get install chromium chromium-driver, as "
        "scripts/test.sh does)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1280,2000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def column(driver, table_id: str, index: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".map(r => r.cells[arguments[1]].getAttribute('data-v'));",
        table_id,
        index,
    )


def test_store_page_renders_and_sorts(browser, tmp_path):
    from selenium.webdriver.common.by import By

    out = report(runs=story_records(repeats=2), out=tmp_path / "store.html")
    browser.get(out.as_uri())
    assert browser.title.startswith("11 runs")
    assert errors(browser) == []
    headers = browser.find_elements(By.CSS_SELECTOR, "#leaderboard-table thead th")
    names = [h.text for h in headers]
    energy = next(i for i, n in enumerate(names) if n.startswith("ENERGY / 1K"))
    banner = browser.find_element(By.ID, "estimate-banner")  # synthetic CPU and RAM: estimates
    assert banner.is_displayed() and "estimated" in banner.text
    assert "Stars rank the rows against each other on this page" in browser.page_source
    before = [float(v) for v in column(browser, "leaderboard-table", energy)]
    assert before != sorted(before)  # Pareto-first order: the click must change it

    headers[energy].click()
    after = [float(v) for v in column(browser, "leaderboard-table", energy)]
    assert after == sorted(before)
    assert headers[energy].get_attribute("aria-sort") == "ascending"

    headers[energy].click()
    assert [float(v) for v in column(browser, "leaderboard-table", energy)] == sorted(
        before, reverse=True
    )
    labels = column(browser, "leaderboard-table", 1)
    headers[1].click()  # text column
    assert column(browser, "leaderboard-table", 1) == sorted(labels)
    assert errors(browser) == []


def test_a_runs_name_opens_its_section(browser, tmp_path):
    from selenium.webdriver.common.by import By

    records = story_records(repeats=1)
    out = report(runs=records, out=tmp_path / "store.html")
    key = records[-1].id[:8]
    browser.get(out.as_uri())
    section = browser.find_element(By.ID, f"run-{key}")
    assert section.get_attribute("open") is None
    assert not section.find_element(By.CSS_SELECTOR, ".rd").is_displayed()
    browser.find_element(By.CSS_SELECTOR, f"#row-{key} a[href='#run-{key}'] b").click()
    assert section.get_attribute("open") is not None
    assert browser.execute_script("return location.hash") == f"#run-{key}"
    body = section.find_element(By.CSS_SELECTOR, ".rd")
    assert body.is_displayed() and "nvml-energy-counter" in body.text
    assert browser.execute_script(  # scrolled to it
        "var r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight;",
        section,
    )
    section.find_element(By.TAG_NAME, "summary").click()  # closes again
    assert section.get_attribute("open") is None
    browser.get(out.as_uri() + f"#run-{records[0].id[:8]}")  # a link from elsewhere
    assert browser.find_element(By.ID, f"run-{records[0].id[:8]}").get_attribute("open")
    assert errors(browser) == []


def test_run_page_renders_without_errors(browser, tmp_path):
    out = report(runs=story_records(repeats=1)[-1:], out=tmp_path / "run.html")
    browser.get(out.as_uri())
    assert errors(browser) == []
    charts = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart'))"
        ".map(s => s.getBoundingClientRect().width);"
    )
    assert len(charts) == 2 and all(w > 300 for w in charts)
    browser.find_element("css selector", "button.copy").click()
    assert errors(browser) == []


def test_tables_fit_a_1280_px_window_and_the_new_sections_show(browser, tmp_path):
    """Bug: a long model id (nowrap) pushed the runs table to 1,700 px, scrolling sideways."""
    from selenium.webdriver.common.by import By
    from synthetic import make_record

    records = story_records(repeats=2)
    long = make_record(
        "sentiment-eval-distilbert-base-uncased-finetuned-sst-2-english", seed=50,
        task="sst2-with-a-long-task-name", model="distilbert-base-uncased-finetuned-sst-2-english",
        variant="int8-dynamic-quantized-per-channel", status="failed", metrics={"accuracy": 0.9},
    )  # fmt: skip
    records.append(long.replace(error="RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"))
    costs = cost_rows()
    out = report(runs=records, out=tmp_path / "wide.html", quality="accuracy", per="queries",
                 also_per=["samples"], costs=costs, stars="absolute")  # fmt: skip
    browser.set_window_size(1280, 2000)
    browser.get(out.as_uri())
    assert errors(browser) == []
    widths = browser.execute_script(
        "return ['runs-table', 'leaderboard-table', 'leaderboard-table-1', 'costs-table'].map("
        "id => { const w = document.getElementById(id).parentElement;"
        " return [id, w.scrollWidth, w.clientWidth]; })"
        ".concat([['page', document.documentElement.scrollWidth, window.innerWidth]]);"
    )
    for name, scroll, client in widths:
        assert scroll <= client, f"{name} scrolls sideways: {scroll} px in {client} px"
    board = browser.find_element(By.ID, "leaderboard-samples")
    assert board.is_displayed() and "per energy per 1,000 samples" in board.text
    costs_panel = browser.find_element(By.ID, "costs")
    assert costs_panel.is_displayed() and "667 queries" in costs_panel.text
    assert "fixed bands of energy per unit against the baseline" in browser.page_source


def test_a_capped_power_peak_says_so_on_the_run_page(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from synthetic import make_record

    from footprint.record import as_record

    rec = make_record("peaky", seed=3).to_dict()
    cpu = next(d for d in rec["devices"] if d["id"] == "cpu")
    cpu["details"] = {"max_power_w": max(rec["timeline"]["power_w"]["cpu"]) * 0.9}
    out = report([as_record(rec)], out=tmp_path / "peaky.html")
    browser.get(out.as_uri())
    assert errors(browser) == []
    lead = browser.find_element(By.XPATH, "//*[contains(text(), 'drawn at that maximum')]")
    assert lead.is_displayed() and "cpu" in lead.text
