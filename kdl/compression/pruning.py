"""Magnitude pruning on TF-MOT, one-shot pruning, and the sparsity measure."""

from __future__ import annotations

import numpy as np

from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras
from kdl.compression import _common as c
from kdl.compression import _flat_kernels as fk

__all__ = ["prune", "sparsity", "SCHEDULES"]

SCHEDULES = ("polynomial", "constant")
_FUNC = "kdl.compression.prune"
# Fine-tuning steps by default (see epochs). Measured on the default builders'
# digits models (another split than the tests', seeds 0-1): with 500 steps
# the MLP lost 1.1-2.8 points and an LSTM 2.5-4.4; with 1,500 (37 epochs)
# the MLP 0 to +0.3 and the LSTM gained 3-4 (it was undertrained).
MIN_STEPS = 1500
# A kernel whose units each read fewer inputs than this stays dense when the
# model has larger ones: pruning 80% of them cuts most units off their
# inputs, for few weights. Measured (issue 15): a sunspots GRU (one input
# feature, so its input kernel has a fan-in of 1 and 2% of the weights)
# pruned 80% lost 40% of its test MAE. The first convolution of a grayscale
# image (3x3x1) is the other common case.
MIN_FAN_IN = 16
# Blocks of 16 input rows by default, in Dense and convolution kernels whose
# units each read at least 16 blocks (256 inputs); smaller kernels are
# pruned weight by weight. TFLite stores a Dense kernel transposed and a
# convolution's filter by filter, so a block is a run of zeros, which gzip
# packs tightly. Measured (issue 15, digits CNNs, int8 with one scale per
# kernel): pruned 80% 9.9x -> 11.6x smaller gzipped than the float file with
# blocks in dense1, 13.6x with blocks in conv2 too; pruned + clustered 12.9x
# -> 15.2x -> 17.3x; same accuracy. Blocks on a 128 x 10 head (8 blocks per
# unit) had cost 10 points.
DEFAULT_BLOCK = (16, 1)
MIN_BLOCKS = 16


def fan_in(kernel) -> int:
    """Inputs each unit reads: all but the last dimension of a Keras kernel."""
    return int(np.prod(kernel.shape[:-1]))


def kernel_filter(model):
    """``filter(layer)``: the kernels of ``layer`` to prune, TF-MOT's own
    without those of small fan-in (all of them if the model has no other)."""
    found = [k for layer in c.layers(model) for k in c.kernels(layer)]
    minimum = MIN_FAN_IN if any(fan_in(k) >= MIN_FAN_IN for k in found) else 0

    def to_prune(layer) -> list:
        return [k for k in c.kernels(layer) if fan_in(k) >= minimum]

    return to_prune


