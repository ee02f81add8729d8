"""kdl.privacy, third round of issue 30: what was still open.

Rows seen several times per pass are accounted as a group, the validation
check survives saving, the clip norm stated is the one the steps used, TF
Privacy's own optimizers and Keras Sequences get kdl errors, and
quantization-aware training refuses ``dp=``. Every epsilon is computed with
dp_accounting directly, never with kdl.
"""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import privacy
from kdl.backend import keras, tf
from kdl.errors import UnsupportedModelError

N, DELTA = 200, 1e-5


def _epsilon(rate, noise, steps, delta=DELTA):
    """Poisson-sampled Gaussian steps on dp_accounting alone."""
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(
                rate, dp_accounting.GaussianDpEvent(noise)
            ),
            steps,
        )
    )
    return accountant.get_epsilon(delta)


def _group_epsilon(elements, batch, steps, noise, copies):
    """One person's ``copies`` copies among ``elements``: in a batch with
    probability 1 - (1 - batch/elements)^copies, sensitivity ``copies``
    clip norms."""
    rate = 1.0 - (1.0 - batch / elements) ** copies
    return _epsilon(rate, noise / copies, steps)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _mlp(optimizer="sgd"):
    return kdl.build_mlp((8,), 2, hidden_units=(8,), optimizer=optimizer,
                         learning_rate=0.1)  # fmt: skip


def _private(noise=1.0, **kwargs):
    return privacy.make_private(_mlp(), noise_multiplier=noise, **kwargs)


# === 1. Rows that appear several times per pass ===


def test_rows_tripled_in_arrays_are_accounted_as_a_group_of_three(data, tmp_path):
    x, y = data
    once = _private()
    once.fit(x, y, batch_size=30, epochs=1, verbose=0)  # 7 steps on 200 rows
    single = privacy.statement(once)
    # m = 1: exactly the distinct-example accounting of before.
    assert single.multiplicity == 1
    assert single.epsilon == pytest.approx(_epsilon(30 / N, 1.0, 7), rel=1e-6)
    private = _private()
    private.fit(np.concatenate([x] * 3), np.concatenate([y] * 3), batch_size=30,
                epochs=1, verbose=0)  # fmt: skip
    result = privacy.statement(private)
    true = _group_epsilon(3 * N, 30, 20, 1.0, 3)  # 20 steps over 600 rows
    assert result.multiplicity == 3 and result.num_examples == N
    assert result.epsilon == pytest.approx(true, rel=1e-6)
    # Before: 200 examples each sampled at 30/200, noise 1 (not a bound).
    assert result.epsilon > 2 * _epsilon(30 / N, 1.0, 20)
    assert "Rows appear up to 3 times per pass: accounted as a group of 3" in (
        result.text
    )
    loaded = kdl.load(kdl.save(private, tmp_path / "tripled.keras"))
    assert privacy.statement(loaded).epsilon == pytest.approx(result.epsilon)


def test_repeat_given_num_examples_is_a_stated_assumption(data):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat(3)
    # The map makes the copies differ: only num_examples tells kdl they are
    # copies, so m = ceil(600 / 200) is the caller's assumption.
    ds = ds.map(lambda a, b: (a + tf.random.normal(tf.shape(a), stddev=0.01), b))
    private = _private()
    private.fit(ds.batch(25), epochs=1, verbose=0, num_examples=N)  # 24 steps
    result = privacy.statement(private)
    true = _group_epsilon(3 * N, 25, 24, 1.0, 3)
    assert result.multiplicity == 3
    assert result.epsilon == pytest.approx(true, rel=1e-6)
    assert result.epsilon > _epsilon(25 / N, 1.0, 24)
    assert "an assumption made by giving num_examples" in result.text
    # Counted (no map): the same group, the largest count of one row.
    plain = _private()
    plain.fit(tf.data.Dataset.from_tensor_slices((x, y)).repeat(3).batch(25),
              epochs=1, verbose=0, num_examples=N)  # fmt: skip
    counted = privacy.statement(plain)
    assert counted.epsilon == pytest.approx(true, rel=1e-6)
    assert "the largest count of one row in a pass" in counted.text


