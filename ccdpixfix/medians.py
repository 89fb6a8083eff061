"""``ccdpixfix.medians``, kept as an alias: the module is `ccdpixfix.kernels.medians`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .kernels import medians as _module

sys.modules[__name__] = _module
