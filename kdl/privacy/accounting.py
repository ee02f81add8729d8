"""Privacy accounting for DP-SGD: epsilon for a run, noise for a budget.

Every step of DP-SGD is counted as a Gaussian mechanism on a Poisson-sampled
batch (sampling rate ``batch_size / num_examples``) and the steps are composed
with dp_accounting's RDP accountant: the standard DP-SGD analysis.

A run can be made of several sessions (several ``fit`` calls, a resumed run,
data of another size): :func:`epsilon_of_sessions` composes them all, so the
result never counts fewer steps than were taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from kdl import _validation as v

__all__ = [
    "epsilon",
    "noise_for_epsilon",
    "steps_for",
    "default_delta",
    "check_delta",
    "check_accounting",
    "epsilon_for_steps",
    "epsilon_of_sessions",
    "group_step",
    "calibrate",
]


def steps_for(num_examples: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` epochs: Keras takes ceil(n / batch) each."""
    return epochs * math.ceil(num_examples / batch_size)


def default_delta(num_examples: int | None) -> float:
    """1e-5, or 0.1/num_examples when that is smaller (over 10,000 examples)."""
    if num_examples is None:
        return 1e-5
    return min(1e-5, 0.1 / num_examples)


def group_step(noise_multiplier, *, batch_size, elements, copies):
    """(sampling rate, noise multiplier) of one DP-SGD step for an example
    present ``copies`` times among the ``elements`` of a pass (issue 30,
    third round).

    Why this bounds the step: each of the m copies of one person is in a
    batch with probability q = batch / elements (Poisson sampling, as for one
    row), so at least one is with probability p = 1 - (1 - q)^m; the copies
    present shift the noisy sum of clipped gradients by a vector of norm at
    most k * C <= m * C (k copies present, each clipped to C). The neighbour
    distribution is a mixture: the noise alone with probability 1 - p, else
    shifted Gaussians of norm at most m * C. By the joint quasi-convexity of
    the Renyi divergence the mixture is bounded by the sampled Gaussian with
    rate p and sensitivity m * C, i.e. noise multiplier sigma / m.
    """
    rate = 1.0 - (1.0 - min(1.0, batch_size / elements)) ** copies
    return rate, noise_multiplier / copies


def _dp_sgd_event(noise_multiplier, *, num_examples, batch_size, steps,
                  copies=1, elements=None):  # fmt: skip
    import dp_accounting

    rate = min(1.0, batch_size / num_examples)
    if copies > 1:  # one example several times per pass: a group of copies
        rate, noise_multiplier = group_step(
            noise_multiplier, batch_size=batch_size, elements=elements,
            copies=copies,
        )  # fmt: skip
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            rate, dp_accounting.GaussianDpEvent(noise_multiplier)
        ),
        steps,
    )


def epsilon_of_sessions(
    noise_multiplier: float, sessions: Iterable[tuple], delta: float
) -> float:
    """Epsilon of DP-SGD sessions composed: each is (num_examples, batch_size,
    steps), optionally followed by its noise multiplier, the most copies of
    one example in a pass and the elements of a pass.

    Composition adds the sessions' privacy losses, which never undercounts:
    sessions on the same data compose exactly like one longer run, sessions on
    different data are counted as if every example took part in all of them.
    A session without its own noise multiplier (a private fine-tuning after
    compression may use another) takes ``noise_multiplier``. A session whose
    examples appear m > 1 times per pass is accounted as a group of m
    (:func:`group_step`).
    """
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    for num_examples, batch_size, steps, *own in sessions:
        noise = own[0] if own and own[0] is not None else noise_multiplier
        copies = own[1] if len(own) > 1 and own[1] else 1
        elements = own[2] if len(own) > 2 and own[2] else num_examples
        if steps and noise == 0.0:
            return math.inf
        if steps:
            accountant.compose(
                _dp_sgd_event(
                    noise,
                    num_examples=num_examples,
                    batch_size=batch_size,
                    steps=steps,
                    copies=copies,
                    elements=elements,
                )
            )
    return float(accountant.get_epsilon(delta))


def epsilon_for_steps(noise_multiplier, *, num_examples, batch_size, steps, delta):
    """Epsilon of ``steps`` DP-SGD steps (one session)."""
    return epsilon_of_sessions(
        noise_multiplier, [(num_examples, batch_size, steps)], delta
    )


