"""kdl.train, kdl.set_seed and kdl.callbacks: runs you can stop, resume and reload."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kdl
from kdl.backend import keras, tf

REPO = Path(__file__).resolve().parents[1]


def _small_mlp(**kwargs):
    return kdl.build_mlp((64,), 10, dense_units=(32,), **kwargs)


def _csv_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


# === A run folder ===


def test_train_writes_a_complete_run_folder(tmp_path, digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    run_dir = tmp_path / "run"
    model = _small_mlp()
    history = kdl.train(
        model,
        x,
        y,
        validation_data=(x_test, y_test),
        epochs=4,
        run_dir=run_dir,
        seed=1,
        verbose=0,
    )
    assert history.run_dir == run_dir
    assert history.epoch == [0, 1, 2, 3]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    names = {p.name for p in run_dir.iterdir()}
    assert {"run.json", "history.csv", "history.png", "best.keras", "logs"} <= names
    assert "backup" not in names  # deleted when training finished
    assert _csv_epochs(run_dir) == [0, 1, 2, 3]
    assert (run_dir / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(run_dir / "history.png") as image:
        assert image.size == (2 * 420, 300)  # one panel each: loss, accuracy
        colours = {colour for _, colour in image.convert("RGB").getcolors(10**6)}
    assert {(31, 119, 180), (255, 127, 14)} <= colours  # train and validation
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["versions"]["tensorflow"] == tf.__version__
    assert record["versions"]["kdl"] == kdl.__version__
    assert record["versions"]["python"].count(".") == 2
    assert record["seed"] == 1
    assert record["arguments"]["epochs"] == 4
    assert record["data"]["x"] == [len(x), 64]
    assert record["data"]["validation"] == [[len(x_test), 64], [len(y_test)]]
    assert len(record["data"]["sha256"]) == 64
    assert record["epochs_completed"] == 4
    assert record["final_metrics"]["val_accuracy"] == pytest.approx(
        history.history["val_accuracy"][-1]
    )
    best = int(np.argmin(history.history["val_loss"]))
    assert record["best_epoch"] == best
    # The best model on disk is the model of the best epoch: its validation
    # loss is the best one in the history.
    loaded = kdl.load(run_dir / "best.keras")
    val_loss = loaded.evaluate(x_test, y_test, verbose=0)[0]
    assert val_loss == pytest.approx(history.history["val_loss"][best], rel=1e-4)


def test_train_accepts_a_tf_data_dataset_and_learns(tmp_path, digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(128)
    model = _small_mlp()
    history = kdl.train(
        model,
        train_ds,
        validation_data=val_ds,
        epochs=8,
        run_dir=tmp_path / "ds",
        tensorboard=False,
        verbose=0,
    )
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.9
    record = json.loads((tmp_path / "ds" / "run.json").read_text())
    assert record["data"]["sha256"] is None  # datasets are not read twice
    assert "TensorSpec" in record["data"]["x"]
    assert len(history.epoch) == 8


def test_default_run_folder_is_under_saved_models(tmp_path, monkeypatch, digits_flat):
    (x, y), _ = digits_flat
    monkeypatch.chdir(tmp_path)
    history = kdl.train(
        _small_mlp(name="tiny"),
        x[:200],
        y[:200],
        epochs=1,
        tensorboard=False,
        verbose=0,
    )
    assert history.run_dir.parent == tmp_path / "saved_models"
    assert history.run_dir.name.startswith("tiny-")
    assert (history.run_dir / "run.json").exists()
    # run_dir=False writes nothing at all.
    history = kdl.train(
        _small_mlp(), x[:200], y[:200], epochs=1, run_dir=False, verbose=0
    )
    assert history.run_dir is None
    assert len(list((tmp_path / "saved_models").iterdir())) == 1


def test_an_earlier_run_is_moved_aside_not_destroyed(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    run_dir = tmp_path / "run"
    kdl.train(
        _small_mlp(),
        x[:200],
        y[:200],
        epochs=2,
        run_dir=run_dir,
        tensorboard=False,
        verbose=0,
    )
    first = (run_dir / "run.json").read_text()
    # A finished run is not resumed: it is moved aside, and a new run starts.
    history = kdl.train(
        _small_mlp(),
        x[:200],
        y[:200],
        epochs=1,
        run_dir=run_dir,
        tensorboard=False,
        verbose=0,
    )
    assert history.epoch == [0]
    old = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(old) == 1
    assert (old[0] / "run.json").read_text() == first
    assert _csv_epochs(old[0]) == [0, 1]
    assert _csv_epochs(run_dir) == [0]


# === Early stopping ===


def test_early_stopping_stops_an_overfitting_model_at_its_best_weights(
    tmp_path, digits_flat
):
    (x, y), (x_test, y_test) = digits_flat
    # 60 training examples and a wide network with a large step: validation
    # loss bottoms out within a few epochs, then rises.
    model = kdl.build_mlp((64,), 10, dense_units=(256, 256), learning_rate=0.01)
    epochs = 60
    history = kdl.train(
        model,
        x[:60],
        y[:60],
        validation_data=(x_test, y_test),
        epochs=epochs,
        patience=3,
        batch_size=16,
        run_dir=tmp_path / "overfit",
        tensorboard=False,
        verbose=0,
    )
    val_losses = history.history["val_loss"]
    assert len(history.epoch) < epochs
    best = int(np.argmin(val_losses))
    assert best == len(val_losses) - 1 - 3  # stopped `patience` epochs later
    assert val_losses[-1] > val_losses[best]
    # The returned model holds the best epoch's weights, not the last ones.
    val_loss = model.evaluate(x_test, y_test, verbose=0)[0]
    assert val_loss == pytest.approx(val_losses[best], rel=1e-4)
    record = json.loads((tmp_path / "overfit" / "run.json").read_text())
    assert record["stopped_early"] is True
    assert record["best_epoch"] == best


# === Reproducibility ===


def _seeded_run(run_dir, x, y, seed):
    kdl.set_seed(seed)
    model = kdl.build_mlp((64,), 10, dense_units=(32,), dropout=0.3)
    history = kdl.train(
        model,
        x,
        y,
        validation_split=0.2,
        epochs=2,
        run_dir=run_dir,
        seed=seed,
        tensorboard=False,
        verbose=0,
    )
    return model.get_weights(), history.history


def test_same_seed_gives_identical_weights_and_history(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    x, y = x[:400], y[:400]
    weights_a, history_a = _seeded_run(tmp_path / "a", x, y, seed=7)
    keras.backend.clear_session()
    weights_b, history_b = _seeded_run(tmp_path / "b", x, y, seed=7)
    assert history_a == history_b
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    # The check can fail: another seed gives other weights.
    keras.backend.clear_session()
    weights_c, history_c = _seeded_run(tmp_path / "c", x, y, seed=8)
    assert history_c != history_a
    assert not np.array_equal(weights_c[0], weights_a[0])


def test_set_seed_turns_on_op_determinism_and_rejects_bad_seeds():
    from tensorflow.python.framework import config

    kdl.set_seed(3, deterministic=False)
    assert not config.is_op_determinism_enabled()
    first = (np.random.randint(10**6), float(tf.random.uniform(())))
    kdl.set_seed(3, deterministic=False)
    assert (np.random.randint(10**6), float(tf.random.uniform(()))) == first
    kdl.set_seed(3)
    assert config.is_op_determinism_enabled()
    with pytest.raises(ValueError, match="'seed' parameter of kdl.set_seed"):
        kdl.set_seed(-1)
    with pytest.raises(TypeError, match="'seed' parameter of kdl.set_seed"):
        kdl.set_seed("1")


# === Resuming ===


class _Interrupt(keras.callbacks.Callback):
    """Fails at the start of one epoch, as a crash would."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


