"""Hyperparameter search on any builder: grid, random, Bayesian and Hyperband.

The search space is written in the builder's own argument names::

    result = kdl.tune(
        build_mlp, x, y,
        space={"dense_units": kdl.Choice([(32,), (64, 64)]),
               "dropout": kdl.Float(0.0, 0.5),
               "learning_rate": kdl.Float(1e-4, 1e-2, log=True)},
        algorithm="bayesian", max_trials=10, epochs=20,
    )
    model = build_mlp(x.shape[1:], 10, **result.best_params)

KerasTuner does the searching. Its stock tuners reject tf_keras models
(keras-tuner issue 1039), so kdl uses KerasTuner's oracles (the algorithms)
through its documented extension point: a ``BaseTuner`` subclass
(``_kt.py``) whose ``run_trial`` builds the model with the builder, trains
it with tf_keras ``model.fit`` (early stopping inside each trial) and returns
the objective, and whose ``load_model`` rebuilds the model and loads its
weights.

``keras_tuner`` takes seconds to import (it imports Keras 3): ``_kt.py`` (and
``_oracles.py``) are imported inside :func:`tune` only, never by ``import kdl`` or
``import kdl.tuning``.

The package's modules: ``_tune`` (:func:`tune`), ``_builder_args`` (the checks
of the builder and its space), ``_search_space`` (:class:`Int`, :class:`Float`,
:class:`Choice`, :class:`Boolean`), ``_job`` (the search's description and its
table of trials), ``_oracles`` and ``_kt`` (the KerasTuner side).
"""

from __future__ import annotations

from kdl.tuning._front import BudgetResult
from kdl.tuning._search_space import Boolean, Choice, Float, Int

# The constants kdl.tuning has always had, outside __all__ as before.
from kdl.tuning._tune import (  # noqa: F401
    ALGORITHMS,
    TRIALS_CSV,
    TuneResult,
    tune,
)
from kdl.tuning._tune_checks import (  # noqa: F401
    COARSE_BELOW,
    DEFAULT_ROOT,
    DEFAULT_SPLIT,
    DIRECTIONS,
    KERASTUNER_ENV,
)

__all__ = ["Int", "Float", "Choice", "Boolean", "TuneResult", "BudgetResult", "tune"]
