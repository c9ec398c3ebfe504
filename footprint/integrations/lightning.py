"""The PyTorch Lightning callback (docs/integrations.md).

import lightning as L
from footprint.integrations.lightning import FootprintCallback
trainer = L.Trainer(callbacks=[FootprintCallback(region="FR")])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import Callback

from footprint.integrations._fit import FitRuns, batch_size, numeric

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from footprint.options import TrackOptions


def _quality(key: str) -> bool:
    return not key.startswith("footprint_") and key not in ("epoch", "step")


def _fn(trainer: Any) -> str:
    """The Trainer's entry point now running: fit, validate, test or predict."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn) or "fit")


def _log_step(trainer: Any) -> int:
    """The step Lightning logs the current batch's metrics at (its own cadence's counter, where
    this version has it; else the optimizer steps)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    n = getattr(loop, "_batches_that_stepped", None)
    return n if isinstance(n, int) else int(trainer.global_step)


class FootprintCallback(Callback):
    """Measure a Lightning fit as one run: a phase per training epoch and per validation,
    ``samples`` counted from each training batch (its first tensor's first dimension), quality
    metrics from ``trainer.callback_metrics``, and energy, power and emissions sent to the
    Trainer's loggers every ``log_every_n_steps`` and at each epoch's end.

    Takes the options of :func:`footprint.track`. A later ``trainer.validate()``,
    ``trainer.test()`` or ``trainer.predict()`` is a run of its own (phase ``eval`` or
    ``predict``, ``queries`` counted). A fit that raises is saved as failed
    (``on_exception``). ``.run`` is the latest run (live during the fit).
    """

    def __init__(self, name: str | None = None, **options: Unpack[TrackOptions]) -> None:
        self._fits = FitRuns("FootprintCallback", name, options)

    @property
    def run(self) -> Any:
        """The run being measured, else the latest finished one (None before the first)."""
        f = self._fits
        return f.run if f.live else f.last

    # -- the fit

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._fits.begin("fit")
        epochs = getattr(trainer, "max_epochs", None)
        if (
            isinstance(epochs, int)
            and epochs > 0
            and getattr(trainer, "max_steps", -1) in (-1, None)
        ):
            self._fits.total_epochs = epochs
        self._fits.note("samples: the first dimension of each training batch's first tensor")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._fits.phase_start("epoch")

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        f = self._fits
        n = batch_size(batch)
        if n:
            f.add("samples", n)
        every = getattr(trainer, "log_every_n_steps", 0) or 0
        if every > 0 and (_log_step(trainer) + 1) % every == 0:
            self._send(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        f = self._fits
        f.phase_end("epoch")
        f.epoch_ended()
        f.log(numeric(trainer.callback_metrics, _quality))
        self._send(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        f = self._fits
        f.log(numeric(trainer.callback_metrics, _quality))
        f.end()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        # Lightning re-raises it (or exits 1 after a KeyboardInterrupt) once callbacks ran
        self._fits.abandon(type(exception), exception, exception.__traceback__)

    # -- validation, test and prediction

    def _inference_start(self, trainer: Any, phase: str) -> None:
        f = self._fits
        if getattr(trainer, "sanity_checking", False):
            return  # Lightning's check of the validation loop: not an evaluation
        if not f.live:
            f.begin(_fn(trainer))
        f.phase_start(phase)

    def _inference_batch(self, trainer: Any, batch: Any) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        n = batch_size(batch)
        if n:
            self._fits.add("queries", n)

    def _inference_end(self, trainer: Any, phase: str) -> None:
        f = self._fits
        if getattr(trainer, "sanity_checking", False) or not f.in_phase(phase):
            return
        f.phase_end(phase)
        if phase != "predict":
            f.log(numeric(trainer.callback_metrics, _quality))
        if f.stage != "fit":
            f.end()

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._inference_start(trainer, "eval")

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._inference_batch(trainer, batch)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._inference_end(trainer, "eval")

    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._inference_start(trainer, "eval")

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._inference_batch(trainer, batch)

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._inference_end(trainer, "eval")

    def on_predict_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._inference_start(trainer, "predict")

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._inference_batch(trainer, batch)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._inference_end(trainer, "predict")

    # -- logs

    def _send(self, trainer: Any) -> None:
        figures = self._fits.figures()
        if not figures:
            return
        for logger in getattr(trainer, "loggers", None) or ():
            try:
                logger.log_metrics(figures, step=_log_step(trainer))
            except Exception as exc:  # a logger's failure must not break the training
                run = self._fits.run
                if run is not None:
                    note = f"FootprintCallback: {type(logger).__name__} refused the figures: {exc}"
                    if note not in run.notes:
                        run.notes.append(note)
