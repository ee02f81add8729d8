"""Callback sets for a run folder: the callbacks a training run you can trust needs.

:func:`standard` returns Keras' own callbacks, configured to write into one run
folder::

    run_dir/
      best.keras      the best model so far (ModelCheckpoint, written atomically)
      backup/         the training state after the last finished epoch
                      (BackupAndRestore; deleted when training ends)
      history.csv     one row per finished epoch (CSVLogger)
      logs/           TensorBoard logs (epoch scalars)

Example:
    >>> from kdl import callbacks
    >>> cbs = callbacks.standard("/tmp/run", patience=3, reduce_lr=True)
    >>> model.fit(x, y, validation_split=0.2, epochs=20, callbacks=cbs)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from kdl import _validation as v
from kdl.backend import keras

__all__ = [
    "standard",
    "options",
    "AtomicModelCheckpoint",
    "StopOnNaN",
    "BEST_MODEL",
    "BACKUP_DIR",
    "HISTORY_CSV",
    "LOG_DIR",
]

BEST_MODEL = "best.keras"
BACKUP_DIR = "backup"
HISTORY_CSV = "history.csv"
LOG_DIR = "logs"
MODES = ("auto", "min", "max")


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose saves never leave a half-written model file.

    Keras' ModelCheckpoint writes straight over the previous best model, so a
    run killed during a save loses it. This subclass writes full-model saves
    through :func:`kdl.save` (temporary file, then ``os.replace``). Weights-only
    saves are left to Keras.
    """

    def _save_handler(self, filepath):
        if self.save_weights_only:
            return super()._save_handler(filepath)
        from kdl import io

        io.save(self.model, filepath)
        return None


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the end of an epoch whose loss is NaN or infinite.

    Keras' ``TerminateOnNaN`` looks at every batch. One callback with batch
    hooks makes Keras call every callback after every step and turn the step's
    logs into NumPy values; on a small model that cost more than the step
    itself and set off Keras' "on_train_batch_end is slow" warning (issue 18).
    The epoch's loss is the mean over its batches, so a NaN or infinite loss
    in any batch shows at the end of the epoch: the run stops at most one
    epoch later, and no NaN model becomes the best checkpoint (NaN never
    compares as an improvement).
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Epoch {epoch + 1}: invalid loss {loss}, terminating training.")
            self.model.stop_training = True


def options(value, arg: str, defaults: dict, func: str) -> dict | None:
    """Turns a callback's switch (True, False or a dict of options) into kwargs.

    Args:
        value: True (the defaults), False or None (switched off), or a dict of
            keyword arguments merged over ``defaults``.
        arg: str. The argument name, for the error message.
        defaults: dict. kdl's keyword arguments for the Keras callback.
        func: str. The public function name, for the error message.

    Returns:
        dict of keyword arguments, or None when switched off.

    Raises:
        TypeError: when ``value`` is none of these.
    """
    if value is False or value is None:
        return None
    if value is True:
        return dict(defaults)
    if isinstance(value, Mapping):
        return {**defaults, **value}
    v.fail(
        func,
        arg,
        "True, False or a dict of options for the Keras callback",
        value,
        error=TypeError,
    )
    return None  # unreachable


