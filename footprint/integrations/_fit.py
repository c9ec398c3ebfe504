"""What the framework callbacks share: a fit as one run with a phase per epoch and per
evaluation, a standalone evaluate() or predict() as a run of its own, the figures logged back,
and the end of a run whose fit raised (the Trainer and Keras have no exception hook).

Work units: ``samples`` in training epochs, ``queries`` in evaluation and prediction, each rank
counting its own shard (a job of many processes sums them: docs/distributed.md).
"""

from __future__ import annotations

import atexit
import math
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from footprint import options as opts
from footprint.errors import UsageError, describe
from footprint.units import J_PER_KWH

#: What the callbacks add to the framework's logs at each log step: energy so far (kWh), mean
#: power since the previous log (W), emissions so far (grams, as Hugging Face's model cards);
#: from the second epoch on, also the forecast of the whole fit (FORECAST).
FIGURES = ("footprint_energy_kwh", "footprint_power_w", "footprint_emissions_g")
FORECAST = (
    "footprint_forecast_energy_kwh",
    "footprint_forecast_energy_kwh_low",
    "footprint_forecast_energy_kwh_high",
    "footprint_forecast_emissions_g",
)

_open: weakref.WeakSet[FitRuns] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_hooked = False


def _install_exit_hooks() -> None:
    """An exception that leaves the program ends every open fit's run as failed with it; a
    program that exits with a fit still open ends it as interrupted (atexit)."""
    global _hooked
    with _hooks_lock:
        if _hooked:
            return
        _hooked = True
        previous = sys.excepthook

        def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
            for fit in list(_open):
                fit.abandon(exc_type, exc, tb)
            previous(exc_type, exc, tb)

        sys.excepthook = excepthook
        atexit.register(_at_exit)


def _at_exit() -> None:
    for fit in list(_open):
        fit.abandon(None, None, None, reason="the program exited while the fit was running")


