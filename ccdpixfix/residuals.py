"""``ccdpixfix.residuals``, an alias: the module is `ccdpixfix.kernels.residuals`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .kernels import residuals as _module

sys.modules[__name__] = _module
