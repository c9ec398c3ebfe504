"""A Hugging Face Trainer run measured by footprint's callback, on a 1-layer BERT built from a
config and a synthetic dataset (nothing downloaded). ``python hf_job.py OUT MODE``:

fit       train 2 epochs (32 examples, batch 8), evaluate each epoch, write the model card, then
          evaluate() and predict() once more; OUT/facts.json says what the script saw
caught    a training step raises at step 3; the script catches it
uncaught  the same exception leaves the program
ddp       under torchrun: every rank trains, rank 0 writes facts-<rank>.json
mlflow    train with the Trainer's own MLflow reporting (report_to=["mlflow"], the tracking
          URI from $MLFLOW_TRACKING_URI): footprint logs into the MLflow run it opened
"""

import json
import os
import shutil
import sys

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from footprint.integrations.transformers import (
    FootprintCallback,
    add_to_model_card,
    model_card_on_push,
)

OUT, MODE = sys.argv[1], sys.argv[2]


class Synthetic(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(n)
        self.x = torch.randint(0, 50, (n, 8), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.x[i], "labels": self.y[i]}


class Probe(TrainerCallback):
    """Stands for a reporting callback (wandb, tensorboard): what logs does it receive?"""

    seen: list = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        Probe.seen.append(dict(logs or {}))


class Boom(Exception):
    pass


class FailingTrainer(Trainer):
    steps = 0

    def compute_loss(self, *args, **kwargs):
        FailingTrainer.steps += 1
        if FailingTrainer.steps == 3:
            raise Boom("step 3 failed")
        return super().compute_loss(*args, **kwargs)


torch.manual_seed(0)
config = BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=16,
    num_labels=2,
)
args = TrainingArguments(
    os.path.join(OUT, "model"),
    num_train_epochs=2,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=8,
    eval_strategy="epoch",
    logging_steps=2,
    report_to=["mlflow"] if MODE == "mlflow" else "none",
    save_strategy="no",
    use_cpu=True,
    disable_tqdm=True,
    **({"ddp_backend": "gloo"} if MODE == "ddp" else {}),
)
cb = FootprintCallback(
    region="FR",
    store=os.path.join(OUT, "store"),
    task="toy",
    model="bert-tiny",
    variant="fp32",
    powercap_root=os.environ.get("TEST_POWERCAP"),
    sample_interval_s=0.05,
)
cls = FailingTrainer if MODE in ("caught", "uncaught") else Trainer
# the probe is listed before footprint's callback: footprint moves itself ahead of it
trainer = cls(
    BertForSequenceClassification(config),
    args,
    train_dataset=Synthetic(32),
    eval_dataset=Synthetic(16),
    callbacks=[Probe(), cb],
)
facts: dict = {}
if MODE == "caught":
    try:
        trainer.train()
    except Boom as exc:
        facts["caught"] = f"{type(exc).__name__}: {exc}"
    facts["run"] = cb.run.record.id
elif MODE == "uncaught":
    trainer.train()
else:
    trainer.train()
    facts["run"] = cb.run.record.id
    facts["job"] = cb.run.job_id
    facts["log_history"] = [dict(h) for h in trainer.state.log_history]  # the fit's, now
    facts["probe"] = list(Probe.seen)
    if MODE == "fit":
        fit = cb.run
        trainer.create_model_card(model_name="tiny-bert")
        card = os.path.join(args.output_dir, "README.md")
        shutil.copy(card, os.path.join(OUT, "card-before.md"))
        add_to_model_card(card, fit)
        shutil.copy(card, os.path.join(OUT, "card-after.md"))
        with model_card_on_push(trainer, fit, training_type="fine-tuning"):
            # what push_to_hub calls just before uploading (its upload needs the network)
            trainer.create_model_card(model_name="tiny-bert", finetuned_from="scratch")
        facts["card"] = card
        trainer.evaluate()
        facts["evaluate"] = cb.run.record.id
        trainer.predict(Synthetic(12))
        facts["predict"] = cb.run.record.id
rank = os.environ.get("RANK", "0")
with open(os.path.join(OUT, f"facts-{rank}.json"), "w") as f:
    json.dump(facts, f)