def batch_size(batch: Any) -> int | None:
    """How many samples a batch holds: the first dimension of its first tensor or array."""
    seen = 0
    while seen < 8:  # nested containers: (inputs, labels), {"input_ids": ...}
        seen += 1
        shape = getattr(batch, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(batch, Mapping):
            batch = next(iter(batch.values()), None)
        elif isinstance(batch, (list, tuple)):
            if batch and all(isinstance(x, (int, float, str)) for x in batch):
                return len(batch)
            batch = batch[0] if batch else None
        else:
            return None
    return None


def batched_samples(steps: int, adapter: Any, batch: int | None) -> int | None:
    """Samples in ``steps`` batches of a data adapter (Keras's: ``batch_size``,
    ``num_batches``, ``has_partial_batch``, ``partial_batch_size``), whose passes over the data
    each end with a partial batch; ``batch`` overrides the adapter's batch size."""
    if batch is None:
        try:
            batch = int(adapter.batch_size)
        except Exception:
            return None
    try:
        num = int(adapter.num_batches) if adapter is not None else 0
        partial = int(adapter.partial_batch_size or 0) if adapter.has_partial_batch else 0
    except Exception:
        num, partial = 0, 0
    if num <= 0 or partial <= 0:
        return steps * batch
    passes, rest = divmod(steps, num)
    return passes * ((num - 1) * batch + partial) + rest * batch


def numeric(metrics: Mapping[str, Any], keep: Any = None) -> dict[str, float]:
    """The finite numbers (tensors of one element included) of ``metrics`` whose name ``keep``
    accepts."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or (keep is not None and not keep(key)):
            continue
        if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
            try:
                value = value.item()
            except Exception:
                continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class FitRuns:
    """The runs of one callback: a fit, an evaluation or a prediction at a time."""

    def __init__(
        self,
        where: str,
        name: str | None,
        options: Mapping[str, Any],
        samples_per_epoch: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        for key, value in (("samples_per_epoch", samples_per_epoch), ("batch_size", batch_size)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise ValueError(f"{where}: {key} must be a whole number > 0, got {value!r}")
        self.where = where
        # every option checked now, before any training: a typo fails here, naming the closest
        self.config = opts.resolve(name, dict(options), where=where)
        self.samples_per_epoch = samples_per_epoch
        self.batch_size = batch_size
        self.tracker: Any = None
        self.run: Any = None
        self.last: Any = None  # the latest finished run
        self.stage: str | None = None
        self._phases: list[tuple[str, Any]] = []
        self._pending: dict[str, float] = {}  # units added per batch, counted at a phase's end
        #: the callback's count of a phase cut short, called when a run ends
        self.on_close: Callable[[], None] | None = None
        #: epochs the fit will run (the framework's argument), for the forecast; None: unknown
        self.total_epochs: int | None = None
        self.forecast: Any = None  # the latest forecast of the open fit
        self._epochs_closed = 0
        self._last_energy: tuple[float, float] | None = None  # (J, s) at the last log

    # -- runs

    def begin(self, stage: str) -> Any:
        """Start the run of a ``fit``, ``evaluate`` or ``predict`` (ending one left open)."""
        from footprint.tracker import Tracker

        if self.tracker is not None:
            self.abandon(RuntimeError, None, None, reason=f"a new {stage} began before it ended")
        cfg = self.config
        if cfg.default_name:
            cfg = cfg.named(stage)
        tags = {**cfg.tags, "stage": stage}
        from dataclasses import replace

        self.tracker = Tracker(replace(cfg, tags=tags))
        self.run = self.tracker.__enter__()
        self.stage = stage
        self._last_energy = None
        self._pending = {}
        self.total_epochs = None
        self.forecast = None
        self._epochs_closed = 0
        _install_exit_hooks()
        _open.add(self)
        return self.run

    def end(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> Any:
        """End the open run (None: none open); returns it."""
        tracker, run = self.tracker, self.run
        if tracker is None:
            return None
        if self.on_close is not None:
            try:
                self.on_close()
            except Exception:  # a count that cannot be made must not lose the run
                pass
        self.flush()
        self.tracker = self.stage = None
        _open.discard(self)
        while self._phases:
            self.phase_end(self._phases[-1][0])
        tracker.__exit__(exc_type, exc, tb)
        self.last = run
        if "mlflow" in sys.modules:  # the program uses MLflow: log into its active run, if any
            self._to_mlflow(run)
        return run

    def _to_mlflow(self, run: Any) -> None:
        try:
            from footprint.integrations.mlflow import log_if_active

            log_if_active(run)
        except Exception as exc:  # MLflow down or refusing: the run is saved; say so
            import warnings

            from footprint.errors import FootprintWarning

            warnings.warn(
                f"{self.where}: the run was saved but not logged to MLflow: {describe(exc)}",
                FootprintWarning,
                stacklevel=2,
            )

    def abandon(self, exc_type: Any, exc: Any, tb: Any, reason: str | None = None) -> None:
        """End the open run as failed with ``exc`` (or interrupted with ``reason``)."""
        run = self.run
        if self.tracker is None or run is None:
            return
        if exc_type is None:
            run.interrupt(reason or "the fit did not reach its end")
        elif exc is None:
            run.fail(reason or exc_type.__name__)
        self.end(exc_type, exc, tb)

    def note(self, text: str) -> None:
        """Add ``text`` to the open run's notes once (how its units were counted, say)."""
        run, full = self.run, f"{self.where}: {text}"
        if run is not None and self.tracker is not None and full not in run.notes:
            run.notes.append(full)

    @property
    def live(self) -> bool:
        return self.tracker is not None

    # -- phases and counts

    def phase_start(self, name: str) -> None:
        if self.run is None or self.tracker is None:
            return
        self.flush()  # units so far belong to the enclosing phase
        cm = self.run.phase(name)
        cm.__enter__()
        self._phases.append((name, cm))

    def phase_end(self, name: str) -> None:
        """Close the innermost open phase called ``name`` (and any opened inside it)."""
        names = [n for n, _ in self._phases]
        if name not in names:
            return
        self.flush()  # the phase's own units, before it closes
        while self._phases:
            n, cm = self._phases.pop()
            try:
                cm.__exit__(None, None, None)
            except Exception:  # a phase that cannot close must not break the training
                pass
            if n == name:
                return

    def epoch_ended(self) -> None:
        """After an epoch's end: forecast the fit (from 2 epochs on, when its length is known)."""
        run, total = self.run, self.total_epochs
        self._epochs_closed += 1
        if run is None or self.tracker is None or not total or self._epochs_closed >= total:
            return
        try:
            self.forecast = run.forecast(total)
        except UsageError:
            pass  # fewer than 2 epochs yet, or more than planned: no forecast

    def close_inside(self, name: str) -> None:
        """Close the phases opened inside the innermost open ``name`` (it stays open)."""
        while self._phases and self.in_phase(name) and self._phases[-1][0] != name:
            self.phase_end(self._phases[-1][0])

    def in_phase(self, name: str) -> bool:
        return any(n == name for n, _ in self._phases)

    def add(self, unit: str, n: float) -> None:
        """Add ``n`` units to what the next :meth:`flush` counts: a per-batch call costs a
        dictionary update, not a lock."""
        self._pending[unit] = self._pending.get(unit, 0) + n

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, {}
            self.count(**pending)

    def count(self, **units: float) -> None:
        run = self.run
        if run is None or self.tracker is None:
            return
        units = {k: v for k, v in units.items() if v}
        if units:
            try:
                run.count(**units)
            except UsageError:
                pass

    def log(self, metrics: Mapping[str, float]) -> None:
        run = self.run if self.tracker is not None else self.last
        if run is not None and metrics:
            try:
                run.log(**metrics)
            except (UsageError, ValueError) as exc:
                run.notes.append(f"{self.where}: metrics not kept: {describe(exc)}")

    def figures(self) -> dict[str, float]:
        """:data:`FIGURES` now: this process's view, on the same basis as its record (a rank
        that does not measure has none)."""
        run = self.run
        if run is None or self.tracker is None:
            return {}
        try:
            energy_j, t, emissions = run.so_far()
        except Exception:  # a rank that reads no device, a sensor gone: no figures, no failure
            return {}
        if self._last_energy is not None and t > self._last_energy[1]:
            power = (energy_j - self._last_energy[0]) / (t - self._last_energy[1])
        else:
            power = energy_j / t if t > 0 else 0.0
        self._last_energy = (energy_j, t)
        out = {"footprint_energy_kwh": energy_j / J_PER_KWH, "footprint_power_w": power}
        if emissions is not None:
            out["footprint_emissions_g"] = emissions * 1000.0
        f = self.forecast
        if f is not None:  # the whole fit, predicted (95 % interval)
            out["footprint_forecast_energy_kwh"] = f.energy_kwh
            out["footprint_forecast_energy_kwh_low"] = f.energy_kwh_low
            out["footprint_forecast_energy_kwh_high"] = f.energy_kwh_high
            if f.emissions_kg is not None:
                out["footprint_forecast_emissions_g"] = f.emissions_kg * 1000.0
        return out
