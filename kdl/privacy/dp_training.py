"""DP-SGD training: make_private and the DP model and optimizer paths.

:func:`make_private` turns a compiled model into a new one that trains with
DP-SGD (TensorFlow Privacy): every example's gradient is clipped to an L2 norm
and Gaussian noise is added to each batch's sum of clipped gradients.

TensorFlow Privacy is imported only inside the functions that need it (through
the private module ``kdl.privacy._dp_classes``).
"""

from __future__ import annotations

import inspect

from kdl import _validation as v
from kdl._model_utils import copy_model, fresh_metrics
from kdl.backend import keras
from kdl.privacy import _defaults, _tracking, accounting
from kdl.privacy._losses import loss_object
from kdl.privacy._model_checks import (
    check_fresh,
    check_layers,
    check_plan,
    check_state,
    choose_method,
)
from kdl.privacy._tracking import iterations

__all__ = [
    "METHODS",
    "DP_OPTIMIZER_NAMES",
    "make_private",
    "dp_optimizer",
    "is_dp_optimizer",
    "compile_private",
    "is_private",
    "privacy_params",
    "custom_objects",
]

METHODS = ("auto", "fast", "vectorized", "optimizer")
# kdl.privacy.dp_optimizer names (as the builders' optimizer names) -> the
# legacy tf_keras optimizer and its settings.
DP_OPTIMIZER_NAMES = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
}
FUNC = "kdl.privacy.make_private"


def _classes():
    from kdl.privacy import _dp_classes

    return _dp_classes


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
    objects = {"PrivateModel": classes.PrivateModel}
    for name, cls in classes.dp_optimizer_classes().items():
        objects[f"DP{name}"] = cls
    objects.update({f"kdl>{name}": cls for name, cls in list(objects.items())})
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
        dict with l2_norm_clip, noise_multiplier, delta (None: chosen by the
        statement for the examples trained on), method, the plan
        num_examples, batch_size, epochs, target_epsilon (None when not
        given), public_pretraining, and sessions: what each ``fit`` trained
        on (examples, batch size, steps, epochs, the epoch kept).

    Raises:
        ValueError: if the model is not private.

    Example:
        >>> privacy_params(private)["noise_multiplier"]
    """
    func = "kdl.privacy.privacy_params"
    v.check_keras_model(model, "model", func)
    if not is_private(model):
        v.fail(func, "model", "a model returned by kdl.privacy.make_private", model)
    if not hasattr(model, "kdl_ledger"):
        return dict(model.privacy)
    params = _tracking.snapshot(model)
    params.pop("fingerprints", None)  # the weights known to be DP steps'
    return params


# === Checks that read the private classes (the rest: _model_checks) ===


def check_model(model, func, public_pretraining=False):
    v.check_keras_model(model, "model", func)
    if is_private(model) and not public_pretraining:
        v.fail(
            func,
            "model",
            "a model that is not private yet (or, for a private model whose "
            "weights were since changed with public data only, "
            "public_pretraining=True)",
            model.name,
        )
    if model.optimizer is None or getattr(model, "loss", None) is None:
        v.fail(
            func, "model", "a compiled model (every kdl builder compiles)", model.name
        )
    check_layers(model, func)
    check_state(model, func)
    check_fresh(model, public_pretraining, func)


def check_settings(func, settings: dict) -> dict:
    """Checks make_private's keyword arguments; returns them normalised."""
    s = dict(settings)
    s["l2_norm_clip"] = v.check_float(
        s["l2_norm_clip"], "l2_norm_clip", func, strict_min=True
    )
    s["noise_multiplier"] = v.check_float(
        s["noise_multiplier"], "noise_multiplier", func, allow_none=True
    )
    s["target_epsilon"] = v.check_float(
        s["target_epsilon"], "target_epsilon", func, strict_min=True, allow_none=True
    )
    plan = {}
    for arg in ("num_examples", "batch_size", "epochs"):
        plan[arg] = s[arg] = v.check_int(s[arg], arg, func, allow_none=True)
    # issue 23: no batch_size/epochs with a target -> DP defaults (_defaults.py)
    s["planned"] = _defaults.fill_plan(s)
    plan.update(batch_size=s["batch_size"], epochs=s["epochs"])
    s["method"] = v.check_choice(s["method"], "method", func, METHODS)
    check_plan(func, s["noise_multiplier"], s["target_epsilon"], plan)
    if s["delta"] is None and s["target_epsilon"] is not None:
        # The calibration needs a delta now; without a target it is chosen
        # when the statement knows how many examples were trained on.
        s["delta"] = accounting.default_delta(s["num_examples"])
    if s["delta"] is not None:
        s["delta"] = accounting.check_delta(func, s["delta"], s["num_examples"])
    return s


