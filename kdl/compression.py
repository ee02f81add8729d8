"""Model compression: pruning, weight clustering and quantization-aware training.

Each transform is built on TF Model Optimization (TF-MOT), returns a new model
and leaves the model it is given exactly as it was (TF-MOT's own wrappers work
in place on the layers they get, so kdl always hands them a copy):

- :func:`prune` zeroes the smallest weights of every prunable kernel while it
  fine-tunes, then strips the pruning wrappers: the result is a plain model
  whose zeros compress well (gzip) and that exports to TFLite as it is.
- :func:`cluster` shares each kernel's weights among a few centroids, then
  strips the clustering wrappers.
- :func:`quantize_aware` fine-tunes with fake 8-bit quantization; the result
  keeps TF-MOT's quantization wrappers and converts to a full int8 TFLite file.
- :func:`sparsity` measures the fraction of zero weights in prunable kernels.
- :func:`custom_objects` is what loading a model saved with TF-MOT wrappers
  needs (``kdl.load`` uses it).

``import kdl`` does not import TF-MOT: it loads on the first call here.

Example:
    >>> from kdl import build_mlp, compression, datasets
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10)
    >>> _ = model.fit(x, y, epochs=5, verbose=0)
    >>> pruned = compression.prune(model, x, y, target_sparsity=0.8, verbose=0)
    >>> round(compression.sparsity(pruned)["overall"], 2)
    0.8
"""

from __future__ import annotations

import math
import os

import numpy as np

from kdl import _validation as v
from kdl import augment
from kdl.backend import keras, tf

__all__ = ["prune", "cluster", "quantize_aware", "sparsity", "custom_objects"]

SCHEDULES = ("polynomial", "constant")
_LOADABLE = {}  # TF-MOT classes fixed for loading, made on first use
_VERBOSE = (0, 1, 2)


# === TF-MOT, imported lazily =================================================


def _tfmot():
    """Imports TF-MOT (after kdl.backend, so that it binds to tf_keras)."""
    import tensorflow_model_optimization as tfmot

    return tfmot


def _prune_registry():
    # The registry prune_low_magnitude itself consults; tfmot.sparsity.keras
    # does not export it, and sparsity() must read the same choice of kernels
    # without wrapping anything.
    from tensorflow_model_optimization.python.core.sparsity.keras import (
        prune_registry,
    )

    return prune_registry.PruneRegistry


# === Argument checks ==========================================================


def _leading_size(x, arg, func):
    """The number of examples in an array, or a list/dict of arrays."""
    leaves = tf.nest.flatten(x)
    if not leaves:
        v.fail(func, arg, "an array, or a list or dict of arrays", x,
               error=TypeError)
    sizes = set()
    for leaf in leaves:
        shape = np.shape(leaf)
        if not shape:
            v.fail(func, arg, "arrays with a leading examples axis", leaf)
        sizes.add(shape[0])
    if len(sizes) != 1:
        v.fail(func, arg, "arrays with the same number of examples",
               f"sizes {sorted(sizes)}")
    return sizes.pop()


def _check_data(x, y, batch_size, func):
    """Checks (x, y) and returns the number of batches in one epoch."""
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            v.fail(func, "y", "None when x is a tf.data.Dataset", type(y).__name__)
        steps = int(x.cardinality())
        if steps < 1:
            v.fail(func, "x", "a batched tf.data.Dataset of known, finite length",
                   "a dataset of unknown or infinite length")
        return steps
    if y is None:
        v.fail(func, "y", "the targets (an array, or a dict of arrays for a "
               "multi-output model)", y, error=TypeError)
    n = _leading_size(x, "x", func)
    if n < 1:
        v.fail(func, "x", "a non-empty array", f"{n} examples")
    n_y = _leading_size(y, "y", func)
    if n_y != n:
        v.fail(func, "y", f"as many examples as x ({n})", f"{n_y} examples")
    return math.ceil(n / batch_size)


