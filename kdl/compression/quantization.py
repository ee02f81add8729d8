"""Quantization-aware training on TF-MOT, and loading TF-MOT models."""

from __future__ import annotations

import numpy as np

from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras
from kdl.compression import _common as c
from kdl.errors import UnsupportedModelError

__all__ = ["quantize_aware", "custom_objects", "PRESERVE"]

# quantize_aware(preserve=...) -> what TF-MOT's collaborative optimization keeps
PRESERVE = ("sparsity", "clusters", "sparse_clusters")

MIN_STEPS = 200  # fine-tuning steps by default (see epochs)
_FUNC = "kdl.compression.quantize_aware"
_QAT_INSTEAD = (
    "Use post-training quantization instead: dynamic range, "
    'kdl.export.to_tflite(model, path, quantization="dynamic"), works for '
    "every kdl model (float16 too)."
)


def _skips_first_node(layer) -> bool:
    """Whether a functional config numbers ``layer``'s calls from 1, not 0.

    A nested model built on an Input has a node of its own (Input to
    output) that configs leave out but still count; as tf_keras'
    ``functional._should_skip_first_node`` decides.
    """
    if not isinstance(layer, keras.Model) or not (
        isinstance(layer, keras.Sequential) or layer._is_graph_network
    ):
        return False
    tracked = getattr(layer, "_self_tracked_trackables", None)
    return not tracked or isinstance(tracked[0], keras.layers.InputLayer)


def _sequential_without_augmentation(model):
    kept = [layer for layer in model.layers if not c.is_augmentation(layer)]
    clone = keras.Sequential(
        [layer.__class__.from_config(layer.get_config()) for layer in kept],
        name=model.name,
    )
    clone.build(model.input_shape)
    for new, old in zip(clone.layers, kept):
        new.set_weights(old.get_weights())
    return clone


def _augmentation_sources(model, config) -> dict:
    """(augmentation layer name, node index) -> the reference to its input."""
    source = {}
    for layer_config in config["layers"]:
        layer = model.get_layer(layer_config["name"])
        if c.is_augmentation(layer):
            first = 1 if _skips_first_node(layer) else 0
            for index, node in enumerate(layer_config["inbound_nodes"]):
                source[(layer.name, first + index)] = node[0]
    return source


def _without_augmentation(model):
    """A copy of ``model`` without its augmentation layers (identity at
    inference), which TF-MOT cannot quantize.

    Rewires the functional config: whatever read an augmentation layer's
    output reads that layer's input instead.
    """
    if isinstance(model, keras.Sequential):
        return _sequential_without_augmentation(model)
    if not any(c.is_augmentation(layer) for layer in model.layers):
        return mu.copy_model(model)
    config = model.get_config()
    source = _augmentation_sources(model, config)

    def resolve(ref):
        while (ref[0], ref[1]) in source:
            ref = source[(ref[0], ref[1])]
        return ref

    layers = []
    for layer_config in config["layers"]:
        if c.is_augmentation(model.get_layer(layer_config["name"])):
            continue
        layer_config = dict(layer_config)
        layer_config["inbound_nodes"] = [
            [list(resolve(ref)[:3]) + list(ref[3:]) for ref in node]
            for node in layer_config["inbound_nodes"]
        ]
        layers.append(layer_config)
    outputs = [list(resolve(ref))[:3] for ref in config["output_layers"]]
    clone = keras.Model.from_config(dict(config, layers=layers, output_layers=outputs))
    for layer in clone.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def _unquantizable(model):
    """Names and classes of the layers TF-MOT's default 8-bit scheme rejects."""
    quantize = c.tfmot().quantization.keras
    registry = quantize.default_8bit.Default8BitQuantizeRegistry()
    bad = []
    for layer in c.layers(model):
        # BatchNormalization has no entry of its own: TF-MOT folds it into the
        # convolution or Dense layer before it, which quantize_model checks.
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        if not registry.supports(layer):
            bad.append(f"{layer.name} ({layer.__class__.__name__})")
    return bad


def _scheme(preserve):
    """TF-MOT's quantization scheme for ``preserve`` (None: the default)."""
    if preserve is None:
        return None
    combine = c.tfmot().experimental.combine
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    return combine.Default8BitClusterPreserveQuantizeScheme(
        preserve_sparsity=preserve == "sparse_clusters"
    )


