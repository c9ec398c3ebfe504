"""footprint.track end to end on simulated hardware: exact energies from wrapping RAPL counters
and from the fake libnvidia-ml.so.1 loaded by the real pynvml, in a subprocess."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from fakes import FakeNvml, FakeNvmlBuildError, PowerProgram, build_fake_nvml, read_log, run_python
from fakes.powercap import FakePowercap, steps
from fakes.procfs import FakeProc

import footprint

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier


def test_rapl_totals_and_phases_are_exact_through_several_wraps(tmp_path, store):
    # Package 0 steps between 30 W and 90 W; the 10 J counters wrap every 0.11-0.33 s.
    fake = FakePowercap(
        tmp_path / "sys",
        packages=1,
        psys=False,
        power={"intel-rapl:0": steps([(0.0, 30.0), (1.0, 90.0), (2.0, 30.0)])},
    )
    proc = FakeProc(tmp_path / "proc")  # nothing else runs: the run's share is the whole package
    with footprint.track(
        "rapl",
        powercap_root=fake.root,
        proc_root=proc.root,
        sample_interval_s=1000,
        _clock=fake.clock,
    ) as run:
        t_start = fake.time_s
        for _ in range(30):  # each step stays below one wrap; every step is read
            fake.advance(0.05)
            assert run.energy_j > 0  # a read between steps, as the sampler would
        with run.phase("burst"):
            t_phase = fake.time_s
            for _ in range(20):
                fake.advance(0.05)
                assert run.energy_j > 0  # a read between steps, as the sampler would
            t_phase_end = fake.time_s
        fake.advance(0.04)
        t_stop = fake.time_s
    rec = run.to_dict()
    by_id = {d["id"]: d for d in rec["devices"]}
    assert set(by_id) == {"cpu:0", "dram:0"}  # core/uncore not added, the mmio mirror once
    assert all(d["measured"] and d["method"] == "rapl" for d in by_id.values())
    exact_pkg = fake.energy_j("intel-rapl:0", t_start, t_stop)
    assert exact_pkg > 2 * 10.0  # several wraps of the 10 J counter
    assert by_id["cpu:0"]["energy_j"] == pytest.approx(exact_pkg, abs=2e-6)
    assert by_id["cpu:0"]["machine_energy_j"] == pytest.approx(exact_pkg, abs=2e-6)
    assert by_id["dram:0"]["energy_j"] == pytest.approx(5.0 * (t_stop - t_start), abs=2e-6)
    phase = rec["phases"][0]
    assert phase["energy_j"]["cpu:0"] == pytest.approx(
        fake.energy_j("intel-rapl:0", t_phase, t_phase_end), abs=2e-6
    )
    assert rec["duration_s"] == pytest.approx(t_stop - t_start)
    assert not rec["energy_uncertain"]


def test_rapl_permission_denied_warns_with_the_fix_and_falls_back_to_estimates(tmp_path, store):
    fake = FakePowercap(tmp_path / "sys", packages=1)
    fake.restrict_energy()
    with fake.as_non_root():
        with pytest.warns(footprint.FootprintWarning, match="chmod"):
            with footprint.track("denied", powercap_root=fake.root) as run:
                pass
    rec = run.to_dict()
    assert {d["method"] for d in rec["devices"]} == {
        "estimate:tdp-x-utilisation",
        "estimate:ram-w-per-gb",
    }
    assert any("rapl" in n and "chmod" in n for n in rec["notes"])


CHILD = textwrap.dedent(
    """
    import json, time
    import footprint
    with footprint.track("gpu", store={store!r}, powercap_root={root!r}) as run:
        time.sleep(0.3)
        with run.phase("burst"):
            time.sleep(0.4)
        time.sleep(0.1)
    print(json.dumps(run.to_dict()))
    """
)


@pytest.mark.parametrize("counter", [True, False], ids=["energy-counter", "power-polling"])
def test_gpus_through_the_real_pynvml_binding(tmp_path, counter):
    try:
        lib_dir = build_fake_nvml(tmp_path / "lib")
    except FakeNvmlBuildError as exc:
        pytest.skip(str(exc))
    program = PowerProgram(t0_s=time.monotonic(), idle_s=0.2)
    fake = FakeNvml(
        program=program,
        gpu_count=2,
        counter_gpus=None if counter else [],
        scales=[1.0, 0.5],
        log_path=tmp_path / "nvml.log",
    )
    code = CHILD.format(store=str(tmp_path / "store"), root=str(tmp_path / "no-rapl"))
    rec = run_python(code, env=fake.env(lib_dir))
    gpus = [d for d in rec["devices"] if d["kind"] == "gpu"]
    assert [g["id"] for g in gpus] == ["gpu:0", "gpu:1"]
    method = "nvml-energy-counter" if counter else "nvml-power-polling"
    assert all(g["method"] == method and g["measured"] for g in gpus)
    calls = read_log(fake.log_path)
    for i, gpu in enumerate(gpus):
        mine = [c for c in calls if c.gpu == i and c.kind == ("energy" if counter else "power")]
        if counter:  # counter differences at the exact start and stop reads: to the mJ
            # mine[0] is discovery's read (the sensor's zero); mine[1] the run's start read.
            exact = program.energy_j(mine[1].t_s, mine[-1].t_s, scale=fake.scale(i))
            assert gpu["energy_j"] == pytest.approx(exact, abs=2e-3)
            assert rec["duration_s"] == pytest.approx(mine[-1].t_s - mine[1].t_s, abs=2e-3)
        else:  # jittered polling at 5 ms strata over ~0.8 s of the bursty program
            # mine[0] is discovery's check that power is readable, before the rest of probing
            # (RAPL, estimates): the run integrates from the poller's first sample, mine[1].
            # (Measuring from mine[0] charged the probing time to the run: ~3 % low on average,
            # and a flaky test.)
            exact = program.energy_j(mine[1].t_s, mine[-1].t_s, scale=fake.scale(i))
            assert gpu["energy_j"] == pytest.approx(exact, rel=0.05)
    assert rec["host"]["gpus"][0]["uuid"] == fake.uuid(0)
    assert json.dumps(rec)  # the record stays plain JSON
