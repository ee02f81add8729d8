"""Issue 31: a Keras user's habits work in kdl (fit arguments pass through,
y=None with a dataset, Keras' names, one name per shared concept)."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import compression
from kdl.backend import keras, tf


class _Count(keras.callbacks.Callback):
    """Counts epochs, in memory and (when given a file) on disk."""

    def __init__(self, path=None):
        super().__init__()
        self.epochs = 0
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(f"{epoch}\n")


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return x, y


def _mlp():
    return kdl.build_mlp((8,), 2, dense_units=(8,))


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


class _Doubler(keras.layers.Layer):  # deliberately not registered
    def call(self, inputs):
        return inputs * 2.0


def test_load_takes_the_users_custom_objects(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _Doubler(name="double")(inputs))
    path = kdl.save(model, tmp_path / "doubler.keras")
    with pytest.raises(ValueError, match="_Doubler"):
        kdl.load(path)  # safe mode: a class nobody allowed is refused
    restored = kdl.load(path, custom_objects={"_Doubler": _Doubler})
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), 2 * x)
    with pytest.raises(TypeError, match="'custom_objects' parameter of kdl.load"):
        kdl.load(path, custom_objects=[_Doubler])


def test_build_cnn_takes_keras_pooling_name():
    avg = kdl.build_cnn((8, 8, 1), 10, filters=(4,), pooling="avg")
    assert any(isinstance(la, keras.layers.AveragePooling2D) for la in avg.layers)
    with pytest.deprecated_call(match="'pooling'"):
        old = kdl.build_cnn((8, 8, 1), 10, filters=(4,), pool="average")
    assert any(isinstance(la, keras.layers.AveragePooling2D) for la in old.layers)
    with pytest.raises(ValueError, match="'pooling' parameter of build_cnn"):
        kdl.build_cnn((8, 8, 1), 10, pooling="mean")


@pytest.mark.slow
def test_tune_takes_callbacks_class_weight_and_keras_tuner_names(small, tmp_path):
    x, y = small
    count = _Count(tmp_path / "epochs.txt")
    with pytest.deprecated_call(match="max_consecutive_failed_trials"):
        result = kdl.tune(
            kdl.build_mlp, x, y, space={"dense_units": kdl.Choice([(4,), (8,)])},
            algorithm="grid", epochs=1, directory=tmp_path / "t", verbose=0,
            callbacks=[count], class_weight={0: 1.0, 1: 2.0},
            max_consecutive_failures=2,
        )  # fmt: skip
    assert len(result.trials) == 2
    # It ran in both trials, each on its own copy (KerasTuner's rule).
    assert (tmp_path / "epochs.txt").read_text().split() == ["0", "0"]
    assert count.epochs == 0
    with pytest.raises(TypeError, match="'epochz' parameter of kdl.tune"):
        kdl.tune(kdl.build_mlp, x, y, space={"dense_units": kdl.Choice([(4,)])},
                 directory=tmp_path / "u", epochz=3)  # fmt: skip


def test_builders_take_keras_loss():
    model = kdl.build_mlp((8,), 1, task="regression", dense_units=(4,), loss="mae")
    assert model.loss == "mae"
    huber = keras.losses.Huber()
    assert kdl.build_gru((5, 2), 1, task="regression", loss=huber).loss is huber
    default = kdl.build_cnn((8, 8, 1), 3, filters=(4,))
    assert default.loss == "sparse_categorical_crossentropy"
    with pytest.raises(TypeError, match="'loss' parameter of build_resnet"):
        kdl.build_resnet((8, 8, 1), 3, loss=3)


def test_standard_variants_with_a_dataset_asks_for_calibration_data(small, tmp_path):
    x, y = small
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match="'representative_data' parameter"):
        kdl.report.standard_variants(_mlp(), data, run_dir=tmp_path)
    with pytest.raises(ValueError, match="'run_dir' parameter"):
        kdl.report.standard_variants(_mlp(), x, y)
    assert not any(tmp_path.iterdir())


# === Widths: dense_units for dense layers, units for recurrent ones ===


def _widths(model, kind) -> list[int]:
    return [la.units for la in model.layers if type(la) is kind]


@pytest.mark.parametrize(
    "build, arg, kind",
    [
        (lambda **kw: kdl.build_mlp((8,), 2, **kw), "dense_units", "Dense"),
        (lambda **kw: kdl.build_cnn((8, 8, 1), 2, filters=(4,), **kw),
         "dense_units", "Dense"),
        (lambda **kw: kdl.build_gru((5, 2), 2, **kw), "units", "GRU"),
        (lambda **kw: kdl.build_lstm((5, 2), 2, **kw), "dense_units", "Dense"),
        (lambda **kw: kdl.build_rnn((5, 2), 2, **kw), "units", "SimpleRNN"),
        (lambda **kw: kdl.build_seq2seq(10, 12, **kw), "units", "GRU"),
    ],
)  # fmt: skip
def test_a_width_is_an_int_or_a_tuple_in_every_builder(build, arg, kind):
    kind = getattr(keras.layers, kind)
    as_int = _widths(build(**{arg: 6}), kind)
    assert as_int == _widths(build(**{arg: (6,)}), kind)
    assert 6 in as_int


def test_seq2seq_refuses_a_stack_of_units():
    with pytest.raises(ValueError, match=r"'units' parameter of build_seq2seq .*one"):
        kdl.build_seq2seq(10, 12, units=(8, 4))


def test_hidden_units_is_deprecated_for_dense_units():
    with pytest.deprecated_call(match="'dense_units'"):
        old = kdl.build_mlp((8,), 2, hidden_units=(5, 3))
    new = kdl.build_mlp((8,), 2, dense_units=(5, 3))
    assert _widths(old, keras.layers.Dense) == _widths(new, keras.layers.Dense)
    with pytest.raises(ValueError, match="'hidden_units' parameter of build_mlp"):
        with pytest.deprecated_call():
            kdl.build_mlp((8,), 2, hidden_units=(5,), dense_units=(3,))
    with pytest.deprecated_call(match="dense_units"):
        trunk = kdl.build_multitask(
            (8,), {"a": ("binary", 1)}, trunk_kwargs={"hidden_units": (7,)}
        )
    assert trunk.get_layer("dense1").units == 7
    shape, tasks = (8, 8, 1), {"a": ("binary", 1)}
    cnn = {"filters": (4,), "pooling": "avg"}
    avg = kdl.build_multitask(shape, tasks, trunk="cnn", trunk_kwargs=cnn)
    assert any(isinstance(la, keras.layers.AveragePooling2D) for la in avg.layers)
    with pytest.deprecated_call(match="'pooling'"):
        cnn = {"filters": (4,), "pool": "average"}
        old = kdl.build_multitask(shape, tasks, trunk="cnn", trunk_kwargs=cnn)
    assert any(isinstance(la, keras.layers.AveragePooling2D) for la in old.layers)


def test_dqn_agent_takes_dense_units_and_old_saves(tmp_path):
    import json

    from kdl.rl import DQNAgent

    with pytest.deprecated_call(match="dense_units"):
        old = DQNAgent("CartPole-v1", hidden_units=(8,), seed=0)
    assert old.config["dense_units"] == (8,) and "hidden_units" not in old.config
    folder = old.save(tmp_path / "agent")
    config = folder / "agent.json"
    saved = json.loads(config.read_text())  # as an agent saved before issue 31
    saved["config"]["hidden_units"] = saved["config"].pop("dense_units")
    config.write_text(json.dumps(saved))
    assert DQNAgent.load(folder).config["dense_units"] == (8,)


def test_no_caller_in_the_repo_uses_the_old_width_name():
    """Nothing kdl ships emits the hidden_units DeprecationWarning."""
    from pathlib import Path

    root = Path(kdl.__file__).parent.parent
    handlers = {"mlp.py", "multitask.py", "dqn.py", "agent_files.py", "saving.py"}
    files = [
        path
        for folder in ("kdl", "examples", "benchmarks")
        for path in (root / folder).rglob("*")
        if path.suffix in (".py", ".ipynb") and path.name not in handlers
    ]
    assert len(files) > 50
    assert [p for p in files if "hidden_units" in p.read_text()] == []


# === Explicit step budgets ===


class _Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_compression_takes_a_budget_in_steps(small):
    x, y = small  # 120 rows, batches of 40: 3 steps per epoch
    model = _mlp()
    count = _Batches()
    compression.shrink(model, x, y, steps=7, batch_size=40, validation_split=0.0,
                       callbacks=[count], verbose=0)  # fmt: skip
    assert count.batches == 9  # 7 steps, rounded up to 3 whole epochs
    with pytest.raises(ValueError, match="'steps' parameter of kdl.compression.prune"):
        compression.prune(model, x, y, epochs=2, steps=100, verbose=0)
    with pytest.raises(ValueError, match="'steps' parameter of kdl.compression.prune"):
        compression.prune(model, x, y, epochs=0, steps=100)


@pytest.mark.parametrize(
    "name, default",
    [("prune", "1,500"), ("cluster", "200"), ("quantize_aware", "200"),
     ("shrink", "1,500"), ("distill", "1,500")],
)  # fmt: skip
def test_the_default_budget_is_documented_beside_steps(name, default):
    import inspect

    func = getattr(compression, name)
    params = inspect.signature(func).parameters
    assert params["steps"].default is None and params["epochs"].default is None
    doc = " ".join(func.__doc__.split())
    assert "steps: int or None." in doc
    assert f"None with `epochs=None`: {default} steps" in doc
