"""kdl.tune and its search-space specs (kdl.Int, kdl.Float, kdl.Choice, kdl.Boolean)."""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import kdl
from kdl import Boolean, Choice, Float, Int, build_mlp, tune
from kdl.backend import keras

ALGORITHMS = ("grid", "random", "bayesian", "hyperband")
EPOCHS = 4
PATIENCE = 3
SEED = 0
# Two sizes that both learn the digits, and one learning rate far too small
# to learn anything in a few epochs: a working search must avoid it.
SPACE = {
    "dense_units": Choice([(64,), (128,)]),
    "learning_rate": Choice([1e-5, 3e-3, 1e-2]),
}
BAD_RATE = 1e-5


def _train_like_tune(model, x, y, *, objective="val_loss", direction="min"):
    """Trains as a trial does: the same split, epochs and early stopping."""
    stopper = keras.callbacks.EarlyStopping(
        monitor=objective, mode=direction, patience=PATIENCE, restore_best_weights=True
    )
    model.fit(
        x,
        y,
        validation_split=0.2,
        epochs=EPOCHS,
        batch_size=32,
        callbacks=[stopper],
        verbose=0,
    )
    return model


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


@pytest.fixture(scope="module")
def default_accuracy(digits_flat):
    """Test accuracy of build_mlp's defaults, trained the way a trial is."""
    (x, y), (x_test, y_test) = digits_flat
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = _train_like_tune(build_mlp(x.shape[1:], 10), x, y)
    return _accuracy(model, x_test, y_test)


# === Specs ===


def test_specs_are_immutable_and_lists_become_tuples():
    choice = Choice([[32], [64, 64], None])
    assert choice.values == ((32,), (64, 64), None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.values = (1,)
    assert Int(1, 4) == Int(1, 4)
    assert Float(1e-4, 1e-2, log=True).log
    assert kdl.Int is Int and kdl.Boolean is Boolean


def test_tuple_choices_round_trip_through_keras_tuner_keys():
    choice = Choice([(32,), (64, 64), None, "relu"])
    keys = choice._keys()
    assert all(isinstance(key, str) for key in keys)
    assert [choice._decode(key) for key in keys] == list(choice.values)
    assert Choice([16, 32])._keys() == (16, 32)  # plain ints stay numbers


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: Choice([]),
            ValueError,
            r"The 'values' parameter of kdl.Choice must be a non-empty list",
        ),
        (lambda: Choice([1, 2, 1]), ValueError, r"without duplicates"),
        (lambda: Choice("ab"), TypeError, r"'values' parameter of kdl.Choice"),
        (
            lambda: Int(5, 3),
            ValueError,
            r"The 'high' parameter of kdl.Int must be greater than low \(5\). "
            r"Got 3 instead.",
        ),
        (lambda: Int(1.5, 3), TypeError, r"'low' parameter of kdl.Int"),
        (lambda: Int(1, 8, step=0), ValueError, r"'step' parameter of kdl.Int"),
        (
            lambda: Float(0.5, 0.1),
            ValueError,
            r"'high' parameter of kdl.Float must be greater than low",
        ),
        (lambda: Float(0.0, 1.0, log=True), ValueError, r"> 0 when log=True"),
        (lambda: Float(0.0, 1.0, step=-0.1), ValueError, r"'step' parameter"),
    ],
)
def test_bad_specs_fail_at_once(make, error, match):
    with pytest.raises(error, match=match):
        make()


# === Arguments checked before any trial ===


def _build_multi(input_shape, tasks, *, units=8):
    return kdl.build_multitask(input_shape, tasks)


