"""``ccdpixfix.scoring``, kept as an alias: the module is `ccdpixfix.datasets.scoring`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .datasets import scoring as _module

sys.modules[__name__] = _module
