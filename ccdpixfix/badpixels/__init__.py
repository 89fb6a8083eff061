"""Persistent defects: `BadPixelMap`, `make_bad_pixel_map` and its builders."""

from .core import (
    BadPixelMap,
    FramePrediction,
    check_map,
    check_raw,
    flag_bad_pixels,
    frame_sigma,
    frame_state,
    make_bad_pixel_map,
    map_flags,
    predict_frame,
    warm_not_transient,
    warm_standing_out,
)
from .options import MapOptions

__all__ = [
    "BadPixelMap",
    "FramePrediction",
    "MapOptions",
    "check_map",
    "check_raw",
    "flag_bad_pixels",
    "frame_sigma",
    "frame_state",
    "make_bad_pixel_map",
    "map_flags",
    "predict_frame",
    "warm_not_transient",
    "warm_standing_out",
]
