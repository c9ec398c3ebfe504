"""A Lightning fit measured by footprint's callback, on a tiny module (40 samples, batch 8,
2 epochs, 16 validation samples). ``python lightning_job.py OUT MODE``:

fit     fit (with Lightning's sanity check), then test() and predict(); OUT/facts.json
raise   training_step raises at step 3; the script catches the exception
ddp     2 processes started by Lightning's own DDP launcher (gloo); facts-<rank>.json
"""

import glob
import json
import os
import sys

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from footprint.integrations.lightning import FootprintCallback

OUT, MODE = sys.argv[1], sys.argv[2]


class Boom(Exception):
    pass


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch, batch_idx):
        if MODE == "raise" and self.global_step == 2:
            raise Boom("step 3 failed")
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def predict_step(self, batch, batch_idx):
        return self.layer(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


g = torch.Generator().manual_seed(0)
train = TensorDataset(torch.randn(40, 4, generator=g), torch.randn(40, 1, generator=g))
val = TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g))
cb = FootprintCallback(
    region="FR",
    store=os.path.join(OUT, "store"),
    task="toy",
    model="linear",
    powercap_root=os.environ.get("TEST_POWERCAP"),
    sample_interval_s=0.05,
)
ddp = {"devices": 2, "strategy": "ddp"} if MODE == "ddp" else {"devices": 1}
trainer = L.Trainer(
    max_epochs=2,
    callbacks=[cb],
    logger=CSVLogger(os.path.join(OUT, "logs")),
    log_every_n_steps=2,
    enable_progress_bar=False,
    enable_checkpointing=False,
    enable_model_summary=False,
    accelerator="cpu",
    **ddp,
)
module = Tiny()
facts: dict = {}
try:
    trainer.fit(module, DataLoader(train, batch_size=8), DataLoader(val, batch_size=8))
except Boom as exc:
    facts["caught"] = f"{type(exc).__name__}: {exc}"
facts["fit"] = cb.run.record.id
if MODE == "fit":
    trainer.test(module, DataLoader(val, batch_size=4), verbose=False)
    facts["test"] = cb.run.record.id
    trainer.predict(module, DataLoader(val, batch_size=4))
    facts["predict"] = cb.run.record.id
    (facts["csv"],) = glob.glob(os.path.join(OUT, "logs", "**", "metrics.csv"), recursive=True)
if MODE == "ddp":
    facts["job"] = cb.run.job_id
name = f"facts-{trainer.global_rank}.json" if MODE == "ddp" else "facts.json"
with open(os.path.join(OUT, name), "w") as f:
    json.dump(facts, f)
