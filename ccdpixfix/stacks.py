"""``ccdpixfix.stacks``, kept as an alias: the module is `ccdpixfix.kernels.stacks`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .kernels import stacks as _module

sys.modules[__name__] = _module
