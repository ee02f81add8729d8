"""Differential privacy: DP-SGD training, privacy accounting and an audit.

- :func:`make_private` turns a compiled model into a new one that trains with
  DP-SGD (TensorFlow Privacy): every example's gradient is clipped to an L2
  norm and Gaussian noise is added to each batch's sum of clipped gradients.
- :func:`epsilon` and :func:`noise_for_epsilon` do the privacy accounting
  (dp_accounting's RDP accountant, Poisson-sampled Gaussian mechanism).
- :func:`statement` and :func:`save_statement` write a plain-language privacy
  statement for a finished run.
- :func:`audit` runs a membership-inference attack on a trained model.

TensorFlow Privacy is imported only inside the functions that need it, so
``import kdl`` stays quick.

Example:
    >>> from kdl import build_mlp, datasets, privacy
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10, optimizer="sgd", learning_rate=0.5)
    >>> private = privacy.make_private(model, target_epsilon=8.0, delta=1e-5,
    ...                                num_examples=len(x), batch_size=64,
    ...                                epochs=15)
    >>> _ = private.fit(x, y, batch_size=64, epochs=15, verbose=0)
    >>> print(privacy.statement(private).text)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl.backend import keras, tf

__all__ = [
    "make_private",
    "is_private",
    "privacy_params",
    "epsilon",
    "noise_for_epsilon",
    "statement",
    "save_statement",
    "PrivacyStatement",
    "audit",
    "AuditResult",
    "custom_objects",
    "METHODS",
]

METHODS = ("auto", "fast", "vectorized", "optimizer")
STATEMENT_JSON = "privacy.json"
STATEMENT_TEXT = "privacy.txt"

# Builder loss names -> the Loss class whose reduction can be turned off, which
# both TensorFlow Privacy paths need to get one loss per example.
_LOSS_CLASSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mse": "MeanSquaredError",
    "mean_squared_error": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "mean_absolute_error": "MeanAbsoluteError",
    "huber": "Huber",
}
# Optimizers the DP Keras optimizers can be made from (TF Privacy builds them on
# the legacy tf_keras optimizers).
_DP_OPTIMIZERS = ("SGD", "Adam", "RMSprop", "Adagrad")


# === Privacy accounting ======================================================


def _steps(num_examples: int, batch_size: int, epochs: int) -> int:
    # Keras takes ceil(n / batch) steps per epoch (the last batch may be small).
    return epochs * math.ceil(num_examples / batch_size)


def _dp_sgd_event(noise_multiplier, *, num_examples, batch_size, steps):
    import dp_accounting

    rate = batch_size / num_examples
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            rate, dp_accounting.GaussianDpEvent(noise_multiplier)
        ),
        steps,
    )


def _epsilon_for_steps(noise_multiplier, *, num_examples, batch_size, steps, delta):
    if noise_multiplier == 0.0:
        return math.inf
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    accountant.compose(
        _dp_sgd_event(noise_multiplier, num_examples=num_examples,
                      batch_size=batch_size, steps=steps)
    )
    return float(accountant.get_epsilon(delta))


def _check_accounting(func, num_examples, batch_size, epochs, delta):
    num_examples = v.check_int(num_examples, "num_examples", func)
    batch_size = v.check_int(batch_size, "batch_size", func)
    epochs = v.check_int(epochs, "epochs", func)
    if batch_size > num_examples:
        v.fail(func, "batch_size", f"at most num_examples ({num_examples})",
               batch_size)
    delta = _check_delta(func, delta, num_examples)
    return num_examples, batch_size, epochs, delta


def _check_delta(func, delta, num_examples):
    delta = v.check_float(delta, "delta", func, min_value=0.0, max_value=1.0,
                          strict_min=True)
    if num_examples is not None and delta >= 1.0 / num_examples:
        v.fail(func, "delta", f"below 1/num_examples ({1.0 / num_examples:.3g}): "
               "a larger delta allows leaking whole examples", delta)
    return delta


def epsilon(
    *,
    num_examples: int,
    batch_size: int,
    epochs: int,
    noise_multiplier: float,
    delta: float,
) -> float:
    """The epsilon of DP-SGD at ``delta``, by dp_accounting's RDP accountant.

    Each of the ``epochs * ceil(num_examples / batch_size)`` steps is counted
    as a Gaussian mechanism on a Poisson-sampled batch (sampling rate
    ``batch_size / num_examples``), the standard DP-SGD analysis.

    Args:
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        noise_multiplier: float. Noise standard deviation over the clip norm;
            0 means no privacy (epsilon is infinite).
        delta: float. The delta of (epsilon, delta)-DP; must be below
            1/num_examples.

    Returns:
        float: epsilon (``math.inf`` for zero noise).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> round(epsilon(num_examples=60000, batch_size=256, epochs=60,
        ...               noise_multiplier=1.1, delta=1e-5), 2)
        2.6
    """
    func = "kdl.privacy.epsilon"
    num_examples, batch_size, epochs, delta = _check_accounting(
        func, num_examples, batch_size, epochs, delta)
    noise_multiplier = v.check_float(noise_multiplier, "noise_multiplier", func)
    return _epsilon_for_steps(
        noise_multiplier, num_examples=num_examples, batch_size=batch_size,
        steps=_steps(num_examples, batch_size, epochs), delta=delta)


def noise_for_epsilon(
    target_epsilon: float,
    *,
    num_examples: int,
    batch_size: int,
    epochs: int,
    delta: float,
) -> float:
    """The smallest noise multiplier whose DP-SGD epsilon is at most the target.

    dp_accounting's mechanism calibration searches the noise (Brent's method)
    with the same accountant as :func:`epsilon`; the result is rounded up, so
    ``epsilon(..., noise_multiplier=noise_for_epsilon(t, ...)) <= t``.

    Args:
        target_epsilon: float. The privacy budget, > 0.
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        delta: float. The delta of (epsilon, delta)-DP.

    Returns:
        float: the noise multiplier.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> noise = noise_for_epsilon(8.0, num_examples=1437, batch_size=64,
        ...                           epochs=15, delta=1e-5)
    """
    func = "kdl.privacy.noise_for_epsilon"
    target_epsilon = v.check_float(target_epsilon, "target_epsilon", func,
                                   strict_min=True)
    num_examples, batch_size, epochs, delta = _check_accounting(
        func, num_examples, batch_size, epochs, delta)
    return _calibrate(target_epsilon, num_examples=num_examples,
                      batch_size=batch_size, epochs=epochs, delta=delta)


def _calibrate(target_epsilon, *, num_examples, batch_size, epochs, delta):
    from dp_accounting import mechanism_calibration, rdp

    steps = _steps(num_examples, batch_size, epochs)
    noise = mechanism_calibration.calibrate_dp_mechanism(
        rdp.RdpAccountant,
        lambda z: _dp_sgd_event(z, num_examples=num_examples,
                                batch_size=batch_size, steps=steps),
        target_epsilon,
        delta,
        mechanism_calibration.LowerEndpointAndGuess(0.0, 1.0),
        tol=1e-4,  # in noise: epsilon lands well within 0.1% of the target
    )
    # Brent's method lands within tol of the optimum on either side: step up
    # until the budget holds.
    noise = float(noise)
    while _epsilon_for_steps(noise, num_examples=num_examples,
                             batch_size=batch_size, steps=steps,
                             delta=delta) > target_epsilon:
        noise += 1e-4
    return noise


# === TensorFlow Privacy classes (built on first use) =========================

_CLASSES: dict = {}


def _tf_privacy():
    """Imports the TensorFlow Privacy submodules kdl uses.

    TF Privacy 0.9.0's package ``__init__`` imports the removed TF estimator
    API; its documented switch ``sys.skip_tf_privacy_import`` skips that.
    """
    sys.skip_tf_privacy_import = True
    from tensorflow_privacy.privacy.dp_query import gaussian_query
    from tensorflow_privacy.privacy.fast_gradient_clipping import (
        gradient_clipping_utils,
        layer_registry,
    )
    from tensorflow_privacy.privacy.keras_models import dp_keras_model
    from tensorflow_privacy.privacy.optimizers import dp_optimizer_keras

    return (dp_keras_model, dp_optimizer_keras, gaussian_query, layer_registry,
            gradient_clipping_utils)


def _classes() -> dict:
    """kdl's DP model class and DP optimizer classes, registered for loading."""
    if _CLASSES:
        return _CLASSES
    dp_keras_model, dp_optimizer_keras, gaussian_query, layer_registry, _ = (
        _tf_privacy())

    @keras.saving.register_keras_serializable(package="kdl")
    class PrivateModel(dp_keras_model.make_dp_model_class(keras.Model)):
        """A functional model that trains with DP-SGD.

        ``method`` "fast" and "vectorized" use TensorFlow Privacy's DPModel
        train step (with and without the fast-gradient-clipping layer
        registry). "optimizer" computes per-example losses here and lets a DP
        Keras optimizer (compiled in) clip and noise their gradients.
        """

        def __init__(self, *args, privacy=None, **kwargs):
            privacy = dict(privacy or {})
            method = privacy.get("method", "vectorized")
            registry = (layer_registry.make_default_layer_registry()
                        if method == "fast" else None)
            super().__init__(
                privacy.get("l2_norm_clip", 1.0),
                privacy.get("noise_multiplier", 0.0),
                None,  # num_microbatches: per-example clipping, any batch size
                False,  # use_xla: recompiles for every batch shape
                registry,
                *args,
                **kwargs,
            )
            self.privacy = privacy

        def train_step(self, data):
            if self.privacy.get("method") != "optimizer":
                return super().train_step(data)
            x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
            per_example_loss = _per_example_loss_fn(self.loss)
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                losses = per_example_loss(y, y_pred, weights)
                if self.losses:  # regularization: data independent
                    losses = losses + tf.add_n(self.losses)
            # The DP optimizer takes the per-example losses, clips each
            # example's gradient and adds the noise.
            self.optimizer.minimize(losses, self.trainable_variables, tape=tape)
            self.compiled_loss(y, y_pred, sample_weight=weights,
                               regularization_losses=self.losses)
            self.compiled_metrics.update_state(y, y_pred, weights)
            return {m.name: m.result() for m in self.metrics}

        def get_config(self):
            # Keras writes a functional config only for classes with the
            # functional constructor: take it from a plain view of the graph.
            plain = keras.Model(inputs=self.inputs, outputs=self.outputs,
                                name=self.name)
            config = plain.get_config()
            config["privacy"] = dict(self.privacy)
            return config

        @classmethod
        def from_config(cls, config, custom_objects=None):
            config = dict(config)
            privacy = config.pop("privacy", None)
            plain = keras.Model.from_config(config, custom_objects=custom_objects)
            return cls(inputs=plain.inputs, outputs=plain.outputs,
                       name=plain.name, privacy=privacy)

    _CLASSES["PrivateModel"] = PrivateModel
    for base_name in _DP_OPTIMIZERS:
        _CLASSES[f"DP{base_name}"] = _dp_optimizer_class(
            base_name, dp_optimizer_keras, gaussian_query)
    return _CLASSES


