"""Private training that works by default (issue 23, kdl/privacy/_defaults.py)."""

from __future__ import annotations

import pytest


def _rate(model) -> float:
    """The (first) learning rate of ``model``'s optimizer."""
    rate = model.optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):  # a schedule
        return float(rate["config"]["initial_learning_rate"])
    return float(rate)


def test_make_private_plans_batch_epochs_and_rate_when_given_none():
    import kdl
    from kdl import privacy

    model = kdl.build_mlp((64,), 10, dense_units=(16,))
    private = privacy.make_private(
        model, target_epsilon=8.0, delta=1e-5, num_examples=1200
    )
    params = privacy.privacy_params(private)
    assert (params["batch_size"], params["epochs"]) == (256, 40)
    assert params["noise_multiplier"] > 0
    assert _rate(private) == pytest.approx(0.01)
    assert _rate(model) == pytest.approx(1e-3)  # the input is not changed
    # a small data set: a quarter of it per batch
    small = privacy.make_private(model, target_epsilon=8.0, num_examples=400)
    assert privacy.privacy_params(small)["batch_size"] == 100


def test_explicit_plan_and_rate_win():
    import kdl
    from kdl import privacy

    model = kdl.build_mlp((64,), 10, dense_units=(16,))
    private = privacy.make_private(
        model, target_epsilon=8.0, num_examples=1200, batch_size=64, epochs=5
    )
    assert (private.privacy["batch_size"], private.privacy["epochs"]) == (64, 5)
    assert _rate(private) == pytest.approx(1e-3)
    chosen = kdl.build_mlp((64,), 10, dense_units=(16,), learning_rate=0.02)
    private = privacy.make_private(chosen, target_epsilon=8.0, num_examples=1200)
    assert _rate(private) == pytest.approx(0.02)
    # one of the two given: the user plans, and the other is still required
    with pytest.raises(ValueError, match="'epochs' parameter of kdl.privacy"):
        privacy.make_private(model, target_epsilon=8.0, num_examples=1200,
                             batch_size=64)  # fmt: skip
    with pytest.raises(ValueError, match="'num_examples' parameter"):
        privacy.make_private(model, target_epsilon=8.0)


@pytest.mark.slow
def test_default_private_mlp_reaches_090_on_digits_of_its_own(tmp_path):
    import kdl
    from kdl import datasets, privacy

    # a split of its own (the tests' fixtures use seed 0)
    # build_cnn reaches 0.93 the same way (docs/benchmarks.md), at 3x the time
    (x_all, y_all), (x_test, y_test) = datasets.digits(layout="flat", seed=3)
    n_val = len(x_all) // 5
    x, y = x_all[n_val:], y_all[n_val:]
    kdl.set_seed(3)
    private = privacy.make_private(
        kdl.build_mlp((64,), 10), target_epsilon=8.0, delta=1e-5,
        num_examples=len(x),
    )  # fmt: skip
    history = kdl.train(
        private, x, y, validation_data=(x_all[:n_val], y_all[:n_val]),
        run_dir=tmp_path / "run", verbose=0,
    )  # fmt: skip
    assert len(history.epoch) <= 40  # the plan, not kdl.train's plain 10
    assert private.evaluate(x_test, y_test, verbose=0)[1] >= 0.90
    assert privacy.statement(private).epsilon <= 8.0 + 1e-6
