"""Persistent defects: `BadPixelMap`, `make_bad_pixel_map` and its builders.

``__all__`` is the user's API; the names re-exported below it serve the
steps of other subpackages (`ccdpixfix.pipeline`) and are not part of it.
"""

from .core import (
    BadPixelMap,
    FramePrediction,
    flag_bad_pixels,
    frame_state,
    make_bad_pixel_map,
    predict_frame,
)
from .core import check_map as check_map
from .core import check_raw as check_raw
from .core import frame_sigma as frame_sigma
from .core import map_flags as map_flags
from .core import warm_not_transient as warm_not_transient
from .core import warm_standing_out as warm_standing_out
from .options import MapOptions

__all__ = [
    "BadPixelMap",
    "FramePrediction",
    "MapOptions",
    "flag_bad_pixels",
    "frame_state",
    "make_bad_pixel_map",
    "predict_frame",
]
