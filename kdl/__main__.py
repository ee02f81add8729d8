"""``python -m kdl``: the ``kdl`` command (the same as ``python -m kdl.cli``)."""

import sys

from kdl.cli import main

sys.exit(main())
