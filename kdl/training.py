"""Training runs you can trust, stop, resume and reload: train() and set_seed().

:func:`train` wraps ``model.fit`` with kdl's standard callbacks and one run
folder per run (by default ``saved_models/<model name>-<date>-<time>`` in the
current folder)::

    run_dir/
      run.json        versions, seed, arguments, data shapes and hash, status,
                      final and best metrics
      history.csv     one row per finished epoch
      history.png     loss and metric curves
      best.keras      the best model (by ``monitor``)
      backup/         training state of the last finished epoch (while running)
      logs/           TensorBoard logs

Run the same call again after a crash or a kill and training continues from the
last finished epoch (``resume=True``, the default). A folder is never wiped: an
earlier run that cannot be continued is moved aside to
``<run_dir>.old-<date>-<time>`` first.

Example:
    >>> import kdl
    >>> (x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat")
    >>> model = kdl.build_mlp(x.shape[1:], 10)
    >>> history = kdl.train(model, x, y, validation_split=0.2, epochs=20,
    ...                     run_dir="saved_models/digits-mlp", seed=0)
    >>> history.run_dir
    PosixPath('saved_models/digits-mlp')
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl import callbacks as kdl_callbacks
from kdl.backend import keras, tf

__all__ = ["train", "set_seed", "RUN_JSON", "HISTORY_PNG", "DEFAULT_ROOT"]

RUN_JSON = "run.json"
HISTORY_PNG = "history.png"
DEFAULT_ROOT = "saved_models"
FUNC = "kdl.train"


# === Seeding ===


def set_seed(seed: int, *, deterministic: bool = True) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow ops deterministic.

    After ``set_seed(s)``, building and training the same model on the same
    data gives bit-identical weights and history. Op determinism
    (``tf.config.experimental.enable_op_determinism``) stays on for the rest of
    the process; it can make some ops slower, and TensorFlow raises an error
    for the few ops that have no deterministic implementation.

    Args:
        seed: int. A non-negative seed.
        deterministic: bool. Also turn on op determinism. Without it, runs are
            repeatable only as far as TensorFlow's kernels are (multi-threaded
            CPU and GPU reductions may differ in the last bits). Defaults to
            `True`.

    Raises:
        TypeError, ValueError: for a bad argument.

    Example:
        >>> set_seed(42)
    """
    seed = v.check_int(seed, "seed", "kdl.set_seed", min_value=0)
    v.check_bool(deterministic, "deterministic", "kdl.set_seed")
    keras.utils.set_random_seed(seed)  # seeds Python, NumPy and TensorFlow
    if deterministic:
        tf.config.experimental.enable_op_determinism()


# === Data checks ===


def _is_dataset(value) -> bool:
    return isinstance(value, tf.data.Dataset)


def _leaves(data) -> list:
    """The arrays of ``data``: one array, or a list/tuple/dict of arrays."""
    if isinstance(data, (Mapping, list, tuple)):
        leaves = tf.nest.flatten(data)
        if leaves and all(np.ndim(leaf) > 0 for leaf in leaves):
            return leaves
    return [data]


def _check_arrays(data, arg: str) -> list:
    """Checks that ``data`` is array-like with a batch axis; returns its leaves."""
    leaves = _leaves(data)
    for leaf in leaves:
        array_like = hasattr(leaf, "__len__") or hasattr(leaf, "shape")
        if isinstance(leaf, (str, bytes)) or not array_like:
            v.fail(FUNC, arg, "a NumPy array (or a list, tuple or dict of arrays), "
                   "a tf.Tensor or a tf.data.Dataset", data, error=TypeError)
        if np.ndim(leaf) == 0:
            v.fail(FUNC, arg, "an array with a batch axis, not a scalar", data)
    return leaves


def _length(leaves, arg: str) -> int:
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(lengths) > 1:
        raise ValueError(
            f"The {arg!r} parameter of {FUNC} must hold arrays of one length. "
            f"Got lengths {sorted(lengths)} instead."
        )
    n = lengths.pop()
    if n == 0:
        v.fail(FUNC, arg, "a non-empty array", f"{n} examples")
    return n


