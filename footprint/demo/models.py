"""The models behind ``footprint demo``: one task, a full model and its compressed variants.

The task is scikit-learn's bundled 8x8 digits (no download). The full model is a wide fp32 MLP,
wide enough that matrix multiplies dominate its run time, so that compression can show up in
time and energy at all (on a tiny MLP, int8's quantize/dequantize overhead makes it *slower*).
From it come an int8 dynamic-quantized copy, a bf16 copy, a magnitude-pruned copy and a
distilled student. See docs/demo.md for the measurements behind each choice.

This module imports torch at the top: it is imported by the demo only, never by
``import footprint``. scikit-learn is imported inside :func:`load_digits_data`.

Typical use (the demo wraps each epoch in a tracker phase)::

    config = demo_config(quick=True)
    setup_torch(config)
    data = load_digits_data(config)
    full = train_full_model(data, config, epoch_scope=lambda epoch: run.phase("epoch"),
                            on_epoch_end=lambda stats: run.count(samples=stats.samples))
    student = train_student(full, data, config)
    variants = build_variants(full, student, config)
    for name, variant in variants.items():
        labels = torch.cat([variant.predict(batch) for batch in data.batches])
        print(name, accuracy(labels, data.y_test))
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from footprint.errors import UsageError

__all__ = [
    "DemoConfig",
    "DigitsData",
    "EpochStats",
    "Variant",
    "accuracy",
    "build_variants",
    "demo_config",
    "load_digits_data",
    "make_batches",
    "make_mlp",
    "measure_inference_s_per_1000",
    "predict_all",
    "prune_model",
    "quantize_int8",
    "setup_torch",
    "sparsity",
    "to_bf16",
    "train_full_model",
    "train_student",
]

#: Name of the baseline variant in :func:`build_variants`' result.
FULL = "full"

EpochScope = Callable[[int], AbstractContextManager]
EpochCallback = Callable[["EpochStats"], None]
StepScope = Callable[[str], AbstractContextManager]
Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and hyper-parameters of the demo workload (see :func:`demo_config`).

    ``hidden_width``/``hidden_layers`` size the full MLP; ``student_*`` the distilled one.
    ``temperature`` softens both models' logits during distillation; ``soft_weight`` is the share
    of the distillation loss in the student's loss (the rest is cross-entropy on true labels).
    ``prune_amount`` is the fraction of each linear layer's weights set to zero.
    ``inference_batch_size`` is how many queries one ``predict`` call gets; ``repeats`` is how
    many timed passes over the test set the benchmark makes per variant. ``num_threads`` None
    means one torch thread per CPU this process may run on.
    """

    hidden_width: int = 2048
    hidden_layers: int = 2
    epochs: int = 8
    student_width: int = 256
    student_layers: int = 2
    student_epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    student_learning_rate: float = 3e-3
    temperature: float = 4.0
    soft_weight: float = 0.9
    prune_amount: float = 0.7
    include_bf16: bool = True
    test_fraction: float = 0.2
    inference_batch_size: int = 64
    repeats: int = 3
    seed: int = 0
    num_threads: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "hidden_width",
            "hidden_layers",
            "epochs",
            "student_width",
            "student_layers",
            "student_epochs",
            "batch_size",
            "inference_batch_size",
            "repeats",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"DemoConfig.{name} must be a positive integer, got {value!r}")
        if self.num_threads is not None and (
            not isinstance(self.num_threads, int) or self.num_threads < 1
        ):
            raise UsageError(
                f"DemoConfig.num_threads must be a positive integer or None (one thread per "
                f"usable CPU), got {self.num_threads!r}"
            )
        _check_fraction("DemoConfig.prune_amount", self.prune_amount, allow_zero=True)
        _check_fraction("DemoConfig.test_fraction", self.test_fraction, allow_zero=False)
        if not 0.0 <= self.soft_weight <= 1.0:
            raise UsageError(f"DemoConfig.soft_weight must be in [0, 1], got {self.soft_weight!r}")
        for name in ("temperature", "learning_rate", "student_learning_rate"):
            if not getattr(self, name) > 0:
                raise UsageError(f"DemoConfig.{name} must be > 0, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """The configuration as plain JSON-serialisable data (for a run's metadata)."""
        return asdict(self)


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> None:
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (isinstance(value, (int, float)) and low_ok and value < 1.0):
        bound = "[0, 1)" if allow_zero else "(0, 1)"
        raise UsageError(f"{name} must be a fraction in {bound}, got {value!r}")


def demo_config(quick: bool = False, **overrides: object) -> DemoConfig:
    """The demo's profile: the default (about 3 min in all on 2 cores) or ``quick`` (about 1 min).

    The quick profile trains for fewer epochs and times fewer repeats; the models and variants
    are the same. Keyword ``overrides`` replace single fields, e.g. ``demo_config(repeats=5)``.
    """
    config = DemoConfig(epochs=2, student_epochs=15, repeats=1) if quick else DemoConfig()
    unknown = sorted(set(overrides) - set(DemoConfig.__dataclass_fields__))
    if unknown:
        raise UsageError(
            f"unknown DemoConfig field(s) {', '.join(unknown)}; "
            f"valid: {', '.join(DemoConfig.__dataclass_fields__)}"
        )
    return replace(config, **overrides)  # type: ignore[arg-type]  # checked by DemoConfig


def setup_torch(config: DemoConfig) -> int:
    """Set torch's intra-op thread count for the demo and return it.

    One thread per CPU this process may use (its affinity mask, not the machine's count, so a
    container limited to 2 cores does not oversubscribe them); ``config.num_threads`` overrides.
    Seeds are not set here: every function that draws random numbers seeds its own generator.
    """
    threads = config.num_threads or _usable_cpus()
    torch.set_num_threads(threads)
    return threads


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsData:
    """Digits split into a training set and a held-out test set, standardised.

    Features are standardised with the *training* set's mean and standard deviation only, so
    nothing about the test set leaks into training. ``batches`` is the test set cut into
    inference batches (``y_batches`` their labels), the unit of work the benchmark times.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    batches: list[torch.Tensor]
    y_batches: list[torch.Tensor]

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def load_digits_data(config: DemoConfig | None = None) -> DigitsData:
    """Load scikit-learn's bundled digits (1,797 8x8 images, no download), split and standardise.

    The split is stratified and fixed by ``config.seed``; its size by ``config.test_fraction``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    config = config or DemoConfig()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=config.test_fraction, random_state=config.seed, stratify=y
    )
    X_train_t = torch.tensor(X_train, dtype=torch.float32)
    X_test_t = torch.tensor(X_test, dtype=torch.float32)
    mean = X_train_t.mean(dim=0)
    # Floor the scale at one grey level (of 16): a pixel (almost) always 0 in training would
    # otherwise turn a stray test value into a huge outlier (1e6 with a 1e-6 floor), which ruins
    # the per-batch activation range of int8 dynamic quantization.
    std = X_train_t.std(dim=0).clamp_min(1.0)
    X_train_t = (X_train_t - mean) / std
    X_test_t = (X_test_t - mean) / std
    y_test_t = torch.tensor(y_test, dtype=torch.int64)
    return DigitsData(
        X_train=X_train_t.contiguous(),
        y_train=torch.tensor(y_train, dtype=torch.int64),
        X_test=X_test_t.contiguous(),
        y_test=y_test_t,
        batches=make_batches(X_test_t, config.inference_batch_size),
        y_batches=make_batches(y_test_t, config.inference_batch_size),
    )


def make_batches(X: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Cut ``X`` along its first dimension into contiguous batches (the last may be smaller)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return [chunk.contiguous() for chunk in torch.split(X, batch_size)]


# --- models and training ----------------------------------------------------------------------


def make_mlp(n_features: int, n_classes: int, width: int, layers: int, seed: int) -> nn.Sequential:
    """An MLP of ``layers`` hidden ReLU layers of ``width`` units, initialised from ``seed``."""
    with _seeded(seed):
        modules: list[nn.Module] = []
        n_in = n_features
        for _ in range(layers):
            modules += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        modules.append(nn.Linear(n_in, n_classes))
        return nn.Sequential(*modules)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    # Seed torch's global generator for weight init without changing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class EpochStats:
    """What one training epoch did: ``epoch`` counts from 0, ``samples`` were trained on."""

    model: str
    epoch: int
    samples: int
    loss: float
    duration_s: float


def train_full_model(
    data: DigitsData,
    config: DemoConfig,
    *,
    epoch_scope: EpochScope | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> nn.Sequential:
    """Train the full fp32 MLP on ``data`` and return it in eval mode.

    ``epoch_scope(epoch)`` is entered around each epoch's work (e.g. ``lambda e:
    run.phase("epoch")``); ``on_epoch_end(stats)`` is called inside it after the epoch, with the
    number of samples trained on (e.g. for ``run.count(samples=stats.samples)``).
    """
    model = make_mlp(
        data.n_features, data.n_classes, config.hidden_width, config.hidden_layers, config.seed
    )

    def loss_fn(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, data.y_train[index])

    _fit(
        FULL,
        model,
        data.X_train,
        loss_fn,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        epoch_scope=epoch_scope,
        on_epoch_end=on_epoch_end,
    )
    return model.eval()


def train_student(
    teacher: nn.Module,
    data: DigitsData,
    config: DemoConfig,
    *,
    epoch_scope: EpochScope | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> nn.Sequential:
    """Distil ``teacher`` into a small MLP (``config.student_*``) and return it in eval mode.

    The student's loss is ``soft_weight * T^2 * KL(teacher_T || student_T) + (1 - soft_weight)
    * CE(student, labels)``, where ``_T`` are softmaxes at temperature ``T``; the T^2 keeps
    the soft term's gradients on the same scale as the hard one's (Hinton et al., 2015). The
    teacher's logits are computed once up front: it is frozen, and the inputs do not change.
    Callbacks as in :func:`train_full_model`.
    """
    with torch.inference_mode():
        teacher_logits = teacher.eval()(data.X_train)
    temperature = config.temperature
    soft_targets = F.log_softmax(teacher_logits / temperature, dim=1).clone()
    student = make_mlp(
        data.n_features,
        data.n_classes,
        config.student_width,
        config.student_layers,
        config.seed + 1,
    )

    def loss_fn(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        soft = F.kl_div(
            F.log_softmax(logits / temperature, dim=1),
            soft_targets[index],
            reduction="batchmean",
            log_target=True,
        )
        hard = F.cross_entropy(logits, data.y_train[index])
        return config.soft_weight * temperature**2 * soft + (1 - config.soft_weight) * hard

    _fit(
        "distilled",
        student,
        data.X_train,
        loss_fn,
        epochs=config.student_epochs,
        batch_size=config.batch_size,
        learning_rate=config.student_learning_rate,
        seed=config.seed + 1,
        epoch_scope=epoch_scope,
        on_epoch_end=on_epoch_end,
    )
    return student.eval()


def _fit(
    name: str,
    model: nn.Module,
    X: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    epoch_scope: EpochScope | None,
    on_epoch_end: EpochCallback | None,
) -> None:
    """Mini-batch Adam; ``loss_fn(logits, sample_indices)`` so targets can be anything indexed."""
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    shuffle = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    model.train()
    for epoch in range(epochs):
        with epoch_scope(epoch) if epoch_scope is not None else contextlib.nullcontext():
            start_s = time.perf_counter()
            order = torch.randperm(n, generator=shuffle)
            total_loss = 0.0
            for index in torch.split(order, batch_size):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[index]), index)
                loss.backward()
                optimizer.step()
                total_loss += loss.item() * len(index)
            stats = EpochStats(
                model=name,
                epoch=epoch,
                samples=n,
                loss=total_loss / n,
                duration_s=time.perf_counter() - start_s,
            )
            if on_epoch_end is not None:
                on_epoch_end(stats)
    model.eval()


# --- compressed variants ----------------------------------------------------------------------


def quantize_int8(model: nn.Module) -> nn.Module:
    """An int8 copy of ``model``: weights int8 ahead of time, activations quantized per batch.

    Uses ``torch.ao.quantization.quantize_dynamic`` rather than its successor torchao: on this
    CPU it ran about twice as fast as torchao's ``Int8DynamicActivationInt8WeightConfig`` at
    the same accuracy, and needs no extra dependency (docs/demo.md has the numbers). torch
    deprecates the API with two warnings raised during conversion; exactly those two are
    silenced here, for this call only, so any other warning still reaches the user.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized",
            category=UserWarning,
        )
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8
        )


def to_bf16(model: nn.Module) -> nn.Module:
    """A bfloat16 copy of ``model`` (its ``Variant.predict`` casts inputs to bf16)."""
    return copy.deepcopy(model).to(torch.bfloat16).eval()


def prune_model(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with the ``amount`` smallest-magnitude weights of each linear layer
    set to zero (L1 unstructured pruning), made permanent.

    Biases are kept. The result is a plain dense model whose weight tensors hold zeros: it
    computes exactly as many multiply-adds as the original (see :func:`sparsity`).
    """
    _check_fraction("prune amount", amount, allow_zero=True)
    pruned = copy.deepcopy(model).eval()
    for module in pruned.modules():
        if isinstance(module, nn.Linear):
            prune.l1_unstructured(module, name="weight", amount=amount)
            # Fold the mask into the weight and drop the forward hook: an ordinary Linear again.
            prune.remove(module, "weight")
    return pruned


def sparsity(model: nn.Module) -> float:
    """Fraction of the linear layers' weights (not biases) that are exactly zero."""
    zeros = total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    if total == 0:
        raise UsageError("sparsity() needs a model with at least one nn.Linear layer")
    return zeros / total


# --- variants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One model ready for inference.

    ``predict(X_batch)`` returns int64 class labels of shape ``(len(X_batch),)``; it runs
    under ``torch.inference_mode``. ``base`` names the variant this one was derived from
    (None for the baseline). ``parameter_count`` counts weights and biases,
    ``nonzero_parameter_count`` those not exactly zero; ``size_bytes`` is the size of the
    serialised state dict (what the model costs on disk), with int8 weights at 1 byte and bf16
    at 2. ``model`` is the module behind ``predict`` (for inspection, e.g. :func:`sparsity`).
    """

    name: str
    description: str
    base: str | None
    predict: Predict
    parameter_count: int
    nonzero_parameter_count: int
    size_bytes: int
    model: nn.Module


def build_variants(
    full: nn.Module,
    student: nn.Module,
    config: DemoConfig,
    *,
    step_scope: StepScope | None = None,
) -> dict[str, Variant]:
    """The demo's variants, by name: ``full``, ``int8``, ``bf16`` (if ``config.include_bf16``),
    ``pruned`` and ``distilled``; the baseline first. ``full`` and ``student`` are not changed.

    ``step_scope(name)`` is entered around the building of each derived variant (``int8``,
    ``bf16``, ``pruned``; the student is trained elsewhere), e.g. to track each step's energy.
    """
    pruned_pct = round(config.prune_amount * 100)
    # Builders run one at a time below, so each compression step can be scoped on its own.
    specs: list[tuple[str, str, str | None, Callable[[], nn.Module], torch.dtype]] = [
        (
            FULL,
            f"fp32 MLP, {config.hidden_layers} x {config.hidden_width} hidden units",
            None,
            lambda: full,
            torch.float32,
        ),
        (
            "int8",
            "int8 dynamic quantization of full",
            FULL,
            lambda: quantize_int8(full),
            torch.float32,
        ),
    ]
    if config.include_bf16:
        specs.append(("bf16", "full cast to bfloat16", FULL, lambda: to_bf16(full), torch.bfloat16))
    specs += [
        (
            "pruned",
            f"full with {pruned_pct} % of weights zeroed (L1 unstructured, stored dense)",
            FULL,
            lambda: prune_model(full, config.prune_amount),
            torch.float32,
        ),
        (
            "distilled",
            f"fp32 MLP, {config.student_layers} x {config.student_width} hidden units, "
            f"distilled from full at T={config.temperature:g}",
            FULL,
            lambda: student,
            torch.float32,
        ),
    ]
    variants = {}
    for name, description, base, builder, input_dtype in specs:
        # Only the steps done here are scoped: full and the student were trained before.
        built_here = name in ("int8", "bf16", "pruned")
        scope = step_scope(name) if built_here and step_scope else contextlib.nullcontext()
        with scope:
            model = builder()
        model.eval()
        count, nonzero = _parameter_counts(model)
        variants[name] = Variant(
            name=name,
            description=description,
            base=base,
            predict=_predictor(model, input_dtype),
            parameter_count=count,
            nonzero_parameter_count=nonzero,
            size_bytes=_state_dict_bytes(model),
            model=model,
        )
    return variants


def _predictor(model: nn.Module, input_dtype: torch.dtype) -> Predict:
    def predict(X_batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(X_batch.to(input_dtype)).argmax(dim=1)

    return predict


def _parameter_tensors(model: nn.Module) -> list[torch.Tensor]:
    tensors = [p.detach() for p in model.parameters()]
    # Dynamic-quantized Linear layers keep their weights packed, outside .parameters().
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            weight, bias = module._weight_bias()
            tensors.append(weight.dequantize())
            if bias is not None:
                tensors.append(bias)
    return tensors


def _parameter_counts(model: nn.Module) -> tuple[int, int]:
    tensors = _parameter_tensors(model)
    return sum(t.numel() for t in tensors), sum(int((t != 0).sum()) for t in tensors)


def _state_dict_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


# --- evaluation -------------------------------------------------------------------------------


def predict_all(predict: Predict, batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """Labels for every row of ``batches``, in order, as one tensor."""
    if not batches:
        raise UsageError("predict_all() got no batches; pass e.g. DigitsData.batches")
    return torch.cat([predict(batch) for batch in batches])


def accuracy(pred: torch.Tensor | Sequence[int], y: torch.Tensor | Sequence[int]) -> float:
    """Fraction of ``pred`` equal to ``y`` (both 1-D label sequences of the same length)."""
    pred_t = torch.as_tensor(pred)
    y_t = torch.as_tensor(y)
    if pred_t.ndim != 1 or y_t.ndim != 1 or pred_t.shape != y_t.shape:
        raise UsageError(
            f"accuracy() needs two 1-D label sequences of equal length, got shapes "
            f"{tuple(pred_t.shape)} and {tuple(y_t.shape)}; pass labels, not logits "
            f"(argmax them first)"
        )
    if len(y_t) == 0:
        raise UsageError("accuracy() got no labels; there is nothing to score")
    return float((pred_t == y_t).double().mean())


def measure_inference_s_per_1000(
    predict: Predict, batches: Sequence[torch.Tensor], *, repeats: int = 3, warmup: int = 1
) -> list[float]:
    """Wall time per 1,000 queries of each of ``repeats`` timed passes over ``batches``.

    ``warmup`` untimed passes first (allocator, weight packing, caches), so the figures are
    steady state. A plain timer for docs/demo.md; the demo itself measures with
    ``footprint.bench``.
    """
    if repeats < 1 or warmup < 0:
        raise UsageError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    queries = sum(len(b) for b in batches)
    if queries == 0:
        raise UsageError("measure_inference_s_per_1000() got no queries")
    for _ in range(warmup):
        predict_all(predict, batches)
    times = []
    for _ in range(repeats):
        start_s = time.perf_counter()
        predict_all(predict, batches)
        times.append((time.perf_counter() - start_s) / queries * 1000)
    return times
