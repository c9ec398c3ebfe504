"""CPU and RAM estimate sensors: TDP lookup, share of a host, utilisation, energy arithmetic."""

from __future__ import annotations

import csv
import os
import select
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import pytest

from footprint.sensors import cpu_models
from footprint.sensors.cpu_models import (
    codecarbon_cpu_power_csv,
    lookup_tdp,
    normalise_cpu_name,
)
from footprint.sensors.estimate import (
    CPU_METHOD,
    RAM_METHOD,
    CpuEstimateSensor,
    RamEstimateSensor,
    cpu_power_model,
    discover_estimates,
)
from footprint.sensors.procfs import ProcCpu, ProcessTreeCpu, available_cpus

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")


@pytest.fixture(autouse=True)
def _fresh_cpuinfo():
    cpu_models.clear_cpuinfo_cache()
    yield
    cpu_models.clear_cpuinfo_cache()


def fake_tree(
    tmp_path: Path,
    *,
    model: str = "Test CPU 9000",
    processors: int = 8,
    siblings: int | None = 8,
    hypervisor: bool = False,
    cgroup: str = "0::/\n",
    affinity: str | None = None,
) -> tuple[Path, Path]:
    """A /proc and /sys with just what the estimate reads."""
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (sys_root / "fs" / "cgroup").mkdir(parents=True)
    flags = "fpu sse2 hypervisor" if hypervisor else "fpu sse2"
    blocks = []
    for n in range(processors):
        block = f"processor\t: {n}\nmodel name\t: {model}\nphysical id\t: 0\n"
        if siblings is not None:
            block += f"siblings\t: {siblings}\n"
        block += f"core id\t\t: {n}\nflags\t\t: {flags}\n"
        blocks.append(block)
    (proc / "cpuinfo").write_text("\n".join(blocks))
    (proc / "self" / "cgroup").write_text(cgroup)
    if affinity is not None:
        (proc / "self" / "status").write_text(f"Name:\tpython\nCpus_allowed_list:\t{affinity}\n")
    return proc, sys_root


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "cpu_power.csv"
    path.write_text(
        "Name,TDP\nTest CPU 9000,100\nOther CPU 1,50.0\nTwin CPU 2,10\nTwin  CPU 2,12\n"
    )
    return path


# --- normalisation and the TDP table ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "intel xeon platinum 8259cl"),
        ("AMD EPYC 7763 64-Core Processor", "amd epyc 7763"),
        ("AMD Ryzen 7 1700 Eight-Core Processor", "amd ryzen 7 1700"),
        ("11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", "intel core i7-1185g7"),
        ("AMD Ryzen 7 4800H with Radeon Graphics", "amd ryzen 7 4800h"),
        ("Intel(R) Xeon(R) Processor", "intel xeon"),
        ("  AMD   EPYC ", "amd epyc"),
    ],
)
def test_normalise_cpu_name(raw: str, normalised: str) -> None:
    assert normalise_cpu_name(raw) == normalised


def _csv_tdp(name: str) -> float:
    with open(codecarbon_cpu_power_csv(), newline="", encoding="utf-8") as f:
        (tdp,) = [float(row[1]) for row in csv.reader(f) if row[0] == name]
    return tdp


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "Intel Xeon Platinum 8259CL"),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763"),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "Intel Core i7-8700K"),
    ],
)
def test_lookup_exact_match_in_codecarbon_table(model: str, row: str) -> None:
    match = lookup_tdp(model)
    assert match.row == row
    assert match.tdp_w == _csv_tdp(row)
    assert match.reason == f"codecarbon cpu_power.csv exact match: {row}"


@pytest.mark.parametrize(
    "model", ["AMD EPYC", "Intel(R) Xeon(R) Processor", "Intel(R) Xeon(R) CPU @ 2.20GHz"]
)
def test_lookup_vague_models_get_no_match(model: str) -> None:
    match = lookup_tdp(model)
    assert (match.row, match.tdp_w) == (None, None)
    assert match.reason == f"no exact match for {model!r}"


def test_lookup_rows_that_disagree_are_no_match(table: Path) -> None:
    match = lookup_tdp("Twin CPU 2", table)
    assert match.tdp_w is None
    assert match.reason.startswith("ambiguous rows for 'Twin CPU 2'")


