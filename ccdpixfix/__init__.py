"""ccdpixfix: find and repair bad pixels in CCD and CMOS images.

Bad-pixel maps from darks and flats, cosmic rays and one-exposure hot
pixels from median residuals, and replacement from good neighbours, as
ccdproc-style steps on `~astropy.nddata.CCDData`.
"""

from ._version import __version__
from .badpixels import BadPixelMap, flag_bad_pixels, make_bad_pixel_map
from .flags import BAD_PIXEL_FLAGS, FLAG_NAME_MAP, PixelFlag, flags_to_mask
from .pipeline import fix_files, fix_pixels
from .replace import DEFAULT_REPLACE_FLAGS, replace_bad_pixels
from .transients import flag_transients

__all__ = [
    "BAD_PIXEL_FLAGS",
    "DEFAULT_REPLACE_FLAGS",
    "FLAG_NAME_MAP",
    "BadPixelMap",
    "PixelFlag",
    "__version__",
    "fix_files",
    "fix_pixels",
    "flag_bad_pixels",
    "flag_transients",
    "flags_to_mask",
    "make_bad_pixel_map",
    "replace_bad_pixels",
]
