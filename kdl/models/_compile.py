"""Task heads, losses, metrics and the optimizer factory shared by every builder."""

from __future__ import annotations

from kdl import _validation as v
from kdl import augment
from kdl._constants import TASKS
from kdl.backend import keras

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")

# task -> (head activation, loss, default metrics)
_TASK_SPECS = {
    "classification": ("softmax", "sparse_categorical_crossentropy", ("accuracy",)),
    "binary": ("sigmoid", "binary_crossentropy", ("accuracy",)),
    "regression": ("linear", "mse", ("mae",)),
}


def head_activation(task: str) -> str:
    return _TASK_SPECS[task][0]


def task_loss(task: str) -> str:
    return _TASK_SPECS[task][1]


def task_metrics(task: str, metrics=None) -> list:
    """The default metrics of ``task``, or the user's own."""
    return list(_TASK_SPECS[task][2] if metrics is None else metrics)


def make_optimizer(optimizer, learning_rate):
    """Returns a new tf_keras optimizer.

    Args:
        optimizer: "sgd", "momentum" (SGD with momentum 0.9, Nesterov), "adam",
            "rmsprop", or a ``kdl.keras.optimizers.Optimizer`` instance, used
            as given.
        learning_rate: float or a ``kdl.keras.optimizers.schedules`` schedule.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if optimizer == "momentum":
        return keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=0.9, nesterov=True
        )
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return keras.optimizers.RMSprop(learning_rate=learning_rate)


def check_common(
    func: str,
    *,
    task="classification",
    num_outputs=None,
    dropout=0.0,
    l1=0.0,
    l2=0.0,
    batch_norm=False,
    augmentation=None,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    name="model",
    input_rank=None,
    loss=None,
) -> None:
    """Validates the keyword arguments every builder shares, before any layer.

    ``input_rank`` (of one example) tells which augmentation options apply:
    image options for rank 3, sequence options otherwise.
    """
    v.check_choice(task, "task", func, TASKS)
    if num_outputs is not None:
        min_outputs = 2 if task == "classification" else 1
        v.check_int(num_outputs, "num_outputs", func, min_value=min_outputs)
    v.check_fraction(dropout, "dropout", func)
    v.check_float(l1, "l1", func)
    v.check_float(l2, "l2", func)
    v.check_bool(batch_norm, "batch_norm", func)
    check_augmentation(augmentation, func)
    if input_rank is not None:
        augment.check_options(
            augmentation, "image" if input_rank == 3 else "sequence", func
        )
    check_optimizer(optimizer, func)
    if batch_norm and _is_dp_optimizer(optimizer):
        v.fail(
            func,
            "batch_norm",
            "False with a DP optimizer (batch statistics mix examples, which "
            "breaks per-example privacy)",
            batch_norm,
        )
    check_learning_rate(learning_rate, func)
    if metrics is not None and (
        isinstance(metrics, str) or not isinstance(metrics, (list, tuple))
    ):
        v.fail(
            func,
            "metrics",
            "a tuple of metric names or objects, or None",
            metrics,
            error=TypeError,
        )
    if metrics is not None:
        for metric in metrics:
            v.check_keras2(metric, "metrics", func)
    v.check_str(name, "name", func)
    check_loss(loss, func)


def check_loss(loss, func: str) -> None:
    """``loss``: None (the task's), a loss name, or a kdl.keras loss/callable."""
    if loss is None or isinstance(loss, str):
        return
    v.check_keras2(loss, "loss", func)
    if not callable(loss):
        v.fail(func, "loss", "a loss name, a kdl.keras loss or None", loss,
               error=TypeError)  # fmt: skip


def _is_dp_optimizer(optimizer) -> bool:
    from kdl import privacy  # light: TensorFlow Privacy stays unimported

    return privacy.is_dp_optimizer(optimizer)


def check_optimizer(optimizer, func: str) -> None:
    v.check_keras2(optimizer, "optimizer", func)
    if isinstance(optimizer, keras.optimizers.Optimizer) or _is_dp_optimizer(optimizer):
        return
    v.check_choice(optimizer, "optimizer", func, OPTIMIZERS)


def check_learning_rate(learning_rate, func: str) -> None:
    v.check_keras2(learning_rate, "learning_rate", func)
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return
    v.check_float(learning_rate, "learning_rate", func, min_value=0.0, strict_min=True)


def check_augmentation(augmentation, func: str) -> None:
    v.check_keras2(augmentation, "augmentation", func)
    if augmentation is None or isinstance(augmentation, (dict, keras.layers.Layer)):
        return
    v.fail(
        func,
        "augmentation",
        "None, a dict of kdl.augment options or a kdl.keras layer",
        augmentation,
        error=TypeError,
    )


def regularizer(l1: float, l2: float):
    """An L1/L2 kernel regularizer, or None when both are zero."""
    if l1 == 0.0 and l2 == 0.0:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def compile_model(model, *, task, optimizer, learning_rate, metrics, loss=None):
    """Compiles ``model`` for ``task`` and returns it.

    Given a DP optimizer from ``kdl.privacy.dp_optimizer``, returns a private
    model instead (``kdl.privacy.compile_private``: per-example loss, privacy
    statement and accounting, like ``make_private(method="optimizer")``).
    """
    loss = task_loss(task) if loss is None else loss  # the user's, as in Keras
    if _is_dp_optimizer(optimizer):
        from kdl import privacy

        return privacy.compile_private(
            model,
            optimizer,
            loss=loss,
            metrics=task_metrics(task, metrics),
        )
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=loss,
        metrics=task_metrics(task, metrics),
    )
    return model
