"""kdl.privacy: the statement follows what was trained (upstream issue 11).

Every epsilon here is checked against dp_accounting called directly, with
the examples, batch size and steps the run actually used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kdl
from kdl import build_mlp, privacy
from kdl.backend import keras, tf


def _independent_epsilon(n, batch, steps, noise, delta):
    """epsilon of DP-SGD written directly on dp_accounting, not on kdl."""
    import dp_accounting
    from dp_accounting import rdp

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            batch / n, dp_accounting.GaussianDpEvent(noise)
        ),
        steps,
    )
    accountant = rdp.RdpAccountant()
    accountant.compose(event)
    return accountant.get_epsilon(delta)


def _mlp(**kwargs):
    kwargs.setdefault("dense_units", (16,))
    return build_mlp((64,), 10, optimizer="sgd", learning_rate=0.3, **kwargs)


@pytest.fixture(scope="module")
def small_digits(digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    return (x[:300], y[:300]), (x_test, y_test)


# === Trained models ===


def test_trained_model_is_refused_unless_declared_public(small_digits, tmp_path):
    (x, y), _ = small_digits
    model = _mlp()
    model.fit(x, y, batch_size=60, epochs=1, verbose=0)  # 5 steps on the data
    with pytest.raises(ValueError, match=r"already took 5 step\(s\).*public_pretr"):
        privacy.make_private(model, noise_multiplier=1.0)
    # A model loaded from a run that trained it is refused the same way.
    loaded = kdl.load(kdl.save(model, tmp_path / "trained.keras"))
    with pytest.raises(ValueError, match="whose weights were not trained yet"):
        privacy.make_private(loaded, noise_multiplier=1.0)

    private = privacy.make_private(model, noise_multiplier=1.0, public_pretraining=True)
    private.fit(x, y, batch_size=30, epochs=1, verbose=0)
    result = privacy.statement(private)
    assert result.public_pretraining
    assert "declared public (public_pretraining=True)" in result.text
    assert not privacy.statement(
        privacy.make_private(
            _mlp(), noise_multiplier=1.0, num_examples=300, batch_size=30, epochs=1
        )  # fmt: skip
    ).public_pretraining


# === Accounting follows the run ===


def _planned_epsilon(private):
    """What the plan given to make_private would claim."""
    p = private.privacy
    return privacy.epsilon(num_examples=p["num_examples"], batch_size=p["batch_size"],
                           epochs=p["epochs"], noise_multiplier=p["noise_multiplier"],
                           delta=1e-5)  # fmt: skip


def test_kdl_train_validation_split_accounts_for_examples_trained_on(small_digits):
    (x, y), _ = small_digits
    planned = privacy.make_private(_mlp(), noise_multiplier=1.1, num_examples=300,
                                   batch_size=32, epochs=3)  # fmt: skip
    kdl.train(planned, x, y, validation_split=0.2, epochs=3, batch_size=32,
              run_dir=False, seed=0, verbose=0)  # fmt: skip
    result = privacy.statement(planned)
    # 300 * 0.8 = 240 examples trained on, 8 steps an epoch.
    steps = int(planned.optimizer.iterations.numpy())
    assert (result.num_examples, result.batch_size, result.steps) == (240, 32, 24)
    assert steps == 24
    truth = _independent_epsilon(240, 32, 24, 1.1, 1e-5)
    assert result.epsilon >= truth * (1 - 1e-9)
    assert result.epsilon == pytest.approx(truth, rel=1e-6)
    assert result.epsilon > _planned_epsilon(planned)  # 300 would understate it
    assert "240 examples" in result.text


def test_fit_on_fewer_examples_than_planned(small_digits):
    (x, y), _ = small_digits
    private = privacy.make_private(_mlp(), noise_multiplier=1.3, num_examples=300,
                                   batch_size=50, epochs=2)  # fmt: skip
    private.fit(x[:120], y[:120], batch_size=50, epochs=2, verbose=0)  # 3 steps each
    result = privacy.statement(private)
    truth = _independent_epsilon(120, 50, 6, 1.3, 1e-5)
    assert result.steps == 6 and result.num_examples == 120
    assert result.epsilon >= truth * (1 - 1e-9)
    assert result.epsilon == pytest.approx(truth, rel=1e-6)
    assert result.epsilon > _planned_epsilon(private)
    # Passing the plan again cannot lower what the model recorded.
    with pytest.raises(ValueError, match="'num_examples' .* None for a model that "
                       "recorded its training"):  # fmt: skip
        privacy.statement(private, num_examples=300)


def test_early_stopping_statement_counts_every_step_and_names_kept_epoch(
    small_digits,
):
    (x, y), _ = small_digits
    private = privacy.make_private(_mlp(), noise_multiplier=1.2, num_examples=300,
                                   batch_size=40, epochs=10)  # fmt: skip
    # No epoch after the first improves by 10: stops after epoch 2, keeps 1.
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=1, min_delta=10.0, restore_best_weights=True
    )
    history = kdl.train(private, x, y, validation_split=0.2, epochs=10,
                        batch_size=40, early_stopping=False, callbacks=[stop],
                        run_dir=False, verbose=0)  # fmt: skip
    assert len(history.epoch) == 2
    result = privacy.statement(private)
    steps = int(private.optimizer.iterations.numpy())
    assert result.steps == steps == 2 * math.ceil(240 / 40)
    assert result.epochs == 2 and result.kept_epoch == 1
    truth = _independent_epsilon(240, 40, steps, 1.2, 1e-5)
    assert result.epsilon >= truth * (1 - 1e-9)
    assert result.epsilon == pytest.approx(truth, rel=1e-6)
    assert "Weights kept: those after epoch 1 of the 2 trained" in result.text
    assert "'val_loss', computed on held-out validation data only" in result.text


def test_selection_on_training_data_is_refused(small_digits):
    (x, y), _ = small_digits
    private = privacy.make_private(_mlp(), noise_multiplier=1.0)
    with pytest.raises(
        ValueError,
        match=r"'callbacks' parameter of PrivateModel"
        r"\.fit .*EarlyStopping watches 'loss'.*validation_split",
    ):
        kdl.train(private, x, y, epochs=1, run_dir=False, verbose=0)
    assert int(private.optimizer.iterations.numpy()) == 0  # refused before work
    checkpoint = keras.callbacks.ReduceLROnPlateau(monitor="accuracy")
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches 'accuracy'"):
        private.fit(x, y, callbacks=[checkpoint], verbose=0)


def test_tf_data_counts_distinct_examples_and_batches(small_digits):
    (x, y), _ = small_digits
    private = privacy.make_private(_mlp(), noise_multiplier=1.0)
    # The dataset repeats its 300 examples inside one epoch: 12 steps of 50,
    # sampled from 300 examples, not 600. kdl cannot tell repeats from new
    # examples in general (an augmenting map makes copies differ), so a
    # repeating pipeline needs num_examples (issue 30).
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(50).repeat(2)
    with pytest.raises(ValueError, match="num_examples=.*RepeatDataset"):
        private.fit(data, epochs=1, verbose=0)
    private.fit(data, epochs=1, verbose=0, num_examples=300)
    result = privacy.statement(private)
    assert (result.num_examples, result.batch_size, result.steps) == (300, 50, 12)
    # Each example twice per pass: a group of 2 (issue 30, third round),
    # sampled with probability 1 - (1 - 50/600)^2 at noise 1 / 2.
    assert result.multiplicity == 2
    assert result.epsilon == pytest.approx(
        _independent_epsilon(1 / (1 - (1 - 50 / 600) ** 2), 1, 12, 0.5, 1e-5),
        rel=1e-6,
    )
    assert result.epsilon > _independent_epsilon(300, 50, 12, 1.0, 1e-5)
    with pytest.raises(ValueError, match="finite tf.data.Dataset"):
        private.fit(data.repeat(), epochs=1, steps_per_epoch=2, verbose=0)


def test_sessions_compose_and_survive_save_and_load(small_digits, tmp_path):
    (x, y), _ = small_digits
    private = privacy.make_private(_mlp(), noise_multiplier=1.5)
    private.fit(x, y, batch_size=30, epochs=1, verbose=0)  # 10 steps on 300
    private.fit(x[:100], y[:100], batch_size=25, epochs=2, verbose=0)  # 8 on 100
    result = privacy.statement(private)
    assert [s["num_examples"] for s in result.sessions] == [300, 100]
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    for n, batch, steps in ((300, 30, 10), (100, 25, 8)):
        accountant.compose(dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(
                batch / n, dp_accounting.GaussianDpEvent(1.5)), steps))  # fmt: skip
    delta = 1e-5
    assert result.epsilon == pytest.approx(accountant.get_epsilon(delta), rel=1e-6)
    loaded = kdl.load(kdl.save(private, tmp_path / "private.keras"))
    assert privacy.statement(loaded) == result


def test_steps_outside_fit_are_counted_or_refused(small_digits):
    (x, y), _ = small_digits
    planned = privacy.make_private(_mlp(), noise_multiplier=1.0, num_examples=300,
                                   batch_size=10, epochs=1)  # fmt: skip
    planned.fit(x, y, batch_size=10, epochs=1, verbose=0)  # 30 steps
    planned.train_on_batch(x[:10], y[:10])  # one step no fit recorded
    result = privacy.statement(planned)  # on the 10 rows it saw
    assert result.steps == 31 and result.sessions[-1]["num_examples"] == 10
    unplanned = privacy.make_private(_mlp(), noise_multiplier=1.0)
    unplanned.fit(x, y, batch_size=10, epochs=1, verbose=0)
    # A custom loop calling train_step: the rows are not seen by kdl.
    unplanned.train_step((tf.constant(x[:10]), tf.constant(y[:10])))
    with pytest.raises(ValueError, match="'num_examples' .* no fit recorded"):
        privacy.statement(unplanned)
    counted = privacy.statement(unplanned, num_examples=300, batch_size=10)
    assert counted.steps == 31


def test_resumed_run_counts_the_steps_before_the_crash(small_digits, tmp_path):
    (x, y), _ = small_digits

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("killed")

    run = dict(validation_split=0.2, epochs=3, batch_size=40, run_dir=tmp_path,
               early_stopping=False, checkpoint=False, tensorboard=False,
               verbose=0)  # fmt: skip
    keras.utils.set_random_seed(0)
    first = privacy.make_private(_mlp(), noise_multiplier=1.0)
    with pytest.raises(RuntimeError, match="killed"):
        kdl.train(first, x, y, callbacks=[Crash()], **run)
    # A new process: a new model resumes the run from its last backup.
    second = privacy.make_private(_mlp(), noise_multiplier=1.0)
    kdl.train(second, x, y, **run)
    # 12 steps before the crash (2 epochs of 6), epoch 2 done again, epoch 3.
    result = privacy.statement(second)
    assert result.steps >= 12 + 6 + 6
    assert result.epsilon >= _independent_epsilon(240, 40, 24, 1.0, 1e-5)


# === DP optimizers in the builders ===


@pytest.mark.slow
def test_builder_with_dp_optimizer_matches_make_private(digits_flat, tmp_path):
    (x, y), (x_test, y_test) = digits_flat
    settings = dict(l2_norm_clip=1.0, noise_multiplier=1.1)
    keras.utils.set_random_seed(0)
    optimizer = privacy.dp_optimizer("sgd", learning_rate=0.5, **settings)
    built = build_mlp((64,), 10, dense_units=(32,), optimizer=optimizer)
    assert privacy.is_private(built) and built.privacy["method"] == "optimizer"
    keras.utils.set_random_seed(0)
    plain = build_mlp((64,), 10, dense_units=(32,), optimizer="sgd",
                      learning_rate=0.5)  # fmt: skip
    made = privacy.make_private(plain, method="optimizer", **settings)
    accuracies = []
    for model in (built, made):
        keras.utils.set_random_seed(1)
        model.fit(x, y, batch_size=64, epochs=5, verbose=0)
        accuracies.append(model.evaluate(x_test, y_test, verbose=0)[1])
    assert accuracies[0] >= 0.7
    assert accuracies[0] == pytest.approx(accuracies[1], abs=0.05)
    assert privacy.statement(built) == privacy.statement(made)
    loaded = kdl.load(kdl.save(built, tmp_path / "built.keras"))
    assert type(loaded.optimizer).__name__ == "DPSGD"
    assert privacy.statement(loaded) == privacy.statement(built)
    fresh = privacy.dp_optimizer("sgd", noise_multiplier=1.0)
    with pytest.raises(ValueError, match="'batch_norm' parameter of build_mlp "
                       "must be False with a DP optimizer"):  # fmt: skip
        build_mlp((64,), 10, batch_norm=True, optimizer=fresh)


def test_dp_optimizer_is_tf_privacy_optimizer_and_checks_arguments():
    opt = privacy.dp_optimizer("adam", l2_norm_clip=2.0, noise_multiplier=0.7,
                               learning_rate=1e-3)  # fmt: skip
    assert privacy.is_dp_optimizer(opt)
    # TF Privacy's DP Keras optimizer class (make_keras_generic_optimizer_class)
    assert "DPOptimizerClass" in [c.__name__ for c in type(opt).__mro__]
    assert type(opt).__mro__[1].__module__.startswith("tensorflow_privacy.")
    assert opt.get_config()["learning_rate"] == pytest.approx(1e-3)
    assert (opt.l2_norm_clip, opt.noise_multiplier) == (2.0, 0.7)
    assert not privacy.is_dp_optimizer(keras.optimizers.Adam())
    with pytest.raises(ValueError, match="'name' parameter of kdl.privacy."
                       "dp_optimizer must be one of 'sgd'"):  # fmt: skip
        privacy.dp_optimizer("lion", noise_multiplier=1.0)
    with pytest.raises(TypeError, match="noise_multiplier"):
        privacy.dp_optimizer("sgd")
    with pytest.raises(ValueError, match="'name' .* or a kdl.keras SGD, Adam"):
        privacy.dp_optimizer(keras.optimizers.Nadam(), noise_multiplier=1.0)
    # A kdl.keras optimizer's settings are copied; learning_rate replaces its own.
    copied = privacy.dp_optimizer(
        keras.optimizers.SGD(0.01, momentum=0.5), noise_multiplier=1.0,
        learning_rate=0.2,
    )  # fmt: skip
    assert type(copied).__name__ == "DPSGD"
    assert copied.get_config()["learning_rate"] == pytest.approx(0.2)
    assert copied.get_config()["momentum"] == pytest.approx(0.5)


# === Targets ===

BAD_TARGETS = [
    (lambda y: np.array([f"c{i}" for i in y]), r"integer class labels 0\.\.K-1"),
    (lambda y: y + 1, r"class labels in 0\.\.9 .*labels \[1,"),
    (lambda y: y - 1, r"class labels in 0\.\.9 .*labels \[-1,"),
    (lambda y: y + 0.5, r"integer class labels 0\.\.K-1"),
    (lambda y: y[:-3], "as long as x"),
]


@pytest.mark.parametrize("make_bad, match", BAD_TARGETS)
def test_bad_targets_get_one_clear_error_everywhere(small_digits, make_bad, match):
    (x, y), (x_test, y_test) = small_digits
    bad = make_bad(y)
    private = privacy.make_private(_mlp(), noise_multiplier=1.0)
    with pytest.raises(
        ValueError, match="'y' parameter of PrivateModel.fit .*" + match
    ):
        private.fit(x, bad, verbose=0)
    assert int(private.optimizer.iterations.numpy()) == 0
    audit_match = match.replace("as long as x", "as long as x_train")
    with pytest.raises(ValueError, match="'y_train' parameter of kdl.privacy.audit"):
        privacy.audit(private, x, bad, x_test, y_test)
    with pytest.raises(ValueError, match=audit_match):
        privacy.audit(private, x, bad, x_test, y_test)
    if "datasets" not in match and "as long" not in match:
        with pytest.raises(ValueError, match="kdl.datasets.load"):
            private.fit(x, bad, verbose=0)