def test_an_interrupted_run_continues_from_its_last_finished_epoch(
    tmp_path, digits_flat
):
    (x, y), (x_test, y_test) = digits_flat
    run_dir = tmp_path / "run"
    kwargs = dict(
        validation_data=(x_test, y_test),
        epochs=6,
        run_dir=run_dir,
        tensorboard=False,
        verbose=0,
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        kdl.train(_small_mlp(), x[:300], y[:300], callbacks=[_Interrupt(3)], **kwargs)
    assert _csv_epochs(run_dir) == [0, 1, 2]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"

    # A new process would build a new model: do the same.
    keras.backend.clear_session()
    seen = []
    spy = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(epoch)
    )
    history = kdl.train(_small_mlp(), x[:300], y[:300], callbacks=[spy], **kwargs)
    assert seen == [3, 4, 5]  # epochs 0-2 were not run again
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert len(history.history["val_loss"]) == 6
    assert _csv_epochs(run_dir) == [0, 1, 2, 3, 4, 5]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    assert [s["initial_epoch"] for s in record["sessions"][1:]] == [3]
    assert record["epochs_completed"] == 6


class _InterruptAfterBest(keras.callbacks.Callback):
    """Fails once validation loss has not improved for two epochs."""

    def __init__(self):
        super().__init__()
        self.val_losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.val_losses.append(logs["val_loss"])

    def on_epoch_begin(self, epoch, logs=None):
        losses = self.val_losses
        if len(losses) >= 3 and len(losses) - 1 - int(np.argmin(losses)) == 2:
            raise RuntimeError("interrupted")


