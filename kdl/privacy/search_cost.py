"""What a search over private trials cost (issue 30): every trial composed.

``kdl.tune`` trains one model per trial, all on the same private data, and
returns the best one. Choosing the best looks at every trial, so the chosen
model's statement must count what every trial trained: the sessions of all
trials composed with dp_accounting's RDP accountant. That bound holds for
releasing all the trials' models together, and so for any choice among them
(a choice is post-processing of the released models and the held-out
validation scores), whatever the selection rule.

Two small hooks for ``kdl.tuning``: :func:`trial_record` (what one trial's
model trained, written into the trial's record) and :func:`with_search_cost`
(puts all the trials' sessions on the chosen model). :func:`search_epsilon`
is the composition itself, on (noise multiplier, sampling rate, steps).

A light module (no TensorFlow Privacy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from kdl.privacy import _ledger, _tracking
from kdl.privacy.dp_training import is_private

__all__ = ["search_epsilon", "trial_record", "with_search_cost", "row_counts"]


def search_epsilon(trials: Iterable[Iterable[tuple]], delta: float) -> float:
    """Epsilon of a whole search: every DP-SGD run of every trial composed.

    Args:
        trials: for each trial, its runs as (noise_multiplier, sampling rate
            (batch / examples), steps).
        delta: float. The delta of (epsilon, delta)-DP.

    Returns:
        float: epsilon by dp_accounting's RDP accountant (Poisson-sampled
        Gaussian), ``inf`` when a run had no noise.

    Example:
        >>> search_epsilon([[(1.0, 0.1, 100)], [(1.0, 0.1, 100)]], 1e-5)
    """
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    for runs in trials:
        for noise, rate, steps in runs:
            if steps and noise == 0:
                return math.inf
            if steps:
                event = dp_accounting.PoissonSampledDpEvent(
                    min(1.0, rate), dp_accounting.GaussianDpEvent(noise)
                )
                accountant.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return float(accountant.get_epsilon(delta))


def trial_record(model) -> dict | None:
    """What one trial's model trained, for the trial's record (JSON-ready).

    None when no model was built (no step ran); ``{"private": False}`` for a
    model that trained without DP-SGD.
    """
    if model is None:
        return None
    if not is_private(model) or not hasattr(model, "kdl_ledger"):
        return {"private": False}
    params = _tracking.snapshot(model)
    return {
        "private": True,
        "sessions": params.get("sessions") or [],
        "void": params.get("void"),
        "weights": _ledger.fingerprint_hex(_ledger.parameters(model)),
    }


def _void(records: dict, best_id: str) -> str | None:
    """Why the search's statement cannot hold, if it cannot."""
    for trial_id, record in records.items():
        privacy = (record or {}).get("privacy", "missing")
        if privacy == "missing":
            return f"trial {trial_id} of the search left no record of its training"
        if privacy is not None and not privacy.get("private"):
            return f"trial {trial_id} of the search trained without DP-SGD"
    best = (records.get(best_id) or {}).get("privacy") or {}
    return best.get("void")


def with_search_cost(model, records: dict, best_id: str):
    """Puts every trial's sessions on ``model`` (the best trial's, its weights
    loaded): its statement then composes the whole search.

    ``records`` maps each trial's id to its record (with the ``"privacy"``
    that :func:`trial_record` wrote). A model that is not private is returned
    as it is. The weights count as the DP steps' only when they are the ones
    the best trial's steps produced (the same fingerprint); else, or when a
    trial trained without DP-SGD or left no record, the statement is void.
    """
    if not is_private(model) or not hasattr(model, "kdl_ledger"):
        return model
    sessions = []
    for trial_id in sorted(records, key=lambda one: one == best_id):  # best last
        privacy = (records[trial_id] or {}).get("privacy") or {}
        sessions += [dict(s, trial=trial_id) for s in privacy.get("sessions") or []]
    model.privacy["sessions"] = sessions
    model.privacy["search_trials"] = len(records)
    best = (records.get(best_id) or {}).get("privacy") or {}
    if best.get("weights") == _ledger.fingerprint_hex(_ledger.parameters(model)):
        model.kdl_ledger.adopt(model)  # the best trial's DP steps made them
    reason = _void(records, best_id)
    if reason:
        model.privacy["void"] = reason
    return model


def row_counts(x, y) -> tuple[int, int]:
    """(distinct examples, most copies of one example) of arrays ``x``, ``y``,
    fingerprinted as a private fit fingerprints them (a search's privacy
    plan must count the rows the DP step will count)."""
    rows, copies = _tracking.batch_rows(x, y)
    return len(rows), copies
