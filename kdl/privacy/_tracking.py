"""What a private model actually trained on, recorded by its own ``fit``.

The privacy statement must never claim more privacy than the run had
(upstream issue 11). A plan given to ``make_private`` can differ from the run:
``validation_split`` holds examples out, a ``tf.data`` pipeline has its own
size and batch size, early stopping ends a run before its last epoch, a run
is resumed from a backup. So every ``fit`` of a private model (``kdl.train``
calls ``fit`` too) records one *session*: the examples sampled from, the
largest batch, the optimizer steps taken and the epochs, and which epoch's
weights the model kept. The statement composes the sessions.

A light module (no TensorFlow Privacy): the DP model class calls it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl._files import read_json, write_json
from kdl.backend import keras, tf

__all__ = [
    "FIT",
    "SessionRecorder",
    "begin_session",
    "end_session",
    "check_selection",
    "target_task",
    "iterations",
]

FIT = "PrivateModel.fit"
# Written next to BackupAndRestore's checkpoint: the most optimizer steps any
# process of this run reached, so a run resumed in a new process counts the
# steps of the epoch a crash cut off (their results may have been released,
# e.g. as a best-model checkpoint).
STEPS_FILE = "kdl-privacy-steps.json"
_SELECTING = (
    keras.callbacks.EarlyStopping,
    keras.callbacks.ReduceLROnPlateau,
    keras.callbacks.ModelCheckpoint,
)


def iterations(model) -> int:
    """Optimizer steps the model's optimizer has taken (0 when not compiled)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "iterations"):
        return 0
    return int(optimizer.iterations.numpy())


def target_task(model) -> tuple[str, int | None]:
    """("classification", K), ("binary", None) or ("regression", None) by loss."""
    loss = getattr(model, "loss", None)
    name = type(loss).__name__ if not isinstance(loss, str) else loss
    if name in ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"):
        return "classification", int(model.outputs[0].shape[-1])
    if name in ("BinaryCrossentropy", "binary_crossentropy"):
        return "binary", None
    return "regression", None


def _selectors(callbacks):
    """Callbacks that pick weights or steps by a monitored quantity."""
    for cb in callbacks or ():
        if isinstance(cb, keras.callbacks.ModelCheckpoint) and not cb.save_best_only:
            continue
        if isinstance(cb, _SELECTING):
            yield cb


def check_selection(callbacks, func=FIT) -> list[str]:
    """Refuses selection on training data; returns the monitors used.

    Early stopping, best-model checkpoints and learning-rate plateaus that
    watch a training quantity choose by the training data without DP-SGD's
    noise: what they pick is not covered by the privacy accounting.
    """
    monitors = []
    for cb in _selectors(callbacks):
        monitor = str(getattr(cb, "monitor", ""))
        if not monitor.startswith("val_"):
            v.fail(
                func,
                "callbacks",
                "free of selection on training data for a private model: "
                f"{type(cb).__name__} watches {monitor!r}, computed on the "
                "training data without DP-SGD's noise, which the privacy "
                "accounting does not cover. Give held-out validation data and "
                "monitor 'val_loss' (kdl.train(..., validation_split=0.2) or "
                "validation_data=...), or turn selection off (kdl.train(..., "
                "early_stopping=False, checkpoint=False))",
                monitor,
            )
        monitors.append(monitor)
    return sorted(set(monitors))


def _hash_rows(leaves, seen: set) -> None:
    n = int(np.shape(leaves[0])[0])
    for i in range(n):
        digest = hashlib.blake2b(digest_size=16)
        for leaf in leaves:
            digest.update(np.ascontiguousarray(leaf[i]).tobytes())
        seen.add(digest.digest())


def _count_dataset(dataset, func):
    """(distinct examples, largest batch, label arrays) of one pass.

    Distinct examples, not elements: a dataset that repeats its data inside
    one epoch samples from fewer examples than it yields, and counting the
    repeats would understate epsilon.
    """
    if int(dataset.cardinality().numpy()) == tf.data.INFINITE_CARDINALITY:
        v.fail(
            func,
            "x",
            "a finite tf.data.Dataset for a private model (one pass is one "
            "epoch; the privacy accounting counts the examples it samples "
            "from): drop .repeat() and let epochs repeat the data",
            "an infinite dataset",
        )
    seen, biggest, labels = set(), 0, []
    for batch in dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        x_leaves = [np.asarray(t) for t in tf.nest.flatten(x)]
        y_leaves = [] if y is None else [np.asarray(t) for t in tf.nest.flatten(y)]
        biggest = max(biggest, int(np.shape(x_leaves[0])[0]))
        _hash_rows(x_leaves + y_leaves, seen)
        if len(y_leaves) == 1:
            labels.append(y_leaves[0])
    return len(seen), biggest, labels