def _dp_optimizer_class(base_name, dp_optimizer_keras, gaussian_query):
    """A named, serializable DP Keras optimizer on a legacy tf_keras optimizer.

    TF Privacy's own DP optimizer classes are all called ``DPOptimizerClass``
    and their config cannot rebuild them, so a saved model could not be loaded;
    these subclasses have distinct names and a config that round-trips.
    """
    legacy = getattr(keras.optimizers.legacy, base_name)
    generic = dp_optimizer_keras.make_keras_generic_optimizer_class(legacy)

    def __init__(self, l2_norm_clip=1.0, noise_multiplier=0.0, **kwargs):
        query = gaussian_query.GaussianSumQuery(
            l2_norm_clip, l2_norm_clip * noise_multiplier)
        generic.__init__(self, query, None, 1, **kwargs)
        self.l2_norm_clip = l2_norm_clip
        self.noise_multiplier = noise_multiplier

    def get_config(self):
        config = legacy.get_config(self)  # skip the generic's unloadable state
        config.update(l2_norm_clip=self.l2_norm_clip,
                      noise_multiplier=self.noise_multiplier)
        return config

    cls = type(f"DP{base_name}", (generic,), {
        "__init__": __init__,
        "get_config": get_config,
        "__module__": __name__,
        "__doc__": f"DP-SGD version of the legacy {base_name} optimizer.",
    })
    return keras.saving.register_keras_serializable(package="kdl")(cls)


