"""The child of bench_callbacks.py: ``python _callbacks_child.py FRAMEWORK OUT STEPS REPEATS``
trains one framework's tiny model, alternating fits with and without footprint's callback (the
first, without, is a warm-up), and prints one JSON line of timings."""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

#: hooks that run once per fit: they start and end the run
ONCE = {"on_init_end", "on_train_begin", "on_train_end", "on_fit_start", "on_fit_end"}


def timed(cb: Any) -> dict[str, float]:
    """Wrap every hook of ``cb`` in a timer; returns the running totals (step / once)."""
    spent = {"step": 0.0, "once": 0.0}
    for name in dir(cb):
        if not name.startswith("on_"):
            continue
        key = "once" if name in ONCE else "step"

        def wrap(fn: Callable[..., Any], key: str = key) -> Callable[..., Any]:
            @functools.wraps(fn)
            def inner(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    spent[key] += time.perf_counter() - t

            return inner

        setattr(cb, name, wrap(getattr(cb, name)))
    return spent


def hf(out: str, steps: int) -> tuple[Callable[[], Any], Callable[[list], None]]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainingArguments,
    )

    from footprint.integrations.transformers import FootprintCallback

    class Data(torch.utils.data.Dataset):
        def __init__(self, n: int) -> None:
            g = torch.Generator().manual_seed(0)
            self.x = torch.randint(0, 50, (n, 8), generator=g)
            self.y = torch.randint(0, 2, (n,), generator=g)

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.x[i], "labels": self.y[i]}

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    args = TrainingArguments(
        out + "/model", num_train_epochs=1, per_device_train_batch_size=4, logging_steps=10,
        report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    data = Data(4 * steps)

    def fit(callbacks: list) -> None:
        model = BertForSequenceClassification(config)
        Trainer(model, args, train_dataset=data, callbacks=callbacks).train()

    return (lambda: FootprintCallback(region="FR", store=out + "/store")), fit


def lightning(out: str, steps: int) -> tuple[Callable[[], Any], Callable[[list], None]]:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from footprint.integrations.lightning import FootprintCallback

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(16, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(4 * steps, 16, generator=g), torch.randn(4 * steps, 1))

    def fit(callbacks: list) -> None:
        trainer = L.Trainer(
            max_epochs=1, callbacks=callbacks, logger=False, log_every_n_steps=10,
            enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
            accelerator="cpu", devices=1,
        )  # fmt: skip
        trainer.fit(Tiny(), DataLoader(data, batch_size=4))

    return (lambda: FootprintCallback(region="FR", store=out + "/store")), fit


def keras(out: str, steps: int) -> tuple[Callable[[], Any], Callable[[list], None]]:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np

    from footprint.integrations.keras import FootprintCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * steps, 16)).astype("float32")
    y = rng.normal(size=(4 * steps, 1)).astype("float32")

    def fit(callbacks: list) -> None:
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(x, y, batch_size=4, epochs=1, callbacks=callbacks, verbose=0)

    return (lambda: FootprintCallback(region="FR", store=out + "/store")), fit


def main() -> None:
    framework, out, steps, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    make, fit = {"hf": hf, "lightning": lightning, "keras": keras}[framework](out, steps)
    walls_with, walls_without, spents = [], [], []
    for i in range(2 * repeats + 1):
        callbacks, spent = [], None
        if i % 2:
            cb = make()
            spent = timed(cb)
            callbacks = [cb]
        t = time.perf_counter()
        fit(callbacks)
        wall = time.perf_counter() - t
        if i == 0:
            continue  # warm-up: first-use costs of torch and the framework
        if spent is None:
            walls_without.append(wall)
        else:
            walls_with.append(wall)
            spents.append(spent)
    print(
        json.dumps(
            {
                "steps": steps,
                "step_s": statistics.median(s["step"] for s in spents) / steps,
                "once_s": statistics.median(s["once"] for s in spents),
                "wall_with_s": statistics.median(walls_with),
                "wall_without_s": statistics.median(walls_without),
            }
        )
    )


if __name__ == "__main__":
    main()
