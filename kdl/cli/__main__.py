"""``python -m kdl.cli``: the ``kdl`` command."""

import sys

from kdl.cli import main

sys.exit(main())
