"""`replace_bad_pixels`: estimates of flagged pixels from good neighbours."""

from .core import replace_bad_pixels, replace_bad_pixels_planes
from .options import DEFAULT_REPLACE_FLAGS, METHODS, ReplaceOptions

__all__ = [
    "DEFAULT_REPLACE_FLAGS",
    "METHODS",
    "ReplaceOptions",
    "replace_bad_pixels",
    "replace_bad_pixels_planes",
]
