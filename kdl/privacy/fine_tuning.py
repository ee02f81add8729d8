"""Private fine-tuning after compression: DP-SGD on, and one epsilon for all.

Pruning, clustering and shrinking fine-tune a model on the training data. For
a private model that must be DP-SGD too, and the privacy statement must cover
both the first training and the fine-tuning (upstream issue 16). The
compression code calls two functions:

- :func:`private_fine_tune_setup` makes the model it is about to fine-tune (a
  TF-MOT-wrapped or shrunk copy) a private model: DP-compiled, carrying the
  earlier run's sessions, so its ``fit`` records one more session.
- :func:`private_fine_tune_result` makes the final model (wrappers stripped)
  private with the whole history.

``kdl.privacy.statement`` then composes every session with dp_accounting, each
with its own noise multiplier.
"""

from __future__ import annotations

from kdl import _validation as v
from kdl._model_utils import compile_like, copy_model
from kdl.backend import keras
from kdl.privacy import _ledger
from kdl.privacy.dp_training import (
    METHODS,
    check_layers,
    choose_method,
    dp_optimizer_like,
    is_dp_optimizer,
    is_private,
    privacy_params,
)

__all__ = [
    "private_fine_tune_setup",
    "private_fine_tune_result",
    "bind_post_processing",
]

_SETTINGS = ("l2_norm_clip", "noise_multiplier", "method", "public_pretraining")


def _classes():
    from kdl.privacy import _dp_classes

    return _dp_classes


def _inherited_sessions(params) -> list[dict]:
    """The earlier sessions, each with its own noise, rebased on a new
    optimizer (its step counter starts again at 0)."""
    sessions = []
    for one in params.get("sessions") or []:
        one = dict(one, end_iteration=0)
        one.setdefault("noise_multiplier", params.get("noise_multiplier"))
        one.setdefault("l2_norm_clip", params.get("l2_norm_clip"))
        sessions.append(one)
    return sessions


def _plain_optimizer(optimizer, learning_rate):
    """A fresh non-DP optimizer like ``optimizer`` (a DP one loses its DP)."""
    config = dict(optimizer.get_config())
    cls = type(optimizer)
    if is_dp_optimizer(optimizer):
        config.pop("l2_norm_clip", None)
        config.pop("noise_multiplier", None)
        cls = getattr(keras.optimizers.legacy, type(optimizer).__name__[2:])
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return cls.from_config(config)


def _check_settings(func, model, dp_settings) -> dict:
    if dp_settings is None:
        dp_settings = {}
    if not isinstance(dp_settings, dict):
        v.fail(func, "dp_settings", "a dict (or None)", dp_settings, error=TypeError)
    unknown = sorted(set(dp_settings) - set(_SETTINGS))
    if unknown:
        v.fail(func, "dp_settings", "a dict with keys among " + ", ".join(_SETTINGS),
               unknown)  # fmt: skip
    # Everything the model trained, steps outside fit and a void included.
    earlier = privacy_params(model) if is_private(model) else {}
    public = v.check_bool(dp_settings.get("public_pretraining", False),
                          "public_pretraining", func)  # fmt: skip
    if not earlier and not public:
        v.fail(func, "model", "a private model (from kdl.privacy.make_private), or "
               "dp_settings with public_pretraining=True for weights trained on "
               "public data only", model.name)  # fmt: skip
    s = {key: dp_settings.get(key, earlier.get(key)) for key in _SETTINGS[:2]}
    if s["noise_multiplier"] is None:
        v.fail(func, "dp_settings", "with 'noise_multiplier' (the model has none)",
               dp_settings)  # fmt: skip
    s["l2_norm_clip"] = v.check_float(
        1.0 if s["l2_norm_clip"] is None else s["l2_norm_clip"],
        "l2_norm_clip", func, strict_min=True,
    )  # fmt: skip
    s["noise_multiplier"] = v.check_float(s["noise_multiplier"], "noise_multiplier",
                                          func)  # fmt: skip
    s["method"] = v.check_choice(dp_settings.get("method", "auto"), "method", func,
                                 METHODS)  # fmt: skip
    s["public_pretraining"] = public or bool(earlier.get("public_pretraining"))
    s["earlier"] = earlier
    return s


def _private_on(new_model, params, source, learning_rate, func):
    """``new_model``'s layers as a PrivateModel, compiled like ``source``."""
    private = _classes().PrivateModel(
        inputs=new_model.inputs,
        outputs=new_model.outputs,
        name=new_model.name,
        privacy=params,
    )
    if params["method"] == "optimizer":
        base = _plain_optimizer(source.optimizer, None)
        optimizer = dp_optimizer_like(base, params["l2_norm_clip"],
                                      params["noise_multiplier"], func,
                                      learning_rate=learning_rate)  # fmt: skip
    else:
        optimizer = _plain_optimizer(source.optimizer, learning_rate)
    return compile_like(private, source, optimizer=optimizer)


def _fine_tune_method(new_model, method, func):
    """ "auto": the fast path when the registry covers the model, else the DP
    optimizer, which trains any model (TF-MOT wrappers included)."""
    chosen = choose_method(new_model, method, func)
    return "optimizer" if method == "auto" and chosen == "vectorized" else chosen


