"""Multi-task models: one shared trunk, one head per task."""

from __future__ import annotations

from kdl import _keras_names
from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy
from kdl.models.cnn import POOLS, cnn_body
from kdl.models.mlp import mlp_body
from kdl.models.resnet import resnet_body
from kdl.models.rnn import CELLS, rnn_body

FUNC = "build_multitask"
TRUNKS = {"mlp": mlp_body, "cnn": cnn_body, "resnet": resnet_body, "rnn": rnn_body}
_TRUNK_RANKS = {"mlp": (1, 2, 3), "cnn": (2, 3), "resnet": (2, 3), "rnn": (2,)}
# trunk_kwargs the trunks accept, and how each is checked
_INT_TUPLES = ("filters", "dense_units", "stages", "units")
_TRUNK_ARGS = {
    "mlp": ("dense_units", "activation"),
    "cnn": (
        "filters",
        "kernel_size",
        "pooling",
        "dense_units",
        "global_pool",
        "activation",
    ),
    "resnet": ("stages", "filters", "kernel_size", "activation"),
    "rnn": ("cell", "units", "bidirectional"),
}


# old trunk_kwargs key -> (its name in the trunk's builder, why; issue 31)
_RENAMED = {
    "hidden_units": ("dense_units", "kdl's one name for dense widths"),
    "pool": ("pooling", "the Keras name, as build_cnn"),
}


def _renamed_trunk_kwargs(trunk_kwargs: dict) -> dict:
    """Deprecated keys (``hidden_units``, ``pool``) read under their new names."""
    kwargs = dict(trunk_kwargs)
    for old, (new, note) in _RENAMED.items():
        if old in kwargs:
            value = kwargs.pop(old)
            kwargs[new] = _keras_names.renamed(
                FUNC, f"trunk_kwargs[{old!r}]", f"trunk_kwargs[{new!r}]",
                value, kwargs.get(new, value), value, note=note,
            )  # fmt: skip
    return kwargs


def _check_trunk_kwargs(trunk, trunk_kwargs):
    if trunk_kwargs is None:
        return {}
    if not isinstance(trunk_kwargs, dict):
        v.fail(FUNC, "trunk_kwargs", "a dict or None", trunk_kwargs, error=TypeError)
    trunk_kwargs = _renamed_trunk_kwargs(trunk_kwargs)
    allowed = _TRUNK_ARGS[trunk]
    for key, value in trunk_kwargs.items():
        if key not in allowed:
            v.fail(
                FUNC,
                "trunk_kwargs",
                f"a dict with keys among {list(allowed)} for trunk {trunk!r}",
                trunk_kwargs,
            )
        arg = f"trunk_kwargs[{key!r}]"
        if key in _INT_TUPLES:
            v.check_int_tuple(
                value, arg, FUNC, min_len=0 if key == "dense_units" else 1
            )
        elif key == "kernel_size":
            v.check_int(value, arg, FUNC)
        elif key == "pooling":
            v.check_choice(value, arg, FUNC, (*POOLS, "avg"))
        elif key == "cell":
            v.check_choice(value, arg, FUNC, CELLS)
        elif key == "activation":
            v.check_activation(value, arg, FUNC)
        else:
            v.check_bool(value, arg, FUNC)
    kwargs = dict(trunk_kwargs)
    if "pooling" in kwargs:  # cnn_body's own name; Keras' "avg" is "average"
        kwargs["pool"] = {"avg": "average"}.get(kwargs["pooling"], kwargs["pooling"])
        del kwargs["pooling"]
    for key in _INT_TUPLES:
        if key in kwargs:
            kwargs[key] = v.check_int_tuple(kwargs[key], key, FUNC, min_len=0)
    if trunk == "resnet":
        stages = kwargs.get("stages", (2, 2, 2))
        filters = kwargs.get("filters", (16, 32, 64))
        if len(stages) != len(filters):
            v.fail(
                FUNC, "trunk_kwargs", "stages and filters of equal length", trunk_kwargs
            )
    return kwargs


def _check_tasks(tasks):
    if not isinstance(tasks, dict) or not tasks:
        v.fail(
            FUNC,
            "tasks",
            'a non-empty dict like {"digit": ("classification", 10)}',
            tasks,
            error=TypeError if not isinstance(tasks, dict) else ValueError,
        )
    for key, spec in tasks.items():
        if not isinstance(key, str) or not key.isidentifier():
            v.fail(FUNC, "tasks", "a dict whose keys are identifiers", key)
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            v.fail(
                FUNC,
                f"tasks[{key!r}]",
                "a pair (task, num_outputs)",
                spec,
                error=TypeError,
            )
        task, num_outputs = spec
        v.check_choice(task, f"tasks[{key!r}]", FUNC, _compile.TASKS)
        v.check_int(
            num_outputs,
            f"tasks[{key!r}]",
            FUNC,
            min_value=2 if task == "classification" else 1,
        )


