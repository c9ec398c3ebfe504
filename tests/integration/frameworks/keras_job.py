"""A Keras 3 fit (torch backend) measured by footprint's callback: 40 samples, batch 16 (the
last batch of each epoch holds 8), 2 epochs, validation on 10. ``python keras_job.py OUT MODE``:

fit        fit, then evaluate() and predict(); OUT/facts.json
generator  fit on a Python generator (Keras knows no batch size) with the callback's batch_size=,
           then without it
uncaught   the loss raises in the second epoch; the exception leaves the program
forecast   fit for 4 epochs: the forecast from the second epoch on
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from footprint.integrations.keras import FootprintCallback  # noqa: E402

OUT, MODE = sys.argv[1], sys.argv[2]


class Boom(Exception):
    pass


where = {"epoch": -1, "batch": -1, "training": False}


class Where(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        where["epoch"] = epoch

    def on_train_batch_begin(self, batch, logs=None):
        where["batch"], where["training"] = batch, True

    def on_train_batch_end(self, batch, logs=None):
        where["training"] = False


def loss(y_true, y_pred):
    if MODE == "uncaught" and where["training"] and (where["epoch"], where["batch"]) == (1, 1):
        raise Boom("step 5 failed")  # the second epoch's second training step
    return keras.losses.binary_crossentropy(y_true, y_pred)


rng = np.random.default_rng(0)
x = rng.normal(size=(40, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
model.compile("sgd", loss, metrics=["accuracy"], run_eagerly=True)
store = os.path.join(OUT, "store")
common = dict(
    region="FR",
    store=store,
    task="toy",
    model="dense",
    powercap_root=os.environ.get("TEST_POWERCAP"),
    sample_interval_s=0.05,
)
facts: dict = {}
if MODE == "forecast":
    cb = FootprintCallback(**common)
    history = model.fit(x, y, epochs=4, batch_size=16, callbacks=[cb], verbose=0)
    facts["fit"] = cb.run.record.id
    facts["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
elif MODE == "generator":

    def batches():
        while True:
            for i in range(0, 40, 10):
                yield x[i : i + 10], y[i : i + 10]

    cb = FootprintCallback(batch_size=10, **common)
    model.fit(batches(), steps_per_epoch=4, epochs=2, callbacks=[cb], verbose=0)
    facts["fit"] = cb.run.record.id
    bare = FootprintCallback(**common)
    model.fit(batches(), steps_per_epoch=4, epochs=1, callbacks=[bare], verbose=0)
    facts["bare"] = bare.run.record.id
else:
    cb = FootprintCallback(**common)
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        validation_data=(x[:10], y[:10]),
        callbacks=[cb, Where()],
        verbose=0,
    )
    facts["fit"] = cb.run.record.id
    facts["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    model.evaluate(x, y, batch_size=8, callbacks=[cb], verbose=0)
    facts["evaluate"] = cb.run.record.id
    model.predict(x, batch_size=16, callbacks=[cb], verbose=0)
    facts["predict"] = cb.run.record.id
with open(os.path.join(OUT, "facts.json"), "w") as f:
    json.dump(facts, f)
