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
from kdl.privacy import _tracking, accounting
from kdl.privacy.dp_training import is_private

__all__ = [
    "STATEMENT_JSON",
    "STATEMENT_TEXT",
    "PrivacyStatement",
    "epsilon_words",
    "statement",
    "save_statement",
]

STATEMENT_JSON = "privacy.json"
STATEMENT_TEXT = "privacy.txt"


@dataclasses.dataclass(frozen=True)
class PrivacyStatement:
    """The privacy guarantee of a finished DP-SGD run, in numbers and words.

    For a model that was trained, the numbers are what its ``fit`` calls
    recorded (each ``fit`` is one session; ``kdl.train`` calls ``fit``), never
    the plan given to ``make_private``.

    Attributes:
        epsilon: float. Epsilon at ``delta`` (``inf`` without noise).
        delta: float. The delta of (epsilon, delta)-DP.
        num_examples: int. Training examples sampled from (the fewest of any
            session).
        batch_size: int. Examples per batch (the largest of any session).
        epochs: int. Epochs trained, all sessions together.
        steps: int. Optimizer steps accounted for, all sessions together.
        noise_multiplier: float. Noise standard deviation over the clip norm.
        l2_norm_clip: float. Per-example gradient clip norm.
        method: str or None. How per-example gradients were computed.
        text: str. The statement in plain language.
        kept_epoch: int or None. The epoch (1-based) whose weights the model
            holds, when it was trained.
        selected_by: tuple of str. What checkpoint selection watched (only
            held-out validation quantities are allowed).
        public_pretraining: bool. The starting weights were declared public.
        sessions: tuple of dict. Each session's num_examples, batch_size,
            steps and epochs.
        tracked: bool. The numbers were recorded while training (False: a
            plan or values you passed).
        void: str or None. Why the statement is void (epsilon inf): the
            weights are not the ones the recorded DP steps produced.
        num_examples_given: bool. A session's number of examples was given
            by the caller (``fit(..., num_examples=)``), not counted.
        post_processing: tuple of str. Data-free changes declared after
            training (:func:`bind_post_processing`).
        search_trials: int or None. The model was chosen by ``kdl.tune``
            among this many trials; the sessions are all the trials', composed.
        planned_trials: int. Of those trials, how many had not run when the
            statement was made (a search under budgets): counted as planned.
        multiplicity: int. The most times one example appeared in one pass
            (any session); above 1 the steps are accounted as a group of that
            many copies (sampling rate 1 - (1 - batch/elements)^m, noise
            multiplier over m).
        rows_unchecked: int or None. Training rows whose fingerprints the
            file this model was loaded from did not keep (validation data is
            not checked against them).
        rows_not_saved: int or None. Training rows too many (over 1,000,000)
            for a saved .keras file to keep their fingerprints.
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
    kept_epoch: int | None = None
    selected_by: tuple = ()
    public_pretraining: bool = False
    sessions: tuple = ()
    tracked: bool = False
    void: str | None = None
    num_examples_given: bool = False
    post_processing: tuple = ()
    search_trials: int | None = None
    planned_trials: int = 0
    multiplicity: int = 1
    rows_unchecked: int | None = None
    rows_not_saved: int | None = None

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


def _session_words(session: dict, clip: float | None = None) -> str:
    rate = min(1.0, session["batch_size"] / session["num_examples"])
    copies = session.get("multiplicity") or 1
    if copies > 1:
        rate = accounting.group_step(1.0, batch_size=session["batch_size"],
                                     elements=session["elements"],
                                     copies=copies)[0]  # fmt: skip
    epochs = (
        f"{session['epochs']} epoch(s) in batches of {session['batch_size']}"
        if session["epochs"]
        else f"steps outside fit in batches of {session['batch_size']}"
    )
    noise = session.get("noise_multiplier")
    own = f", noise multiplier {noise:.4g}" if noise is not None else ""
    if session.get("l2_norm_clip") and clip and session["l2_norm_clip"] != clip:
        own += f", clip norm {session['l2_norm_clip']:g}"
    who = "each example" if copies == 1 else f"each group of {copies} copies"
    return (
        f"{session['num_examples']:,} examples: {epochs} ({session['steps']} "
        f"steps, {who} sampled with probability {rate:.2%} per step{own})"
    )


def _copies_lines(sessions) -> list[str]:
    """What the statement says of examples that appear several times."""
    lines = []
    for one in sessions:
        copies = one.get("multiplicity") or 1
        if copies == 1:
            continue
        how = (
            f"{one['elements']:,} elements per pass for the "
            f"{one['num_examples']:,} examples given (fit(..., num_examples=)): "
            f"an assumption made by giving num_examples, that no example "
            f"appears more than {copies} times per pass"
            if one.get("multiplicity_assumed")
            else "the largest count of one row in a pass"
        )
        lines.append(
            f"Rows appear up to {copies} times per pass: accounted as a group "
            f"of {copies} ({how}). The {copies} copies of one example shift a "
            f"batch's noisy sum by up to {copies} clip norms, so each step "
            f"counts as sampled with probability 1 - (1 - batch/elements)^"
            f"{copies} with the noise multiplier divided by {copies}."
        )
    return sorted(set(lines), key=lines.index)


def _training_lines(s: dict) -> list[str]:
    sessions = s["sessions"]
    if len(sessions) == 1:
        lines = [
            "This model was trained with differentially private SGD (DP-SGD) "
            f"on {_session_words(sessions[0], s['l2_norm_clip'])}."
        ]
    else:
        parts = "; ".join(
            f"({i}) {_session_words(one, s['l2_norm_clip'])}"
            for i, one in enumerate(sessions, 1)
        )
        lines = [
            f"This model was trained with differentially private SGD (DP-SGD) "
            f"in {len(sessions)} sessions: {parts}. Epsilon composes them all."
        ]
    if s["search_trials"]:
        lines.append(
            f"The model was chosen by a search of {s['search_trials']} trials "
            "(kdl.tune), composed: the sessions above are every trial's "
            "training on the same data, so the guarantee covers all the "
            "trials' models together and any choice among them."
        )
    if s["planned_trials"]:
        lines.append(
            f"{s['planned_trials']} of those trials had not run when this "
            "statement was made: each is counted as its plan (the most it may "
            "train), so the figure holds however the search goes on."
        )
    lines += _copies_lines(sessions)
    if s["num_examples_given"]:
        lines.append(
            "The number of examples of a session was given by the caller "
            "(fit(..., num_examples=): the distinct private examples of a "
            "pipeline that can repeat them), not counted by kdl."
        )
    if not s["tracked"]:
        lines.append(
            "These are the figures of the training plan (or the values passed "
            "to kdl.privacy.statement): the model recorded no training run."
        )
    restored = sum(one.get("restored_steps", 0) for one in sessions)
    if restored:
        lines.append(
            f"{restored} of these steps were taken before a fit began (a run "
            "resumed from its backup); they are counted with the data of the "
            "fit that found them."
        )
    clips = {one.get("l2_norm_clip") or s["l2_norm_clip"] for one in sessions}
    if len(clips) > 1:
        lines.append("The sessions clipped with different norms (named above); "
                     "the last session's:")  # fmt: skip
    lines.append(
        f"Each example's gradient was clipped to L2 norm {s['l2_norm_clip']:g}, "
        f"and Gaussian noise with standard deviation {s['noise_multiplier']:.4g}"
        f" x {s['l2_norm_clip']:g} was added to every batch's sum of gradients."
    )
    return lines


def _guarantee_lines(s: dict) -> list[str]:
    eps = s["epsilon"]
    if s["void"]:
        return [
            f"VOID: this statement does not hold for the model's weights: "
            f"{s['void']}. The model gives NO differential privacy guarantee "
            "(epsilon is infinite). If the new weights came from public data "
            "only, declare that with kdl.privacy.make_private(model, "
            "public_pretraining=True, ...)."
        ]
    if math.isinf(eps):
        return [
            "A training step ran without noise (noise multiplier 0: a plain "
            "optimizer without clipping and noise, or the noise set to 0), so "
            "this model is NOT differentially private: NO differential privacy "
            "guarantee (epsilon is infinite)."
        ]
    return [
        f"Guarantee: ({eps:.3g}, {s['delta']:.3g})-differential privacy.",
        epsilon_words(eps, s["delta"]),
    ]


# Bands of epsilon and what each lets one say truthfully (issue 31): the factor
# e^epsilon is a useful picture only while it is small; above ~10 it bounds
# nothing, and the words must say so instead of promising "almost as well".
_BANDS = (
    (
        1.0,
        "This is a strong guarantee: whatever anyone learns from the model, "
        "they could have learned almost as well if that example had not been "
        "in the data.",
    ),
    (
        4.0,
        "This is a moderate guarantee: the model can reveal something about "
        "any one example, but only to a bounded degree; it is not the "
        '"almost as well" of a small epsilon.',
    ),
    (
        10.0,
        "This is a weak guarantee in the worst case: the bound alone does not "
        "stop an attacker from becoming nearly sure whether one example was "
        "used. Models trained with DP-SGD at this epsilon usually resist the "
        "known attacks far better than the bound says, but that is observed, "
        "not guaranteed (kdl.privacy.audit measures it for this model).",
    ),
    (
        math.inf,
        "This bound gives almost no formal protection: it allows nearly "
        "anything to be learned about one example, so treat the model as not "
        "private for individuals. The clipping and noise may still limit "
        "memorization in practice, which only an audit (kdl.privacy.audit) "
        "can show.",
    ),
)


def _percent(p: float) -> str:
    if p > 0.9999:
        return "more than 99.99%"
    return f"{100 * p:.3g}%" if p < 0.99 else f"{100 * p:.2f}%"


def epsilon_words(epsilon: float, delta: float) -> str:
    """Plain words for an (epsilon, delta) guarantee, true at any epsilon.

    Three parts: the factor e^epsilon (the definition), what it means for an
    attacker who starts from a coin flip (posterior at most
    e^eps / (1 + e^eps), the hypothesis-testing reading of DP), and a sentence
    for epsilon's band (at most 1, at most 4, at most 10, above 10).

    Args:
        epsilon: float. The epsilon of the guarantee (finite, >= 0).
        delta: float. Its delta.

    Returns:
        str.

    Example:
        >>> epsilon_words(1.0, 1e-5)[:40]
        'In plain words: adding or removing any o'
    """
    sure = 1.0 / (1.0 + math.exp(-min(epsilon, 700.0)))
    band = next(text for top, text in _BANDS if epsilon <= top)
    return (
        f"In plain words: adding or removing any one training example "
        f"changes the probability of any outcome of training by at most a "
        f"factor of e^{epsilon:.3g} (about {_factor(epsilon)}), except "
        f"with probability at most {delta:.3g}. Someone who thought it a coin "
        f"flip whether an example was in the data can, after seeing the "
        f"model, be at most {_percent(sure)} sure either way (up to the same "
        f"small delta). {band}"
    )


def _weights_lines(s: dict) -> list[str]:
    lines = []
    sessions = s.get("sessions") or ()
    if s["kept_epoch"] is not None and len(sessions) > 1:
        # kept_epoch counts the last session's epochs, not all sessions'.
        lines.append(
            f"Weights kept: those after epoch {s['kept_epoch']} of the last "
            f"session ({sessions[-1]['epochs']} epoch(s) in it, {s['epochs']} in "
            "all); every step of every epoch is counted above."
        )
    elif s["kept_epoch"] is not None:
        lines.append(
            f"Weights kept: those after epoch {s['kept_epoch']} of the "
            f"{s['epochs']} trained; every step of every epoch is counted above."
        )
    if s["selected_by"]:
        watched = ", ".join(repr(m) for m in s["selected_by"])
        lines.append(
            f"Checkpoint selection and early stopping watched {watched}, "
            "computed on held-out validation data only (selection on training "
            "data is refused for private models)."
        )
    elif s["tracked"]:
        lines.append("No checkpoint selection was used.")
    if s["post_processing"]:
        lines.append(
            "After training, the weights were changed by a step declared to "
            "read no data (kdl.privacy.bind_post_processing: "
            + "; ".join(s["post_processing"])
            + "): post-processing, which keeps the guarantee."
        )
    if s.get("rows_unchecked"):
        lines.append(
            f"This model was loaded from a file that did not keep the "
            f"fingerprints of {s['rows_unchecked']:,} training rows (more than "
            f"{_tracking.ROWS_CAP:,}, or a format without assets: .h5, "
            "SavedModel), so validation data of its next private fit is not "
            "checked against them: hold out data it never trained on yourself."
        )
    if s.get("rows_not_saved"):
        lines.append(
            f"Its saved .keras files do not keep the fingerprints of its "
            f"{s['rows_not_saved']:,} training rows (more than "
            f"{_tracking.ROWS_CAP:,}), so a loaded copy does not refuse "
            "validation rows it trained on."
        )
    if s["public_pretraining"]:
        lines.append(
            "The starting weights were declared public (public_pretraining="
            "True): they were trained before DP-SGD on data the caller states "
            "is public. The guarantee covers the data trained on here, not the "
            "data behind the starting weights."
        )
    return lines


def _statement_text(s: dict) -> str:
    lines = _training_lines(s) + _guarantee_lines(s) + _weights_lines(s)
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
    """(privacy settings, optimizer steps taken or None)."""
    if isinstance(model_or_params, dict):
        return dict(model_or_params), None
    v.check_keras_model(model_or_params, "model_or_params", func)
    if not is_private(model_or_params):
        v.fail(
            func,
            "model_or_params",
            "a model returned by kdl.privacy.make_private, or a dict of its "
            "privacy_params",
            model_or_params.name,
        )
    return _tracking.snapshot(model_or_params), _tracking.iterations(model_or_params)


def _steps(session) -> str:
    n = session["steps"]
    return f"{n} step" + ("" if n == 1 else "s")


def _outside_fit_session(func, params, one, given) -> dict:
    """A session of steps no fit ran (train_on_batch, custom loops): its batch
    size and noise as the step recorded them; its examples the distinct rows
    train_on_batch gave it (fewer when given), else the number given (the
    plan is no evidence of what a loop trained on: issue 30)."""
    counted = one.get("num_examples")
    n = given["num_examples"]
    if counted is not None:
        n = counted if n is None else min(counted, n)
    if n is None:
        v.fail(
            func,
            "num_examples",
            f"given: the model took {_steps(one)} of DP-SGD that no fit "
            "recorded and whose rows kdl did not see (a custom loop calling "
            "train_step); pass the number of distinct examples that training "
            "sampled from",
            None,
        )
    n = v.check_int(n, "num_examples", func)
    batch = max(one["batch_size"], v.check_int(given["batch_size"] or 1,
                                               "batch_size", func))  # fmt: skip
    return dict(one, num_examples=n, batch_size=min(batch, n),
                num_examples_given=counted is None or n < counted)  # fmt: skip


def _tracked_sessions(func, params, given) -> list[dict]:
    """The recorded sessions, those outside fit completed."""
    sessions = [dict(one) for one in params["sessions"]]
    outside = any(one.get("outside_fit") for one in sessions)
    if not outside:
        for key in ("num_examples", "batch_size", "epochs"):
            if given[key] is not None:
                v.fail(
                    func,
                    key,
                    "None for a model that recorded its training (the "
                    "statement accounts for the examples, batch size and steps "
                    "actually used)",
                    given[key],
                )
    return [
        _outside_fit_session(func, params, one, given)
        if one.get("outside_fit")
        else one
        for one in sessions
    ]


def _void_session(params, given) -> dict:
    """The figures of a void statement for a model that recorded no training."""
    n = given["num_examples"] or params.get("num_examples") or 1
    b = min(n, given["batch_size"] or params.get("batch_size") or 1)
    return {"num_examples": n, "batch_size": b, "steps": 0, "epochs": 0}


def _planned_session(func, params, steps_taken, given) -> dict:
    """One session from the plan (or given values) of an untracked model."""
    for key in ("num_examples", "batch_size", "epochs"):
        if given[key] is not None:
            params[key] = given[key]
        if params.get(key) is None:
            v.fail(func, key, "given: make_private did not record it", None)
    n = v.check_int(params["num_examples"], "num_examples", func)
    b = v.check_int(params["batch_size"], "batch_size", func)
    epochs = v.check_int(params["epochs"], "epochs", func)
    if b > n:
        v.fail(func, "batch_size", f"at most num_examples ({n})", b)
    steps = accounting.steps_for(n, b, epochs)
    if steps_taken is not None and steps_taken > steps:
        warnings.warn(
            f"The model's optimizer took {steps_taken} steps, more than the "
            f"{steps} of {epochs} epoch(s) of {n} examples in batches of {b}; "
            f"epsilon is computed for {steps_taken} steps. Pass the epochs and "
            "batch size you trained with.",
            stacklevel=3,
        )
        steps = steps_taken
    return {"num_examples": n, "batch_size": b, "steps": steps, "epochs": epochs}


def _summary(params, sessions, tracked) -> dict:
    """The statement's figures, before epsilon and delta."""
    last = params["sessions"][-1] if tracked else {}
    selected = sorted({m for one in params.get("sessions") or [] for m in
                       one.get("selected_by") or []})  # fmt: skip
    return {
        "num_examples": min(one["num_examples"] for one in sessions),
        "batch_size": max(one["batch_size"] for one in sessions),
        "epochs": sum(one["epochs"] for one in sessions),
        "steps": sum(one["steps"] for one in sessions),
        "kept_epoch": last.get("kept_epoch"),
        "selected_by": tuple(selected),
        "public_pretraining": bool(params.get("public_pretraining", False)),
        "tracked": tracked,
        "void": params.get("void"),
        "post_processing": tuple(params.get("post_processing") or ()),
        "num_examples_given": any(one.get("num_examples_given") for one in sessions),
        "search_trials": params.get("search_trials"),
        "planned_trials": int(params.get("planned_trials") or 0),
        "rows_unchecked": params.get("rows_unchecked"),
        "rows_not_saved": params.get("rows_not_saved"),
        "multiplicity": max(one.get("multiplicity") or 1 for one in sessions),
        "sessions": tuple(
            {k: one[k] for k in ("num_examples", "batch_size", "steps", "epochs")}
            | {"restored_steps": one.get("restored_steps", 0)}
            | {"noise_multiplier": one.get("noise_multiplier")}
            | {"l2_norm_clip": one.get("l2_norm_clip")}
            | {
                k: one.get(k)
                for k in ("elements", "multiplicity", "multiplicity_assumed")
            }  # fmt: skip
            for one in sessions
        ),
    }