def _same_length(n_x: int, leaves, arg: str, x_arg: str) -> None:
    n = _length(leaves, arg)
    if n != n_x:
        raise ValueError(
            f"The {arg!r} parameter of {FUNC} must have as many examples as "
            f"{x_arg} ({n_x}). Got {n} examples instead."
        )


def _shape_of(data):
    if _is_dataset(data):
        return str(data.element_spec)
    return tf.nest.map_structure(lambda a: list(np.shape(a)), data) \
        if len(_leaves(data)) > 1 else list(np.shape(data))


def _hash_update(digest, leaves) -> None:
    for leaf in leaves:
        array = np.ascontiguousarray(
            leaf.numpy() if isinstance(leaf, tf.Tensor) else np.asarray(leaf))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")


def _check_data(x, y, validation_data, validation_split):
    """Checks the data before any work; returns (data_info, validation_data)."""
    info = {"x": None, "y": None, "validation": None, "sha256": None}
    digest = hashlib.sha256()
    hashable = True
    if _is_dataset(x):
        if y is not None:
            v.fail(FUNC, "y", "None when x is a tf.data.Dataset (the dataset "
                   "yields (x, y) pairs)", type(y).__name__)
        if validation_split:
            v.fail(FUNC, "validation_split", "0.0 when x is a tf.data.Dataset "
                   "(pass validation_data instead)", validation_split)
        info["x"] = _shape_of(x)
        hashable = False
    else:
        x_leaves = _check_arrays(x, "x")
        n = _length(x_leaves, "x")
        info["x"] = _shape_of(x)
        _hash_update(digest, x_leaves)
        if y is not None:
            y_leaves = _check_arrays(y, "y")
            _same_length(n, y_leaves, "y", "x")
            info["y"] = _shape_of(y)
            _hash_update(digest, y_leaves)
        if validation_split and n * validation_split < 1:
            v.fail(FUNC, "validation_split", f"large enough to hold one of the "
                   f"{n} examples", validation_split)

    if validation_data is not None:
        if validation_split:
            v.fail(FUNC, "validation_split", "0.0 when validation_data is given",
                   validation_split)
        if _is_dataset(validation_data):
            info["validation"] = _shape_of(validation_data)
            hashable = False
        else:
            if not isinstance(validation_data, (tuple, list)) or len(
                    validation_data) not in (2, 3):
                v.fail(FUNC, "validation_data", "a tuple (x_val, y_val), "
                       "(x_val, y_val, sample_weight) or a tf.data.Dataset",
                       validation_data, error=TypeError)
            validation_data = tuple(validation_data)
            xv_leaves = _check_arrays(validation_data[0], "validation_data")
            n_val = _length(xv_leaves, "validation_data")
            for part in validation_data[1:]:
                _same_length(n_val, _check_arrays(part, "validation_data"),
                             "validation_data", "its x")
            info["validation"] = [_shape_of(part) for part in validation_data]
            for part in validation_data:
                _hash_update(digest, _leaves(part))
    info["sha256"] = digest.hexdigest() if hashable else None
    return info, validation_data