def _pruning_schedule(schedule, target, total_steps):
    """A TF-MOT schedule whose last mask update reaches ``target`` in time.

    The wrappers count training steps from 1 and update their masks on steps
    ``k * frequency`` up to ``end_step``, so ``end_step`` is a multiple of the
    frequency that training reaches (about ten mask updates in all). The
    polynomial schedule reaches the target after two thirds of the steps and
    leaves the last third for the network to recover at the target sparsity
    (TF-MOT's guide: end pruning before training ends).

    Returns:
        (schedule object, the step at which the target is reached).
    """
    sparsity_keras = c.tfmot().sparsity.keras
    pruning_steps = total_steps
    if schedule == "polynomial":
        pruning_steps = max(1, (2 * total_steps) // 3)
    frequency = max(1, pruning_steps // 10)
    end = frequency * (pruning_steps // frequency)
    if schedule == "constant":
        return sparsity_keras.ConstantSparsity(
            target, begin_step=0, end_step=end, frequency=frequency
        ), 1
    return sparsity_keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=target,
        begin_step=0,
        end_step=end,
        frequency=frequency,
    ), end


def _copy_keeping_class(model):
    """A compiled copy of ``model`` of the same class (a private model stays a
    private model with its DP settings), through its config."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return mu.compile_like(copy, model)


def _zero_smallest(kernel, fraction: float) -> None:
    values = kernel.numpy()
    count = int(round(fraction * values.size))
    if count:
        order = np.argsort(np.abs(values), axis=None, kind="stable")
        flat = values.reshape(-1)
        flat[order[:count]] = 0.0
        kernel.assign(flat.reshape(values.shape))


def _prune_at_once(model, target_sparsity, block_size, func):
    """``prune(..., epochs=0)``: zeroes the smallest weights without training.

    TF-MOT only prunes while training (its masks update in training steps),
    so this one-shot magnitude pruning is our own: per kernel, as TF-MOT
    ranks weights. A private model stays private: the copy keeps its class
    and DP settings.
    """
    c.check_model(model, func)
    target = v.check_fraction(target_sparsity, "target_sparsity", func)
    if block_size is not None and tuple(block_size) != (1, 1):
        v.fail(
            func,
            "block_size",
            "(1, 1) when epochs=0 (one-shot pruning is weight by weight)",
            block_size,
        )
    c.require_kernels(model, func)
    pruned = _copy_keeping_class(model)

    def zero_smallest(model):
        to_prune = kernel_filter(model)
        for layer in c.layers(model):
            chosen = {id(k) for k in to_prune(layer)}
            for kernel, variable in zip(c.kernels(layer), c.kernel_variables(layer)):
                if id(kernel) in chosen:
                    _zero_smallest(variable, target)

    if c.is_private(pruned):  # data-free post-processing keeps the statement
        from kdl import privacy

        privacy.bind_post_processing(
            pruned, "one-shot magnitude pruning", zero_smallest
        )
    else:
        zero_smallest(pruned)
    return pruned


def _check_prune(model, x, y, target_sparsity, schedule, block_size, training):
    """Checks prune's arguments; returns (DataInfo, target, block_size)."""
    info, _ = c.check_training(
        _FUNC, model, x, y, hint=", and so does prune(..., epochs=0)", **training
    )
    target = v.check_fraction(target_sparsity, "target_sparsity", _FUNC)
    v.check_choice(schedule, "schedule", _FUNC, SCHEDULES)
    if block_size is None:
        block_size = DEFAULT_BLOCK
    block_size = v.check_int_tuple(block_size, "block_size", _FUNC)
    if len(block_size) != 2:
        v.fail(
            _FUNC, "block_size", "a pair (rows, columns) of positive ints", block_size
        )
    c.require_kernels(model, _FUNC)
    return info, target, block_size


def _blocks_for(layer, kernels, block_size) -> tuple:
    """``block_size`` for a Dense or convolution layer whose units each read
    at least MIN_BLOCKS blocks of rows, (1, 1) for the others."""
    blockable = isinstance(layer, keras.layers.Dense) or type(layer) in fk.FLATTENABLE
    if blockable and all(fan_in(k) // block_size[0] >= MIN_BLOCKS for k in kernels):
        return tuple(block_size)
    return (1, 1)


def _pruning_wrapper(pruning_schedule, block_size, wrapped_names, to_prune):
    """The ``wrap(layer)`` that puts TF-MOT's pruning wrapper on a layer."""
    sparsity_keras = c.tfmot().sparsity.keras

    def wrap(layer):
        kernels = to_prune(layer)
        if not kernels:
            return layer
        blocks = _blocks_for(layer, kernels, block_size)
        if blocks != (1, 1) and type(layer) in fk.FLATTENABLE:
            # TF-MOT's block sparsity takes 2-D weights only
            layer = fk.flat_copy(layer)
            kernels = [layer.kernel]
        # Tell TF-MOT's wrapper what to prune: its registry lacks
        # Bidirectional, and would prune the kernels of small fan-in too.
        layer.get_prunable_weights = lambda: kernels
        wrapped_names.append(layer.name)
        return c.pass_masks_through(
            sparsity_keras.prune_low_magnitude(
                layer, pruning_schedule=pruning_schedule, block_size=blocks
            )
        )

    return wrap


@c.in_model_strategy
def prune(
    model,
    x,
    y=None,
    *,
    target_sparsity: float = 0.8,
    schedule: str = "polynomial",
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    block_size: tuple[int, int] | None = None,
    validation_split: float = 0.1,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=None,
    holdout=c.UNSET,
    dp: bool | dict | None = None,
) -> keras.Model:
    """Magnitude pruning: zeroes the smallest weights while fine-tuning.

    Wraps every prunable layer of a copy of ``model`` in TF-MOT's
    ``prune_low_magnitude`` (Dense, convolutions, Embedding, SimpleRNN, LSTM
    and GRU, and the recurrent layers inside ``Bidirectional``, which TF-MOT's
    registry lacks), fine-tunes it with the ``UpdatePruningStep`` callback
    while the sparsity rises to ``target_sparsity``, then strips the wrappers.
    The fine-tuning is gentle (issue 15): the learning rate decays along a
    cosine from the model's own to half of it, the last third of the steps
    are a recovery phase at the target sparsity, and the best epoch on
    held-out data is kept. Kernels whose units read fewer than 16 inputs
    (a recurrent layer's input kernel on a few features, the 3x3x1 first
    convolution of a grayscale image) stay dense when the model has larger
    kernels: pruning them cuts units off their inputs for few weights (a
    sunspots GRU lost 40% of its test MAE). Augmentation layers and layers
    without kernels are left as they are.

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
        epochs: int or None. Fine-tuning epochs; None: enough for 1,500
            steps, at least 2 (37 epochs of the digits, 41 batches each: 13
            cost the default MLP 1-3 points). `0` prunes at once, without fine-tuning
            (``x`` and ``y`` are not read; pass None): post-processing, the
            only pruning a model from `kdl.privacy.make_private` takes, since
            it keeps the model private with the same epsilon. Defaults to
            `None`.
        steps: int or None. The fine-tuning budget in optimizer steps
            instead of `epochs`, rounded up to whole epochs; give one of
            the two. None with `epochs=None`: 1,500 steps (at least 2
            epochs). Defaults to `None`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val), (x_val, y_val, sample_weight)
            or a Dataset. Defaults to `None`.
        learning_rate: float or None. The first fine-tuning learning rate,
            decayed along a cosine to half of it; None starts from the
            model's own (a model trained with a schedule keeps its schedule).
            Defaults to `None`.
        block_size: (int, int) or None. Prune kernels in blocks of this
            many (rows, columns) at once, TF-MOT's block sparsity: rows are
            a unit's inputs (for a convolution, kernel positions x input
            channels, which kdl hands TF-MOT as a matrix), columns are
            units. Only Dense, Conv1D and Conv2D kernels whose units each
            read at least 16 blocks get blocks (with 16 rows: 256 inputs or
            more); the other kernels are pruned weight by weight (blocks on
            a small head cost 10 points). Blocks of zeros compress better
            (gzipped int8 digits CNN pruned 80%: 13.6x smaller than float
            against 9.9x weight by weight) and suit sparse inference
            kernels. None: `(16, 1)`, and weight by weight when
            ``epochs=0``; `(1, 1)`: weight by weight everywhere. Defaults to
            `None`.
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
        verbose: int. 0 silent, 1 progress bar, 2 one line per epoch. Defaults
            to `1`.
        dp: None, True or dict. Fine-tune a model from
            `kdl.privacy.make_private` with DP-SGD: True keeps its clip norm
            and noise, a dict (``l2_norm_clip``, ``noise_multiplier``,
            ``method``) sets them. The result is private, and
            `kdl.privacy.statement` composes the first training and the
            fine-tuning into one epsilon. None refuses a private model.
            Defaults to `None`.

    Returns:
        A new compiled `kdl.keras.Model`, architecture and layer names as
        ``model``, without any TF-MOT wrapper (ready for kdl.save and
        kdl.export), with the same loss, metrics and optimizer type and a fresh
        optimizer state.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.
        kdl.errors.UnsupportedModelError: when the model has no layer TF-MOT
            can prune, is subclassed, or is private (and ``epochs`` > 0).

    Example:
        >>> pruned = prune(model, x_train, y_train, target_sparsity=0.5,
        ...                epochs=1, verbose=0)
        >>> sparsity(pruned)["overall"]  # doctest: +SKIP
        0.5
    """
    epochs = v.check_int(epochs, "epochs", _FUNC, min_value=0, allow_none=True)
    if c.check_budget(_FUNC, epochs, steps) is None and epochs == 0:
        return _prune_at_once(model, target_sparsity, block_size, _FUNC)
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
    info, target, block_size = _check_prune(
        model, x, y, target_sparsity, schedule, block_size, training
    )
    x_fit, y_fit, validation = c.split_holdout(
        x, y, info, extras, validation_data, model, _FUNC
    )
    per_epoch = c.steps_per_epoch(x_fit, info, batch_size)
    epochs = c.epochs_for(epochs, per_epoch, MIN_STEPS, extras.steps)
    pruning_schedule, reached = _pruning_schedule(schedule, target, epochs * per_epoch)
    wrapped_names = []
    work = c.wrapped_copy(
        c.plain_view(model),
        _pruning_wrapper(
            pruning_schedule, block_size, wrapped_names, kernel_filter(model)
        ),
    )
    if verbose:
        print(
            f"prune: {len(wrapped_names)} layers to {target:.0%} sparsity "
            f"({schedule} schedule) over {epochs * per_epoch} steps"
        )
    rate = c.fine_tune_rate(model, learning_rate, epochs * per_epoch)
    work = c.compile_work(work, model, dp, rate)
    sparsity_keras = c.tfmot().sparsity.keras
    # Only epochs that end at the target sparsity may be kept as the best.
    c.fine_tune(
        work,
        x_fit,
        y_fit,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=verbose,
        extras=extras,
        callbacks=[sparsity_keras.UpdatePruningStep()],
        first_epoch=(reached - 1) // per_epoch,
    )
    pruned = c.finish(
        work, _plain_convolutions(sparsity_keras.strip_pruning(work)), model, dp
    )
    if verbose:
        print(f"prune: done, sparsity {sparsity(pruned)['overall']:.3f}")
    return pruned


def _plain_convolutions(model):
    """``model`` with its flat-kernel convolutions made plain again."""
    if not any(fk.is_flat(layer) for layer in c.layers(model)):
        return model
    return keras.models.clone_model(
        model, clone_function=lambda layer: c.rewrap(layer, fk.plain_copy)
    )


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
    by_layer = {}
    zeros = total = 0
    for layer in c.layers(model):
        weights = [np.asarray(w) for w in c.kernel_variables(layer)]
        if not weights:
            continue
        layer_zeros = sum(int(np.sum(w == 0)) for w in weights)
        layer_total = sum(w.size for w in weights)
        by_layer[c.unwrapped(layer).name] = layer_zeros / layer_total
        zeros += layer_zeros
        total += layer_total
    return {"overall": zeros / total if total else 0.0, "layers": by_layer}
