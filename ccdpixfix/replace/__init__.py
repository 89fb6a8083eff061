"""`replace_bad_pixels`: estimates of flagged pixels from good neighbours.

``replace_bad_pixels_planes``, re-exported for `ccdpixfix.pipeline`, is not
part of the user's API (``__all__``).
"""

from .core import replace_bad_pixels
from .core import replace_bad_pixels_planes as replace_bad_pixels_planes
from .options import DEFAULT_REPLACE_FLAGS, METHODS, ReplaceOptions

__all__ = ["DEFAULT_REPLACE_FLAGS", "METHODS", "ReplaceOptions", "replace_bad_pixels"]
