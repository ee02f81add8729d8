"""What make_private and the private fits check about a model before any work.

Split from :mod:`kdl.privacy.dp_training` (issue 27: no module over 600
lines): the layers DP-SGD supports, signs of earlier training, state that
training would update without noise, and the plan's settings.
"""

from __future__ import annotations

from kdl import _validation as v
from kdl._model_utils import walk_layers
from kdl.backend import keras
from kdl.errors import UnsupportedModelError
from kdl.privacy import _fresh
from kdl.privacy._tracking import iterations
from kdl.privacy.norms import unsupported_layers


def _trainable_layers(model):
    """The layers owning trainable weights, looking inside nested models."""
    return [layer for layer in walk_layers(model) if layer.trainable_weights]


def _all_layers(model):
    """Every layer, and the layer inside wrappers (Bidirectional, ...)."""
    for layer in walk_layers(model):
        yield layer
        if getattr(layer, "layer", None) is not None:
            yield layer.layer


def _is_recurrent(layer) -> bool:
    inner = getattr(layer, "layer", None)  # Bidirectional, TimeDistributed
    return isinstance(layer, keras.layers.RNN) or (
        inner is not None and _is_recurrent(inner)
    )


def choose_method(model, method, func):
    unsupported = unsupported_layers(model)
    recurrent = [layer.name for layer in _trainable_layers(model)
                 if _is_recurrent(layer)]  # fmt: skip
    if method == "fast" and unsupported:
        v.fail(
            func,
            "method",
            "'auto', 'vectorized' or 'optimizer' for this model: kdl's fast "
            "gradient clipping supports Dense, Embedding, Conv1D, Conv2D, "
            "SimpleRNN, GRU and LSTM layers (also Bidirectional; no recurrent "
            "dropout, each layer called once), not " + ", ".join(unsupported),
            method,
        )
    if method == "vectorized" and recurrent:
        v.fail(
            func,
            "method",
            "'auto', 'fast' or 'optimizer' for this model: TensorFlow Privacy's "
            "vectorized per-example gradients fail on recurrent layers "
            f"({', '.join(recurrent)})",
            method,
        )
    if method != "auto":
        return method
    if not unsupported:
        return "fast"
    return "optimizer" if recurrent else "vectorized"


def _was_trained(model) -> int:
    """Optimizer steps ``model`` took (its History's epochs when it has none)."""
    steps = iterations(model)
    history = getattr(model, "history", None)
    if not steps and getattr(history, "epoch", None):
        steps = len(history.epoch)
    return steps


def _adapted_layers(model) -> list[str]:
    """Preprocessing layers whose state was adapted on data (e.g. normalize=)."""
    base = keras.layers.experimental.preprocessing.PreprocessingLayer
    return [
        layer.name
        for layer in walk_layers(model)
        if isinstance(layer, base) and getattr(layer, "is_adapted", False)
    ]


def _check_adapted(model, func, hint):
    adapted = _adapted_layers(model)
    if adapted:
        v.fail(
            func,
            "model",
            "a model without preprocessing layers adapted on data: the "
            "mean and variance (or vocabulary) of "
            f"{', '.join(adapted)} were computed from the data without DP, "
            "which no DP guarantee covers. Build it without normalize= (scale "
            f"the inputs yourself){hint}",
            model.name,
        )


def check_fresh(model, public_pretraining, func):
    """Refuses weights or layer state already fitted to data, unless declared
    public (issue 11)."""
    if public_pretraining:
        return
    _check_adapted(
        model,
        func,
        ", or, if it was adapted on public data only, declare that with "
        "make_private(..., public_pretraining=True)",
    )
    copied = _fresh.trained_elsewhere(model)
    if copied:
        # Weights copied from (or layers shared with) a model a private fit
        # trained: a second run from them would not count the first one.
        v.fail(
            func,
            "model",
            "a model whose weights were not trained yet: "
            f"{copied} of its weight tensors are weights a private fit in "
            "this process produced (copied with set_weights, or layers shared "
            "with that model), so they already encode its training data. "
            "Keep training the private model itself, or declare them public "
            "with make_private(..., public_pretraining=True)",
            model.name,
        )
    steps = _was_trained(model)
    signs = [] if steps else _fresh.trained_signs(model)
    if signs:
        # A compile=False load (or a recompile) resets the optimizer; the
        # weights still show the training (issue 30).
        v.fail(
            func,
            "model",
            "a model whose weights were not trained yet: they show prior "
            f"training ({'; '.join(signs[:3])}), so they may already encode "
            "the training data and no DP guarantee would hold for them. Build "
            "a fresh model, or, if it was trained only on public data, declare "
            "that with make_private(..., public_pretraining=True)",
            model.name,
        )
    if steps:
        v.fail(
            func,
            "model",
            "a model whose weights were not trained yet: its optimizer already "
            f"took {steps} step(s), so its starting weights may already encode "
            "the training data and no DP guarantee would hold for them. Build "
            "a fresh model, or, if it was trained only on public data, declare "
            "that with make_private(..., public_pretraining=True) (the "
            "statement then says so)",
            model.name,
        )