def custom_objects() -> dict:
    """The classes a model from :func:`make_private` needs to be loaded.

    ``kdl.load`` uses this; pass it to ``keras.models.load_model`` yourself
    when loading without kdl.

    Returns:
        dict: class name -> class (kdl's ``PrivateModel`` and DP optimizers).

    Example:
        >>> objects = custom_objects()
        >>> "PrivateModel" in objects
        True
    """
    classes = _classes()
    objects = dict(classes)
    objects.update({f"kdl>{name}": cls for name, cls in classes.items()})
    return objects


def is_private(model) -> bool:
    """True when ``model`` came from :func:`make_private` (or was loaded as one).

    Example:
        >>> is_private(build_mlp((4,), 2))
        False
    """
    return isinstance(getattr(model, "privacy", None), dict) and (
        "noise_multiplier" in model.privacy
    )


def privacy_params(model) -> dict:
    """The DP-SGD settings :func:`make_private` recorded on ``model``.

    Args:
        model: kdl.keras.Model. A model returned by :func:`make_private`.

    Returns:
        dict with l2_norm_clip, noise_multiplier, delta, method, and
        num_examples, batch_size, epochs, target_epsilon (None when not
        given).

    Raises:
        ValueError: if the model is not private.

    Example:
        >>> privacy_params(private)["noise_multiplier"]
    """
    func = "kdl.privacy.privacy_params"
    v.check_keras_model(model, "model", func)
    if not is_private(model):
        v.fail(func, "model", "a model returned by kdl.privacy.make_private",
               model)
    return dict(model.privacy)


