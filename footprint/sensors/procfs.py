"""What the kernel says about CPUs and processes, read from procfs and cgroupfs: the CPUs this
process may use (affinity, cgroup quota), busy CPU time, and a process tree's CPU time and memory.

Parsing only, no energy: :mod:`footprint.sensors.estimate` turns these into estimates. Every
function takes its filesystem root (tests point it at a fake tree); psutil is imported by the
functions that use it, not with this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footprint.errors import UsageError


def available_cpus(
    logical_cpus: int,
    *,
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
) -> tuple[float, str]:
    """Logical CPUs a process may use at once: the smallest of the machine's, its affinity
    (``Cpus_allowed_list``) and its cgroup CPU quota. Returns the number and what set it."""
    proc_dir = Path(proc_root) / (str(pid) if pid is not None else "self")
    limits: list[tuple[float, str]] = [(float(logical_cpus), "all logical CPUs of the machine")]
    affinity = _affinity_count(proc_dir / "status")
    if affinity is not None:
        limits.append((float(affinity), f"CPU affinity: {affinity} CPUs allowed"))
    quota = cgroup_cpu_quota(pid=pid, proc_root=proc_root, sys_root=sys_root)
    if quota is not None:
        limits.append(quota)
    return min(limits, key=lambda limit: limit[0])


def _affinity_count(status: Path) -> int | None:
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            count = 0
            for part in line.partition(":")[2].strip().split(","):
                low, _, high = part.partition("-")
                if low.strip().isdigit():
                    count += int(high) - int(low) + 1 if high else 1
            return count or None
    return None


def cgroup_cpu_quota(
    *,
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    sys_root: str | os.PathLike[str] = "/sys",
) -> tuple[float, str] | None:
    """The tightest CPU quota (in CPUs) on the process's cgroup or its ancestors, or None.

    cgroup v2: ``cpu.max`` ("quota period" or "max period"); v1: ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` (-1: none). Read under ``<sys_root>/fs/cgroup``, following the path in
    ``<proc_root>/<pid|self>/cgroup`` up to the mount, whose own files are the container's when
    it has a cgroup namespace.
    """
    base = Path(sys_root) / "fs" / "cgroup"
    proc_dir = Path(proc_root) / (str(pid) if pid is not None else "self")
    v2_path, v1_path = "/", "/"
    try:
        for line in (proc_dir / "cgroup").read_text(encoding="utf-8").splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                v2_path = path
            elif "cpu" in controllers.split(","):
                v1_path = path
    except (OSError, ValueError):
        pass

    found: list[tuple[float, str]] = []
    for directory in _dirs_up(base, v2_path):
        quota = _read_cpu_max(directory / "cpu.max")
        if quota is not None:
            found.append((quota, f"cgroup v2 quota {directory / 'cpu.max'}: {quota:g} CPUs"))
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for directory in _dirs_up(base / mount, v1_path):
            quota = _read_cfs_quota(directory)
            if quota is not None:
                found.append((quota, f"cgroup v1 quota {directory}: {quota:g} CPUs"))
        if found:
            break
    return min(found, key=lambda q: q[0]) if found else None


def _dirs_up(base: Path, cgroup_path: str) -> list[Path]:
    """``base/cgroup_path`` and its ancestors up to ``base``, those that exist."""
    parts = [p for p in cgroup_path.split("/") if p and p not in (".", "..")]
    dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def _read_cpu_max(path: Path) -> float | None:
    try:
        quota, period = path.read_text(encoding="utf-8").split()[:2]
        if quota == "max":
            return None
        value = int(quota) / int(period)
    except (OSError, ValueError):
        return None
    return value if value > 0 else None


def _read_cfs_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int((directory / "cpu.cfs_period_us").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def busy_cpu_s(times: Any) -> float:
    """Busy CPU-seconds in a ``psutil.cpu_times()`` result: user + nice + system + irq +
    softirq. Idle and iowait are not busy; steal is time the hypervisor gave to another guest;
    guest time is already inside user and nice on Linux."""
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


# --- the process tree's CPU time ------------------------------------------------------------

ProcKey = tuple[int, float]  # (pid, create_time): a pid may be reused


@dataclass(frozen=True)
class ProcCpu:
    """One process's CPU times: its own, and those of its descendants it has reaped."""

    own_s: float  # user + system
    reaped_s: float  # children_user + children_system
    parent: ProcKey | None  # None: the root, or a parent outside the tree


class ProcessTreeCpu:
    """Cumulative CPU-seconds used by a process and all its descendants since creation,
    including descendants that have exited.

    A process's ``children_user/children_system`` grow by the *final* CPU time of each child it
    reaps (which includes what that child had reaped). So each read counts: the growth of every
    known process's own time; all the time of a process born since the previous read; and the
    growth of a process's reaped time *minus* what was already counted for its descendants that
    vanished since (they are inside that growth). That subtraction is kept for one more read,
    because a parent may reap a child between our listing the tree and reading the parent. A
    process that left the tree but still runs (re-parented away) keeps what it was counted;
    its later work is not the tree's. Each read adds a non-negative amount.

    ``snapshot`` and ``exists`` are injectable for tests; by default they read ``/proc``
    directly (about 30x cheaper than psutil: the sampler reads the tree at 10 Hz), or use psutil
    where there is no procfs.
    """

    def __init__(
        self,
        pid: int,
        *,
        snapshot: Callable[[], dict[ProcKey, ProcCpu]] | None = None,
        exists: Callable[[ProcKey], bool] | None = None,
        proc_root: str | os.PathLike[str] = "/proc",
    ) -> None:
        self.reader: ProcTreeReader | None = None
        if (snapshot is None or exists is None) and _readable_stat(proc_root, pid):
            self.reader = ProcTreeReader(pid, os.fspath(proc_root))
            snapshot = snapshot or self.reader.snapshot
            exists = exists or self.reader.exists
        if snapshot is None or exists is None:
            import psutil

            try:
                root = psutil.Process(pid)
            except psutil.NoSuchProcess as exc:
                raise UsageError(
                    f"no process with pid {pid}: pass the pid of a running process, or "
                    "pid=None for this one"
                ) from exc
            snapshot = snapshot or (lambda: _psutil_tree_snapshot(root))
            exists = exists or _psutil_exists
        self.pid = pid
        self._snapshot = snapshot
        self._exists = exists
        self._lock = threading.Lock()
        self._seen = snapshot()
        # per surviving ancestor: (debt from the previous read, debt from this read)
        self._debt: dict[ProcKey, tuple[float, float]] = {}
        self._total_s = 0.0
        self.pids: frozenset[int] = frozenset(k[0] for k in self._seen)

    def cpu_s(self) -> float:
        """CPU-seconds used by the tree since this object was created (non-decreasing)."""
        with self._lock:
            now = self._snapshot()
            seen = self._seen
            added = 0.0
            new_debt: dict[ProcKey, float] = {}
            for key, old in seen.items():
                if key in now or self._exists(key):
                    continue
                ancestor = old.parent
                while ancestor is not None and ancestor not in now:
                    ancestor = seen[ancestor].parent if ancestor in seen else None
                if ancestor is not None:
                    new_debt[ancestor] = new_debt.get(ancestor, 0.0) + old.own_s + old.reaped_s
            debt = {
                key: (older + newer, new_debt.pop(key, 0.0))
                for key, (older, newer) in self._debt.items()
            }
            debt.update((key, (0.0, amount)) for key, amount in new_debt.items())
            self._debt = {}
            for key, cur in now.items():
                before = seen.get(key)
                if before is None:
                    added += cur.own_s + cur.reaped_s
                    continue
                added += max(0.0, cur.own_s - before.own_s)
                growth = max(0.0, cur.reaped_s - before.reaped_s)
                older, newer = debt.pop(key, (0.0, 0.0))
                paid = min(growth, older)
                growth, older = growth - paid, older - paid
                paid = min(growth, newer)
                growth, newer = growth - paid, newer - paid
                added += growth
                if newer > 0.0:  # older debt is dropped: it has had its extra read
                    self._debt[key] = (newer, 0.0)
            self._seen = now
            self.pids = frozenset(k[0] for k in now)
            self._total_s += added
            return self._total_s


# --- direct /proc reads (Linux) -----------------------------------------------------------------

_TICKS_PER_S = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def _read_bytes(path: str, files: ProcFiles | None = None) -> bytes | None:
    if files is not None:
        return files.read(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class ProcFiles:
    """procfs files kept open and re-read with ``pread`` at offset 0, where the kernel
    regenerates their content: on the sampler's cold wake-ups a re-read costs ~70 us against
    ~300 us for open + read + close. A file whose process has gone fails to read (ESRCH) and
    is closed; a held file never shows another process, even if its pid is reused. At most
    ``max_open`` are held; past that, files are opened for each read.
    """

    def __init__(self, max_open: int = 256) -> None:
        self._fds: dict[str, int] = {}
        self._max_open = max_open
        self._lock = threading.Lock()

    def read(self, path: str, size: int = 1 << 16) -> bytes | None:
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None
                if len(self._fds) < self._max_open:
                    self._fds[path] = fd
                else:
                    try:
                        return os.pread(fd, size, 0)
                    except OSError:
                        return None
                    finally:
                        os.close(fd)
            try:
                return os.pread(fd, size, 0)
            except OSError:  # the process exited
                del self._fds[path]
                os.close(fd)
                return None

    def keep_only(self, prefixes: set[str]) -> None:
        """Close every held file whose path starts with none of ``prefixes`` (processes that
        left the tree), and any that is not a process's."""
        with self._lock:
            for path in [p for p in self._fds if not p.startswith(tuple(prefixes))]:
                os.close(self._fds.pop(path))

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    @classmethod
    def shared(cls, name: str) -> ProcFiles:
        """This process's held-open files for ``name`` (kept in the runtime, so later runs
        reuse them: no opening at start, no closing at stop; a forked child has its own)."""
        from footprint import runtime

        return runtime.get().cached(f"proc_files:{name}:{os.getpid()}", cls)

    def __del__(self, _close: Any = os.close) -> None:
        # No lock here: in a forked child the lock may be held by a thread that no longer
        # exists (the parent's sampler at the instant of the fork), and waiting would hang it.
        # os.close is bound at definition: at interpreter exit the module's globals may already
        # be gone (None) when the runtime's tables are collected.
        for fd in list(self._fds.values()):
            try:
                _close(fd)
            except OSError:
                pass
        self._fds.clear()


def _readable_stat(proc_root: str | os.PathLike[str], pid: int) -> bool:
    return _read_bytes(os.path.join(os.fspath(proc_root), str(pid), "stat")) is not None


def _stat_fields(proc_root: str, pid: int, files: ProcFiles | None = None) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces and
    parentheses: split after the last ')'), so field 3 of proc(5), the state, is index 0."""
    data = _read_bytes(f"{proc_root}/{pid}/stat", files)
    if data is None:
        return None
    fields = data.rpartition(b")")[2].split()
    return fields if len(fields) >= 20 else None


class ProcTreeReader:
    """Reads a process tree's CPU times from ``/proc`` (no psutil), its files held open
    (:class:`ProcFiles`). Each process's threads are listed again at most every
    ``relist_s``: a child forked by a thread started since is found then, with all its CPU time
    (:class:`ProcessTreeCpu` counts a newcomer's whole time, and a reaped one's through its
    parent)."""

    def __init__(
        self,
        pid: int,
        proc_root: str = "/proc",
        *,
        relist_s: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.pid, self.root = pid, proc_root
        self.files = ProcFiles.shared(f"tree:{proc_root}:{pid}")
        self._relist_s = relist_s
        self._clock = clock or time.monotonic
        self._tids: dict[int, tuple[float, list[str]]] = {}

    def _children(self, pid: int) -> list[int]:
        now = self._clock()
        known = self._tids.get(pid)
        if known is None or now - known[0] >= self._relist_s:
            try:
                tids = os.listdir(f"{self.root}/{pid}/task")
            except OSError:
                return []
            self._tids[pid] = (now, tids)
        else:
            tids = known[1]
        out: list[int] = []
        for tid in tids:
            data = self.files.read(f"{self.root}/{pid}/task/{tid}/children")
            if data:
                out.extend(int(x) for x in data.split())
        return out

    def snapshot(self) -> dict[ProcKey, ProcCpu]:
        """CPU times of the root and its descendants. A process's key is (pid, start time in
        clock ticks since boot), so a reused pid is a new process."""
        rows: list[tuple[int, float, int, float, float]] = []
        todo, seen = [self.pid], set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            f = _stat_fields(self.root, p, self.files)
            if f is None:  # exited since its parent listed it
                continue
            # proc(5): ppid (4), utime (14), stime (15), cutime (16), cstime (17), starttime (22)
            ppid, start = int(f[1]), float(f[19])
            own = (int(f[11]) + int(f[12])) / _TICKS_PER_S
            reaped = (int(f[13]) + int(f[14])) / _TICKS_PER_S
            rows.append((p, start, ppid, own, reaped))
            todo.extend(self._children(p))
        alive = {p for p, _, _, _, _ in rows}
        for gone in [p for p in self._tids if p not in alive]:
            del self._tids[gone]
        self.files.keep_only({f"{self.root}/{p}/" for p in alive})
        keys = {p: (p, start) for p, start, _, _, _ in rows}
        return {
            keys[p]: ProcCpu(own_s=own, reaped_s=reaped, parent=keys.get(ppid))
            for p, _, ppid, own, reaped in rows
        }

    def exists(self, key: ProcKey) -> bool:
        return _proc_exists(self.root, key)


def proc_tree_snapshot(pid: int, proc_root: str = "/proc") -> dict[ProcKey, ProcCpu]:
    """CPU times of ``pid`` and its descendants, read from ``/proc`` once."""
    return ProcTreeReader(pid, proc_root).snapshot()


def _proc_exists(proc_root: str, key: ProcKey) -> bool:
    f = _stat_fields(proc_root, key[0])
    return f is not None and float(f[19]) == key[1]


@dataclass(frozen=True)
class MachineCpu:
    """The machine's CPU time so far, from the first line of ``/proc/stat`` (seconds summed
    over CPUs): ``busy`` = user + nice + system + irq + softirq; ``steal`` is time the
    hypervisor gave other guests; ``total`` adds idle and iowait to both."""

    busy_s: float
    steal_s: float
    total_s: float
    cpus: int = 0  # the ``cpuN`` lines: logical CPUs online


def machine_cpu(
    proc_root: str | os.PathLike[str] = "/proc", files: ProcFiles | None = None
) -> MachineCpu | None:
    """The machine's CPU times, or None where ``/proc/stat`` cannot be read. With ``files``
    (held open) only its first 4 KiB are read: the ``cpuN`` count may then fall short."""
    path = os.path.join(os.fspath(proc_root), "stat")
    data = files.read(path, 4096) if files is not None else _read_bytes(path)
    if not data:
        return None
    lines = data.split(b"\n")
    first = lines[0].split()
    cpus = sum(1 for line in lines[1:] if line.startswith(b"cpu"))
    if not first or first[0] != b"cpu" or len(first) < 5:
        return None
    v = [int(x) for x in first[1:9]] + [0] * (9 - len(first))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    busy = user + nice + system + irq + softirq
    return MachineCpu(
        busy / _TICKS_PER_S,
        steal / _TICKS_PER_S,
        (busy + idle + iowait + steal) / _TICKS_PER_S,
        cpus,
    )


def load_avg_1m(
    proc_root: str | os.PathLike[str] = "/proc", files: ProcFiles | None = None
) -> float | None:
    """The 1-minute load average (``/proc/loadavg``), or None."""
    data = _read_bytes(os.path.join(os.fspath(proc_root), "loadavg"), files)
    try:
        return float(data.split()[0]) if data else None
    except ValueError:
        return None


def tree_memory_bytes(
    pids: frozenset[int] | set[int],
    proc_root: str = "/proc",
    *,
    pss: bool,
    files: ProcFiles | None = None,
) -> int:
    """Memory of the processes ``pids``: their proportional set size (``smaps_rollup``'s Pss:
    pages shared between processes, e.g. a forked worker's, are divided among them, so the tree
    counts each page once) with ``pss``, else their resident set size (``statm``, cheap, but a
    shared page counts once per process)."""
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    total = 0
    for pid in pids:
        if pss:
            data = _read_bytes(f"{proc_root}/{pid}/smaps_rollup")
            if data:
                for line in data.split(b"\n"):
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
                continue
        data = _read_bytes(f"{proc_root}/{pid}/statm", files)
        if data:
            parts = data.split()
            if len(parts) > 1:
                total += int(parts[1]) * page
    return total


def _psutil_tree_snapshot(root: Any) -> dict[ProcKey, ProcCpu]:
    import psutil

    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    rows: list[tuple[int, float, int, Any]] = []
    for proc in procs:
        try:
            with proc.oneshot():
                rows.append((proc.pid, proc.create_time(), proc.ppid(), proc.cpu_times()))
        except psutil.NoSuchProcess:  # exited (and was reaped) since the listing
            continue
    keys = {pid: (pid, created) for pid, created, _, _ in rows}
    return {
        keys[pid]: ProcCpu(
            own_s=times.user + times.system,
            reaped_s=times.children_user + times.children_system,
            parent=keys.get(ppid),
        )
        for pid, _, ppid, times in rows
    }


def _psutil_exists(key: ProcKey) -> bool:
    import psutil

    try:
        return abs(psutil.Process(key[0]).create_time() - key[1]) < 0.01
    except psutil.NoSuchProcess:
        return False


def _tree_rss_bytes(root: Any) -> int:
    import psutil

    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _root_process(pid: int | None) -> Any:
    import psutil

    pid = os.getpid() if pid is None else pid
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess as exc:
        raise UsageError(
            f"no process with pid {pid}: pass the pid of a running process, "
            "or pid=None for this one"
        ) from exc
