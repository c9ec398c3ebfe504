"""Tests of footprint.demo.models: the full model, its compressed variants, data and helpers.

The quick profile is trained once per module (about 10 s on 2 cores); the rest uses tiny models.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch import nn  # noqa: E402

from footprint.demo import models  # noqa: E402
from footprint.demo.models import (  # noqa: E402
    DemoConfig,
    EpochStats,
    accuracy,
    build_variants,
    demo_config,
    load_digits_data,
    make_batches,
    make_mlp,
    measure_inference_s_per_1000,
    predict_all,
    prune_model,
    quantize_int8,
    setup_torch,
    sparsity,
    train_full_model,
    train_student,
)
from footprint.errors import UsageError  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, a real browser or the demo: not the fast tier

# Digits has 1,797 samples; sklearn rounds the test share up: ceil(0.2 * 1797) = 360.
N_TEST = 360
N_TRAIN = 1797 - N_TEST
TINY = {"hidden_width": 32, "hidden_layers": 1, "student_width": 16, "student_layers": 1}


def mlp_parameter_count(n_in: int, width: int, layers: int, n_out: int) -> int:
    sizes = [n_in] + [width] * layers + [n_out]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


@pytest.fixture(scope="module")
def quick():
    """The quick profile, trained once: (config, data, full, variants)."""
    config = demo_config(quick=True)
    setup_torch(config)
    data = load_digits_data(config)
    full = train_full_model(data, config)
    student = train_student(full, data, config)
    full_weights = [p.detach().clone() for p in full.parameters()]
    variants = build_variants(full, student, config)
    return config, data, full, variants, full_weights


@pytest.fixture(scope="module")
def quick_accuracies(quick):
    _, data, _, variants, _ = quick
    return {
        name: accuracy(predict_all(v.predict, data.batches), data.y_test)
        for name, v in variants.items()
    }


# --- the quick profile, end to end ------------------------------------------------------------


def test_full_model_learns_digits_in_quick_profile(quick_accuracies):
    assert quick_accuracies["full"] > 0.8


def test_variants_are_the_documented_set_baseline_first(quick):
    _, _, _, variants, _ = quick
    assert list(variants) == ["full", "int8", "bf16", "pruned", "distilled"]
    assert variants["full"].base is None
    assert {v.base for name, v in variants.items() if name != "full"} == {"full"}
    assert all(name == v.name for name, v in variants.items())


def test_every_variant_predicts_one_label_per_query(quick):
    _, data, _, variants, _ = quick
    for name, variant in variants.items():
        for batch in (data.batches[0], data.batches[-1], data.X_test[:1]):
            labels = variant.predict(batch)
            assert labels.shape == (len(batch),), name
            assert labels.dtype == torch.int64, name
            assert 0 <= int(labels.min()) and int(labels.max()) <= 9, name


@pytest.mark.parametrize("name", ["int8", "bf16", "pruned", "distilled"])
def test_compressed_variants_keep_plausible_accuracy(quick_accuracies, name):
    assert quick_accuracies[name] > 0.7


def test_pruned_variant_is_sparse_at_the_requested_amount(quick):
    config, _, _, variants, _ = quick
    linears = [m for m in variants["pruned"].model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == config.hidden_layers + 1
    for layer in linears:
        # Pruning made permanent: a plain weight, no mask or forward hook left behind.
        assert not hasattr(layer, "weight_mask") and not layer._forward_pre_hooks
        zeros = int((layer.weight == 0).sum())
        assert zeros == round(config.prune_amount * layer.weight.numel())


def test_variant_sizes_and_parameter_counts(quick):
    config, _, _, variants, _ = quick
    expected = mlp_parameter_count(64, config.hidden_width, config.hidden_layers, 10)
    assert variants["full"].parameter_count == expected
    assert variants["full"].nonzero_parameter_count == expected
    assert variants["int8"].parameter_count == expected
    assert variants["bf16"].parameter_count == expected
    assert variants["distilled"].parameter_count == mlp_parameter_count(
        64, config.student_width, config.student_layers, 10
    )
    pruned = variants["pruned"]
    weights = [m.weight.numel() for m in pruned.model.modules() if isinstance(m, nn.Linear)]
    assert pruned.parameter_count == expected
    assert pruned.nonzero_parameter_count == expected - sum(
        round(config.prune_amount * n) for n in weights
    )
    full_bytes = variants["full"].size_bytes
    assert full_bytes >= 4 * expected  # fp32: 4 bytes a parameter, plus pickle framing
    # Pruned weights are stored dense: as big on disk as the full model (give or take the
    # pickle framing of the longer module names).
    assert abs(pruned.size_bytes - full_bytes) < 1024
    assert 0.45 < variants["bf16"].size_bytes / full_bytes < 0.55
    assert 0.2 < variants["int8"].size_bytes / full_bytes < 0.3


def test_building_variants_leaves_the_full_model_untouched(quick):
    _, _, full, _, full_weights = quick
    for before, after in zip(full_weights, full.parameters()):
        assert torch.equal(before, after)
    assert sparsity(full) == 0.0


def test_quick_profile_only_trims_epochs_and_repeats():
    quick_config, default = demo_config(quick=True), demo_config()
    assert quick_config.epochs < default.epochs
    assert quick_config.student_epochs < default.student_epochs
    assert quick_config.repeats < default.repeats
    same = {"epochs", "student_epochs", "repeats"}
    for field in DemoConfig.__dataclass_fields__:
        if field not in same:
            assert getattr(quick_config, field) == getattr(default, field), field


# --- data -------------------------------------------------------------------------------------


def test_digits_split_is_held_out_stratified_and_standardised_on_train_only():
    data = load_digits_data(DemoConfig())
    assert data.X_train.shape == (N_TRAIN, 64) and data.X_test.shape == (N_TEST, 64)
    assert data.n_features == 64 and data.n_classes == 10
    # Stratified: every digit is in the test set in (nearly) its overall share, ~36 each.
    counts = torch.bincount(data.y_test, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    # Training columns centred exactly; the test set only approximately (its own statistics
    # were never used).
    assert torch.allclose(data.X_train.mean(dim=0), torch.zeros(64), atol=1e-5)
    assert not torch.allclose(data.X_test.mean(dim=0), torch.zeros(64), atol=1e-3)
    # The scale floor keeps never-seen pixel values bounded (16 grey levels at most).
    assert float(data.X_test.abs().max()) <= 16.0


def test_test_set_is_batched_in_order():
    data = load_digits_data(DemoConfig(inference_batch_size=64))
    assert [len(b) for b in data.batches] == [64] * 5 + [40]
    assert torch.equal(torch.cat(data.batches), data.X_test)
    assert torch.equal(torch.cat(data.y_batches), data.y_test)


def test_split_is_reproducible_and_seeded():
    a, b = load_digits_data(DemoConfig(seed=0)), load_digits_data(DemoConfig(seed=0))
    c = load_digits_data(DemoConfig(seed=1))
    assert torch.equal(a.y_test, b.y_test) and torch.equal(a.X_test, b.X_test)
    assert not torch.equal(a.y_test, c.y_test)


def test_make_batches_rejects_bad_sizes():
    with pytest.raises(UsageError, match="batch_size must be a positive integer"):
        make_batches(torch.zeros(3, 2), 0)


# --- training hooks ---------------------------------------------------------------------------


class Recorder:
    """Stands in for a tracker: an epoch scope and an on_epoch_end that log what happens."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def scope(self, epoch: int):
        recorder = self

        class Scope:
            def __enter__(self):
                recorder.events.append(("enter", epoch))

            def __exit__(self, *exc):
                recorder.events.append(("exit", epoch))
                return False

        return Scope()

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.events.append(("end", stats.epoch, stats.samples, stats.model))
        assert stats.loss > 0 and stats.duration_s > 0