def test_early_stopping_keeps_its_best_across_a_resume(tmp_path, digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    run_dir = tmp_path / "run"

    def overfitting_model():
        return kdl.build_mlp((64,), 10, dense_units=(256, 256), learning_rate=0.01)

    kwargs = dict(
        validation_data=(x_test, y_test),
        epochs=40,
        patience=3,
        batch_size=16,
        run_dir=run_dir,
        tensorboard=False,
        verbose=0,
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        kdl.train(
            overfitting_model(),
            x[:60],
            y[:60],
            callbacks=[_InterruptAfterBest()],
            **kwargs,
        )
    first = _csv_epochs(run_dir)
    keras.backend.clear_session()
    model = overfitting_model()
    history = kdl.train(model, x[:60], y[:60], **kwargs)
    val_losses = history.history["val_loss"]
    assert history.epoch == list(range(len(val_losses)))
    assert history.epoch[: len(first)] == first
    best = int(np.argmin(val_losses))
    # Early stopping counted the epochs of the first session: it stopped
    # `patience` epochs after the best one, wherever that was ...
    assert len(val_losses) - 1 == best + 3 < 40
    # ... and both the returned model and best.keras are the best epoch's,
    # even when that epoch ran before the interruption.
    assert model.evaluate(x_test, y_test, verbose=0)[0] == pytest.approx(
        val_losses[best], rel=1e-4
    )
    saved = kdl.load(run_dir / "best.keras")
    assert saved.evaluate(x_test, y_test, verbose=0)[0] == pytest.approx(
        val_losses[best], rel=1e-4
    )


class _FailAtTheEnd(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        raise RuntimeError("interrupted")


def test_a_run_interrupted_after_its_last_epoch_finishes_without_training(
    tmp_path, digits_flat
):
    (x, y), (x_test, y_test) = digits_flat
    kwargs = dict(
        validation_data=(x_test, y_test),
        epochs=3,
        run_dir=tmp_path / "run",
        tensorboard=False,
        verbose=0,
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        kdl.train(_small_mlp(), x[:100], y[:100], callbacks=[_FailAtTheEnd()], **kwargs)
    keras.backend.clear_session()
    model = _small_mlp()
    history = kdl.train(model, x[:100], y[:100], **kwargs)
    assert history.epoch == [0, 1, 2]  # from history.csv; no epoch ran again
    val_losses = history.history["val_loss"]
    assert model.evaluate(x_test, y_test, verbose=0)[0] == pytest.approx(
        min(val_losses), rel=1e-4
    )
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs_completed"] == 3


def test_resuming_with_other_data_is_refused(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        kdl.train(
            _small_mlp(),
            x[:200],
            y[:200],
            epochs=3,
            run_dir=run_dir,
            callbacks=[_Interrupt(1)],
            tensorboard=False,
            verbose=0,
        )
    with pytest.raises(ValueError, match="data of the run being resumed"):
        kdl.train(
            _small_mlp(),
            x[200:400],
            y[200:400],
            epochs=3,
            run_dir=run_dir,
            tensorboard=False,
            verbose=0,
        )
    # resume=False starts over and keeps the interrupted run aside.
    history = kdl.train(
        _small_mlp(),
        x[200:400],
        y[200:400],
        epochs=2,
        run_dir=run_dir,
        resume=False,
        tensorboard=False,
        verbose=0,
    )
    assert history.epoch == [0, 1]
    assert len([p for p in tmp_path.iterdir() if ".old-" in p.name]) == 1


_TRAIN_SCRIPT = """
import json, sys, time
import kdl

run_dir = sys.argv[1]

class Slow(kdl.keras.callbacks.Callback):
    # Slow enough for the test to kill the process between two epochs.
    def on_epoch_begin(self, epoch, logs=None):
        print("epoch", epoch, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.4)

(x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat")
model = kdl.build_mlp((64,), 10, dense_units=(32,))
history = kdl.train(model, x[:400], y[:400], validation_data=(x_test, y_test),
                    epochs=10, run_dir=run_dir, early_stopping=False,
                    tensorboard=False, callbacks=[Slow()], verbose=0)
print("DONE", json.dumps(history.epoch), flush=True)
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_the_last_finished_epoch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    run_dir = tmp_path / "run"
    command = [sys.executable, str(script), str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (run_dir / "history.csv").exists() and len(_csv_epochs(run_dir)) >= 3:
                break
            assert proc.poll() is None, "training ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail("training did not reach epoch 3 in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    finished = _csv_epochs(run_dir)
    assert 3 <= len(finished) < 10
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"

    # The same command again.
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    started = [
        int(line.split()[1])
        for line in done.stdout.splitlines()
        if line.startswith("epoch ")
    ]
    # It continued from the last finished epoch (the backup is written after
    # the CSV row, so at most the one epoch being written is redone) ...
    assert started[0] in (len(finished) - 1, len(finished))
    assert started == list(range(started[0], 10))
    # ... and ended with the same number of epochs, each recorded once.
    assert done.stdout.splitlines()[-1] == "DONE " + json.dumps(list(range(10)))
    assert _csv_epochs(run_dir) == list(range(10))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["sessions"][-1]["initial_epoch"] == started[0]


# === Callback sets ===


def test_standard_callbacks_can_be_switched_off_and_tuned(tmp_path):
    cbs = kdl.callbacks.standard(tmp_path / "run", patience=2, reduce_lr=True)
    names = [type(c).__name__ for c in cbs]
    assert names == [
        "StopOnNaN",
        "TensorBoard",
        "ReduceLROnPlateau",
        "EarlyStopping",
        "AtomicModelCheckpoint",
        "CSVLogger",
        "BackupAndRestore",
    ]
    early = cbs[3]
    assert early.patience == 2 and early.restore_best_weights
    assert cbs[2].patience == 1

    cbs = kdl.callbacks.standard(
        tmp_path / "run",
        monitor="val_accuracy",
        tensorboard=False,
        terminate_on_nan=False,
        backup=False,
        early_stopping={"patience": 9, "restore_best_weights": False},
    )
    names = [type(c).__name__ for c in cbs]
    assert names == ["EarlyStopping", "AtomicModelCheckpoint", "CSVLogger"]
    assert cbs[0].patience == 9 and not cbs[0].restore_best_weights
    assert cbs[0].monitor == "val_accuracy" and cbs[1].monitor == "val_accuracy"


def test_standard_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="'early_stopping' parameter"):
        kdl.callbacks.standard(tmp_path, early_stopping="yes")
    with pytest.raises(TypeError, match="'early_stopping' parameter.*does not accept"):
        kdl.callbacks.standard(tmp_path, early_stopping={"no_such_option": 1})
    with pytest.raises(ValueError, match="'patience' parameter"):
        kdl.callbacks.standard(tmp_path, patience=-1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="'run_dir' parameter"):
        kdl.callbacks.standard(tmp_path / "file")


@pytest.mark.parametrize("run_dir", ["run", False])
def test_a_nan_loss_stops_the_run_at_the_end_of_its_epoch(
    tmp_path, digits_flat, run_dir, capsys
):
    (x, y), _ = digits_flat
    targets = y[:64].astype("float32")
    targets[5] = np.nan  # one bad target: the loss of the epoch is NaN
    model = kdl.build_mlp((64,), 1, task="regression", dense_units=(8,))
    history = kdl.train(
        model,
        x[:64],
        targets,
        epochs=5,
        batch_size=16,
        run_dir=run_dir and tmp_path / run_dir,
        tensorboard=False,
        verbose=0,
    )
    assert history.epoch == [0]
    assert np.isnan(history.history["loss"][0])
    assert "invalid loss nan, terminating training" in capsys.readouterr().out


def test_no_kdl_callback_runs_per_batch(tmp_path):
    # One callback with batch hooks makes Keras call all of them after every
    # step (issue 18): none of kdl's standard callbacks may have any.
    cbs = kdl.callbacks.standard(tmp_path / "run", reduce_lr=True)
    cbs.append(kdl.callbacks.StopOnNaN())
    for cb in cbs:
        assert not cb._implements_train_batch_hooks(), type(cb).__name__


def test_reduce_lr_lowers_the_learning_rate(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    model = _small_mlp(learning_rate=0.5)  # too large: the loss stalls
    history = kdl.train(
        model,
        x[:200],
        y[:200],
        epochs=6,
        patience=10,
        reduce_lr={"patience": 1, "min_delta": 10.0},
        run_dir=tmp_path / "run",
        tensorboard=False,
        verbose=0,
    )
    assert history.history["lr"][-1] < 0.5


# === Bad arguments, checked before any training ===


# Special values the test replaces with data: y cut short, validation labels
# cut short, labels 1..10 (UCI style), string labels, validation labels out
# of range, and switches of the wrong type.
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"epochs": -2},
            ValueError,
            "'epochs' parameter of kdl.train must be a positive int. Got -2 instead.",
        ),
        ({"epochs": 2.5}, TypeError, "'epochs' parameter"),
        ({"batch_size": 0}, ValueError, "'batch_size' parameter"),
        ({"validation_split": 1.5}, ValueError, "'validation_split' parameter"),
        (
            {"y": "short"},
            ValueError,
            "'y' parameter of kdl.train must be "
            "as long as x \\(100 examples\\). Got .99 examples. instead.",
        ),
        ({"validation_data": ("x", "y")}, ValueError, "'validation_data'"),
        (
            {"y": "1..K"},
            ValueError,
            "'y' parameter of kdl.train must be class labels "
            "in 0..9 for a model with 10 classes.*kdl.datasets.load",
        ),
        (
            {"y": "strings"},
            ValueError,
            "'y' parameter of kdl.train must be integer class labels",
        ),
        (
            {"validation_data": "11 classes"},
            ValueError,
            "'validation_data' parameter of kdl.train must be class labels in 0..9",
        ),
        ({"monitor": "val_loss"}, ValueError, "no validation data"),
        ({"callbacks": ["not a callback"]}, TypeError, "'callbacks' parameter"),
        ({"tensorboard": "yes"}, TypeError, "'tensorboard' parameter of kdl.train"),
        (
            {"early_stopping": {"no_such_option": 1}},
            TypeError,
            "'early_stopping' parameter.*does not accept",
        ),
        ({"run_dir": 3}, TypeError, "'run_dir' parameter"),
        ({"run_dir": ""}, TypeError, "'run_dir' parameter"),
        ({"seed": -1}, ValueError, "'seed' parameter"),
        ({"verbose": 5}, ValueError, "'verbose' parameter"),
        ({"verbose": "1"}, TypeError, "'verbose' parameter"),
    ],
)
def test_bad_arguments_fail_before_training(
    tmp_path, digits_flat, kwargs, error, match
):
    (x, y), (x_test, y_test) = digits_flat
    x, y = x[:100], y[:100]
    model = _small_mlp()
    before = [w.copy() for w in model.get_weights()]
    kwargs = dict(kwargs)
    special_y = {
        "short": y[:99],
        "1..K": y + 1,
        "strings": np.array([f"digit {d}" for d in y]),
    }
    special_validation = {
        ("x", "y"): (x_test, y_test[:10]),
        "11 classes": (x_test, np.full(len(y_test), 10)),
    }
    if isinstance(kwargs.get("y"), str):
        kwargs["y"] = special_y[kwargs["y"]]
    if kwargs.get("validation_data") in special_validation:
        kwargs["validation_data"] = special_validation[kwargs["validation_data"]]
    y_arg = kwargs.pop("y", y)
    kwargs = {"run_dir": tmp_path / "run", "epochs": 2, "verbose": 0, **kwargs}
    with pytest.raises(error, match=match):
        kdl.train(model, x, y_arg, **kwargs)
    assert not (tmp_path / "run").exists()  # nothing written
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # nothing trained


def test_a_finished_run_is_not_moved_aside_by_a_call_with_bad_options(
    tmp_path, digits_flat
):
    (x, y), _ = digits_flat
    run_dir = tmp_path / "run"
    kdl.train(
        _small_mlp(),
        x[:100],
        y[:100],
        epochs=1,
        run_dir=run_dir,
        tensorboard=False,
        verbose=0,
    )
    with pytest.raises(TypeError, match="'early_stopping' parameter.*does not"):
        kdl.train(
            _small_mlp(),
            x[:100],
            y[:100],
            epochs=1,
            run_dir=run_dir,
            early_stopping={"no_such_option": 1},
            verbose=0,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_binary_targets_are_checked_against_a_sigmoid_model(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    model = kdl.build_mlp((64,), 1, task="binary", dense_units=(8,))
    with pytest.raises(
        ValueError,
        match="'y' parameter of kdl.train must be binary targets in \\[0, 1\\]",
    ):
        kdl.train(model, x[:50], y[:50], run_dir=False, verbose=0)
    history = kdl.train(
        model,
        x[:50],
        (y[:50] % 2).astype("float32"),
        epochs=1,
        run_dir=False,
        verbose=0,
    )
    assert len(history.epoch) == 1


def test_run_dir_that_is_a_file_or_holds_other_files_is_refused(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    model = _small_mlp()
    (tmp_path / "a_file").write_text("precious")
    with pytest.raises(
        ValueError,
        match="'run_dir' parameter of kdl.train must be a folder, not an existing file",
    ):
        kdl.train(model, x, y, run_dir=tmp_path / "a_file", verbose=0)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="no run.json"):
        kdl.train(model, x, y, run_dir=tmp_path / "mine", verbose=0)
    assert (tmp_path / "a_file").read_text() == "precious"
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_keras3_objects_and_uncompiled_models_are_refused(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    keras3 = pytest.importorskip("keras")  # the real Keras 3, not kdl.keras
    model3 = keras3.Sequential([keras3.Input((64,)), keras3.layers.Dense(10)])
    model3.compile(loss="mse")
    with pytest.raises(TypeError, match="'model' parameter.*Keras 3.*kdl.keras"):
        kdl.train(model3, x, y, run_dir=tmp_path / "r", verbose=0)
    with pytest.raises(TypeError, match="'callbacks' parameter.*Keras 3.*kdl.keras"):
        kdl.train(
            _small_mlp(),
            x,
            y,
            callbacks=[keras3.callbacks.Callback()],
            run_dir=tmp_path / "r",
            verbose=0,
        )
    inputs = keras.Input((64,))
    plain = keras.Model(inputs, keras.layers.Dense(10)(inputs))
    with pytest.raises(ValueError, match="compiled"):
        kdl.train(plain, x, y, run_dir=tmp_path / "r", verbose=0)
    with pytest.raises(ValueError, match="'y' parameter.*None when x is a tf.data"):
        kdl.train(
            _small_mlp(),
            tf.data.Dataset.from_tensor_slices((x, y)),
            y,
            run_dir=tmp_path / "r",
            verbose=0,
        )
    assert not (tmp_path / "r").exists()


# === Output a person wants to read (issue 13) ===

_QUIET_SCRIPT = """
import logging, sys
import kdl
from kdl.backend import tf

(x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat")
model = kdl.build_mlp((64,), 10, dense_units=(8,))
kdl.train(model, x[:200], y[:200], validation_split=0.2, epochs=2, seed=0,
          run_dir=sys.argv[1], verbose=0)
model.evaluate(x_test, y_test, verbose=0)
tf.get_logger().warning("kdl-test-message")
print("root handlers:", len(logging.getLogger().handlers))
"""


@pytest.mark.slow
def test_a_small_run_prints_no_tensorflow_noise_and_nothing_twice(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _QUIET_SCRIPT, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "root handlers: 0"
    for noise in (
        "cuInit",
        "oneDNN",
        "NodeDef",
        "absl::InitializeLog",
        "is slow compared to the batch time",
    ):
        assert noise not in done.stderr, done.stderr[-3000:]
    # A TensorFlow warning after a run with checkpoints is printed once.
    assert done.stderr.count("kdl-test-message") == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), done.stderr[-3000:]


def test_cpp_lines_below_the_level_are_dropped_with_their_continuations():
    from kdl import backend

    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\n"
        "I0000 00:00:1795928462.905802    8628 port.cc:153] oneDNN custom ops\n"
        "I0000 00:00:1795928462.984355    8628 cpu_feature_guard.cc:227] This "
        "TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2, rebuild TensorFlow\n"
        "E0000 00:00:1795929228.583972   20494 cuda_platform.cc:52] failed call "
        "to cuInit\n"
        "F0000 00:00:1795929228.583972   20494 main.cc:1] a fatal error\n"
        "Traceback (most recent call last):\n"
        "  File 'x.py', line 1\n"
    )
    assert backend._drop_quiet_lines(text, 3) == (
        "F0000 00:00:1795929228.583972   20494 main.cc:1] a fatal error\n"
        "Traceback (most recent call last):\n"
        "  File 'x.py', line 1\n"
    )
    kept = backend._drop_quiet_lines(text, 2)
    assert "cuInit" in kept and "oneDNN" not in kept and "To enable" not in kept


def test_keep_root_logger_undoes_absl_configuring_the_root_logger():
    from absl import logging as absl_logging

    from kdl.backend import keep_root_logger

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # as in a script that configured no logging
    try:
        with keep_root_logger():
            absl_logging.warning("kdl-test: absl would call basicConfig here")
            assert len(root.handlers) == 1
        assert root.handlers == []
        absl_logging.warning("kdl-test: without the guard it does")
        assert len(root.handlers) == 1  # the check can fail
    finally:
        root.handlers[:] = saved


# === Honest validation and baselines (issue 23) ===


def test_validation_of_data_sorted_by_class_is_stratified_and_recorded(
    tmp_path, digits_flat
):
    (x, y), _ = digits_flat
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]  # as a CSV sorted by its label column
    history = kdl.train(
        _small_mlp(normalize=x),
        x,
        y,
        validation_split=0.1,
        epochs=4,
        seed=2,
        run_dir=tmp_path / "run",
        verbose=0,
    )
    # Keras' own split would validate on the last rows: class 9 only, never
    # trained on, so val_accuracy 0.
    assert history.history["val_accuracy"][-1] > 0.6
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["arguments"]["validation"] == {
        "method": "stratified",
        "fraction": 0.1,
        "seed": 2,
        "examples": len(x) - int(np.floor(len(x) * 0.9)),
        "classes_missing": [],
    }
    base = record["baselines"]
    assert base["on"] == "the validation part" and base == history.baselines
    assert base["trivial"]["name"] == "majority class"
    assert base["trivial"]["score"] < 0.15 < 0.6 < base["model"]
    assert base["linear"]["score"] > 0.9  # logistic regression on the digits


def test_a_model_that_does_not_beat_the_mean_warns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype("float32")
    y = (5000.0 + 100.0 * x[:, 0]).astype("float32")  # far from a fresh model
    model = kdl.build_mlp((3,), 1, task="regression", learning_rate=1e-5)
    with pytest.warns(UserWarning, match="does not beat the trivial baseline"):
        history = kdl.train(
            model, x, y, validation_split=0.2, epochs=1, run_dir=False, verbose=0
        )
    assert history.baselines["trivial"]["name"] == "mean"
    assert history.baselines["model"] > history.baselines["trivial"]["score"]
    assert history.baselines["linear"]["score"] < 1.0  # ridge fits it