def _build_hp(hp):
    return build_mlp((64,), 10, dense_units=(hp.Choice("units", [8, 16]),))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            dict(space={"unit": Choice([8, 16])}),
            ValueError,
            r"The 'space' parameter of kdl.tune must be a dict of arguments build_mlp "
            r"takes \(input_shape, num_outputs, task, dense_units.*Got 'unit'",
        ),
        (
            dict(space={"dropout": Choice([0.1])}, fixed={"dropout": 0.2}),
            ValueError,
            r"'space' parameter of kdl.tune must be free of the arguments "
            r"given in fixed. Got 'dropout'",
        ),
        (
            dict(space={"dropout": Float(0.0, 0.5)}, fixed={"dropouts": 0.1}),
            ValueError,
            r"'fixed' parameter of kdl.tune .* Got 'dropouts'",
        ),
        (
            dict(space={"dropout": [0.0, 0.5]}),
            TypeError,
            r"wrap a list of candidates in kdl.Choice",
        ),
        (dict(space={}), ValueError, r"at least one argument of build_mlp"),
        (
            dict(space={"dropout": Float(0.0, 0.5)}, algorithm="grid"),
            ValueError,
            r"discrete for a grid search",
        ),
        (
            dict(space=SPACE, algorithm="annealing"),
            ValueError,
            r"'algorithm' parameter of kdl.tune must be one of 'bayesian'",
        ),
        (
            dict(space=SPACE, objective="val_f1"),
            ValueError,
            r"'direction' parameter of kdl.tune must be \"min\" or \"max\" for the "
            r"metric 'val_f1'",
        ),
        (
            dict(space=SPACE, validation_split=0.0),
            ValueError,
            r"'validation_split' parameter of kdl.tune must be > 0",
        ),
        (
            dict(space=SPACE, algorithm="random", max_trials=0),
            ValueError,
            r"'max_trials' parameter of kdl.tune must be a positive int or None",
        ),
        (dict(space=SPACE, epochs=0), ValueError, r"'epochs' parameter"),
        (dict(space=SPACE, seed=-1), ValueError, r"'seed' parameter"),
        (dict(space=SPACE, patience=-1), ValueError, r"'patience' parameter"),
        (dict(space=SPACE, directory=""), TypeError, r"'directory' parameter"),
    ],
)
def test_invalid_search_fails_before_any_trial(
    digits_flat, tmp_path, kwargs, error, match
):
    (x, y), _ = digits_flat
    directory = tmp_path / "search"
    kwargs.setdefault("directory", directory)
    with pytest.raises(error, match=match):
        tune(build_mlp, x, y, verbose=0, **kwargs)
    assert not directory.exists()


def test_builder_arguments_and_folders_are_checked_first(digits_flat, tmp_path):
    (x, y), _ = digits_flat
    with pytest.raises(
        ValueError,
        match=r"giving _build_multi's required "
        r"argument 'tasks'",
    ):
        tune(
            _build_multi,
            x,
            y,
            space={"units": Choice([8, 16])},
            directory=tmp_path / "a",
            verbose=0,
        )
    with pytest.raises(
        ValueError,
        match=r"'space' parameter of kdl.tune must be "
        r"None for a build\(hp\) function",
    ):
        tune(_build_hp, x, y, space=SPACE, directory=tmp_path / "b", verbose=0)
    # A folder that holds something else is never taken over.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(
        ValueError,
        match=r"'directory' parameter of kdl.tune must be "
        r"a new or empty folder",
    ):
        tune(build_mlp, x, y, space=SPACE, directory=other, resume=False, verbose=0)
    assert (other / "keep.txt").read_text() == "mine"


_LABELS = np.array([0, 1, 2] * 40)


@pytest.mark.parametrize(
    ("y", "fixed", "shown"),
    [
        (_LABELS + 1, None, r"labels \[1, 2, 3\]"),  # UCI's 1..K: never 4 classes
        (np.array(["a", "b", "c"] * 40), None, r"labels \['a', 'b', 'c'\]"),
        (_LABELS - 1, None, r"labels \[-1, 0, 1\]"),
        (_LABELS + 0.5, None, r"labels \[0\.5, 1\.5, 2\.5\]"),
        (_LABELS, {"num_outputs": 2}, r"labels \[0, 1, 2\]"),
    ],
)
def test_bad_class_targets_fail_before_any_model_is_built(tmp_path, y, fixed, shown):
    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype("float32")
    directory = tmp_path / "search"
    with pytest.raises(
        ValueError,
        match=r"The 'y' parameter of kdl.tune must be .*class labels .*"
        r"kdl.datasets.load.*" + shown,
    ):
        tune(
            build_mlp,
            x,
            y,
            space={"dropout": Choice([0.0, 0.1])},
            fixed=fixed,
            directory=directory,
            verbose=0,
        )
    assert not directory.exists()


