"""Early stopping and checkpoints with your own ``fit`` and with ``kdl.train``.

``kdl.callbacks.standard(run_dir)`` gives the callbacks a run needs: early
stopping that restores the best weights, a checkpoint of the best model
(``best.keras``), a backup for resuming, a CSV log and TensorBoard logs. Part
1 passes them to a plain ``model.fit`` on an over-fitting MLP (a small
training set, many epochs) and plots where the validation loss was lowest and
where training ended; the script says "stopped early at epoch k" only when
early stopping ended the run, otherwise "ran all N epochs". Part 2 does the
same in one call with ``kdl.train``, which also writes run.json and a history
plot. Both reload ``best.keras``.
For a run that is killed and resumed, see ``examples/train_and_resume.py``.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/early_stopping.py

Writes saved_models/early_stopping/ (fit/ and train/ run folders, and
early_stopping.png).
"""

from __future__ import annotations

import shutil

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import callbacks, datasets

EPOCHS = pick(200, 3)


def how_it_ended(epochs_run: int) -> str:
    """Whether early stopping ended the run or the epoch limit did."""
    if epochs_run < EPOCHS:
        return f"stopped early at epoch {epochs_run} (limit {EPOCHS})"
    return f"ran all {EPOCHS} epochs (early stopping never triggered)"


def with_fit(x, y, x_val, y_val, run_dir):
    """Part 1: the standard callbacks in a plain Keras fit."""
    shutil.rmtree(run_dir, ignore_errors=True)  # a backup would resume an old run
    kdl.set_seed(0)
    model = kdl.build_mlp(x.shape[1:], 10, dense_units=(256, 256))
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        batch_size=32,
        verbose=0,
        callbacks=callbacks.standard(run_dir, patience=pick(8, 1), tensorboard=False),
    ).history
    return history


def plot(history, path) -> None:
    best = int(np.argmin(history["val_loss"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["loss"], label="training loss")
    ax.plot(history["val_loss"], label="validation loss")
    ax.axvline(best, color="green", linestyle="--", label=f"best epoch ({best + 1})")
    ran = len(history["loss"])
    end = "stopped early" if ran < EPOCHS else "epoch limit"
    ax.axvline(ran - 1, color="red", linestyle=":", label=f"{end} ({ran})")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log")
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    banner()
    out = out_dir("early_stopping")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    x_small, y_small, x_val, y_val = x[:300], y[:300], x[300:], y[300:]

    history = with_fit(x_small, y_small, x_val, y_val, out / "fit")
    print(
        f"fit: {how_it_ended(len(history['loss']))}, best validation loss "
        f"{min(history['val_loss']):.4f} at epoch "
        f"{int(np.argmin(history['val_loss'])) + 1}"
    )
    plot(history, out / "early_stopping.png")
    best = kdl.load(out / "fit" / "best.keras")
    val_loss = best.evaluate(x_val, y_val, verbose=0)[0]
    print(f"fit: best.keras reloaded, val_loss {val_loss:.4f}")

    # Part 2: the same in one call. resume=False moves an earlier run aside.
    kdl.set_seed(0)
    model = kdl.build_mlp(x.shape[1:], 10, dense_units=(256, 256))
    result = kdl.train(
        model,
        x_small,
        y_small,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        patience=pick(8, 1),
        run_dir=out / "train",
        resume=False,
        tensorboard=False,
        seed=0,
        verbose=0,
    )
    best = kdl.load(result.run_dir / "best.keras")
    accuracy = best.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    ended = how_it_ended(len(result.history["loss"]))
    print(f"kdl.train: {ended}, best model test accuracy {accuracy:.3f}")
    print("run folder:", sorted(p.name for p in result.run_dir.iterdir()))


if __name__ == "__main__":
    main()
