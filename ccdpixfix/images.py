"""``ccdpixfix.images``, kept as an alias: the module is `ccdpixfix.io.images`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .io import images as _module

sys.modules[__name__] = _module
