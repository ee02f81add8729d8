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
from kdl.privacy._statement_words import epsilon_words, statement_text
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
                for k in (
                    "elements",
                    "multiplicity",
                    "multiplicity_assumed",
                    "outside_fit",
                )
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
                # Steps outside fit (train_on_batch, custom loops) drew their
                # batches as the caller chose, not at random: a row in them is
                # in every step (rate 1, no amplification by sampling).
                one["batch_size"] if one.get("outside_fit") else one["num_examples"],
                one["batch_size"],
                one["steps"],
                one.get("noise_multiplier"),
                one.get("multiplicity") or 1,
                one["batch_size"] if one.get("outside_fit") else one.get("elements"),
            )
            for one in sessions
        ],  # fmt: skip
        delta,
    )
    if values["void"]:
        eps = math.inf
    values.update(epsilon=eps, delta=delta, noise_multiplier=noise,
                  l2_norm_clip=clip, method=params.get("method"))  # fmt: skip
    return PrivacyStatement(**values, text=statement_text(values))


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
