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

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from kdl import _files, _history, distribute
from kdl import _run_folder as rf
from kdl import _validation as v
from kdl import callbacks as kdl_callbacks
from kdl._run_folder import DEFAULT_ROOT, HISTORY_PNG, RUN_JSON
from kdl._train_checks import check_arguments, classification_head
from kdl.backend import keep_root_logger, keras, tf

__all__ = ["train", "set_seed", "RUN_JSON", "HISTORY_PNG", "DEFAULT_ROOT"]

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


# === train: the job, checked ===


@dataclasses.dataclass
class _Job:
    """The arguments of one :func:`train` call, checked and normalised."""

    model: object
    x: object
    y: object
    validation_data: object
    validation_split: float
    epochs: int
    batch_size: int
    run_dir: object
    resume: bool
    seed: int | None
    callbacks: Sequence
    monitor: str | None
    patience: int
    switches: dict
    class_weight: Mapping | None
    shuffle: bool
    verbose: int
    strategy: object = None
    deterministic: bool = False
    fit_kwargs: dict = dataclasses.field(default_factory=dict)
    info: v.DataInfo | None = None
    data_record: dict | None = None
    holdout: dict | None = None  # how kdl held out the validation part


@dataclasses.dataclass
class _Run:
    """The run folder of a job: where, in which state, and its run.json."""

    path: Path | None
    chief: bool = True  # False for the other workers of a multi-worker run
    state: str = "new"
    record: dict | None = None
    resume_state: _history.ResumeState | None = None
    lock: rf.FolderLock | None = None


def train(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    validation_split: float = 0.0,
    epochs: int | None = None,
    batch_size: int | None = None,
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
    strategy=None,
    deterministic: bool = False,
    **fit_kwargs,
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
            validation by kdl, not by Keras (which takes the last rows):
            stratified by class at random for class targets, the last
            windows for series windows (3-D x with a regression head), at
            random otherwise; seeded with ``seed`` (0 when None). How is
            recorded in run.json ("arguments" -> "validation"); a warning
            says when the validation part lacks a class. Defaults to `0.0`.
        epochs: int or None. Total number of epochs; None: 10, or for a
            private model the epochs its noise was planned for
            (``model.privacy["epochs"]``). Defaults to `None`.
        batch_size: int or None. The global batch: for a model built in a
            tf.distribute strategy's scope, each of N replicas computes
            ``batch_size / N`` examples of a step. Ignored for datasets (they
            are batched). None: 32, or a private model's planned batch size.
            Defaults to `None`.
        run_dir: str, Path, None or False. The run folder; None makes
            ``saved_models/<model name>-<date>-<time>`` in the current
            folder; False writes nothing (no checkpoint, backup or history
            files). With several workers (MultiWorkerMirroredStrategy) give
            every worker the same folder: only the chief writes it, the
            others write their share of the backup only (see
            :mod:`kdl.distribute`). Defaults to `None`.
        resume: bool. Continue an unfinished run found in ``run_dir``.
            Defaults to `True`.
        seed: int or None. Seeds Python, NumPy and TensorFlow before
            training (shuffling and dropout; build the model after
            :func:`set_seed` to also fix its initial weights) and the
            validation split. The same meaning in every kdl function; op
            determinism is the separate ``deterministic`` switch. Defaults to
            `None`.
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
        strategy: None, a `tf.distribute.Strategy` or a name ("mirrored",
            "multi_worker", ...). A check, not a switch: TensorFlow needs the
            model built and compiled inside the strategy's scope, so build it
            with the same ``strategy=`` (every builder takes it); training a
            model built elsewhere under a strategy is refused before any
            work. None trains in whatever strategy the model was built in.
            Defaults to `None`.
        deterministic: bool. Also turn on TensorFlow's op determinism (for the
            whole process, as :func:`set_seed` does; slower). Needs ``seed``.
            Defaults to `False`.
        **fit_kwargs: other arguments of ``Model.fit`` (``sample_weight``,
            ``initial_epoch``, ``steps_per_epoch``, ``validation_steps``,
            ``validation_freq``, ...), passed on unchanged. ``sample_weight``
            with ``validation_split`` is refused (give ``validation_data``):
            kdl holds the validation part out itself.

    After training, the model is scored beside trivial baselines (see
    :mod:`kdl.baselines`) on the validation part (the training data when
    there is none): the summary line shows them, run.json stores them
    ("baselines"), and a warning says when the model does not beat the
    trivial one.

    Returns:
        The Keras ``History`` of every epoch of the run, with ``.run_dir``
        (a Path, or None when ``run_dir=False``) and ``.baselines`` (the
        dict of :func:`kdl.baselines.compute` plus "model": the model's
        score, or None for data kdl cannot score, e.g. a tf.data input).

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
    job = _Job(
        model=model,
        x=x,
        y=y,
        validation_data=validation_data,
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        run_dir=run_dir,
        resume=resume,
        seed=seed,
        callbacks=callbacks,
        monitor=monitor,
        patience=patience,
        switches={
            "early_stopping": early_stopping,
            "checkpoint": checkpoint,
            "tensorboard": tensorboard,
            "reduce_lr": reduce_lr,
        },
        class_weight=class_weight,
        shuffle=shuffle,
        verbose=verbose,
        strategy=strategy,
        deterministic=deterministic,
        fit_kwargs=fit_kwargs,
    )
    check_arguments(job)
    _hold_out_validation(job)
    with rf.FolderLock(FUNC) as lock:  # one process per run folder (issue 29)
        run = _prepare_run_folder(job, lock)
        callbacks = _build_callbacks(job, run)
        _start_session(job, run)
        with keep_root_logger():  # checkpoint writes log through absl (issue 13)
            history = _fit(job, callbacks)
        _write_results(job, run, history)
        _compare_with_baselines(job, run, history)
    return history