def test_lookup_is_cheap() -> None:
    lookup_tdp("AMD EPYC 7763 64-Core Processor")  # the file is read once per process
    start = time.perf_counter()
    lookup_tdp("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz")  # a model not looked up before
    assert time.perf_counter() - start < 0.02


def test_estimate_module_import_is_light() -> None:
    code = (
        "import sys, footprint.sensors.estimate, footprint.host\n"
        "bad = {'psutil', 'pandas', 'matplotlib', 'codecarbon', 'torch', 'cpuinfo'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    repo = str(Path(cpu_models.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": repo}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


# --- share of a host --------------------------------------------------------------------------


def test_bare_metal_full_machine_is_one_package(tmp_path: Path, table: Path) -> None:
    proc, sys_root = fake_tree(tmp_path)
    model = cpu_power_model(proc_root=proc, sys_root=sys_root, table=table)
    assert (model.tdp_w, model.tdp_per, model.share) == (100.0, "package", 1.0)
    assert model.tdp_source == "codecarbon cpu_power.csv exact match: Test CPU 9000"
    assert model.host_threads_per_package == 8
    assert model.max_power_w == 100.0


def test_share_from_cgroup_v2_cpu_max(tmp_path: Path, table: Path) -> None:
    proc, sys_root = fake_tree(tmp_path)
    (sys_root / "fs" / "cgroup" / "cpu.max").write_text("200000 100000\n")
    model = cpu_power_model(proc_root=proc, sys_root=sys_root, table=table)
    assert model.available_cpus == 2.0
    assert model.share == 0.25
    assert model.max_power_w == 25.0
    assert "cgroup v2 quota" in model.available_cpus_basis


def test_cgroup_v2_tightest_quota_on_the_path_wins(tmp_path: Path, table: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, cgroup="0::/outer/inner\n")
    outer = sys_root / "fs" / "cgroup" / "outer"
    (outer / "inner").mkdir(parents=True)
    (outer / "cpu.max").write_text("150000 100000\n")
    (outer / "inner" / "cpu.max").write_text("max 100000\n")
    available, _ = available_cpus(8, proc_root=proc, sys_root=sys_root)
    assert available == 1.5


def test_share_from_cgroup_v1_cfs_quota(tmp_path: Path, table: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, cgroup="2:cpuacct:/\n1:cpu:/job\n")
    job = sys_root / "fs" / "cgroup" / "cpu" / "job"
    job.mkdir(parents=True)
    (job / "cpu.cfs_quota_us").write_text("300000\n")
    (job / "cpu.cfs_period_us").write_text("100000\n")
    (job.parent / "cpu.cfs_quota_us").write_text("-1\n")
    (job.parent / "cpu.cfs_period_us").write_text("100000\n")
    model = cpu_power_model(proc_root=proc, sys_root=sys_root, table=table)
    assert model.available_cpus == 3.0
    assert model.share == 3 / 8


def test_share_from_affinity(tmp_path: Path, table: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, affinity="0-1,4")
    model = cpu_power_model(proc_root=proc, sys_root=sys_root, table=table)
    assert model.available_cpus == 3.0
    assert model.share == 3 / 8


def test_vm_share_uses_core_count_in_model_name(tmp_path: Path) -> None:
    name = "AMD EPYC 7763 64-Core Processor"
    proc, sys_root = fake_tree(tmp_path, model=name, processors=4, siblings=4, hypervisor=True)
    model = cpu_power_model(proc_root=proc, sys_root=sys_root)
    assert model.vm is True
    assert model.host_threads_per_package == 128  # 64 cores x 2 threads assumed, not the VM's 4
    assert model.tdp_w == _csv_tdp("AMD EPYC 7763")
    assert model.share == 4 / 128
    assert model.max_power_w == pytest.approx(_csv_tdp("AMD EPYC 7763") * 4 / 128)


def test_vm_reporting_only_amd_epyc_gets_labelled_default(tmp_path: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, model="AMD EPYC", processors=2, hypervisor=True)
    model = cpu_power_model(proc_root=proc, sys_root=sys_root)
    assert (model.tdp_w, model.tdp_per, model.share) == (6.0, "logical cpu", 2.0)
    assert model.tdp_source == "default: 6 W per logical CPU, no exact match for 'AMD EPYC'"
    assert model.max_power_w == 12.0


