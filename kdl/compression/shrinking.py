"""Structured pruning: remove whole units, filters and recurrent units.

TF-MOT has no transform that removes neurons or filters (TF-MOT issues 541
and 732), and keras-surgeon, the Keras project that had one, breaks on
TF >= 2.4 (docs/design.md#tfmot). :func:`shrink` is written on the Keras layer
API: it reads the model's functional config, decides which channels each layer
keeps, and builds a smaller model from the edited config with sliced weights.

How channels flow. Every tensor's last axis is a *layout*: a list of
``[group, width]`` segments. A Dense, Conv1D, Conv2D or recurrent layer starts
a new group (its units); layers that act channel by channel (activations,
dropout, pooling, BatchNormalization, augmentation) pass the layout on;
``Flatten`` repeats it once per position; ``Concatenate`` joins layouts; and
``Add`` (``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``)
merges the groups it adds, so a residual block keeps the channels its
addition needs. Groups that reach the model's outputs or inputs, or any layer
this module does not know, are kept whole; a model where no group can shrink
is refused.
"""

from __future__ import annotations

import numpy as np

from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.compression import _common as c
from kdl.compression.distillation import Distiller
from kdl.errors import UnsupportedModelError

__all__ = ["shrink"]

# Fine-tuning steps by default (see epochs). Issue 23: the default digits CNN
# shrunk by half lost 1.4 points on seeds 3-4 with 500 steps on the labels;
# 1,500 steps distilled from the original lost 0.8 (docs/benchmarks.md).
MIN_STEPS = 1500
TEMPERATURE, ALPHA = 2.0, 0.5  # distillation from the original (distill's defaults)
_FUNC = "kdl.compression.shrink"
L = keras.layers
_RECURRENT = {L.SimpleRNN: 1, L.LSTM: 4, L.GRU: 3}  # gates per unit
_CHANNELWISE = (
    L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Dropout, L.SpatialDropout1D,
    L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
    L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D, L.ZeroPadding1D, L.ZeroPadding2D, L.Cropping1D,
    L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.BatchNormalization,
)  # fmt: skip
_MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_SAMPLE = 512  # examples the importance scores are measured on


# === The channel graph =======================================================