def private_fine_tune_setup(
    model, new_model, dp_settings: dict | None = None, *, learning_rate=None
):
    """``new_model`` as a private model that fine-tunes with DP-SGD.

    For compression of a private model: ``model`` is the private model given
    to ``prune``, ``cluster`` or ``shrink``; ``new_model`` the model about to
    be fine-tuned (a TF-MOT-wrapped or shrunk copy). The result shares
    ``new_model``'s layers (so TF-MOT's callbacks find its wrappers), trains
    with DP-SGD, and carries ``model``'s earlier sessions: its statement
    composes them with the fine-tuning.

    Args:
        model: kdl.keras.Model. The private model being compressed (or a
            model trained on public data only, with
            ``dp_settings={"public_pretraining": True, ...}``).
        new_model: kdl.keras.Model. The functional model to fine-tune.
        dp_settings: dict or None. ``l2_norm_clip``, ``noise_multiplier``,
            ``method`` ("auto": kdl's fast path when it covers ``new_model``,
            else the DP optimizer) and ``public_pretraining``; missing keys
            take ``model``'s settings. Defaults to `None`.
        learning_rate: float or None. The fine-tuning learning rate; None
            keeps the optimizer's. Defaults to `None`.

    Returns:
        A compiled private model (kdl's ``PrivateModel``) on ``new_model``'s
        layers, with ``model``'s loss and metrics.

    Raises:
        ValueError, TypeError: for a bad argument, naming it (e.g. a model
            that is not private without ``public_pretraining``).

    Example:
        >>> work = tfmot.sparsity.keras.prune_low_magnitude(plain_copy)
        >>> dp_work = private_fine_tune_setup(private, work)
        >>> dp_work.fit(x, y, batch_size=64, epochs=2,
        ...             callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
        >>> final = private_fine_tune_result(
        ...     dp_work, tfmot.sparsity.keras.strip_pruning(dp_work))
    """
    func = "kdl.privacy.private_fine_tune_setup"
    v.check_keras_model(model, "model", func)
    v.check_keras_model(new_model, "new_model", func)
    check_layers(new_model, func)
    s = _check_settings(func, model, dp_settings)
    source = model if getattr(model, "optimizer", None) is not None else new_model
    if getattr(source, "optimizer", None) is None:
        v.fail(func, "model", "a compiled model", model.name)
    method = _fine_tune_method(new_model, s["method"], func)
    earlier = s["earlier"]
    params = {
        "l2_norm_clip": s["l2_norm_clip"], "noise_multiplier": s["noise_multiplier"],
        "delta": earlier.get("delta"), "method": method, "num_examples": None,
        "batch_size": None, "epochs": None, "target_epsilon": None,
        "public_pretraining": s["public_pretraining"],
        "sessions": _inherited_sessions(earlier),
    }  # fmt: skip
    if earlier.get("void"):
        params["void"] = earlier["void"]  # compression does not launder it
    return _private_on(new_model, params, source, learning_rate, func)


def _same_weights(trained, final_model) -> bool:
    """Whether each trainable weight of ``final_model`` is one of
    ``trained``'s weights (by value: strip_pruning keeps the tensors)."""
    produced = {int(x) for x in _ledger.fingerprint(_ledger.parameters(trained))}
    final = _ledger.fingerprint(final_model.trainable_weights).numpy()
    return all(int(x) in produced for x in final)


def private_fine_tune_result(trained, final_model):
    """The final compressed model, private with the whole training history.

    Args:
        trained: kdl.keras.Model. The model from
            :func:`private_fine_tune_setup`, after its ``fit``.
        final_model: kdl.keras.Model. The model to return to the user (e.g.
            after ``strip_pruning``), functional.

    Returns:
        A compiled private model on ``final_model``'s layers whose statement
        composes every session (the first training and the fine-tuning).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> final = private_fine_tune_result(dp_work, strip_pruning(dp_work))
        >>> statement(final).epsilon
    """
    func = "kdl.privacy.private_fine_tune_result"
    v.check_keras_model(trained, "trained", func)
    v.check_keras_model(final_model, "final_model", func)
    if not is_private(trained):
        v.fail(func, "trained", "a model from private_fine_tune_setup", trained.name)
    check_layers(final_model, func)
    params = privacy_params(trained)
    if not params.get("void") and not _same_weights(trained, final_model):
        params["void"] = (
            "final_model's trainable weights are not ones the recorded DP "
            "steps produced (private_fine_tune_result was given a model other "
            "than the DP-trained one)"
        )
    final_model = copy_model(final_model)  # its own layers, each called once
    params["sessions"] = _inherited_sessions(params)
    params["method"] = _fine_tune_method(final_model, "auto", func)
    return _private_on(final_model, params, trained, None, func)


def bind_post_processing(model, what: str, transform) -> None:
    """Applies a data-free transform to a private model's weights and binds
    the statement to the result.

    For kdl's own data-free transforms of a private model's weights (one-shot
    magnitude pruning): post-processing keeps the DP guarantee, so the
    statement holds for the new weights; it names ``what`` was done. kdl
    applies ``transform`` itself, after checking the weights are the ones the
    recorded DP steps produced: a statement void before (weights changed by
    anything else, e.g. training through another model sharing the layers)
    stays void, since kdl cannot tell a data-free change from training.

    Args:
        model: kdl.keras.Model. A private model.
        what: str. The post-processing, as the statement will name it.
        transform: callable. ``transform(model)`` changes the weights in
            place without reading any data.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.
    """
    func = "kdl.privacy.bind_post_processing"
    v.check_keras_model(model, "model", func)
    if not is_private(model) or not hasattr(model, "kdl_ledger"):
        v.fail(func, "model", "a model from kdl.privacy.make_private", model.name)
    if not isinstance(what, str) or not what:
        v.fail(func, "what", "a non-empty str", what, error=TypeError)
    if not callable(transform):
        v.fail(func, "transform", "a callable", transform, error=TypeError)
    # Void already (declared, foreign DP steps, or weights that are not the
    # DP steps'): the transform is applied, the statement stays void.
    void = privacy_params(model).get("void")
    transform(model)
    if void:
        model.privacy["void"] = void
        return
    model.kdl_ledger.adopt(model)
    done = list(model.privacy.get("post_processing") or [])
    model.privacy["post_processing"] = done + [what]
