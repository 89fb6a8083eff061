"""Colour frames: Bayer mosaics (`ccdpixfix.colour.cfa`) and colour cubes
(`ccdpixfix.colour.rgb`), split into planes that the grey steps can work on.
"""

from .cfa import (
    CFA_PATTERNS,
    cfa_pattern,
    colour_of_pixels,
    colour_sites,
    per_colour,
    planes,
    sub_frame,
)
from .rgb import check_cube_pattern, is_rgb_cube, per_plane

__all__ = [
    "CFA_PATTERNS",
    "cfa_pattern",
    "check_cube_pattern",
    "colour_of_pixels",
    "colour_sites",
    "is_rgb_cube",
    "per_colour",
    "per_plane",
    "planes",
    "sub_frame",
]
