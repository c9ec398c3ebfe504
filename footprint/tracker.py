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
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, overload

from footprint.errors import FootprintWarning, UsageError
from footprint.record import SCHEMA_VERSION, check_number
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

    __slots__ = ("name", "path", "start", "end", "counts")

    def __init__(self, name: str, path: str, start: Snapshot) -> None:
        self.name, self.path, self.start = name, path, start
        self.end: Snapshot | None = None
        self.counts: dict[str, float] = {}


class Run:
    """A tracked run: live while its block executes, a finished record afterwards.

    Use :meth:`phase`, :meth:`count` and :meth:`log` inside the block; read ``energy_kwh``,
    ``emissions_kg``, ``duration_s`` or :meth:`to_dict` after it.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._cfg = config
        self.id = os.urandom(16).hex()  # 128 random bits, as uuid4 (without importing uuid)
        self.name: str = config["name"]
        self.status = "running"
        self.counts: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = dict(config["tags"])
        self.notes: list[str] = []
        self.error: str | None = None
        self.path = None  # where the record was saved
        self._phases: list[Phase] = []
        self._phase_stack: list[Phase] = []
        self._lock = threading.RLock()
        self._save_lock = threading.RLock()  # orders checkpoints before the final save
        self._store = Store(config["store"])
        self._record: dict | None = None
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
        record = self._build(snap, status="running")
        record["heartbeat_at"] = datetime.now(timezone.utc).isoformat()
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
        with self._lock:
            if self.status != "running":
                return
            self._stop = self._sensors.read()
            self.status = status
            self.error = error
        if self._sampler is not None:
            self._sampler.stop()
        self._timeline.finish(self._stop)
        for s in self._probe.sensors:
            s.stop()
        while self._phase_stack:  # phases left open by an exception end with the run
            self._close_phase(self._phase_stack[-1], self._stop)
        self._record = self._build(self._stop, status=status)
        if self._cfg["save"]:
            try:
                with self._save_lock:
                    self.path = self._store.save(self._record)
            except (OSError, ValueError) as exc:
                warnings.warn(
                    f"footprint: could not save run {self.id} to {self._store.path}: {exc}",
                    FootprintWarning,
                    stacklevel=3,
                )

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
        """Measure a named part of the run (nestable, repeatable): ``with run.phase("epoch"):``."""
        self._check_live("phase")
        if not isinstance(name, str) or not name:
            raise ValueError(f"phase name must be a non-empty string, got {name!r}")
        with self._lock:
            parent = self._phase_stack[-1].path + "/" if self._phase_stack else ""
            ph = Phase(name, parent + name, self._sensors.read())
            self._phases.append(ph)
            self._phase_stack.append(ph)
        try:
            yield ph
        finally:
            with self._lock:
                if ph.end is None and self.status == "running":
                    self._close_phase(ph, self._sensors.read())

    def _close_phase(self, ph: Phase, snap: Snapshot) -> None:
        ph.end = snap
        if ph in self._phase_stack:
            # Closing a phase closes any inner one still open (misnested exits).
            while self._phase_stack:
                top = self._phase_stack.pop()
                if top is ph:
                    break
                top.end = snap

    def count(self, **units: float) -> None:
        """Add units of work (``samples=32``, ``tokens=...``), to the run and its open phases."""
        self._check_live("count")
        for key, value in units.items():
            check_number(key, value)
        with self._lock:
            for key, value in units.items():
                self.counts[key] = self.counts.get(key, 0) + value
                for ph in self._phase_stack:
                    ph.counts[key] = ph.counts.get(key, 0) + value

    def log(self, **metrics: float) -> None:
        """Record quality metrics (``accuracy=0.91``); a later value replaces an earlier one.

        Allowed during the run and right after it (metrics are often computed after the block);
        logging after the run re-saves its record.
        """
        for key, value in metrics.items():
            check_number(key, value)
        with self._lock:
            self.metrics.update({k: float(v) for k, v in metrics.items()})
            if self._record is not None:
                self._record["metrics"] = dict(self.metrics)
                if self._cfg["save"] and self.path is not None:
                    self.path = self._store.save(self._record)

    # -- results ---------------------------------------------------------------------------

    def _device_energy(self, a: Snapshot, b: Snapshot) -> list[float]:
        return [max(0.0, y - x) for x, y in zip(a.energy_j, b.energy_j)]

    def _now(self) -> Snapshot:
        return self._stop if self._stop is not None else self._sensors.read()

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
            return self._record["emissions_kg"]
        return self._carbon.emissions_kg(self.energy_kwh) if self._start is not None else None

    def to_dict(self) -> dict:
        """The run's record (a plain JSON-serialisable dict); live runs give a snapshot."""
        if self._record is not None:
            out = dict(self._record)
            out["metrics"] = dict(self.metrics)
            return out
        if self._start is None:
            raise UsageError(
                "the run has not started yet: call to_dict() inside or after the block"
            )
        return self._build(self._sensors.read(), status="running")

    def report(self, out: str | os.PathLike | None = None, *, overwrite: bool = False):
        """Write this run's self-contained HTML page (default ``reports/<name>-<id>.html``)."""
        from footprint.reporting import report

        if self._record is None:
            raise UsageError("run.report() needs a finished run: call it after the block")
        return report(runs=[self.to_dict()], out=out, overwrite=overwrite)

    def _build(self, snap: Snapshot, status: str) -> dict:
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
                "schema_version": SCHEMA_VERSION,
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
        record.update(carbon.emissions_for(record, self._carbon))
        return record

    def __repr__(self) -> str:
        return (
            f"<footprint.Run {self.name!r} {self.status} id={self.id[:8]} "
            f"energy={self.energy_j:.1f} J duration={self.duration_s:.2f} s>"
        )


