"""Private fine-tuning after compression (upstream issue 16): DP-SGD on a
TF-MOT-pruned copy of a private model, one statement for both runs."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import privacy
from kdl.backend import keras
from kdl.privacy import accounting


def _pruned_copy(private):
    """A TF-MOT pruning-wrapped copy of ``private``'s graph and weights."""
    import tensorflow_model_optimization as tfmot

    plain = keras.Model(private.inputs, private.outputs, name=private.name)
    copy = keras.models.clone_model(plain)
    copy.set_weights(plain.get_weights())
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    return tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)


def _trained_private(x, y, *, hidden: int):
    """(model, its private copy trained 2 epochs with DP-SGD, its epsilon)."""
    model = kdl.build_mlp((64,), 10, dense_units=(hidden,), optimizer="sgd",
                          learning_rate=0.5)  # fmt: skip
    private = privacy.make_private(model, noise_multiplier=1.1)
    private.fit(x, y, batch_size=50, epochs=2, verbose=0)
    return model, private, privacy.statement(private).epsilon


@pytest.mark.slow
def test_pruned_private_model_fine_tunes_with_dp_and_composes(digits_flat):
    import tensorflow_model_optimization as tfmot

    (x, y), (x_test, y_test) = digits_flat
    x, y = x[:400], y[:400]
    _, private, first = _trained_private(x, y, hidden=16)

    work = privacy.private_fine_tune_setup(
        private, _pruned_copy(private), {"noise_multiplier": 2.0}, learning_rate=0.1
    )
    assert privacy.is_private(work) and work.privacy["method"] == "fast"
    work.fit(x, y, batch_size=40, epochs=1, verbose=0,
             callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])  # fmt: skip
    final = privacy.private_fine_tune_result(
        work, tfmot.sparsity.keras.strip_pruning(work)
    )
    assert privacy.is_private(final) and final.privacy["method"] == "fast"
    assert kdl.compression.sparsity(final)["overall"] == pytest.approx(0.5, abs=0.02)
    result = privacy.statement(final)
    assert [s["steps"] for s in result.sessions] == [16, 10]
    assert [s["noise_multiplier"] for s in result.sessions] == [1.1, 2.0]
    want = accounting.epsilon_of_sessions(
        0.0, [(400, 50, 16, 1.1), (400, 40, 10, 2.0)], 1e-5
    )
    assert result.epsilon == pytest.approx(want, rel=1e-9)
    assert result.epsilon > first  # the fine-tuning spent more budget
    assert "2 sessions" in result.text and "noise multiplier 2" in result.text
    accuracy = final.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.2  # better than chance (0.1) after 3 noisy epochs


SETUP_ERRORS = [
    (lambda m: kdl.build_mlp((64,), 10), None, ValueError, "a private model"),
    (lambda m: m, "settings", TypeError, "'dp_settings' parameter"),
    (lambda m: m, {"noise": 1.0}, ValueError, "keys among"),
    (lambda m: m, {"noise_multiplier": -1.0}, ValueError, "noise_multiplier"),
]


@pytest.mark.parametrize("make_source, settings, error, match", SETUP_ERRORS)
def test_fine_tune_setup_rejects_bad_arguments(make_source, settings, error, match):
    private = privacy.make_private(kdl.build_mlp((64,), 10), noise_multiplier=1.0)
    with pytest.raises(error, match=match):
        privacy.private_fine_tune_setup(
            make_source(private), kdl.build_mlp((64,), 10), settings
        )


def test_fine_tune_setup_on_a_plain_copy_takes_the_fast_path():
    private = privacy.make_private(
        kdl.build_cnn((8, 8, 1), 10, filters=(4,)), noise_multiplier=1.0
    )
    smaller = kdl.build_cnn((8, 8, 1), 10, filters=(2,))
    work = privacy.private_fine_tune_setup(private, smaller)
    assert work.privacy["method"] == "fast"
    assert work.privacy["noise_multiplier"] == 1.0
    assert not privacy.is_dp_optimizer(work.optimizer)
    x = np.zeros((4, 8, 8, 1), "float32")
    work.fit(x, np.arange(4), batch_size=4, epochs=1, verbose=0)
    assert privacy.statement(work).sessions[-1]["steps"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("transform", ["prune", "shrink", "cluster"])
def test_compression_fine_tunes_a_private_model_with_dp(transform, digits_flat):
    """prune, shrink and cluster take dp= for a private model: DP-SGD fine-tuning,
    one statement for both runs (never the refusal of plain fine-tuning)."""
    (x, y), (x_test, y_test) = digits_flat
    x, y = x[:400], y[:400]
    model, private, first = _trained_private(x, y, hidden=32)
    with pytest.raises(ValueError, match="dp=True"):
        getattr(kdl.compression, transform)(private, x, y, epochs=1, verbose=0)
    options = {"prune": {"target_sparsity": 0.5}, "shrink": {"fraction": 0.5},
               "cluster": {"clusters": 8}}[transform]  # fmt: skip
    result = getattr(kdl.compression, transform)(
        private, x, y, epochs=1, verbose=0, batch_size=40,
        dp={"noise_multiplier": 2.0}, **options,
    )  # fmt: skip
    assert privacy.is_private(result)
    statement = privacy.statement(result)
    assert len(statement.sessions) == 2
    assert statement.sessions[1]["noise_multiplier"] == 2.0
    assert statement.epsilon > first
    assert result.evaluate(x_test, y_test, verbose=0)[1] > 0.2
    assert private.count_params() == model.count_params()  # input untouched