def test_targets_of_a_builder_without_task_and_of_regression(tmp_path):
    x = np.random.default_rng(0).normal(size=(120, 4)).astype("float32")

    def plain(input_shape, num_outputs, *, units=8):
        return build_mlp(input_shape, num_outputs, dense_units=(units,))

    # num_outputs is read as a number of classes: 1..3 is refused too.
    with pytest.raises(ValueError, match=r"'y' parameter of kdl.tune .*1, 2, 3"):
        tune(plain, x, _LABELS + 1, space={"units": Choice([4, 8])}, verbose=0)
    # Regression targets are not class labels: they pass this check (the call
    # then stops at the next one, a directory that is a file).
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    with pytest.raises(ValueError, match=r"'directory' .* a folder, not a file"):
        tune(
            build_mlp,
            x,
            np.linspace(-1.5, 7.5, 120),
            space={"dropout": Choice([0.0, 0.1])},
            fixed={"task": "regression"},
            objective="val_mae",
            directory=a_file,
            verbose=0,
        )


@pytest.mark.parametrize(
    ("objective", "num_examples", "warns"),
    [
        ("val_accuracy", 150, True),  # 30 validation examples
        ("val_accuracy", 1000, False),  # 200
        ("val_loss", 150, False),
    ],
)
def test_accuracy_on_a_small_validation_split_warns_that_it_is_coarse(
    digits_flat, tmp_path, objective, num_examples, warns
):
    (x, y), _ = digits_flat
    x, y = x[:num_examples], y[:num_examples]
    # The warning comes with the argument checks, before any trial: an empty
    # space stops the call right after them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=r"at least one argument"):
            tune(build_mlp, x, y, space={}, objective=objective, verbose=0)
    coarse = [w for w in caught if "validation examples" in str(w.message)]
    if warns:
        assert len(coarse) == 1 and coarse[0].category is UserWarning
        assert "only 30 validation examples" in str(coarse[0].message)
        assert "steps of 3.3%" in str(coarse[0].message)
    else:
        assert coarse == []


def test_validation_data_and_split_are_checked_like_train(digits_flat, tmp_path):
    (x, y), (x_test, y_test) = digits_flat
    with pytest.raises(ValueError, match=r"'validation_split' parameter of kdl.tune"):
        tune(
            build_mlp,
            x,
            y,
            space=SPACE,
            validation_data=(x_test, y_test),
            validation_split=0.3,
            directory=tmp_path / "s",
        )
    with pytest.raises(ValueError, match=r"'y' parameter of kdl.tune must be as long"):
        tune(build_mlp, x, y[:-1], space=SPACE, directory=tmp_path / "s")
    with pytest.raises(ValueError, match=r"'verbose' parameter of kdl.tune"):
        tune(build_mlp, x, y, space=SPACE, verbose=3, directory=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_keras_tuner_internals_the_resumable_oracle_overrides_are_still_there():
    """kdl.tuning._oracles and _kt override KerasTuner private state (issue 27):
    a KerasTuner release that renames any of it must fail here, not mid-search."""
    import keras_tuner as kt
    from keras_tuner.engine import base_tuner
    from keras_tuner.src import config as kt_config
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    objective = kt.Objective("val_loss", "min")
    oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=2)
    assert isinstance(oracle._retry_queue, list)
    assert oracle._run_times["any trial"] == 0  # a defaultdict(int)
    for name in ("trials", "ongoing_trials", "end_order", "tuner_ids"):
        assert hasattr(oracle, name), name
    private = (
        "_save_trial",
        "_get_oracle_fname",
        "_get_trial_dir",
        "_check_consecutive_failures",
        "_duplicate",
    )
    public = ("reload", "create_trial", "get_trial", "end_trial", "populate_space")
    for name in private + public + ("get_state", "set_state"):
        assert callable(getattr(kt.Oracle, name)), name
    bayesian = kt.oracles.BayesianOptimizationOracle
    assert callable(bayesian._random_populate_space)
    grid = kt.oracles.GridSearchOracle(objective=objective, max_trials=2)
    assert isinstance(grid._populate_next, list)
    assert isinstance(grid._ordered_ids._next_index, dict)
    assert isinstance(grid._ordered_ids._memory, list)
    assert callable(grid._ordered_ids.insert)
    for name in ("_get_tuner_fname", "_is_worker", "get_trial_dir", "on_trial_end"):
        assert callable(getattr(base_tuner.BaseTuner, name)), name
    assert isinstance(kt_config.DEBUG, bool) and callable(kt.synchronized)
    assert callable(protos.get_service().GetTrialRequest)
    assert callable(oracle_chief.OracleServicer)
    for name in ("FailedTrialError", "FatalError", "FatalValueError"):
        assert issubclass(getattr(kt.errors, name), Exception), name


