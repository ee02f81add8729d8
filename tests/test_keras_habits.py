"""Issue 31: a Keras user's habits work in kdl (fit arguments pass through,
y=None with a dataset, Keras' names, one name per shared concept)."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import compression
from kdl.backend import keras, tf


class _Count(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return x, y


def _mlp():
    return kdl.build_mlp((8,), 2, hidden_units=(8,))


def test_train_passes_fit_arguments_on(small, tmp_path):
    x, y = small
    weights = np.where(y == 1, 2.0, 1.0).astype("float32")
    history = kdl.train(_mlp(), x, y, epochs=3, initial_epoch=1, sample_weight=weights,
                        run_dir=False, verbose=0)  # fmt: skip
    assert history.epoch == [1, 2]  # Keras' initial_epoch, passed on
    with pytest.raises(TypeError, match="'no_such' parameter of kdl.train"):
        kdl.train(_mlp(), x, y, epochs=1, run_dir=False, no_such=1)
    with pytest.raises(ValueError, match="'sample_weight' parameter of kdl.train"):
        kdl.train(_mlp(), x, y, epochs=1, run_dir=False, validation_split=0.2,
                  sample_weight=weights)  # fmt: skip
    with pytest.raises(ValueError, match="'seed' parameter of kdl.train"):
        kdl.train(_mlp(), x, y, epochs=1, run_dir=False, deterministic=True)


@pytest.mark.slow
def test_compression_takes_a_dataset_without_y_and_callbacks(small):
    x, y = small
    model = _mlp()
    model.fit(x, y, epochs=1, verbose=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    count = _Count()
    pruned = compression.prune(model, data, target_sparsity=0.5, epochs=2,
                               callbacks=[count], verbose=0)  # fmt: skip
    assert count.epochs == 2
    assert compression.sparsity(pruned)["overall"] == pytest.approx(0.5, abs=0.05)


def test_compression_holdout_is_deprecated_for_validation_split(small):
    x, y = small
    model = _mlp()
    with pytest.deprecated_call(match="validation_split"):
        compression.shrink(model, x, y, epochs=1, holdout=0.2, verbose=0)
    with pytest.raises(ValueError, match="'holdout' parameter of kdl.compression"):
        with pytest.deprecated_call():
            compression.shrink(model, x, y, epochs=1, holdout=0.2,
                               validation_split=0.3, verbose=0)  # fmt: skip
