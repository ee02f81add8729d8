"""TF-MOT 0.8's QuantizeLayer and QuantizeWrapperV2, fixed for ``.keras`` files.

Imported only inside the functions that need it (it imports TF-MOT, which
``import kdl`` must not), always after ``kdl.backend`` has made tf_keras the
Keras that TF-MOT binds to.

Loading a ``.keras`` file builds each layer from its saved build config before
calling it. TF-MOT's ``QuantizeLayer.build`` never marks the layer built, so
the call builds it a second time (5 variables where 3 were saved);
``QuantizeWrapperV2.build`` collects the wrapped layer's weights before that
layer is built, so it misses them (4 where 5 were saved). Both load from .h5
and SavedModel as they are. The open TF-MOT fix is
tensorflow/model-optimization pull request 1123; these two subclasses do the
same, under the same class names, so a loaded model saves and loads again like
the original.
"""

from __future__ import annotations

from tensorflow_model_optimization.python.core.quantization.keras import (
    quantize_layer,
    quantize_wrapper,
)

__all__ = ["QuantizeLayer", "QuantizeWrapperV2", "CLASSES"]


class QuantizeLayer(quantize_layer.QuantizeLayer):
    """TF-MOT's ``QuantizeLayer`` that marks itself built (PR 1123)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.built = True


class QuantizeWrapperV2(quantize_wrapper.QuantizeWrapperV2):
    """TF-MOT's ``QuantizeWrapperV2`` that builds its layer first (PR 1123)."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        super().build(input_shape)


CLASSES = {"QuantizeLayer": QuantizeLayer, "QuantizeWrapperV2": QuantizeWrapperV2}
