"""What kdl.export's SavedModel and TFLite paths share: the traced function."""

from __future__ import annotations

from kdl import _arrays
from kdl.backend import keras, tf
from kdl.export import _signatures as sig


def say(verbose: int, message: str) -> None:
    if verbose:
        print(message, flush=True)


def fixed_batch(model) -> int | None:
    """1 for models with recurrent layers (the converter needs it), else None."""
    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    return 1 if sig.has_layer(model, recurrent) else None


def is_quantize_aware(model) -> bool:
    names = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")
    return any(type(layer).__name__ in names for layer in sig.layers_of(model))


def serving_function(model, specs, *, batch_size: int | None):
    """``model(x, training=False)`` as a tf.function returning {output: tensor}."""
    names = sig.output_names(model)
    signature = [
        tf.TensorSpec((batch_size, *shape), tf.as_dtype(dtype), name=name)
        for name, dtype, shape in specs
    ]

    def serve(*args):
        outputs = model(args[0] if len(args) == 1 else list(args), training=False)
        if isinstance(outputs, dict):
            return {_arrays.safe_name(k): o for k, o in outputs.items()}
        if isinstance(outputs, (list, tuple)):
            return dict(zip(names, outputs))
        return {names[0]: outputs}

    return tf.function(serve, input_signature=signature)
