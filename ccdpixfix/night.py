"""``ccdpixfix.night``, kept as an alias: the module is `ccdpixfix.pipeline.night`.

Importing this name gives that module itself, so that its functions and its
settings are the same objects under both names.
"""

import sys

from .pipeline import night as _module

sys.modules[__name__] = _module
