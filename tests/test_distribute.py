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

(x, y), (x_test, y_test) = datasets.digits(layout="flat")
results = {}
for name in ("mirrored", "default"):
    strategy = distribute.strategy(name)
    for how in ("fit", "kdl.train"):
        kdl.set_seed(0)
        model = distribute.build(kdl.build_mlp, (64,), 10, strategy=strategy)
        if how == "fit":
            model.fit(x, y, epochs=15, batch_size=64, verbose=0)
        else:
            kdl.train(model, x, y, epochs=15, batch_size=64, verbose=0,
                      run_dir=sys.argv[1] + "/" + name)
        logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        results[f"{name} {how}"] = logs["accuracy"]
    results[name + " replicas"] = strategy.num_replicas_in_sync
print(json.dumps(results))
"""


@pytest.mark.heavy
@pytest.mark.slow
def test_mirrored_over_two_cpus_trains_like_one_device(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mirrored replicas"] == 2 and out["default replicas"] == 1
    for how in ("fit", "kdl.train"):
        assert out[f"mirrored {how}"] >= 0.93
        # The same global batch on two replicas: the accuracy of one device.
        assert abs(out[f"mirrored {how}"] - out[f"default {how}"]) <= 0.02, out
    assert (tmp_path / "mirrored" / "run.json").exists()


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

    model = distribute.build(
        kdl.build_mlp, (4,), 2, strategy=distribute.strategy("default")
    )
    assert model.optimizer is not None and model.output_shape == (None, 2)