def _check_validation_data(validation_data, func):
    if validation_data is None or isinstance(validation_data, tf.data.Dataset):
        return
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        v.fail(func, "validation_data", "None, a tf.data.Dataset or a pair "
               "(x_val, y_val)", type(validation_data).__name__, error=TypeError)
    n = _leading_size(validation_data[0], "validation_data", func)
    if _leading_size(validation_data[1], "validation_data", func) != n:
        v.fail(func, "validation_data", "a pair (x_val, y_val) of equal length",
               "arrays of different lengths")


def _check_model(model, func):
    v.check_keras_model(model, "model", func)
    if not (isinstance(model, keras.Sequential) or model._is_graph_network):
        v.fail(func, "model", "a functional or Sequential kdl.keras.Model "
               "(TF-MOT cannot transform subclassed models)", model.name)
    if not model.built:
        v.fail(func, "model", "a built model", model.name)
    if not getattr(model, "_is_compiled", False) or model.optimizer is None:
        v.fail(func, "model", "a compiled model (kdl builders return one; "
               "otherwise call model.compile first)", model.name)


def _is_private(model) -> bool:
    from kdl import privacy  # reads an attribute only; TF Privacy stays unloaded

    return privacy.is_private(model)


def _check_training(func, model, x, y, *, epochs, batch_size, validation_data,
                    learning_rate, verbose, one_shot_hint=""):
    """The checks every fine-tuning transform shares; returns steps per epoch."""
    _check_model(model, func)
    if _is_private(model):
        # Fine-tuning reads the training data again without DP-SGD: the model
        # would keep its recorded epsilon while no longer meeting it.
        v.fail(func, "model",
               "a model not trained with kdl.privacy.make_private (fine-tuning "
               "it here would use the data without DP-SGD and void its "
               "epsilon; post-training quantization with kdl.export.to_tflite "
               f"keeps the epsilon{one_shot_hint}, or compress the model first "
               "and train the result privately)", model.name)
    v.check_int(epochs, "epochs", func)
    v.check_int(batch_size, "batch_size", func)
    v.check_float(learning_rate, "learning_rate", func, strict_min=True,
                  allow_none=True)
    if not isinstance(verbose, int) or isinstance(verbose, bool) \
            or verbose not in _VERBOSE:
        v.fail(func, "verbose", "0, 1 or 2", verbose,
               error=ValueError if isinstance(verbose, int) else TypeError)
    steps = _check_data(x, y, batch_size, func)
    _check_validation_data(validation_data, func)
    return steps


# === Model plumbing ===========================================================


def _is_augmentation(layer) -> bool:
    """An augmentation layer, or a nested Sequential made only of them."""
    if isinstance(layer, keras.Sequential) and layer.layers:
        return all(_is_augmentation(inner) for inner in layer.layers)
    return augment.is_augmentation_layer(layer)