# === Searches ===


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_finds_a_best_model_its_arguments_reproduce(
    algorithm, digits_flat, default_accuracy, tmp_path
):
    (x, y), (x_test, y_test) = digits_flat
    # Random search optimizes accuracy, the others the loss: both directions.
    objective, direction = (
        ("val_accuracy", "max") if algorithm == "random" else ("val_loss", "min")
    )
    max_trials = {"grid": None, "random": 3, "bayesian": 4, "hyperband": None}
    result = tune(
        build_mlp,
        x,
        y,
        space=SPACE,
        algorithm=algorithm,
        objective=objective,
        max_trials=max_trials[algorithm],
        epochs=EPOCHS,
        patience=PATIENCE,
        seed=SEED,
        directory=tmp_path / "search",
        verbose=0,
    )

    table = result.trials
    assert (table["status"] == "completed").all()
    if algorithm == "grid":
        assert len(table) == 6
    elif algorithm != "hyperband":
        assert len(table) == max_trials[algorithm]
    best_in_table = (
        table[objective].min() if direction == "min" else table[objective].max()
    )
    assert result.best_score == pytest.approx(best_in_table)
    assert result.best_params["learning_rate"] != BAD_RATE
    assert set(result.best_params) == set(SPACE)
    assert (result.directory / "trials.csv").exists()

    model = result.best_model
    assert isinstance(model, keras.Model) and model.optimizer is not None
    best_accuracy = _accuracy(model, x_test, y_test)

    # Rebuilt and retrained the same way, the best arguments give the same
    # accuracy (within noise) ...
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    rebuilt = build_mlp(x.shape[1:], 10, **result.best_params)
    _train_like_tune(rebuilt, x, y, objective=objective, direction=direction)
    assert best_accuracy == pytest.approx(_accuracy(rebuilt, x_test, y_test), abs=0.03)
    # ... and are no worse than the builder's defaults.
    assert best_accuracy >= default_accuracy - 0.02
    assert best_accuracy > 0.9


def _recording_builder(log: list):
    def build(
        input_shape,
        num_outputs,
        *,
        dense_units=(8,),
        learning_rate=1e-3,
        batch_norm=False,
    ):
        log.append((dense_units, learning_rate, batch_norm))
        return build_mlp(
            input_shape,
            num_outputs,
            dense_units=dense_units,
            learning_rate=learning_rate,
            batch_norm=batch_norm,
        )

    return build