# === DP optimizers ===


def _fresh_optimizer(optimizer):
    return type(optimizer).from_config(optimizer.get_config())


def dp_optimizer_like(
    optimizer, l2_norm_clip, noise_multiplier, func, arg="model", learning_rate=None
):
    """The DP Keras optimizer with the hyperparameters of ``optimizer``."""
    name = type(optimizer).__name__
    classes = _classes()
    if name not in classes.DP_OPTIMIZERS:
        requirement = (
            "compiled with an SGD, Adam, RMSprop or Adagrad optimizer for "
            "method 'optimizer'"
            if arg == "model"
            else "one of "
            + ", ".join(repr(k) for k in DP_OPTIMIZER_NAMES)
            + ", or a kdl.keras SGD, Adam, RMSprop or Adagrad optimizer"
        )
        v.fail(func, arg, requirement, name)
    cls = classes.dp_optimizer_classes()[name]
    config = optimizer.get_config()
    allowed = inspect.signature(getattr(keras.optimizers.legacy, name)).parameters
    kwargs = {k: val for k, val in config.items() if k in allowed and k != "name"}
    if learning_rate is not None:
        kwargs["learning_rate"] = learning_rate
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(
            kwargs["learning_rate"]
        )
    return cls(l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier, **kwargs)


# === make_private ===


def _metrics_of(model):
    """The metrics ``model`` was compiled with, as fresh objects or names."""
    return fresh_metrics((model.get_compile_config() or {}).get("metrics")) or None


def _earlier_sessions(model) -> list[dict]:
    """The DP sessions a private model already trained (public_pretraining=True
    declares only the changes since public; the DP steps still count)."""
    if not is_private(model):
        return []
    sessions = privacy_params(model).get("sessions") or []
    return [dict(one, end_iteration=0) for one in sessions]


def _plain(optimizer):
    """A non-DP optimizer like ``optimizer`` (a DP one loses its DP)."""
    if not is_dp_optimizer(optimizer):
        return optimizer
    config = dict(optimizer.get_config())
    config.pop("l2_norm_clip", None)
    config.pop("noise_multiplier", None)
    return getattr(keras.optimizers.legacy, type(optimizer).__name__[2:]).from_config(
        config
    )