def _check_labels(model, y, func):
    task, num_classes = target_task(model)
    v.check_targets(func, y, task=task, num_classes=num_classes)


def begin_session(model, x, y, *, batch_size, validation_split, validation_data,
                  callbacks, func=FIT) -> dict:  # fmt: skip
    """Checks a private ``fit`` before any work; returns its session record."""
    info = v.check_data(
        func,
        x,
        y,
        validation_data=validation_data,
        validation_split=validation_split,
    )
    monitors = check_selection(callbacks, func)
    if info.is_dataset:
        num_examples, batch, labels = _count_dataset(x, func)
        if labels:
            _check_labels(model, np.concatenate(labels), func)
        if num_examples == 0:
            v.fail(func, "x", "a dataset with at least one example", "no examples")
    else:
        _check_labels(model, y, func)
        num_examples = int(math.floor(info.num_examples * (1.0 - validation_split)))
        batch = min(batch_size or 32, num_examples)  # Keras' default batch: 32
    return {
        "num_examples": num_examples,
        "batch_size": batch,
        "steps": 0,
        "restored_steps": 0,
        "epochs": 0,
        "first_epoch": None,
        "last_epoch": None,
        "kept_epoch": None,
        "selected_by": monitors,
        # Each session's own noise: a private fine-tuning after compression
        # may use other settings than the run before it (issue 16).
        "noise_multiplier": model.privacy.get("noise_multiplier"),
        "l2_norm_clip": model.privacy.get("l2_norm_clip"),
    }


def _last_end(model) -> int:
    sessions = model.privacy.get("sessions") or []
    return sessions[-1]["end_iteration"] if sessions else 0


class SessionRecorder(keras.callbacks.Callback):
    """Counts the steps and epochs of one ``fit``, after any backup is restored.

    It runs after every other callback (``fit`` appends it last), so at train
    begin ``BackupAndRestore`` has already put back the optimizer's step
    counter of a resumed run, and at train end ``EarlyStopping`` has already
    restored its best weights.
    """

    def __init__(self, session: dict, callbacks):
        super().__init__()
        self.session = session
        self.callbacks = list(callbacks or ())
        self.start = None

    def steps_file(self) -> Path | None:
        """The high-water file in a BackupAndRestore folder, if there is one."""
        for cb in self.callbacks:
            if isinstance(cb, keras.callbacks.BackupAndRestore):
                # Inside the checkpoint folder BackupAndRestore deletes when
                # fit finishes, so the file goes with it.
                return Path(cb.backup_dir) / "chief" / STEPS_FILE
        return None

    def on_train_begin(self, logs=None):
        self.start = iterations(self.model)
        path = self.steps_file()
        record = read_json(path) if path is not None else None
        reached = max(self.start, int((record or {}).get("steps", 0)))
        # Steps beyond what this model recorded were taken elsewhere: a run
        # resumed from a backup (up to the most the crashed process reached),
        # or train_on_batch. They are counted with this session's data.
        self.session["restored_steps"] = max(0, reached - _last_end(self.model))

    def on_epoch_end(self, epoch, logs=None):
        self.session["epochs"] += 1
        if self.session["first_epoch"] is None:
            self.session["first_epoch"] = epoch + 1
        self.session["last_epoch"] = epoch + 1
        self.save_reached()

    def save_reached(self):
        """Writes the steps reached so far, while the backup folder exists."""
        path = self.steps_file()
        if path is None or not path.parent.is_dir():
            return  # no backup, or BackupAndRestore removed it at the end
        previous = read_json(path)
        steps = max(iterations(self.model), int((previous or {}).get("steps", 0)))
        write_json(path, {"steps": steps})

    def kept_epoch(self):
        """The 1-based epoch whose weights the model holds after fit."""
        kept = self.session["last_epoch"]
        for cb in self.callbacks:
            if (
                isinstance(cb, keras.callbacks.EarlyStopping)
                and cb.restore_best_weights
                and cb.best_weights is not None
            ):
                kept = int(cb.best_epoch) + 1
        return kept


def end_session(model, recorder: SessionRecorder) -> None:
    """Adds the session to ``model.privacy["sessions"]`` (also after an error)."""
    session = recorder.session
    if recorder.start is None:  # fit stopped before training began
        return
    end = iterations(model)
    recorder.save_reached()  # a crash: the resumed run must count these steps
    session["steps"] = max(0, end - recorder.start) + session["restored_steps"]
    session["end_iteration"] = end
    session["kept_epoch"] = recorder.kept_epoch()
    if session["steps"] == 0 and session["epochs"] == 0:
        return
    model.privacy["sessions"] = list(model.privacy.get("sessions") or []) + [session]
