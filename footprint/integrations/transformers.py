"""The Hugging Face Trainer callback and the model card (docs/integrations.md).

from footprint.integrations.transformers import FootprintCallback, add_to_model_card
cb = FootprintCallback(region="FR", task="sst2", model="bert-base", variant="int8")
trainer = Trainer(model, args, train_dataset=ds, callbacks=[cb])
trainer.train()
trainer.create_model_card(); add_to_model_card(f"{args.output_dir}/README.md", cb.run)
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from footprint.integrations._fit import FitRuns, numeric

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from footprint.options import TrackOptions

#: Log keys kept as the run's quality metrics (the rest: learning rate, grad norm, speed...).
_SPEED = ("_runtime", "_samples_per_second", "_steps_per_second")


def _quality(key: str) -> bool:
    if key.endswith(_SPEED) or key.endswith("_samples") or key == "epoch":
        return False
    return key.startswith(("eval_", "test_")) or key == "train_loss"


def _shard(dataloader: Any, world: int) -> int | None:
    """This rank's share of a dataloader's dataset (DistributedSampler semantics)."""
    try:
        n = len(dataloader.dataset)
    except Exception:
        return None
    return math.ceil(n / max(1, world))


def _trainer_of(callback: Any) -> Any:
    """The Trainer whose construction is calling ``callback.on_init_end``."""
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        handler = getattr(owner, "callback_handler", None)
        if callback in (getattr(handler, "callbacks", None) or ()):
            return owner
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _called_from(*names: str) -> str | None:
    """Which of the Trainer's methods (``evaluate``, ``predict``) the current event comes from."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in names and "self" in frame.f_locals:
            return frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return None