# === make_private ============================================================


def _per_example_loss_fn(loss):
    """The loss with reduction "none": one value per example."""
    config = loss.get_config()
    config["reduction"] = keras.losses.Reduction.NONE
    return type(loss).from_config(config)


def _loss_object(loss, func):
    """A fresh Loss object for the model's compiled loss."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config(loss.get_config())
    if isinstance(loss, str) and loss in _LOSS_CLASSES:
        return getattr(keras.losses, _LOSS_CLASSES[loss])()
    v.fail(func, "model", "compiled with one loss: a kdl.keras.losses.Loss or "
           "one of " + ", ".join(repr(k) for k in _LOSS_CLASSES), loss,
           error=ValueError)


def _trainable_layers(model):
    """The layers owning trainable weights, looking inside nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _trainable_layers(layer)
        elif layer.trainable_weights:
            yield layer


def _is_recurrent(layer) -> bool:
    inner = getattr(layer, "layer", None)  # Bidirectional, TimeDistributed
    return isinstance(layer, keras.layers.RNN) or (
        inner is not None and _is_recurrent(inner))


def _choose_method(model, method, func):
    registry = _tf_privacy()[3].make_default_layer_registry()
    layers = list(_trainable_layers(model))
    unsupported = [f"{layer.name} ({type(layer).__name__})" for layer in layers
                   if not registry.is_elem(layer)]
    recurrent = [layer.name for layer in layers if _is_recurrent(layer)]
    if method == "fast" and unsupported:
        v.fail(func, "method", "'auto', 'vectorized' or 'optimizer' for this "
               "model: fast gradient clipping supports Dense and Embedding "
               f"layers only, not {', '.join(unsupported)}", method)
    if method == "vectorized" and recurrent:
        v.fail(func, "method", "'auto' or 'optimizer' for this model: "
               "TensorFlow Privacy's vectorized per-example gradients fail on "
               f"recurrent layers ({', '.join(recurrent)})", method)
    if method != "auto":
        return method
    if not unsupported:
        return "fast"
    return "optimizer" if recurrent else "vectorized"


def _fresh_optimizer(optimizer):
    return type(optimizer).from_config(optimizer.get_config())


def _dp_optimizer(optimizer, l2_norm_clip, noise_multiplier, func):
    """The DP Keras optimizer with the hyperparameters of ``optimizer``."""
    name = type(optimizer).__name__
    if name not in _DP_OPTIMIZERS:
        v.fail(func, "model", "compiled with an SGD, Adam, RMSprop or Adagrad "
               "optimizer for method 'optimizer'", name)
    cls = _classes()[f"DP{name}"]
    config = optimizer.get_config()
    allowed = inspect.signature(getattr(keras.optimizers.legacy, name)).parameters
    kwargs = {k: val for k, val in config.items() if k in allowed and k != "name"}
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(
            kwargs["learning_rate"])
    return cls(l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
               **kwargs)


def _check_model(model, func):
    v.check_keras_model(model, "model", func)
    if is_private(model):
        v.fail(func, "model", "a model that is not private yet", model.name)
    if model.optimizer is None or getattr(model, "loss", None) is None:
        v.fail(func, "model", "a compiled model (every kdl builder compiles)",
               model.name)
    if len(model.outputs) != 1:
        v.fail(func, "model", "a model with one output (DP-SGD clips one loss "
               "per example)", f"{len(model.outputs)} outputs")
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            v.fail(func, "model", "a model without BatchNormalization: batch "
                   "statistics mix examples, which breaks per-example privacy "
                   "(build it with batch_norm=False)", layer.name)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        elif getattr(layer, "layer", None) is not None:
            yield layer.layer


