"""The run's own share on a shared machine: machine-wide counters (RAPL, a GPU other processes
use) are kept whole *and* charged to the run by its share; estimates follow the run's process
tree by default; other processes' use is recorded and flagged. Simulated /proc (known CPU times),
simulated powercap and the fake libnvidia-ml.so.1 with per-process calls, through the public API.
"""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from fakes import FakeNvml, FakeNvmlBuildError, PowerProgram, build_fake_nvml, read_log, run_python
from fakes.powercap import FakePowercap, constant
from fakes.procfs import FakeProc

import footprint
from footprint.attribution import run_share


def rapl(tmp_path) -> FakePowercap:
    return FakePowercap(
        tmp_path / "sys",
        packages=1,
        psys=False,
        mmio_mirror=False,
        max_energy_range_uj=10**12,
        power={"intel-rapl:0": constant(60.0), "intel-rapl:0:2": constant(6.0)},
    )


def test_rapl_is_kept_whole_and_charged_by_the_trees_share_of_busy_cpu_time(tmp_path):
    cap, proc = rapl(tmp_path), FakeProc(tmp_path / "proc", cpus=4)
    with footprint.track("shared", powercap_root=cap.root, proc_root=proc.root, _clock=cap.clock,
                         save=False, sample_interval_s=1000) as run:  # fmt: skip
        for _ in range(4):  # 4 s: the run 1 CPU-s per s, others 3: a quarter is the run's
            cap.advance(1.0)
            proc.work(run_s=1.0, other_s=3.0)
            assert run.energy_j > 0  # a reading per step, as the sampler would take
        with run.phase("serve"):  # 2 s: the run 3 CPU-s per s, others 1
            for _ in range(2):
                cap.advance(1.0)
                proc.work(run_s=3.0, other_s=1.0)
                run.count(queries=100)
    rec = run.record
    cpu = next(d for d in rec.devices if d.id == "cpu:0")
    dram = next(d for d in rec.devices if d.id == "dram:0")
    assert cpu.machine_energy_j == pytest.approx(60.0 * 6)  # measured whole
    assert cpu.energy_j == pytest.approx(60.0 * (4 * 0.25 + 2 * 0.75))  # the run's share
    assert dram.energy_j == pytest.approx(6.0 * (4 * 0.25 + 2 * 0.75))
    assert "process tree's CPU time" in cpu.attribution and cpu.measured
    assert rec.machine_energy_kwh * 3.6e6 == pytest.approx(66.0 * 6)
    assert rec.energy_j == pytest.approx(66.0 * 2.5)  # what emissions and boards read
    share = run_share(rec, "queries")
    assert share.energy_j == pytest.approx(66.0 * 2 * 0.75)  # the phase's share, within 1 %
    # others used 4x3 + 2x1 = 14 of 24 CPU-seconds: contended, and said so
    assert rec.contention.other_cpu_fraction == pytest.approx(14 / 24)
    assert rec.contention.run_cpu_fraction == pytest.approx(10 / 24)
    assert rec.contended
    assert any("other processes used 58% of the CPUs" in n and "unreliable" in n for n in rec.notes)


def test_an_idle_machine_charges_the_run_in_full_and_a_quiet_one_is_not_contended(tmp_path):
    cap, proc = rapl(tmp_path), FakeProc(tmp_path / "proc", cpus=4)
    with footprint.track("quiet", powercap_root=cap.root, proc_root=proc.root, _clock=cap.clock,
                         save=False, sample_interval_s=1000) as run:  # fmt: skip
        cap.advance(1.0)
        proc.work(idle_s=4.0)  # nobody busy: nobody else to charge
        assert run.energy_j > 0
        cap.advance(1.0)
        proc.work(run_s=1.0, other_s=0.2, idle_s=2.8)
    cpu = next(d for d in run.record.devices if d.id == "cpu:0")
    assert cpu.energy_j == pytest.approx(60.0 * (1.0 + 1.0 / 1.2))
    assert not run.record.contended
    assert run.record.contention.other_cpu_fraction == pytest.approx(0.2 / 8)


def test_estimates_follow_the_process_tree_by_default_and_machine_stays_an_option(tmp_path):
    proc = FakeProc(tmp_path / "proc", cpus=4)
    kw = dict(powercap_root=tmp_path / "no-rapl", proc_root=proc.root, save=False,
              sample_interval_s=1000, cpu_power_w=80.0)  # fmt: skip
    with footprint.track("own", **kw) as run:
        time.sleep(0.3)  # the estimate never counts more than 4 CPUs x the real time passed
        proc.work(run_s=0.5, other_s=3.0)  # others' 3 CPU-s are not the run's
    cpu = next(d for d in run.record.devices if d.id == "cpu")
    # 80 W for all 4 CPUs at full load = 20 W per busy CPU-second
    assert cpu.energy_j == pytest.approx(0.5 * 20.0)
    assert cpu.machine_energy_j is None and "process tree" in cpu.attribution
    assert cpu.details["tdp_source"].startswith("user-supplied: cpu_power_w=80")
    ram = next(d for d in run.record.devices if d.id == "ram")
    assert ram.details["memory_basis"].startswith("proportional set size")
    assert "proportional set size" in ram.attribution
    with footprint.track("all", **{**kw, "cpu_utilisation": "machine"}) as whole:
        pass
    assert {d.attribution.split(":")[0] for d in whole.record.devices} == {"whole machine"}


