"""Differential privacy: DP-SGD training, privacy accounting and an audit.

- :func:`make_private` turns a compiled model into a new one that trains with
  DP-SGD (TensorFlow Privacy): every example's gradient is clipped to an L2
  norm and Gaussian noise is added to each batch's sum of clipped gradients.
- :func:`dp_optimizer` gives TensorFlow Privacy's DP Keras optimizer; every
  kdl builder accepts it as ``optimizer=`` and returns a private model.
- :func:`gradient_norms` gives each example's gradient norm without
  per-example gradients (ghost norms; the registry ``make_private``'s fast
  path uses for Dense, Embedding, convolution and recurrent layers).
- :func:`epsilon` and :func:`noise_for_epsilon` do the privacy accounting
  (dp_accounting's RDP accountant, Poisson-sampled Gaussian mechanism).
- :func:`statement` and :func:`save_statement` write a plain-language privacy
  statement for a finished run.
- :func:`audit` runs a membership-inference attack on a trained model.

The package is split by topic: ``accounting``, ``dp_training``, ``statements``
and ``membership``. TensorFlow Privacy is imported only inside the functions
that need it, so ``import kdl.privacy`` stays quick.

Example:
    >>> from kdl import build_mlp, datasets, privacy
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10, optimizer="sgd", learning_rate=0.5)
    >>> private = privacy.make_private(model, target_epsilon=8.0, delta=1e-5,
    ...                                num_examples=len(x), batch_size=64,
    ...                                epochs=15)
    >>> _ = private.fit(x, y, batch_size=64, epochs=15, verbose=0)
    >>> print(privacy.statement(private).text)
"""

from __future__ import annotations

from kdl.privacy.accounting import epsilon, noise_for_epsilon
from kdl.privacy.dp_training import (
    DP_OPTIMIZER_NAMES,
    METHODS,
    compile_private,
    custom_objects,
    dp_optimizer,
    is_dp_optimizer,
    is_private,
    make_private,
    privacy_params,
)
from kdl.privacy.fine_tuning import (
    bind_post_processing,
    private_fine_tune_result,
    private_fine_tune_setup,
)
from kdl.privacy.membership import AuditResult, audit
from kdl.privacy.norms import gradient_norms, tf_privacy_registry, unsupported_layers
from kdl.privacy.search_cost import search_epsilon
from kdl.privacy.statements import (
    STATEMENT_JSON,
    STATEMENT_TEXT,
    PrivacyStatement,
    save_statement,
    statement,
)

__all__ = [
    "make_private",
    "dp_optimizer",
    "is_dp_optimizer",
    "compile_private",
    "DP_OPTIMIZER_NAMES",
    "is_private",
    "privacy_params",
    "private_fine_tune_setup",
    "private_fine_tune_result",
    "bind_post_processing",
    "gradient_norms",
    "unsupported_layers",
    "tf_privacy_registry",
    "epsilon",
    "noise_for_epsilon",
    "search_epsilon",
    "statement",
    "save_statement",
    "PrivacyStatement",
    "audit",
    "AuditResult",
    "custom_objects",
    "METHODS",
    "STATEMENT_JSON",
    "STATEMENT_TEXT",
]