def make_private(
    model,
    *,
    l2_norm_clip: float = 1.0,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    delta: float | None = None,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    method: str = "auto",
):
    """Returns a new compiled model that trains with DP-SGD.

    Each example's gradient is clipped to ``l2_norm_clip`` and Gaussian noise
    of standard deviation ``noise_multiplier * l2_norm_clip`` is added to the
    sum of the batch before the optimizer step. Give either the noise, or a
    ``target_epsilon`` with the training plan (``num_examples``,
    ``batch_size``, ``epochs``) and the noise is calibrated for it. Train the
    result with ``kdl.train`` or ``fit`` using that batch size and number of
    epochs; any dataset size works (a smaller last batch is fine).

    ``method`` picks how per-example gradients are computed, all exactly:
    "fast" is TensorFlow Privacy's DPModel with the fast-gradient-clipping
    layer registry (models whose trainable layers are all Dense or Embedding,
    about 2-3x plain training); "vectorized" is DPModel with vectorized
    per-example gradients (e.g. CNNs, about 5x); "optimizer" uses the DP Keras
    optimizers (any model, including LSTM and GRU, slowest). "auto" takes the
    fastest that supports the model.

    Args:
        model: kdl.keras.Model. A compiled single-output functional model, e.g.
            from build_mlp, build_cnn or build_rnn. It is not changed.
        l2_norm_clip: float. Per-example gradient clip norm, > 0. Defaults to
            `1.0`.
        noise_multiplier: float or None. Noise standard deviation over the clip
            norm, >= 0 (0 gives no privacy). Defaults to `None`.
        target_epsilon: float or None. Privacy budget to calibrate the noise
            for, instead of `noise_multiplier`. Defaults to `None`.
        delta: float or None. The delta of (epsilon, delta)-DP, below
            1/num_examples. None: 1e-5, or less for datasets over 10,000
            examples (0.1/num_examples). Defaults to `None`.
        num_examples: int or None. Training examples (needed with
            `target_epsilon`, and for the privacy statement). Defaults to
            `None`.
        batch_size: int or None. Batch size of training. Defaults to `None`.
        epochs: int or None. Epochs of training. Defaults to `None`.
        method: str. "auto", "fast", "vectorized" or "optimizer". Defaults to
            `"auto"`.

    Returns:
        A new compiled model (kdl's ``PrivateModel``) with the weights of
        ``model``, its optimizer settings, loss and metrics. Its ``privacy``
        attribute records the settings (see :func:`privacy_params`).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_mlp((64,), 10, optimizer="sgd", learning_rate=0.5)
        >>> private = make_private(model, target_epsilon=8.0, delta=1e-5,
        ...                        num_examples=1437, batch_size=64, epochs=15)
        >>> private.privacy["method"]
        'fast'
    """
    func = "kdl.privacy.make_private"
    _check_model(model, func)
    l2_norm_clip = v.check_float(l2_norm_clip, "l2_norm_clip", func,
                                 strict_min=True)
    noise_multiplier = v.check_float(noise_multiplier, "noise_multiplier", func,
                                     allow_none=True)
    target_epsilon = v.check_float(target_epsilon, "target_epsilon", func,
                                   strict_min=True, allow_none=True)
    num_examples = v.check_int(num_examples, "num_examples", func, allow_none=True)
    batch_size = v.check_int(batch_size, "batch_size", func, allow_none=True)
    epochs = v.check_int(epochs, "epochs", func, allow_none=True)
    method = v.check_choice(method, "method", func, METHODS)
    if noise_multiplier is None and target_epsilon is None:
        v.fail(func, "noise_multiplier", "given (a number >= 0) when "
               "target_epsilon is None", None)
    if noise_multiplier is not None and target_epsilon is not None:
        v.fail(func, "target_epsilon", "None when noise_multiplier is given "
               "(pass one of them)", target_epsilon)
    if target_epsilon is not None:
        for arg, value in (("num_examples", num_examples),
                           ("batch_size", batch_size), ("epochs", epochs)):
            if value is None:
                v.fail(func, arg, "a positive int when target_epsilon is given "
                       "(the noise depends on the training plan)", value)
    if batch_size is not None and num_examples is not None and (
            batch_size > num_examples):
        v.fail(func, "batch_size", f"at most num_examples ({num_examples})",
               batch_size)
    if delta is None:
        delta = 1e-5 if num_examples is None else min(1e-5, 0.1 / num_examples)
    delta = _check_delta(func, delta, num_examples)
    loss = _loss_object(model.loss, func)
    method = _choose_method(model, method, func)
    if method == "optimizer":
        _dp_optimizer(model.optimizer, l2_norm_clip, 0.0, func)  # checks it

    # === Work starts here: every argument is valid ===
    if target_epsilon is not None:
        noise_multiplier = _calibrate(target_epsilon, num_examples=num_examples,
                                      batch_size=batch_size, epochs=epochs,
                                      delta=delta)
    params = {
        "l2_norm_clip": l2_norm_clip,
        "noise_multiplier": noise_multiplier,
        "delta": delta,
        "method": method,
        "num_examples": num_examples,
        "batch_size": batch_size,
        "epochs": epochs,
        "target_epsilon": target_epsilon,
    }
    clone = keras.models.clone_model(model)  # new layers: input untouched
    clone.set_weights(model.get_weights())
    private = _classes()["PrivateModel"](
        inputs=clone.inputs, outputs=clone.outputs, name=model.name,
        privacy=params)
    if method == "optimizer":
        optimizer = _dp_optimizer(model.optimizer, l2_norm_clip,
                                  noise_multiplier, func)
    else:
        optimizer = _fresh_optimizer(model.optimizer)
    private.compile(optimizer=optimizer, loss=loss,
                    metrics=_metrics_of(model))
    return private


