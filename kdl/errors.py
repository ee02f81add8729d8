"""kdl's own exception classes.

A bad argument is a ``ValueError`` or ``TypeError`` raised by the checks in
``kdl._validation``. :class:`UnsupportedModelError` is different: the
arguments are well formed, but this model cannot be transformed or exported
this way (a layer TF-MOT cannot prune, a BatchNormalization under DP-SGD, a
GRU whose int8 conversion crashes the converter). Batch helpers such as
``kdl.report.standard_variants`` skip a variant on this error only and let
argument errors through.
"""

from __future__ import annotations

__all__ = ["UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """This model cannot be transformed or exported the way asked.

    A subclass of ``ValueError``, so code that caught ``ValueError`` before
    still catches it.
    """