@pytest.mark.slow
def test_grid_visits_the_cartesian_product_once_and_resumes(
    digits_flat, tmp_path, capsys
):
    (x, y), _ = digits_flat
    x, y = x[:300], y[:300]
    space = {
        "dense_units": Choice([(8,), (16,)]),
        "learning_rate": Choice([1e-3, 1e-2]),
        "batch_norm": Boolean(),
    }
    product = set(itertools.product([(8,), (16,)], [1e-3, 1e-2], [False, True]))
    log = []
    builder = _recording_builder(log)
    common = dict(
        space=space,
        algorithm="grid",
        epochs=1,
        seed=SEED,
        directory=tmp_path / "grid",
        verbose=0,
    )

    # Stop after 3 trials, then resume the same search to the end: KerasTuner
    # 1.4.8 alone loses its grid walk on reload (keras-tuner issue 1055).
    first = tune(builder, x, y, max_trials=3, **common)
    assert len(first.trials) == 3
    first_trials = log[:3]
    del log[:]
    result = tune(builder, x, y, max_trials=None, **common)
    assert capsys.readouterr().out == ""  # verbose=0 prints nothing

    table = result.trials
    visited = list(
        zip(
            table["dense_units"],
            table["learning_rate"],
            table["batch_norm"],
            strict=True,
        )
    )
    assert len(visited) == len(product) == 8
    assert set(visited) == product
    assert (table["status"] == "completed").all()
    # The second call ran the 5 missing trials (then rebuilt the best model),
    # none of the 3 finished ones.
    assert len(log) == 5 + 1
    assert set(log[:5]).isdisjoint(first_trials)
    assert set(log[:5]) | set(first_trials) == product


@pytest.mark.slow
def test_failed_trial_is_recorded_and_the_search_goes_on(digits_flat, tmp_path, capsys):
    (x, y), _ = digits_flat
    space = {"dense_units": Choice([(0,), (16,), (-4, 8)])}
    result = tune(
        build_mlp,
        x[:300],
        y[:300],
        space=space,
        algorithm="grid",
        epochs=1,
        directory=tmp_path / "s",
        seed=SEED,
        verbose=1,
    )
    table = result.trials.set_index("trial")
    assert list(table["status"]) == ["failed", "completed", "failed"]
    assert "'dense_units' parameter of build_mlp" in table.loc[1, "error"]
    assert table.loc[1, "epochs"] == 0 and np.isnan(table.loc[1, "val_loss"])
    assert result.best_params == {"dense_units": (16,)}
    out = capsys.readouterr().out
    assert "trial 1/3: dense_units=(0,) -> failed: ValueError" in out
    assert "trial 2/3: dense_units=(16,) -> val_loss=" in out
    assert "3 trials (1 completed, 2 failed)" in out  # the final table
    assert "(16,)" in out.split("kdl.tune: 3 trials")[1]


@pytest.mark.slow
def test_search_stops_after_consecutive_failures_and_on_a_fatal_builder(
    digits_flat, tmp_path
):
    (x, y), _ = digits_flat
    space = {"dense_units": Choice([(0,), (-1,), (-2,)])}
    with pytest.raises(
        RuntimeError,
        match=r"2 trials in a row failed .* The last "
        r"error: ValueError: The 'dense_units'",
    ):
        tune(
            build_mlp,
            x,
            y,
            space=space,
            algorithm="grid",
            max_consecutive_failed_trials=2,
            directory=tmp_path / "a",
            verbose=0,
        )

    def uncompiled(input_shape, num_outputs, *, units=8):
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Dense(num_outputs)(inputs))

    with pytest.raises(ValueError, match=r"must return a compiled model"):
        tune(
            uncompiled,
            x,
            y,
            space={"units": Choice([8, 16])},
            algorithm="grid",
            directory=tmp_path / "b",
            verbose=0,
        )
    with pytest.raises(
        ValueError,
        match=r"'objective' parameter of kdl.tune must "
        r"be a metric the model logs \(loss, "
        r"accuracy, val_loss, val_accuracy\). "
        r"Got 'val_auc'",
    ):
        tune(
            build_mlp,
            x[:100],
            y[:100],
            space={"dropout": Choice([0.0])},
            objective="val_auc",
            epochs=1,
            algorithm="grid",
            directory=tmp_path / "c",
            verbose=0,
        )


@pytest.mark.slow
def test_a_keras3_model_from_the_builder_stops_the_search(digits_flat, tmp_path):
    import keras as keras3  # Keras 3, the wrong Keras

    (x, y), _ = digits_flat

    def keras3_builder(input_shape, num_outputs, *, units=8):
        model = keras3.Sequential(
            [keras3.Input(input_shape), keras3.layers.Dense(num_outputs)]
        )
        model.compile(loss="sparse_categorical_crossentropy")
        return model

    with pytest.raises(TypeError, match=r"Keras 3 object .*kdl\.keras"):
        tune(
            keras3_builder,
            x,
            y,
            space={"units": Choice([8, 16])},
            algorithm="grid",
            directory=tmp_path / "k3",
            verbose=0,
        )