def test_ram_in_process_scope_counts_a_forked_workers_shared_pages_once(tmp_path):
    from footprint.sensors.estimate import RamEstimateSensor, TreeMemory

    proc = FakeProc(tmp_path / "proc", pid=500)
    # parent and a forked worker: 400 MiB resident each, 300 MiB of it shared between them
    mib = 2**20
    proc.procs[500].rss_bytes, proc.procs[500].pss_bytes = 400 * mib, 250 * mib
    proc.add_process(501, ppid=500, rss_bytes=400 * mib, pss_bytes=250 * mib)
    proc.write()
    memory = TreeMemory(lambda: frozenset({500, 501}), str(proc.root), min_pss_interval_s=0)
    import threading

    result: list[float] = []
    reader = threading.Thread(target=lambda: result.append(memory()), name="footprint-sampler")
    reader.start()
    reader.join()
    assert result[0] == 500 * mib  # PSS: 2 x 100 private + 300 shared, not 800 MiB of RSS
    # between PSS reads (user thread), RSS scaled by the last PSS/RSS ratio
    assert memory() == pytest.approx(500 * mib)
    sensor = RamEstimateSensor(scope="process", used_bytes=lambda: 2**30, w_per_gb=2.0)
    assert sensor.device.details["w_per_gb"] == 2.0


def test_overrides_unused_where_the_device_is_measured_are_noted(tmp_path):
    cap, proc = rapl(tmp_path), FakeProc(tmp_path / "proc")
    overrides = dict(cpu_power_w=90, ram_w_per_gb=1.0)
    with footprint.track("measured", powercap_root=cap.root, proc_root=proc.root,
                         _clock=cap.clock, save=False, **overrides) as run:  # fmt: skip
        cap.advance(1.0)
    notes = run.record.notes
    assert any("cpu_power_w=90 was not used: the CPU is measured" in n for n in notes)
    assert any("ram_w_per_gb=1 was not used: DRAM is measured" in n for n in notes)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "80", True])
def test_a_bad_power_override_is_refused_before_any_work(bad):
    with pytest.raises(ValueError, match="cpu_power_w must be a positive number of watts"):
        footprint.track("x", cpu_power_w=bad)


CHILD = textwrap.dedent(
    """
    import json, time
    import footprint
    with footprint.track("gpu", save=False, powercap_root={root!r}) as run:
        time.sleep(1.2)
    print(json.dumps(run.to_dict()))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("others", [False, True], ids=["alone", "shared"])
def test_a_gpu_other_processes_use_is_charged_by_sm_utilisation(tmp_path, others):
    try:
        lib_dir = build_fake_nvml(tmp_path / "lib")
    except FakeNvmlBuildError as exc:
        pytest.skip(str(exc))
    program = PowerProgram(t0_s=time.monotonic(), idle_w=100.0, high_w=100.0, low_w=100.0)
    procs = [(0, "self", 30), (0, 999_999, 90)] if others else [(0, "self", 30)]
    fake = FakeNvml(program=program, log_path=tmp_path / "nvml.log", processes=procs)
    rec = run_python(CHILD.format(root=str(tmp_path / "no-rapl")), env=fake.env(lib_dir))
    gpu = next(d for d in rec["devices"] if d["kind"] == "gpu")
    calls = [c for c in read_log(fake.log_path) if c.kind == "energy"]
    exact = program.energy_j(calls[1].t_s, calls[-1].t_s)
    if others:  # 30 % of 120 % of SM use is the run's: a quarter
        assert gpu["machine_energy_j"] == pytest.approx(exact, abs=2e-3)
        assert gpu["energy_j"] == pytest.approx(exact * 0.25, rel=0.01)
        assert gpu["attribution"].startswith("run's share: its processes' SM utilisation")
        assert rec["contention"]["gpu_other_processes"] == 1 and rec["contention"]["contended"]
    else:
        assert gpu["energy_j"] == pytest.approx(exact, abs=2e-3)
        assert gpu["attribution"].startswith("whole GPU: no other process")
        assert rec["contention"]["gpu_other_processes"] == 0


def test_demo_warns_before_it_starts_when_the_machine_is_busy(tmp_path, capsys):
    import subprocess
    import sys

    from footprint.cli import main

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "x.txt").write_text("not empty")  # the demo stops before any work
    burn = "import time\nt = time.time()\nwhile time.time() - t < 5: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.2)
        code = main(["demo", "--store", str(tmp_path / "store")])
    finally:
        for p in burners:
            p.kill()
            p.wait()
    err = capsys.readouterr().err
    assert code != 0
    assert "warning: the machine is busy (other processes use" in err and "contended" in err