def _copy(model):
    """A new model with the same architecture and weights (not compiled)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _fresh(obj):
    """A new metric object for a Metric instance (metrics hold state)."""
    if isinstance(obj, dict):
        return {key: _fresh(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_fresh(value) for value in obj)
    if isinstance(obj, keras.metrics.Metric):
        return obj.__class__.from_config(obj.get_config())
    return obj


def _compile_like(new, model, learning_rate=None):
    """Compiles ``new`` like ``model``: same loss and metrics, same optimizer
    type and settings, fresh optimizer state."""
    args = model._get_compile_args()
    config = args["optimizer"].get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    optimizer = args["optimizer"].__class__.from_config(config)
    new.compile(optimizer=optimizer, loss=args["loss"],
                metrics=_fresh(args["metrics"]),
                weighted_metrics=_fresh(args["weighted_metrics"]),
                loss_weights=args["loss_weights"])
    return new


def _fit(model, x, y, *, epochs, batch_size, validation_data, callbacks, verbose):
    if isinstance(x, tf.data.Dataset):
        return model.fit(x, epochs=epochs, validation_data=validation_data,
                         callbacks=list(callbacks), verbose=verbose)
    return model.fit(x, y, epochs=epochs, batch_size=batch_size,
                     validation_data=validation_data, callbacks=list(callbacks),
                     verbose=verbose)


def _rewrap(layer, wrap):
    """``clone_model`` function: ``wrap(layer)`` for our copy's own layers.

    Nested models are rebuilt with the same function; augmentation layers stay
    as they are (they only act in training and have no kernels).
    """
    if _is_augmentation(layer):
        return layer
    if isinstance(layer, keras.Model):
        return keras.models.clone_model(
            layer, clone_function=lambda inner: _rewrap(inner, wrap))
    return wrap(layer)


def _pass_masks_through(wrapper):
    # TF-MOT's wrappers do not forward Keras masks: an Embedding(mask_zero=True)
    # or a GRU fed a mask would either drop the mask or raise "does not support
    # masking". The wrapped layer knows its own mask, so ask it.
    wrapper.compute_mask = wrapper.layer.compute_mask
    return wrapper


def _layers(model):
    """Every layer of ``model``, nested models flattened, inputs excluded."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and not _is_augmentation(layer):
            yield from _layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


# === Pruning ==================================================================


def _is_tfmot_wrapper(layer) -> bool:
    """A TF-MOT pruning, clustering or quantization wrapper."""
    module = type(layer).__module__
    return isinstance(layer, keras.layers.Wrapper) and (
        module.startswith("tensorflow_model_optimization")
        or type(layer) in _LOADABLE.values())


def _unwrapped(layer):
    while _is_tfmot_wrapper(layer):
        layer = layer.layer
    return layer