# === train: the run folder ===


def _prepare_run_folder(job: _Job, lock: rf.FolderLock) -> _Run:
    """Locks the run folder (the chief), decides whether the run resumes."""
    if job.run_dir is False:
        return _Run(path=None)
    if job.run_dir is None:
        path = rf.default_run_dir(job.model.name)
    else:
        path = Path(job.run_dir)
    chief = distribute.is_chief(job.model.distribute_strategy)
    if chief:  # the other workers of a multi-worker run share the folder
        lock.acquire(path)
    run = _Run(path=path, chief=chief, state=rf.run_state(path), lock=lock)
    if run.state == "foreign":
        v.fail(
            FUNC,
            "run_dir",
            "a new or empty folder, or a kdl run folder (it holds files but no "
            "run.json)",
            str(path),
        )
    if run.state == "unfinished" and job.resume:
        run.record = _files.read_json(path / RUN_JSON)
        old = run.record.get("data", {}).get("sha256")
        new = job.data_record["sha256"]
        if old and new and old != new:
            raise ValueError(
                f"The 'x' parameter of {FUNC} must be the data of the run being "
                f"resumed in {str(path)!r} (sha256 {old[:12]}...). Got data with "
                f"sha256 {new[:12]}... instead. Pass resume=False to start a new "
                "run (the old one is moved aside) or use another run_dir."
            )
    return run


def _arguments(job: _Job) -> dict:
    """The arguments run.json records."""
    return {
        "epochs": job.epochs,
        "batch_size": job.batch_size,
        "validation_split": job.validation_split,
        "validation": job.holdout,
        "resume": job.resume,
        "seed": job.seed,
        "monitor": job.monitor,
        "patience": job.patience,
        **job.switches,
        "class_weight": job.class_weight,
        "shuffle": job.shuffle,
        "callbacks": [type(cb).__name__ for cb in job.callbacks],
    }


def _start_session(job: _Job, run: _Run) -> None:
    """Moves an earlier run aside if needed and records the new session."""
    if run.path is None or not run.chief:
        return
    if run.record is None and run.state in ("unfinished", "finished"):
        moved = run.lock.move_aside()
        if job.verbose:
            print(f"kdl.train: moved the earlier run in {run.path} to {moved}")
    if run.record is None:
        run.record = rf.new_record(
            job.model, seed=job.seed, arguments=_arguments(job), data=job.data_record
        )
    resuming = bool(run.record["sessions"])
    run.record["sessions"].append(
        # A resumed session learns its first epoch from the backup.
        {"started": rf.now(), "initial_epoch": None if resuming else 0}
    )
    run.record["status"] = "running"
    _files.write_json(run.path / RUN_JSON, run.record)
    if job.verbose:
        what = "resuming the unfinished run in" if resuming else "run folder"
        print(f"kdl.train: {what} {run.path}")


# === train: callbacks, fit, results ===


def _build_callbacks(job: _Job, run: _Run) -> list:
    """kdl's standard callbacks around the user's, the backup last."""
    if run.path is None:
        early = kdl_callbacks.options(
            job.switches["early_stopping"],
            "early_stopping",
            {"monitor": job.monitor, "patience": job.patience},
            FUNC,
        )
        if early is None:
            return list(job.callbacks)
        early.setdefault("restore_best_weights", True)
        return [
            kdl_callbacks.StopOnNaN(),
            keras.callbacks.EarlyStopping(**early),
            *job.callbacks,
        ]
    standard = kdl_callbacks.standard(
        run.path,
        monitor=job.monitor,
        patience=job.patience,
        verbose=1 if job.verbose else 0,
        csv_logger=run.chief,  # other workers read the chief's history
        **job.switches,
    )
    backups = [c for c in standard if isinstance(c, keras.callbacks.BackupAndRestore)]
    others = [c for c in standard if c not in backups]
    run.resume_state = _history.ResumeState(
        run.path / kdl_callbacks.HISTORY_CSV,
        others + list(job.callbacks),
        read_only=not run.chief,
    )
    return [run.resume_state, *others, *job.callbacks, *backups]