def test_kdl_info_names_the_multiplicity(data, tmp_path):
    import contextlib
    import io
    import json

    from kdl import cli

    x, y = data
    private = _private()
    private.fit(np.concatenate([x] * 2), np.concatenate([y] * 2), batch_size=40,
                epochs=1, verbose=0)  # fmt: skip
    path = kdl.save(private, tmp_path / "twice.keras")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["info", str(path)]) == 0
    text = out.getvalue()
    info = json.loads(text[text.index("{") :])
    said = info["privacy"]["statement"]
    assert said["multiplicity"] == 2
    assert "accounted as a group of 2" in said["text"]
    assert said["epsilon"] == pytest.approx(_group_epsilon(2 * N, 40, 10, 1.0, 2))


# === 2. The validation check survives saving ===


def test_validation_check_survives_save_and_load(data, tmp_path, monkeypatch):
    from kdl.privacy import _tracking

    x, y = data
    private = _private()
    history = kdl.train(private, x[:150], y[:150], validation_data=(x[150:],
                        y[150:]), epochs=2, batch_size=30, verbose=0,
                        run_dir=tmp_path / "run")  # fmt: skip
    # As in a new process: only the file can give the rows back.
    monkeypatch.setattr(_tracking, "_RECENT_ROWS", {})
    loaded = kdl.load(history.run_dir / "best.keras")
    assert privacy.statement(loaded).rows_unchecked is None
    with pytest.raises(ValueError, match="20 validation row.* training rows"):
        loaded.fit(x[150:], y[150:], validation_data=(x[:20], y[:20]),
                   batch_size=25, verbose=0)  # fmt: skip
    # Held-out rows it never trained on are still accepted.
    loaded.fit(x[150:180], y[150:180], validation_data=(x[180:], y[180:]),
               batch_size=15, verbose=0)  # fmt: skip


def test_rows_over_the_cap_are_not_kept_and_the_statement_says_so(
    data, tmp_path, monkeypatch
):
    from kdl.privacy import _tracking

    x, y = data
    monkeypatch.setattr(_tracking, "ROWS_CAP", 100)
    private = _private()
    private.fit(x[:150], y[:150], batch_size=30, verbose=0)
    assert privacy.statement(private).rows_not_saved == 150
    loaded = kdl.load(kdl.save(private, tmp_path / "big.keras"))
    result = privacy.statement(loaded)
    assert result.rows_unchecked == 150
    assert "did not keep the fingerprints of 150 training rows" in result.text
    # The check is gone, as the statement says.
    loaded.fit(x[150:], y[150:], validation_data=(x[:20], y[:20]), batch_size=25,
               verbose=0)  # fmt: skip


def test_h5_keeps_no_rows_and_an_in_process_copy_keeps_them(
    data, tmp_path, monkeypatch
):
    from kdl.privacy import _tracking

    x, y = data
    private = _private()
    private.fit(x[:150], y[:150], batch_size=30, verbose=0)
    path = kdl.save(private, tmp_path / "private.h5")
    copy = kdl.compression.prune(private, None, target_sparsity=0.5, epochs=0)
    with pytest.raises(ValueError, match="validation row"):  # same process
        copy.fit(x[150:], y[150:], validation_data=(x[:20], y[:20]), verbose=0)
    monkeypatch.setattr(_tracking, "_RECENT_ROWS", {})
    result = privacy.statement(kdl.load(path))
    assert "did not keep the fingerprints of 150 training rows" in result.text


def test_a_new_private_model_over_a_private_one_keeps_its_rows(data):
    x, y = data
    private = _private()
    private.fit(x[:150], y[:150], batch_size=30, verbose=0)
    again = privacy.make_private(private, noise_multiplier=1.0,
                                 public_pretraining=True)  # fmt: skip
    with pytest.raises(ValueError, match="20 validation row.* training rows"):
        again.fit(x[150:], y[150:], validation_data=(x[:20], y[:20]), verbose=0)


# === 3. The clip norm stated is the one the steps used ===