def statement(
    model_or_params,
    *,
    num_examples: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    delta: float | None = None,
) -> PrivacyStatement:
    """The privacy statement of a DP-SGD run: settings, epsilon and plain words.

    For a trained private model the figures are what its ``fit`` calls
    recorded: the examples actually sampled from (after ``validation_split``,
    counted for a ``tf.data`` dataset), the batch size and the optimizer steps
    actually taken, every session composed. It says which epoch's weights the
    model kept. For an untrained model or a dict of settings, values not
    given come from what :func:`make_private` recorded (a plan).

    Args:
        model_or_params: a model from :func:`make_private` (or a builder given
            :func:`dp_optimizer`), or a dict like :func:`privacy_params`
            returns.
        num_examples: int or None. Training examples, for a plan or for steps
            no fit recorded: required after a custom loop calling
            ``train_step`` (kdl saw no rows); ``train_on_batch`` steps are
            counted on the distinct rows they saw, or this when smaller.
            Defaults to `None`.
        batch_size: int or None. Batch size, likewise. Defaults to `None`.
        epochs: int or None. Epochs of a plan. Defaults to `None`.
        delta: float or None. Delta to report epsilon at; None takes the one
            given to make_private, else 1e-5 (0.1/num_examples when smaller).
            Defaults to `None`.

    Returns:
        PrivacyStatement.

    Raises:
        ValueError, TypeError: for a bad argument or a missing value, naming
            it (e.g. ``num_examples`` for a model that recorded its training).

    Example:
        >>> print(statement(private).text)
    """
    func = "kdl.privacy.statement"
    params, steps_taken = _params_from(model_or_params, func)
    given = {"num_examples": num_examples, "batch_size": batch_size,
             "epochs": epochs}  # fmt: skip
    for key in ("noise_multiplier", "l2_norm_clip"):
        if params.get(key) is None:
            v.fail(func, "model_or_params", f"privacy settings with {key!r}",
                   model_or_params)  # fmt: skip
    tracked = bool(params.get("sessions"))
    if tracked:
        sessions = _tracked_sessions(func, params, given)
    elif params.get("void"):  # no DP step made these weights: nothing to plan
        sessions = [_void_session(params, given)]
    else:
        sessions = [_planned_session(func, params, steps_taken, given)]
    values = _summary(params, sessions, tracked)
    delta = params.get("delta") if delta is None else delta
    if delta is None:
        delta = accounting.default_delta(values["num_examples"])
    delta = accounting.check_delta(func, delta, values["num_examples"])
    noise = v.check_float(params["noise_multiplier"], "noise_multiplier", func)
    # The noise the steps recorded (issue 30), not the setting, when lower.
    used = [one.get("noise_multiplier") for one in sessions if one.get("steps")]
    noise = min([noise] + [n for n in used if n is not None])
    clip = v.check_float(params["l2_norm_clip"], "l2_norm_clip", func,
                         strict_min=True)  # fmt: skip
    # The clip norm the steps recorded (review of issue 30: a recompile with
    # a DP optimizer of clip 100 was stated as the setting, 1): the last one.
    clips = [one.get("l2_norm_clip") for one in sessions if one.get("steps")]
    clip = next((c for c in reversed(clips) if c), clip)
    eps = accounting.epsilon_of_sessions(
        noise,
        [
            (
                one["num_examples"],
                one["batch_size"],
                one["steps"],
                one.get("noise_multiplier"),
                one.get("multiplicity") or 1,
                one.get("elements"),
            )
            for one in sessions
        ],  # fmt: skip
        delta,
    )
    if values["void"]:
        eps = math.inf
    values.update(epsilon=eps, delta=delta, noise_multiplier=noise,
                  l2_norm_clip=clip, method=params.get("method"))  # fmt: skip
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