def test_vm_with_known_tdp_but_unknown_package_size_uses_default(tmp_path: Path) -> None:
    name = "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"
    proc, sys_root = fake_tree(tmp_path, model=name, processors=4, siblings=4, hypervisor=True)
    model = cpu_power_model(proc_root=proc, sys_root=sys_root)
    assert model.tdp_per == "logical cpu"
    assert model.tdp_source.startswith("default: 6 W per logical CPU, codecarbon cpu_power.csv")
    assert "unusable" in model.tdp_source
    assert model.max_power_w == 24.0


# --- CPU energy -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeCpuTimes:
    """Cumulative machine CPU times; ``add`` spends time in named fields."""

    def __init__(self) -> None:
        self.fields = dict.fromkeys(CpuTimes._fields, 0.0)

    def add(self, **seconds: float) -> None:
        for name, value in seconds.items():
            self.fields[name] += value

    def __call__(self) -> CpuTimes:
        return CpuTimes(**self.fields)


def _quota_model(tmp_path: Path, table: Path):
    proc, sys_root = fake_tree(tmp_path)  # 8 threads per package, 100 W
    (sys_root / "fs" / "cgroup" / "cpu.max").write_text("200000 100000\n")  # 2 CPUs
    return cpu_power_model(proc_root=proc, sys_root=sys_root, table=table)


def test_machine_energy_is_tdp_x_utilisation_x_share(tmp_path: Path, table: Path) -> None:
    clock, times = FakeClock(), FakeCpuTimes()
    sensor = CpuEstimateSensor(model=_quota_model(tmp_path, table), cpu_times=times, clock=clock)
    assert sensor.read().energy_j == 0.0
    # 50 % of the 2 available CPUs for 2 s; idle, iowait, steal and guest time are not busy
    # (guest is already inside user on Linux).
    clock.t += 2.0
    times.add(user=1.5, system=0.25, irq=0.125, softirq=0.125, idle=2.0, steal=1.0, guest=0.5)
    assert sensor.read().energy_j == 100.0 * 0.5 * 0.25 * 2.0  # 25 J
    # nothing busy for 1 s: nothing added
    clock.t += 1.0
    times.add(idle=2.0)
    assert sensor.read().energy_j == 25.0
    assert sensor.device.method == CPU_METHOD
    assert sensor.device.measured is False
    assert (sensor.device.id, sensor.device.kind) == ("cpu", "cpu")
    assert sensor.device.details["tdp_w"] == 100.0
    assert sensor.device.details["share"] == 0.25


def test_busy_time_beyond_available_cpus_is_not_counted(tmp_path: Path, table: Path) -> None:
    clock, times = FakeClock(), FakeCpuTimes()
    sensor = CpuEstimateSensor(model=_quota_model(tmp_path, table), cpu_times=times, clock=clock)
    clock.t += 1.0
    times.add(user=8.0)  # the whole host busy: the container can use only 2 CPUs
    assert sensor.read().energy_j == 25.0  # 100 W x 100 % x 0.25 for 1 s


def test_tick_lag_is_absorbed_by_recent_spare_capacity(tmp_path: Path, table: Path) -> None:
    clock, times = FakeClock(), FakeCpuTimes()
    sensor = CpuEstimateSensor(model=_quota_model(tmp_path, table), cpu_times=times, clock=clock)
    clock.t += 1.0
    times.add(user=1.0)  # half busy: 1 CPU-s of spare capacity, of which 0.2 CPU-s is kept
    assert sensor.read().energy_j == 12.5
    clock.t += 0.01
    times.add(user=0.2)  # ticks reported late: 0.2 CPU-s within 0.01 s on 2 CPUs
    assert sensor.read().energy_j == pytest.approx(12.5 + 0.2 * 12.5)


def test_default_model_energy_per_busy_logical_cpu(tmp_path: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, model="AMD EPYC", processors=2, hypervisor=True)
    clock, times = FakeClock(), FakeCpuTimes()
    sensor = CpuEstimateSensor(proc_root=proc, sys_root=sys_root, cpu_times=times, clock=clock)
    clock.t += 3.0
    times.add(user=3.0)  # one of two CPUs busy for 3 s at 6 W
    assert sensor.read().energy_j == 18.0
    assert sensor.device.details["tdp_source"].startswith("default: 6 W per logical CPU")


