"""kdl.export.to_micro: TFLite Micro C source, op list and measured arena."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import datasets, export, lite, profiling

pytest.importorskip("tflite_micro")


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def _trained(build, digits, layout_flat=False):
    (x, y), (x_test, y_test) = digits
    if layout_flat:
        x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    kdl.set_seed(0)
    model = build(x.shape[1:])
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    return model, x, x_test


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_micro_export_matches_litert(kind, digits, tmp_path):
    build = {
        "mlp": lambda shape: kdl.build_mlp(shape, 10, dense_units=(32,)),
        "cnn": lambda shape: kdl.build_cnn(shape, 10, filters=(16,), dense_units=(32,)),
    }[kind]
    model, x, x_test = _trained(build, digits, layout_flat=kind == "mlp")
    folder = export.to_micro(
        model,
        tmp_path / "micro",
        representative_data=x[:200],
        check_data=x_test[:200],
        verbose=0,
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(export._micro.FILES)
    file = lite.load(folder / "model.tflite")
    micro = file.metadata["micro"]
    # TFLite Micro's own interpreter agreed with LiteRT on 200 held-out digits
    assert micro["examples"] == 200
    assert micro["agreement_with_litert"] == 1.0
    assert 1000 < micro["arena_bytes"] <= micro["recommended_arena_bytes"]
    # the held-out accuracy of the int8 file is that of a working classifier
    (_, _), (_, y_test) = digits
    accuracy = np.mean(file.predict(x_test).argmax(-1) == y_test)
    assert accuracy > 0.8, accuracy
    data = (folder / "model_data.cc").read_text()
    assert f"g_model_data_len = {(folder / 'model.tflite').stat().st_size};" in data
    ops = (folder / "model_ops.h").read_text()
    for op in micro["ops"]:
        assert f"resolver.{export._micro.resolver_method(op)}()" in ops
    assert "AddFullyConnected()" in ops and f"kOpCount = {len(micro['ops'])};" in ops
    # kdl info --profile's numbers: every op listed, XNNPACK takes the int8 graph
    result = profiling.profile(folder / "model.tflite", rounds=3, per_round=3)
    assert {op["op"] for op in result["op_profile"]} == set(file.op_names)
    assert result["delegated"] >= result["ops"] - 1  # all but the int8 SOFTMAX
    assert abs(sum(op["share"] for op in result["op_profile"]) - 1) < 1e-6
    assert set(result["latency_ms"]) >= {"1 thread"}


def test_micro_refuses_gru_before_writing(tmp_path):
    model = kdl.build_gru((6, 2), 3, units=(4,))
    x = np.random.default_rng(0).random((20, 6, 2), dtype=np.float32)
    with pytest.raises(export.MicroUnsupportedError, match="GRU.*build_gru"):
        export.to_micro(model, tmp_path / "gru", representative_data=x, verbose=0)
    assert not (tmp_path / "gru").exists()


def test_micro_checks_arguments(tmp_path):
    model = kdl.build_mlp((4,), 2)
    with pytest.raises(ValueError, match="'representative_data' parameter of"):
        export.to_micro(model, tmp_path / "m", representative_data=None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="'folder' parameter of"):
        export.to_micro(model, tmp_path / "file", representative_data=np.zeros((2, 4)))


def test_resolver_method_names():
    assert export._micro.resolver_method("CONV_2D") == "AddConv2D"
    assert export._micro.resolver_method("MAX_POOL_2D") == "AddMaxPool2D"
    assert export._micro.resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