# === Run folders ===


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _default_run_dir(model) -> Path:
    root = Path.cwd() / DEFAULT_ROOT
    base = root / f"{model.name}-{_timestamp()}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    from kdl.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _run_state(run_dir: Path) -> str:
    """'new', 'unfinished', 'finished' or 'foreign' (not a kdl run folder)."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new"
    record = _read_json(run_dir / RUN_JSON)
    if record is None or "status" not in record:
        return "foreign"
    return "finished" if record["status"] == "finished" else "unfinished"


def _move_aside(run_dir: Path) -> Path:
    target = run_dir.with_name(f"{run_dir.name}.old-{_timestamp()}")
    i = 1
    while target.exists():
        i += 1
        target = run_dir.with_name(f"{run_dir.name}.old-{_timestamp()}-{i}")
    os.replace(run_dir, target)
    return target


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _to_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


class _ResumeState(keras.callbacks.Callback):
    """Makes a resumed run continue where the killed one stopped.

    BackupAndRestore restores the weights, the optimizer and the epoch counter,
    but not ``history.csv`` nor the state of EarlyStopping, ModelCheckpoint and
    ReduceLROnPlateau (their best value and patience count), which reset at
    every ``fit``. Keras has no API for that, so at the first epoch of a
    resumed fit this callback drops history rows of epochs that will run again
    and replays the kept rows into those callbacks.
    """

    def __init__(self, run_dir: Path, callbacks: Sequence):
        super().__init__()
        self.run_dir = run_dir
        self.callbacks = list(callbacks)
        self.initial_epoch = None
        self.kept_rows: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        if self.initial_epoch is None:
            self._reconcile(epoch)

    def on_train_end(self, logs=None):
        # No epoch ran: the run was killed after its last epoch was backed up
        # but before it finished. Keep every row and the best weights.
        if self.initial_epoch is None:
            self._reconcile(None)

    def _reconcile(self, epoch):
        """Keeps history rows of epochs before ``epoch`` (all for None)."""
        self.initial_epoch = epoch
        path = self.run_dir / kdl_callbacks.HISTORY_CSV
        if not path.exists():
            return
        with open(path, "r+", newline="") as f:
            lines = f.readlines()
            header, rows = lines[:1], lines[1:]
            kept = [line for line in rows
                    if line.split(",", 1)[0].strip().isdigit()
                    and (epoch is None or int(line.split(",", 1)[0]) < epoch)]
            # Truncate in place: CSVLogger already holds the file open for
            # appending, so replacing the file would hide its next rows.
            f.seek(0)
            f.writelines(header + kept)
            f.truncate()
        self.kept_rows = _read_history(path)
        if epoch is None:
            self.initial_epoch = len(self.kept_rows)
        if self.kept_rows:
            self._replay()

    def _replay(self):
        for cb in self.callbacks:
            if not isinstance(cb, (keras.callbacks.EarlyStopping,
                                   keras.callbacks.ModelCheckpoint,
                                   keras.callbacks.ReduceLROnPlateau)):
                continue
            values = [(int(r["epoch"]), _to_float(r.get(cb.monitor)))
                      for r in self.kept_rows]
            values = [(e, x) for e, x in values if isinstance(x, float)]
            if not values:
                continue
            if isinstance(cb, keras.callbacks.ModelCheckpoint):
                for _, value in values:
                    if cb.monitor_op(value, cb.best):
                        cb.best = value
                continue
            if isinstance(cb, keras.callbacks.EarlyStopping):
                improves = cb._is_improvement
            else:
                improves = cb.monitor_op
            best, best_epoch, wait = cb.best, None, 0
            for epoch, value in values:
                wait += 1
                if improves(value, best):
                    best, best_epoch, wait = value, epoch, 0
            cb.best, cb.wait = best, wait
            if isinstance(cb, keras.callbacks.EarlyStopping) and best_epoch is not None:
                cb.best_epoch = best_epoch
                if cb.restore_best_weights:
                    cb.best_weights = self._best_weights(cb.monitor)

    def _best_weights(self, monitor):
        """The weights of the best epoch, from best.keras when it tracks them.

        Only the weights are read (no model config, so no custom objects and
        no Python code), through the model itself, which is then put back.
        """
        for cb in self.callbacks:
            path = getattr(cb, "filepath", "")
            if isinstance(cb, keras.callbacks.ModelCheckpoint) and \
                    cb.monitor == monitor and str(path).endswith(".keras") and \
                    Path(path).exists():
                current = self.model.get_weights()
                try:
                    self.model.load_weights(path)
                    return self.model.get_weights()
                except (ValueError, OSError):
                    return None
                finally:
                    self.model.set_weights(current)
        return None


def _plot_history(rows: list[dict], path: Path) -> None:
    """Writes the loss and metric curves with Matplotlib's Agg canvas.

    The object-oriented API (``Figure`` + ``FigureCanvasAgg``) does not touch
    pyplot's global backend, so it is safe in notebooks and headless servers.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kdl.io import atomic_path

    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    names = sorted((k for k in rows[0] if k not in ("epoch", "lr", "learning_rate")
                    and not k.startswith("val_")), key=lambda k: (k != "loss", k))
    fig = Figure(figsize=(5 * len(names), 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in rows[0]:
                ax.plot(epochs, [_to_float(r[key]) for r in rows], marker=".",
                        label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)


def _finite(value: float):
    """JSON has no NaN or infinity: those become strings."""
    return value if math.isfinite(value) else str(value)


# === train ===


def train(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    validation_split: float = 0.0,
    epochs: int = 10,
    batch_size: int = 32,
    run_dir=None,
    resume: bool = True,
    seed: int | None = None,
    callbacks: Sequence = (),
    monitor: str | None = None,
    patience: int = 5,
    early_stopping=True,
    checkpoint=True,
    tensorboard=True,
    reduce_lr=False,
    class_weight: Mapping | None = None,
    shuffle: bool = True,
    verbose: int = 1,
):
    """Trains a compiled model in a run folder that can be resumed and reloaded.

    Training uses :func:`kdl.callbacks.standard` (early stopping with the best
    weights restored, best-model checkpoint, backup for resuming, CSV history,
    TensorBoard, stop on NaN) plus your own ``callbacks``. ``model`` is trained
    in place, like ``model.fit``: afterwards it holds the best weights (by
    ``monitor``) when early stopping is on, else the last ones.

    Resuming: with ``resume=True`` (the default), calling ``train`` again with
    the same ``run_dir`` after the process crashed or was killed continues from
    the last finished epoch, up to the same ``epochs``; history.csv and the
    returned History hold every epoch once. A resumed run is not bit-identical
    to an uninterrupted one (random state is not saved). An existing run
    folder is never wiped: a finished run, or any run with ``resume=False``,
    is moved aside to ``<run_dir>.old-<date>-<time>`` and a fresh run starts.

    Args:
        model: kdl.keras.Model. A compiled model (e.g. from a kdl builder).
        x: array, list/tuple/dict of arrays, tf.Tensor, or tf.data.Dataset of
            (x, y) batches.
        y: array or list/dict of arrays, or None with a dataset. Defaults to
            `None`.
        validation_data: (x_val, y_val) or a tf.data.Dataset. Defaults to
            `None`.
        validation_split: float. Fraction of (array) x held out for
            validation, taken from the end. Defaults to `0.0`.
        epochs: int. Total number of epochs. Defaults to `10`.
        batch_size: int. Ignored for datasets (they are batched). Defaults to
            `32`.
        run_dir: str, Path, None or False. The run folder; None makes
            ``saved_models/<model name>-<date>-<time>`` in the current
            folder; False writes nothing (no checkpoint, backup or history
            files). Defaults to `None`.
        resume: bool. Continue an unfinished run found in ``run_dir``.
            Defaults to `True`.
        seed: int or None. Calls :func:`set_seed` before training (shuffling
            and dropout; build the model after ``set_seed`` to also fix its
            initial weights). Defaults to `None`.
        callbacks: sequence of kdl.keras callbacks, run before the backup.
            Defaults to `()`.
        monitor: str or None. What early stopping and checkpointing watch;
            None means "val_loss" with validation data, else "loss".
            Defaults to `None`.
        patience: int. Epochs without improvement before stopping. Defaults to
            `5`.
        early_stopping: bool or dict. See :func:`kdl.callbacks.standard`.
            Defaults to `True`.
        checkpoint: bool or dict. Defaults to `True`.
        tensorboard: bool or dict. Defaults to `True`.
        reduce_lr: bool or dict. Defaults to `False`.
        class_weight: dict or None. Passed to ``fit``. Defaults to `None`.
        shuffle: bool. Shuffle array data each epoch. Defaults to `True`.
        verbose: int. 0 silent, 1 progress bar, 2 one line per epoch.
            Defaults to `1`.

    Returns:
        The Keras ``History`` of every epoch of the run, with ``.run_dir``
        (a Path, or None when ``run_dir=False``).

    Raises:
        TypeError: for an argument of the wrong type, or a Keras 3 model or
            callback (use `kdl.keras`).
        ValueError: for a bad value (e.g. negative epochs, x and y of
            different lengths, a run_dir that is a file or a folder holding
            other files, resuming a run on different data). All checks run
            before training starts.

    Example:
        >>> history = train(model, x, y, validation_split=0.2, epochs=5,
        ...                 run_dir="saved_models/demo", verbose=0)
        >>> len(history.epoch) <= 5
        True
    """
    # === Checks (before any work) ===
    v.check_keras_model(model, "model", FUNC)
    if getattr(model, "optimizer", None) is None:
        v.fail(FUNC, "model", "a compiled kdl.keras.Model (call model.compile, "
               "or use a kdl builder)", model.name)
    epochs = v.check_int(epochs, "epochs", FUNC, min_value=1)
    batch_size = v.check_int(batch_size, "batch_size", FUNC, min_value=1)
    validation_split = v.check_fraction(validation_split, "validation_split", FUNC)
    v.check_bool(resume, "resume", FUNC)
    seed = v.check_int(seed, "seed", FUNC, min_value=0, allow_none=True)
    v.check_int(patience, "patience", FUNC, min_value=0)
    v.check_str(monitor, "monitor", FUNC, allow_none=True)
    v.check_bool(shuffle, "shuffle", FUNC)
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        v.fail(FUNC, "verbose", "0, 1 or 2", verbose)
    if class_weight is not None and not isinstance(class_weight, Mapping):
        v.fail(FUNC, "class_weight", "a dict or None", class_weight, error=TypeError)
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        v.fail(FUNC, "callbacks", "a list or tuple of kdl.keras callbacks",
               callbacks, error=TypeError)
    for cb in callbacks:
        v.check_keras2(cb, "callbacks", FUNC)
        if not isinstance(cb, keras.callbacks.Callback):
            v.fail(FUNC, "callbacks", "a list of kdl.keras.callbacks.Callback",
                   cb, error=TypeError)
    if run_dir is not None and run_dir is not False and not isinstance(
            run_dir, (str, os.PathLike)):
        v.fail(FUNC, "run_dir", "a str, pathlib.Path, None or False", run_dir,
               error=TypeError)
    if run_dir not in (None, False) and Path(run_dir).exists() and \
            not Path(run_dir).is_dir():
        v.fail(FUNC, "run_dir", "a folder, not an existing file", str(run_dir))
    data_info, validation_data = _check_data(x, y, validation_data,
                                             validation_split)
    has_validation = validation_data is not None or validation_split > 0
    if monitor is None:
        monitor = "val_loss" if has_validation else "loss"
    elif monitor.startswith("val_") and not has_validation:
        v.fail(FUNC, "monitor", "a training quantity (e.g. 'loss') when there "
               "is no validation data", monitor)

    # === The run folder ===
    arguments = {
        "epochs": epochs, "batch_size": batch_size,
        "validation_split": validation_split, "resume": resume, "seed": seed,
        "monitor": monitor, "patience": patience,
        "early_stopping": early_stopping, "checkpoint": checkpoint,
        "tensorboard": tensorboard, "reduce_lr": reduce_lr,
        "class_weight": class_weight, "shuffle": shuffle,
        "callbacks": [type(cb).__name__ for cb in callbacks],
    }
    record = None
    if run_dir is False:
        run_dir = None
    else:
        run_dir = _default_run_dir(model) if run_dir is None else Path(run_dir)
        state = _run_state(run_dir)
        if state == "foreign":
            v.fail(FUNC, "run_dir", "a new or empty folder, or a kdl run folder "
                   "(it holds files but no run.json)", str(run_dir))
        if state == "unfinished" and resume:
            record = _read_json(run_dir / RUN_JSON)
            old_hash = record.get("data", {}).get("sha256")
            if old_hash and data_info["sha256"] and old_hash != data_info["sha256"]:
                raise ValueError(
                    f"The 'x' parameter of {FUNC} must be the data of the run "
                    f"being resumed in {str(run_dir)!r} (sha256 {old_hash[:12]}...)."
                    f" Got data with sha256 {data_info['sha256'][:12]}... instead. "
                    "Pass resume=False to start a new run (the old one is moved "
                    "aside) or use another run_dir."
                )
        elif state in ("unfinished", "finished"):
            moved = _move_aside(run_dir)
            if verbose:
                print(f"kdl.train: moved the earlier run in {run_dir} to {moved}")

    # === Callbacks ===
    cbs = list(callbacks)
    resume_state = None
    if run_dir is not None:
        standard = kdl_callbacks.standard(
            run_dir, monitor=monitor, patience=patience,
            early_stopping=early_stopping, checkpoint=checkpoint,
            tensorboard=tensorboard, reduce_lr=reduce_lr,
            verbose=1 if verbose else 0)
        backups = [c for c in standard
                   if isinstance(c, keras.callbacks.BackupAndRestore)]
        others = [c for c in standard if c not in backups]
        resume_state = _ResumeState(run_dir, others + cbs)
        cbs = [resume_state] + others + cbs + backups
    elif early_stopping is not False:
        es = kdl_callbacks._options(early_stopping, "early_stopping", {
            "monitor": monitor, "patience": patience,
            "restore_best_weights": True}, FUNC)
        cbs = [keras.callbacks.TerminateOnNaN(),
               keras.callbacks.EarlyStopping(**es)] + cbs

    if record is None and run_dir is not None:
        record = {
            "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "versions": _versions(),
            "seed": seed,
            "arguments": arguments,
            "model": {"name": model.name, "parameters": int(model.count_params())},
            "data": data_info,
            "sessions": [],
        }
    if record is not None:
        resuming = bool(record["sessions"])
        record["sessions"].append({
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            # A resumed session learns its first epoch from the backup.
            "initial_epoch": None if resuming else 0,
        })
        record["status"] = "running"
        _write_json(run_dir / RUN_JSON, record)
        if verbose:
            what = "resuming the unfinished run in" if resuming else "run folder"
            print(f"kdl.train: {what} {run_dir}")

    # === Training ===
    if seed is not None:
        set_seed(seed)
    is_dataset = _is_dataset(x)
    history = model.fit(
        x, y,
        validation_data=validation_data,
        validation_split=validation_split,
        epochs=epochs,
        batch_size=None if is_dataset else batch_size,
        callbacks=cbs,
        class_weight=class_weight,
        shuffle=shuffle,
        verbose=verbose,
    )

    # === Results ===
    history.run_dir = run_dir
    if resume_state is not None and resume_state.kept_rows:
        earlier = resume_state.kept_rows
        merged = {k: [_to_float(r[k]) for r in earlier] for k in earlier[0]
                  if k != "epoch"}
        for key, values in history.history.items():
            merged.setdefault(key, [math.nan] * len(earlier))
            merged[key] = merged[key] + list(values)
        history.history = merged
        history.epoch = [int(r["epoch"]) for r in earlier] + list(history.epoch)
    if run_dir is not None:
        backup = run_dir / kdl_callbacks.BACKUP_DIR
        if backup.is_dir() and not any(backup.iterdir()):
            backup.rmdir()  # BackupAndRestore empties it at the end
        rows = _read_history(run_dir / kdl_callbacks.HISTORY_CSV)
        if rows:
            _plot_history(rows, run_dir / HISTORY_PNG)
        record["sessions"][-1]["initial_epoch"] = resume_state.initial_epoch
        record.update(_results(history, monitor, epochs))
        record["status"] = "finished"
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_json(run_dir / RUN_JSON, record)
        if verbose:
            best = record["best_metrics"] or {}
            where = ("" if record["best_epoch"] is None
                     else f" at epoch {record['best_epoch'] + 1}")
            print(f"kdl.train: {record['epochs_completed']} epochs; best {monitor} "
                  f"{best.get(monitor)}{where}; files in {run_dir}")
    return history


def _versions() -> dict:
    import kdl

    return {
        "kdl": kdl.__version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _results(history, monitor: str, epochs: int) -> dict:
    hist = history.history
    n = len(history.epoch)
    final = {k: _finite(float(vals[-1])) for k, vals in hist.items() if vals}
    result = {"epochs_completed": n, "stopped_early": n < epochs,
              "final_metrics": final, "best_epoch": None, "best_metrics": None}
    values = hist.get(monitor)
    if values:
        mode_max = monitor.endswith(("acc", "accuracy", "auc"))
        finite = [(i, float(val)) for i, val in enumerate(values)
                  if math.isfinite(float(val))]
        if finite:
            pick = max if mode_max else min
            i, _ = pick(finite, key=lambda item: item[1])
            result["best_epoch"] = int(history.epoch[i])
            result["best_metrics"] = {k: _finite(float(vals[i]))
                                      for k, vals in hist.items() if len(vals) > i}
    return result
