"""A fake ``/proc`` on disk with CPU times the test sets: the machine's (``stat``), a process
tree's (``<pid>/stat``, ``task/<tid>/children``), memory (``statm``, ``smaps_rollup``), load and
``cpuinfo``. Pass its ``root`` as ``proc_root=`` (a hidden option of ``track``).

Files are rewritten whole on every change; readers open and read them each time, as they do
real procfs (whose files are regenerated on every read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class FakeProcess:
    pid: int
    ppid: int
    own_s: float = 0.0
    reaped_s: float = 0.0
    start_ticks: int = 1000
    rss_bytes: int = 100 * 2**20
    pss_bytes: int = 100 * 2**20
    children: list[int] = field(default_factory=list)


class FakeProc:
    """``root``: the directory to pass as ``proc_root``. The tree's root is ``pid`` (default this
    process, so a tracker in this process finds itself); ``cpus`` logical CPUs."""

    def __init__(self, base: Path, *, pid: int | None = None, cpus: int = 4) -> None:
        self.root = Path(base)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cpus = cpus
        self.pid = os.getpid() if pid is None else pid
        self.busy_s = 1000.0
        self.idle_s = 5000.0
        self.steal_s = 0.0
        self.load = 0.5
        self.procs: dict[int, FakeProcess] = {}
        self.add_process(self.pid, ppid=1)
        lines = []
        for i in range(cpus):
            lines += [f"processor\t: {i}", "model name\t: Fake CPU @ 2.00GHz", "siblings\t: 4",
                      "physical id\t: 0", ""]  # fmt: skip
        (self.root / "cpuinfo").write_text("\n".join(lines) + "\n")
        self.write()

    def add_process(self, pid: int, ppid: int, **kw) -> FakeProcess:
        proc = FakeProcess(pid, ppid, **kw)
        self.procs[pid] = proc
        if ppid in self.procs:
            self.procs[ppid].children.append(pid)
        return proc

    def work(self, *, run_s: float = 0.0, other_s: float = 0.0, idle_s: float = 0.0,
             steal_s: float = 0.0, pid: int | None = None) -> None:  # fmt: skip
        """The run's process ``pid`` (default the root) used ``run_s`` CPU-seconds, other
        processes ``other_s``; the machine was idle for ``idle_s`` CPU-seconds."""
        self.procs[self.pid if pid is None else pid].own_s += run_s
        self.busy_s += run_s + other_s
        self.idle_s += idle_s
        self.steal_s += steal_s
        self.write()

    def write(self) -> None:
        def ticks(s: float) -> int:
            return round(s * TICKS)

        (self.root / "stat").write_text(
            f"cpu  {ticks(self.busy_s)} 0 0 {ticks(self.idle_s)} 0 0 0 {ticks(self.steal_s)} 0 0\n"
            + "".join(f"cpu{i} 0 0 0 0 0 0 0 0 0 0\n" for i in range(self.cpus))
        )
        (self.root / "loadavg").write_text(f"{self.load:.2f} 0.40 0.30 1/100 {self.pid}\n")
        for p in self.procs.values():
            d = self.root / str(p.pid)
            (d / "task" / str(p.pid)).mkdir(parents=True, exist_ok=True)
            (d / "stat").write_text(
                f"{p.pid} (fake (proc)) S {p.ppid} 0 0 0 -1 0 0 0 0 0 "
                f"{ticks(p.own_s)} 0 {ticks(p.reaped_s)} 0 20 0 1 0 {p.start_ticks} 0 0\n"
            )
            (d / "task" / str(p.pid) / "children").write_text("".join(f"{c} " for c in p.children))
            (d / "statm").write_text(f"1000 {p.rss_bytes // PAGE} 0 0 0 0 0\n")
            (d / "smaps_rollup").write_text(
                f"00-ff ---p 0 00:00 0 [rollup]\nRss: {p.rss_bytes // 1024} kB\n"
                f"Pss: {p.pss_bytes // 1024} kB\n"
            )
            (d / "status").write_text(f"Name:\tfake\nCpus_allowed_list:\t0-{self.cpus - 1}\n")
            (d / "cgroup").write_text("0::/\n")
