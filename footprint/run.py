"""The live run: its sensors and sampler, phases, counts and metrics, checkpoints, and its end.

Totals are counter differences between readings taken at the exact instants a run or phase starts
and stops. A background sampler adds a bounded power timeline and periodic checkpoints, so even a
killed process leaves its run on disk. Only the process that started a run ever writes its
record: a forked child that inherits it (a DataLoader worker, a fork ``multiprocessing`` pool)
can neither save, checkpoint nor end it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from footprint import runtime
from footprint.errors import FootprintWarning, UsageError, describe
from footprint.interrupts import critical
from footprint.listeners import EVENTS
from footprint.record.assemble import PhaseSpan, assemble, energies
from footprint.record.checks import new_run_id
from footprint.record.checks import user_number as check_number
from footprint.sampler import Sampler, SensorSet, Snapshot, Timeline
from footprint.store import Store, process_create_time
from footprint.units import J_PER_KWH

if TYPE_CHECKING:
    from footprint.forecast import Forecast
    from footprint.jobs.identity import Membership
    from footprint.jobs.member import JobPart
    from footprint.listeners import RunListener
    from footprint.options import RunConfig
    from footprint.record.model import RunRecord
    from footprint.sensors.accounting import CpuAccounting
    from footprint.sensors.base import DeviceInfo
    from footprint.sensors.probe import Probe

STATUSES_AT_END = ("completed", "failed", "interrupted")
#: The sampler's first tick (and the first checkpoint) comes this soon, whatever the interval.
FIRST_TICK_S = 0.1


class Phase:
    """One occurrence of a named phase: its boundaries, energy per device and counts.

    ``attributed_j`` accumulates, per device, the phase's share of each stretch between two
    phase boundaries of the run: the stretch's energy is divided equally among the innermost
    phases open in it (one per thread or task), and every phase gets the shares of the innermost
    phases it contains.
    """

    __slots__ = (
        "run",
        "name",
        "path",
        "start",
        "end",
        "counts",
        "own_counts",
        "parent",
        "index",
        "attributed_j",
        "open_children",
    )

    def __init__(
        self, run: Run, name: str, path: str, start: Snapshot, parent: Phase | None, index: int
    ) -> None:
        self.run, self.name, self.path, self.start = run, name, path, start
        self.end: Snapshot | None = None
        self.counts: dict[str, float] = {}
        self.own_counts: dict[str, float] = {}
        self.parent = parent
        self.index = index
        self.attributed_j = [0.0] * len(start.energy_j)
        self.open_children = 0

    def span(self, pending: list[float] | None = None) -> PhaseSpan:
        attributed = self.attributed_j
        if pending is not None:
            attributed = [a + b for a, b in zip(attributed, pending)]
        return PhaseSpan(
            self.name,
            self.path,
            self.start,
            self.end,
            dict(self.counts),
            own_counts=dict(self.own_counts),
            attributed_j=tuple(attributed),
            parent=self.parent.index if self.parent is not None else None,
        )


def _shares(open_phases: list[Phase]) -> dict[Phase, float]:
    """Each open phase's share of a stretch in which exactly ``open_phases`` are open: 1/L for
    each of the L innermost ones, and an enclosing phase the sum of what it contains."""
    leaves = [p for p in open_phases if p.open_children == 0]
    if not leaves:
        return {}
    weight = 1.0 / len(leaves)
    out: dict[Phase, float] = {}
    for leaf in leaves:
        p: Phase | None = leaf
        while p is not None and p.end is None:
            out[p] = out.get(p, 0.0) + weight
            p = p.parent
    return out


# The phases open in this thread or task (each knows its run): concurrent requests or tasks of
# one run nest only their own phases, and count only into them.
_open_phases: contextvars.ContextVar[tuple[Phase, ...]] = contextvars.ContextVar(
    "footprint_open_phases", default=()
)


class Run:
    """A tracked run: live while its block executes, a finished record afterwards.

    Use :meth:`phase`, :meth:`count` and :meth:`log` inside the block; read ``energy_kwh``,
    ``emissions_kg``, ``duration_s``, :attr:`record` or :meth:`to_dict` after it.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.id = new_run_id()
        self.name: str = config.name
        self.status = "running"
        self.counts: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = dict(config.tags)
        self.notes: list[str] = []
        self.error: str | None = None
        self.path: os.PathLike[str] | None = None  # where the record was saved
        self.pid = os.getpid()  # the only process that may write this run's record
        self._phases: list[Phase] = []
        self._forecasts: list[Forecast] = []
        self._open: list[Phase] = []  # open phases of this run, in every thread and task
        self._boundary: Snapshot | None = None  # the last phase boundary (or the start)
        self._signal: str | None = None  # a signal the program's own handler took
        self._lock = threading.RLock()
        self._save_lock = threading.RLock()  # orders checkpoints before the final save
        self._store = Store(config.store)
        self._carbon = config.carbon
        self._record: RunRecord | None = None
        self._sampler: Sampler | None = None
        self._interval_limit_s: float | None = None
        self._sensors: SensorSet | None = None
        self._probe: Probe | None = None
        self._timeline: Timeline | None = None
        self._start: Snapshot | None = None
        self._stop: Snapshot | None = None
        self._wall_start = 0.0
        self._last_checkpoint = 0.0
        self._checkpoint_failed = False
        self._listeners: list[RunListener] = list(runtime.get().listeners)
        self._invalid_counts: set[str] = set()
        self._job: JobPart | None = None

    # -- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: RunListener) -> None:
        """Follow this run with ``listener`` (see :mod:`footprint.listeners`)."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, event: str, *args: Any) -> None:
        if not self._listeners:  # the usual case, on every tick and phase boundary
            return
        assert event in EVENTS
        for listener in list(self._listeners):
            method = getattr(listener, event, None)
            if method is None:
                continue
            try:
                method(self, *args)
            except Exception as exc:  # an integration's bug never breaks the run
                with self._lock:
                    if listener in self._listeners:
                        self._listeners.remove(listener)
                self.notes.append(
                    f"listener {type(listener).__name__} failed in {event} and was detached: "
                    f"{describe(exc)}"
                )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def _mine(self) -> bool:
        """False in a forked child: the run belongs to the process that started it."""
        return os.getpid() == self.pid

    def begin(self) -> None:
        """Probe the sensors, take the start readings and start sampling (the tracker calls
        this on entering the block)."""
        from footprint.sensors.base import SourceStatus
        from footprint.sensors.probe import Probe, probe

        cfg = self.config
        member = _membership(cfg)
        if member is not None and member.wrapper is not None:
            self._store = Store(member.wrapper.store)  # the job's parts stay together
        if cfg.save:
            self._store.ensure_writable()
        if member is not None:
            from footprint.jobs.member import JobPart

            self._job = JobPart(member, self.name, self._store)
            if not self._job.measurer:
                self._begin_without_devices()
                return
        root = self._job.m.tree_root if self._job is not None else os.getpid()
        accounting = _accounting(cfg.proc_root, cfg.clock, root)
        gpus = cfg.gpus
        if gpus is None and self._job is not None and self._job.m.gpus is not None:
            gpus = self._job.m.gpus
        if cfg.sensors is not None:
            found = Probe(
                list(cfg.sensors),
                [SourceStatus("user", True, f"{len(cfg.sensors)} user-supplied sensor(s)")],
            )
        else:
            found = probe(
                gpus=gpus,
                powercap_root=cfg.powercap_root,
                cpu_utilisation=cfg.cpu_utilisation,
                pid=os.getpid(),
                accounting=accounting,
                proc_root=cfg.proc_root,
                cpu_power_w=cfg.cpu_power_w,
                ram_w_per_gb=cfg.ram_w_per_gb,
            )
        self._probe = found
        started = []
        try:
            for s in found.sensors:
                s.start()
                started.append(s)
        except BaseException:
            for s in started:
                s.stop()
            self._probe = None
            raise
        self._sensors = SensorSet(found.sensors, clock=cfg.clock, accounting=accounting)
        interval = cfg.sample_interval_s
        limit = self._sensors.max_read_interval_s()
        if limit is not None and limit < interval:
            interval = limit  # read wrapping counters often enough that two wraps cannot happen
        self._wall_start = time.time()
        self._start = self._boundary = self._sensors.read()
        self._timeline = Timeline(
            self._start, resolution_s=interval, max_buckets=cfg.max_timeline_points
        )
        self._sampler = Sampler(self._tick, interval, on_error=self._sampler_error)
        self._interval_limit_s = limit
        # first checkpoint on the first tick (0.1 s in): killed runs leave a file
        self._last_checkpoint = -math.inf
        self._sampler.start(first_after_s=FIRST_TICK_S)
        _warm_up_record_model()
        if self.config.live:  # the status line: a listener of this run (footprint/live.py)
            from footprint.live import LiveLine

            with self._lock:
                self._listeners.append(LiveLine())
        self._notify("on_start")

    def _begin_without_devices(self) -> None:
        """A job's member that is not its node's measurer: no device is probed or read and no
        sampler thread started; the run keeps its phases, counts and metrics for the job."""
        from footprint.sensors.base import SourceStatus
        from footprint.sensors.probe import Probe

        cfg = self.config
        assert self._job is not None
        node = self._job.m.node
        self._probe = Probe(
            [], [SourceStatus("job", True, f"devices read by node {node}'s measurer, not here")]
        )
        self._sensors = SensorSet([], clock=cfg.clock)
        self._wall_start = time.time()
        self._start = self._boundary = self._sensors.read()
        self._timeline = Timeline(
            self._start, resolution_s=cfg.sample_interval_s, max_buckets=cfg.max_timeline_points
        )
        # Not a sampler: a one-shot thread that builds the record's classes while the user's
        # code runs and exits, so this rank's end (which global rank 0 waits for) is quick.
        _warm_up_record_model(own_thread=True)
        self._notify("on_start")

    @property
    def store_path(self) -> os.PathLike[str]:
        """The store directory this run's record is saved in."""
        return self._store.path

    @property
    def job_id(self) -> str | None:
        """The id of the job of many processes this run is part of (None: a run of its own,
        or a job whose key is agreed at the end); the store shows the job under this id."""
        return self._job.id if self._job is not None else None

    @property
    def job_record(self) -> RunRecord | None:
        """The whole job this run is part of, built from the parts its store holds now (None:
        not a job). On global rank 0, after its end, that includes the parts gathered from the
        other ranks; on another rank it holds what has reached this rank's store."""
        if self._job is None or self._job.id is None:
            return None
        return self._store.job(self._job.id)

    def _tick(self) -> None:
        with runtime.fork_guard:  # a fork waits until this tick's imports are done
            self._tick_guarded()

    def _tick_guarded(self) -> None:
        if self.status != "running" or self._sensors is None or self._timeline is None:
            return  # a tick that raced with the run's end
        snap = self._sensors.read(tick=True)
        self._timeline.add(snap)
        sampler = self._sampler
        if sampler is not None and self._timeline.resolution_s > sampler.interval_s:
            # The timeline merged its buckets: read as often as it now keeps, so a long run
            # costs no more than a short one, never less often than a counter needs.
            limit = self._interval_limit_s
            sampler.interval_s = min(self._timeline.resolution_s, limit or math.inf)
        if self.config.save and snap.t - self._last_checkpoint >= self.config.checkpoint_interval_s:
            self._last_checkpoint = snap.t
            self._checkpoint(snap)
        self._notify("on_tick", snap)

    def _sampler_error(self, exc: BaseException) -> None:
        note = f"sampler error: {describe(exc)}"
        if note not in self.notes:
            self.notes.append(note)

    def _checkpoint(self, snap: Snapshot) -> None:
        if not self._mine:
            return
        if self._job is not None and self._job.resolve(final=False) is None:
            return  # the job's key is not agreed yet: a part needs it to be filed
        record = self._build(snap, status="running", heartbeat=True)
        try:
            with self._save_lock:  # never after the final record
                if self.status == "running":
                    self._store.save(record)
        except OSError as exc:
            if not self._checkpoint_failed:
                self._checkpoint_failed = True
                warnings.warn(
                    f"footprint: cannot checkpoint run to {self._store.path}: {exc}",
                    FootprintWarning,
                    stacklevel=2,
                )

    def end(self, status: str, error: str | None = None) -> None:
        """End the run with ``status`` (completed, failed or interrupted): read the counters
        first (the exact stop instant), then stop sampling and save. Does nothing if the run
        has already ended, or in a forked child (the run is its parent's)."""
        if status not in STATUSES_AT_END:
            raise UsageError(f"a run ends as one of {', '.join(STATUSES_AT_END)}, not {status!r}")
        if not self._mine:
            return
        with critical, self._lock:
            if self.status != "running" or self._sensors is None or self._start is None:
                return
            try:
                self._stop = self._sensors.read()
            finally:  # whatever happens, the run stops: no sampler ticking a finished run
                self.status = status
                self.error = error
                if self._sampler is not None:
                    self._sampler.stop()
            assert self._timeline is not None and self._probe is not None
            self._timeline.finish(self._stop)
            for s in self._probe.sensors:
                s.stop()
            self._advance(self._stop)
            for ph in list(self._open):  # phases left open (an exception, another task) end here
                self._close(ph, self._stop)
            if self._job is not None:
                self._job.resolve(final=True)
            try:
                self._record = self._build(self._stop, status=status)
            except Exception as exc:  # whatever went wrong, the run's totals are kept
                self._record = self._salvage(status, exc)
            if self.config.save:
                self._save_final()
        if self._job is not None:
            self._finish_job()
        self._notify("on_end", self._record)

    def _finish_job(self) -> None:
        """After the part is saved: tell a wrapper, and gather the other ranks' parts on global
        rank 0 (outside the critical section: it may wait for them)."""
        assert self._job is not None
        try:
            if self.config.save and self._record is not None and self.path is not None:
                note = self._job.after_save(self._record, self._store, self.config.gather_timeout_s)
                if note is not None:
                    self._record = self._record.replace(notes=[*self._record.notes, note])
                    self._save_final()
        finally:
            self._job.release()

    def _salvage(self, status: str, exc: Exception) -> RunRecord:
        """A record with the run's identity and energy totals only, when the full record cannot
        be assembled (a bug, or a value nothing downstream could read)."""
        from datetime import datetime, timezone

        from footprint.record.builder import new_record

        assert self._start is not None and self._stop is not None
        device_j = [e if math.isfinite(e) else 0.0 for e in energies(self._start, self._stop)]
        return new_record(
            id=self.id,
            name=self.name,
            status=status,
            started_at=datetime.fromtimestamp(self._wall_start, timezone.utc).isoformat(),
            duration_s=max(0.0, self._stop.t - self._start.t),
            energy_kwh=sum(device_j) / J_PER_KWH,
            error=self.error,
            task=self.config.task,
            model=self.config.model,
            variant=self.config.variant,
            notes=[
                f"the full record could not be assembled ({describe(exc)}): saved with its "
                "identity and total energy only (no devices, phases, counts or emissions)"
            ],
        )

    def abandon(self) -> None:
        """Undo a :meth:`begin` that failed part-way: stop sampling and release the sensors.
        Nothing is saved (no start reading, or the caller ends the run itself)."""
        self.status = "failed"
        if self._sampler is not None:
            self._sampler.stop()
        if self._probe is not None:
            for s in self._probe.sensors:
                s.stop()

    def fail(self, error: str) -> None:
        """End the run as failed, with ``error`` saying why (e.g. a wrapped command's exit)."""
        self.end("failed", error)

    def interrupt(self, reason: str) -> None:
        """End the run as interrupted, with ``reason`` (a signal, a killed command...)."""
        self.end("interrupted", reason)

    def _save_final(self) -> None:
        if not self._mine or self._record is None:
            return
        try:
            with self._save_lock:
                self.path = self._store.save(self._record)
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"footprint: could not save run {self.id} to {self._store.path}: {exc}",
                FootprintWarning,
                stacklevel=4,
            )

    def signalled(self, name: str) -> None:
        """The program's own handler took signal ``name``: this run will end as interrupted."""
        self._signal = self._signal or name
        self.notes.append(f"{name} received during the run; the program's own handler ran")

    # -- user API --------------------------------------------------------------------------

    def _check_live(self, what: str) -> None:
        if self.status != "running":
            raise UsageError(
                f"run.{what} called after run {self.name!r} ended ({self.status}); call it inside "
                "the `with footprint.track(...)` block or the decorated function"
            )
        if self._start is None:
            raise UsageError(f"run.{what} called before the run started; use it inside the block")

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Measure a named part of the run (nestable, repeatable): ``with run.phase("epoch"):``.

        Phases nest per thread and per asyncio task: concurrent requests each get their own.
        """
        with critical, self._lock:
            self._check_live("phase")
            if not isinstance(name, str) or not name:
                raise ValueError(f"phase name must be a non-empty string, got {name!r}")
            assert self._sensors is not None
            mine = [p for p in _open_phases.get() if p.run is self and p.end is None]
            parent = mine[-1] if mine else None
            path = f"{parent.path}/{name}" if parent is not None else name
            snap = self._sensors.read()
            self._advance(snap)
            ph = Phase(self, name, path, snap, parent, len(self._phases))
            if parent is not None:
                parent.open_children += 1
            self._phases.append(ph)
            self._open.append(ph)
            token = _open_phases.set((*_open_phases.get(), ph))
        self._notify("on_phase_start", ph)
        try:
            yield ph
        finally:
            with critical, self._lock:
                if ph.end is None and self.status == "running" and self._sensors is not None:
                    snap = self._sensors.read()
                    self._advance(snap)
                    inner = ph.path + "/"
                    for p in _open_phases.get():  # inner phases left open end with this one
                        if (
                            p.run is self
                            and p.end is None
                            and (p is ph or p.path.startswith(inner))
                        ):
                            self._close(p, snap)
                try:
                    _open_phases.reset(token)
                except ValueError:  # exited in another context (misnested): just drop it
                    _open_phases.set(tuple(p for p in _open_phases.get() if p is not ph))
            self._notify("on_phase_end", ph)

    def _advance(self, snap: Snapshot) -> None:
        """Share the energy since the last phase boundary among the phases open in it."""
        assert self._boundary is not None
        if self._open:
            stretch = energies(self._boundary, snap)  # once, not once per open phase
            for ph, share in _shares(self._open).items():
                for i, e in enumerate(stretch):
                    ph.attributed_j[i] += share * e
        if snap.t >= self._boundary.t:
            self._boundary = snap

    def _close(self, ph: Phase, snap: Snapshot) -> None:
        ph.end = snap
        if ph in self._open:
            self._open.remove(ph)
        if ph.parent is not None and ph.parent.open_children > 0:
            ph.parent.open_children -= 1

    def _pending(self, snap: Snapshot) -> dict[Phase, list[float]]:
        """What :meth:`_advance` would add to each open phase at ``snap`` (for a live record)."""
        if self._boundary is None or not self._open:
            return {}
        e = energies(self._boundary, snap)
        return {ph: [share * x for x in e] for ph, share in _shares(self._open).items()}

    def count(self, **units: float) -> None:
        """Add units of work (``samples=32``, ``tokens=...``) to the run and its open phases.

        Every phase open in this thread or task counts them (``counts``); the innermost one
        also as its own (``own_counts``), which decides what energy the units are charged with
        (docs/leaderboard.md).
        """
        values = {key: check_number(key, value) for key, value in units.items()}
        with critical, self._lock:
            self._check_live("count")
            open_here = [p for p in _open_phases.get() if p.run is self and p.end is None]
            for key, value in values.items():
                if key in self._invalid_counts:
                    continue
                total = self.counts.get(key, 0) + value
                if not math.isfinite(total):  # finite inputs whose sum is past the float range
                    self._invalidate_count(key)
                    continue
                self.counts[key] = total
                for ph in open_here:
                    ph.counts[key] = ph.counts.get(key, 0) + value
                if open_here:
                    own = open_here[-1].own_counts
                    own[key] = own.get(key, 0) + value

    def _invalidate_count(self, key: str) -> None:
        self._invalid_counts.add(key)
        self.counts.pop(key, None)
        for ph in self._phases:
            ph.counts.pop(key, None)
            ph.own_counts.pop(key, None)
        self.notes.append(
            f"count {key!r} overflowed (its total passed {sys.float_info.max:.3g}): it is invalid "
            "and left out of the record and of every per-unit figure"
        )

    def log(self, **metrics: float) -> None:
        """Record quality metrics (``accuracy=0.91``); a later value replaces an earlier one.

        Allowed during the run and right after it (metrics are often computed after the block);
        logging after the run re-saves its record.
        """
        values = {key: float(check_number(key, value)) for key, value in metrics.items()}
        with critical, self._lock:
            self.metrics.update(values)
            if self._record is not None:
                self._record = self._record.replace(metrics=dict(self.metrics))
                if self.config.save and self.path is not None:
                    self._save_final()

    # -- results ---------------------------------------------------------------------------

    def _now(self) -> Snapshot:
        if self._stop is not None:
            return self._stop
        assert self._sensors is not None
        with critical:
            return self._sensors.read()

    @property
    def energy_j(self) -> float:
        """IT energy of all devices so far (live) or in total (finished), in joules."""
        if self._start is None:
            return 0.0
        return sum(energies(self._start, self._now()))

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def duration_s(self) -> float:
        if self._start is None:
            return 0.0
        return self._now().t - self._start.t

    @property
    def emissions_kg(self) -> float | None:
        """Operational emissions (IT energy x PUE x intensity), None when no region was given."""
        if self._record is not None:
            return self._record.emissions_kg
        return self._carbon.emissions_kg(self.energy_kwh) if self._start is not None else None

    @property
    def devices(self) -> tuple[DeviceInfo, ...]:
        """The devices this run reads, in the order of a snapshot's readings (none before its
        start, or on a rank of a job that does not measure)."""
        sensors = self._sensors
        return tuple(s.device for s in sensors.sensors) if sensors is not None else ()

    def device_energies_j(self, snapshot: Snapshot | None = None) -> dict[str, float]:
        """Each device's energy since the start (the run's own share), in joules, at
        ``snapshot`` (a tick's, as a listener's ``on_tick`` receives it) or now."""
        if self._start is None or self._sensors is None:
            return {}
        now = snapshot if snapshot is not None else self._now()
        return {d.id: e for d, e in zip(self.devices, energies(self._start, now))}

    def forecast(self, total: int, phase: str = "epoch") -> Forecast:
        """Predict the whole run's energy, emissions and end for ``total`` occurrences of
        ``phase`` (epochs), with a 95 % prediction interval, from those closed so far (at least
        2; the first is left out as warm-up from 3 on: footprint/forecast.py says how). Kept in
        the record; the final record says how far each forecast was from the truth."""
        from datetime import datetime, timezone

        from footprint import forecast as fc

        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise UsageError(
                f"forecast: total must be a whole number of {phase}s >= 1, got {total!r}"
            )
        self._check_live("forecast")
        assert self._start is not None
        now = self._now()
        mine = [p for p in self._phases if phase in (p.name, p.path)]
        closed = [(p.start, p.end) for p in mine if p.end is not None]
        open_ = [p for p in mine if p.end is None]
        spent = sum(energies(self._start, now))
        try:
            pred = fc.predict(
                [sum(energies(start, end)) for start, end in closed],
                [end.t - start.t for start, end in closed],
                total,
                spent_j=spent,
                open_energy_j=sum(energies(open_[-1].start, now)) if open_ else None,
                open_elapsed_s=now.t - open_[-1].start.t if open_ else None,
            )
        except ValueError as exc:
            raise UsageError(f"forecast: {exc} (phase {phase!r})") from None
        kwh = pred.energy_j / J_PER_KWH
        emissions = self._carbon.emissions_kg(kwh) if kwh > 0 else None
        per_kwh = emissions / kwh if emissions is not None and kwh > 0 else None
        made = fc.make(
            pred,
            phase=phase,
            total=total,
            done=len(closed),
            emissions_per_kwh=per_kwh,
            now=datetime.now(timezone.utc),
        )
        with self._lock:
            self._forecasts.append(made)
        return made

    @property
    def forecasts(self) -> tuple[Forecast, ...]:
        """The forecasts made so far, oldest first."""
        return tuple(self._forecasts)

    def _forecast_fields(self, record: RunRecord) -> list[dict[str, Any]]:
        final = record.status != "running" and not record.heartbeat_at
        out = []
        for f in self._forecasts:
            row: dict[str, Any] = {
                "made_at": f.made_at.isoformat(),
                "phase": f.phase,
                "total": f.total,
                "done": f.done,
                "energy_kwh": f.energy_kwh,
                "energy_kwh_low": f.energy_kwh_low,
                "energy_kwh_high": f.energy_kwh_high,
                "ends_at": f.ends_at.isoformat(),
                "epochs_used": f.epochs_used,
                "warmup_dropped": f.warmup_dropped,
                "method": f.method,
                "emissions_kg": f.emissions_kg,
            }
            done = sum(1 for p in record.phases if f.phase in (p.name, p.path) and p.end_s)
            if final and done == f.total and record.energy_kwh > 0:
                actual = record.energy_kwh
                row["actual_energy_kwh"] = actual
                row["error_fraction"] = (f.energy_kwh - actual) / actual
                row["within_interval"] = f.energy_kwh_low <= actual <= f.energy_kwh_high
            out.append(row)
        return out

    def so_far(self, snapshot: Snapshot | None = None) -> tuple[float, float, float | None]:
        """(energy in J, duration in s, emissions in kg or None) from one reading of the
        sensors (or at ``snapshot``, with none): what :attr:`energy_j`, :attr:`duration_s` and
        :attr:`emissions_kg` give, at a third of the cost (live figures in a training loop's
        logs, a metrics endpoint)."""
        if self._start is None:
            return 0.0, 0.0, None
        now = snapshot if snapshot is not None else self._now()
        energy_j = sum(energies(self._start, now))
        if self._record is not None:
            emissions = self._record.emissions_kg
        else:
            emissions = self._carbon.emissions_kg(energy_j / J_PER_KWH)
        return energy_j, now.t - self._start.t, emissions

    @property
    def record(self) -> RunRecord:
        """The run's typed record (:class:`footprint.record.RunRecord`); a live run gives a
        snapshot, with status ``running``."""
        if self._record is not None:
            return self._record
        if self._start is None or self._sensors is None:
            raise UsageError(
                "the run has not started yet: read its record inside or after the block"
            )
        return self._build(self._sensors.read(), status="running")

    def to_dict(self) -> dict:
        """The run's record as the plain JSON-serialisable dict the store saves; live runs give
        a snapshot."""
        return self.record.to_dict()

    def _build(self, snap: Snapshot, status: str, heartbeat: bool = False) -> RunRecord:
        with self._lock:
            assert self._start is not None and self._sensors is not None
            assert self._probe is not None and self._timeline is not None
            pending = self._pending(snap) if self._stop is None else {}
            record = assemble(
                run_id=self.id,
                name=self.name,
                status=status,
                config=self.config,
                carbon=self._carbon,
                wall_start=self._wall_start,
                start=self._start,
                now=snap,
                sensors=self._sensors.sensors,
                failures=dict(self._sensors.failures),
                faults=dict(self._sensors.faults),
                phases=[ph.span(pending.get(ph)) for ph in self._phases],
                timeline=self._timeline,
                sources=self._probe.sources,
                counts=self.counts,
                metrics=self.metrics,
                tags=self.tags,
                notes=[
                    *self.notes,
                    *(self._job.notes if self._job is not None else ()),
                    *self._sensors.fault_notes(),
                    *self._probe.notes,
                    *self._carbon.notes,
                ],
                error=self.error,
                pid_create_time=_process_create_time(),
                heartbeat=heartbeat,
                shares=self._sensors.shares,
                contention=self._contention(),
                job=self._job.fields() if self._job is not None else None,
            )
            if self._forecasts:
                record = record.replace(forecasts=self._forecast_fields(record))
            return record

    def _contention(self) -> dict[str, Any] | None:
        sensors = self._sensors
        if sensors is None or sensors.accounting is None:
            return None
        others = max((getattr(sh, "others_seen", 0) for sh in sensors.shares), default=0)
        return sensors.accounting.summary(others)

    def __repr__(self) -> str:
        return (
            f"<footprint.Run {self.name!r} {self.status} id={self.id[:8]} "
            f"energy={self.energy_j:.1f} J duration={self.duration_s:.2f} s>"
        )


def _membership(cfg: RunConfig) -> Membership | None:
    """The job this run belongs to, if any (docs/distributed.md)."""
    from footprint.jobs.identity import detect

    return detect(cfg.job)


def _accounting(
    proc_root: str | os.PathLike[str], clock: Callable[[], float], pid: int
) -> CpuAccounting | None:
    """The run's CPU accounting (the process tree of ``pid`` against the machine), where /proc
    has it. For a job's measurer, ``pid`` is the launcher process whose tree holds every rank of
    the node."""
    from footprint.sensors.accounting import CpuAccounting
    from footprint.sensors.procfs import machine_cpu

    if machine_cpu(proc_root) is None:  # no procfs (macOS): no shares, no contention figures
        return None
    try:
        return CpuAccounting(pid, proc_root=proc_root, clock=clock)
    except Exception:  # never fail a run's start for it
        return None


def _warm_up_record_model(own_thread: bool = False) -> None:
    """Build the typed record's classes (~20 ms of class creation) and gather what every record
    of this process shares (the host's facts, the process's start time, each part's checks) on
    the sampler thread while the user's code runs, once per process: neither the first run's
    start nor its stop (a SIGTERM's handler included) waits for them. ``own_thread``: on a
    one-shot thread that exits when done (a job's member that starts no sampler)."""
    if "footprint.record.builder" in sys.modules:
        return

    def load() -> None:
        with runtime.fork_guard:
            import footprint.record.builder  # noqa: F401
            from footprint.host import host_facts
            from footprint.record import model

            host_facts([])
            _process_create_time()
            parts: list[type[model._Part]] = [model.RunRecord]
            parts += [cls for cls, _ in model.RunRecord.NESTED.values()]
            for part in parts:
                part._schema()

    if own_thread:
        threading.Thread(target=load, name="footprint-warm-up", daemon=True).start()
        return
    warm: Sampler

    def once() -> None:
        warm.stop()
        load()

    warm = Sampler(once, 1e-3)
    warm.start()


@functools.cache
def _process_create_time() -> float | None:
    return process_create_time()


os.register_at_fork(after_in_child=_process_create_time.cache_clear)


def outcome(
    run: Run, exc_type: type[BaseException] | None, exc: BaseException | None
) -> tuple[str, str | None]:
    """(status, error) of a run whose block ended with ``exc`` (None: normally)."""
    error = None
    if exc_type is not None:  # an exception whose __str__ raises must still end the run
        error = describe(exc) if exc is not None else exc_type.__name__
    if run._signal is not None:  # a signal the program handled itself cut the run short
        error = run._signal + (f" (then {error})" if error else "")
        stopped = exc_type is None or issubclass(exc_type, (SystemExit, KeyboardInterrupt))
        return ("interrupted" if stopped else "failed"), error
    if exc_type is None:
        return "completed", None
    # Ctrl-C; an asyncio task cancelled by it (matched by name: no asyncio import here).
    if issubclass(exc_type, KeyboardInterrupt) or exc_type.__name__ == "CancelledError":
        return "interrupted", error
    if issubclass(exc_type, SystemExit):
        code = getattr(exc, "code", None)
        return ("completed" if code in (0, None) else "failed"), error
    return "failed", error