class _Graph:
    """Groups of channels (union-find), the layout of every tensor, and the
    edges where a layer with a kernel reads a layout."""

    def __init__(self):
        self.parent, self.width, self.frozen = [], [], set()
        self.layouts = {}  # tensor key -> [[group, width], ...]
        self.reads = []  # (layer, layout of its input)
        self.makes = {}  # layer name -> [group, ...] of the units it makes
        self.inputs = {}  # layer name -> layout of its (single) input

    def new(self, width: int, frozen: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.width.append(int(width))
        if frozen:
            self.frozen.add(len(self.parent) - 1)
        return len(self.parent) - 1

    def root(self, group: int) -> int:
        while self.parent[group] != group:
            group = self.parent[group]
        return group

    def union(self, a: int, b: int) -> None:
        a, b = self.root(a), self.root(b)
        if a != b:
            self.parent[b] = a
            if b in self.frozen:
                self.frozen.add(a)

    def freeze(self, layout) -> None:
        for group, _ in layout:
            self.frozen.add(self.root(group))

    def is_frozen(self, group: int) -> bool:
        return self.root(group) in self.frozen


def _last_dim(shape) -> int:
    return int(shape[-1])


def _is_producer(layer) -> bool:
    """A layer whose units shrink can remove, with a kernel reading its input."""
    if isinstance(layer, L.Bidirectional):
        return (
            type(layer.forward_layer) in _RECURRENT
            and layer.merge_mode in ("concat", "sum", "ave", "mul")
            and not layer.return_state
        )
    if type(layer) in _RECURRENT:
        return not layer.return_state
    if isinstance(layer, (L.Conv1D, L.Conv2D)) and type(layer) in (L.Conv1D, L.Conv2D):
        return layer.data_format == "channels_last" and layer.groups == 1
    return type(layer) is L.Dense


def _is_channelwise(layer, rank: int) -> bool:
    if c.is_augmentation(layer):
        return True
    if isinstance(layer, L.BatchNormalization):
        return list(layer.axis) == [rank - 1]
    fmt = getattr(layer, "data_format", "channels_last")
    return isinstance(layer, _CHANNELWISE) and fmt == "channels_last"


def _produce(graph, layer, layout):
    """Records what a producer reads; returns its output layout."""
    graph.reads.append((layer, layout))
    if isinstance(layer, L.Bidirectional):
        units = layer.forward_layer.units
        forward, backward = graph.new(units), graph.new(units)
        graph.makes[layer.name] = [forward, backward]
        if layer.merge_mode == "concat":
            return [[forward, units], [backward, units]]
        graph.union(forward, backward)
        return [[forward, units]]
    group = graph.new(_last_dim(layer.output_shape))
    graph.makes[layer.name] = [group]
    return [[group, graph.width[group]]]


def _merge(graph, layer, layouts):
    """Output layout of a merge layer; unequal layouts freeze everything."""
    if isinstance(layer, L.Concatenate):
        rank = len(layer.output_shape)
        if layer.axis in (-1, rank - 1):
            return [segment for layout in layouts for segment in layout]
    elif all(
        [w for _, w in layout] == [w for _, w in layouts[0]] for layout in layouts
    ):
        for layout in layouts[1:]:
            for (a, _), (b, _) in zip(layouts[0], layout):
                graph.union(a, b)
        return [list(segment) for segment in layouts[0]]
    return _unknown(graph, layer, layouts)[0]


def _unknown(graph, layer, layouts):
    """A layer shrink does not know: its inputs and outputs are kept whole."""
    for layout in layouts:
        graph.freeze(layout)
    shapes = layer.output_shape
    shapes = shapes if isinstance(shapes, list) else [shapes]
    widths = [_last_dim(shape) if shape else 1 for shape in shapes]
    return [[[graph.new(width, frozen=True), width]] for width in widths]


def _flatten(layer, layout):
    positions = int(np.prod(layer.input_shape[1:-1]))
    return [list(segment) for _ in range(positions) for segment in layout]


def _outputs_of(graph, layer, layouts):
    """The output layouts of ``layer`` given its input layouts."""
    rank = len(layer.input_shape) if not isinstance(layer.input_shape, list) else 0
    if len(layouts) == 1:
        graph.inputs[layer.name] = layouts[0]
    if len(layouts) == 1 and _is_producer(layer):
        return [_produce(graph, layer, layouts[0])]
    if len(layouts) == 1 and rank and _is_channelwise(layer, rank):
        return [[list(segment) for segment in layouts[0]]]
    if len(layouts) == 1 and type(layer) is L.Flatten:
        return [_flatten(layer, layouts[0])]
    if len(layouts) > 1 and isinstance(layer, (*_MERGES, L.Concatenate)):
        return [_merge(graph, layer, layouts)]
    return _unknown(graph, layer, layouts)


def _nodes(model):
    """(layer, input tensor keys, output tensor keys) in topological order."""
    if isinstance(model, keras.Sequential):
        layers = [layer for layer in model.layers]
        keys = ["input"] + [layer.name for layer in layers]
        return [("input",), (keys[-1],)], [
            (layer, [keys[i]], [keys[i + 1]]) for i, layer in enumerate(layers)
        ]
    config = model.get_config()
    nodes = []
    for layer_config in config["layers"]:
        layer = model.get_layer(layer_config["name"])
        if isinstance(layer, L.InputLayer):
            continue
        inbound = layer_config["inbound_nodes"]
        if len(inbound) != 1:
            raise UnsupportedModelError(
                f"{_FUNC} cannot shrink model {model.name!r}: layer "
                f"{layer.name!r} is called {len(inbound)} times (shared layers "
                "are not supported)."
            )
        refs = inbound[0]
        outputs = layer.output_shape if isinstance(layer.output_shape, list) else [0]
        nodes.append(
            (
                layer,
                [(ref[0], ref[2]) for ref in refs],
                [(layer.name, i) for i in range(len(outputs))],
            )
        )
    ends = tuple(
        [(ref[0], ref[2]) for ref in _refs(config[part])]
        for part in ("input_layers", "output_layers")
    )
    return ends, nodes


def _refs(value) -> list:
    """A config's input or output references: one, a list, or a dict of them."""
    if isinstance(value, dict):
        return list(value.values())
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


def _channel_graph(model) -> _Graph:
    graph = _Graph()
    (inputs, outputs), nodes = _nodes(model)
    shapes = (
        model.input_shape
        if isinstance(model.input_shape, list)
        else [model.input_shape]
    )
    for key, shape in zip(inputs, shapes):
        width = _last_dim(shape)
        graph.layouts[key] = [[graph.new(width, frozen=True), width]]
    for layer, in_keys, out_keys in nodes:
        layouts = [graph.layouts[key] for key in in_keys]
        for key, layout in zip(out_keys, _outputs_of(graph, layer, layouts)):
            graph.layouts[key] = layout
    for key in outputs:
        graph.freeze(graph.layouts[key])
    return graph


# === Which channels stay =====================================================


def _indices(graph, layout, keep) -> np.ndarray:
    """Indices into a tensor's last axis of the channels kept."""
    parts, offset = [], 0
    for group, width in layout:
        root = graph.root(group)
        kept = keep.get(root, np.arange(width))
        parts.append(offset + kept)
        offset += width
    return np.concatenate(parts) if parts else np.arange(0)


def _row_weights(layer) -> np.ndarray:
    """L1 norm of the outgoing weights of each input channel of ``layer``."""
    if isinstance(layer, L.Bidirectional):
        return _row_weights(layer.forward_layer) + _row_weights(layer.backward_layer)
    kernel = np.abs(layer.get_weights()[0])
    rows = np.moveaxis(kernel, -2, 0) if kernel.ndim > 2 else kernel
    return rows.reshape(rows.shape[0], -1).sum(axis=1)


def _mean_activations(model, layers, x) -> list:
    """Mean |value| of each input channel of each layer, on a sample of x.

    ``x`` None (a private model, issue 16): all ones, so the importance is
    the weights' alone and the data is read only by DP-SGD.
    """
    if x is None:
        return [np.ones(int(layer.input.shape[-1])) for layer in layers]
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    if hasattr(x, "take") and hasattr(x, "element_spec"):  # a tf.data.Dataset
        batches = [features for features, *_ in x.take(max(1, _SAMPLE // 32))]
        outputs = [probe(batch, training=False) for batch in batches]
        outputs = (
            [
                np.concatenate([np.asarray(o[i]) for o in outputs])
                for i in range(len(layers))
            ]
            if len(layers) > 1
            else [np.concatenate([np.asarray(o) for o in outputs])]
        )
    else:
        sample = tf.nest.map_structure(lambda a: c.as_array(a)[:_SAMPLE], x)
        outputs = probe.predict(sample, batch_size=128, verbose=0)
        outputs = outputs if len(layers) > 1 else [outputs]
    return [np.abs(o).reshape(-1, o.shape[-1]).mean(axis=0) for o in outputs]


def _scores(graph, model, x) -> dict:
    """Importance of every channel of every group that may shrink.

    A channel's importance is its expected contribution downstream: the
    mean absolute value it takes on ``x`` times the L1 norm of the weights
    that read it, summed over every layer that reads it (for a residual
    group, every layer after every addition).
    """
    reads = [
        (layer, layout)
        for layer, layout in graph.reads
        if any(not graph.is_frozen(g) for g, _ in layout)
    ]
    scores = {}
    if not reads:
        return scores
    activations = _mean_activations(model, [layer for layer, _ in reads], x)
    for (layer, layout), activation in zip(reads, activations):
        contribution = activation * _row_weights(layer)
        offset = 0
        for group, width in layout:
            root = graph.root(group)
            if root not in graph.frozen:
                total = scores.setdefault(root, np.zeros(graph.width[root]))
                total += contribution[offset : offset + width]
            offset += width
    return scores


def _keep(graph, scores, fraction) -> dict:
    """Group -> sorted indices of the channels kept (most important first)."""
    keep = {}
    for root, score in scores.items():
        count = max(1, int(round(graph.width[root] * (1.0 - fraction))))
        keep[root] = np.sort(np.argsort(-score, kind="stable")[:count])
    return keep


# === The smaller model =======================================================


def _set_units(layer_config, count: int) -> None:
    inner = layer_config["config"]
    if layer_config["class_name"] == "Bidirectional":
        for part in ("layer", "backward_layer"):
            if inner.get(part):
                inner[part]["config"]["units"] = count
    elif "filters" in inner:
        inner["filters"] = count
    else:
        inner["units"] = count


def _kept(graph, keep, group) -> np.ndarray:
    return keep.get(graph.root(group), np.arange(graph.width[graph.root(group)]))


def _smaller_model(model, graph, keep):
    """The model built from ``model``'s config with fewer units (no weights)."""
    config = model.get_config()
    for layer_config in config["layers"]:
        groups = graph.makes.get(layer_config["config"]["name"])
        if groups and graph.root(groups[0]) in keep:
            _set_units(layer_config, len(_kept(graph, keep, groups[0])))
    if isinstance(model, keras.Sequential):
        return keras.Sequential.from_config(config)
    return keras.Model.from_config(config)


def _slice_rnn(weights, rows, out, gates: int, units: int) -> list:
    columns = np.concatenate([gate * units + out for gate in range(gates)])
    kernel, recurrent, *bias = weights
    kernel = kernel[rows][:, columns]
    recurrent = recurrent[out][:, columns]
    return [kernel, recurrent] + [b[..., columns] for b in bias]


def _slice_producer(layer, weights, rows, outs) -> list:
    if isinstance(layer, L.Bidirectional):
        half = len(weights) // 2
        forward = _slice_producer(layer.forward_layer, weights[:half], rows, outs[:1])
        backward = _slice_producer(
            layer.backward_layer, weights[half:], rows, outs[-1:]
        )
        return forward + backward
    out = outs[0]
    if type(layer) in _RECURRENT:
        return _slice_rnn(weights, rows, out, _RECURRENT[type(layer)], layer.units)
    kernel, *bias = weights
    kernel = np.take(np.take(kernel, rows, axis=-2), out, axis=-1)
    return [kernel] + [b[out] for b in bias]


def _sliced_weights(layer, graph, keep) -> list:
    """``layer``'s weights for the smaller model."""
    weights = layer.get_weights()
    if layer.name in graph.makes:
        rows = _indices(graph, graph.inputs[layer.name], keep)
        outs = [_kept(graph, keep, group) for group in graph.makes[layer.name]]
        return _slice_producer(layer, weights, rows, outs)
    if isinstance(layer, L.BatchNormalization) and layer.name in graph.inputs:
        channels = _indices(graph, graph.inputs[layer.name], keep)
        return [w[channels] for w in weights]
    return weights


def _transfer(model, smaller, graph, keep) -> None:
    for old, new in zip(model.layers, smaller.layers):
        if old.weights:
            new.set_weights(_sliced_weights(old, graph, keep))


def _check_shrink(model, x, y, fraction, training):
    info, _ = c.check_training(_FUNC, model, x, y, **training)
    if v.check_fraction(fraction, "fraction", _FUNC) == 0.0:
        v.fail(_FUNC, "fraction", "a number in (0, 1)", fraction)
    return info


def _plan(model, x, fraction):
    """The channel graph and the channels each group keeps."""
    graph = _channel_graph(model)
    scores = _scores(graph, model, x)
    if not scores:
        raise UnsupportedModelError(
            f"{_FUNC} cannot shrink model {model.name!r}: no layer of it has units "
            "that can be removed (shrink removes units of Dense, Conv1D, Conv2D "
            "and recurrent layers whose outputs reach only layers it knows, and "
            "never the units of an output layer)."
        )
    return graph, _keep(graph, scores, fraction)


@c.in_model_strategy
def shrink(
    model,
    x,
    y=None,
    *,
    fraction: float = 0.5,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    validation_split: float = 0.1,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=None,
    holdout=c.UNSET,
    dp: bool | dict | None = None,
) -> keras.Model:
    """Structured pruning: removes the least important units and filters.

    Removes ``fraction`` of the units of every Dense layer, of the filters of
    every Conv1D and Conv2D layer, and of the units of every SimpleRNN, LSTM
    and GRU layer (also inside ``Bidirectional``), then fine-tunes the smaller
    model. The result has fewer parameters and fewer multiply-adds (see
    :func:`multiply_adds`), the same inputs and outputs, and runs faster,
    where :func:`prune` only zeroes weights. TF-MOT has no such transform:
    this one is written on the Keras layer API (docs/design.md#tfmot).

    Importance of a unit: its mean absolute value on (a sample of) ``x`` times
    the L1 norm of the weights that read it, summed over every layer that
    reads it. The units of output layers are never removed; units that meet
    in an addition (residual blocks) are removed together, so the addition
    keeps matching shapes. Units that reach a layer shrink does not know (an
    attention layer, a Reshape...) are kept.

    Fine-tuning learns from the labels and from the original model's outputs
    (distillation, as :func:`distill` with its defaults) for a model with one
    output; with ``dp`` from the labels only. On the digits this kept the
    default CNN within one point where the labels alone lost 1.4 (issue 23).

    Args:
        model: kdl.keras.Model. A compiled functional or Sequential model of
            Dense, convolution, recurrent, normalization, pooling, activation,
            dropout, augmentation, Flatten and merge layers (others are kept
            whole). It is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset of
            (x, y). Data to score the units on and to fine-tune with.
        y: array or dict of arrays. Targets (None when x is a Dataset).
        fraction: float. Fraction of the units of each layer to remove, in
            (0, 1). Defaults to `0.5`.
        epochs: int or None. Fine-tuning epochs; None: enough for 1,500
            steps, at least 2. Defaults to `None`.
        steps: int or None. The fine-tuning budget in optimizer steps
            instead of `epochs`, rounded up to whole epochs; give one of
            the two. None with `epochs=None`: 1,500 steps (at least 2
            epochs). Defaults to `None`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val), (x_val, y_val, sample_weight)
            or a Dataset, to keep the best epoch on. Defaults to `None`.
        learning_rate: float or None. The first fine-tuning learning rate,
            decayed along a cosine to half of it; None starts from the
            model's own. Defaults to `None`.
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
        A new, smaller, compiled `kdl.keras.Model` with ``model``'s layer names,
        loss, metrics and optimizer type (fresh state).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.
        kdl.errors.UnsupportedModelError: for a subclassed or private model, a
            model with shared layers, or one with no unit that can be removed.

    Example:
        >>> smaller = shrink(model, x_train, y_train, fraction=0.5, verbose=0)
        >>> smaller.count_params() < model.count_params()
        True
    """
    training = dict(
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
        validation_data=validation_data,
        learning_rate=learning_rate,
        dp=dp,
    )
    extras = c.fit_extras(_FUNC, validation_split=validation_split, seed=seed,
                          callbacks=callbacks, holdout=holdout,
                          epochs=epochs, steps=steps)  # fmt: skip
    info = _check_shrink(model, x, y, fraction, training)
    x_fit, y_fit, validation = c.split_holdout(
        x, y, info, extras, validation_data, model, _FUNC
    )
    source = c.plain_view(model)
    graph, keep = _plan(source, None if dp is not None else x_fit, fraction)
    smaller = _smaller_model(source, graph, keep)
    _transfer(source, smaller, graph, keep)
    per_epoch = c.steps_per_epoch(x_fit, info, batch_size)
    epochs = c.epochs_for(epochs, per_epoch, MIN_STEPS, extras.steps)
    total_steps = epochs * per_epoch
    if verbose:
        print(
            f"shrink: {model.count_params():,} -> {smaller.count_params():,} "
            f"parameters; fine-tuning {epochs} epoch(s)"
        )
    rate = c.fine_tune_rate(model, learning_rate, total_steps)
    work = c.compile_work(smaller, model, dp, rate)
    c.fine_tune(
        _teaching(work, source, model, dp, rate),
        x_fit,
        y_fit,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=verbose,
        extras=extras,
        target=work,
    )
    return c.finish(work, smaller, model, dp)


def _teaching(work, source, model, dp, rate):
    """What fine-tuning fits: a Distiller teaching ``work`` the outputs of
    the original model next to the labels (issue 23), or ``work`` itself for
    DP fine-tuning (the teacher is not DP-SGD) and several outputs."""
    if dp is not None or len(source.outputs) != 1:
        return work
    task, _ = c.task_of(model)
    distiller = Distiller(
        work, mu.copy_model(source), task=task or "regression",
        temperature=TEMPERATURE, alpha=ALPHA,
    )  # fmt: skip
    return mu.compile_like(distiller, model, learning_rate=rate)
