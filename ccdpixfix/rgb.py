"""``ccdpixfix.rgb``, kept as an alias: the module is `ccdpixfix.colour.rgb`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .colour import rgb as _module

sys.modules[__name__] = _module
