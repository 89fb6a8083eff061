"""``python -m ccdpixfix``: the same as the ``ccdpixfix`` command."""

import sys

from .cli import main

sys.exit(main())
