"""``footprint.track``: one object that is a context manager and a decorator, and the live run.

Totals are counter differences between readings taken at the exact instants a run or phase starts
and stops. A background sampler adds a bounded power timeline and periodic checkpoints, so even a
killed process leaves its run on disk.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, overload

from footprint import interrupts
from footprint.errors import FootprintWarning, UsageError
from footprint.interrupts import critical
from footprint.record import RunRecord, check_number, new_record, new_run_id
from footprint.sampler import Sampler, SensorSet, Snapshot, Timeline
from footprint.sensors.base import Sensor
from footprint.store import Store, process_create_time
from footprint.units import J_PER_KWH

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SAMPLE_INTERVAL_S = 0.1
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
DEFAULT_MAX_TIMELINE_POINTS = 1000

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("footprint_run", default=None)


def current_run() -> Run | None:
    """The innermost run active in this thread or task, or None."""
    return _current.get()


class Phase:
    """One occurrence of a named phase: its boundaries, energy per device and counts."""

    __slots__ = ("run", "name", "path", "start", "end", "counts")

    def __init__(self, run: Run, name: str, path: str, start: Snapshot) -> None:
        self.run, self.name, self.path, self.start = run, name, path, start
        self.end: Snapshot | None = None
        self.counts: dict[str, float] = {}


# The phases open in this thread or task (each knows its run): concurrent requests or tasks of
# one run nest only their own phases, and count only into them.
_open_phases: contextvars.ContextVar[tuple[Phase, ...]] = contextvars.ContextVar(
    "footprint_open_phases", default=()
)


class Run:
    """A tracked run: live while its block executes, a finished record afterwards.

    Use :meth:`phase`, :meth:`count` and :meth:`log` inside the block; read ``energy_kwh``,
    ``emissions_kg``, ``duration_s`` or :meth:`to_dict` after it.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._cfg = config
        self.id = new_run_id()
        self.name: str = config["name"]
        self.status = "running"
        self.counts: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = dict(config["tags"])
        self.notes: list[str] = []
        self.error: str | None = None
        self.path = None  # where the record was saved
        self._phases: list[Phase] = []
        self._signal: str | None = None  # a signal the program's own handler took
        self._lock = threading.RLock()
        self._save_lock = threading.RLock()  # orders checkpoints before the final save
        self._store = Store(config["store"])
        self._record: RunRecord | None = None
        self._sampler: Sampler | None = None
        self._sensors: SensorSet | None = None
        self._start: Snapshot | None = None
        self._stop: Snapshot | None = None
        self._last_checkpoint = 0.0
        self._checkpoint_failed = False

    # -- lifecycle -------------------------------------------------------------------------

    def _begin(self) -> None:
        from footprint.sensors.base import SourceStatus
        from footprint.sensors.probe import Probe, probe

        cfg = self._cfg
        if cfg["save"]:
            self._store.ensure_writable()
        self._carbon = cfg["carbon"]
        if cfg["sensors"] is not None:
            found = Probe(
                list(cfg["sensors"]),
                [SourceStatus("user", True, f"{len(cfg['sensors'])} user-supplied sensor(s)")],
            )
        else:
            found = probe(
                gpus=cfg["gpus"],
                powercap_root=cfg["powercap_root"],
                cpu_utilisation=cfg["cpu_utilisation"],
                pid=os.getpid(),
            )
        self._probe = found
        for s in found.sensors:
            s.start()
        self._sensors = SensorSet(found.sensors, clock=cfg["clock"])
        interval = cfg["sample_interval_s"]
        limit = self._sensors.max_read_interval_s()
        if limit is not None and limit < interval:
            interval = limit  # read wrapping counters often enough that two wraps cannot happen
        self._wall_start = time.time()
        self._start = self._sensors.read()
        self._timeline = Timeline(
            self._start, resolution_s=interval, max_buckets=cfg["max_timeline_points"]
        )
        self._sampler = Sampler(self._tick, interval, on_error=self._sampler_error)
        self._last_checkpoint = (
            -math.inf
        )  # first checkpoint on the first tick: killed runs leave a file
        self._sampler.start()

    def _tick(self) -> None:
        if self.status != "running":
            return  # a tick that raced with the run's end
        snap = self._sensors.read()
        self._timeline.add(snap)
        if (
            self._cfg["save"]
            and snap.t - self._last_checkpoint >= self._cfg["checkpoint_interval_s"]
        ):
            self._last_checkpoint = snap.t
            self._checkpoint(snap)

    def _sampler_error(self, exc: BaseException) -> None:
        note = f"sampler error: {type(exc).__name__}: {exc}"
        if note not in self.notes:
            self.notes.append(note)

    def _checkpoint(self, snap: Snapshot) -> None:
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

    def _end(self, status: str, error: str | None = None) -> None:
        """Read the counters first (the exact stop instant), then tidy up and save."""
        with critical, self._lock:
            if self.status != "running":
                return
            try:
                self._stop = self._sensors.read()
            finally:  # whatever happens, the run stops: no sampler ticking a finished run
                self.status = status
                self.error = error
                if self._sampler is not None:
                    self._sampler.stop()
            self._timeline.finish(self._stop)
            for s in self._probe.sensors:
                s.stop()
            for ph in self._phases:  # phases left open (an exception, another task) end here
                if ph.end is None:
                    ph.end = self._stop
            self._record = self._build(self._stop, status=status)
            if self._cfg["save"]:
                self._save_final()

    def _save_final(self) -> None:
        try:
            with self._save_lock:
                self.path = self._store.save(self._record)
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"footprint: could not save run {self.id} to {self._store.path}: {exc}",
                FootprintWarning,
                stacklevel=4,
            )

    def _signalled(self, name: str) -> None:
        """The program's own handler took a signal: this run ends as interrupted."""
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
            mine = [p for p in _open_phases.get() if p.run is self]
            parent = mine[-1].path + "/" if mine else ""
            ph = Phase(self, name, parent + name, self._sensors.read())
            self._phases.append(ph)
            token = _open_phases.set((*_open_phases.get(), ph))
        try:
            yield ph
        finally:
            with critical, self._lock:
                if ph.end is None and self.status == "running":
                    snap = self._sensors.read()
                    inner = ph.path + "/"
                    for p in _open_phases.get():  # inner phases left open end with this one
                        if (
                            p.run is self
                            and p.end is None
                            and (p is ph or p.path.startswith(inner))
                        ):
                            p.end = snap
                try:
                    _open_phases.reset(token)
                except ValueError:  # exited in another context (misnested): just drop it
                    _open_phases.set(tuple(p for p in _open_phases.get() if p is not ph))

    def count(self, **units: float) -> None:
        """Add units of work (``samples=32``, ``tokens=...``), to the run and its open phases."""
        values = {key: check_number(key, value) for key, value in units.items()}
        with critical, self._lock:
            self._check_live("count")
            open_here = [p for p in _open_phases.get() if p.run is self and p.end is None]
            for key, value in values.items():
                self.counts[key] = self.counts.get(key, 0) + value
                for ph in open_here:
                    ph.counts[key] = ph.counts.get(key, 0) + value

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
                if self._cfg["save"] and self.path is not None:
                    self._save_final()

    # -- results ---------------------------------------------------------------------------

    def _device_energy(self, a: Snapshot, b: Snapshot) -> list[float]:
        return [max(0.0, y - x) for x, y in zip(a.energy_j, b.energy_j)]

    def _now(self) -> Snapshot:
        if self._stop is not None:
            return self._stop
        with critical:
            return self._sensors.read()

    @property
    def energy_j(self) -> float:
        """IT energy of all devices so far (live) or in total (finished), in joules."""
        if self._start is None:
            return 0.0
        return sum(self._device_energy(self._start, self._now()))

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
    def record(self) -> RunRecord:
        """The run's typed record (:class:`footprint.record.RunRecord`); a live run gives a
        snapshot, with status ``running``."""
        if self._record is not None:
            return self._record
        if self._start is None:
            raise UsageError(
                "the run has not started yet: read its record inside or after the block"
            )
        return self._build(self._sensors.read(), status="running")

    def to_dict(self) -> dict:
        """The run's record as the plain JSON-serialisable dict the store saves; live runs give
        a snapshot."""
        return self.record.to_dict()

    def report(self, out: str | os.PathLike | None = None, *, overwrite: bool = False):
        """Write this run's self-contained HTML page (default ``reports/<name>-<id>.html``)."""
        from footprint.reporting import report

        if self._record is None:
            raise UsageError("run.report() needs a finished run: call it after the block")
        return report(runs=[self._record], out=out, overwrite=overwrite)

    def _build(self, snap: Snapshot, status: str, heartbeat: bool = False) -> RunRecord:
        from footprint import carbon
        from footprint.host import host_facts

        with self._lock:
            start = self._start
            sensors = self._sensors.sensors
            ids = [s.device.id for s in sensors]
            energies = self._device_energy(start, snap)
            devices = []
            for s, e, u0, u1 in zip(
                sensors, energies, start.uncertain_intervals, snap.uncertain_intervals
            ):
                d = s.device.to_dict()
                d["energy_j"] = e
                d["uncertain"] = u1 > u0
                if s.device.id in self._sensors.failures:
                    d["error"] = self._sensors.failures[s.device.id]
                devices.append(d)
            phases = []
            for ph in self._phases:
                end = ph.end or snap
                phases.append(
                    {
                        "name": ph.name,
                        "path": ph.path,
                        "start_s": round(ph.start.t - start.t, 6),
                        "end_s": round(end.t - start.t, 6),
                        "energy_j": dict(zip(ids, self._device_energy(ph.start, end))),
                        "counts": dict(ph.counts),
                    }
                )
            notes = list(self.notes) + self._probe.notes + list(self._carbon.notes)
            for dev_id, msg in self._sensors.failures.items():
                notes.append(
                    f"{dev_id} stopped being readable ({msg}): its energy after that is missing"
                )
            uncertain = any(d["uncertain"] for d in devices)
            if uncertain:
                notes.append(
                    "a counter was read too late to rule out a double wrap (a suspended process?): "
                    "devices marked uncertain may be under-counted"
                )
            cfg = self._cfg
            energy_j = sum(energies)
            record = {
                "id": self.id,
                "name": self.name,
                "status": status,
                "started_at": datetime.fromtimestamp(self._wall_start, timezone.utc).isoformat(),
                "ended_at": (
                    datetime.fromtimestamp(self._wall_start, timezone.utc)
                    + timedelta(seconds=snap.t - start.t)
                ).isoformat(),
                "duration_s": snap.t - start.t,
                "energy_kwh": energy_j / J_PER_KWH,
                "devices": devices,
                "phases": phases,
                "counts": dict(self.counts),
                "metrics": dict(self.metrics),
                "metric_directions": dict(cfg["higher_is_better"]),
                "tags": dict(self.tags),
                "task": cfg["task"],
                "model": cfg["model"],
                "variant": cfg["variant"],
                "baseline": cfg["baseline"],
                "timeline": self._timeline.to_dict(ids),
                "host": host_facts([s.device for s in sensors if s.device.kind == "gpu"]),
                "sources": [src.to_dict() for src in self._probe.sources],
                "energy_uncertain": uncertain,
                "error": self.error,
                "checkpoint_interval_s": cfg["checkpoint_interval_s"],
                "pid": os.getpid(),
                "pid_create_time": _process_create_time(),
                "notes": notes,
            }
            if heartbeat:
                record["heartbeat_at"] = datetime.now(timezone.utc).isoformat()
        record.update(carbon.emissions_for(record, self._carbon))
        return new_record(**record)

    def __repr__(self) -> str:
        return (
            f"<footprint.Run {self.name!r} {self.status} id={self.id[:8]} "
            f"energy={self.energy_j:.1f} J duration={self.duration_s:.2f} s>"
        )


