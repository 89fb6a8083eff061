"""Per-pixel statistics over a stack of frames: medians and clipped means.

Used to combine darks and flats (`ccdpixfix.badpixels`). The compiled
engine reads the frames as they are, without stacking them into one array;
its numpy twin gives identical results.
"""

import numpy as np

from .engine import COMPILED_TYPES, _compiled, by_row_blocks, engine
from .medians import _nanmedian_axis0

__all__ = ["clipped_stack_mean", "stack_median"]


def clipped_stack_mean(stack, limit, *, lowest=False):
    """Mean of each pixel's values in a stack of frames, outliers left out.

    The values within ``limit`` of the pixel's median over the frames (of
    its lowest value with ``lowest``) are averaged; NaN values never count.

    Parameters
    ----------
    stack : sequence of 2-D arrays
        The frames (or a 3-D array, frames along the first axis), taken as
        float32. The compiled engine reads frames of one type as they are.
    limit : float
        Largest distance from the reference kept, in data units.
    lowest : bool, optional
        Take the lowest value as the reference (two frames, where a cosmic
        ray, which only adds charge, would drag the median).

    Returns
    -------
    `numpy.ndarray` of float32
        The mean (summed in float64), the pixel's reference where no value
        is kept, NaN where all are NaN.
    """
    frames = [np.asarray(frame) for frame in stack]
    shape = frames[0].shape
    limit = np.float32(limit)  # compared with float32 differences
    combined = np.empty(shape, dtype=np.float32)
    dtypes = {frame.dtype for frame in frames}
    if engine() == "numba" and len(dtypes) == 1 and dtypes <= COMPILED_TYPES:
        # The frames as they are, without a stacked copy.
        from numba.typed import List

        frames = List(np.ascontiguousarray(frame) for frame in frames)
        by_row_blocks(
            _compiled.clipped_mean_rows, shape, frames, limit, bool(lowest), combined
        )
        return combined
    stack = np.stack(frames).astype(np.float32)
    if lowest:
        reference = np.fmin.reduce(stack, axis=0)  # NaN only where all are
    else:
        reference = _nanmedian_axis0(stack)[0]
    with np.errstate(invalid="ignore"):
        keep = np.abs(stack - reference) <= limit
    total = np.where(keep, stack, 0).sum(axis=0, dtype=np.float64)
    count = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined[:] = np.where(count > 0, total / count, reference)
    return combined


def stack_median(stack):
    """Median of each pixel over a stack of frames, NaN values left out.

    Returns
    -------
    `numpy.ndarray` of float32
        NaN where every frame is NaN.
    """
    # No value lies within a negative distance: the reference is returned.
    return clipped_stack_mean(stack, -np.inf)
