"""Data for kdl: small real datasets that ship with installed packages, and yours.

Built in (nothing downloads):

- :func:`digits`: scikit-learn's 1,797 handwritten digit images (8 x 8).
- :func:`sunspots`: statsmodels' yearly sunspot numbers, 1700-2008, as windows.
- :func:`toy_translation`: a generated sequence-to-sequence task.

Your own data: :func:`load` reads a CSV table or series, a folder of images
sorted by class, an ``.npz`` file or arrays, split the way :func:`digits` is.
:func:`write_schema` / :func:`read_schema` keep what a model reads (columns,
encoding, class names) beside the saved model.
"""

from kdl.datasets._builtin import TranslationTask, digits, sunspots, toy_translation
from kdl.datasets._load import BUILTINS, Data, load
from kdl.datasets._schema import (
    check_compatible,
    check_fits,
    describe,
    read_schema,
    schema_path,
    write_schema,
)
from kdl.datasets._windows import make_windows

__all__ = [
    "digits",
    "sunspots",
    "toy_translation",
    "TranslationTask",
    "load",
    "Data",
    "BUILTINS",
    "make_windows",
    "write_schema",
    "read_schema",
    "schema_path",
    "describe",
    "check_compatible",
    "check_fits",
]
