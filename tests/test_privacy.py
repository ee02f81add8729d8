"""kdl.privacy: DP-SGD, privacy accounting, statements and the membership audit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kdl import build_cnn, build_gru, build_mlp, privacy
from kdl.backend import keras, tf

# === Accounting ===


def _independent_epsilon(n, batch, epochs, noise, delta):
    """epsilon of DP-SGD written directly on dp_accounting, not on kdl."""
    import dp_accounting
    from dp_accounting import rdp

    steps = epochs * math.ceil(n / batch)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            batch / n, dp_accounting.GaussianDpEvent(noise)
        ),
        steps,
    )
    accountant = rdp.RdpAccountant()
    accountant.compose(event)
    return accountant.get_epsilon(delta)


@pytest.mark.parametrize(
    "n, batch, epochs, noise, delta",
    [
        (60000, 256, 60, 1.1, 1e-5),
        (1437, 64, 15, 0.88, 1e-5),
        (1000, 33, 3, 2.5, 1e-4),
        (200, 200, 1, 0.7, 1e-3),
    ],
)
def test_epsilon_matches_independent_dp_accounting(n, batch, epochs, noise, delta):
    ours = privacy.epsilon(
        num_examples=n,
        batch_size=batch,
        epochs=epochs,
        noise_multiplier=noise,
        delta=delta,
    )
    assert ours == pytest.approx(
        _independent_epsilon(n, batch, epochs, noise, delta), rel=1e-6
    )
    more_noise = privacy.epsilon(
        num_examples=n,
        batch_size=batch,
        epochs=epochs,
        noise_multiplier=2 * noise,
        delta=delta,
    )
    assert more_noise < ours


def test_zero_noise_has_infinite_epsilon():
    assert math.isinf(
        privacy.epsilon(
            num_examples=100, batch_size=10, epochs=1, noise_multiplier=0.0, delta=1e-5
        )
    )


@pytest.mark.parametrize("target", [1.0, 8.0])
def test_noise_for_epsilon_meets_target_within_two_percent(target):
    plan = dict(num_examples=1437, batch_size=64, epochs=15, delta=1e-5)
    noise = privacy.noise_for_epsilon(target, **plan)
    reached = _independent_epsilon(1437, 64, 15, noise, 1e-5)
    assert reached <= target
    assert reached >= 0.98 * target


# === Bad arguments ===


def _mlp():
    return build_mlp((4,), 3, dense_units=(8,), optimizer="sgd", learning_rate=0.1)


PLAN = dict(num_examples=100, batch_size=10, epochs=2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(l2_norm_clip=0.0, noise_multiplier=1.0),
            ValueError,
            "'l2_norm_clip' parameter of kdl.privacy.make_private must be a number > 0",
        ),
        (dict(l2_norm_clip=-1.0, noise_multiplier=1.0), ValueError, "l2_norm_clip"),
        (
            dict(noise_multiplier=-0.5),
            ValueError,
            "'noise_multiplier' parameter .* must be a number >= 0.0 or None. "
            "Got -0.5 instead",
        ),
        (dict(), ValueError, "'noise_multiplier' .* when target_epsilon is None"),
        (
            dict(noise_multiplier=1.0, target_epsilon=3.0),
            ValueError,
            "'target_epsilon' .* None when noise_multiplier is given",
        ),
        (
            dict(target_epsilon=3.0),
            ValueError,
            "'num_examples' .* positive int when target_epsilon is given",
        ),
        (
            dict(target_epsilon=3.0, num_examples=100, epochs=2),
            ValueError,
            "'batch_size' .* when target_epsilon is given",
        ),
        (dict(target_epsilon=0.0, **PLAN), ValueError, "'target_epsilon'"),
        (
            dict(noise_multiplier=1.0, delta=0.01, num_examples=100),
            ValueError,
            r"'delta' .* below 1/num_examples \(0.01\)",
        ),
        (dict(noise_multiplier=1.0, delta=1.5), ValueError, "'delta'"),
        (
            dict(noise_multiplier=1.0, batch_size=200, num_examples=100),
            ValueError,
            "'batch_size' .* at most num_examples",
        ),
        (dict(noise_multiplier=1.0, method="magic"), ValueError, "'method'"),
        (dict(noise_multiplier="1"), TypeError, "'noise_multiplier'"),
        (dict(noise_multiplier=1.0, epochs=1.5), TypeError, "'epochs'"),
    ],
)
def test_make_private_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        privacy.make_private(_mlp(), **kwargs)


def _uncompiled():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def _depthwise():
    """A layer kdl's per-example norm registry does not know."""
    layers = [keras.layers.DepthwiseConv2D(3), keras.layers.Flatten(),
              keras.layers.Dense(2)]  # fmt: skip
    model = keras.Sequential([keras.Input((4, 4, 1)), *layers])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