@pytest.mark.parametrize("method", ["fast", "vectorized", "optimizer"])
def test_statement_states_the_clip_trained_with(data, tmp_path, method):
    x, y = data
    private = _private(l2_norm_clip=100.0, method=method)
    private.fit(x, y, batch_size=40, verbose=0)
    assert privacy.statement(private).l2_norm_clip == 100.0
    loaded = kdl.load(kdl.save(private, tmp_path / "clip.keras"))
    assert privacy.statement(loaded).l2_norm_clip == 100.0


def test_recompiled_dp_optimizer_clip_is_stated(data):
    x, y = data
    private = _private(l2_norm_clip=1.0, method="optimizer")
    private.compile(
        optimizer=privacy.dp_optimizer("sgd", l2_norm_clip=100.0,
                                       noise_multiplier=1.0),
        loss=private.loss,
    )  # fmt: skip
    private.fit(x, y, batch_size=40, verbose=0)
    result = privacy.statement(private)
    assert result.l2_norm_clip == 100.0  # was 1.0, the make_private setting
    assert "clipped to L2 norm 100" in result.text
    built = kdl.build_mlp((8,), 2, hidden_units=(8,), optimizer=privacy.dp_optimizer(
        "sgd", l2_norm_clip=1.0, noise_multiplier=1.0))  # fmt: skip
    built.optimizer.l2_norm_clip = 100.0
    built.fit(x, y, batch_size=40, verbose=0)
    assert privacy.statement(built).l2_norm_clip == 100.0


# === 4. TF Privacy's own optimizers, Keras Sequences ===


def test_unsupported_dp_optimizers_get_kdl_errors(data):
    import sys

    sys.skip_tf_privacy_import = True
    from tensorflow_privacy.privacy.optimizers import dp_optimizer_keras

    fast = _private(method="fast")
    with pytest.raises(TypeError, match="'optimizer' parameter of PrivateModel"
                       r"\.compile .*plain optimizer.* Got 'DPSGD'"):  # fmt: skip
        fast.compile(optimizer=privacy.dp_optimizer("sgd", noise_multiplier=1.0),
                     loss=fast.loss)  # fmt: skip
    own = dp_optimizer_keras.DPKerasSGDOptimizer(
        l2_norm_clip=1.0, noise_multiplier=1.0, num_microbatches=5
    )
    private = _private(method="optimizer")
    with pytest.raises(TypeError, match="TensorFlow Privacy's own DP optimizer"):
        private.compile(optimizer=own, loss=private.loss)
    private.compile(optimizer="sgd", loss=private.loss)  # plain: allowed


class _Batches(keras.utils.Sequence):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.x[i * 25 : (i + 1) * 25], self.y[i * 25 : (i + 1) * 25]


def _tracking_steps(model):
    return int(model.optimizer.iterations.numpy())


def test_keras_sequence_gets_a_kdl_error(data):
    x, y = data
    private = _private()
    with pytest.raises(TypeError, match="'x' parameter of PrivateModel.fit .*"
                       "Sequence.* Got '_Batches'"):  # fmt: skip
        private.fit(_Batches(x, y), verbose=0)
    with pytest.raises(TypeError, match="'validation_data' parameter .*Sequence"):
        private.fit(x[:100], y[:100], validation_data=_Batches(x[100:], y[100:]),
                    verbose=0)  # fmt: skip
    assert _tracking_steps(private) == 0  # refused before any work


# === 5. Quantization-aware training and dp= ===


def test_quantize_aware_refuses_dp_and_says_why(data):
    from kdl import compression

    x, y = data
    for dp in (True, {"noise_multiplier": 1.0}):
        with pytest.raises(UnsupportedModelError, match="'dp' parameter of "
                           "kdl.compression.quantize_aware .*min/max.*without "
                           "clipping or noise"):  # fmt: skip
            compression.quantize_aware(_private(), x, y, dp=dp, verbose=0)
    # The reason holds: the QAT model's ranges are non-trainable float state
    # its steps update, which private training refuses.
    qat = compression.quantize_aware(_mlp(), x, y, epochs=1, verbose=0)
    with pytest.raises(UnsupportedModelError, match="non-trainable weights"):
        privacy.make_private(qat, noise_multiplier=1.0)
