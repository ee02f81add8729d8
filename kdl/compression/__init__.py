"""Model compression: pruning, weight clustering and quantization-aware training.

Each transform is built on TF Model Optimization (TF-MOT), returns a new model
and leaves the model it is given exactly as it was (TF-MOT's own wrappers work
in place on the layers they get, so kdl always hands them a copy):

- :func:`prune` zeroes the smallest weights of every prunable kernel while it
  fine-tunes, then strips the pruning wrappers: the result is a plain model
  whose zeros compress well (gzip) and that exports to TFLite as it is.
- :func:`cluster` shares each kernel's weights among a few centroids, then
  strips the clustering wrappers (``preserve_sparsity=True`` keeps a pruned
  model's zeros: TF-MOT's collaborative optimization).
- :func:`quantize_aware` fine-tunes with fake 8-bit quantization; the result
  keeps TF-MOT's quantization wrappers and converts to a full int8 TFLite file
  (``preserve="sparsity"``, ``"clusters"`` or ``"sparse_clusters"`` keeps what
  an earlier prune or cluster made).
- :func:`shrink` removes whole units, filters and recurrent units (structured
  pruning, on the Keras layer API: TF-MOT has none): a physically smaller,
  faster model.
- :func:`distill` trains a small student on a teacher's softened outputs.
- :func:`sparsity` measures the fraction of zero weights in prunable kernels;
  :func:`multiply_adds` counts the multiply-adds per example, per layer.
- :func:`custom_objects` is what loading a model saved with TF-MOT wrappers
  needs (``kdl.load`` uses it).

One module per transform (``pruning``, ``clustering``, ``quantization``,
``shrinking``, ``distillation``, ``flops``); the
functions are imported here, so ``kdl.compression.prune`` and the others stay
where they were. ``import kdl`` does not import TF-MOT: it loads on the first
call here.

Example:
    >>> from kdl import build_mlp, compression, datasets
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10)
    >>> _ = model.fit(x, y, epochs=5, verbose=0)
    >>> pruned = compression.prune(model, x, y, target_sparsity=0.8, verbose=0)
    >>> round(compression.sparsity(pruned)["overall"], 2)
    0.8
"""

from __future__ import annotations

from kdl.compression.clustering import cluster
from kdl.compression.distillation import distill
from kdl.compression.flops import multiply_adds
from kdl.compression.pruning import SCHEDULES, prune, sparsity
from kdl.compression.quantization import PRESERVE, custom_objects, quantize_aware
from kdl.compression.shrinking import shrink

__all__ = [
    "prune",
    "cluster",
    "quantize_aware",
    "shrink",
    "distill",
    "sparsity",
    "multiply_adds",
    "custom_objects",
    "SCHEDULES",
    "PRESERVE",
]
