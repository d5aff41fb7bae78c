"""``python -m linflow``: the same command line as ``linflow``."""

import sys

from .cli import main

sys.exit(main())