def _fit(job: _Job, callbacks: list):
    if job.seed is not None:
        set_seed(job.seed, deterministic=job.deterministic)
    return job.model.fit(
        job.x,
        job.y,
        validation_data=job.validation_data,
        validation_split=0.0 if job.holdout else job.validation_split,
        epochs=job.epochs,
        batch_size=None if job.info.is_dataset else job.batch_size,
        callbacks=callbacks,
        class_weight=job.class_weight,
        shuffle=job.shuffle,
        verbose=job.verbose,
        **job.fit_kwargs,
    )


def _write_results(job: _Job, run: _Run, history) -> None:
    """Merges earlier sessions into ``history`` and finishes run.json and the plot."""
    history.run_dir = run.path
    if run.path is None:
        return
    _history.merge_history(history, run.resume_state.kept_rows)
    if not run.chief:
        return
    backup = run.path / kdl_callbacks.BACKUP_DIR
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()  # BackupAndRestore empties it at the end
    rows = _history.read_history(run.path / kdl_callbacks.HISTORY_CSV)
    if rows:
        _history.plot_history(rows, run.path / HISTORY_PNG)
    record = run.record
    record["sessions"][-1]["initial_epoch"] = run.resume_state.initial_epoch
    record.update(rf.results(history, job.monitor, job.epochs))
    record["status"] = "finished"
    record["finished"] = rf.now()
    _files.write_json(run.path / RUN_JSON, record)
    if job.verbose:
        best = record["best_metrics"] or {}
        where = (
            ""
            if record["best_epoch"] is None
            else (f" at epoch {record['best_epoch'] + 1}")
        )
        print(
            f"kdl.train: {record['epochs_completed']} epochs; best {job.monitor} "
            f"{best.get(job.monitor)}{where}; files in {run.path}"
        )


# === train: the validation part and the baselines (issue 23) ===

REGRESSION_LOSSES = ("mse", "mean_squared_error", "mae", "mean_absolute_error")


def _task_of(model) -> str | None:
    """ "classification", "binary", "regression" or None, from the compiled loss."""
    task, _ = classification_head(model)
    if task is not None:
        return task
    loss = model.loss
    if not isinstance(loss, str):
        loss = getattr(loss, "name", None) or getattr(loss, "__name__", "")
    if len(getattr(model, "outputs", None) or []) == 1 and loss in REGRESSION_LOSSES:
        return "regression"
    return None


def _hold_out_validation(job: _Job) -> None:
    """Holds out ``validation_split`` of array data the honest way (kdl._holdout).

    Keras' own split takes the last rows unshuffled: one class only on data
    sorted by class.
    """
    if (
        job.validation_split <= 0
        or job.validation_data is not None
        or job.info.is_dataset
        or job.y is None
    ):
        return
    from kdl import _holdout

    parts = _holdout.split(
        job.x,
        job.y,
        job.validation_split,
        seed=0 if job.seed is None else job.seed,
        task=_task_of(job.model),
        func=FUNC,
    )
    job.x, job.y, job.validation_data = parts.x, parts.y, parts.validation
    job.holdout = parts.record


def _evaluation_part(job: _Job) -> tuple:
    """(x, y, on): the validation part, or the training data without one."""
    parts = job.validation_data
    if isinstance(parts, tuple) and len(parts) >= 2 and parts[1] is not None:
        return parts[0], parts[1], "the validation part"
    return job.x, job.y, "the training data (no validation part)"


def _compare_with_baselines(job: _Job, run: _Run, history) -> None:
    """Scores the model beside kdl.baselines; records, prints, warns."""
    history.baselines = None
    task = _task_of(job.model)
    x_eval, y_eval, on = _evaluation_part(job)
    if task is None or job.info.is_dataset or not hasattr(y_eval, "shape"):
        return  # a dataset, or several outputs: nothing kdl can score here
    from kdl import baselines

    try:
        result = baselines.compute(
            job.x, job.y, x_eval, y_eval, task=task, target_column="auto", on=on
        )
        result["model"] = baselines.model_score(job.model, x_eval, y_eval, task)
        job.model.history = history  # predict() replaced fit's History there
    except (ValueError, TypeError) as err:  # a baseline never fails a finished run
        warnings.warn(f"{FUNC}: no baselines ({err})", UserWarning, stacklevel=3)
        return
    history.baselines = result
    if run.path is not None and run.chief and run.record is not None:
        run.record["baselines"] = result
        _files.write_json(run.path / RUN_JSON, run.record)
    if job.verbose:
        print(f"kdl.train: {baselines.describe(result, result['model'])}")
    if not baselines.beats(result, result["model"]):
        warnings.warn(
            f"{FUNC}: the model does not beat the trivial baseline "
            f"({baselines.describe(result, result['model'])}). Train longer, "
            "change the model, or check the data.",
            UserWarning,
            stacklevel=3,
        )