@pytest.mark.slow
def test_a_trial_finished_just_before_a_kill_is_not_run_again(digits_flat, tmp_path):
    # KerasTuner ends a trial by writing the trial's file, then the oracle's.
    # A kill between the two leaves the oracle listing a finished trial as
    # running; stock KerasTuner would run it again on resume.
    (x, y), _ = digits_flat
    log = []
    common = dict(
        space={"dense_units": Choice([(8,), (16,), (32,)])},
        algorithm="grid",
        epochs=1,
        seed=SEED,
        directory=tmp_path / "s",
        verbose=0,
    )
    tune(_recording_builder(log), x[:200], y[:200], max_trials=2, **common)
    oracle_file = tmp_path / "s" / "oracle.json"
    state = json.loads(oracle_file.read_text())
    last = state["end_order"].pop()
    state["ongoing_trials"] = {"tuner0": last}
    oracle_file.write_text(json.dumps(state))
    del log[:]

    result = tune(_recording_builder(log), x[:200], y[:200], max_trials=3, **common)
    assert len(result.trials) == 3 and (result.trials["status"] == "completed").all()
    assert [args[0] for args in log[:-1]] == [(32,)]  # only the new trial ran


@pytest.mark.slow
def test_a_trial_started_just_before_a_kill_still_runs(digits_flat, tmp_path):
    # KerasTuner starts a trial by writing the trial's file, then the
    # oracle's. A kill between the two leaves a "RUNNING" trial the oracle
    # does not list as ongoing: stock KerasTuner never runs it, yet counts it
    # against max_trials (the CI run of round 3 lost a trial this way).
    (x, y), _ = digits_flat
    log = []
    common = dict(
        space={"dense_units": Choice([(8,), (16,), (32,)])},
        algorithm="random",
        epochs=1,
        seed=SEED,
        directory=tmp_path / "s",
        verbose=0,
    )
    tune(_recording_builder(log), x[:200], y[:200], max_trials=2, **common)
    first = json.loads((tmp_path / "s" / "trial_0" / "trial.json").read_text())
    orphan = dict(first, trial_id="2", status="RUNNING", metrics={"metrics": {}})
    orphan["best_step"], orphan["score"] = 0, None
    (tmp_path / "s" / "trial_2").mkdir()
    (tmp_path / "s" / "trial_2" / "trial.json").write_text(json.dumps(orphan))
    del log[:]

    result = tune(_recording_builder(log), x[:200], y[:200], max_trials=3, **common)
    assert len(result.trials) == 3 and (result.trials["status"] == "completed").all()
    # Only the orphan ran (with trial 1's arguments, copied into its file),
    # then the final rebuild of the best model.
    assert len(log) == 2
    assert log[0][0] == result.trials["dense_units"].iloc[0]
    assert result.trials["dense_units"].iloc[2] == log[0][0]


@pytest.mark.slow
def test_a_build_hp_function_works_too(digits_flat, tmp_path):
    (x, y), _ = digits_flat

    def build(hp):
        units = hp.Choice("units", [8, 32])
        rate = hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")
        return build_mlp((64,), 10, dense_units=(units,), learning_rate=rate)

    result = tune(
        build,
        x[:400],
        y[:400],
        algorithm="random",
        max_trials=2,
        epochs=1,
        seed=SEED,
        directory=tmp_path / "hp",
        verbose=0,
    )
    assert set(result.best_params) == {"units", "learning_rate"}
    assert list(result.trials.columns[2:4]) == ["units", "learning_rate"]
    fresh = result.build()
    assert fresh.get_layer("dense1").units == result.best_params["units"]
    assert fresh.optimizer is not None