@functools.cache
def _process_create_time() -> float | None:
    return process_create_time()


def _outcome(
    run: Run, exc_type: type[BaseException] | None, exc: BaseException | None
) -> tuple[str, str | None]:
    """(status, error) of a run whose block ended with ``exc`` (None: normally)."""
    error = f"{exc_type.__name__}: {exc}".rstrip(": ") if exc_type is not None else None
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


# -- the public object ----------------------------------------------------------------------


class Tracker:
    """What :func:`track` returns: a context manager, and a decorator for sync and async functions.

    Each ``with`` (or each call of a decorated function) is a new :class:`Run`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._cfg = config
        self._run: Run | None = None
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Run:
        if self._run is not None:
            raise UsageError(
                f"this footprint.track({self._cfg['name']!r}) object is already running; a tracker "
                "can be entered once at a time: create another with footprint.track(...) for a "
                "nested or concurrent run"
            )
        run = Run(self._cfg)
        with critical:
            run._begin()
            self._run = run
            interrupts.register(run)
            self._token = _current.set(run)
        return run

    def __exit__(self, exc_type, exc, tb) -> bool:
        run, self._run = self._run, None
        if run is None:
            return False
        with critical:  # a signal now waits until the record is saved
            try:
                run._end(*_outcome(run, exc_type, exc))
            except Exception as bug:  # a profiler bug must not replace the user's outcome
                warnings.warn(
                    f"footprint: failed to finish run {run.id}: {type(bug).__name__}: {bug}",
                    FootprintWarning,
                    stacklevel=2,
                )
            finally:
                interrupts.unregister(run)
                if self._token is not None:
                    try:
                        _current.reset(self._token)
                    except ValueError:  # exited in another context (a generator); harmless
                        pass
                    self._token = None
        return False  # the user's exception propagates unchanged

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        if inspect.isclass(func):
            raise UsageError(
                f"@footprint.track cannot decorate a class ({func.__name__}): decorate a function "
                "or method, or use `with footprint.track(...)` inside it"
            )
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise UsageError(
                f"@footprint.track cannot decorate the generator {func.__qualname__}: its body "
                "runs while it is iterated, after the call returns; use `with "
                "footprint.track(...)` inside it or around the loop that consumes it"
            )
        if not callable(func):
            raise UsageError(
                f"footprint.track(...) object called with {func!r}: use it as a decorator on a "
                "function or as `with footprint.track(...) as run:`"
            )
        cfg = dict(self._cfg)
        if cfg["name"] is None or cfg["_default_name"]:
            cfg["name"] = getattr(func, "__qualname__", None) or repr(func)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                tracker = Tracker(cfg)
                with tracker as run:
                    async_wrapper.last_run = run
                    return await func(*args, **kwargs)

            async_wrapper.last_run = None
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            tracker = Tracker(cfg)
            with tracker as run:
                wrapper.last_run = run
                return func(*args, **kwargs)

        wrapper.last_run = None
        return wrapper  # type: ignore[return-value]


@overload
def track(name: F) -> F: ...


@overload
def track(
    name: str | None = None,
    *,
    region: str | None = None,
    carbon_intensity: float | None = None,
    pue: float | str | None = None,
    intensity_csv: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    gpus: Sequence[int | str] | None = None,
    cpu_utilisation: str = "machine",
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    max_timeline_points: int = DEFAULT_MAX_TIMELINE_POINTS,
    tags: dict[str, str] | None = None,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    baseline: bool = False,
    higher_is_better: dict[str, bool] | None = None,
    save: bool = True,
    powercap_root: str | os.PathLike = "/sys/class/powercap",
    sensors: Sequence[Sensor] | None = None,
) -> Tracker: ...


def track(name=None, **kwargs):
    """Measure the energy and carbon footprint of a block or a function.

    As a context manager::

        with footprint.track("train", region="FR") as run:
            with run.phase("epoch"):
                run.count(samples=32)
            run.log(accuracy=0.91)

    As a decorator: ``@footprint.track``, ``@footprint.track("train", region="DE")``, on sync or
    async functions (the run of the latest call is ``func.last_run``; inside the function,
    ``footprint.current_run()``).

    Arguments:

    - ``region`` (ISO 3166 code, sub-region, grid zone or ``provider:region``) or
      ``carbon_intensity`` (g CO2e/kWh); ``pue`` (a number >= 1 or a preset; default 1.0);
    - ``store``: the run directory (default ``$FOOTPRINT_DIR`` or ``./footprint-runs``);
    - ``gpus``: NVML indices or UUIDs (default: ``CUDA_VISIBLE_DEVICES``);
    - ``cpu_utilisation``: ``"machine"`` or ``"process"``, for CPU estimates;
    - ``sample_interval_s`` (timeline, default 0.1 s); ``checkpoint_interval_s`` (default 60 s);
    - ``tags``; ``task``/``model``/``variant``/``baseline`` for leaderboards;
    - ``save=False`` keeps the record in memory only;
    - ``sensors`` replaces probing with your own :class:`footprint.sensors.base.Sensor`
      objects (e.g. a smart plug).
    """
    if callable(name) and not isinstance(name, str):
        if kwargs:
            raise UsageError("use @footprint.track or @footprint.track(name, ...), not both")
        return track()(name)
    if name is not None and not isinstance(name, str):
        raise UsageError(
            f"footprint.track's first argument is the run name (a string), got {name!r}; "
            "did you mean footprint.track(name=...)?"
        )
    return Tracker(_config(name, **kwargs))


def _config(
    name: str | None,
    *,
    region: str | None = None,
    carbon_intensity: float | None = None,
    pue: float | str | None = None,
    intensity_csv: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    gpus: Sequence[int | str] | None = None,
    cpu_utilisation: str = "machine",
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    max_timeline_points: int = DEFAULT_MAX_TIMELINE_POINTS,
    tags: dict[str, str] | None = None,
    task: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    baseline: bool = False,
    higher_is_better: dict[str, bool] | None = None,
    save: bool = True,
    powercap_root: str | os.PathLike = "/sys/class/powercap",
    sensors: Sequence[Sensor] | None = None,
    _clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    for field, value in (
        ("sample_interval_s", sample_interval_s),
        ("checkpoint_interval_s", checkpoint_interval_s),
    ):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{field} must be a positive number of seconds, got {value!r}")
    if cpu_utilisation not in ("machine", "process"):
        raise ValueError(f"cpu_utilisation must be 'machine' or 'process', got {cpu_utilisation!r}")
    if not isinstance(max_timeline_points, int) or max_timeline_points < 2:
        raise ValueError(
            f"max_timeline_points must be an integer >= 2, got {max_timeline_points!r}"
        )
    from footprint import carbon

    # Resolved when track() is called: a bad region fails before any of the user's work.
    carbon_setup = carbon.resolve(
        region=region, carbon_intensity=carbon_intensity, pue=pue, intensity_csv=intensity_csv
    )
    tags = dict(tags or {})
    for k, v in tags.items():
        if not isinstance(k, str):
            raise ValueError(f"tag names must be strings, got {k!r}")
        tags[k] = str(v)
    return {
        "name": name or "run",
        "_default_name": name is None,
        "carbon": carbon_setup,
        "store": store,
        "gpus": list(gpus) if gpus is not None else None,
        "cpu_utilisation": cpu_utilisation,
        "sample_interval_s": float(sample_interval_s),
        "checkpoint_interval_s": float(checkpoint_interval_s),
        "max_timeline_points": max_timeline_points,
        "tags": tags,
        "task": task,
        "model": model,
        "variant": variant,
        "baseline": bool(baseline),
        "higher_is_better": dict(higher_is_better or {}),
        "save": save,
        "powercap_root": powercap_root,
        "sensors": list(sensors) if sensors is not None else None,
        "clock": _clock,
        "_hostname": socket.gethostname(),
    }