def test_reads_are_thread_safe(tmp_path: Path, table: Path) -> None:
    import threading

    times = FakeCpuTimes()
    clock_lock = threading.Lock()
    state = {"t": 0.0}

    def clock() -> float:
        with clock_lock:  # every read sees time and busy time advance together
            state["t"] += 0.001
            times.add(user=0.001)
            return state["t"]

    sensor = CpuEstimateSensor(model=_quota_model(tmp_path, table), cpu_times=times, clock=clock)
    threads = [
        threading.Thread(target=lambda: [sensor.read() for _ in range(500)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = sensor.read().energy_j
    # busy CPU-s counted <= busy CPU-s spent (2001 ticks of 1 ms); each read sees a later clock
    assert final <= 2.001 * 12.5 + 1e-9
    assert final >= 2.0 * 12.5 - 0.05


def test_bad_cpu_utilisation_names_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="'machine'.*'process'"):
        discover_estimates(need_cpu=True, need_ram=False, cpu_utilisation="gpu")
    with pytest.raises(ValueError, match="not one of"):
        CpuEstimateSensor(cpu_utilisation="Machine")


# --- process-tree utilisation -----------------------------------------------------------------


def _key(pid: int) -> tuple[int, float]:
    return (pid, 1.0)


P, C, G = _key(10), _key(11), _key(12)


class FakeTree:
    def __init__(self, first: dict) -> None:
        self.snap = first
        self.alive: set = set()

    def tree(self) -> ProcessTreeCpu:
        return ProcessTreeCpu(1, snapshot=lambda: self.snap, exists=lambda k: k in self.alive)


def test_tree_counts_a_reaped_child_once() -> None:
    fake = FakeTree({P: ProcCpu(1.0, 0.0, None), C: ProcCpu(2.0, 0.0, P)})
    tree = fake.tree()
    fake.snap = {P: ProcCpu(1.0, 0.0, None), C: ProcCpu(2.5, 0.0, P)}
    assert tree.cpu_s() == 0.5
    fake.snap = {P: ProcCpu(1.0, 3.0, None)}  # C used 0.5 s more, exited and was reaped by P
    assert tree.cpu_s() == 1.0


def test_tree_child_reaped_between_listing_and_parent_read() -> None:
    fake = FakeTree({P: ProcCpu(1.0, 0.0, None), C: ProcCpu(2.0, 0.0, P)})
    tree = fake.tree()
    fake.snap = {P: ProcCpu(1.0, 0.0, None)}  # C gone, P's reaped time not yet updated
    assert tree.cpu_s() == 0.0
    fake.snap = {P: ProcCpu(1.0, 3.0, None)}
    assert tree.cpu_s() == 1.0


def test_tree_child_not_reaped_by_parent_does_not_eat_later_work() -> None:
    fake = FakeTree({P: ProcCpu(1.0, 0.0, None), C: ProcCpu(2.0, 0.0, P)})
    tree = fake.tree()
    fake.snap = {P: ProcCpu(1.0, 0.0, None)}  # C auto-reaped: never in P's reaped time
    assert tree.cpu_s() == 0.0
    assert tree.cpu_s() == 0.0
    fake.snap = {P: ProcCpu(1.0, 5.0, None)}  # later, a short-lived child used 5 s
    assert tree.cpu_s() == 5.0


def test_tree_grandchild_reaped_through_exited_child() -> None:
    fake = FakeTree({P: ProcCpu(0.0, 0.0, None), C: ProcCpu(1.0, 0.0, P), G: ProcCpu(1.0, 0.0, C)})
    tree = fake.tree()
    # G used 1 s more and was reaped by C (2 s); C used 1 s more, exited, was reaped by P
    fake.snap = {P: ProcCpu(0.0, 2.0 + 2.0 + 0.0, None)}
    assert tree.cpu_s() == 2.0


def test_tree_new_processes_and_escapees() -> None:
    fake = FakeTree({P: ProcCpu(0.0, 0.0, None), C: ProcCpu(1.0, 0.0, P)})
    tree = fake.tree()
    fake.alive.add(C)  # C left the tree (re-parented) but still runs: keep what was counted
    fake.snap = {P: ProcCpu(0.5, 0.0, None), G: ProcCpu(1.5, 0.5, P)}  # G born since
    assert tree.cpu_s() == 0.5 + 2.0


def _start(code: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


_PARENT = """
import resource, subprocess, sys
print("ready", flush=True)
sys.stdin.readline()
burn = "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"
before = resource.getrusage(resource.RUSAGE_CHILDREN)
subprocess.run([sys.executable, "-c", burn], check=True)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(used, flush=True)
sys.stdin.readline()
"""


def test_process_tree_attributes_a_child_that_burns_cpu_and_exits() -> None:
    parent = _start(_PARENT)
    try:
        tree = ProcessTreeCpu(parent.pid)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        readings = [tree.cpu_s()]
        # read every 50 ms while the grandchild runs, as the sampler would
        while not select.select([parent.stdout], [], [], 0.05)[0]:
            readings.append(tree.cpu_s())
        child_cpu_s = float(parent.stdout.readline())
        total = tree.cpu_s()
    finally:
        parent.stdin.write("done\n")
        parent.stdin.flush()
        parent.wait(timeout=10)
    assert len(readings) > 5
    assert readings == sorted(readings)
    assert max(readings) > 0.2  # seen while the grandchild was still running
    assert child_cpu_s >= 0.6
    # the grandchild's CPU time (measured by its parent) counted once, plus the parent's own
    # few ms of spawning it; /proc counts in 10 ms clock ticks
    assert child_cpu_s - 0.02 <= total <= child_cpu_s + 0.1


def test_process_tree_idle_gets_about_zero(tmp_path: Path, table: Path) -> None:
    idle = _start("import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n")
    try:
        sensor = CpuEstimateSensor(
            cpu_utilisation="process", pid=idle.pid, model=_quota_model(tmp_path, table)
        )
        time.sleep(0.3)
        energy_j = sensor.read().energy_j
        assert sensor.device.details["pid"] == idle.pid
    finally:
        idle.stdin.write("done\n")
        idle.stdin.flush()
        idle.wait(timeout=10)
    assert energy_j <= 0.02 * 12.5  # at most 20 ms of CPU at 12.5 W per busy CPU


def test_process_mode_unknown_pid_is_a_clear_error() -> None:
    from footprint.errors import UsageError

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(UsageError, match=f"no process with pid {dead.pid}"):
        CpuEstimateSensor(cpu_utilisation="process", pid=dead.pid)


# --- RAM --------------------------------------------------------------------------------------


def test_ram_energy_is_w_per_gb_x_gb_in_use() -> None:
    clock = FakeClock()
    used = {"bytes": 4 * 2**30}
    sensor = RamEstimateSensor(used_bytes=lambda: used["bytes"], clock=clock)
    clock.t += 10.0
    assert sensor.read().energy_j == pytest.approx(0.3725 * 4 * 10)  # 14.9 J
    used["bytes"] = 0  # a linear ramp 4 -> 0 GB over 2 s averages 2 GB
    clock.t += 2.0
    assert sensor.read().energy_j == pytest.approx(14.9 + 0.3725 * 2 * 2)
    assert (sensor.device.id, sensor.device.kind) == ("ram", "ram")
    assert sensor.device.method == RAM_METHOD
    assert sensor.device.measured is False
    assert sensor.device.details["w_per_gb"] == 0.3725


def test_ram_rejects_nonsense_power() -> None:
    with pytest.raises(ValueError, match="w_per_gb"):
        RamEstimateSensor(w_per_gb=0.0, used_bytes=lambda: 0)


# --- discovery --------------------------------------------------------------------------------


def test_discover_estimates_builds_what_is_needed(tmp_path: Path) -> None:
    proc, sys_root = fake_tree(tmp_path, model="AMD EPYC", processors=2, hypervisor=True)
    sensors, status = discover_estimates(
        need_cpu=True, need_ram=True, proc_root=proc, sys_root=sys_root
    )
    assert [s.device.id for s in sensors] == ["cpu", "ram"]
    assert [s.device.method for s in sensors] == [CPU_METHOD, RAM_METHOD]
    assert status.source == "estimate" and status.available
    assert status.summary.startswith("CPU 'AMD EPYC': 6 W per logical cpu x 2 = 12 W")
    assert "default: 6 W per logical CPU" in status.fix

    sensors, status = discover_estimates(need_cpu=False, need_ram=True)
    assert [s.device.id for s in sensors] == ["ram"]
    sensors, status = discover_estimates(need_cpu=False, need_ram=False)
    assert sensors == [] and status.summary.startswith("not needed")