@functools.cache
def _process_create_time() -> float | None:
    return process_create_time()


# -- signals ------------------------------------------------------------------------------

_active: list[Run] = []
_active_lock = threading.Lock()
_previous_sigterm: Any = None
_installed = False


def _on_sigterm(signum: int, frame: Any) -> None:
    """Save every active run as interrupted, then do what SIGTERM would have done."""
    for run in list(reversed(_active)):
        run._end("interrupted", error="SIGTERM")
    prev = _previous_sigterm
    _uninstall()
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_DFL or prev is None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install() -> None:
    global _previous_sigterm, _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return  # Python allows signal handlers only in the main thread (docs/tracking.md)
    prev = signal.getsignal(signal.SIGTERM)
    if prev == signal.SIG_IGN:
        return  # the program chose to ignore SIGTERM; leave it so
    _previous_sigterm = prev
    signal.signal(signal.SIGTERM, _on_sigterm)
    _installed = True


def _uninstall() -> None:
    global _installed
    if not _installed:
        return
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _previous_sigterm)
        _installed = False


def _register(run: Run) -> None:
    with _active_lock:
        _active.append(run)
        _install()


def _unregister(run: Run) -> None:
    with _active_lock:
        if run in _active:
            _active.remove(run)
        if not _active:
            _uninstall()


def _status_for(exc_type: type[BaseException] | None, exc: BaseException | None) -> str:
    if exc_type is None:
        return "completed"
    if issubclass(exc_type, KeyboardInterrupt):
        return "interrupted"
    if issubclass(exc_type, SystemExit):
        code = getattr(exc, "code", None)
        return "completed" if code in (0, None) else "failed"
    return "failed"


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
        run._begin()
        self._run = run
        _register(run)
        self._token = _current.set(run)
        return run

    def __exit__(self, exc_type, exc, tb) -> bool:
        run, self._run = self._run, None
        if run is None:
            return False
        try:
            error = f"{exc_type.__name__}: {exc}" if exc_type is not None else None
            run._end(_status_for(exc_type, exc), error=error)
        except Exception as bug:  # a profiler bug must not replace the user's outcome
            warnings.warn(
                f"footprint: failed to finish run {run.id}: {type(bug).__name__}: {bug}",
                FootprintWarning,
                stacklevel=2,
            )
        finally:
            _unregister(run)
            if self._token is not None:
                try:
                    _current.reset(self._token)
                except ValueError:  # exited in another context (e.g. a generator); harmless
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
    pue: float | str = 1.0,
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

    Arguments: ``region`` (ISO 3166 code, sub-region, grid zone or ``provider:region``) or
    ``carbon_intensity`` (g CO2e/kWh); ``pue`` (a number >= 1 or a preset); ``store`` (the run
    directory; default ``$FOOTPRINT_DIR`` or ``./footprint-runs``); ``gpus`` (NVML indices or
    UUIDs; default: ``CUDA_VISIBLE_DEVICES``); ``cpu_utilisation`` (``"machine"`` or
    ``"process"`` for CPU estimates); ``sample_interval_s`` (timeline, default 0.1 s);
    ``checkpoint_interval_s`` (default 60 s); ``tags``; ``task``/``model``/``variant``/
    ``baseline`` for leaderboards; ``save=False`` keeps the record in memory only;
    ``sensors`` replaces probing with your own :class:`footprint.sensors.base.Sensor` objects
    (e.g. a smart plug).
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
    pue: float | str = 1.0,
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
