"""``python -m skconvnet``: see ``python -m skconvnet --help``."""

import sys

from ._cli import main

sys.exit(main())