def check_layers(model, func):
    """One output, no BatchNormalization: what per-example clipping needs."""
    if len(model.outputs) != 1:
        v.fail(
            func,
            "model",
            "a model with one output (DP-SGD clips one loss per example)",
            f"{len(model.outputs)} outputs",
            error=UnsupportedModelError,
        )
    strategy = model.distribute_strategy
    if type(strategy).__name__ != "_DefaultDistributionStrategy":
        # Per-example clipping and the noise are per replica in TF Privacy's
        # optimizers and kdl's DP step: under N replicas the noise and the
        # gradient mean would not be the ones the accounting assumes.
        v.fail(
            func,
            "model",
            "a model built without a tf.distribute strategy (DP-SGD's clipping, "
            "noise and accounting are written for one replica)",
            type(strategy).__name__,
            error=UnsupportedModelError,
        )
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            v.fail(
                func,
                "model",
                "a model without BatchNormalization: batch statistics mix "
                "examples, which breaks per-example privacy (build it with "
                "batch_norm=False)",
                layer.name,
                error=UnsupportedModelError,
            )


def _updated_state(layer) -> list:
    """Floating-point non-trainable weights of a trainable ``layer`` (not of
    a frozen layer inside it): state that a train step may assign from the
    batch (a running mean), with no clipping and no noise."""
    try:
        subs = layer.submodules
    except ValueError:  # tf.Module cannot walk an RNN's recurrent-dropout cache
        subs = ()
    frozen = {id(w) for sub in subs
              if isinstance(sub, keras.layers.Layer) and not sub.trainable
              for w in sub.weights}  # fmt: skip
    return [w for w in layer.non_trainable_weights
            if w.dtype.is_floating and id(w) not in frozen]  # fmt: skip


def check_state(model, func):
    """Refuses trainable layers holding non-trainable float weights (review
    of issue 30): like BatchNormalization's moving statistics, a custom
    layer's running mean updated in ``call(training=True)`` leaks the data
    without noise. Preprocessing layers are checked by ``_check_adapted``."""
    base = keras.layers.experimental.preprocessing.PreprocessingLayer
    for layer in walk_layers(model):
        if not layer.trainable or isinstance(layer, (base, keras.Model)):
            continue
        state = _updated_state(layer)
        if state:
            v.fail(
                func,
                "model",
                "a model whose trainable layers hold no non-trainable "
                "weights: a training step may update such state from the "
                "batch (a running mean, like BatchNormalization's) without "
                f"clipping or noise ({layer.name}: "
                f"{', '.join(w.name for w in state[:3])}). Keep constants "
                "as tensors, not weights, or freeze the layer "
                "(layer.trainable = False)",
                layer.name,
                error=UnsupportedModelError,
            )


def check_plan(func, noise_multiplier, target_epsilon, plan):
    """Checks the noise/target choice and the training plan (a dict)."""
    if noise_multiplier is None and target_epsilon is None:
        v.fail(
            func,
            "noise_multiplier",
            "given (a number >= 0) when target_epsilon is None",
            None,
        )
    if noise_multiplier is not None and target_epsilon is not None:
        v.fail(
            func,
            "target_epsilon",
            "None when noise_multiplier is given (pass one of them)",
            target_epsilon,
        )
    if target_epsilon is not None:
        for arg, value in plan.items():
            if value is None:
                v.fail(
                    func,
                    arg,
                    "a positive int when target_epsilon is given (the noise "
                    "depends on the training plan)",
                    value,
                )
    num_examples, batch_size = plan["num_examples"], plan["batch_size"]
    if (
        batch_size is not None
        and num_examples is not None
        and batch_size > num_examples
    ):
        v.fail(func, "batch_size", f"at most num_examples ({num_examples})", batch_size)
