"""Persistence of run records: one JSON file per run in a store directory.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a reader never
sees half a record and many processes can write at once: each run owns its own file, named by its
unique id. Records are checked once, when loaded (:meth:`RunRecord.from_dict`): a corrupt,
truncated or mistyped file, or one whose name and id disagree, is skipped with one warning naming
the file and the field, never a crash, and the rest of the store still loads.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from footprint.errors import FootprintWarning, RunNotFoundError, StoreError
from footprint.files import create_unique, write_atomic
from footprint.record.checks import RecordError, is_run_id

if TYPE_CHECKING:
    from footprint.record.model import RunRecord

DEFAULT_STORE = "footprint-runs"
ENV_VAR = "FOOTPRINT_DIR"
_SUFFIX = ".json"
#: ``<store>/jobs/<job id>/<run id>.json``: the parts of a job of many processes
JOBS_DIR = "jobs"
#: ``<store>/jobs/by-wrapper/<run id>``: the job a wrapping ``footprint run``'s command joined
BY_WRAPPER = "by-wrapper"


def default_store_path() -> Path:
    """``$FOOTPRINT_DIR`` if set, else ``./footprint-runs``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_STORE)


class Store:
    """A directory of run records.

    ``store`` is the directory; None means ``$FOOTPRINT_DIR`` or ``./footprint-runs``.
    """

    def __init__(self, store: str | os.PathLike | None = None) -> None:
        if store is not None and not os.fspath(store).strip():
            raise StoreError(
                "store is empty: give a directory, or None for $FOOTPRINT_DIR or ./footprint-runs"
            )
        # Absolute now: a run that outlives an os.chdir must keep writing to the same place.
        self.path = (Path(store) if store is not None else default_store_path()).absolute()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- writing ---------------------------------------------------------------------------

    def ensure_writable(self) -> None:
        """Create the directory if needed and prove it can be written; StoreError if not.

        Called when a run starts, so a bad store fails before the tracked code runs.
        """
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                f"store {str(self.path)!r} is a file, not a directory: pass store= (or --store, or "
                f"set {ENV_VAR}) to a directory"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = create_unique(self.path, ".probe-", ".tmp")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(
                f"cannot write run store {str(self.path)!r}: {exc.strerror or exc}; choose a "
                f"writable directory with store= (or --store, or {ENV_VAR})"
            ) from exc

    def file_for(self, run_id: str) -> Path:
        """``<store>/<id>.json``; StoreError for anything but a well-formed id (an id is never
        a path: ``../x`` must not write outside the store)."""
        if not is_run_id(run_id):
            raise StoreError(
                f"{run_id!r} is not a run id (32 lowercase hexadecimal characters): refusing to "
                "use it as a file name"
            )
        return self.path / f"{run_id}{_SUFFIX}"

    def part_file(self, job_id: str, run_id: str) -> Path:
        """``<store>/jobs/<job id>/<run id>.json`` (both checked like :meth:`file_for`)."""
        return self.jobs_path / self.file_for(job_id).stem / self.file_for(run_id).name

    def save(self, record: RunRecord) -> Path:
        """Write ``record`` atomically to ``<store>/<id>.json`` (a job's part: to
        ``<store>/jobs/<job id>/<id>.json``) and return the path."""
        from footprint.record.model import RunRecord

        if not isinstance(record, RunRecord):
            raise TypeError(
                f"Store.save takes a RunRecord, got {type(record).__name__}: build one with "
                "footprint.record.new_record(...) or RunRecord.from_dict(...)"
            )
        if record.job is not None and record.job.role == "job":
            raise StoreError(
                f"record {record.id} is a job assembled from its parts: the store keeps the "
                "parts (save each part, or change them and let the job be built again)"
            )
        if record.is_part:
            assert record.job is not None
            target = self.part_file(record.job.id, record.id)
        else:
            target = self.file_for(record.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, record.to_json())
        return target

    def sub_stores(self) -> list[Path]:
        """The stores inside this one (directories holding run files: the demo writes its runs
        to one), by name."""
        try:
            return sorted(
                p
                for p in self.path.iterdir()
                if p.is_dir() and p.name != JOBS_DIR and any(p.glob("*.json"))
            )
        except OSError:
            return []

    def remove(self, run_id: str) -> None:
        """Delete the plain record ``<store>/<run id>.json`` if it is there."""
        try:
            self.file_for(run_id).unlink()
        except FileNotFoundError:
            pass

    @property
    def jobs_path(self) -> Path:
        return self.path / JOBS_DIR

    def mark_wrapped(self, wrapper_id: str, job_id: str) -> None:
        """Say that the command of the ``footprint run`` ``wrapper_id`` is in job ``job_id``."""
        target = self.jobs_path / BY_WRAPPER / self.file_for(wrapper_id).stem
        self.file_for(job_id)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, job_id)

    def wrapped_job(self, wrapper_id: str) -> str | None:
        """The job the command of the ``footprint run`` ``wrapper_id`` joined, if any."""
        try:
            text = (self.jobs_path / BY_WRAPPER / self.file_for(wrapper_id).stem).read_text()
        except OSError:
            return None
        return text.strip() if is_run_id(text.strip()) else None

    # -- reading ---------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        out = []
        for p in self.path.iterdir():
            if p.suffix != _SUFFIX or p.name.startswith("."):
                continue
            if not is_run_id(p.stem):
                _skip(p, "its name is not <run id>.json (32 lowercase hexadecimal characters)")
                continue
            out.append(p)
        return out

    def _load(self, path: Path) -> RunRecord | None:
        from footprint.record.model import RunRecord

        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            record = RunRecord.from_dict(data)
        except RecordError as exc:
            _skip(path, str(exc))
            return None
        except (OSError, ValueError, RecursionError) as exc:  # unreadable, or not JSON
            _skip(path, f"{type(exc).__name__}: {exc}")
            return None
        if record.id != path.stem:
            # Never written to a second path: a copied or renamed file stays as it is.
            _skip(path, f"the record inside has id {record.id!r}, not its file name's")
            return None
        return resolve_stale(record)

    def _job_ids(self) -> list[str]:
        if not self.jobs_path.is_dir():
            return []
        return sorted(p.name for p in self.jobs_path.iterdir() if is_run_id(p.name) and p.is_dir())

    def parts(self, job_id: str) -> list[RunRecord]:
        """The readable parts of job ``job_id``, oldest first."""
        folder = self.jobs_path / job_id
        if not is_run_id(job_id) or not folder.is_dir():
            return []
        found = []
        for p in folder.iterdir():
            if p.suffix != _SUFFIX or p.name.startswith("."):
                continue
            if not is_run_id(p.stem):
                _skip(p, "its name is not <run id>.json (32 lowercase hexadecimal characters)")
                continue
            record = self._load(p)
            if record is None:
                continue
            if not record.is_part or record.job is None or record.job.id != job_id:
                _skip(p, f"it is not a part of job {job_id}")
                continue
            found.append(record)
        found.sort(key=lambda r: r.started)
        return found

    def job(self, job_id: str) -> RunRecord | None:
        """Job ``job_id`` built from its parts (None: no readable part)."""
        from footprint.jobs.assemble import assemble_job

        parts = self.parts(job_id)
        if not parts:
            return None
        try:
            return assemble_job(parts)
        except Exception as exc:  # a bug must not hide the rest of the store
            _skip(self.jobs_path / job_id, f"its parts could not be combined ({exc})")
            return None

    def records(self, parts: bool = False) -> list[RunRecord]:
        """Every readable record, newest first: each job of many processes once, built from its
        parts (with ``parts``, the parts as well)."""
        jobs = self._job_ids()
        out = [r for r in map(self._load, self._files()) if r is not None and r.id not in jobs]
        for job_id in jobs:
            job = self.job(job_id)
            if job is not None:
                out.append(job)
            if parts:
                out.extend(self.parts(job_id))
        out.sort(key=lambda r: r.started, reverse=True)
        return out

    def ids(self, parts: bool = False) -> list[str]:
        """Run and job ids (with ``parts``, the parts' run ids too)."""
        ids = {p.stem for p in self._files()} | set(self._job_ids())
        if parts:
            for job_id in self._job_ids():
                ids.update(p.stem for p in (self.jobs_path / job_id).glob(f"*{_SUFFIX}"))
        return sorted(i for i in ids if is_run_id(i))

    def resolve_id(self, id_or_prefix: str) -> str:
        """The one run id that starts with ``id_or_prefix``; RunNotFoundError otherwise."""
        if not id_or_prefix:
            raise RunNotFoundError("empty run id: give a run id or a unique prefix of one")
        ids = self.ids(parts=True)
        if id_or_prefix in ids:
            return id_or_prefix
        matches = [i for i in ids if i.startswith(id_or_prefix)]
        if not matches:
            raise RunNotFoundError(
                f"no run {id_or_prefix!r} in store {str(self.path)!r}"
                + ("" if ids else " (the store is empty)")
                + "; `footprint runs` lists the saved runs"
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
            raise RunNotFoundError(
                f"run id prefix {id_or_prefix!r} is ambiguous ({len(matches)} runs: {shown}); "
                "give more characters"
            )
        return matches[0]

    def get(self, id_or_prefix: str) -> RunRecord:
        """The record whose id is or starts with ``id_or_prefix``: a run, a job (built from its
        parts) or one part of a job."""
        run_id = self.resolve_id(id_or_prefix)
        record: RunRecord | None = None
        if (self.jobs_path / run_id).is_dir():
            record = self.job(run_id)
        elif self.file_for(run_id).exists():
            record = self._load(self.file_for(run_id))
        else:
            for job_id in self._job_ids():
                part = self.jobs_path / job_id / f"{run_id}{_SUFFIX}"
                if part.exists():
                    record = self._load(part)
                    break
        if record is None:
            raise RunNotFoundError(f"run {run_id!r} exists but its file cannot be read")
        return record


def merge(sources: list[Store], dest: Store) -> dict[str, int]:
    """Copy every readable run and job part of ``sources`` into ``dest`` (stores copied from
    several nodes become one): a record already there is kept unless the incoming one is further
    along (finished where it was running, or with a later end). Returns how many were copied,
    replaced, already there, or kept because ``dest``'s was further along."""
    out = {"copied": 0, "replaced": 0, "same": 0, "kept": 0}
    dest.ensure_writable()
    for src in sources:
        if src.path == dest.path:
            continue
        incoming = [r for r in src.records(parts=True) if not (r.job and r.job.role == "job")]
        for record in incoming:
            target = (
                dest.part_file(record.job.id, record.id)
                if record.is_part and record.job is not None
                else dest.file_for(record.id)
            )
            old = dest._load(target) if target.exists() else None
            if old is None:
                dest.save(record)
                out["copied"] += 1
            elif old.to_dict() == record.to_dict():
                out["same"] += 1
            elif _progress(record) > _progress(old):
                dest.save(record)
                out["replaced"] += 1
            else:
                out["kept"] += 1
    return out


def _progress(r: RunRecord) -> tuple[bool, bool, float]:
    """How far along a copy of a record is: finished, ended by itself (not a checkpoint read as
    interrupted), then how far its measurement went."""
    return (r.status != "running", r.status in ("completed", "failed"), r.duration_s)


def process_create_time(pid: int | None = None) -> float | None:
    """When process ``pid`` (default: this one) started, in Unix seconds; None if it is gone.

    Read from /proc on Linux (psutil's import would cost a short run's stop ~15 ms), with
    psutil's answer elsewhere. Both give boot time + start ticks, so they agree.
    """
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # Linux, and the process is gone
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # psutil.NoSuchProcess, AccessDenied, or no psutil at all
        return None


def _pid_alive(pid: int, create_time: float | None) -> bool:
    started = process_create_time(pid)
    # A recycled pid belongs to a process created later than ours.
    return started is not None and (create_time is None or abs(started - create_time) < 1.0)


def _skip(path: Path, why: str) -> None:
    warnings.warn(f"skipping run file {str(path)!r}: {why}", FootprintWarning, stacklevel=4)


def resolve_stale(record: RunRecord, now: float | None = None) -> RunRecord:
    """Read a ``running`` record whose writer is gone as ``interrupted``.

    Written on this machine and in this pid namespace (same boot id and pid namespace: a
    hostname alone is not enough, containers often share one): interrupted as soon as its
    process is provably gone (no such pid, or a pid reused by a later process). Written
    elsewhere (or by a footprint that recorded neither): interrupted when the heartbeat is
    older than twice the checkpoint interval. The energy is what the last checkpoint measured.
    """
    if record.status != "running" or not record.heartbeat_at:
        return record
    from footprint.host import machine_identity

    here = machine_identity()
    host = record.host
    same_machine = (
        host.boot_id is not None
        and host.pid_namespace is not None
        and (host.boot_id, host.pid_namespace) == (here["boot_id"], here["pid_namespace"])
    )
    if same_machine and record.pid:
        if _pid_alive(record.pid, record.pid_create_time):
            return record
        why = f"its process (pid {record.pid}) is gone"
    else:
        interval = record.checkpoint_interval_s or 60.0
        now = time.time() if now is None else now
        beat = datetime.fromisoformat(record.heartbeat_at).timestamp()
        if now - beat <= 2 * interval:
            return record
        if host.hostname == socket.gethostname() and record.pid and host.boot_id is None:
            # an older record with no machine identity, from a host of this name
            if _pid_alive(record.pid, record.pid_create_time):
                return record
        why = f"no heartbeat for over {2 * interval:g} s"
    return record.replace(
        status="interrupted",
        notes=[
            *record.notes,
            f"the process stopped without saving (killed?): {why}; energy measured up to the "
            f"last checkpoint at {record.heartbeat_at}",
        ],
    )


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
