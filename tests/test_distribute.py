"""tf.distribute: a model built in a mirrored strategy over two logical CPUs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
from kdl import distribute
distribute.split_cpu(2)
import kdl
from kdl import datasets
kdl.set_seed(0)
strategy = distribute.strategy("mirrored")
(x, y), (x_test, y_test) = datasets.digits(layout="flat")
model = distribute.build(kdl.build_mlp, (64,), 10, strategy=strategy)
history = kdl.train(model, x, y, epochs=15, batch_size=64, run_dir=sys.argv[1],
                    verbose=0)
logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                  "devices": [v.device for v in model.trainable_variables[:1]],
                  "accuracy": logs["accuracy"]}))
"""


@pytest.mark.slow
def test_mirrored_over_two_cpus_trains(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["accuracy"] >= 0.93


def test_bad_arguments():
    from kdl import distribute

    with pytest.raises(ValueError, match=r"'kind' parameter of kdl.distribute"):
        distribute.strategy("parameter_server")
    with pytest.raises(ValueError, match=r"'devices' parameter of kdl.distribute"):
        distribute.strategy("one_device", devices=["/cpu:0", "/cpu:1"])
    with pytest.raises(TypeError, match=r"'builder' parameter of kdl.distribute"):
        distribute.build("build_mlp", (4,), 2)


def test_default_strategy_builds_normally():
    import kdl
    from kdl import distribute

    model = distribute.build(kdl.build_mlp, (4,), 2,
                             strategy=distribute.strategy("default"))
    assert model.optimizer is not None and model.output_shape == (None, 2)
