"""The noise model of a frame: read noise, gain and the level of each pixel."""

from .core import (
    FrameNoise,
    NoiseModel,
    fit_noise,
    fit_rows,
    frame_noise,
    header_gain,
    header_read_noise,
    residual_factor,
    robust_sigma,
)
from .core import check_rows as check_rows
from .options import NoiseOptions

__all__ = [
    "FrameNoise",
    "NoiseModel",
    "NoiseOptions",
    "fit_noise",
    "fit_rows",
    "frame_noise",
    "header_gain",
    "header_read_noise",
    "residual_factor",
    "robust_sigma",
]