def _build_private(model, params, loss, func):
    """The PrivateModel: a copy of ``model`` compiled for ``params``."""
    clone = copy_model(model)  # new layers: the input stays untouched
    private = _classes().PrivateModel(
        inputs=clone.inputs, outputs=clone.outputs, name=model.name, privacy=params
    )
    _tracking.carry_rows(model, private)  # a private model's earlier rows
    base = _plain(model.optimizer)
    if params["method"] == "optimizer":
        optimizer = dp_optimizer_like(
            base, params["l2_norm_clip"], params["noise_multiplier"], func
        )
    else:
        optimizer = _fresh_optimizer(base)
    private.compile(optimizer=optimizer, loss=loss, metrics=_metrics_of(model))
    return private


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
    public_pretraining: bool = False,
):
    """Returns a new compiled model that trains with DP-SGD.

    Each example's gradient is clipped to ``l2_norm_clip`` and Gaussian noise
    of standard deviation ``noise_multiplier * l2_norm_clip`` is added to the
    sum of the batch before the optimizer step. Give either the noise, or a
    ``target_epsilon`` with the training plan (``num_examples``,
    ``batch_size``, ``epochs``) and the noise is calibrated for it. Train the
    result with ``kdl.train`` or ``fit`` using that batch size and number of
    epochs; any dataset size works (a smaller last batch is fine).

    DP-aware defaults (issue 23): with ``target_epsilon`` and
    ``num_examples`` but neither ``batch_size`` nor ``epochs``,
    make_private plans them (batch 256, or a quarter of fewer than 1,024
    examples; 40 epochs), and a model compiled with the builders' default
    optimizer (Adam at 1e-3) trains at 0.01; ``kdl.train`` without
    ``epochs`` and ``batch_size`` then follows the plan. On the digits the
    default ``build_cnn`` reaches 0.89-0.93 at epsilon 8 that way (0.54-0.77
    with ``kdl.train``'s plain defaults).

    ``method`` picks how per-example gradients are computed, all exactly:
    "fast" is kdl's ghost clipping: per-example gradient norms from each
    layer's inputs and backpropagated gradients, without per-example
    gradients, in one forward and one backward pass (Dense, Embedding,
    Conv1D, Conv2D, SimpleRNN, GRU, LSTM, also Bidirectional: every
    builder's model without BatchNormalization); "vectorized" is TensorFlow
    Privacy's DPModel with vectorized per-example gradients (no recurrent
    layers); "optimizer" uses the DP Keras optimizers (any model, slowest).
    "auto" takes "fast" when every trainable layer is covered.

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
            examples (0.1/num_examples), for the examples actually trained
            on. Defaults to `None`.
        num_examples: int or None. Training examples (needed with
            `target_epsilon`, and for the privacy statement). Defaults to
            `None`.
        batch_size: int or None. Batch size of training; None with
            `target_epsilon` and without `epochs`: planned (see above).
            Defaults to `None`.
        epochs: int or None. Epochs of training; None with `target_epsilon`
            and without `batch_size`: planned. Defaults to `None`.
        method: str. "auto", "fast", "vectorized" or "optimizer". Defaults to
            `"auto"`.
        public_pretraining: bool. Declares that ``model``'s current weights
            were trained on public data only. Without it a model whose
            optimizer already took steps is refused: its weights may encode
            the private data, which no DP guarantee covers. The statement
            records the declaration. Defaults to `False`.

    Returns:
        A new compiled model (kdl's ``PrivateModel``) with the weights of
        ``model``, its optimizer settings, loss and metrics. Its ``privacy``
        attribute records the settings (see :func:`privacy_params`).

    Raises:
        ValueError, TypeError: for a bad argument, naming it; ValueError for
            a model already trained (see `public_pretraining`).

    Example:
        >>> model = build_mlp((64,), 10, optimizer="sgd", learning_rate=0.5)
        >>> private = make_private(model, target_epsilon=8.0, delta=1e-5,
        ...                        num_examples=1437, batch_size=64, epochs=15)
        >>> private.privacy["method"]
        'fast'
    """
    func = FUNC
    public = v.check_bool(public_pretraining, "public_pretraining", func)
    check_model(model, func, public)
    s = check_settings(func, {
        "l2_norm_clip": l2_norm_clip, "noise_multiplier": noise_multiplier,
        "target_epsilon": target_epsilon, "delta": delta,
        "num_examples": num_examples, "batch_size": batch_size, "epochs": epochs,
        "method": method,
    })  # fmt: skip
    loss = loss_object(model.loss, func)
    s["method"] = choose_method(model, s["method"], func)
    if s["method"] == "optimizer":
        dp_optimizer_like(_plain(model.optimizer), s["l2_norm_clip"], 0.0, func)

    # === Work starts here: every argument is valid ===
    if s["target_epsilon"] is not None:
        s["noise_multiplier"] = accounting.calibrate(
            s["target_epsilon"],
            num_examples=s["num_examples"],
            batch_size=s["batch_size"],
            epochs=s["epochs"],
            delta=s["delta"],
        )
    keys = ("l2_norm_clip", "noise_multiplier", "delta", "method", "num_examples",
            "batch_size", "epochs", "target_epsilon")  # fmt: skip
    params = {k: s[k] for k in keys}
    params.update(public_pretraining=public, sessions=_earlier_sessions(model))
    private = _build_private(model, params, loss, func)
    # issue 23: a plan make_private chose comes with a DP learning rate
    rate = _defaults.dp_learning_rate(model.optimizer, s) if s["planned"] else None
    if rate is not None:
        private.optimizer.learning_rate = rate
    return private


# === DP optimizers in the builders ===