class KeepStructure(keras.callbacks.Callback):
    """Keeps the zeros (and cluster values) of every kernel through QAT.

    TF-MOT 0.8's ``LayerReLUQuantize`` transform gives a Conv2D or Dense
    layer followed by a ReLU a ``NoOpQuantizeConfig``: no weight quantizer,
    so its prune- and cluster-preserving schemes never reach those kernels
    (every kdl builder's hidden layers), and fine-tuning moves their zeros.
    This callback sets the zeros back after every step and, at the end, moves
    each weight to the nearest of the values the kernel had at the start.
    """

    def __init__(self, variables, *, zeros: bool, clusters: bool):
        super().__init__()
        self.variables = variables
        self.masks = [v.numpy() != 0 for v in variables] if zeros else None
        self.values = None
        if clusters:
            self.values = [np.unique(v.numpy()) for v in variables]

    def _zero(self):
        for variable, mask in zip(self.variables, self.masks or ()):
            variable.assign(variable * mask.astype(variable.dtype.as_numpy_dtype))

    def on_train_batch_end(self, batch, logs=None):
        self._zero()

    def on_train_end(self, logs=None):
        for variable, values in zip(self.variables, self.values or ()):
            weights = variable.numpy()
            index = np.clip(np.searchsorted(values, weights), 1, len(values) - 1)
            lower, upper = values[index - 1], values[index]
            nearest = np.where(weights - lower <= upper - weights, lower, upper)
            variable.assign(nearest if len(values) > 1 else weights)
        self._zero()


def _keep_structure(qat, preserve):
    variables = [k for layer in c.layers(qat) for k in c.kernel_variables(layer)]
    return KeepStructure(
        variables,
        zeros=preserve in ("sparsity", "sparse_clusters"),
        clusters=preserve in ("clusters", "sparse_clusters"),
    )


def _quantized(base, model_name, preserve=None):
    """TF-MOT's ``quantize_model`` of ``base``, or UnsupportedModelError."""
    bad = _unquantizable(base)
    if bad:
        raise UnsupportedModelError(
            f"{_FUNC} cannot train model {model_name!r} quantization-aware: "
            f"TF-MOT has no 8-bit quantization for layer(s) {', '.join(bad)}. "
            f"{_QAT_INSTEAD}"
        )
    quantize = c.tfmot().quantization.keras
    try:
        if preserve is None:
            return quantize.quantize_model(base)
        annotated = quantize.quantize_annotate_model(base)
        return quantize.quantize_apply(annotated, _scheme(preserve))
    except (ValueError, RuntimeError) as error:
        raise UnsupportedModelError(
            f"{_FUNC} cannot train model {model_name!r} quantization-aware: "
            f"TF-MOT says: {error} {_QAT_INSTEAD}"
        ) from error


@c.in_model_strategy
def refuse_dp(dp) -> None:
    """Refuses ``quantize_aware(..., dp=...)`` (issue 30, third round).

    TF-MOT's QAT wrappers keep the range (min and max) of each quantized
    layer's inputs and activations in non-trainable variables that every
    training step sets from the batch (moving averages), with no clipping and
    no noise. The ranges are saved with the model and used by the int8
    conversion, so they would carry the private data outside any DP
    guarantee; DP-SGD cannot cover them (kdl's private training refuses
    non-trainable float state for the same reason).
    """
    if dp is None:
        return
    v.fail(
        _FUNC,
        "dp",
        "None: quantization-aware training cannot be private. TF-MOT's QAT "
        "wrappers set each layer's input and activation ranges (min/max, "
        "non-trainable variables) from every training batch, without "
        "clipping or noise, and save them with the model, so they would carry "
        "the private data outside the DP guarantee. Keep the private model "
        "float, or quantize it after training with kdl.export.to_tflite "
        "(dynamic-range or float16 read no data; int8 calibration reads "
        "representative_data, which must then be public)",
        dp,
        error=UnsupportedModelError,
    )