def standard(
    run_dir,
    *,
    monitor: str = "val_loss",
    mode: str = "auto",
    patience: int = 5,
    min_delta: float = 0.0,
    early_stopping=True,
    checkpoint=True,
    backup=True,
    csv_logger=True,
    tensorboard=True,
    terminate_on_nan=True,
    reduce_lr=False,
    verbose: int = 0,
) -> list:
    """The standard callbacks of a run, all writing into ``run_dir``.

    Each piece is switched on with True, off with False, or tuned with a dict
    of keyword arguments for its Keras callback (merged over kdl's defaults),
    e.g. ``tensorboard={"histogram_freq": 1}`` or ``reduce_lr={"factor": 0.2}``.

    The order matters and is fixed: StopOnNaN, TensorBoard,
    ReduceLROnPlateau, EarlyStopping, ModelCheckpoint, CSVLogger, and
    BackupAndRestore last, so that when the backup records an epoch as finished
    everything else about that epoch is already written.

    Args:
        run_dir: str or Path. The run folder (created when needed).
        monitor: str. The quantity early stopping, checkpointing and
            learning-rate reduction watch. Defaults to `"val_loss"`.
        mode: str. "min", "max", or "auto" (Keras guesses from the name).
            Defaults to `"auto"`.
        patience: int. Epochs without improvement before early stopping.
            Learning-rate reduction waits half as long. Defaults to `5`.
        min_delta: float. The smallest change that counts as an improvement.
            Defaults to `0.0`.
        early_stopping: bool or dict. EarlyStopping that restores the best
            weights at the end. Defaults to `True`.
        checkpoint: bool or dict. Saves the best model to
            ``run_dir/best.keras`` (atomically). Defaults to `True`.
        backup: bool or dict. BackupAndRestore in ``run_dir/backup``, so an
            interrupted fit continues from its last finished epoch. Defaults to
            `True`.
        csv_logger: bool or dict. Appends each epoch to
            ``run_dir/history.csv``. Defaults to `True`.
        tensorboard: bool or dict. TensorBoard logs in ``run_dir/logs``: the
            loss and metrics of each epoch (no graph, no profiling; add
            ``{"write_graph": True}`` for the graph). Defaults to `True`.
        terminate_on_nan: bool. Stops at the end of an epoch whose loss is
            NaN or infinite (:class:`StopOnNaN`). Defaults to
            `True`.
        reduce_lr: bool or dict. ReduceLROnPlateau (factor 0.5). Defaults to
            `False`.
        verbose: int. 0 or 1: messages from early stopping and learning-rate
            reduction. Defaults to `0`.

    Returns:
        list of `kdl.keras.callbacks.Callback`.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.

    Example:
        >>> cbs = standard("/tmp/run", patience=3, tensorboard=False)
        >>> [type(c).__name__ for c in cbs][-1]
        'BackupAndRestore'
    """
    func = "kdl.callbacks.standard"
    if not isinstance(run_dir, (str, os.PathLike)):
        v.fail(func, "run_dir", "a str or pathlib.Path", run_dir, error=TypeError)
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        v.fail(func, "run_dir", "a folder, not an existing file", str(run_dir))
    v.check_str(monitor, "monitor", func)
    v.check_choice(mode, "mode", func, MODES)
    v.check_int(patience, "patience", func, min_value=0)
    v.check_float(min_delta, "min_delta", func)
    v.check_bool(terminate_on_nan, "terminate_on_nan", func)
    if isinstance(verbose, bool) or verbose not in (0, 1):
        v.fail(func, "verbose", "0 or 1", verbose)

    switches = {
        "tensorboard": tensorboard,
        "reduce_lr": reduce_lr,
        "early_stopping": early_stopping,
        "checkpoint": checkpoint,
        "csv_logger": csv_logger,
        "backup": backup,
    }
    defaults = _defaults(run_dir, monitor, mode, patience, min_delta, verbose)
    result = [StopOnNaN()] if terminate_on_nan else []
    for name, switch in switches.items():
        kwargs = options(switch, name, defaults[name], func)
        if kwargs is None:
            continue
        cls = _CLASSES[name]
        try:
            result.append(cls(**kwargs))
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"The {name!r} parameter of {func} holds an option "
                f"{cls.__name__} does not accept: {err}"
            ) from err
    run_dir.mkdir(parents=True, exist_ok=True)
    return result


# The Keras callback of each piece of standard(), in their fixed order.
_CLASSES = {
    "tensorboard": keras.callbacks.TensorBoard,
    "reduce_lr": keras.callbacks.ReduceLROnPlateau,
    "early_stopping": keras.callbacks.EarlyStopping,
    "checkpoint": AtomicModelCheckpoint,
    "csv_logger": keras.callbacks.CSVLogger,
    "backup": keras.callbacks.BackupAndRestore,
}


def _defaults(run_dir: Path, monitor, mode, patience, min_delta, verbose) -> dict:
    """kdl's keyword arguments for each piece of :func:`standard`."""
    watch = {"monitor": monitor, "mode": mode, "verbose": verbose}
    return {
        # Epoch scalars only: the graph dump and per-step profiling cost
        # more than a small model's training (issue 18); a dict turns them on.
        "tensorboard": {
            "log_dir": str(run_dir / LOG_DIR),
            "profile_batch": 0,
            "write_graph": False,
        },
        "reduce_lr": {
            **watch,
            "factor": 0.5,
            "patience": max(1, patience // 2),
            "min_delta": min_delta,
            "min_lr": 1e-6,
        },
        "early_stopping": {
            **watch,
            "patience": patience,
            "min_delta": min_delta,
            "restore_best_weights": True,
        },
        "checkpoint": {
            **watch,
            "verbose": 0,
            "filepath": str(run_dir / BEST_MODEL),
            "save_best_only": True,
        },
        "csv_logger": {"filename": str(run_dir / HISTORY_CSV), "append": True},
        "backup": {"backup_dir": str(run_dir / BACKUP_DIR)},
    }