def _metrics_of(model):
    """The metrics ``model`` was compiled with, as fresh objects or names."""
    metrics = (model.get_compile_config() or {}).get("metrics")
    if not metrics:
        return None
    return [m if isinstance(m, str) else keras.metrics.deserialize(m)
            for m in metrics]


# === Privacy statement =======================================================


@dataclasses.dataclass(frozen=True)
class PrivacyStatement:
    """The privacy guarantee of a finished DP-SGD run, in numbers and words.

    Attributes:
        epsilon: float. Epsilon at ``delta`` (``inf`` without noise).
        delta: float. The delta of (epsilon, delta)-DP.
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        steps: int. Optimizer steps accounted for.
        noise_multiplier: float. Noise standard deviation over the clip norm.
        l2_norm_clip: float. Per-example gradient clip norm.
        method: str or None. How per-example gradients were computed.
        text: str. The statement in plain language.
    """

    epsilon: float
    delta: float
    num_examples: int
    batch_size: int
    epochs: int
    steps: int
    noise_multiplier: float
    l2_norm_clip: float
    method: str | None
    text: str

    def to_dict(self) -> dict:
        """The statement as a JSON-ready dict (``epsilon`` inf becomes None)."""
        out = dataclasses.asdict(self)
        if math.isinf(out["epsilon"]):
            out["epsilon"] = None
        out["accountant"] = "dp_accounting RDP, Poisson-sampled Gaussian"
        return out

    def __str__(self) -> str:
        return self.text


def _factor(eps: float) -> str:
    factor = math.exp(min(eps, 700.0))
    if factor < 10:
        return f"{factor:.3g}"
    if factor < 1e9:
        return f"{factor:,.0f}"
    return f"{factor:.2e}"


def _statement_text(s: dict) -> str:
    eps = s["epsilon"]
    rate = s["batch_size"] / s["num_examples"]
    lines = [
        f"This model was trained with differentially private SGD (DP-SGD) on "
        f"{s['num_examples']:,} examples: {s['epochs']} epoch(s) in batches of "
        f"{s['batch_size']} ({s['steps']} steps, each example sampled with "
        f"probability {rate:.2%} per step).",
        f"Each example's gradient was clipped to L2 norm {s['l2_norm_clip']:g}, "
        f"and Gaussian noise with standard deviation {s['noise_multiplier']:.4g}"
        f" x {s['l2_norm_clip']:g} was added to every batch's sum of gradients.",
    ]
    if math.isinf(eps):
        lines.append("The noise is zero, so this run gives NO differential "
                     "privacy guarantee (epsilon is infinite).")
    else:
        lines += [
            f"Guarantee: ({eps:.3g}, {s['delta']:.3g})-differential privacy.",
            f"In plain words: adding or removing any one training example "
            f"changes the probability of any outcome of training by at most a "
            f"factor of e^{eps:.3g} (about {_factor(eps)}), except "
            f"with probability at most {s['delta']:.3g}. So whatever anyone "
            "learns from the model, they could have learned almost as well "
            "if that example had not been in the data.",
        ]
    lines.append(
        "Accounting: dp_accounting's RDP accountant for the Poisson-sampled "
        "Gaussian mechanism (the standard DP-SGD analysis; Keras draws "
        "shuffled fixed-size batches instead, the usual approximation). The "
        "guarantee covers the trained weights and anything computed from them "
        "alone (pruning without data, quantization, export); more training on "
        "the same data spends more budget.")
    return "\n".join(lines)


def _params_from(model_or_params, func):
    if isinstance(model_or_params, dict):
        return dict(model_or_params), None
    v.check_keras_model(model_or_params, "model_or_params", func)
    if not is_private(model_or_params):
        v.fail(func, "model_or_params", "a model returned by "
               "kdl.privacy.make_private, or a dict of its privacy_params",
               model_or_params.name)
    optimizer = getattr(model_or_params, "optimizer", None)
    steps_taken = None
    if optimizer is not None and hasattr(optimizer, "iterations"):
        steps_taken = int(optimizer.iterations.numpy())
    return dict(model_or_params.privacy), steps_taken


