"""One-exposure events: `flag_transients` and its star, line and step tests.

``_sharpness`` tells a hit from a star, a line from a track; ``colour_stars``
looks at the hot groups of a colour mosaic in the full mosaic.
"""

from ._sharpness import _local_background as local_background
from .colour_stars import unflag_stars
from .core import check_grow, flag_transients, flag_transients_planes, saturation_level
from .options import TransientOptions

__all__ = [
    "TransientOptions",
    "check_grow",
    "flag_transients",
    "flag_transients_planes",
    "local_background",
    "saturation_level",
    "unflag_stars",
]
