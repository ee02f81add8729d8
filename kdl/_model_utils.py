"""Copying, recompiling and walking tf_keras models, on the public Keras API.

Shared by the transforms (compression, privacy, export, report) so that each
does the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kdl.backend import keras

__all__ = ["copy_model", "compile_like", "walk_layers", "fresh_metrics"]


def copy_model(model, *, clone_function: Callable | None = None):
    """A new model with ``model``'s architecture and weights (not compiled).

    The copy has new layers and variables: training it never changes
    ``model`` (TF-MOT's wrappers, for one, train the layers they are given).
    """
    clone = keras.models.clone_model(model, clone_function=clone_function)
    clone.set_weights(model.get_weights())
    return clone


def fresh_metrics(metrics):
    """Fresh metric objects for the metrics given (metric objects hold state)."""
    if metrics is None:
        return None
    if isinstance(metrics, dict) and "class_name" in metrics:  # serialized
        return keras.metrics.deserialize(metrics)
    if isinstance(metrics, dict):
        return {key: fresh_metrics(value) for key, value in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return [fresh_metrics(value) for value in metrics]
    if isinstance(metrics, str):
        return metrics
    if isinstance(metrics, keras.metrics.Metric):
        return metrics.__class__.from_config(metrics.get_config())
    return metrics


def _fresh_optimizer(optimizer, learning_rate):
    """An optimizer of the same class and settings, with fresh state."""
    config = optimizer.get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return optimizer.__class__.from_config(config)


def _deserialized(value):
    """Loss, metric or loss-weight entries of ``get_compile_config`` as objects."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        return keras.utils.deserialize_keras_object(value)
    if isinstance(value, dict):
        return {key: _deserialized(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deserialized(item) for item in value]
    return value


def compile_like(new, model, *, learning_rate=None, optimizer=None):
    """Compiles ``new`` like ``model``: same loss, metrics and loss weights,
    the same optimizer class and settings with fresh state (or ``optimizer``).

    Uses the public ``Model.get_compile_config`` (tf_keras 2.13+), not the
    private ``_get_compile_args``.

    Args:
        new: the model to compile.
        model: a compiled model to copy the settings of.
        learning_rate: float or schedule, optional. Replaces the optimizer's.
        optimizer: optional. Used instead of a copy of ``model``'s optimizer.

    Returns:
        ``new``, compiled.
    """
    config = model.get_compile_config() or {}
    if optimizer is None:
        optimizer = _fresh_optimizer(model.optimizer, learning_rate)
    new.compile(
        optimizer=optimizer,
        loss=_deserialized(config.get("loss")),
        metrics=_deserialized(config.get("metrics")),
        weighted_metrics=_deserialized(config.get("weighted_metrics")),
        loss_weights=config.get("loss_weights"),
    )
    return new


def walk_layers(model, *, into: Callable | None = None) -> Iterator:
    """Every layer of ``model``, nested models flattened, InputLayers skipped.

    Args:
        model: a Keras model.
        into: optional predicate; a nested model is walked into only when
            ``into(nested)`` is true, otherwise it is yielded as one layer.
    """
    for layer in model.layers:
        if isinstance(layer, keras.Model) and (into is None or into(layer)):
            yield from walk_layers(layer, into=into)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer
