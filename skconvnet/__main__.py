"""``python -m skconvnet``: see ``python -m skconvnet --help``."""

import sys

from .cli import main

sys.exit(main())
