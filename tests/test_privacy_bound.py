"""kdl.privacy, second round (issue 30): the statement is bound to the steps
that actually ran with noise, and to the weights they produced.

One test per row of the issue's table. Each computes the true epsilon with
dp_accounting directly (RDP, Poisson sampling, the steps that ran, the noise
they used), never with kdl, and ends in a correct statement, a voided one or
a refusal.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import kdl
from kdl import privacy
from kdl.backend import keras, tf

N, DELTA = 200, 1e-5


def _true_epsilon(*sessions, delta=DELTA):
    """Sessions of (examples, batch, steps, noise), on dp_accounting alone."""
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    for n, batch, steps, noise in sessions:
        if noise == 0:
            return math.inf
        accountant.compose(
            dp_accounting.SelfComposedDpEvent(
                dp_accounting.PoissonSampledDpEvent(
                    min(1.0, batch / n), dp_accounting.GaussianDpEvent(noise)
                ),
                steps,
            )
        )
    return accountant.get_epsilon(delta)


def _group_epsilon(elements, batch, steps, noise, copies, delta=DELTA):
    """A step where one example has ``copies`` copies among ``elements``:
    present with probability 1 - (1 - batch/elements)^copies, sensitivity
    ``copies`` clip norms (noise / copies), on dp_accounting alone."""
    import dp_accounting
    from dp_accounting import rdp

    rate = 1.0 - (1.0 - min(1.0, batch / elements)) ** copies
    accountant = rdp.RdpAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(
                rate, dp_accounting.GaussianDpEvent(noise / copies)
            ),
            steps,
        )
    )
    return accountant.get_epsilon(delta)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _mlp(optimizer="sgd"):
    return kdl.build_mlp((8,), 2, dense_units=(8,), optimizer=optimizer,
                         learning_rate=0.1)  # fmt: skip


def _private(noise=1.0, **kwargs):
    return privacy.make_private(_mlp(), noise_multiplier=noise, **kwargs)


def _quiet_statement(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return privacy.statement(model, **kwargs)


# === 3. Examples are the unit of privacy ===


def test_repeat_with_augmentation_is_refused_unless_examples_given(data):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat(3)
    ds = ds.map(lambda a, b: (a + tf.random.normal(tf.shape(a), stddev=0.01), b))
    ds = ds.batch(20)
    private = _private()
    with pytest.raises(ValueError, match="num_examples=.*RepeatDataset"):
        private.fit(ds, epochs=1, verbose=0)
    private.fit(ds, epochs=1, verbose=0, num_examples=N)  # 30 steps of 20
    result = privacy.statement(private)
    assert result.num_examples_given and "given by the caller" in result.text
    # 3N elements for N examples: each example up to 3 times per pass, so a
    # group of 3 (issue 30, third round), not N examples sampled once.
    assert result.multiplicity == 3 and "assumption" in result.text
    true = _group_epsilon(3 * N, 20, 30, 1.0, 3)
    assert result.epsilon == pytest.approx(true, rel=1e-6)
    assert true > _true_epsilon((N, 20, 30, 1.0))


def test_concatenated_augmented_copy_is_refused_unless_examples_given(data):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.concatenate(ds.map(lambda a, b: (-a, b))).batch(20)
    private = _private()
    with pytest.raises(ValueError, match="ConcatenateDataset"):
        private.fit(ds, epochs=1, verbose=0)
    private.fit(ds, epochs=1, verbose=0, num_examples=N)  # 20 steps
    result = privacy.statement(private)
    true = _group_epsilon(2 * N, 20, 20, 1.0, 2)  # an example and its copy
    assert result.epsilon == pytest.approx(true, rel=1e-6)


def _jitter(a, b):
    return a + tf.random.normal(tf.shape(a), stddev=0.01), b


def test_rows_repeated_before_an_augmenting_map_are_refused(data):
    # A hostile review's break: the source repeats 40 rows ten times, then an
    # augmenting map makes the copies distinct (stated 3.50, true 26.5).
    x, y = data[0][:40], data[1][:40]
    repeated = tf.data.Dataset.from_tensor_slices(
        (np.repeat(x, 10, axis=0), np.repeat(y, 10))
    ).map(_jitter)
    index = tf.data.Dataset.range(400).map(
        lambda i: (tf.gather(x, i % 40), tf.gather(y, i % 40))
    )
    for ds, ops in [(repeated, "MapDataset"), (index, "MapDataset, RangeDataset")]:
        private = _private()
        with pytest.raises(ValueError, match=f"num_examples=.* its {ops} can"):
            private.fit(ds.batch(40), epochs=1, verbose=0)
        private.fit(ds.batch(40), epochs=1, verbose=0, num_examples=40)
        result = privacy.statement(private)
        # 400 elements for 40 examples: a group of 10 copies per example.
        true = _group_epsilon(400, 40, 10, 1.0, 10)
        assert result.epsilon == pytest.approx(true, rel=1e-6)
        assert result.num_examples_given and result.multiplicity == 10
    assert true > 3 * _true_epsilon((400, 40, 10, 1.0))  # counting 400 rows


def test_plain_slices_pipeline_is_counted_and_a_map_is_not(data):
    x, y = data
    plain = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(N, seed=0)
    private = _private()
    private.fit(plain.batch(20).prefetch(2), epochs=1, verbose=0)
    result = privacy.statement(private)
    assert result.epsilon == pytest.approx(_true_epsilon((N, 20, 10, 1.0)), rel=1e-6)
    # Even a one-to-one map (normalization) is refused: kdl cannot tell it
    # from a map that makes copies.
    with pytest.raises(ValueError, match="MapDataset"):
        _private().fit(plain.map(lambda a, b: (a / 2, b)).batch(20), verbose=0)


def test_duplicated_rows_count_the_same_in_arrays_and_tf_data(data):
    x, y = data
    x3, y3 = np.concatenate([x] * 3), np.concatenate([y] * 3)
    arrays = _private()
    arrays.fit(x3, y3, batch_size=30, epochs=1, verbose=0)
    dataset = _private()
    dataset.fit(tf.data.Dataset.from_tensor_slices((x3, y3)).batch(30), verbose=0)
    a, d = privacy.statement(arrays), privacy.statement(dataset)
    assert a.num_examples == d.num_examples == N  # not 3N
    assert a.multiplicity == d.multiplicity == 3
    assert a.epsilon == pytest.approx(d.epsilon)
    # Three copies of each row in a pass: a group of 3 (issue 30, third
    # round), above N examples each sampled once per pass.
    true = _group_epsilon(3 * N, 30, 20, 1.0, 3)
    assert a.epsilon == pytest.approx(true, rel=1e-6)
    assert "Rows appear up to 3 times per pass: accounted as a group of 3" in a.text
    assert true > _true_epsilon((N, 30, 20, 1.0))


# === 1. Counted by the DP step itself ===


def test_dp_optimizer_model_recompiled_with_plain_sgd_is_not_private(data):
    x, y = data
    private = _mlp(privacy.dp_optimizer("sgd", noise_multiplier=1.0))
    private.compile(optimizer=keras.optimizers.legacy.SGD(0.1),
                    loss="sparse_categorical_crossentropy")  # fmt: skip
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    result = privacy.statement(private)
    assert math.isinf(result.epsilon) and _true_epsilon((N, 20, 10, 0.0)) == math.inf
    assert "NOT differentially private" in result.text


def test_recompiled_with_lower_noise_dp_optimizer_counts_that_noise(data):
    x, y = data
    private = _mlp(privacy.dp_optimizer("sgd", noise_multiplier=1.0))
    private.compile(optimizer=privacy.dp_optimizer("sgd", noise_multiplier=0.3),
                    loss="sparse_categorical_crossentropy")  # fmt: skip
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    result = privacy.statement(private)
    assert result.noise_multiplier == pytest.approx(0.3)
    assert result.epsilon == pytest.approx(_true_epsilon((N, 20, 10, 0.3)), rel=1e-4)


def test_fit_then_train_on_batch_counts_every_step(data):
    x, y = data
    private = _private(num_examples=N, batch_size=10, epochs=1)
    private.fit(x, y, batch_size=10, epochs=1, verbose=0, steps_per_epoch=20)
    for i in range(10):
        private.train_on_batch(x[i * 10 : i * 10 + 10], y[i * 10 : i * 10 + 10])
    result = privacy.statement(private)
    assert result.steps == 30
    # The 10 train_on_batch steps drew no random batch: a row in them is in
    # its step for sure (rate 1), whatever rows the other calls held.
    true = _true_epsilon((N, 10, 20, 1.0), (10, 10, 10, 1.0))
    assert result.epsilon == pytest.approx(true, rel=1e-6)


def test_train_on_batch_on_the_same_rows_counts_those_rows(data):
    # A hostile review's break: 10 calls on the same 40 rows were counted
    # against the planned 400 examples (stated 4.03, true 34.9).
    x, y = data
    private = _private(num_examples=400, batch_size=40, epochs=1)
    for _ in range(10):
        private.train_on_batch(x[:40], y[:40])
    result = privacy.statement(private)
    true = _true_epsilon((40, 40, 10, 1.0))
    assert result.num_examples == 40 and result.epsilon == pytest.approx(true)
    assert true > 3 * _true_epsilon((400, 40, 10, 1.0))  # the plan's figure
    # A custom loop calling train_step: rows unseen, so num_examples needed.
    private.train_step((tf.constant(x[:40]), tf.constant(y[:40])))
    with pytest.raises(ValueError, match="'num_examples' .* did not see"):
        privacy.statement(private)


def test_train_on_batch_records_the_batch_it_ran(data):
    x, y = data
    private = _private(num_examples=N, batch_size=10, epochs=1)  # planned 10
    for i in range(5):
        private.train_on_batch(x[i * 40 : i * 40 + 40], y[i * 40 : i * 40 + 40])
    result = privacy.statement(private, num_examples=N)
    assert (result.batch_size, result.steps) == (40, 5)
    assert result.epsilon == pytest.approx(_true_epsilon((40, 40, 5, 1.0)), rel=1e-6)


def test_savedmodel_reload_then_train_on_batch_keeps_counting(data, tmp_path):
    x, y = data
    private = _private(num_examples=N)
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)  # 10 steps
    private.save(tmp_path / "saved", save_format="tf")
    loaded = kdl.load(tmp_path / "saved")
    for i in range(10):
        loaded.train_on_batch(x[i * 20 : i * 20 + 20], y[i * 20 : i * 20 + 20])
    result = privacy.statement(loaded, num_examples=N)
    assert result.steps == 20 and result.void is None
    # The fit's 10 steps sampled from N rows; the 10 train_on_batch steps drew
    # no random batch (rate 1).
    true = _true_epsilon((N, 20, 10, 1.0), (20, 20, 10, 1.0))
    assert result.epsilon == pytest.approx(true, rel=1e-6)


@pytest.mark.parametrize("method", ["fast", "optimizer"])
def test_noise_set_to_zero_by_attribute_is_recorded(data, method):
    x, y = data
    private = _private(method=method)
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    if method == "fast":
        private.privacy["noise_multiplier"] = 0.0
        optimizer = private.optimizer
    else:
        optimizer = private.optimizer
        optimizer.noise_multiplier = 0.0
    private.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    result = privacy.statement(private)
    assert [s["noise_multiplier"] for s in result.sessions] == [1.0, 0.0]
    assert math.isinf(result.epsilon)


# === 2. Bound to the weights ===


def test_plain_model_over_the_private_layers_voids_the_statement(data):
    x, y = data
    private = _private()
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    plain = keras.Model(private.inputs, private.outputs)
    plain.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plain.fit(x, y, batch_size=20, epochs=1, verbose=0)
    result = privacy.statement(private)
    assert result.void and math.isinf(result.epsilon) and "VOID" in result.text
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)  # more DP on top
    assert privacy.statement(private).void  # still void: steps found them


def test_set_weights_from_a_plain_model_voids_until_declared_public(data):
    x, y = data
    private = _private()
    other = _mlp()
    other.fit(x, y, epochs=1, verbose=0)
    private.set_weights(other.get_weights())
    private.fit(x, y, batch_size=20, epochs=1, verbose=0)
    assert math.isinf(privacy.statement(private).epsilon)
    with pytest.raises(ValueError, match="not private yet"):
        privacy.make_private(private, noise_multiplier=1.0)
    public = privacy.make_private(private, noise_multiplier=1.0,
                                  public_pretraining=True)  # fmt: skip
    public.fit(x, y, batch_size=20, epochs=1, verbose=0)
    result = privacy.statement(public)
    assert result.void is None and result.public_pretraining
    # The earlier DP session still counts, with this one.
    true = _true_epsilon((N, 20, 10, 1.0), (N, 20, 10, 1.0))
    assert result.epsilon == pytest.approx(true, rel=1e-6)


def test_trained_model_loaded_without_compile_is_refused(data, tmp_path):
    x, y = data
    trained = _mlp()
    trained.fit(x, y, epochs=2, verbose=0)
    path = kdl.save(trained, tmp_path / "trained.keras")
    loaded = kdl.load(path, compile=False)
    loaded.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="show prior training"):
        privacy.make_private(loaded, noise_multiplier=1.0)
    privacy.make_private(_mlp(), noise_multiplier=1.0)  # a fresh one passes


# === 4. Statements survive every path ===


def test_best_and_final_files_carry_the_sessions(data, tmp_path):
    x, y = data
    private = _private()
    history = kdl.train(private, x, y, validation_split=0.2, batch_size=40,
                        epochs=3, run_dir=tmp_path / "run", verbose=0,
                        early_stopping=False, tensorboard=False)  # fmt: skip
    losses = history.history["val_loss"]
    best_epoch = int(np.argmin(losses)) + 1
    best = kdl.load(tmp_path / "run" / "best.keras")
    result = privacy.statement(best)
    # 160 training rows in batches of 40: 4 steps an epoch, up to the best.
    assert result.void is None and result.num_examples == 160
    true = _true_epsilon((160, 40, 4 * best_epoch, 1.0))
    assert result.epsilon == pytest.approx(true, rel=1e-6)
    final = kdl.load(kdl.save(private, tmp_path / "final.keras"))
    assert privacy.statement(final).epsilon == pytest.approx(
        _true_epsilon((160, 40, 12, 1.0)), rel=1e-6
    )
    info = privacy.privacy_params(best)
    assert [s["steps"] for s in info["sessions"]] == [4 * best_epoch]


def test_validation_data_overlapping_training_is_refused(data, tmp_path):
    x, y = data
    private = _private()
    with pytest.raises(ValueError, match="'validation_data'.*also training rows"):
        kdl.train(private, x, y, validation_data=(x[:50], y[:50]), epochs=1,
                  run_dir=False, verbose=0)  # fmt: skip
    assert privacy.statement(private, num_examples=N, batch_size=20, epochs=1)
    assert int(private.kdl_ledger.steps.numpy()) == 0  # refused before work


def _private_builder(units: int = 8):
    optimizer = privacy.dp_optimizer("sgd", noise_multiplier=1.0)
    return kdl.build_mlp((8,), 2, dense_units=(units,), learning_rate=0.1,
                         optimizer=optimizer)  # fmt: skip


@pytest.mark.slow
def test_tune_best_model_composes_every_trial(data, tmp_path):
    # The best model's statement counts what every trial trained on the same
    # data (issue 30, ask 4): 3 trials of 160 rows in batches of 20, each 1
    # epoch = 8 steps (EarlyStopping cannot stop a 1-epoch trial early).
    x, y = data
    result = kdl.tune(_private_builder, x, y, space={"units": kdl.Choice([4, 8, 6])},
                      max_trials=3, epochs=1, batch_size=20, validation_split=0.2,
                      directory=tmp_path / "tune", algorithm="grid", seed=0,
                      verbose=0)  # fmt: skip
    statement = privacy.statement(result.best_model)
    true = _true_epsilon(*[(160, 20, 8, 1.0)] * 3)
    assert statement.void is None and statement.search_trials == 3
    assert statement.epsilon == pytest.approx(true, rel=1e-6)
    assert statement.epsilon > _true_epsilon((160, 20, 8, 1.0))  # one trial
    assert "search of 3 trials" in statement.text
    # The same through kdl.privacy.search_epsilon: (noise, rate, steps).
    composed = privacy.search_epsilon([[(1.0, 20 / 160, 8)]] * 3, DELTA)
    assert composed == pytest.approx(true, rel=1e-9)
    # Weights changed after the search: void.
    result.best_model.set_weights([w * 0 for w in result.best_model.get_weights()])
    assert privacy.statement(result.best_model).void


def test_search_epsilon_composes_trials_like_dp_accounting():
    trials = [[(1.1, 0.05, 300)], [(0.8, 0.1, 50), (1.1, 0.05, 10)]]
    true = _true_epsilon((100, 5, 300, 1.1), (100, 10, 50, 0.8), (100, 5, 10, 1.1))
    assert privacy.search_epsilon(trials, DELTA) == pytest.approx(true, rel=1e-9)
    assert math.isinf(privacy.search_epsilon([[(0.0, 0.1, 1)]], DELTA))


def test_num_examples_cannot_exceed_the_distinct_rows(data):
    x, y = data
    private = _private()
    with pytest.raises(ValueError, match="'num_examples' .* at most the 200"):
        private.fit(x, y, batch_size=20, verbose=0, num_examples=10 * N)


def test_rows_equal_to_the_model_count_once():
    # A hostile review's break: copies differing only by -0.0, or float64
    # copies that are the same float32 input, counted as distinct examples.
    from kdl.privacy import _pipeline

    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    signed = x.copy()
    signed[:, 2] = 0.0
    negative = signed.copy()
    negative[:, 2] = -0.0
    assert len(_pipeline.row_hashes([np.concatenate([signed, negative])])) == 5
    wide = x.astype("float64")
    assert len(_pipeline.row_hashes([np.concatenate([wide, wide + 1e-12])])) == 5
    assert len(_pipeline.row_hashes([np.concatenate([x, x + 1e-3])])) == 10


# === Third hostile review: train_on_batch draws no random batch ===


def test_a_row_in_every_train_on_batch_call_is_counted_in_every_step(data):
    # Stated 1.28 (rate 10/901) where the row's epsilon is at least 91.8.
    x, y = data
    private = _private(num_examples=N, batch_size=10, epochs=1)
    for i in range(30):
        rows = np.r_[0, 1 + (np.arange(9) + 9 * i) % (N - 1)]
        private.train_on_batch(x[rows], y[rows])
    result = privacy.statement(private)
    assert result.epsilon == pytest.approx(_true_epsilon((10, 10, 30, 1.0)), rel=1e-6)


def test_a_row_repeated_inside_a_train_on_batch_batch_is_a_group(data):
    # Stated 7.77 (m = 1) where the row's epsilon is at least 2,268.
    x, y = data
    private = _private(num_examples=N, batch_size=30, epochs=1)
    rows = np.r_[np.zeros(20, int), np.arange(1, 11)]  # row 0 twenty times
    for _ in range(5):
        private.train_on_batch(x[rows], y[rows])
    result = privacy.statement(private)
    # A group of 20 copies in a step of 30: rate 1, noise 1 / 20.
    assert result.epsilon == pytest.approx(
        _true_epsilon((30, 30, 5, 1.0 / 20)), rel=1e-6
    )


def test_labels_in_another_dtype_are_the_same_examples(data):
    # The same 40 rows with int64 and float32 labels were counted as 80.
    x, y = data
    private = _private(num_examples=400, batch_size=40, epochs=1)
    for i in range(6):
        labels = y[:40] if i % 2 else y[:40].astype("float32")
        private.train_on_batch(x[:40], labels)
    assert privacy.statement(private).num_examples == 40
    with pytest.raises(ValueError, match="validation"):
        private.fit(x[40:200], y[40:200], validation_data=(x[:40], y[:40].astype(
            "float32")), epochs=1, verbose=0)  # fmt: skip