@pytest.mark.slow
def test_same_seed_gives_the_same_random_trials(digits_flat, tmp_path):
    (x, y), _ = digits_flat
    space = {
        "dense_units": Choice([(8,), (16,), (32,)]),
        "learning_rate": Float(1e-3, 1e-1, log=True),
        "batch_norm": Boolean(),
    }

    def sequence(seed, name):
        result = tune(
            build_mlp,
            x[:200],
            y[:200],
            space=space,
            algorithm="random",
            max_trials=3,
            epochs=1,
            seed=seed,
            directory=tmp_path / name,
            verbose=0,
        )
        return [
            tuple(row) for row in result.trials[list(space)].itertuples(index=False)
        ]

    first = sequence(5, "a")
    assert len(set(first)) == 3
    assert sequence(5, "b") == first
    assert sequence(6, "c") != first


_RESUME_SCRIPT = """
import json, sys
from kdl import Choice, Float, build_mlp, datasets, tune

LOG = {log!r}

def build(input_shape, num_outputs, *, dense_units=(8,), learning_rate=1e-3):
    with open(LOG, "a") as f:
        f.write(json.dumps([list(dense_units), learning_rate]) + "\\n")
    return build_mlp(input_shape, num_outputs, dense_units=dense_units,
                     learning_rate=learning_rate)

def main():
    (x, y), _ = datasets.digits(layout="flat")
    return tune(build, x[:600], y[:600], algorithm="random", max_trials=5,
                epochs=3, seed=0, directory={directory!r}, resume=True,
                space={{"dense_units": Choice([(16,), (32,), (64,)]),
                        "learning_rate": Float(1e-3, 1e-2, log=True)}})

if __name__ == "__main__":
    main()
"""


def _completed_trials(directory: Path) -> dict:
    done = {}
    for path in glob.glob(str(directory / "trial_*" / "trial.json")):
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if state["status"] == "COMPLETED":
            values = state["hyperparameters"]["values"]
            done[state["trial_id"]] = values
    return done


@pytest.mark.slow
def test_search_killed_with_sigkill_resumes_without_redoing_trials(tmp_path):
    directory, log = tmp_path / "search", tmp_path / "builds.log"
    script = tmp_path / "search_script.py"
    script.write_text(
        textwrap.dedent(_RESUME_SCRIPT).format(log=str(log), directory=str(directory))
    )

    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while len(_completed_trials(directory)) < 2:
            assert process.poll() is None, "the search ended before it was killed"
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = _completed_trials(directory)
    builds_before = len(log.read_text().splitlines())

    spec = importlib.util.spec_from_file_location("search_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main()

    table = result.trials
    assert len(table) == 5 and (table["status"] == "completed").all()
    assert list(table["trial"]) == [1, 2, 3, 4, 5]
    # Only the unfinished trials were built again (plus the final rebuild of
    # the best model), and none with the arguments of a finished trial.
    builds = [json.loads(line) for line in log.read_text().splitlines()]
    again = builds[builds_before:-1]
    assert len(again) == 5 - len(finished)
    finished_args = [
        [
            [*map(int, values["dense_units"].strip("(,)").split(","))],
            values["learning_rate"],
        ]
        for values in finished.values()
    ]
    assert all(args not in finished_args for args in again)


@pytest.mark.slow
def test_patience_none_runs_every_epoch_and_resume_false_moves_the_search_aside(
    digits_flat, tmp_path
):
    (x, y), _ = digits_flat
    directory = tmp_path / "search"
    common = dict(
        space={"dense_units": Choice([(8,)])},
        algorithm="grid",
        epochs=3,
        # val_loss falls every epoch; "improving" upwards, it never improves
        # after the first epoch, so patience=0 stops at the second.
        direction="max",
        fixed={"learning_rate": 1e-2},
        seed=SEED,
        directory=directory,
        verbose=0,
    )
    first = tune(build_mlp, x[:200], y[:200], patience=None, **common)
    assert list(first.trials["epochs"]) == [3]
    old_table = (directory / "trials.csv").read_text()

    second = tune(build_mlp, x[:200], y[:200], patience=0, resume=False, **common)
    assert second.directory == directory
    assert list(second.trials["epochs"]) == [2]
    # The first search was moved aside, never deleted.
    moved = list(tmp_path.glob("search.old-*"))
    assert len(moved) == 1
    assert (moved[0] / "trials.csv").read_text() == old_table
    assert (moved[0] / "kdl_search.json").exists()