UNSUITABLE = [
    (lambda: "model", {}, TypeError, "'model' parameter of kdl.privacy.make_private"),
    (lambda: build_mlp((4,), 3, batch_norm=True), {}, ValueError,
     "without BatchNormalization"),
    (_uncompiled, {}, ValueError, "a compiled model"),
    (lambda: _depthwise(), {"method": "fast"}, ValueError,
     "fast gradient clipping supports Dense"),
    (lambda: build_gru((8, 8), 10, units=(4,)), {"method": "vectorized"},
     ValueError, "fail on recurrent layers"),
    (lambda: privacy.make_private(_mlp(), noise_multiplier=1.0), {}, ValueError,
     "not private yet"),
]  # fmt: skip


@pytest.mark.parametrize("make_model, kwargs, error, match", UNSUITABLE)
def test_make_private_rejects_unsuitable_models(make_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        privacy.make_private(make_model(), noise_multiplier=1.0, **kwargs)


def test_keras3_model_gets_type_error_naming_kdl_keras():
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 not installed")
    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="kdl.keras"):
        privacy.make_private(model, noise_multiplier=1.0)


@pytest.mark.parametrize(
    "func, kwargs, match",
    [
        (
            privacy.epsilon,
            dict(
                num_examples=100,
                batch_size=10,
                epochs=1,
                noise_multiplier=1.0,
                delta=0.01,
            ),
            r"'delta' parameter of kdl.privacy.epsilon must be below 1/num_examples",
        ),
        (
            privacy.epsilon,
            dict(
                num_examples=100,
                batch_size=10,
                epochs=1,
                noise_multiplier=-1.0,
                delta=1e-5,
            ),
            "'noise_multiplier'",
        ),
        (
            privacy.epsilon,
            dict(
                num_examples=0,
                batch_size=10,
                epochs=1,
                noise_multiplier=1.0,
                delta=1e-5,
            ),
            "'num_examples'",
        ),
        (
            privacy.noise_for_epsilon,
            dict(
                target_epsilon=-1.0,
                num_examples=100,
                batch_size=10,
                epochs=1,
                delta=1e-5,
            ),
            "'target_epsilon' parameter of kdl.privacy.noise_for_epsilon",
        ),
    ],
)
def test_accounting_rejects_bad_arguments(func, kwargs, match):
    if func is privacy.noise_for_epsilon:
        target = kwargs.pop("target_epsilon")
        call = lambda: func(target, **kwargs)  # noqa: E731
    else:
        call = lambda: func(**kwargs)  # noqa: E731
    with pytest.raises(ValueError, match=match):
        call()


# === DP-SGD training ===


def test_make_private_returns_new_model_and_records_settings():
    model = _mlp()
    before = [w.copy() for w in model.get_weights()]
    private = privacy.make_private(model, target_epsilon=2.0, delta=1e-4, **PLAN)
    assert private is not model
    assert privacy.is_private(private) and not privacy.is_private(model)
    params = privacy.privacy_params(private)
    assert params["method"] == "fast"
    assert params["delta"] == 1e-4 and params["l2_norm_clip"] == 1.0
    assert (
        privacy.epsilon(noise_multiplier=params["noise_multiplier"], delta=1e-4, **PLAN)
        <= 2.0
    )
    x = np.random.default_rng(0).normal(size=(37, 4)).astype("float32")
    y = np.arange(37) % 3
    private.fit(x, y, batch_size=10, epochs=1, verbose=0)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # the input is untouched
    assert any(not np.array_equal(a, b) for a, b in zip(before, private.get_weights()))


def _check_trains_any_size(model, x, y, expected_method):
    private = privacy.make_private(model, noise_multiplier=1.0)
    assert private.privacy["method"] == expected_method
    history = private.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert int(private.optimizer.iterations.numpy()) == math.ceil(len(x) / 16)


