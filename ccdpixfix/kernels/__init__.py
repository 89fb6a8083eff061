"""Median and residual kernels, stack statistics and the engine switch.

`ccdpixfix.kernels.medians` holds the local medians;
`ccdpixfix.kernels.engine` the engine switch (``CCDPIXFIX_ENGINE``: numba by
default, numpy as the reference), whose compiled twins live in
``_compiled``; `ccdpixfix.kernels.residuals` finds
outliers against a noise model and `ccdpixfix.kernels.stacks` combines
frames. The kernels take plain numpy arrays, never `~astropy.nddata.CCDData`.
"""

from .engine import engine, needs_compiling
from .medians import (
    LEVEL_VARIANCE,
    OPPOSITE_PAIRS,
    RESIDUAL_FACTOR,
    bits_around,
    local_level,
    local_level_at,
    local_level_rows,
    lowest_side_median,
    neighbourhood,
    ring_median,
    row_median,
    window_statistics,
    window_values,
)
from .residuals import level_noise, noise_at, residual_outliers
from .stacks import clipped_stack_mean, stack_median

__all__ = [
    "LEVEL_VARIANCE",
    "OPPOSITE_PAIRS",
    "RESIDUAL_FACTOR",
    "bits_around",
    "clipped_stack_mean",
    "engine",
    "level_noise",
    "local_level",
    "local_level_at",
    "local_level_rows",
    "lowest_side_median",
    "needs_compiling",
    "neighbourhood",
    "noise_at",
    "residual_outliers",
    "ring_median",
    "row_median",
    "stack_median",
    "window_statistics",
    "window_values",
]