def test_training_wraps_each_epoch_and_reports_samples():
    config = DemoConfig(epochs=2, student_epochs=3, **TINY)
    data = load_digits_data(config)
    recorder = Recorder()
    full = train_full_model(
        data, config, epoch_scope=recorder.scope, on_epoch_end=recorder.on_epoch_end
    )
    assert recorder.events == [
        ("enter", 0),
        ("end", 0, N_TRAIN, "full"),
        ("exit", 0),
        ("enter", 1),
        ("end", 1, N_TRAIN, "full"),
        ("exit", 1),
    ]
    assert not full.training
    recorder.events.clear()
    train_student(
        full, data, config, epoch_scope=recorder.scope, on_epoch_end=recorder.on_epoch_end
    )
    assert [e for e in recorder.events if e[0] == "end"] == [
        ("end", epoch, N_TRAIN, "distilled") for epoch in range(3)
    ]


def test_training_is_reproducible_and_leaves_global_rng_alone():
    config = DemoConfig(epochs=1, **TINY)
    data = load_digits_data(config)
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = train_full_model(data, config)
    assert torch.equal(torch.rand(3), expected_draw)
    second = train_full_model(data, config)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


# --- compression helpers ----------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0.5, 0.8])
def test_prune_model_zeroes_the_smallest_weights_of_each_layer(amount):
    model = make_mlp(8, 3, width=10, layers=2, seed=0)
    pruned = prune_model(model, amount)
    for original, layer in zip(
        [m for m in model.modules() if isinstance(m, nn.Linear)],
        [m for m in pruned.modules() if isinstance(m, nn.Linear)],
    ):
        n_zero = round(amount * original.weight.numel())
        magnitudes = original.weight.detach().abs().flatten().sort().values
        threshold = magnitudes[n_zero - 1]
        # Exactly the n_zero smallest magnitudes are zero; the rest are unchanged.
        zeroed = layer.weight == 0
        assert int(zeroed.sum()) == n_zero
        assert bool((original.weight.abs()[zeroed] <= threshold).all())
        assert torch.equal(layer.weight[~zeroed], original.weight[~zeroed])
        assert torch.equal(layer.bias, original.bias)
    total = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    expected = sum(
        round(amount * m.weight.numel()) for m in model.modules() if isinstance(m, nn.Linear)
    )
    assert sparsity(pruned) == pytest.approx(expected / total)
    assert sparsity(model) == 0.0