class FootprintCallback(TrainerCallback):
    """Measure a Trainer's fit as one run: a phase per epoch and per evaluation, ``samples``
    counted per epoch, eval metrics, and energy, power and emissions written into the logs.

    Takes the options of :func:`footprint.track`; ``samples_per_epoch`` (this rank's training
    samples per epoch) overrides the count, which is otherwise min(optimizer steps x per-device
    batch x gradient accumulation, this rank's share of the training set). A later
    ``trainer.evaluate()`` or ``trainer.predict()`` is a run of its own. ``.run`` is the latest
    run (live during the fit).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        samples_per_epoch: int | None = None,
        **options: Unpack[TrackOptions],
    ) -> None:
        self._fits = FitRuns(
            "FootprintCallback", name, options, samples_per_epoch=samples_per_epoch
        )
        self._steps = 0
        self._eval_steps = 0
        self._entry: str | None = None  # the wrapped Trainer method running, outermost
        self._args: Any = None
        self._loader: Any = None
        self._fits.on_close = self._close

    @property
    def run(self) -> Any:
        """The run being measured, else the latest finished one (None before the first)."""
        f = self._fits
        return f.run if f.live else f.last

    # -- at the Trainer's construction: the callbacks' order, and its entry points

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        trainer = _trainer_of(self)
        if trainer is None:
            return
        callbacks = trainer.callback_handler.callbacks
        # just after DefaultFlowCallback, before the reporting callbacks, so they receive the
        # figures. Moving an element from later to earlier while call_event iterates the list
        # shifts only callbacks it already called: each is still called once.
        callbacks.remove(self)
        first = callbacks and type(callbacks[0]).__name__ == "DefaultFlowCallback"
        callbacks.insert(1 if first else 0, self)
        for method in ("train", "evaluate", "predict"):
            self._wrap(trainer, method)

    def _wrap(self, trainer: Any, method: str) -> None:
        """Make ``trainer.<method>`` end the open run as failed with the exception that leaves
        it (the Trainer has no exception hook), then let the exception go on unchanged."""
        original = getattr(trainer, method, None)
        if original is None or getattr(original, "_footprint_wrapped", False):
            return

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            outer = self._entry is None  # evaluate() inside train() is part of the fit
            if outer:
                self._entry = method
            try:
                return original(*args, **kwargs)
            except BaseException as exc:
                if outer:
                    try:
                        self._fits.abandon(type(exc), exc, exc.__traceback__)
                    except Exception:  # never in the way of the user's exception
                        pass
                raise
            finally:
                if outer:
                    self._entry = None

        wrapped._footprint_wrapped = True  # type: ignore[attr-defined]
        setattr(trainer, method, wrapped)

    # -- the fit

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._args, self._loader = args, kwargs.get("train_dataloader")
        f = self._fits
        f.begin("fit")
        epochs = getattr(state, "num_train_epochs", None)
        f.total_epochs = math.ceil(epochs) if isinstance(epochs, (int, float)) and epochs else None
        if f.samples_per_epoch is not None:
            f.note(f"samples per epoch: {f.samples_per_epoch} (samples_per_epoch=)")
        else:
            f.note(
                "samples per epoch: optimizer steps x per_device_train_batch_size x "
                "gradient_accumulation_steps, capped at this rank's share of the training set"
            )

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._steps = 0
        self._fits.phase_start("epoch")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._steps += 1

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._count_epoch(args, kwargs.get("train_dataloader"), complete=True)
        self._fits.phase_end("epoch")
        self._fits.epoch_ended()

    def _count_epoch(self, args: Any, loader: Any, complete: bool) -> None:
        """This rank's samples in the epoch so far (``complete``: the whole epoch)."""
        f = self._fits
        if complete and f.samples_per_epoch is not None:
            samples = f.samples_per_epoch
        else:
            samples = self._steps * args.per_device_train_batch_size
            samples *= max(1, args.gradient_accumulation_steps)
            shard = _shard(loader, args.world_size)
            if shard is not None:
                samples = min(samples, shard)
        self._steps = 0
        f.add("samples", samples)

    def _close(self) -> None:
        """A fit ending without its epoch's end (it raised): the steps it did still count."""
        f = self._fits
        if f.in_phase("epoch") and self._args is not None:
            f.close_inside("epoch")
            self._count_epoch(self._args, self._loader, complete=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._fits.end()

    # -- evaluation and prediction

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        f = self._fits
        if not f.live:
            stage = self._entry if self._entry in ("evaluate", "predict") else None
            f.begin(stage or _called_from("predict", "evaluate") or "evaluate")
        if not f.in_phase("eval") and not f.in_phase("predict"):
            self._eval_steps = 0
            f.phase_start("predict" if f.stage == "predict" else "eval")
        self._eval_steps += 1

    def _queries(self, args: Any, kwargs: Mapping[str, Any]) -> int:
        queries = self._eval_steps * args.per_device_eval_batch_size
        shard = _shard(kwargs.get("eval_dataloader"), args.world_size)
        return min(queries, shard) if shard is not None else queries

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        self._inference_end(args, metrics, kwargs, "eval")

    def on_predict(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        self._inference_end(args, metrics, kwargs, "predict")

    def _inference_end(self, args: Any, metrics: Any, kwargs: Any, phase: str) -> None:
        f = self._fits
        if not f.live:
            return
        if self._eval_steps:
            f.count(queries=self._queries(args, kwargs))
            self._eval_steps = 0
        f.phase_end(phase if f.in_phase(phase) else "eval" if f.in_phase("eval") else "predict")
        f.log(numeric(metrics or {}, _quality))
        if f.stage in ("evaluate", "predict"):
            f.end()

    # -- logs

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        f = self._fits
        if isinstance(logs, dict):
            f.log(numeric(logs, _quality))
            figures = f.figures()
            logs.update(figures)  # what the reporting callbacks after this one receive
            history = getattr(state, "log_history", None)
            if history and isinstance(history[-1], dict):
                history[-1].update(figures)  # the Trainer copied logs there before on_log


def add_to_model_card(
    path: str | os.PathLike[str], run: Any, training_type: str | None = None
) -> None:
    """Add or replace the ``co2_eq_emissions`` block of the model card at ``path`` (a README.md),
    keeping everything else, through Hugging Face's own metadata API. Call it after
    ``trainer.create_model_card()``, which rewrites README.md. Creates the card if missing."""
    from huggingface_hub import ModelCard, ModelCardData

    from footprint.reporting.card import co2_eq_emissions

    record = getattr(run, "record", run)
    co2 = co2_eq_emissions(record, training_type=training_type)
    if os.path.exists(path):
        card = ModelCard.load(os.fspath(path))
    else:
        card = ModelCard.from_template(ModelCardData())
    card.data.co2_eq_emissions = co2
    card.save(path)


@contextmanager
def model_card_on_push(trainer: Any, run: Any, training_type: str | None = None) -> Iterator[None]:
    """``with model_card_on_push(trainer, cb.run): trainer.push_to_hub()``: the card the Trainer
    writes just before it uploads gets the ``co2_eq_emissions`` block too."""
    original = trainer.create_model_card

    def create_model_card(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        add_to_model_card(os.path.join(trainer.args.output_dir, "README.md"), run, training_type)
        return out

    trainer.create_model_card = create_model_card
    try:
        yield
    finally:
        del trainer.create_model_card  # back to the class's method
