"""The Prometheus endpoint, scraped over HTTP on 127.0.0.1 and parsed with prometheus_client's
own parser: in code (serve) with sensors whose energy is known exactly, and around a command
(footprint run --metrics-port) on simulated RAPL hardware."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ConstantPowerSensor
from fakes.powercap import FakePowercap, constant
from prometheus_client.parser import text_string_to_metric_families

import footprint
from footprint.errors import UsageError
from footprint.integrations.prometheus import serve
from footprint.store import Store

REPO = Path(__file__).resolve().parents[2]


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def labels(device: str, kind: str, method: str, task="", model="", variant="") -> tuple:
    d = {"device": device, "kind": kind, "method": method}
    d.update(task=task, model=model, variant=variant)
    return tuple(sorted(d.items()))


@pytest.fixture
def endpoint():
    ep = serve(0)
    assert ep is not None
    yield ep
    ep.close()


def _until(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail("the endpoint never showed it")


def test_counters_follow_a_run_and_equal_its_record_at_the_end(endpoint, clock, store):
    sensor = ConstantPowerSensor(clock, 50.0, "gpu:0")
    key = labels("gpu:0", "gpu", "fake-counter", "sst2", "bert", "int8")
    options = dict(task="sst2", model="bert", variant="int8", carbon_intensity=400.0)
    with footprint.track(
        "serve", sensors=[sensor], _clock=clock, store=store, sample_interval_s=0.02, **options
    ) as run:
        assert endpoint.url.startswith("http://127.0.0.1:")
        clock.advance(10.0)  # 500 J by the next tick
        live = _until(lambda: scrape(endpoint.url)["footprint_energy_joules_total"].get(key))
        assert live == pytest.approx(500.0)
        got = scrape(endpoint.url)
        assert got["footprint_runs_live"][()] == 1
        assert got["footprint_emissions_kilograms_total"][
            (("model", "bert"), ("task", "sst2"), ("variant", "int8"))
        ] == pytest.approx(500 / 3.6e6 * 0.4)
        clock.advance(2.0)
    first = run.record
    got = scrape(endpoint.url)
    assert got["footprint_energy_joules_total"][key] == first.devices[0].energy_j == 600.0
    assert got["footprint_power_watts"][key] == 0.0 and got["footprint_runs_live"][()] == 0
    status = (("model", "bert"), ("status", "completed"), ("task", "sst2"), ("variant", "int8"))
    assert got["footprint_runs_total"][status] == 1

    # a second run in the process continues the counters
    sensor2 = ConstantPowerSensor(clock, 10.0, "gpu:0")
    with footprint.track("serve", sensors=[sensor2], _clock=clock, store=store, **options) as r2:
        clock.advance(3.3)
    got = scrape(endpoint.url)
    assert got["footprint_energy_joules_total"][key] == first.energy_j + r2.record.energy_j
    assert got["footprint_runs_total"][status] == 2
    assert got["footprint_emissions_kilograms_total"][
        (("model", "bert"), ("task", "sst2"), ("variant", "int8"))
    ] == pytest.approx(first.emissions_kg + r2.record.emissions_kg)


def test_one_endpoint_per_process_and_bad_ports_say_so(endpoint):
    assert serve(endpoint.port) is endpoint
    with pytest.raises(UsageError, match="already serves its metrics at http://127.0.0.1"):
        serve(endpoint.port + 1 if endpoint.port < 65535 else 1)
    with pytest.raises(UsageError, match="from 0 to 65535"):
        serve(70000)


def test_other_local_ranks_serve_nothing(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert serve(0) is None  # the node's devices are local rank 0's


def test_a_busy_port_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(UsageError, match="cannot serve metrics on 127.0.0.1:"):
            serve(s.getsockname()[1])


@pytest.mark.slow
def test_footprint_run_serves_metrics_while_the_command_runs(tmp_path):
    pc = FakePowercap(
        tmp_path / "sys",
        packages=1,
        dram="none",
        psys=False,
        power={"intel-rapl:0": constant(30.0)},
    )
    store = tmp_path / "runs"
    release = tmp_path / "release"
    cmd = [
        sys.executable, "-m", "footprint", "run", "--store", str(store), "--metrics-port", "0",
        "--powercap-root", str(pc.root), "--sample-interval", "0.05", "--",
        sys.executable, "-c",
        "import os, sys, time\n"
        "deadline = time.monotonic() + 60\n"
        f"while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with pc.realtime():
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            m = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", line)
            assert m, line
            key = labels("cpu:0", "cpu", "rapl")
            live = _until(
                lambda: scrape(m.group(1)).get("footprint_energy_joules_total", {}).get(key)
            )
            assert live > 0
            # the package draws 30 W; footprint run charges the command's tree its share
            power = _until(lambda: scrape(m.group(1))["footprint_power_watts"].get(key))
            assert 0 < power <= 30.0 * 1.05
        finally:
            release.touch()
            proc.wait(timeout=60)
    assert proc.returncode == 0
    (record,) = Store(store).records()
    assert record.status == "completed"
