"""Weight clustering on TF-MOT."""

from __future__ import annotations

import numpy as np

from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras
from kdl.compression import _common as c
from kdl.compression import _flat_kernels as fk

__all__ = ["cluster"]

MIN_STEPS = 200  # fine-tuning steps by default (see epochs)
_FUNC = "kdl.compression.cluster"


def _clustering_wrapper(clusters, preserve_sparsity, wrapped_names):
    """The ``wrap(layer)`` that puts TF-MOT's clustering wrapper on a layer."""
    clustering = c.tfmot().clustering.keras

    def wrap(layer):
        if not layer.trainable_weights:
            return layer
        try:
            wrapped = clustering.cluster_weights(
                layer,
                number_of_clusters=clusters,
                cluster_centroids_init=(
                    clustering.CentroidInitialization.KMEANS_PLUS_PLUS
                ),
                preserve_sparsity=preserve_sparsity,
            )
        except ValueError:  # a layer TF-MOT cannot cluster: leave it
            return layer
        if wrapped is layer:  # a Conv2D too small to cluster
            return layer
        wrapped_names.append(layer.name)
        return c.pass_masks_through(wrapped)

    return wrap


def _producers(model) -> tuple[dict, dict]:
    """{layer name: the one layer name it reads}, for layers called once on
    one input, and how many layers read each layer (the model's config)."""
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        return dict(zip(names[1:], names[:-1])), {name: 1 for name in names}
    reads, readers = {}, {}
    for layer_config in model.get_config()["layers"]:
        inbound = layer_config["inbound_nodes"]
        refs = [ref[0] for node in inbound for ref in node]
        for name in refs:
            readers[name] = readers.get(name, 0) + 1
        if len(inbound) == 1 and len(refs) == 1:
            reads[layer_config["name"]] = refs[0]
    return reads, readers


def _fold(norm, layer) -> bool:
    """Moves ``norm``'s per-channel scale into ``layer``'s kernel (and bias).

    The normalization keeps only a shift: gamma 1, mean 0, variance 1 - eps,
    beta - mean x scale, which gives the same outputs.
    """
    if norm.axis not in ([-1], [len(norm.input_shape) - 1]) or not norm.center:
        return False
    gamma = norm.gamma.numpy() if norm.scale else 1.0
    scale = gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
    layer.kernel.assign(layer.kernel.numpy() * scale)
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(layer.bias.numpy() * scale)
    norm.beta.assign(norm.beta.numpy() - norm.moving_mean.numpy() * scale)
    if norm.scale:
        norm.gamma.assign(np.ones_like(gamma))
    norm.moving_mean.assign(np.zeros_like(scale))
    norm.moving_variance.assign(np.full_like(scale, 1.0 - norm.epsilon))
    return True


def fold_batch_norms(model) -> list:
    """Folds into its Dense or convolution layer the scale of each
    BatchNormalization that alone reads it, and freezes the normalization
    (``trainable=False``: inference mode, it stays a shift). Changes
    ``model`` in place; returns the names of the folded layers.

    The converter folds a normalization's scale into the kernel before it;
    done there, after clustering, it would give each output channel its own
    values and undo the clusters (issue 15).
    """
    reads, readers = _producers(model)
    kinds = (keras.layers.Dense, *fk.FLATTENABLE)
    folded = []
    for norm in model.layers:
        if not isinstance(norm, keras.layers.BatchNormalization):
            continue
        name = reads.get(norm.name)
        layer = model.get_layer(name) if name else None
        if type(layer) in kinds and readers.get(name) == 1 and _fold(norm, layer):
            norm.trainable = False
            folded.append(layer.name)
    return folded


@c.in_model_strategy
def cluster(
    model,
    x,
    y=None,
    *,
    clusters: int = 16,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    preserve_sparsity: bool = False,
    validation_split: float = 0.1,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=None,
    holdout=c.UNSET,
    dp: bool | dict | None = None,
) -> keras.Model:
    """Weight clustering: each kernel keeps at most ``clusters`` distinct values.

    Wraps the layers of a copy of ``model`` in TF-MOT's ``cluster_weights``
    (k-means++ initial centroids), fine-tunes the centroids, then strips the
    wrappers. Dense, convolution, Embedding and recurrent layers (inside
    ``Bidirectional`` too) are clustered; a Conv2D with fewer weights than
    clusters, augmentation layers and layers TF-MOT does not know are left as
    they are. Clustered models compress well (gzip), and int8 keeps it.

    With ``preserve_sparsity=True`` (TF-MOT's sparsity-preserving clustering,
    part of its collaborative optimization) the zeros of a pruned model stay
    zeros: prune, then cluster, then quantize (``quantize_aware(...,
    preserve="sparse_clusters")`` or int8 export with ``per_channel=False``)
    for the smallest files.

    A BatchNormalization that alone reads a Dense or convolution layer has
    its scale folded into that layer's kernel first, and is frozen
    (``trainable=False``) as a shift: the TFLite converter would otherwise
    fold it after clustering, giving each output channel its own values.
    The model computes the same; its normalizations no longer learn.

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model. It
            is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset.
        y: array or dict of arrays (None when x is a Dataset).
        clusters: int. Distinct values per kernel, at least 2. Defaults to `16`.
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
        preserve_sparsity: bool. Keep every zero weight zero (cluster a pruned
            model). Defaults to `False`.
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

    Returns:
        A new compiled `kdl.keras.Model` without TF-MOT wrappers, architecture
        and layer names as ``model``.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.
        kdl.errors.UnsupportedModelError: when the model has no layer TF-MOT
            can cluster, is subclassed or private.

    Example:
        >>> clustered = cluster(model, x_train, y_train, clusters=8, verbose=0)
    """
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
        dp=dp,
    )
    v.check_int(clusters, "clusters", _FUNC, min_value=2)
    v.check_bool(preserve_sparsity, "preserve_sparsity", _FUNC)
    extras = c.fit_extras(_FUNC, validation_split=validation_split, seed=seed,
                          callbacks=callbacks, holdout=holdout,
                          epochs=epochs, steps=steps)  # fmt: skip
    x_fit, y_fit, validation = c.split_holdout(
        x, y, info, extras, validation_data, model, _FUNC
    )
    source = mu.copy_model(c.plain_view(model))
    folded = fold_batch_norms(source)
    wrapped_names = []
    work = c.wrapped_copy(
        source, _clustering_wrapper(clusters, preserve_sparsity, wrapped_names)
    )
    if not wrapped_names:
        c.refuse_without_kernels(model, _FUNC, "cluster")
    if verbose:
        print(f"cluster: {len(wrapped_names)} layers to {clusters} clusters")
        if folded:
            print(f"cluster: batch normalization folded into {', '.join(folded)}")
    per_epoch = c.steps_per_epoch(x_fit, info, batch_size)
    epochs = c.epochs_for(epochs, per_epoch, MIN_STEPS, extras.steps)
    total_steps = epochs * per_epoch
    rate = c.fine_tune_rate(model, learning_rate, total_steps)
    work = c.compile_work(work, model, dp, rate)
    c.fine_tune(
        work,
        x_fit,
        y_fit,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=verbose,
        extras=extras,
    )
    stripped = c.tfmot().clustering.keras.strip_clustering(work)
    return c.finish(work, stripped, model, dp)