def statement(
    model_or_params,
    *,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    delta: float | None = None,
) -> PrivacyStatement:
    """The privacy statement of a DP-SGD run: settings, epsilon and plain words.

    Values not given come from what :func:`make_private` recorded. When the
    model's optimizer took more steps than the plan has, epsilon is computed
    for the steps it took (and a warning says so).

    Args:
        model_or_params: a model from :func:`make_private`, or a dict like
            :func:`privacy_params` returns.
        num_examples: int or None. Training examples. Defaults to `None`.
        batch_size: int or None. Batch size used. Defaults to `None`.
        epochs: int or None. Epochs trained. Defaults to `None`.
        delta: float or None. Delta to report epsilon at. Defaults to `None`.

    Returns:
        PrivacyStatement.

    Raises:
        ValueError, TypeError: for a bad argument or a missing value, naming it.

    Example:
        >>> print(statement(private, epochs=15).text)
    """
    func = "kdl.privacy.statement"
    params, steps_taken = _params_from(model_or_params, func)
    given = {"num_examples": num_examples, "batch_size": batch_size,
             "epochs": epochs, "delta": delta}
    for key, value in given.items():
        if value is not None:
            params[key] = value
    for key in ("num_examples", "batch_size", "epochs"):
        if params.get(key) is None:
            v.fail(func, key, "given: make_private did not record it", None)
    for key in ("noise_multiplier", "l2_norm_clip", "delta"):
        if params.get(key) is None:
            v.fail(func, "model_or_params", f"privacy settings with {key!r}",
                   model_or_params)
    num_examples, batch_size, epochs, delta = _check_accounting(
        func, params["num_examples"], params["batch_size"], params["epochs"],
        params["delta"])
    noise = v.check_float(params["noise_multiplier"], "noise_multiplier", func)
    clip = v.check_float(params["l2_norm_clip"], "l2_norm_clip", func,
                         strict_min=True)
    steps = _steps(num_examples, batch_size, epochs)
    if steps_taken is not None and steps_taken > steps:
        warnings.warn(
            f"The model's optimizer took {steps_taken} steps, more than the "
            f"{steps} of {epochs} epoch(s) of {num_examples} examples in "
            f"batches of {batch_size}; epsilon is computed for {steps_taken} "
            "steps. Pass the epochs and batch size you trained with.",
            stacklevel=2)
        steps = steps_taken
    eps = _epsilon_for_steps(noise, num_examples=num_examples,
                             batch_size=batch_size, steps=steps, delta=delta)
    values = {"epsilon": eps, "delta": delta, "num_examples": num_examples,
              "batch_size": batch_size, "epochs": epochs, "steps": steps,
              "noise_multiplier": noise, "l2_norm_clip": clip,
              "method": params.get("method")}
    return PrivacyStatement(**values, text=_statement_text(values))


def save_statement(
    run_dir,
    model_or_params,
    *,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    delta: float | None = None,
) -> Path:
    """Writes the privacy statement into a run folder (privacy.json, privacy.txt).

    Both files are written to temporary names and renamed into place, so an
    earlier statement is never left half-overwritten.

    Args:
        run_dir: str or Path. The run folder, e.g. ``kdl.train(...).run_dir``;
            created when missing.
        model_or_params: a model from :func:`make_private`, or a dict of its
            privacy_params.
        num_examples, batch_size, epochs, delta: as in :func:`statement`.

    Returns:
        Path: the privacy.json file.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> history = kdl.train(private, x, y, epochs=15, batch_size=64,
        ...                     run_dir="runs/dp")
        >>> save_statement(history.run_dir, private)
    """
    func = "kdl.privacy.save_statement"
    if not isinstance(run_dir, (str, Path)) or not str(run_dir):
        v.fail(func, "run_dir", "a folder path (str or Path)", run_dir,
               error=TypeError)
    result = statement(model_or_params, num_examples=num_examples,
                       batch_size=batch_size, epochs=epochs, delta=delta)
    from kdl.io import atomic_path

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / STATEMENT_JSON
    with atomic_path(run_dir / STATEMENT_TEXT) as tmp:
        tmp.write_text(result.text + "\n", encoding="utf-8")
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n",
                       encoding="utf-8")
    return json_path


# === Membership-inference audit ==============================================


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """What a membership-inference attacker achieves against a model.

    An AUC of 0.5 and an advantage of 0 mean the attacker cannot tell training
    examples from unseen ones better than a coin flip.

    Attributes:
        auc: float. The best attack's ROC AUC.
        advantage: float. The best attack's advantage, max(TPR - FPR).
        loss_threshold_auc: float. AUC of "low loss means member".
        loss_threshold_advantage: float.
        logistic_auc: float. Cross-validated AUC of a logistic regression on
            the loss and the sorted model outputs.
        logistic_advantage: float.
        num_members: int. Training examples attacked.
        num_non_members: int. Unseen examples attacked.
    """

    auc: float
    advantage: float
    loss_threshold_auc: float
    loss_threshold_advantage: float
    logistic_auc: float
    logistic_advantage: float
    num_members: int
    num_non_members: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (f"membership inference: AUC {self.auc:.3f}, advantage "
                f"{self.advantage:.3f} (loss threshold AUC "
                f"{self.loss_threshold_auc:.3f}, logistic regression AUC "
                f"{self.logistic_auc:.3f}; {self.num_members} members, "
                f"{self.num_non_members} non-members)")


