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
from kdl.privacy import _fresh, _pipeline

__all__ = [
    "FIT",
    "SessionRecorder",
    "begin_session",
    "end_session",
    "check_selection",
    "target_task",
    "iterations",
    "snapshot",
    "void_reason",
    "close_outside_fit",
    "remember_weights",
    "adopt_known",
    "batch_rows",
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


def _leaves(x, y, stop=None) -> list:
    """The arrays of x and y (one row per example), rows [:stop]."""
    leaves = [np.asarray(t) for t in tf.nest.flatten(x)]
    leaves += [] if y is None else [np.asarray(t) for t in tf.nest.flatten(y)]
    return [leaf[:stop] for leaf in leaves]


def _check_finite(dataset, func):
    if int(dataset.cardinality().numpy()) == tf.data.INFINITE_CARDINALITY:
        v.fail(
            func,
            "x",
            "a finite tf.data.Dataset for a private model (one pass is one "
            "epoch; the privacy accounting counts the examples it samples "
            "from): drop .repeat() and let epochs repeat the data",
            "an infinite dataset",
        )


def _count_dataset(dataset, func):
    """(rows of one pass, largest batch, label arrays): the rows as their
    fingerprints in order, repeats included.

    Distinct examples, not elements: a dataset that repeats its data inside
    one epoch samples from fewer examples than it yields, and counting the
    repeats would understate epsilon.
    """
    _check_finite(dataset, func)
    prints, biggest, labels = [], 0, []
    for batch in dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        leaves = _leaves(x, y)
        biggest = max(biggest, int(np.shape(leaves[0])[0]))
        prints.append(_pipeline.row_prints(leaves))
        if y is not None and len(tf.nest.flatten(y)) == 1:
            labels.append(leaves[-1])
    prints = np.concatenate(prints) if prints else np.zeros([0], np.int64)
    return prints, biggest, labels


def _check_labels(model, y, func):
    task, num_classes = target_task(model)
    v.check_targets(func, y, task=task, num_classes=num_classes)


def _examples(model, x, y, info, batch_size, validation_split, given, func):
    """(row fingerprints of one pass in order, repeats included; batch size)."""
    if info.is_dataset:
        _check_finite(x, func)
        uncountable = _pipeline.uncountable_ops(x)
        if uncountable and given is None:
            _pipeline.refuse_uncountable(func, uncountable)
        prints, batch, labels = _count_dataset(x, func)
        if labels:
            _check_labels(model, np.concatenate(labels), func)
        if len(prints) == 0:
            v.fail(func, "x", "a dataset with at least one example", "no examples")
        return prints, batch
    _check_labels(model, y, func)
    n_train = int(math.floor(info.num_examples * (1.0 - validation_split)))
    # Distinct rows, as for a tf.data dataset (issue 30): a row given three
    # times is one example sampled three times as often.
    prints = _pipeline.row_prints(_leaves(x, y, n_train))
    return prints, min(batch_size or 32, n_train)  # Keras' default: 32


def _copies(prints, counted, given, func) -> dict:
    """The examples, elements per pass and the most copies of one example in
    a pass (issue 30, third round): counted, the largest count of one row
    fingerprint; with ``num_examples`` given, at least ceil(elements / given),
    an assumption the caller makes by giving it (each of the given examples
    at most that many times per pass)."""
    if given is not None and given > counted:
        # More examples than distinct rows would understate epsilon.
        v.fail(func, "num_examples", f"at most the {counted} distinct rows the "
               "data holds (the distinct private examples it was made from)",
               given)  # fmt: skip
    elements, copies = len(prints), _pipeline.most_copies(prints)
    assumed = 0 if given is None else math.ceil(elements / given)
    return {
        "num_examples": counted if given is None else given,
        "num_examples_given": given is not None,
        "elements": elements,
        "multiplicity": max(copies, assumed),
        "multiplicity_assumed": assumed > copies,
    }


def _is_sequence(data) -> bool:
    """A Keras ``Sequence`` (or a Keras 3 ``PyDataset``): batches from code."""
    names = {cls.__name__ for cls in type(data).__mro__}
    return isinstance(data, keras.utils.Sequence) or "PyDataset" in names


def _refuse_sequences(func, x, validation_data) -> None:
    """A Sequence's batches are made by code kdl cannot see (review of issue
    30: it failed deep in NumPy): its rows cannot be counted as examples."""
    for arg, data in (("x", x), ("validation_data", validation_data)):
        if _is_sequence(data):
            v.fail(func, arg, "arrays or a finite tf.data.Dataset for a private "
                   "model, not a keras.utils.Sequence: its batches are made by "
                   "your code (augmentation, sampling), so kdl cannot count the "
                   "distinct private examples nor check validation rows against "
                   "training rows. Pass the arrays it reads, or a tf.data "
                   "pipeline (with fit(..., num_examples=) if it augments)",
                   type(data).__name__, error=TypeError)  # fmt: skip


def begin_session(model, x, y, *, batch_size, validation_split, validation_data,
                  callbacks, num_examples=None, func=FIT) -> dict:  # fmt: skip
    """Checks a private ``fit`` before any work; returns its session record."""
    _refuse_sequences(func, x, validation_data)
    info = v.check_data(
        func,
        x,
        y,
        validation_data=validation_data,
        validation_split=validation_split,
    )
    given = v.check_int(num_examples, "num_examples", func, allow_none=True)
    monitors = check_selection(callbacks, func)
    prints, batch = _examples(
        model, x, y, info, batch_size, validation_split, given, func
    )
    rows = set(prints.tolist())
    counted = _copies(prints, len(rows), given, func)
    # Rows earlier sessions (fit or train_on_batch) trained on count as
    # training rows too: validating on them selects on training data
    # (review of issue 30, item 8). Kept for the model's life in this
    # process, and in its saved files (third round).
    earlier = trained_rows(model) | model.kdl_ledger.seg_rows
    _pipeline.check_overlap(func, rows | earlier, x, y, info, validation_split,
                            validation_data)  # fmt: skip
    object.__setattr__(model, "kdl_trained_rows", earlier | rows)
    close_outside_fit(model)
    return {
        **counted,
        "batch_size": batch,
        "steps": 0,
        "restored_steps": 0,
        "start_iteration": iterations(model),
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


def trained_rows(model) -> set:
    """The row fingerprints every earlier private session of ``model``
    trained on (in this process, or kept in the .keras file it was loaded
    from)."""
    return set(getattr(model, "kdl_trained_rows", None) or ())


# At most this many training rows' fingerprints (8 bytes each: 8 MB) go into
# a saved .keras file; beyond it the statement says the check is not kept.
ROWS_CAP = 1_000_000
ROWS_FILE = "kdl_trained_rows.bin"


def unchecked_rows(model) -> int:
    """Training rows whose fingerprints a loaded model lost: the file kept
    none (over :data:`ROWS_CAP`, or a format without assets: .h5,
    SavedModel), so validation data is not checked against them."""
    state = getattr(model, "kdl_rows_state", None) or {}
    lost = state.get("saved", 0) - state.get("loaded", 0)
    return int(state.get("unchecked", 0)) + max(0, int(lost))


def _all_rows(model) -> set:
    """The training rows of every session, train_on_batch's open one too."""
    rows = getattr(model, "kdl_trained_rows", None) or set()
    ledger = getattr(model, "kdl_ledger", None)
    return rows | ledger.seg_rows if ledger is not None and ledger.seg_rows else rows


# The rows of the configs written lately in this process, by digest: a copy
# made through the config (one-shot pruning's copy) gets them back.
_RECENT_ROWS: dict[str, np.ndarray] = {}


def _sorted_rows(rows) -> np.ndarray:
    return np.sort(np.fromiter(rows, np.int64, len(rows))).astype("<i8")


def rows_config(model) -> dict:
    """What the model's config says of its training rows' fingerprints."""
    rows = _all_rows(model)
    count = len(rows)
    kept = count <= ROWS_CAP
    config = {"saved": count if kept else 0,
              "unchecked": unchecked_rows(model) + (0 if kept else count)}  # fmt: skip
    if count and kept:
        values = _sorted_rows(rows)  # 8 bytes a row, not a Python set's ~60
        digest = hashlib.blake2b(values.tobytes(), digest_size=16)
        config["digest"] = digest.hexdigest()
        _RECENT_ROWS[config["digest"]] = values
        while len(_RECENT_ROWS) > 4:
            _RECENT_ROWS.pop(next(iter(_RECENT_ROWS)))
    return config


def restore_rows(model, config: dict) -> None:
    """Sets what a config says of the rows on a model made from it: the rows
    themselves when this process wrote that config (an in-process copy),
    else lost until :func:`load_rows` reads them from the file's assets."""
    state = {"saved": int(config.get("saved", 0)),
             "unchecked": int(config.get("unchecked", 0))}  # fmt: skip
    rows = _RECENT_ROWS.get(config.get("digest"))
    if rows is not None:
        object.__setattr__(model, "kdl_trained_rows", set(rows.tolist()))
        state["loaded"] = state["saved"]
    object.__setattr__(model, "kdl_rows_state", state)


def carry_rows(source, target) -> None:
    """Gives ``target``, a new private model that continues ``source``'s
    sessions (private fine-tuning, make_private(public_pretraining=True)),
    the rows ``source`` trained on, for its validation check."""
    rows = _all_rows(source)
    if rows:
        object.__setattr__(target, "kdl_trained_rows", set(rows))
    lost = unchecked_rows(source)
    if lost:
        object.__setattr__(target, "kdl_rows_state", {"unchecked": lost})


def save_rows(model, folder) -> None:
    """Writes the training rows' fingerprints (sorted int64, little-endian)
    into a .keras file's assets, when at most :data:`ROWS_CAP`."""
    rows = _all_rows(model)
    if 0 < len(rows) <= ROWS_CAP:
        (Path(folder) / ROWS_FILE).write_bytes(_sorted_rows(rows).tobytes())


def load_rows(model, folder) -> None:
    """Reads what :func:`save_rows` wrote (raw integers: nothing to parse)."""
    path = Path(folder) / ROWS_FILE
    state = dict(getattr(model, "kdl_rows_state", None) or {})
    if not path.is_file() or path.stat().st_size != 8 * state.get("saved", 0):
        return
    values = np.frombuffer(path.read_bytes(), dtype="<i8")
    object.__setattr__(model, "kdl_trained_rows", set(values.tolist()))
    state["loaded"] = len(values)
    object.__setattr__(model, "kdl_rows_state", state)


def batch_rows(x, y) -> tuple[set, int]:
    """The row fingerprints of one train_on_batch call's x and y, and the
    most copies of one row in it."""
    prints = _pipeline.row_prints(_leaves(x, y))
    return set(prints.tolist()), _pipeline.most_copies(prints)


def _outside_fit(segment: dict) -> dict:
    """A session of steps no fit ran (train_on_batch, a custom loop): its
    examples are the distinct rows train_on_batch gave them (None: unknown)."""
    return {
        "num_examples": segment.get("rows"),
        "batch_size": segment["batch_size"],
        "steps": segment["steps"],
        "epochs": 0,
        "outside_fit": True,
        "noise_multiplier": segment["noise_multiplier"],
        "l2_norm_clip": segment["l2_norm_clip"],
        "multiplicity": segment.get("multiplicity") or 1,
    }


def close_outside_fit(model) -> None:
    """Turns the steps taken since the last fit into a session of their own."""
    segment = model.kdl_ledger.close_segment()
    if segment["steps"]:
        sessions = list(model.privacy.get("sessions") or [])
        model.privacy["sessions"] = sessions + [_outside_fit(segment)]


def _known(model) -> list:
    return list(model.privacy.get("fingerprints") or [])


def remember_weights(model, fingerprint: str) -> None:
    """Adds weights a DP step produced (an epoch's end) to the known ones."""
    known = _known(model)
    if fingerprint not in known:
        model.privacy["fingerprints"] = (known + [fingerprint])[-1000:]


def adopt_known(model) -> None:
    """Takes the current weights as the last DP step's when a DP step made
    them (EarlyStopping restored an epoch's weights, a backup was loaded)."""
    current = model.kdl_ledger.current_hex(model)
    if current in _known(model):
        model.kdl_ledger.adopt(model)


def void_reason(model) -> str | None:
    """Why the weights are not the ones the recorded DP steps produced."""
    ledger = model.kdl_ledger
    foreign = int(ledger.foreign.numpy())
    if foreign:
        return (
            f"{foreign} DP step(s) started from weights that no DP step "
            "produced (changed by set_weights, load_weights or training "
            "through another model sharing the layers)"
        )
    current = model.kdl_ledger.current_hex(model)
    # An earlier epoch's weights are the DP steps' only while fit runs (a
    # restore kdl adopts at its end); set afterwards, they were selected by
    # something kdl did not see (review of issue 30, item 11).
    during_fit = getattr(model, "kdl_open_session", None) is not None
    known = _known(model) if during_fit else []
    if current != ledger.weights_hex() and current not in known:
        return (
            "the weights were changed after the last DP step by something "
            "other than DP-SGD (set_weights, load_weights, or training "
            "through another model sharing the layers)"
        )
    return None


def snapshot(model) -> dict:
    """The model's privacy record now: settings, every session (the open one
    too), the ledger's state and, when the weights are not the DP steps',
    why the statement is void."""
    params = dict(model.privacy)
    sessions = [dict(one) for one in params.get("sessions") or []]
    segment = model.kdl_ledger.segment()
    if segment["steps"]:
        running = model.kdl_open_session
        if running is None:
            sessions.append(_outside_fit(segment))
        else:  # saved during fit, e.g. a best-model checkpoint
            sessions.append(_closed(dict(running), segment))
    params["sessions"] = sessions
    params["ledger"] = model.kdl_ledger.state()
    lost, count = unchecked_rows(model), len(_all_rows(model))
    if lost:  # loaded from a file that did not keep them
        params["rows_unchecked"] = lost
    if count > ROWS_CAP:  # a file saved now will not keep them
        params["rows_not_saved"] = count
    reason = params.get("void") or void_reason(model)
    if reason:
        params["void"] = reason
    return params


def _closed(session: dict, segment: dict) -> dict:
    """``session`` with the steps, batch and noise its steps recorded."""
    session["steps"] = segment["steps"] + session["restored_steps"]
    if segment["steps"]:
        session["batch_size"] = segment["batch_size"]
        session["noise_multiplier"] = segment["noise_multiplier"]
        if segment["l2_norm_clip"] is not None:  # the clip the steps used
            session["l2_norm_clip"] = segment["l2_norm_clip"]
    return session


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
        record = (read_json(path) if path is not None else None) or {}
        reached = max(self.start, int(record.get("steps", 0)))
        # Steps beyond the optimizer's count when fit began were taken by
        # another process: a run resumed from a backup (up to the most the
        # crashed process reached). They are counted with this session's data.
        start = self.session["start_iteration"]
        self.session["restored_steps"] = max(0, reached - start)
        if record.get("fingerprint"):
            # The backup's weights, written at an epoch's end by a DP step.
            remember_weights(self.model, record["fingerprint"])
            adopt_known(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.session["epochs"] += 1
        if self.session["first_epoch"] is None:
            self.session["first_epoch"] = epoch + 1
        self.session["last_epoch"] = epoch + 1
        if any(type(cb).__name__ == "UpdatePruningStep" for cb in self.callbacks):
            # TF-MOT applies its masks to the weights at each epoch's end: a
            # function of the DP step's weights and masks alone (issue 16).
            self.model.kdl_ledger.adopt(self.model)
        remember_weights(self.model, self.model.kdl_ledger.weights_hex())
        self.save_reached()

    def save_reached(self, crashed=False):
        """Writes the steps reached so far, while the backup folder exists.

        After a crash the fingerprint stays the last epoch end's: the backup
        BackupAndRestore resumes from holds those weights, not the ones the
        interrupted epoch reached (review of issue 30, E1/E2)."""
        path = self.steps_file()
        if path is None or not path.parent.is_dir():
            return  # no backup, or BackupAndRestore removed it at the end
        previous = read_json(path) or {}
        steps = max(iterations(self.model), int(previous.get("steps", 0)))
        fingerprint = self.model.kdl_ledger.weights_hex()
        if crashed and previous.get("fingerprint"):
            fingerprint = previous["fingerprint"]
        write_json(path, {"steps": steps, "fingerprint": fingerprint})

    def restored(self) -> bool:
        """Whether an EarlyStopping (checked by check_selection: held-out
        monitor) restored its best weights; any other callback that sets an
        earlier epoch's weights selected them unseen (review 30, item 11)."""
        return any(
            isinstance(cb, keras.callbacks.EarlyStopping)
            and cb.restore_best_weights
            and cb.best_weights is not None
            for cb in self.callbacks
        )

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
    segment = model.kdl_ledger.close_segment()
    if recorder.start is None:  # fit stopped before training began
        return
    recorder.save_reached(crashed=True)  # the resumed run counts these steps
    _closed(session, segment)
    session["end_iteration"] = iterations(model)
    session["kept_epoch"] = recorder.kept_epoch()
    if recorder.restored():  # EarlyStopping put back an earlier epoch's weights
        adopt_known(model)
    _fresh.remember_trained(model)  # a copy of them is not a fresh start
    if session["steps"] == 0 and session["epochs"] == 0:
        return
    model.privacy["sessions"] = list(model.privacy.get("sessions") or []) + [session]
