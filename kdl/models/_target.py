"""Regression targets in raw units: ``normalize_target=`` and ``residual=``.

A regression head learns best on targets of mean 0 and variance 1; a user
wants ``predict`` in the target's own units (dollars, degrees). With
``normalize_target=y_train`` the builder puts the head's output through a
Normalization layer with ``invert=True`` holding the target's mean and
variance: the model un-scales its own output. With ``residual`` (series
windows), the model adds its output to the last value of the target in the
input window, so it learns the change from the naive forecast "next = last
value" (upstream issue 23: a GRU on real GDP, values 5,000-13,000, was off by
12,000 without either).

Only tf_keras' own layers are used (Normalization, Cropping1D, Permute,
Flatten, Add): no custom class, so every saved form, ``kdl.load``'s safe mode,
the compression transforms and TFLite export take the model as it is, and
``kdl.lite`` runs the un-scaling inside the .tflite graph.
"""

from __future__ import annotations

import numpy as np

from kdl import _validation as v
from kdl.backend import keras

__all__ = [
    "check_normalize_target",
    "residual_feature",
    "resolve",
    "target_output",
]

UNSCALE_NAME = "unscale_target"
_RESIDUAL_REQUIREMENT = '"auto", None or the index of an input feature'


def check_normalize_target(normalize_target, *, task, num_outputs, func) -> None:
    """Checks ``normalize_target``: None, or finite regression targets."""
    if normalize_target is None:
        return
    if task != "regression":
        v.fail(
            func,
            "normalize_target",
            'None unless task="regression" (classes are not scaled)',
            f"targets with task={task!r}",
        )
    if isinstance(normalize_target, (list, tuple, dict)) or not hasattr(
        normalize_target, "shape"
    ):
        v.fail(
            func,
            "normalize_target",
            "None or an array of training targets",
            normalize_target,
            error=TypeError,
        )
    y = np.asarray(normalize_target)
    if not np.issubdtype(y.dtype, np.number):
        v.fail(
            func,
            "normalize_target",
            "an array of numbers",
            f"an array of dtype {y.dtype}",
            error=TypeError,
        )
    width = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if y.ndim not in (1, 2) or width != num_outputs or len(y) < 1:
        v.fail(
            func,
            "normalize_target",
            f"targets of shape (examples,) or (examples, {num_outputs})",
            f"an array of shape {y.shape}",
        )
    if not np.isfinite(y).all():
        v.fail(
            func,
            "normalize_target",
            "targets without NaN or infinite values",
            f"an array of shape {y.shape} with NaN or infinite values",
        )


def _nearest_feature(x, y) -> int | None:
    """The input feature whose last value in each window is nearest ``y``.

    None when no feature's last value forecasts ``y`` better than ``y``'s
    mean does (then ``y`` is not a continuation of any input feature).
    """
    x, y = np.asarray(x, "float64"), np.asarray(y, "float64").reshape(-1)
    errors = np.abs(x[:, -1, :] - y[:, None]).mean(axis=0)
    best = int(np.argmin(errors))
    return best if errors[best] < np.abs(y - y.mean()).mean() else None


def residual_feature(
    residual, *, input_shape, task, num_outputs, normalize, normalize_target, func
) -> int | None:
    """The input feature the model's output is added to, or None.

    ``residual="auto"`` (the default of the recurrent builders) picks one for
    a regression with one output over windows of known length: the only
    feature of a one-feature series; with several features, the one whose
    last value is nearest the targets, when ``normalize=`` (windows) and
    ``normalize_target=`` (targets) are both arrays and that last value beats
    the targets' mean as a forecast. Otherwise there is no residual. An int
    names the feature; None turns the residual off.
    """
    steps, features = input_shape
    if residual is None:
        return None
    if isinstance(residual, str):
        v.check_choice(residual, "residual", func, ("auto",))
        if task != "regression" or num_outputs != 1 or steps is None:
            return None
        if features == 1:
            return 0
        if normalize_target is None or not hasattr(normalize, "shape"):
            return None
        return _nearest_feature(normalize, normalize_target)
    if isinstance(residual, bool) or not isinstance(residual, (int, np.integer)):
        v.fail(func, "residual", _RESIDUAL_REQUIREMENT, residual, error=TypeError)
    if not 0 <= residual < features:
        v.fail(func, "residual", f"a feature index below {features}", residual)
    if task != "regression" or num_outputs != 1 or steps is None:
        v.fail(
            func,
            "residual",
            'None unless task="regression" with one output over windows of '
            "known length",
            residual,
        )
    return int(residual)


def resolve(
    func, *, residual, input_shape, task, num_outputs, normalize, normalize_target
):
    """Checks both arguments and returns the residual feature (or None).

    A residual model scaled by ``normalize_target`` takes the statistics of
    the change from the last value, so it needs the windows as well: the
    ``normalize=`` array, as long as the targets.
    """
    check_normalize_target(
        normalize_target, task=task, num_outputs=num_outputs, func=func
    )
    feature = residual_feature(
        residual,
        input_shape=input_shape,
        task=task,
        num_outputs=num_outputs,
        normalize=normalize,
        normalize_target=normalize_target,
        func=func,
    )
    if feature is None or normalize_target is None:
        return feature
    if not hasattr(normalize, "shape") or len(normalize) != len(normalize_target):
        v.fail(
            func,
            "normalize_target",
            "given with normalize= set to the training windows (an array as "
            "long as the targets): the model forecasts the change from the "
            "last value (residual=...), whose statistics need both; or pass "
            "residual=None",
            f"{len(normalize_target)} targets with normalize of type "
            f"{type(normalize).__name__}",
        )
    return feature


def _statistics(y, x, feature):
    """Mean and variance per output of the target, or of its change from the
    last value of ``feature`` in each window."""
    y = np.asarray(y, "float64").reshape(len(y), -1)
    if feature is not None:
        y = y - np.asarray(x, "float64")[:, -1, feature][:, None]
    mean, variance = y.mean(axis=0), y.var(axis=0)
    # A constant target keeps variance 1 (Keras would multiply by ~0).
    variance = np.where(variance > 1e-10 * (1.0 + mean**2), variance, 1.0)
    return mean.tolist(), variance.tolist()


def _last_value(inputs, feature):
    """The raw input's last step of ``feature``: (batch, 1), built-in layers."""
    steps, features = inputs.shape[1:]
    x = keras.layers.Cropping1D((steps - 1, 0), name="last_step")(inputs)
    if features > 1:
        x = keras.layers.Permute((2, 1), name="last_step_features")(x)
        crop = (feature, features - feature - 1)
        x = keras.layers.Cropping1D(crop, name="target_feature")(x)
    return keras.layers.Flatten(name="last_value")(x)


def target_output(inputs, outputs, *, normalize, normalize_target, feature):
    """The head's ``outputs`` un-scaled and added to the last value, as asked.

    Returns ``outputs`` unchanged when there is nothing to do. The x
    statistics the residual needs come from ``normalize`` (the windows).
    """
    if normalize_target is not None:
        mean, variance = _statistics(normalize_target, normalize, feature)
        name = UNSCALE_NAME if feature is not None else "predictions"
        outputs = keras.layers.Normalization(
            axis=-1, mean=mean, variance=variance, invert=True, name=name
        )(outputs)
    if feature is not None:
        last = _last_value(inputs, feature)
        outputs = keras.layers.Add(name="predictions")([last, outputs])
    return outputs
