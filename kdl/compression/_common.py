"""What the compression transforms share: checks, layer plumbing, fine-tuning.

Private to :mod:`kdl.compression`; TF-MOT is imported inside the functions
that need it (``import kdl.compression`` must not import it).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from kdl import _keras_names, augment
from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.errors import UnsupportedModelError

# Fine-tuning decays the learning rate along a cosine from the model's own to
# half of it (issue 15). Measured on the digits CNNs pruned 80% in 8 epochs,
# seeds 0 and 1: a constant tenth of the rate lost 0.8-4.4 points, a third
# 1.4-2.8, the full rate 0.3-1.4. Decaying to zero left no rate for the
# recovery of short runs: an MLP pruned 80% in 3 epochs (seed 0) kept 0.881
# of 0.950 decaying to zero, 0.908 to half the rate; the default CNN 0.972 ->
# 0.975; benchmarks/compression.py measures the defaults.
COSINE_DECAY = True
COSINE_FLOOR = 0.5  # the last rate, as a fraction of the first
# validation_split of the transforms: held out to keep the best epoch on.
DEFAULT_SPLIT = 0.1
UNSET = _keras_names.UNSET  # the default of a deprecated keyword


# === TF-MOT, imported lazily =================================================


def tfmot():
    """Imports TF-MOT (after kdl.backend, so that it binds to tf_keras)."""
    import tensorflow_model_optimization as tfmot

    return tfmot


def prune_registry():
    """The registry ``prune_low_magnitude`` itself consults.

    ``tfmot.sparsity.keras`` does not export it, and :func:`sparsity` must read
    the same choice of kernels without wrapping anything.
    """
    from tensorflow_model_optimization.python.core.sparsity.keras import (
        prune_registry,
    )

    return prune_registry.PruneRegistry


# === Checks ==================================================================


def check_model(model, func: str, arg: str = "model"):
    """A compiled, built, functional or Sequential tf_keras model."""
    v.check_keras_model(model, arg, func)
    if not (isinstance(model, keras.Sequential) or model._is_graph_network):
        raise UnsupportedModelError(
            f"The '{arg}' parameter of {func} must be a functional or Sequential "
            "kdl.keras.Model (TF-MOT cannot transform subclassed models). "
            f"Got {model.name!r} instead."
        )
    if not model.built:
        v.fail(func, arg, "a built model", model.name)
    if not getattr(model, "_is_compiled", False) or model.optimizer is None:
        v.fail(
            func,
            arg,
            "a compiled model (kdl builders return one; otherwise call "
            "model.compile first)",
            model.name,
        )
    return model


def is_private(model) -> bool:
    """Whether ``model`` came from ``kdl.privacy.make_private``."""
    from kdl import privacy  # reads an attribute only; TF Privacy stays unloaded

    return privacy.is_private(model)


def refuse_private(model, func: str, hint: str = "", arg: str = "model") -> None:
    """Refuses to fine-tune a private model without DP-SGD (give ``dp=`` to
    fine-tune it with DP-SGD, issue 16).

    Fine-tuning reads the training data again without DP-SGD: the model would
    keep its recorded epsilon while no longer meeting it.
    """
    if is_private(model):
        raise UnsupportedModelError(
            f"The '{arg}' parameter of {func} must be a model not trained with "
            "kdl.privacy.make_private (fine-tuning it here would use the data "
            "without DP-SGD and void its epsilon; post-training quantization "
            f"with kdl.export.to_tflite keeps the epsilon{hint}; or pass dp=True "
            "(or a dict of DP settings) to fine-tune it with DP-SGD, and the "
            f"statement composes both runs). Got {model.name!r} instead."
        )


def check_dp(dp, func: str):
    """``dp``: None (no DP-SGD), True (the private model's settings) or a dict
    for kdl.privacy.private_fine_tune_setup."""
    if dp is not None and dp is not True and not isinstance(dp, dict):
        v.fail(func, "dp", "None, True or a dict of DP settings (l2_norm_clip, "
               "noise_multiplier, method)", dp, error=TypeError)  # fmt: skip
    return dp


def plain_view(model):
    """A private model's graph as a plain functional model (same layers), for
    TF-MOT, which clones by class; other models as they are."""
    if is_private(model):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def compile_work(work, model, dp, learning_rate):
    """Compiles the model to fine-tune: like ``model``, or, with ``dp``, as a
    private model that trains with DP-SGD and carries ``model``'s sessions
    (kdl.privacy.private_fine_tune_setup, issue 16). Returns the model to fit."""
    if dp is None:
        return mu.compile_like(work, model, learning_rate=learning_rate)
    from kdl import privacy

    settings = None if dp is True else dp
    return privacy.private_fine_tune_setup(
        model, work, settings, learning_rate=learning_rate
    )


def finish(work, final, model, dp):
    """The model to return: compiled like ``model``, or, after DP fine-tuning,
    private with the whole history (kdl.privacy.private_fine_tune_result)."""
    if dp is None:
        return mu.compile_like(mu.copy_model(final), model)
    from kdl import privacy

    return privacy.private_fine_tune_result(work, final)


def task_of(model) -> tuple[str | None, int | None]:
    """("classification", K), ("binary", 1) or (None, None) from the loss."""
    loss = getattr(model, "loss", None)
    name = (
        loss
        if isinstance(loss, str)
        else (getattr(loss, "name", None) or getattr(loss, "__name__", None))
    )
    # One label per example only: a sequence model (seq2seq) has one per step.
    if len(model.outputs) != 1 or not isinstance(name, str):
        return None, None
    if len(model.output_shape) != 2:
        return None, None
    units = model.output_shape[-1]
    if name == "sparse_categorical_crossentropy":
        return "classification", units
    if name == "binary_crossentropy" and units == 1:
        return "binary", 1
    return None, None


def check_training(
    func,
    model,
    x,
    y,
    *,
    epochs,
    batch_size,
    validation_data,
    learning_rate,
    verbose,
    hint="",
    arg="model",
    dp=None,
):
    """The checks every fine-tuning transform shares.

    Returns:
        (DataInfo, steps per epoch).
    """
    check_model(model, func, arg)
    if check_dp(dp, func) is None:
        refuse_private(model, func, hint, arg)
    v.check_int(epochs, "epochs", func, allow_none=True)
    v.check_int(batch_size, "batch_size", func)
    v.check_float(
        learning_rate, "learning_rate", func, strict_min=True, allow_none=True
    )
    v.check_verbose(verbose, func)
    info = v.check_data(func, x, y, validation_data=validation_data)
    task, classes = task_of(model)
    if task is not None:
        v.check_targets(func, y, task=task, num_classes=classes)
    if info.is_dataset:
        steps = int(x.cardinality())
        if steps < 1:
            v.fail(
                func,
                "x",
                "a batched tf.data.Dataset of known, finite length",
                "a dataset of unknown or infinite length",
            )
        return info, steps
    return info, math.ceil(info.num_examples / batch_size)


# === Layers ==================================================================


def is_augmentation(layer) -> bool:
    """An augmentation layer, or a nested Sequential made only of them."""
    if isinstance(layer, keras.Sequential) and layer.layers:
        return all(is_augmentation(inner) for inner in layer.layers)
    return augment.is_augmentation_layer(layer)


def layers(model):
    """Every layer of ``model``, nested models (not augmentation) flattened."""
    return mu.walk_layers(model, into=lambda nested: not is_augmentation(nested))


def rewrap(layer, wrap):
    """``clone_model`` function: ``wrap(layer)`` for our copy's own layers.

    Nested models are rebuilt with the same function; augmentation layers stay
    as they are (they only act in training and have no kernels).
    """
    if is_augmentation(layer):
        return layer
    if isinstance(layer, keras.Model):
        return keras.models.clone_model(
            layer, clone_function=lambda inner: rewrap(inner, wrap)
        )
    return wrap(layer)


def wrapped_copy(model, wrap):
    """A copy of ``model`` whose layers are ``wrap(layer)`` (TF-MOT wraps the
    layer objects it is given, and takes initial values from their weights:
    hand it a trained copy, docs/design.md#tfmot)."""
    return keras.models.clone_model(
        mu.copy_model(model), clone_function=lambda layer: rewrap(layer, wrap)
    )


def pass_masks_through(wrapper):
    """TF-MOT's wrappers do not forward Keras masks.

    An Embedding(mask_zero=True) or a GRU fed a mask would either drop the
    mask or raise "does not support masking". The wrapped layer knows its own
    mask, so ask it.
    """
    wrapper.compute_mask = wrapper.layer.compute_mask
    return wrapper


def is_tfmot_wrapper(layer) -> bool:
    """A TF-MOT pruning, clustering or quantization wrapper (or kdl's fix)."""
    return isinstance(layer, keras.layers.Wrapper) and any(
        cls.__module__.startswith("tensorflow_model_optimization")
        for cls in type(layer).__mro__
    )


def unwrapped(layer):
    while is_tfmot_wrapper(layer):
        layer = layer.layer
    return layer


def kernels(layer) -> list:
    """The kernels TF-MOT prunes in ``layer`` ([] if none); read only.

    Dense, convolution, Embedding and recurrent layers, as TF-MOT's prune
    registry says (which lacks ``Bidirectional``: there, the kernels of the
    two recurrent layers inside, docs/design.md#tfmot), and layers of the
    user's own that define ``get_prunable_weights`` (``PrunableLayer``).
    """
    layer = unwrapped(layer)
    if is_augmentation(layer) or not layer.built:
        return []
    if isinstance(layer, keras.layers.Bidirectional):
        inner = [kernels(sub) for sub in (layer.forward_layer, layer.backward_layer)]
        return inner[0] + inner[1] if all(inner) else []
    if hasattr(type(layer), "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    registry = prune_registry()
    if not registry.supports(layer):
        return []
    # make_prunable is how the registry names a layer's kernels, but it adds
    # a get_prunable_weights method to the layer object: take it away again.
    added = "get_prunable_weights" not in vars(layer)
    registry.make_prunable(layer)
    try:
        return list(layer.get_prunable_weights())
    finally:
        if added:
            del layer.get_prunable_weights


def kernel_variables(layer) -> list:
    """The variables behind :func:`kernels`.

    After a call, a TF-MOT quantization wrapper leaves fake-quantized tensors
    in the attributes of the layer it wraps; it keeps the variables
    themselves in its ``_weight_vars`` (weight, quantizer, quantizer state).
    """
    found = kernels(layer)
    if all(isinstance(k, tf.Variable) for k in found):
        return found
    originals = {id(k): k for k in found}
    for weight, *_ in getattr(layer, "_weight_vars", ()):
        originals.update(
            {
                id(k): weight
                for k in found
                if not isinstance(k, tf.Variable) and k.shape == weight.shape
            }
        )
    return [originals[id(k)] for k in found]


def require_kernels(model, func: str, verb: str = "prune") -> None:
    """UnsupportedModelError when no layer of ``model`` has a kernel."""
    if not any(kernels(layer) for layer in layers(model)):
        refuse_without_kernels(model, func, verb)


def refuse_without_kernels(model, func: str, verb: str) -> None:
    """UnsupportedModelError: no layer of ``model`` TF-MOT can ``verb``."""
    raise UnsupportedModelError(
        f"The 'model' parameter of {func} must be a model with at least one "
        f"layer TF-MOT can {verb} (Dense, Conv, Embedding, RNN). "
        f"Got {model.name!r} instead."
    )


# === Fine-tuning =============================================================


def fit(model, x, y, *, epochs, batch_size, validation_data, callbacks, verbose):
    """``model.fit`` on arrays or on a dataset (which carries its own batches)."""
    kwargs = dict(
        epochs=epochs,
        validation_data=validation_data,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    if isinstance(x, tf.data.Dataset):
        return model.fit(x, **kwargs)
    return model.fit(x, y, batch_size=batch_size, **kwargs)


def fine_tune_rate(model, learning_rate, total_steps: int):
    """The fine-tuning learning rate: a cosine decay to half the rate over
    ``total_steps`` from ``learning_rate`` or, if None, the model's own rate.

    The rate is high while the transform changes the model and low in the
    recovery phase at its end. A model trained with a learning-rate schedule
    keeps its schedule (None).
    """
    if learning_rate is None:
        rate = model.optimizer.learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        learning_rate = float(keras.backend.get_value(rate))
    if not COSINE_DECAY:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, int(total_steps)), alpha=COSINE_FLOOR
    )


def as_array(value):
    return np.asarray(value.numpy() if isinstance(value, tf.Tensor) else value)


class KeepBest(keras.callbacks.Callback):
    """Puts back the weights of the epoch with the lowest ``monitor`` value.

    Epochs before ``first_epoch`` are not candidates (pruning: the epochs
    before the target sparsity is reached). ``target`` is the model whose
    weights are kept (the trained model by default).
    """

    def __init__(self, monitor: str = "val_loss", first_epoch: int = 0, target=None):
        super().__init__()
        self.monitor = monitor
        self.first_epoch = first_epoch
        self.target = target
        self.best = None
        self.best_epoch = None
        self._weights = None

    def _model(self):
        return self.target if self.target is not None else self.model

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if epoch < self.first_epoch or value is None or not np.isfinite(value):
            return
        if self.best is None or value < self.best:
            self.best, self.best_epoch = float(value), epoch
            self._weights = self._model().get_weights()

    def on_train_end(self, logs=None):
        if self._weights is not None:
            self._model().set_weights(self._weights)


@dataclasses.dataclass(frozen=True)
class FitExtras:
    """The held-out fraction, its seed and the user's callbacks (issue 31)."""

    validation_split: float
    seed: int  # of the split: the user's seed, else 0
    callbacks: tuple
    global_seed: int | None = None  # the user's seed, for Python/NumPy/TF
    steps: int | None = None  # the fine-tuning budget given in steps


def check_budget(func, epochs, steps) -> int | None:
    """``steps``, checked: the budget is given in epochs or in steps."""
    steps = v.check_int(steps, "steps", func, allow_none=True)
    if steps is not None and epochs is not None:
        v.fail(func, "steps", f"None when 'epochs' is given (epochs={epochs}): "
               "give the budget in epochs or in steps, not both", steps)  # fmt: skip
    return steps


def fit_extras(
    func, *, validation_split, seed, callbacks, holdout, epochs=None, steps=None
) -> FitExtras:
    """Checks the arguments every transform shares with ``kdl.train``.

    ``holdout`` is the deprecated name of ``validation_split`` (warns).
    ``epochs`` and ``steps`` are two ways to give one budget: one of them.
    """
    steps = check_budget(func, epochs, steps)
    split = _keras_names.renamed(func, "holdout", "validation_split", holdout,
                                 validation_split, DEFAULT_SPLIT)  # fmt: skip
    split = v.check_float(split, "validation_split", func, min_value=0.0,
                          max_value=0.5)  # fmt: skip
    seed = v.check_int(seed, "seed", func, min_value=0, allow_none=True)
    callbacks = _keras_names.check_callbacks(callbacks, func, allow_none=True)
    return FitExtras(split, 0 if seed is None else seed, tuple(callbacks), seed, steps)


def split_holdout(x, y, info, extras: FitExtras, validation_data, model, func):
    """The data to train on and the data to pick the best epoch on.

    The validation part is held out by kdl.train's rule (kdl._holdout:
    stratified for class targets, the last windows for series, else random;
    seeded by ``seed``), so that ``validation_split`` means the same in
    ``kdl.train``, ``kdl.tune`` and here.

    Returns:
        (x_train, y_train, validation_data): ``validation_data`` when given;
        else the ``validation_split`` part of array data (None for a dataset,
        or when it is 0 or leaves nothing to train on).
    """
    fraction = extras.validation_split
    if info.validation_data is not None or info.is_dataset or not fraction:
        return x, y, info.validation_data
    n = info.num_examples
    if n - math.floor(n * (1.0 - fraction)) < 1 or n < 2 or y is None:
        return x, y, None
    from kdl import _holdout

    task, _ = task_of(model)
    parts = _holdout.split(x, y, fraction, seed=extras.seed, task=task, func=func)
    return parts.x, parts.y, parts.validation


def epochs_for(epochs, steps: int, min_steps: int, budget: int | None = None) -> int:
    """``epochs``; else enough epochs of ``steps`` batches for the ``budget``
    the user gave in steps (at least 1), else for the transform's default
    ``min_steps`` (at least 2).

    Small data sets need more epochs than large ones for the same number of
    updates (issue 15: two epochs of the digits undid an 80% pruning).
    """
    if epochs is not None:
        return epochs
    if budget is not None:
        return max(1, math.ceil(budget / max(1, steps)))
    return max(2, math.ceil(min_steps / max(1, steps)))


def steps_per_epoch(x, info, batch_size) -> int:
    """Batches in one epoch of ``x`` (after :func:`split_holdout`)."""
    if info.is_dataset:
        return int(x.cardinality())
    n = int(np.shape(tf.nest.flatten(x)[0])[0])
    return math.ceil(n / batch_size)


def fine_tune(
    model,
    x,
    y,
    *,
    epochs,
    batch_size,
    validation_data,
    verbose,
    callbacks=(),
    first_epoch=0,
    target=None,
    extras: FitExtras | None = None,
):
    """Trains ``model`` and keeps its best epoch on ``validation_data``.

    Without validation data the last epoch is kept. The user's callbacks
    (``extras``) run after the transform's own.
    """
    callbacks = list(callbacks) + list(extras.callbacks if extras else ())
    if extras is not None and extras.global_seed is not None:
        keras.utils.set_random_seed(extras.global_seed)  # as kdl.train(seed=)
    if validation_data is not None:
        # First, so that the others' on_train_end see the weights kept.
        best = KeepBest("val_loss", min(first_epoch, epochs - 1), target)
        callbacks.insert(0, best)
    return fit(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
    )


def in_model_strategy(transform):
    """Runs ``transform`` inside the ``tf.distribute`` scope of its model.

    A model built with ``strategy=`` (issue 17) keeps training under that
    strategy: the copy, TF-MOT's wrappers and the optimizer are created in
    its scope, so the result lives on the same devices. The model is the
    first positional argument (``distill``: the student, the second).
    """

    @functools.wraps(transform)
    def run(*args, **kwargs):
        position, name = (
            (1, "student") if transform.__name__ == "distill" else (0, "model")
        )
        model = args[position] if len(args) > position else kwargs.get(name)
        strategy = getattr(model, "distribute_strategy", None)
        if strategy is None or _is_default(strategy):
            return transform(*args, **kwargs)
        with strategy.scope():
            return transform(*args, **kwargs)

    return run


def _is_default(strategy) -> bool:
    return type(strategy).__name__ == "_DefaultDistributionStrategy"