def test_auto_trains_mlp_and_cnn_fast_when_batch_size_does_not_divide(digits_image):
    (x, y), _ = digits_image
    # 50 examples in batches of 16: the last batch holds 2.
    _check_trains_any_size(
        build_mlp((8, 8, 1), 10, dense_units=(16,)), x[:50], y[:50], "fast"
    )
    _check_trains_any_size(
        build_cnn((8, 8, 1), 10, filters=(4,), dense_units=(16,)),
        x[:50],
        y[:50],
        "fast",  # kdl's convolution registry (issue 16)
    )


@pytest.mark.slow
@pytest.mark.parametrize("bidirectional", [False, True])
def test_auto_trains_gru_fast(digits_sequence, bidirectional):
    (x, y), _ = digits_sequence
    model = build_gru((8, 8), 10, units=(4,), bidirectional=bidirectional)
    _check_trains_any_size(model, x[:18], y[:18], "fast")  # batches 16+2


def _per_example_gradients(model, x, y):
    """Each example's loss gradient, one at a time, by hand."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    grads = []
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = loss_fn(y[i : i + 1], model(x[i : i + 1], training=True))
        grads.append(
            [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
        )
    return grads


@pytest.mark.parametrize("method", ["fast", "vectorized", "optimizer"])
def test_noise_free_update_is_mean_of_clipped_per_example_gradients(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype("float32") * 3
    y = np.array([0, 1, 2, 0, 1, 2])
    model = build_mlp((4,), 3, dense_units=(5,), optimizer="sgd", learning_rate=1.0)
    grads = _per_example_gradients(model, x, y)
    norms = [math.sqrt(sum(float(np.sum(g**2)) for g in per)) for per in grads]
    clip = float(np.median(norms))  # half the gradients get clipped
    expected = [
        np.mean(
            [per[j] * min(1.0, clip / norm) for per, norm in zip(grads, norms)], axis=0
        )
        for j in range(len(grads[0]))
    ]
    private = privacy.make_private(
        model, l2_norm_clip=clip, noise_multiplier=0.0, method=method
    )
    before = private.get_weights()
    private.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    after = private.get_weights()
    for w0, w1, g in zip(before, after, expected):
        np.testing.assert_allclose(w0 - w1, g, rtol=1e-4, atol=1e-6)
    # The unclipped mean differs: clipping really happened.
    unclipped = np.mean([per[0] for per in grads], axis=0)
    assert not np.allclose(before[0] - after[0], unclipped, rtol=1e-2)


@pytest.mark.slow
def test_private_digits_mlp_reaches_80_percent_at_epsilon_8_and_resists_audit(
    digits_flat,
):
    (x, y), (x_test, y_test) = digits_flat
    epochs, batch = 15, 64
    model = build_mlp((64,), 10, dense_units=(64,), optimizer="sgd", learning_rate=0.5)
    private = privacy.make_private(
        model,
        target_epsilon=8.0,
        delta=1e-5,
        num_examples=len(x),
        batch_size=batch,
        epochs=epochs,
    )
    private.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    result = privacy.statement(private)
    assert result.epsilon <= 8.0
    assert result.delta == 1e-5
    _, accuracy = private.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.80
    # Membership inference: every training example against the held-out set.
    audit = privacy.audit(private, x, y, x_test, y_test)
    assert audit.num_members == len(x) and audit.num_non_members == len(x_test)
    assert audit.auc < 0.55


# === Statement ===


def test_statement_saved_in_kdl_train_run_dir(tmp_path, digits_flat):
    import kdl

    (x, y), _ = digits_flat
    x, y = x[:300], y[:300]
    model = build_mlp((64,), 10, dense_units=(16,), optimizer="sgd", learning_rate=0.3)
    private = privacy.make_private(
        model,
        noise_multiplier=1.3,
        delta=1e-5,
        num_examples=len(x),
        batch_size=32,
        epochs=2,
    )
    # Selection on held-out data only: 240 of the 300 examples are trained on.
    history = kdl.train(
        private,
        x,
        y,
        epochs=2,
        batch_size=32,
        validation_split=0.2,
        run_dir=tmp_path / "run",
        seed=0,
        verbose=0,
    )
    path = privacy.save_statement(history.run_dir, private)
    assert path == history.run_dir / "privacy.json"
    saved = json.loads(path.read_text())
    expected = _independent_epsilon(240, 32, 2, 1.3, 1e-5)
    assert saved["epsilon"] == pytest.approx(expected, rel=1e-6)
    assert saved["steps"] == 2 * 8 and saved["noise_multiplier"] == 1.3
    text = (history.run_dir / "privacy.txt").read_text()
    assert "240 examples" in text and "batches of 32" in text
    assert f"({expected:.3g}, 1e-05)-differential privacy" in text


def test_statement_of_params_and_warning_for_unplanned_steps():
    params = dict(
        l2_norm_clip=1.0,
        noise_multiplier=1.1,
        delta=1e-5,
        num_examples=60000,
        batch_size=256,
        epochs=60,
    )
    result = privacy.statement(params)
    assert result.epsilon == pytest.approx(
        _independent_epsilon(60000, 256, 60, 1.1, 1e-5), rel=1e-6
    )
    assert math.isinf(privacy.statement({**params, "noise_multiplier": 0.0}).epsilon)
    assert (
        "NO differential privacy"
        in privacy.statement({**params, "noise_multiplier": 0.0}).text
    )
    with pytest.raises(
        ValueError, match="'epochs' parameter of kdl.privacy.statement must be given"
    ):
        privacy.statement({**params, "epochs": None})

    # Distinct rows: identical rows would be one example (issue 30).
    x = np.arange(80, dtype="float32").reshape(20, 4) / 80
    y = np.zeros(20, "int64")
    private = privacy.make_private(
        _mlp(), noise_multiplier=1.0, num_examples=20, batch_size=10, epochs=1
    )
    private.fit(x, y, batch_size=10, epochs=3, verbose=0)  # 6 steps, 2 planned
    # fit recorded what it trained: the statement accounts for it, no guess.
    result = privacy.statement(private)
    assert (result.steps, result.epochs, result.num_examples) == (6, 3, 20)
    assert result.epsilon == pytest.approx(
        _independent_epsilon(20, 10, 3, 1.0, 1e-5), rel=1e-6
    )
    # train_on_batch: its steps and the distinct rows it gave them (10 rows
    # three times: sampled from 10 examples, not the 20 planned).
    untracked = privacy.make_private(
        _mlp(), noise_multiplier=1.0, num_examples=20, batch_size=10, epochs=1
    )
    for _ in range(3):
        untracked.train_on_batch(x[:10], y[:10])
    result = privacy.statement(untracked)
    assert (result.steps, result.num_examples, result.batch_size) == (3, 10, 10)
    assert result.epsilon == pytest.approx(
        _independent_epsilon(10, 10, 3, 1.0, 1e-5), rel=1e-6
    )


# === Saving and loading ===


@pytest.mark.parametrize("method", ["fast", "optimizer"])
def test_private_model_round_trips_through_kdl_save_and_load(tmp_path, method):
    import kdl

    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    y = np.arange(30) % 3
    private = privacy.make_private(
        _mlp(),
        noise_multiplier=0.8,
        delta=1e-4,
        num_examples=30,
        batch_size=8,
        epochs=1,
        method=method,
    )
    private.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = kdl.save(private, tmp_path / "private.keras")
    loaded = kdl.load(path)
    assert privacy.privacy_params(loaded) == privacy.privacy_params(private)
    assert type(loaded.optimizer).__name__ == type(private.optimizer).__name__
    if method == "optimizer":  # still clips and noises after loading
        assert type(loaded.optimizer).__name__ == "DPSGD"
        assert loaded.optimizer.noise_multiplier == 0.8
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), private.predict(x, verbose=0), rtol=1e-5
    )
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)  # still trains


# === Membership-inference audit ===


def test_audit_detects_deliberately_overfit_model(digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    x, y = x[:100], y[:100]  # a small training set, so overfitting is real
    overfit = build_mlp((64,), 10, dense_units=(256,), learning_rate=3e-3)
    overfit.fit(x, y, batch_size=100, epochs=300, verbose=0)
    train_loss, _ = overfit.evaluate(x, y, verbose=0)
    test_loss, _ = overfit.evaluate(x_test, y_test, verbose=0)
    assert train_loss < 0.01 < 0.1 < test_loss
    leaky = privacy.audit(overfit, x, y, x_test, y_test)
    assert leaky.auc > 0.6
    assert leaky.advantage > 0.2
    assert leaky.loss_threshold_auc > 0.6 and leaky.logistic_auc > 0.6


_TEN = np.zeros((10, 4), "float32")
_LABELS = np.zeros(10, "int64")


@pytest.mark.parametrize(
    "args, error, match",
    [
        (
            (_TEN, _LABELS[:5], _TEN, _LABELS),
            ValueError,
            "'y_train' parameter of kdl.privacy.audit must be as long as x_train",
        ),
        (
            (_TEN, _LABELS, [[0.0] * 4] * 10, _LABELS),
            TypeError,
            "'x_test' .* a numpy array",
        ),
    ],
)
def test_audit_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        privacy.audit(_mlp(), *args)


# === Report ===


@pytest.mark.slow
def test_exported_private_model_keeps_its_epsilon_in_report(tmp_path, digits_flat):
    from kdl import compression, export, report

    (x, y), (x_test, y_test) = digits_flat
    model = build_mlp((64,), 10, dense_units=(32,), optimizer="sgd", learning_rate=0.5)
    private = privacy.make_private(
        model,
        noise_multiplier=1.0,
        delta=1e-5,
        num_examples=len(x),
        batch_size=64,
        epochs=3,
    )
    private.fit(x, y, batch_size=64, epochs=3, verbose=0)
    eps = privacy.statement(private).epsilon
    # One-shot pruning (epochs=0) is post-processing: it stays private.
    before = [w.copy() for w in private.get_weights()]
    pruned = compression.prune(private, None, None, target_sparsity=0.3, epochs=0)
    assert privacy.is_private(pruned)
    assert privacy.statement(pruned).epsilon == pytest.approx(eps)
    assert compression.sparsity(pruned)["overall"] == pytest.approx(0.3, abs=0.01)
    assert all(np.array_equal(a, b) for a, b in zip(before, private.get_weights()))
    # Export and quantization without data are post-processing: same epsilon.
    variants = {
        "dp keras": private,
        "dp tflite float": export.to_tflite(private, tmp_path / "dp.tflite"),
        "dp dynamic range": export.to_tflite(
            private, tmp_path / "dp_dyn.tflite", quantization="dynamic"
        ),
        "dp pruned 30% + dynamic": export.to_tflite(
            pruned, tmp_path / "dp_pruned.tflite", quantization="dynamic"
        ),
    }
    table = report.compare(
        variants, x_test, y_test, verbose=0, epsilons={name: eps for name in variants}
    )
    keras_accuracy = table.row("dp keras")["metric"]
    for name in variants:
        assert table.row(name)["epsilon"] == pytest.approx(eps)
        tolerance = 0.05 if "pruned" in name else 0.02
        assert table.row(name)["metric"] == pytest.approx(keras_accuracy, abs=tolerance)
    assert f"{eps:.3g}" in table.to_markdown()


def test_compression_refuses_to_fine_tune_a_private_model_without_dp():
    from kdl import compression

    model = build_mlp((8,), 2, dense_units=(4,))
    private = privacy.make_private(
        model, noise_multiplier=1.0, num_examples=64, batch_size=16, epochs=1
    )
    x = np.zeros((64, 8), "float32")
    y = np.zeros(64, "int64")
    for transform in (
        compression.prune,
        compression.cluster,
        compression.quantize_aware,
    ):
        with pytest.raises(
            ValueError,
            match=r"'model' parameter of "
            r"kdl.compression\.\w+ .*void its epsilon",
        ):
            transform(private, x, y, verbose=0)


@pytest.mark.parametrize(
    "eps, says, never",
    [
        (1.0, ["strong guarantee", "almost as well", "73.1% sure"], ["weak"]),
        (3.0, ["moderate guarantee", "95.3% sure"], ["learned almost as well"]),
        (8.0, ["weak guarantee", "99.97% sure", "2,981"], ["learned almost as"]),
        (30.0, ["almost no formal protection", "more than 99.99%"], ["as well"]),
    ],
)
def test_statement_words_follow_epsilon(eps, says, never):
    """Issue 31: the plain words are true at each epsilon, not fixed text."""
    from kdl.privacy.statements import epsilon_words

    text = epsilon_words(eps, 1e-5)
    for phrase in says:
        assert phrase in text
    for phrase in never:
        assert phrase not in text
    # The worst-case factor is still printed, computed, at every epsilon.
    assert f"e^{eps:.3g}" in text


def test_statement_text_uses_the_banded_words():
    params = dict(l2_norm_clip=1.0, noise_multiplier=0.5, delta=1e-5,
                  num_examples=1000, batch_size=100, epochs=20)  # fmt: skip
    result = privacy.statement(params)
    assert result.epsilon > 10
    assert "almost no formal protection" in result.text
    assert "almost as well" not in result.text