def check_accounting(func, num_examples, batch_size, epochs, delta):
    """Checks a training plan and its delta; returns them as ints and a float."""
    num_examples = v.check_int(num_examples, "num_examples", func)
    batch_size = v.check_int(batch_size, "batch_size", func)
    epochs = v.check_int(epochs, "epochs", func)
    if batch_size > num_examples:
        v.fail(func, "batch_size", f"at most num_examples ({num_examples})", batch_size)
    delta = check_delta(func, delta, num_examples)
    return num_examples, batch_size, epochs, delta


def check_delta(func, delta, num_examples):
    """Checks that 0 < delta < 1/num_examples (when num_examples is known)."""
    delta = v.check_float(
        delta, "delta", func, min_value=0.0, max_value=1.0, strict_min=True
    )
    if num_examples is not None and delta >= 1.0 / num_examples:
        v.fail(
            func,
            "delta",
            f"below 1/num_examples ({1.0 / num_examples:.3g}): "
            "a larger delta allows leaking whole examples",
            delta,
        )
    return delta


def epsilon(
    *,
    num_examples: int,
    batch_size: int,
    epochs: int,
    noise_multiplier: float,
    delta: float,
) -> float:
    """The epsilon of DP-SGD at ``delta``, by dp_accounting's RDP accountant.

    Each of the ``epochs * ceil(num_examples / batch_size)`` steps is counted
    as a Gaussian mechanism on a Poisson-sampled batch (sampling rate
    ``batch_size / num_examples``), the standard DP-SGD analysis.

    Args:
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        noise_multiplier: float. Noise standard deviation over the clip norm;
            0 means no privacy (epsilon is infinite).
        delta: float. The delta of (epsilon, delta)-DP; must be below
            1/num_examples.

    Returns:
        float: epsilon (``math.inf`` for zero noise).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> round(epsilon(num_examples=60000, batch_size=256, epochs=60,
        ...               noise_multiplier=1.1, delta=1e-5), 2)
        2.6
    """
    func = "kdl.privacy.epsilon"
    num_examples, batch_size, epochs, delta = check_accounting(
        func, num_examples, batch_size, epochs, delta
    )
    noise_multiplier = v.check_float(noise_multiplier, "noise_multiplier", func)
    return epsilon_for_steps(
        noise_multiplier,
        num_examples=num_examples,
        batch_size=batch_size,
        steps=steps_for(num_examples, batch_size, epochs),
        delta=delta,
    )


def noise_for_epsilon(
    target_epsilon: float,
    *,
    num_examples: int,
    batch_size: int,
    epochs: int,
    delta: float,
) -> float:
    """The smallest noise multiplier whose DP-SGD epsilon is at most the target.

    dp_accounting's mechanism calibration searches the noise (Brent's method)
    with the same accountant as :func:`epsilon`; the result is rounded up, so
    ``epsilon(..., noise_multiplier=noise_for_epsilon(t, ...)) <= t``.

    Args:
        target_epsilon: float. The privacy budget, > 0.
        num_examples: int. Training examples.
        batch_size: int. Examples per batch.
        epochs: int. Passes over the data.
        delta: float. The delta of (epsilon, delta)-DP.

    Returns:
        float: the noise multiplier.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> noise = noise_for_epsilon(8.0, num_examples=1437, batch_size=64,
        ...                           epochs=15, delta=1e-5)
    """
    func = "kdl.privacy.noise_for_epsilon"
    target_epsilon = v.check_float(
        target_epsilon, "target_epsilon", func, strict_min=True
    )
    num_examples, batch_size, epochs, delta = check_accounting(
        func, num_examples, batch_size, epochs, delta
    )
    return calibrate(
        target_epsilon,
        num_examples=num_examples,
        batch_size=batch_size,
        epochs=epochs,
        delta=delta,
    )


def calibrate(target_epsilon, *, num_examples, batch_size, epochs, delta):
    """The noise multiplier for ``target_epsilon`` (checked arguments)."""
    from dp_accounting import mechanism_calibration, rdp

    steps = steps_for(num_examples, batch_size, epochs)
    noise = mechanism_calibration.calibrate_dp_mechanism(
        rdp.RdpAccountant,
        lambda z: _dp_sgd_event(
            z, num_examples=num_examples, batch_size=batch_size, steps=steps
        ),
        target_epsilon,
        delta,
        mechanism_calibration.LowerEndpointAndGuess(0.0, 1.0),
        tol=1e-4,  # in noise: epsilon lands well within 0.1% of the target
    )
    # Brent's method lands within tol of the optimum on either side: step up
    # until the budget holds.
    noise = float(noise)
    while (
        epsilon_for_steps(
            noise,
            num_examples=num_examples,
            batch_size=batch_size,
            steps=steps,
            delta=delta,
        )
        > target_epsilon
    ):
        noise += 1e-4
    return noise
