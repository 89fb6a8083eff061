"""Median kernels that ignore bad pixels.

Every local median in ccdpixfix goes through this module, so that pixels
already known to be bad (flagged, masked or not finite) never enter the
reference a pixel is compared with. ccdproc's median step lets them in and
so raises false flags around masked blocks.

Pixels outside the image do not exist here: they are neither mirrored nor
repeated, so a cosmic ray on the edge never becomes part of its own
reference.
"""

import numpy as np

__all__ = ["local_level", "local_level_at", "ring_median", "window_values"]

# Rows per strip: bounds the temporary neighbour stack to a few frames' worth
# of memory whatever the image size, and keeps each strip cache friendly.
_STRIP_ROWS = 256
# Positions, in a row-major flattened 3x3 window (centre 4), of the four
# pairs of opposite neighbours: diagonal, vertical, anti-diagonal, horizontal.
_OPPOSITE_PAIRS = ((0, 8), (1, 7), (2, 6), (3, 5))
_RING = (0, 1, 2, 3, 5, 6, 7, 8)
#: Variance of `local_level` in units of the pixel variance, for Gaussian
#: noise, by number of complete opposite pairs (0: median of the lone
#: neighbours, taken as three).
LEVEL_VARIANCE = np.array([0.45, 0.5, 0.25, 0.224, 0.149])