def quantize_aware(
    model,
    x,
    y=None,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    preserve: str | None = None,
    validation_split: float = 0.1,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=None,
    holdout=c.UNSET,
    dp: bool | dict | None = None,
) -> keras.Model:
    """Quantization-aware training: fine-tunes with simulated int8 arithmetic.

    Applies TF-MOT's ``quantize_model`` (default 8-bit scheme) to a copy of
    ``model`` without its augmentation layers (they are identity at
    inference), and fine-tunes it, so that a full int8 TFLite conversion
    (``kdl.export.to_tflite(..., quantization="int8")``) loses less accuracy
    than post-training quantization.

    TF-MOT quantizes Dense, Conv2D, DepthwiseConv2D, pooling, Add,
    Concatenate and activations, with BatchNormalization folded in; it cannot
    quantize recurrent (SimpleRNN, LSTM, GRU, Bidirectional), Embedding or
    Conv1D layers. Such a model gets an UnsupportedModelError naming the
    layers before any work is done.

    ``preserve`` keeps what an earlier transform made, through TF-MOT's
    collaborative optimization: "sparsity" the zeros of :func:`prune`
    (``Default8BitPrunePreserveQuantizeScheme``), "clusters" the shared values
    of :func:`cluster` and "sparse_clusters" both, after
    ``cluster(..., preserve_sparsity=True)``
    (``Default8BitClusterPreserveQuantizeScheme``). TF-MOT's schemes miss
    Conv2D and Dense layers followed by a ReLU (they get no weight quantizer):
    kdl keeps their zeros after every step and their cluster values at the
    end itself (:class:`KeepStructure`).

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model. It
            is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset.
        y: array or dict of arrays (None when x is a Dataset).
        epochs: int or None. Fine-tuning epochs; None: enough for 200 steps,
            at least 2. Defaults to `None`.
        steps: int or None. The fine-tuning budget in optimizer steps
            instead of `epochs`, rounded up to whole epochs; give one of
            the two. None with `epochs=None`: 200 steps (at least 2
            epochs). Defaults to `None`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val), (x_val, y_val, sample_weight)
            or a Dataset. Defaults to `None`.
        learning_rate: float or None. The first fine-tuning learning rate,
            decayed along a cosine to half of it; None starts from the
            model's own. Defaults to `None`.
        preserve: None, "sparsity", "clusters" or "sparse_clusters". What
            quantization-aware training keeps. Defaults to `None`.
        validation_split: float. Without ``validation_data``, this fraction
            of array data is held out of fine-tuning by kdl.train's rule
            (stratified for class targets, the last windows for series, else
            at random; seeded by ``seed``) to keep the best epoch on; 0 trains
            on everything and keeps the last epoch. Defaults to `0.1`.
        seed: int or None. Seeds Python, NumPy and TensorFlow before
            fine-tuning, and the validation split (None: split seeded 0), as
            ``seed`` does in kdl.train; op determinism is not switched on
            (``kdl.set_seed``). Defaults to `None`.
        callbacks: list of kdl.keras callbacks or None. Passed to ``fit``
            after the transform's own. Defaults to `None`.
        holdout: deprecated name of ``validation_split`` (DeprecationWarning;
            removed in the next release).
        verbose: int. 0, 1 or 2, as in Keras ``fit``. Defaults to `1`.
        dp: None only. Quantization-aware training cannot be private (unlike
            ``prune(..., dp=True)``): see :func:`refuse_dp`. Defaults to
            `None`.

    Returns:
        A new compiled `kdl.keras.Model` wrapped by TF-MOT (``QuantizeLayer``,
        ``QuantizeWrapperV2``): save and load it with kdl.save / kdl.load (or
        Keras with ``custom_objects()``), export it with kdl.export.

    Raises:
        kdl.errors.UnsupportedModelError: for a layer TF-MOT cannot quantize,
            naming it and what works instead (and for a subclassed or private
            model, and for ``dp`` other than None); ValueError, TypeError for
            a bad argument.

    Example:
        >>> qat = quantize_aware(model, x_train, y_train, epochs=1, verbose=0)
    """
    refuse_dp(dp)
    info, _ = c.check_training(
        _FUNC,
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        learning_rate=learning_rate,
        verbose=verbose,
    )
    if preserve is not None:
        v.check_choice(preserve, "preserve", _FUNC, PRESERVE)
    extras = c.fit_extras(_FUNC, validation_split=validation_split, seed=seed,
                          callbacks=callbacks, holdout=holdout,
                          epochs=epochs, steps=steps)  # fmt: skip
    qat = _quantized(_without_augmentation(model), model.name, preserve)
    x_fit, y_fit, validation = c.split_holdout(
        x, y, info, extras, validation_data, model, _FUNC
    )
    per_epoch = c.steps_per_epoch(x_fit, info, batch_size)
    epochs = c.epochs_for(epochs, per_epoch, MIN_STEPS, extras.steps)
    total_steps = epochs * per_epoch
    if verbose:
        print(f"quantize_aware: {len(qat.layers)} layers, {epochs} epoch(s)")
    rate = c.fine_tune_rate(model, learning_rate, total_steps)
    mu.compile_like(qat, model, learning_rate=rate)
    callbacks = [] if preserve is None else [_keep_structure(qat, preserve)]
    c.fine_tune(
        qat,
        x_fit,
        y_fit,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=verbose,
        extras=extras,
        callbacks=callbacks,
    )
    return qat


def custom_objects() -> dict:
    """The classes Keras needs to load a model saved with TF-MOT wrappers.

    Covers quantization-aware models (TF-MOT's ``quantize_scope``, with the
    two classes that TF-MOT 0.8 cannot load from ``.keras`` files fixed) and,
    should one be saved unstripped, pruning and clustering wrappers.
    ``kdl.load`` passes these on by itself.

    Returns:
        dict: class name -> class, for ``keras.models.load_model``.

    Example:
        >>> restored = keras.models.load_model(path,
        ...                                    custom_objects=custom_objects())
    """
    tfmot = c.tfmot()
    objects = {}
    for scope in (
        tfmot.quantization.keras.quantize_scope(),
        tfmot.sparsity.keras.prune_scope(),
        tfmot.clustering.keras.cluster_scope(),
    ):
        for mapping in scope.custom_objects:
            objects.update(mapping)
    from kdl.compression import _tfmot_fixes

    objects.update(_tfmot_fixes.CLASSES)
    return objects
