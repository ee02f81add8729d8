"""to_tflite picks one weight scale per kernel for clustered models (issue 23)."""

from __future__ import annotations

import gzip

import pytest
from _helpers import kernel_value_counts

from kdl import export


def _gz(path) -> int:
    return len(gzip.compress(path.read_bytes()))


@pytest.mark.slow
def test_default_scales_are_per_kernel_for_a_clustered_model_only(tmp_path):
    import kdl
    from kdl import build_mlp, compression, datasets

    # a split of its own (the tests' fixtures use seed 0)
    (x, y), (x_test, y_test) = datasets.digits(layout="flat", seed=5)
    kdl.set_seed(5)
    model = build_mlp((64,), 10)
    model.fit(x, y, epochs=10, verbose=0)
    clustered = compression.cluster(model, x, y, epochs=3, verbose=0)

    def to_int8(m, name, **kwargs):
        return export.to_tflite(
            m, tmp_path / f"{name}.tflite", quantization="int8",
            representative_data=x[:200], check_data=x_test, verbose=0, **kwargs,
        )  # fmt: skip

    auto = to_int8(clustered, "auto")
    per_channel = to_int8(clustered, "per_channel", per_channel=True)
    plain = to_int8(model, "plain")
    assert export.load_tflite(auto).metadata["per_channel"] is False
    assert export.load_tflite(plain).metadata["per_channel"] is True
    # the 16 centroids stay at most 16 int8 values (17 with a zero)
    assert max(kernel_value_counts(auto)) <= 17
    assert max(kernel_value_counts(per_channel)) > 17
    assert _gz(auto) < 0.9 * _gz(per_channel)
    accuracy = export.evaluate_tflite(auto, x_test, y_test, latency_samples=0)
    float_accuracy = clustered.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy["accuracy"] >= float_accuracy - 0.01


def test_per_channel_must_be_a_bool_or_none(tmp_path):
    import kdl

    model = kdl.build_mlp((4,), 2, dense_units=(8,))
    with pytest.raises(TypeError, match="'per_channel' parameter"):
        export.to_tflite(model, tmp_path / "m.tflite", per_channel="no", verbose=0)
