"""Train in a run folder, get interrupted, resume, and reload the best model.

Run it from the repository root (about a minute on a laptop CPU; add
``--quick``, or set ``KDL_QUICK=1``, for a short smoke run)::

    .venv/bin/python examples/train_and_resume.py

It trains a small MLP on scikit-learn's digits in
``saved_models/example-digits-mlp``. The first call is interrupted after three
epochs (as a crash or a kill would), the second call with the same arguments
continues from the last finished epoch, and the best model is reloaded from
``best.keras`` and checked on the held-out test set. Run it twice: the second
time the finished run is moved aside to ``example-digits-mlp.old-<date>-<time>``
and a fresh run starts.
"""

from __future__ import annotations

import json

from _quick import banner, pick

import kdl
from kdl import keras

RUN_DIR = "saved_models/example-digits-mlp"
EPOCHS = pick(12, 3)
CRASH_AT = pick(3, 2)  # epochs finished before the simulated crash


class Crash(keras.callbacks.Callback):
    """Stands in for a crash: fails when epoch ``at`` begins."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError(f"simulated crash at the start of epoch {epoch + 1}")


def build():
    kdl.set_seed(0)
    return kdl.build_mlp((64,), 10, dense_units=(64,), dropout=0.1, name="digits-mlp")


def main() -> None:
    banner()
    (x_train, y_train), (x_test, y_test) = kdl.datasets.digits(layout="flat")
    n = pick(None, 300)  # a few hundred training examples in the short mode
    x_train, y_train = x_train[:n], y_train[:n]
    args = dict(
        validation_split=0.2,
        epochs=EPOCHS,
        run_dir=RUN_DIR,
        seed=0,
        patience=4,
        verbose=2,
    )

    print(f"== First run: crashes after {CRASH_AT} epochs ==")
    try:
        kdl.train(build(), x_train, y_train, callbacks=[Crash(at=CRASH_AT)], **args)
    except RuntimeError as err:
        print(f"stopped: {err}")

    print("\n== Same call again: resumes from the last finished epoch ==")
    model = build()  # a new process would build a fresh model, too
    history = kdl.train(model, x_train, y_train, **args)
    print(f"epochs in the history: {len(history.epoch)} (of {EPOCHS})")

    record = json.loads((history.run_dir / "run.json").read_text())
    print("sessions:", [s.get("initial_epoch") for s in record["sessions"]])
    print(
        "best epoch:",
        record["best_epoch"] + 1,
        "val_loss:",
        round(record["best_metrics"]["val_loss"], 4),
    )

    best = kdl.load(history.run_dir / "best.keras")
    loss, accuracy = best.evaluate(x_test, y_test, verbose=0)
    print(f"best model on the held-out test set: accuracy {accuracy:.3f}")
    print(f"files: {sorted(p.name for p in history.run_dir.iterdir())}")


if __name__ == "__main__":
    main()
