"""`replace_bad_pixels`: estimates of flagged pixels from good neighbours."""

from .core import DEFAULT_REPLACE_FLAGS, replace_bad_pixels, replace_bad_pixels_planes

__all__ = ["DEFAULT_REPLACE_FLAGS", "replace_bad_pixels", "replace_bad_pixels_planes"]
