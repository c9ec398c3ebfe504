"""The Keras 3 callback (docs/integrations.md).

from footprint.integrations.keras import FootprintCallback
model.fit(x, y, epochs=3, callbacks=[FootprintCallback(region="FR")])
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

try:
    import keras
except ModuleNotFoundError as exc:
    if exc.name == "keras":
        raise ModuleNotFoundError(
            "footprint.integrations.keras needs Keras 3: pip install 'footprint[keras]'",
            name="keras",
        ) from exc
    raise ModuleNotFoundError(
        f"Keras could not load its backend ({exc}): set KERAS_BACKEND=torch (or jax) before "
        "Keras is first imported, or install the backend it names",
        name=exc.name,
    ) from exc

from footprint.integrations._fit import FitRuns, batched_samples, numeric
from footprint.integrations._fit import batch_size as leading_dim

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from footprint.options import TrackOptions

_NOT_QUALITY = ("learning_rate", "lr")


def _quality(key: str) -> bool:
    return not key.startswith("footprint_") and key not in _NOT_QUALITY


def _adapter(names: tuple[str, ...]) -> Any:
    """The data adapter of the ``fit`` / ``evaluate`` running this callback: the batch size
    the user gave Keras (or its dataset's) and how the last batch falls short."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return None
        if frame.f_code.co_name in names:
            adapter = getattr(frame.f_locals.get("epoch_iterator"), "data_adapter", None)
            if adapter is not None:
                return adapter
        frame = frame.f_back  # type: ignore[assignment]
    return None


class FootprintCallback(keras.callbacks.Callback):
    """Measure a Keras ``fit`` as one run: a phase per epoch and per validation, ``samples``
    counted per epoch, quality metrics from the epoch's logs, and energy, power and emissions
    added to those logs (so ``History`` and the progress bar have them).

    Takes the options of :func:`footprint.track`. Samples per epoch: ``samples_per_epoch=``
    if given, else steps x ``batch_size=`` if given, else steps x the batch size ``fit`` was
    given (or its dataset's), with the last partial batch. A later ``model.evaluate()`` or
    ``model.predict()`` is a run of its own (phase ``eval`` / ``predict``, ``queries``). Keras
    has no exception hook: a fit whose exception leaves the program is saved as failed, one
    left open at exit as interrupted, one left open when the next begins as failed.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        samples_per_epoch: int | None = None,
        batch_size: int | None = None,
        **options: Unpack[TrackOptions],
    ) -> None:
        super().__init__()
        self._fits = FitRuns(
            "FootprintCallback",
            name,
            options,
            samples_per_epoch=samples_per_epoch,
            batch_size=batch_size,
        )
        self._steps = 0
        self._eval_steps = 0
        self._train_adapter: Any = None
        self._eval_adapter: Any = None
        self._fits.on_close = self._close

    @property
    def run(self) -> Any:
        """The run being measured, else the latest finished one (None before the first)."""
        f = self._fits
        return f.run if f.live else f.last

    # -- the fit

    def on_train_begin(self, logs: Any = None) -> None:
        self._train_adapter = _adapter(("fit",))
        f = self._fits
        f.begin("fit")
        epochs = (self.params or {}).get("epochs")
        f.total_epochs = epochs if isinstance(epochs, int) and epochs > 0 else None
        if f.samples_per_epoch is not None:
            f.note(f"samples per epoch: {f.samples_per_epoch} (samples_per_epoch=)")
        elif f.batch_size is not None:
            f.note(f"samples: steps x {f.batch_size} (batch_size=)")
        elif self._train_adapter is not None:
            f.note("samples: steps x the batch size fit was given, with each pass's last batch")

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._steps = 0
        self._fits.phase_start("epoch")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._steps = batch + 1  # Keras passes the last step index (several per execution)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        f = self._fits
        self._count_epoch(complete=True)
        f.phase_end("epoch")
        f.epoch_ended()
        if isinstance(logs, dict):
            f.log(numeric(logs, _quality))
            logs.update(f.figures())  # History and the progress bar come after this callback

    def _count_epoch(self, complete: bool) -> None:
        """The samples of the epoch so far (``complete``: the whole epoch)."""
        f = self._fits
        if complete and f.samples_per_epoch is not None:
            samples: int | None = f.samples_per_epoch
        elif self._train_adapter is not None or f.batch_size is not None:
            samples = batched_samples(self._steps, self._train_adapter, f.batch_size)
        else:
            samples = None
        self._steps = 0
        if samples:
            f.add("samples", samples)
        elif samples is None:
            f.note(
                "samples not counted: Keras knows no batch size for this data (a generator?); "
                "pass batch_size= or samples_per_epoch= to the callback"
            )

    def _close(self) -> None:
        """A run ending without its epoch's or evaluation's end (it raised): the steps it did
        still count, each in its own phase."""
        f = self._fits
        if f.in_phase("eval"):
            queries = batched_samples(self._eval_steps, self._eval_adapter, None)
            if queries:
                f.add("queries", queries)
            f.phase_end("eval")
        if f.in_phase("epoch"):
            f.close_inside("epoch")
            self._count_epoch(complete=False)

    def on_train_end(self, logs: Any = None) -> None:
        self._fits.end()

    # -- evaluation and prediction

    def _inference_begin(self, stage: str, phase: str) -> None:
        f = self._fits
        if not f.live:
            f.begin(stage)
        f.phase_start(phase)

    def on_test_begin(self, logs: Any = None) -> None:
        self._eval_adapter = _adapter(("evaluate",))
        self._eval_steps = 0
        self._inference_begin("evaluate", "eval")

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        self._eval_steps = batch + 1

    def on_test_end(self, logs: Any = None) -> None:
        f = self._fits
        if not f.in_phase("eval"):
            return
        queries = batched_samples(self._eval_steps, self._eval_adapter, None)
        if queries:
            f.add("queries", queries)
        f.phase_end("eval")
        if f.stage == "evaluate":  # in a fit, the epoch's logs carry these as val_*
            if isinstance(logs, dict):
                f.log(numeric(logs, _quality))
            f.end()

    def on_predict_begin(self, logs: Any = None) -> None:
        self._inference_begin("predict", "predict")

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        n = leading_dim((logs or {}).get("outputs"))
        if n:
            self._fits.add("queries", n)

    def on_predict_end(self, logs: Any = None) -> None:
        f = self._fits
        f.phase_end("predict")
        if f.stage == "predict":
            f.end()