def _kernels(layer) -> list:
    """The kernels TF-MOT prunes in ``layer`` ([] if none); read only.

    Dense, convolution, Embedding and recurrent layers, as TF-MOT's prune
    registry says (which lacks ``Bidirectional``: there, the kernels of the
    two recurrent layers inside), and layers of the user's own that define
    ``get_prunable_weights`` (TF-MOT's ``PrunableLayer``).
    """
    layer = _unwrapped(layer)
    if _is_augmentation(layer) or not layer.built:
        return []
    if isinstance(layer, keras.layers.Bidirectional):
        inner = [_kernels(sub) for sub in (layer.forward_layer,
                                           layer.backward_layer)]
        return inner[0] + inner[1] if all(inner) else []
    if hasattr(type(layer), "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    registry = _prune_registry()
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


def _pruning_schedule(schedule, target, total_steps):
    """A TF-MOT schedule whose last mask update reaches ``target`` in time.

    The wrappers count training steps from 1 and update their masks on steps
    ``k * frequency`` up to ``end_step``, so ``end_step`` is a multiple of the
    frequency that training reaches (about ten mask updates in all). The
    polynomial schedule reaches the target after two thirds of the steps and
    leaves the last third for the network to recover at the target sparsity
    (TF-MOT's guide: end pruning before training ends).
    """
    sparsity_keras = _tfmot().sparsity.keras
    pruning_steps = total_steps
    if schedule == "polynomial":
        pruning_steps = max(1, (2 * total_steps) // 3)
    frequency = max(1, pruning_steps // 10)
    end = frequency * (pruning_steps // frequency)
    if schedule == "constant":
        return sparsity_keras.ConstantSparsity(target, begin_step=0,
                                               end_step=end,
                                               frequency=frequency)
    return sparsity_keras.PolynomialDecay(initial_sparsity=0.0,
                                          final_sparsity=target, begin_step=0,
                                          end_step=end, frequency=frequency)


def _prune_at_once(model, target_sparsity, block_size, func):
    """``prune(..., epochs=0)``: zeroes the smallest weights without training.

    TF-MOT only prunes while training (its masks update in training steps),
    so this one-shot magnitude pruning is our own: per kernel, as TF-MOT
    ranks weights. A private model stays private: the copy is made by a
    kdl.save / kdl.load round trip, which keeps its class and DP settings.
    """
    _check_model(model, func)
    target = v.check_fraction(target_sparsity, "target_sparsity", func)
    if tuple(block_size) != (1, 1):
        v.fail(func, "block_size", "(1, 1) when epochs=0 (one-shot pruning is "
               "weight by weight)", block_size)
    if not any(_kernels(layer) for layer in _layers(model)):
        v.fail(func, "model", "a model with at least one layer TF-MOT can prune "
               "(Dense, Conv, Embedding, RNN)", model.name)
    if _is_private(model):
        import tempfile

        from kdl import io

        with tempfile.TemporaryDirectory(prefix="kdl-prune-") as tmp:
            path = io.save(model, os.path.join(tmp, "model.keras"))
            pruned = io.load(path)
    else:
        pruned = _compile_like(_copy(model), model)
    for layer in _layers(pruned):
        for kernel in _kernel_variables(layer):
            values = kernel.numpy()
            count = int(round(target * values.size))
            if count:
                order = np.argsort(np.abs(values), axis=None, kind="stable")
                flat = values.reshape(-1)
                flat[order[:count]] = 0.0
                kernel.assign(flat.reshape(values.shape))
    return pruned


def prune(
    model,
    x,
    y,
    *,
    target_sparsity: float = 0.8,
    schedule: str = "polynomial",
    epochs: int = 2,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    block_size: tuple[int, int] = (1, 1),
    verbose: int = 1,
) -> keras.Model:
    """Magnitude pruning: zeroes the smallest weights while fine-tuning.

    Wraps every prunable layer of a copy of ``model`` in TF-MOT's
    ``prune_low_magnitude`` (Dense, convolutions, Embedding, SimpleRNN, LSTM
    and GRU, and the recurrent layers inside ``Bidirectional``, which TF-MOT's
    registry lacks), fine-tunes it with the ``UpdatePruningStep`` callback
    while the sparsity rises to ``target_sparsity``, then strips the wrappers.
    Augmentation layers and layers without kernels are left as they are.

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model,
            e.g. from a kdl builder. It is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset of
            (x, y). Fine-tuning inputs.
        y: array or dict of arrays. Targets (None when x is a Dataset).
        target_sparsity: float. Fraction of each prunable kernel set to zero,
            in [0, 1). Defaults to `0.8`.
        schedule: str. "polynomial" raises the sparsity from 0 to the target
            over the first two thirds of the fine-tuning steps and keeps it
            there for the rest (TF-MOT's ``PolynomialDecay``); "constant"
            prunes to the target at once (``ConstantSparsity``). Defaults to
            `"polynomial"`.
        epochs: int. Fine-tuning epochs. Small data sets need more than the
            default: 80% of the digits CNN (45 batches an epoch) recovers its
            accuracy in 8 epochs. `0` prunes at once, without fine-tuning
            (``x`` and ``y`` are not read; pass None): post-processing, the
            only pruning a model from `kdl.privacy.make_private` takes, since
            it keeps the model private with the same epsilon. Defaults to `2`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val) or a Dataset. Defaults to `None`.
        learning_rate: float or None. Fine-tuning learning rate; None keeps the
            model's own. Defaults to `None`.
        block_size: (int, int). Prune Dense kernels in blocks of this many
            (rows, columns) at once, TF-MOT's block sparsity, which only
            applies to 2-D kernels: the other layers are pruned weight by
            weight. Blocks of zeros compress better and suit sparse inference
            kernels. Defaults to `(1, 1)` (unstructured).
        verbose: int. 0 silent, 1 progress bar, 2 one line per epoch. Defaults
            to `1`.

    Returns:
        A new compiled `kdl.keras.Model`, architecture and layer names as
        ``model``, without any TF-MOT wrapper (ready for kdl.save and
        kdl.export), with the same loss, metrics and optimizer type and a fresh
        optimizer state.

    Raises:
        ValueError, TypeError: for a bad argument, naming it; ValueError when
            the model has no layer TF-MOT can prune.

    Example:
        >>> pruned = prune(model, x_train, y_train, target_sparsity=0.5,
        ...                epochs=1, verbose=0)
        >>> sparsity(pruned)["overall"]  # doctest: +SKIP
        0.5
    """
    func = "kdl.compression.prune"
    if v.check_int(epochs, "epochs", func, min_value=0) == 0:
        return _prune_at_once(model, target_sparsity, block_size, func)
    steps = _check_training(func, model, x, y, epochs=epochs,
                            batch_size=batch_size,
                            validation_data=validation_data,
                            learning_rate=learning_rate, verbose=verbose,
                            one_shot_hint=", and so does prune(..., epochs=0)")
    target = v.check_fraction(target_sparsity, "target_sparsity", func)
    v.check_choice(schedule, "schedule", func, SCHEDULES)
    block_size = v.check_int_tuple(block_size, "block_size", func)
    if len(block_size) != 2:
        v.fail(func, "block_size", "a pair (rows, columns) of positive ints",
               block_size)
    if not any(_kernels(layer) for layer in _layers(model)):
        v.fail(func, "model", "a model with at least one layer TF-MOT can prune "
               "(Dense, Conv, Embedding, RNN)", model.name)
    total_steps = epochs * steps

    sparsity_keras = _tfmot().sparsity.keras
    pruning_schedule = _pruning_schedule(schedule, target, total_steps)
    wrapped_names = []

    def wrap(layer):
        kernels = _kernels(layer)
        if not kernels:
            return layer
        if isinstance(layer, keras.layers.Bidirectional):
            # Not in TF-MOT's registry: tell its wrapper what to prune.
            layer.get_prunable_weights = lambda: kernels
        wrapped_names.append(layer.name)
        # TF-MOT's block sparsity accepts 2-D weights only (Dense kernels).
        blocks = (block_size if all(len(k.shape) == 2 for k in kernels)
                  and isinstance(layer, keras.layers.Dense) else (1, 1))
        return _pass_masks_through(sparsity_keras.prune_low_magnitude(
            layer, pruning_schedule=pruning_schedule, block_size=blocks))

    # TF-MOT wraps the layer objects it is given: hand it a copy.
    work = keras.models.clone_model(_copy(model),
                                    clone_function=lambda layer: _rewrap(layer,
                                                                         wrap))
    if verbose:
        print(f"prune: {len(wrapped_names)} layers to {target:.0%} sparsity "
              f"({schedule} schedule) over {total_steps} steps")
    _compile_like(work, model, learning_rate)
    _fit(work, x, y, epochs=epochs, batch_size=batch_size,
         validation_data=validation_data,
         callbacks=[sparsity_keras.UpdatePruningStep()], verbose=verbose)

    pruned = _compile_like(_copy(sparsity_keras.strip_pruning(work)), model)
    if verbose:
        print(f"prune: done, sparsity {sparsity(pruned)['overall']:.3f}")
    return pruned


def _kernel_variables(layer) -> list:
    """The variables behind :func:`_kernels`.

    After a call, a TF-MOT quantization wrapper leaves fake-quantized tensors
    in the attributes of the layer it wraps; it keeps the variables
    themselves in its ``_weight_vars`` (weight, quantizer, quantizer state).
    """
    kernels = _kernels(layer)
    if all(isinstance(k, tf.Variable) for k in kernels):
        return kernels
    originals = {id(k): k for k in kernels}
    for weight, *_ in getattr(layer, "_weight_vars", ()):
        originals.update({id(k): weight for k in kernels
                          if not isinstance(k, tf.Variable)
                          and k.shape == weight.shape})
    return [originals[id(k)] for k in kernels]


def sparsity(model: keras.Model) -> dict:
    """Fraction of zero weights in the kernels TF-MOT prunes.

    Counts the kernels of Dense, convolution, Embedding and recurrent layers
    (recurrent kernels included; in ``Bidirectional`` layers both directions),
    never biases, normalization or augmentation layers. Layers inside TF-MOT
    wrappers (a quantization-aware model) count under their own names.

    Args:
        model: kdl.keras.Model. Any built model; it is not changed.

    Returns:
        dict: ``{"overall": float, "layers": {layer name: float}}``, the
        fraction of zeros over all prunable kernels and in each layer that has
        any (``overall`` is 0.0 when there is none).

    Raises:
        TypeError: if ``model`` is not a kdl.keras model.

    Example:
        >>> sparsity(build_mlp((64,), 10))["overall"]
        0.0
    """
    func = "kdl.compression.sparsity"
    v.check_keras_model(model, "model", func)
    if not model.built:
        v.fail(func, "model", "a built model", model.name)
    layers = {}
    zeros = total = 0
    for layer in _layers(model):
        weights = [np.asarray(w) for w in _kernel_variables(layer)]
        if not weights:
            continue
        layer_zeros = sum(int(np.sum(w == 0)) for w in weights)
        layer_total = sum(w.size for w in weights)
        layers[_unwrapped(layer).name] = layer_zeros / layer_total
        zeros += layer_zeros
        total += layer_total
    return {"overall": zeros / total if total else 0.0, "layers": layers}


# === Clustering ===============================================================


def cluster(
    model,
    x,
    y,
    *,
    clusters: int = 16,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    verbose: int = 1,
) -> keras.Model:
    """Weight clustering: each kernel keeps at most ``clusters`` distinct values.

    Wraps the layers of a copy of ``model`` in TF-MOT's ``cluster_weights``
    (k-means++ initial centroids), fine-tunes the centroids, then strips the
    wrappers. Dense, convolution, Embedding and recurrent layers (inside
    ``Bidirectional`` too) are clustered; a Conv2D with fewer weights than
    clusters, augmentation layers and layers TF-MOT does not know are left as
    they are. Clustered models compress well (gzip), and int8 keeps it.

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model. It
            is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset.
        y: array or dict of arrays (None when x is a Dataset).
        clusters: int. Distinct values per kernel, at least 2. Defaults to `16`.
        epochs: int. Fine-tuning epochs. Defaults to `1`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val) or a Dataset. Defaults to `None`.
        learning_rate: float or None. Fine-tuning learning rate; None keeps the
            model's own. Defaults to `None`.
        verbose: int. 0, 1 or 2, as in Keras ``fit``. Defaults to `1`.

    Returns:
        A new compiled `kdl.keras.Model` without TF-MOT wrappers, architecture
        and layer names as ``model``.

    Raises:
        ValueError, TypeError: for a bad argument, naming it; ValueError when
            the model has no layer TF-MOT can cluster.

    Example:
        >>> clustered = cluster(model, x_train, y_train, clusters=8, verbose=0)
    """
    func = "kdl.compression.cluster"
    _check_training(func, model, x, y, epochs=epochs, batch_size=batch_size,
                    validation_data=validation_data,
                    learning_rate=learning_rate, verbose=verbose)
    v.check_int(clusters, "clusters", func, min_value=2)

    clustering = _tfmot().clustering.keras
    wrapped_names = []

    def wrap(layer):
        if not layer.trainable_weights:
            return layer
        try:
            wrapped = clustering.cluster_weights(
                layer, number_of_clusters=clusters,
                cluster_centroids_init=(
                    clustering.CentroidInitialization.KMEANS_PLUS_PLUS))
        except ValueError:  # a layer TF-MOT cannot cluster: leave it
            return layer
        if wrapped is layer:  # a Conv2D too small to cluster
            return layer
        wrapped_names.append(layer.name)
        return _pass_masks_through(wrapped)

    # The wrappers take their initial centroids from the weights of the layers
    # they wrap, and wrap them in place: hand TF-MOT a trained copy.
    work = keras.models.clone_model(_copy(model),
                                    clone_function=lambda layer: _rewrap(layer,
                                                                         wrap))
    if not wrapped_names:
        v.fail(func, "model", "a model with at least one layer TF-MOT can "
               "cluster (Dense, Conv, Embedding, RNN)", model.name)
    if verbose:
        print(f"cluster: {len(wrapped_names)} layers to {clusters} clusters")
    _compile_like(work, model, learning_rate)
    _fit(work, x, y, epochs=epochs, batch_size=batch_size,
         validation_data=validation_data, callbacks=(), verbose=verbose)
    return _compile_like(_copy(clustering.strip_clustering(work)), model)


# === Quantization-aware training ==============================================


def _skips_first_node(layer) -> bool:
    """Whether a functional config numbers ``layer``'s calls from 1, not 0.

    A nested model built on an Input has a node of its own (Input to
    output) that configs leave out but still count; as tf_keras'
    ``functional._should_skip_first_node`` decides.
    """
    if not isinstance(layer, keras.Model) or not (
            isinstance(layer, keras.Sequential) or layer._is_graph_network):
        return False
    tracked = getattr(layer, "_self_tracked_trackables", None)
    return not tracked or isinstance(tracked[0], keras.layers.InputLayer)


def _without_augmentation(model):
    """A copy of ``model`` without its augmentation layers (identity at
    inference), which TF-MOT cannot quantize.

    Rewires the functional config: whatever read an augmentation layer's
    output reads that layer's input instead.
    """
    if isinstance(model, keras.Sequential):
        kept = [layer for layer in model.layers if not _is_augmentation(layer)]
        clone = keras.Sequential(
            [layer.__class__.from_config(layer.get_config()) for layer in kept],
            name=model.name)
        clone.build(model.input_shape)
        for new, old in zip(clone.layers, kept):
            new.set_weights(old.get_weights())
        return clone
    if not any(_is_augmentation(layer) for layer in model.layers):
        return _copy(model)
    config = model.get_config()
    source = {}  # (augmentation layer name, node index) -> its input reference
    for layer_config in config["layers"]:
        layer = model.get_layer(layer_config["name"])
        if _is_augmentation(layer):
            first = 1 if _skips_first_node(layer) else 0
            for index, node in enumerate(layer_config["inbound_nodes"]):
                source[(layer.name, first + index)] = node[0]

    def resolve(ref):
        while (ref[0], ref[1]) in source:
            ref = source[(ref[0], ref[1])]
        return ref

    layers = []
    for layer_config in config["layers"]:
        if _is_augmentation(model.get_layer(layer_config["name"])):
            continue
        layer_config = dict(layer_config)
        layer_config["inbound_nodes"] = [
            [list(resolve(ref)[:3]) + list(ref[3:]) for ref in node]
            for node in layer_config["inbound_nodes"]]
        layers.append(layer_config)
    config = dict(config, layers=layers,
                  output_layers=[list(resolve(ref))[:3] for ref in
                                 config["output_layers"]])
    clone = keras.Model.from_config(config)
    for layer in clone.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def _unquantizable(model):
    """Names and classes of the layers TF-MOT's default 8-bit scheme rejects."""
    quantize = _tfmot().quantization.keras
    registry = quantize.default_8bit.Default8BitQuantizeRegistry()
    bad = []
    for layer in _layers(model):
        # BatchNormalization has no entry of its own: TF-MOT folds it into the
        # convolution or Dense layer before it, which quantize_model checks.
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        if not registry.supports(layer):
            bad.append(f"{layer.name} ({layer.__class__.__name__})")
    return bad


_QAT_INSTEAD = (
    "Use post-training quantization instead: dynamic range, "
    "kdl.export.to_tflite(model, path, quantization=\"dynamic\"), works for "
    "every kdl model (float16 too)."
)


def quantize_aware(
    model,
    x,
    y,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    verbose: int = 1,
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
    Conv1D layers. Such a model gets a ValueError naming the layers before any
    work is done.

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model. It
            is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset.
        y: array or dict of arrays (None when x is a Dataset).
        epochs: int. Fine-tuning epochs. Defaults to `1`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val) or a Dataset. Defaults to `None`.
        learning_rate: float or None. Fine-tuning learning rate; None keeps the
            model's own. Defaults to `None`.
        verbose: int. 0, 1 or 2, as in Keras ``fit``. Defaults to `1`.

    Returns:
        A new compiled `kdl.keras.Model` wrapped by TF-MOT (``QuantizeLayer``,
        ``QuantizeWrapperV2``): save and load it with kdl.save / kdl.load (or
        Keras with ``custom_objects()``), export it with kdl.export.

    Raises:
        ValueError: for a layer TF-MOT cannot quantize, naming it and what
            works instead; ValueError, TypeError for a bad argument.

    Example:
        >>> qat = quantize_aware(model, x_train, y_train, epochs=1, verbose=0)
    """
    func = "kdl.compression.quantize_aware"
    _check_training(func, model, x, y, epochs=epochs, batch_size=batch_size,
                    validation_data=validation_data,
                    learning_rate=learning_rate, verbose=verbose)
    base = _without_augmentation(model)
    bad = _unquantizable(base)
    if bad:
        raise ValueError(
            f"kdl.compression.quantize_aware cannot train model {model.name!r} "
            f"quantization-aware: TF-MOT has no 8-bit quantization for layer(s) "
            f"{', '.join(bad)}. {_QAT_INSTEAD}")
    quantize = _tfmot().quantization.keras
    try:
        qat = quantize.quantize_model(base)
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            f"kdl.compression.quantize_aware cannot train model {model.name!r} "
            f"quantization-aware: TF-MOT says: {error} {_QAT_INSTEAD}"
        ) from error
    if verbose:
        print(f"quantize_aware: {len(qat.layers)} layers, {epochs} epoch(s)")
    _compile_like(qat, model, learning_rate)
    _fit(qat, x, y, epochs=epochs, batch_size=batch_size,
         validation_data=validation_data, callbacks=(), verbose=verbose)
    return qat


# === Saving and loading =======================================================


def _loadable_quantize_classes(objects):
    """TF-MOT 0.8's QuantizeLayer and QuantizeWrapperV2, fixed for ``.keras``.

    Loading a ``.keras`` file builds each layer from its saved build config
    before calling it. TF-MOT's ``QuantizeLayer.build`` never marks the layer
    built, so the call builds it a second time (5 variables where 3 were
    saved); ``QuantizeWrapperV2.build`` collects the wrapped layer's weights
    before that layer is built, so it misses them (4 where 5 were saved). Both
    load from .h5 and SavedModel as they are. The open TF-MOT fix is
    tensorflow/model-optimization pull request 1123; these two subclasses do
    the same, under the same class names, so a loaded model saves and loads
    again like the original.
    """
    if not _LOADABLE:
        class QuantizeLayer(objects["QuantizeLayer"]):
            def build(self, input_shape):
                super().build(input_shape)
                self.built = True

        class QuantizeWrapperV2(objects["QuantizeWrapperV2"]):
            def build(self, input_shape):
                if not self.layer.built:
                    self.layer.build(input_shape)
                    self.layer.built = True
                super().build(input_shape)

        _LOADABLE.update(QuantizeLayer=QuantizeLayer,
                         QuantizeWrapperV2=QuantizeWrapperV2)
    return dict(_LOADABLE)


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
    tfmot = _tfmot()
    objects = {}
    for scope in (tfmot.quantization.keras.quantize_scope(),
                  tfmot.sparsity.keras.prune_scope(),
                  tfmot.clustering.keras.cluster_scope()):
        for mapping in scope.custom_objects:
            objects.update(mapping)
    objects.update(_loadable_quantize_classes(objects))
    return objects