def _median_of_sorted(sorted_stack, n_valid):
    """Median along axis 0 of a stack sorted with NaNs last."""
    lower = np.clip((n_valid - 1) // 2, 0, None)
    upper = np.clip(n_valid // 2, 0, None)
    low = np.take_along_axis(sorted_stack, lower[None], axis=0)[0]
    high = np.take_along_axis(sorted_stack, upper[None], axis=0)[0]
    median = 0.5 * low + 0.5 * high
    median[n_valid == 0] = np.nan
    return median


def _nanmedian_axis0(stack):
    stack = np.sort(stack, axis=0)
    n_valid = np.count_nonzero(~np.isnan(stack), axis=0)
    return _median_of_sorted(stack, n_valid), n_valid


def _padded(data, bad, radius):
    data = np.asarray(data)
    # float32 halves the memory; float64 data keep their range and precision.
    dtype = np.float64 if data.dtype == np.float64 else np.float32
    values = data.astype(dtype, copy=True)
    values[~np.isfinite(values)] = np.nan
    if bad is not None:
        values[np.asarray(bad, dtype=bool)] = np.nan
    return np.pad(values, radius, mode="constant", constant_values=np.nan)


def _strips(padded, radius, shape):
    """(row slice, window stack) for each strip of rows of the image."""
    ny, nx = shape
    size = 2 * radius + 1
    for y0 in range(0, ny, _STRIP_ROWS):
        y1 = min(ny, y0 + _STRIP_ROWS)
        stack = np.stack(
            [
                padded[y0 + dy : y1 + dy, dx : dx + nx]
                for dy in range(size)
                for dx in range(size)
            ]
        )
        yield slice(y0, y1), stack


def _level_from_window(window):
    """Level and number of complete pairs from a (9, ...) 3x3 window stack."""
    pairs = np.stack([0.5 * window[a] + 0.5 * window[b] for a, b in _OPPOSITE_PAIRS])
    level, n_pairs = _nanmedian_axis0(pairs)
    lonely = n_pairs == 0
    if lonely.any():
        ring = window[list(_RING)][:, lonely]
        level[lonely] = _nanmedian_axis0(ring)[0]
    return level, n_pairs


def local_level(data, bad=None):
    """Level expected at each pixel from its eight neighbours.

    The median of the means of the complete pairs of opposite neighbours
    (above and below, left and right, and the two diagonals). Each pair mean
    interpolates a linear gradient exactly, so the level stays right on the
    wing of a star or beside a masked column, where a plain median of the
    good neighbours, all on one side, would be biased by the gradient. A
    pixel with no complete pair takes the median of its good neighbours.

    Parameters
    ----------
    data : 2-D array
        The image.
    bad : 2-D bool array, optional
        Pixels that must not enter any estimate. Non-finite pixels are
        always left out.

    Returns
    -------
    level : `numpy.ndarray` of float32 (float64 for float64 data)
        NaN where no neighbour is good.
    n_pairs : `numpy.ndarray` of int
        Number of complete pairs used (0 to 4); see `LEVEL_VARIANCE`.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.medians import local_level
    >>> ramp = np.add.outer(np.zeros(5), 10.0 * np.arange(5))
    >>> ramp[2, 2] = 1000.0
    >>> level, n_pairs = local_level(ramp, bad=ramp > 500)
    >>> float(level[2, 2]), float(level[2, 3]), int(n_pairs[2, 3])
    (20.0, 30.0, 3)
    """
    shape = np.shape(data)
    padded = _padded(data, bad, 1)
    level = np.empty(shape, dtype=padded.dtype)
    n_pairs = np.empty(shape, dtype=np.int8)
    for rows, window in _strips(padded, 1, shape):
        level[rows], n_pairs[rows] = _level_from_window(window)
    return level, n_pairs


def local_level_at(data, rows, cols, bad=None):
    """`local_level` at the given pixels only."""
    window = window_values(data, rows, cols, radius=1, bad=bad).T
    return _level_from_window(window)


def ring_median(data, bad=None, *, radius=1):
    """Median of each pixel's good neighbours, the pixel itself excluded.

    Parameters
    ----------
    data : 2-D array
        The image.
    bad : 2-D bool array, optional
        Pixels that must not enter any median. Non-finite pixels are always
        left out.
    radius : int, optional
        Half-width of the square window: 1 uses the 8 neighbours of a 3×3
        box, 2 the 24 of a 5×5 box.

    Returns
    -------
    median : `numpy.ndarray` of float32 (float64 for float64 data)
        For an even number of good neighbours, the mean of the two middle
        values. NaN where no neighbour is good.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.medians import ring_median
    >>> image = np.zeros((5, 5)); image[2, 2] = 100.0
    >>> float(ring_median(image)[2, 2]), float(ring_median(image)[2, 3])
    (0.0, 0.0)
    """
    shape = np.shape(data)
    padded = _padded(data, bad, radius)
    centre = (2 * radius + 1) ** 2 // 2
    result = np.empty(shape, dtype=padded.dtype)
    for rows, window in _strips(padded, radius, shape):
        ring = np.delete(window, centre, axis=0)
        result[rows] = _nanmedian_axis0(ring)[0]
    return result


def window_values(data, rows, cols, *, radius, bad=None, include_centre=True):
    """Values of the square windows around the given pixels, bad ones as NaN.

    Parameters
    ----------
    data : 2-D array
        The image.
    rows, cols : 1-D int arrays
        Centres of the windows.
    radius : int
        Half-width of the window.
    bad : 2-D bool array, optional
        Pixels to return as NaN (non-finite ones are NaN anyway).
    include_centre : bool, optional
        If False, the centre pixel of each window is returned as NaN.

    Returns
    -------
    values : `numpy.ndarray` of float64, shape (len(rows), (2*radius+1)**2)
        Row-major windows; positions outside the image are NaN.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    win_rows = np.asarray(rows)[:, None] + dy.ravel()[None]
    win_cols = np.asarray(cols)[:, None] + dx.ravel()[None]
    outside = (win_rows < 0) | (win_rows >= ny) | (win_cols < 0) | (win_cols >= nx)
    win_rows = np.clip(win_rows, 0, ny - 1)
    win_cols = np.clip(win_cols, 0, nx - 1)
    values = data[win_rows, win_cols].astype(np.float64)
    values[outside] = np.nan
    if bad is not None:
        values[np.asarray(bad, dtype=bool)[win_rows, win_cols]] = np.nan
    if not include_centre:
        values[:, dy.size // 2] = np.nan
    return values