def _check_per_head(loss_weights, metrics, tasks) -> None:
    """Checks the per-head dicts ``loss_weights`` and ``metrics``."""
    if loss_weights is not None:
        if not isinstance(loss_weights, dict):
            v.fail(
                FUNC,
                "loss_weights",
                "a dict of head name -> weight, or None",
                loss_weights,
                error=TypeError,
            )
        if set(loss_weights) - set(tasks):
            v.fail(
                FUNC,
                "loss_weights",
                f"a dict with keys among {list(tasks)}",
                loss_weights,
            )
        for key, weight in loss_weights.items():
            v.check_float(weight, f"loss_weights[{key!r}]", FUNC)
    if metrics is not None:
        if not isinstance(metrics, dict):
            v.fail(
                FUNC,
                "metrics",
                "a dict of head name -> metrics, or None",
                metrics,
                error=TypeError,
            )
        if set(metrics) - set(tasks):
            v.fail(FUNC, "metrics", f"a dict with keys among {list(tasks)}", metrics)


def _check_not_dp(optimizer) -> None:
    """DP-SGD clips one loss per example; a multi-task model has several."""
    from kdl import privacy  # light: TensorFlow Privacy stays unimported

    if privacy.is_dp_optimizer(optimizer):
        v.fail(
            FUNC,
            "optimizer",
            "a plain optimizer: DP-SGD clips one loss per example and a "
            "multi-task model has one per task",
            type(optimizer).__name__,
        )


@_strategy.distributable
def build_multitask(
    input_shape,
    tasks: dict,
    *,
    trunk: str = "mlp",
    trunk_kwargs: dict | None = None,
    loss_weights: dict | None = None,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    name: str = "multitask",
    strategy=None,
):
    """Builds a compiled multi-task model: a shared trunk with one head per task.

    Args:
        input_shape: tuple. Shape of one example (the trunk decides the rank).
        tasks: dict. Head name -> (task, num_outputs), e.g.
            ``{"digit": ("classification", 10), "is_even": ("binary", 1)}``.
            Train with ``y = {"digit": ..., "is_even": ...}``.
        trunk: str. "mlp", "cnn", "resnet" or "rnn". Defaults to `"mlp"`.
        trunk_kwargs: dict or None. Architecture options of the trunk, named
            as in its builder (e.g. ``{"filters": (16, 32)}`` for "cnn",
            ``{"dense_units": (64,)}`` for "mlp"; ``"hidden_units"`` and
            ``"pool"`` are the deprecated names of ``"dense_units"`` and
            ``"pooling"``). Defaults to `None`.
        loss_weights: dict or None. Head name -> weight of its loss. Defaults
            to `None` (all 1).
        dropout: float. Defaults to `0.0`.
        l1: float. Defaults to `0.0`.
        l2: float. Defaults to `0.0`.
        batch_norm: bool. Defaults to `False`.
        augmentation: None, dict or layer. Defaults to `None`.
        normalize: array, tf.data.Dataset or None. Training inputs: the model
            starts with a Normalization layer adapted on them (mean and
            variance per feature or channel), so it takes raw inputs, saved
            and exported too. Defaults to `None`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: dict or None. Head name -> tuple of metrics. Defaults to
            `None` (each task's defaults).
        name: str. Defaults to `"multitask"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.

    Returns:
        A compiled `kdl.keras.Model` with one named output per task.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_multitask((64,), {"digit": ("classification", 10),
        ...                                 "is_even": ("binary", 1)})
    """
    del strategy  # entered by @_strategy.distributable
    if not isinstance(trunk, str) or trunk not in TRUNKS:
        v.check_choice(trunk, "trunk", FUNC, TRUNKS)
    input_shape = v.check_input_shape(
        input_shape, "input_shape", FUNC, ranks=_TRUNK_RANKS[trunk]
    )
    _check_tasks(tasks)
    kwargs = _check_trunk_kwargs(trunk, trunk_kwargs)
    _compile.check_common(
        FUNC,
        dropout=dropout,
        l1=l1,
        l2=l2,
        batch_norm=batch_norm,
        augmentation=augmentation,
        optimizer=optimizer,
        learning_rate=learning_rate,
        name=name,
        input_rank=len(input_shape),
    )
    _check_not_dp(optimizer)
    _normalize.check_normalize(normalize, input_shape, FUNC)
    _check_per_head(loss_weights, metrics, tasks)

    reg = _compile.regularizer(l1, l2)
    inputs, x = _blocks.inputs_with_augmentation(
        input_shape, augmentation, FUNC, normalize=normalize
    )
    x = TRUNKS[trunk](
        x, dropout=dropout, regularizer=reg, batch_norm=batch_norm, **kwargs
    )
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="trunk_flatten")(x)
    outputs = {
        key: _blocks.head(x, n, task, regularizer=reg, name=key)
        for key, (task, n) in tasks.items()
    }
    model = keras.Model(inputs, outputs, name=name)
    metrics = metrics or {}
    model.compile(
        optimizer=_compile.make_optimizer(optimizer, learning_rate),
        loss={key: _compile.task_loss(task) for key, (task, _) in tasks.items()},
        loss_weights=loss_weights,
        metrics={
            key: _compile.task_metrics(task, metrics.get(key))
            for key, (task, _) in tasks.items()
        },
    )
    return model