@pytest.mark.parametrize("amount", [-0.1, 1.0, 2])
def test_prune_model_rejects_amounts_outside_zero_to_one(amount):
    with pytest.raises(UsageError, match=r"prune amount must be a fraction in \[0, 1\)"):
        prune_model(make_mlp(4, 2, width=4, layers=1, seed=0), amount)


def test_quantize_int8_handles_its_deprecation_warnings_and_nothing_else():
    model = make_mlp(8, 3, width=16, layers=1, seed=0).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = quantize_int8(model)
        with torch.inference_mode():
            quantized(torch.randn(4, 8))
    assert [str(w.message) for w in caught] == []
    layers = [m for m in quantized.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(layers) == 2
    # The original is left as it was.
    assert all(isinstance(m, nn.Linear) for m in model if not isinstance(m, nn.ReLU))
    # Other warnings raised in the same block still reach the caller.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models.quantize_int8(model)
        warnings.warn("unrelated", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["unrelated"]


# --- evaluation helpers -----------------------------------------------------------------------


def test_accuracy_is_the_fraction_of_matching_labels():
    assert accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75
    assert accuracy([0, 0, 0], [1, 1, 1]) == 0.0
    assert accuracy([7], [7]) == 1.0


def test_accuracy_rejects_logits_and_mismatched_lengths():
    with pytest.raises(UsageError, match="pass labels, not logits"):
        accuracy(torch.zeros(4, 10), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(UsageError, match=r"shapes \(3,\) and \(2,\)"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(UsageError, match="no labels"):
        accuracy([], [])


def test_predict_all_and_timer():
    batches = make_batches(torch.arange(10.0).reshape(5, 2), 2)
    calls = []

    def predict(batch):
        calls.append(len(batch))
        return batch[:, 0].long()

    assert torch.equal(predict_all(predict, batches), torch.tensor([0, 2, 4, 6, 8]))
    calls.clear()
    times = measure_inference_s_per_1000(predict, batches, repeats=3, warmup=2)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert calls == [2, 2, 1] * 5  # 2 warm-up passes and 3 timed ones
    with pytest.raises(UsageError, match="no batches"):
        predict_all(predict, [])


# --- configuration ----------------------------------------------------------------------------


def test_demo_config_overrides_and_rejects_bad_values():
    assert demo_config(quick=True, repeats=5).repeats == 5
    with pytest.raises(UsageError, match="unknown DemoConfig field.*epoch_count"):
        demo_config(epoch_count=3)
    with pytest.raises(UsageError, match="hidden_width must be a positive integer, got 0"):
        DemoConfig(hidden_width=0)
    with pytest.raises(UsageError, match="soft_weight must be in"):
        DemoConfig(soft_weight=1.5)
    with pytest.raises(UsageError, match="num_threads"):
        DemoConfig(num_threads=0)
    assert DemoConfig().to_dict()["hidden_width"] == 2048


def test_setup_torch_uses_the_configured_thread_count():
    before = torch.get_num_threads()
    try:
        assert setup_torch(DemoConfig(num_threads=1)) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
