"""The words of a privacy statement: what its numbers mean, in sentences.

Split from :mod:`kdl.privacy.statements` (issue 27: no module over 600
lines). Each function turns the statement's figures (a dict) into lines.
"""

from __future__ import annotations

import math

from kdl.privacy import _tracking, accounting


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
    if session.get("outside_fit"):  # batches the caller chose: no sampling
        rate = 1.0
    elif copies > 1:
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


def statement_text(s: dict) -> str:
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
