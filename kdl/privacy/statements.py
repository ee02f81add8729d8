"""Privacy statements: the guarantee of a finished DP-SGD run, in numbers and words.

:func:`statement` computes it; :func:`save_statement` writes it into a run
folder (privacy.json and privacy.txt).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

from kdl import _validation as v
from kdl._files import atomic_path
from kdl.privacy import accounting
from kdl.privacy.dp_training import is_private

__all__ = [
    "STATEMENT_JSON",
    "STATEMENT_TEXT",
    "PrivacyStatement",
    "statement",
    "save_statement",
]

STATEMENT_JSON = "privacy.json"
STATEMENT_TEXT = "privacy.txt"


@dataclasses.dataclass(frozen=True)
class PrivacyStatement:
    """The privacy guarantee of a finished DP-SGD run, in numbers and words.

    Attributes:
        epsilon: float. Epsilon at ``delta`` (``inf`` without noise).
        delta: float. The delta of (epsilon, delta)-DP.
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        steps: int. Optimizer steps accounted for.
        noise_multiplier: float. Noise standard deviation over the clip norm.
        l2_norm_clip: float. Per-example gradient clip norm.
        method: str or None. How per-example gradients were computed.
        text: str. The statement in plain language.
    """

    epsilon: float
    delta: float
    num_examples: int
    batch_size: int
    epochs: int
    steps: int
    noise_multiplier: float
    l2_norm_clip: float
    method: str | None
    text: str

    def to_dict(self) -> dict:
        """The statement as a JSON-ready dict (``epsilon`` inf becomes None)."""
        out = dataclasses.asdict(self)
        if math.isinf(out["epsilon"]):
            out["epsilon"] = None
        out["accountant"] = "dp_accounting RDP, Poisson-sampled Gaussian"
        return out

    def __str__(self) -> str:
        return self.text


def _factor(eps: float) -> str:
    factor = math.exp(min(eps, 700.0))
    if factor < 10:
        return f"{factor:.3g}"
    if factor < 1e9:
        return f"{factor:,.0f}"
    return f"{factor:.2e}"


def _statement_text(s: dict) -> str:
    eps = s["epsilon"]
    rate = s["batch_size"] / s["num_examples"]
    lines = [
        f"This model was trained with differentially private SGD (DP-SGD) on "
        f"{s['num_examples']:,} examples: {s['epochs']} epoch(s) in batches of "
        f"{s['batch_size']} ({s['steps']} steps, each example sampled with "
        f"probability {rate:.2%} per step).",
        f"Each example's gradient was clipped to L2 norm {s['l2_norm_clip']:g}, "
        f"and Gaussian noise with standard deviation {s['noise_multiplier']:.4g}"
        f" x {s['l2_norm_clip']:g} was added to every batch's sum of gradients.",
    ]
    if math.isinf(eps):
        lines.append(
            "The noise is zero, so this run gives NO differential "
            "privacy guarantee (epsilon is infinite)."
        )
    else:
        lines += [
            f"Guarantee: ({eps:.3g}, {s['delta']:.3g})-differential privacy.",
            f"In plain words: adding or removing any one training example "
            f"changes the probability of any outcome of training by at most a "
            f"factor of e^{eps:.3g} (about {_factor(eps)}), except "
            f"with probability at most {s['delta']:.3g}. So whatever anyone "
            "learns from the model, they could have learned almost as well "
            "if that example had not been in the data.",
        ]
    lines.append(
        "Accounting: dp_accounting's RDP accountant for the Poisson-sampled "
        "Gaussian mechanism (the standard DP-SGD analysis; Keras draws "
        "shuffled fixed-size batches instead, the usual approximation). The "
        "guarantee covers the trained weights and anything computed from them "
        "alone (pruning without data, quantization, export); more training on "
        "the same data spends more budget."
    )
    return "\n".join(lines)


def _params_from(model_or_params, func):
    if isinstance(model_or_params, dict):
        return dict(model_or_params), None
    v.check_keras_model(model_or_params, "model_or_params", func)
    if not is_private(model_or_params):
        v.fail(
            func,
            "model_or_params",
            "a model returned by "
            "kdl.privacy.make_private, or a dict of its privacy_params",
            model_or_params.name,
        )
    optimizer = getattr(model_or_params, "optimizer", None)
    steps_taken = None
    if optimizer is not None and hasattr(optimizer, "iterations"):
        steps_taken = int(optimizer.iterations.numpy())
    return dict(model_or_params.privacy), steps_taken


def statement(
    model_or_params,
    *,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    delta: float | None = None,
) -> PrivacyStatement:
    """The privacy statement of a DP-SGD run: settings, epsilon and plain words.

    Values not given come from what :func:`make_private` recorded. When the
    model's optimizer took more steps than the plan has, epsilon is computed
    for the steps it took (and a warning says so).

    Args:
        model_or_params: a model from :func:`make_private`, or a dict like
            :func:`privacy_params` returns.
        num_examples: int or None. Training examples. Defaults to `None`.
        batch_size: int or None. Batch size used. Defaults to `None`.
        epochs: int or None. Epochs trained. Defaults to `None`.
        delta: float or None. Delta to report epsilon at. Defaults to `None`.

    Returns:
        PrivacyStatement.

    Raises:
        ValueError, TypeError: for a bad argument or a missing value, naming it.

    Example:
        >>> print(statement(private, epochs=15).text)
    """
    func = "kdl.privacy.statement"
    params, steps_taken = _params_from(model_or_params, func)
    given = {
        "num_examples": num_examples,
        "batch_size": batch_size,
        "epochs": epochs,
        "delta": delta,
    }
    for key, value in given.items():
        if value is not None:
            params[key] = value
    for key in ("num_examples", "batch_size", "epochs"):
        if params.get(key) is None:
            v.fail(func, key, "given: make_private did not record it", None)
    for key in ("noise_multiplier", "l2_norm_clip", "delta"):
        if params.get(key) is None:
            v.fail(
                func,
                "model_or_params",
                f"privacy settings with {key!r}",
                model_or_params,
            )
    num_examples, batch_size, epochs, delta = accounting.check_accounting(
        func,
        params["num_examples"],
        params["batch_size"],
        params["epochs"],
        params["delta"],
    )
    noise = v.check_float(params["noise_multiplier"], "noise_multiplier", func)
    clip = v.check_float(params["l2_norm_clip"], "l2_norm_clip", func, strict_min=True)
    steps = accounting.steps_for(num_examples, batch_size, epochs)
    if steps_taken is not None and steps_taken > steps:
        warnings.warn(
            f"The model's optimizer took {steps_taken} steps, more than the "
            f"{steps} of {epochs} epoch(s) of {num_examples} examples in "
            f"batches of {batch_size}; epsilon is computed for {steps_taken} "
            "steps. Pass the epochs and batch size you trained with.",
            stacklevel=2,
        )
        steps = steps_taken
    eps = accounting.epsilon_for_steps(
        noise,
        num_examples=num_examples,
        batch_size=batch_size,
        steps=steps,
        delta=delta,
    )
    values = {
        "epsilon": eps,
        "delta": delta,
        "num_examples": num_examples,
        "batch_size": batch_size,
        "epochs": epochs,
        "steps": steps,
        "noise_multiplier": noise,
        "l2_norm_clip": clip,
        "method": params.get("method"),
    }
    return PrivacyStatement(**values, text=_statement_text(values))


def save_statement(
    run_dir,
    model_or_params,
    *,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    delta: float | None = None,
) -> Path:
    """Writes the privacy statement into a run folder (privacy.json, privacy.txt).

    Both files are written to temporary names and renamed into place, so an
    earlier statement is never left half-overwritten.

    Args:
        run_dir: str or Path. The run folder, e.g. ``kdl.train(...).run_dir``;
            created when missing.
        model_or_params: a model from :func:`make_private`, or a dict of its
            privacy_params.
        num_examples, batch_size, epochs, delta: as in :func:`statement`.

    Returns:
        Path: the privacy.json file.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> history = kdl.train(private, x, y, epochs=15, batch_size=64,
        ...                     run_dir="runs/dp")
        >>> save_statement(history.run_dir, private)
    """
    func = "kdl.privacy.save_statement"
    if not isinstance(run_dir, (str, Path)) or not str(run_dir):
        v.fail(func, "run_dir", "a folder path (str or Path)", run_dir, error=TypeError)
    result = statement(
        model_or_params,
        num_examples=num_examples,
        batch_size=batch_size,
        epochs=epochs,
        delta=delta,
    )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / STATEMENT_JSON
    with atomic_path(run_dir / STATEMENT_TEXT) as tmp:
        tmp.write_text(result.text + "\n", encoding="utf-8")
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return json_path