def dp_optimizer(
    name="sgd",
    *,
    l2_norm_clip: float = 1.0,
    noise_multiplier: float,
    learning_rate=None,
):
    """TensorFlow Privacy's DP Keras optimizer, for ``optimizer=`` of a builder.

    Every kdl builder accepts the result as ``optimizer=``: it compiles the
    per-example loss DP-SGD needs and returns a private model, the same as
    ``make_private(model, method="optimizer", ...)`` would (privacy
    statement, accounting, saving and loading). No TF Privacy import switch
    is needed.

    Args:
        name: str or optimizer. "sgd", "momentum" (SGD with momentum 0.9,
            Nesterov), "adam", "rmsprop" or "adagrad"; or a kdl.keras SGD,
            Adam, RMSprop or Adagrad optimizer whose settings to copy.
            Defaults to `"sgd"`.
        l2_norm_clip: float. Per-example gradient clip norm, > 0. Defaults to
            `1.0`.
        noise_multiplier: float. Noise standard deviation over the clip norm,
            >= 0 (0 gives no privacy). Required.
        learning_rate: float, schedule or None. None keeps the optimizer's
            default (or the given optimizer's). Defaults to `None`.

    Returns:
        A DP Keras optimizer (a subclass of TF Privacy's
        ``make_keras_generic_optimizer_class`` on the legacy tf_keras
        optimizer, with a config that reloads).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> opt = dp_optimizer("adam", l2_norm_clip=1.0, noise_multiplier=1.1,
        ...                    learning_rate=1e-3)
        >>> model = build_mlp((64,), 10, optimizer=opt)
        >>> is_private(model)
        True
    """
    func = "kdl.privacy.dp_optimizer"
    v.check_keras2(name, "name", func)
    if not isinstance(name, keras.optimizers.Optimizer) and not isinstance(
        name, keras.optimizers.legacy.Optimizer
    ):
        v.check_choice(name, "name", func, DP_OPTIMIZER_NAMES)
    clip = v.check_float(l2_norm_clip, "l2_norm_clip", func, strict_min=True)
    noise = v.check_float(noise_multiplier, "noise_multiplier", func)
    v.check_keras2(learning_rate, "learning_rate", func)
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = v.check_float(
            learning_rate, "learning_rate", func, strict_min=True, allow_none=True
        )
    if not isinstance(name, str):
        return dp_optimizer_like(
            name, clip, noise, func, arg="name", learning_rate=learning_rate
        )
    base, settings = DP_OPTIMIZER_NAMES[name]
    if learning_rate is not None:
        settings = {**settings, "learning_rate": learning_rate}
    cls = _classes().dp_optimizer_classes()[base]
    return cls(l2_norm_clip=clip, noise_multiplier=noise, **settings)


def is_dp_optimizer(optimizer) -> bool:
    """True for an optimizer from :func:`dp_optimizer` (or a loaded one).

    Cheap: it never imports TensorFlow Privacy (no DP optimizer can exist
    before kdl's DP classes are imported).
    """
    import sys

    classes = sys.modules.get("kdl.privacy._dp_classes")
    if classes is None:
        return False
    return isinstance(optimizer, tuple(classes.dp_optimizer_classes().values()))


def compile_private(model, optimizer, *, loss, metrics=None, func=None):
    """Compiles a freshly built model with a DP optimizer into a private model.

    The hook the builders call when ``optimizer=`` is a DP optimizer from
    :func:`dp_optimizer`: the result is kdl's ``PrivateModel`` (method
    "optimizer") on ``model``'s layers, with the per-example loss DP-SGD
    needs, exactly as :func:`make_private` with ``method="optimizer"`` makes
    it.

    Args:
        model: kdl.keras.Model. A functional single-output model, not trained
            (its layers are reused).
        optimizer: a DP optimizer from :func:`dp_optimizer`, not used before.
        loss: str or Loss. E.g. "sparse_categorical_crossentropy".
        metrics: list or None. Defaults to `None`.
        func: str or None. The public function to name in error messages.
            Defaults to `None` ("kdl.privacy.compile_private").

    Returns:
        The compiled private model.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> private = compile_private(model, dp_optimizer("sgd",
        ...     noise_multiplier=1.0), loss="sparse_categorical_crossentropy")
    """
    func = func or "kdl.privacy.compile_private"
    v.check_keras_model(model, "model", func)
    if not is_dp_optimizer(optimizer):
        v.fail(func, "optimizer", "a DP optimizer from kdl.privacy.dp_optimizer",
               type(optimizer).__name__, error=TypeError)  # fmt: skip
    if iterations(model) or int(optimizer.iterations.numpy()):
        v.fail(func, "optimizer", "a new DP optimizer for a new model (each "
               "model needs its own, untrained)", type(optimizer).__name__)  # fmt: skip
    check_layers(model, func)
    check_state(model, func)
    # make_private's checks: a model over layers already trained (privately
    # or not, e.g. keras.Model(p.inputs, p.outputs)) is refused the same way.
    check_fresh(model, False, func)
    loss = loss_object(loss, func, arg="loss")
    params = {
        "l2_norm_clip": float(optimizer.l2_norm_clip),
        "noise_multiplier": float(optimizer.noise_multiplier),
        "delta": None, "method": "optimizer", "num_examples": None,
        "batch_size": None, "epochs": None, "target_epsilon": None,
        "public_pretraining": False, "sessions": [],
    }  # fmt: skip
    private = _classes().PrivateModel(
        inputs=model.inputs, outputs=model.outputs, name=model.name, privacy=params
    )
    private.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return private
