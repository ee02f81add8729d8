"""kdl.train's checks: every argument, before any work or file write.

Split from :mod:`kdl.training` (issue 27: no module over 600 lines). Each
check reads and normalizes the fields of kdl.train's job record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from kdl import _keras_names, distribute
from kdl import _run_folder as rf
from kdl import _validation as v
from kdl import callbacks as kdl_callbacks
from kdl.backend import keras
from kdl.models import _strategy

__all__ = ["check_arguments", "classification_head"]

FUNC = "kdl.train"
# fit arguments train sets from its own parameters (the rest pass on).
OWNED = ("x", "y", "validation_data", "validation_split", "epochs", "batch_size",
         "callbacks", "class_weight", "shuffle", "verbose")  # fmt: skip


def check_arguments(job) -> None:
    """Every check, before any work or file write (issue 10: one validation layer)."""
    v.check_keras_model(job.model, "model", FUNC)
    if getattr(job.model, "optimizer", None) is None:
        v.fail(
            FUNC,
            "model",
            "a compiled kdl.keras.Model (call model.compile, or use a kdl builder)",
            job.model.name,
        )
    _planned_defaults(job)
    job.epochs = v.check_int(job.epochs, "epochs", FUNC, min_value=1)
    job.batch_size = v.check_int(job.batch_size, "batch_size", FUNC, min_value=1)
    job.validation_split = v.check_fraction(
        job.validation_split, "validation_split", FUNC
    )
    v.check_bool(job.resume, "resume", FUNC)
    job.seed = v.check_int(job.seed, "seed", FUNC, min_value=0, allow_none=True)
    v.check_int(job.patience, "patience", FUNC, min_value=0)
    v.check_str(job.monitor, "monitor", FUNC, allow_none=True)
    v.check_bool(job.shuffle, "shuffle", FUNC)
    job.verbose = v.check_verbose(job.verbose, FUNC)
    if job.class_weight is not None and not isinstance(job.class_weight, Mapping):
        v.fail(
            FUNC, "class_weight", "a dict or None", job.class_weight, error=TypeError
        )
    for name, value in job.switches.items():
        kdl_callbacks.options(value, name, {}, FUNC)  # True, False or a dict
    _check_callbacks(job.callbacks)
    _check_fit_extras(job)
    _check_strategy(job)
    _check_run_dir(job.run_dir)
    if job.run_dir is None and distribute.is_multi_worker(
        job.model.distribute_strategy
    ):
        v.fail(
            FUNC,
            "run_dir",
            "a folder every worker reaches under the same name when the model "
            "trains on several workers (the default name holds the start time)",
            None,
        )
    _check_training_data(job)
    _check_input_shape(job.model, job.x)
    _check_monitor(job)


def _planned_defaults(job) -> None:
    """epochs / batch_size left None: 10 / 32, or the plan a private model's
    noise was calibrated for (issue 23; kdl.privacy.make_private records it)."""
    plan = getattr(job.model, "privacy", None)
    plan = plan if isinstance(plan, dict) else {}
    if job.epochs is None:
        job.epochs = plan.get("epochs") or 10
    if job.batch_size is None:
        job.batch_size = plan.get("batch_size") or 32


def _check_strategy(job) -> None:
    if job.strategy is None:
        return
    wanted = _strategy.resolve_kind(job.strategy, FUNC)
    built = job.model.distribute_strategy
    if not _strategy.same_kind(built, wanted):
        v.fail(
            FUNC,
            "strategy",
            f"the strategy the model was built in ({type(built).__name__}): build "
            "it with the same strategy= (e.g. kdl.build_cnn(..., strategy=s))",
            job.strategy,
        )


def _check_callbacks(callbacks) -> None:
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        v.fail(
            FUNC,
            "callbacks",
            "a list or tuple of kdl.keras callbacks",
            callbacks,
            error=TypeError,
        )
    for cb in callbacks:
        v.check_keras2(cb, "callbacks", FUNC)
        if not isinstance(cb, keras.callbacks.Callback):
            v.fail(
                FUNC,
                "callbacks",
                "a list of kdl.keras.callbacks.Callback",
                cb,
                error=TypeError,
            )


def _check_fit_extras(job) -> None:
    """``deterministic`` and the ``fit`` arguments passed on (issue 31)."""
    v.check_bool(job.deterministic, "deterministic", FUNC)
    if job.deterministic and job.seed is None:
        v.fail(FUNC, "seed", "given with deterministic=True", None)
    job.fit_kwargs = _keras_names.check_fit_kwargs(job.fit_kwargs, FUNC, OWNED)
    if job.fit_kwargs.get("sample_weight") is not None and job.validation_split:
        v.fail(FUNC, "sample_weight", "left out with validation_split (kdl holds "
               "the split out itself; give validation_data instead)",
               "an array")  # fmt: skip


def _check_run_dir(run_dir) -> None:
    if run_dir is None or run_dir is False:
        return
    if not isinstance(run_dir, (str, os.PathLike)):
        v.fail(
            FUNC,
            "run_dir",
            "a str, pathlib.Path, None or False",
            run_dir,
            error=TypeError,
        )
    path = v.check_path(run_dir, "run_dir", FUNC)
    if path.exists() and not path.is_dir():
        v.fail(FUNC, "run_dir", "a folder, not an existing file", str(path))


def _check_training_data(job) -> None:
    """The shared data check, class targets against the model, the data record."""
    info = v.check_data(
        FUNC,
        job.x,
        job.y,
        validation_data=job.validation_data,
        validation_split=job.validation_split,
        y_required=False,
    )
    task, num_classes = classification_head(job.model)
    if task is not None:
        v.check_targets(FUNC, job.y, task=task, num_classes=num_classes)
        if isinstance(info.validation_data, tuple):
            v.check_targets(
                FUNC,
                info.validation_data[1],
                task=task,
                num_classes=num_classes,
                arg="validation_data",
            )
    job.info = info
    job.validation_data = info.validation_data
    parts = info.validation_data
    if isinstance(parts, tuple):
        parts = [
            (part, v.check_data(FUNC, part, y_required=False).x_leaves)
            for part in parts
        ]
    job.data_record = rf.describe_data(job.x, job.y, info, parts)


def _check_input_shape(model, x) -> None:
    """Refuses examples of another shape than a built one-input model takes,
    naming both shapes, before fit starts (Keras' own error is many lines)."""
    shape = getattr(x, "shape", None)
    if shape is None or not getattr(model, "built", False):
        return
    try:
        wanted = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return
    if not isinstance(wanted, tuple) or any(isinstance(w, tuple) for w in wanted):
        return  # several inputs: Keras checks them
    wanted, given = tuple(wanted[1:]), tuple(int(d) for d in shape[1:])
    if given == wanted[:-1] and wanted[-1:] == (1,):
        return  # Keras adds the last axis of size 1 itself
    if len(wanted) != len(given) or any(
        w is not None and w != g for w, g in zip(wanted, given)
    ):
        v.fail(
            FUNC,
            "x",
            f"examples of shape {wanted}, the shape the model takes",
            f"examples of shape {given}",
        )


def classification_head(model) -> tuple[str | None, int | None]:
    """("classification", K), ("binary", None), or (None, None) when unknown.

    Read from the loss the model was compiled with: kdl's builders compile
    class outputs with sparse categorical or binary cross-entropy. Models with
    several outputs, or any other loss, are not checked (issue 11).
    """
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        return None, None
    loss = model.loss
    if not isinstance(loss, str):
        loss = getattr(loss, "name", None) or getattr(loss, "__name__", "")
    units = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if loss == "sparse_categorical_crossentropy" and isinstance(units, int):
        return "classification", units
    if loss == "binary_crossentropy":
        return "binary", None
    return None, None


def _check_monitor(job) -> None:
    has_validation = job.validation_data is not None or job.validation_split > 0
    if job.monitor is None:
        job.monitor = "val_loss" if has_validation else "loss"
    elif job.monitor.startswith("val_") and not has_validation:
        v.fail(
            FUNC,
            "monitor",
            "a training quantity (e.g. 'loss') when there is no validation data",
            job.monitor,
        )