def _as_array(value, arg, func):
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        v.fail(func, arg, "a numpy array", type(value).__name__, error=TypeError)
    if len(value) < 2:
        v.fail(func, arg, "an array with at least 2 examples", value.shape)
    return value


def _loss_values(model, x, y, batch_size):
    """Per-example losses of ``model``, with its compiled loss."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    loss = model.loss
    if isinstance(loss, keras.losses.Loss):
        per_example = _per_example_loss_fn(loss)
    else:
        per_example = keras.losses.get(loss)
    values = per_example(tf.constant(y), tf.constant(outputs)).numpy()
    return outputs, values.reshape(len(x), -1).mean(axis=1)


def _advantage(labels, scores) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max(tpr - fpr))


def audit(
    model,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    max_examples: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
) -> AuditResult:
    """Measures how well an attacker tells training examples from unseen ones.

    Two membership-inference attacks on the model's outputs, written on
    scikit-learn (the attack code that used to ship with TensorFlow Privacy no
    longer imports with current scikit-learn): a loss-threshold attack
    (members tend to have lower loss) and a logistic-regression attack on the
    per-example loss and the sorted output vector, scored by 5-fold
    cross-validation.

    Args:
        model: kdl.keras.Model. A compiled, trained model (private or not).
        x_train: np.ndarray. Inputs the model was trained on (members).
        y_train: np.ndarray. Their labels.
        x_test: np.ndarray. Inputs it never saw (non-members).
        y_test: np.ndarray. Their labels.
        max_examples: int. At most this many members and this many
            non-members are attacked (a random subset). Defaults to `2000`.
        batch_size: int. Prediction batch size. Defaults to `256`.
        seed: int. Seed of the subsampling and cross-validation folds.
            Defaults to `0`.

    Returns:
        AuditResult with the AUC and advantage of each attack and the best.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> result = audit(model, x_train, y_train, x_test, y_test)
        >>> result.auc, result.advantage
    """
    func = "kdl.privacy.audit"
    v.check_keras_model(model, "model", func)
    if getattr(model, "loss", None) is None:
        v.fail(func, "model", "a compiled model", model.name)
    arrays = {}
    for arg, value in (("x_train", x_train), ("y_train", y_train),
                       ("x_test", x_test), ("y_test", y_test)):
        arrays[arg] = _as_array(value, arg, func)
    for x_arg, y_arg in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(arrays[x_arg]) != len(arrays[y_arg]):
            v.fail(func, y_arg, f"as long as {x_arg} ({len(arrays[x_arg])})",
                   len(arrays[y_arg]))
    max_examples = v.check_int(max_examples, "max_examples", func, min_value=2)
    batch_size = v.check_int(batch_size, "batch_size", func)
    seed = v.check_int(seed, "seed", func, min_value=0)

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    # AUC does not depend on the class balance, so every example counts
    # (up to max_examples a side); the logistic attack weighs classes evenly.
    num_in = min(len(arrays["x_train"]), max_examples)
    num_out = min(len(arrays["x_test"]), max_examples)
    members = rng.choice(len(arrays["x_train"]), num_in, replace=False)
    others = rng.choice(len(arrays["x_test"]), num_out, replace=False)
    out_in, loss_in = _loss_values(model, arrays["x_train"][members],
                                   arrays["y_train"][members], batch_size)
    out_out, loss_out = _loss_values(model, arrays["x_test"][others],
                                     arrays["y_test"][others], batch_size)
    labels = np.concatenate([np.ones(num_in), np.zeros(num_out)])
    losses = np.concatenate([loss_in, loss_out])
    threshold_scores = -losses
    threshold_auc = float(roc_auc_score(labels, threshold_scores))

    outputs = np.concatenate([out_in.reshape(num_in, -1),
                              out_out.reshape(num_out, -1)])
    features = np.column_stack([np.log(np.maximum(losses, 1e-12)),
                                -np.sort(-outputs, axis=1)])
    attacker = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=1000, class_weight="balanced"))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    logistic_scores = cross_val_predict(attacker, features, labels, cv=folds,
                                        method="predict_proba")[:, 1]
    logistic_auc = float(roc_auc_score(labels, logistic_scores))
    threshold_adv = _advantage(labels, threshold_scores)
    logistic_adv = _advantage(labels, logistic_scores)
    return AuditResult(
        auc=max(threshold_auc, logistic_auc),
        advantage=max(threshold_adv, logistic_adv),
        loss_threshold_auc=threshold_auc,
        loss_threshold_advantage=threshold_adv,
        logistic_auc=logistic_auc,
        logistic_advantage=logistic_adv,
        num_members=num_in,
        num_non_members=num_out,
    )
