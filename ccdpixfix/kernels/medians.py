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

from .engine import (
    _compiled,
    by_point_blocks,
    by_row_blocks,
    compiled_input,
    compiled_mask,
    engine,
    float_type,
    needs_compiling,
)

__all__ = [
    "LEVEL_VARIANCE",
    "OPPOSITE_PAIRS",
    "RESIDUAL_FACTOR",
    "bits_around",
    "engine",
    "local_level",
    "local_level_at",
    "local_level_rows",
    "lowest_side_median",
    "needs_compiling",
    "neighbourhood",
    "ring_median",
    "row_median",
    "window_statistics",
    "window_values",
]

# Rows per strip of the numpy engine: bounds the temporary neighbour stack
# to a few frames' worth of memory whatever the image size.
_STRIP_ROWS = 256
# Positions, in a row-major flattened 3x3 window (centre 4), of the four
# pairs of opposite neighbours: diagonal, vertical, anti-diagonal, horizontal.
OPPOSITE_PAIRS = ((0, 8), (1, 7), (2, 6), (3, 5))
_OPPOSITE_PAIRS = OPPOSITE_PAIRS
_RING = (0, 1, 2, 3, 5, 6, 7, 8)
#: Variance of `local_level` in units of the pixel variance, for Gaussian
#: noise, by number of complete opposite pairs (0: median of the lone
#: neighbours, taken as three).
LEVEL_VARIANCE = np.array([0.45, 0.5, 0.25, 0.224, 0.149])
#: Standard deviation of ``pixel - local_level`` in units of the pixel noise,
#: by number of complete pairs: ``sqrt(1 + LEVEL_VARIANCE)``.
RESIDUAL_FACTOR = np.sqrt(1 + LEVEL_VARIANCE).astype(np.float32)


def _median_of_sorted(sorted_stack, n_valid):
    """Median along axis 0 of a stack sorted with NaNs last."""
    lower = np.clip((n_valid - 1) // 2, 0, None)
    upper = np.clip(n_valid // 2, 0, None)
    low = np.take_along_axis(sorted_stack, lower[None], axis=0)[0]
    high = np.take_along_axis(sorted_stack, upper[None], axis=0)[0]
    median = 0.5 * low + 0.5 * high
    median[n_valid == 0] = np.nan
    return median


def row_median(values):
    """Median of the non-NaN values of each row of a 2-D array; NaN if none.

    The same arithmetic as every other median here (the mean of the two
    middle values is ``0.5 * low + 0.5 * high``), and several times faster
    than `numpy.nanmedian` on many short rows.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.kernels.medians import row_median
    >>> row_median(np.array([[1.0, np.nan, 3.0, 10.0], [np.nan] * 4]))
    array([ 3., nan])
    """
    values = np.asarray(values)
    if engine() == "numba" and values.dtype == np.float64:
        result = np.empty(values.shape[0])
        values = np.ascontiguousarray(values)
        kernel = _compiled.row_medians
        by_point_blocks(kernel, values, result, per_point=(values, result))
        return result
    ordered = np.sort(values, axis=1)
    n_valid = np.count_nonzero(~np.isnan(ordered), axis=1)
    return _median_of_sorted(ordered.T, n_valid)


def _nanmedian_axis0(stack):
    stack = np.sort(stack, axis=0)
    n_valid = np.count_nonzero(~np.isnan(stack), axis=0)
    return _median_of_sorted(stack, n_valid), n_valid


def _padded(data, bad, radius):
    values = np.asarray(data).astype(float_type(data), copy=True)
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
    n_pairs : `numpy.ndarray` of int8
        Number of complete pairs used (0 to 4); see `LEVEL_VARIANCE`.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.kernels.medians import local_level
    >>> ramp = np.add.outer(np.zeros(5), 10.0 * np.arange(5))
    >>> ramp[2, 2] = 1000.0
    >>> level, n_pairs = local_level(ramp, bad=ramp > 500)
    >>> float(level[2, 2]), float(level[2, 3]), int(n_pairs[2, 3])
    (20.0, 30.0, 3)
    """
    shape = np.shape(data)
    dtype = float_type(data)
    level = np.empty(shape, dtype=dtype)
    n_pairs = np.empty(shape, dtype=np.int8)
    if engine() == "numba":
        by_row_blocks(
            _compiled.level_rows,
            shape,
            compiled_input(data),
            compiled_mask(bad, shape),
            np.array([0.5], dtype),
            level,
            n_pairs,
        )
        return level, n_pairs
    for rows, window in _strips(_padded(data, bad, 1), 1, shape):
        level[rows], n_pairs[rows] = _level_from_window(window)
    return level, n_pairs


def local_level_at(data, rows, cols, bad=None):
    """`local_level` at the given pixels only, with the same values.

    Returns
    -------
    level : `numpy.ndarray` of float32 (float64 for float64 data)
    n_pairs : `numpy.ndarray` of int8
    """
    dtype = float_type(data)
    rows = np.asarray(rows, dtype=np.intp).ravel()
    cols = np.asarray(cols, dtype=np.intp).ravel()
    if engine() == "numba":
        level = np.empty(rows.size, dtype=dtype)
        n_pairs = np.empty(rows.size, dtype=np.int8)
        by_point_blocks(
            _compiled.level_points,
            compiled_input(data),
            compiled_mask(bad, np.shape(data)),
            np.array([0.5], dtype),
            rows,
            cols,
            level,
            n_pairs,
            per_point=(rows, cols, level, n_pairs),
        )
        return level, n_pairs
    window = window_values(data, rows, cols, radius=1, bad=bad, dtype=dtype)
    window[~np.isfinite(window)] = np.nan
    level, n_pairs = _level_from_window(window.T)
    return level, n_pairs.astype(np.int8)


def local_level_rows(data, rows, bad=None):
    """`local_level` of the given rows only, with the same values.

    Returns
    -------
    level : `numpy.ndarray` of float32 (float64 for float64 data)
        Shape ``(len(rows), data.shape[1])``.
    n_pairs : `numpy.ndarray` of int8
    """
    rows = np.asarray(rows, dtype=np.intp).ravel()
    nx = np.shape(data)[1]
    if engine() == "numba":
        dtype = float_type(data)
        level = np.empty((rows.size, nx), dtype=dtype)
        n_pairs = np.empty((rows.size, nx), dtype=np.int8)
        _compiled.level_listed_rows(
            compiled_input(data),
            compiled_mask(bad, np.shape(data)),
            np.array([0.5], dtype),
            rows,
            level,
            n_pairs,
        )
        return level, n_pairs
    level, n_pairs = local_level_at(
        data, np.repeat(rows, nx), np.tile(np.arange(nx), rows.size), bad
    )
    return level.reshape(rows.size, nx), n_pairs.reshape(rows.size, nx)


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
    >>> from ccdpixfix.kernels.medians import ring_median
    >>> image = np.zeros((5, 5)); image[2, 2] = 100.0
    >>> float(ring_median(image)[2, 2]), float(ring_median(image)[2, 3])
    (0.0, 0.0)
    """
    shape = np.shape(data)
    dtype = float_type(data)
    result = np.empty(shape, dtype=dtype)
    if engine() == "numba":
        by_row_blocks(
            _compiled.ring_rows,
            shape,
            compiled_input(data),
            compiled_mask(bad, shape),
            np.array([0.5], dtype),
            int(radius),
            result,
        )
        return result
    centre = (2 * radius + 1) ** 2 // 2
    for rows, window in _strips(_padded(data, bad, radius), radius, shape):
        ring = np.delete(window, centre, axis=0)
        result[rows] = _nanmedian_axis0(ring)[0]
    return result


def bits_around(flags, index, bits):
    """Whether any of ``bits`` is set in the 3x3 window around each pixel.

    Parameters
    ----------
    flags : 2-D unsigned int array
        Bit flags of an image.
    index : 1-D int array
        Flat indices of pixels of that image.
    bits : int
        The bits looked for.

    Returns
    -------
    `numpy.ndarray` of bool

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.kernels.medians import bits_around
    >>> flags = np.zeros((4, 4), dtype=np.uint16)
    >>> flags[0, 0] = 8
    >>> bits_around(flags, [5, 10], 8)
    array([ True, False])
    """
    flags = np.asarray(flags)
    ny, nx = flags.shape
    index = np.asarray(index, dtype=np.intp).ravel()
    bits = flags.dtype.type(bits)
    if engine() == "numba":
        result = np.empty(index.size, dtype=bool)
        by_point_blocks(
            _compiled.bits_around,
            np.ascontiguousarray(flags),
            index,
            bits,
            result,
            per_point=(index, result),
        )
        return result
    rows, cols = np.unravel_index(index, (ny, nx))
    flat = flags.ravel()
    found = np.zeros(index.size, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # Clipping repeats an edge pixel, itself in the window anyway.
            around = np.clip(rows + dy, 0, ny - 1) * nx + np.clip(cols + dx, 0, nx - 1)
            found |= (flat[around] & bits) != 0
    return found


def neighbourhood(index, shape, seen):
    """Flat indices of the pixels and their eight neighbours, each once.

    Parameters
    ----------
    index : 1-D int array
        Flat indices of pixels of an image of ``shape``.
    shape : tuple
        The image's shape.
    seen : dict
        Scratch space kept by the caller from call to call (a frame of
        one-byte stamps, for the compiled engine; the numpy engine sorts).

    Returns
    -------
    `numpy.ndarray` of int
        The indices, in an order that depends on the engine, never their set.
    """
    ny, nx = shape
    index = np.asarray(index, dtype=np.intp)
    if engine() == "numba":
        if "frame" not in seen:
            seen["frame"], seen["stamp"] = np.zeros(ny * nx, dtype=np.uint8), 0
        seen["stamp"] = seen["stamp"] % 255 + 1
        if seen["stamp"] == 1:
            seen["frame"][:] = 0  # the stamps wrapped round
        result = np.empty(9 * index.size, dtype=np.intp)
        count = _compiled.neighbourhood(
            index, nx, ny, seen["frame"], np.uint8(seen["stamp"]), result
        )
        return result[:count]
    rows, cols = np.unravel_index(index, shape)
    around = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            r, c = rows + dy, cols + dx
            inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
            around.append(r[inside] * nx + c[inside])
    return np.unique(np.concatenate(around))


def window_values(
    data, rows, cols, *, radius, bad=None, include_centre=True, dtype=np.float64
):
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
    dtype : float type, optional
        Type of the values returned.

    Returns
    -------
    values : `numpy.ndarray`, shape (len(rows), (2*radius+1)**2)
        Row-major windows; positions outside the image are NaN.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    if engine() == "numba" and np.dtype(dtype) == np.float64:
        rows = np.asarray(rows, dtype=np.intp).ravel()
        cols = np.asarray(cols, dtype=np.intp).ravel()
        values = np.empty((rows.size, (2 * radius + 1) ** 2), dtype=np.float64)
        by_point_blocks(
            _compiled.gather_windows,
            compiled_input(data),
            compiled_mask(bad, (ny, nx)),
            rows,
            cols,
            int(radius),
            bool(include_centre),
            values,
            per_point=(rows, cols, values),
        )
        return values
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    win_rows = np.asarray(rows)[:, None] + dy.ravel()[None]
    win_cols = np.asarray(cols)[:, None] + dx.ravel()[None]
    outside = (win_rows < 0) | (win_rows >= ny) | (win_cols < 0) | (win_cols >= nx)
    win_rows = np.clip(win_rows, 0, ny - 1)
    win_cols = np.clip(win_cols, 0, nx - 1)
    values = data[win_rows, win_cols].astype(dtype)
    values[outside] = np.nan
    if bad is not None:
        values[np.asarray(bad, dtype=bool)[win_rows, win_cols]] = np.nan
    if not include_centre:
        values[:, dy.size // 2] = np.nan
    return values


# Beyond this size a value's square, summed over a window, could overflow
# float64 (its largest value is 1.8e308, the square root 1.3e154): the
# deviations are then taken in long double.
_SQUARE_OVERFLOW = 1e150


def window_statistics(
    data, rows, cols, *, radius, bad=None, include_centre=True, spread=False
):
    """Median, number, lowest and spread of the good values of each window.

    What `row_median`, `numpy.fmin` and `numpy.nanstd` give on the windows of
    `window_values` (non-finite values left out too), without building the
    windows in memory.

    Parameters
    ----------
    data : 2-D array
        The image.
    rows, cols : 1-D int arrays
        Centres of the windows.
    radius : int
        Half-width of the window.
    bad : 2-D bool array, optional
        Pixels to leave out.
    include_centre : bool, optional
        If False, the centre pixel of each window is left out.
    spread : bool, optional
        Also the sample standard deviation (``ddof=1``) of each window's
        values.

    Returns
    -------
    median : `numpy.ndarray` of float64
        NaN where a window holds no good value.
    count : `numpy.ndarray` of int
        Good values in each window.
    lowest : `numpy.ndarray` of float64
        The smallest good value; NaN where none.
    deviation : `numpy.ndarray` of float64 or None
        With ``spread``: the standard deviation, 0 where a window holds
        fewer than two good values.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.kernels.medians import window_statistics
    >>> image = np.arange(9.0).reshape(3, 3)
    >>> median, count, lowest, _ = window_statistics(
    ...     image, [1], [1], radius=1, include_centre=False
    ... )
    >>> float(median[0]), int(count[0]), float(lowest[0])
    (4.0, 8, 0.0)
    """
    data = np.asarray(data)
    rows = np.asarray(rows, dtype=np.intp).ravel()
    cols = np.asarray(cols, dtype=np.intp).ravel()
    if engine() == "numba" and (2 * radius + 1) ** 2 <= _compiled.PAIRWISE_BLOCK:
        median, lowest = np.empty(rows.size), np.empty(rows.size)
        count = np.empty(rows.size, dtype=np.intp)
        deviation = np.empty(rows.size)
        wide = by_point_blocks(
            _compiled.window_statistics,
            compiled_input(data),
            compiled_mask(bad, data.shape),
            rows,
            cols,
            int(radius),
            bool(include_centre),
            bool(spread),
            _SQUARE_OVERFLOW,
            median,
            count,
            lowest,
            deviation,
            per_point=(rows, cols, median, count, lowest, deviation),
        )
        if not any(wide):
            return median, count, lowest, deviation if spread else None
    values = window_values(
        data, rows, cols, radius=radius, bad=bad, include_centre=include_centre
    )
    values[~np.isfinite(values)] = np.nan
    count = np.count_nonzero(~np.isnan(values), axis=1)
    median = row_median(values)
    lowest = np.fmin.reduce(values, axis=1)
    deviation = None
    if spread:
        deviation = np.zeros(rows.size)
        several = count > 1
        # long double only where squares could overflow float64 (it is slow)
        wide = np.nanmax(np.abs(values), initial=0) > _SQUARE_OVERFLOW
        deviation[several] = np.nanstd(
            values[several].astype(np.longdouble if wide else np.float64),
            axis=1,
            ddof=1,
        ).astype(np.float64)
        deviation = np.nan_to_num(deviation)
    return median, count, lowest, deviation


def lowest_side_median(data, rows, cols, *, radius, bad=None, sign=1.0):
    """Lowest of the medians of the four sides of the window around each pixel.

    The sides are the outer rows and columns of the ``2 * radius + 1``
    square window; bad, non-finite and outside pixels are left out of their
    medians. With ``sign=-1`` the values are negated first, so the result is
    minus the highest side median. NaN where every side is empty.

    Parameters
    ----------
    data : 2-D array
        The image.
    rows, cols : 1-D int arrays
        Centres of the windows.
    radius : int
        Half-width of the window.
    bad : 2-D bool array, optional
        Pixels to leave out.
    sign : {1.0, -1.0}, optional
        Multiplies the side medians before the lowest is taken.

    Returns
    -------
    `numpy.ndarray` of float64

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.kernels.medians import lowest_side_median
    >>> image = np.zeros((5, 5))
    >>> image[:, 4] = 3.0  # a bright right-hand side
    >>> lowest_side_median(image, [2], [2], radius=2, sign=-1.0)
    array([-3.])
    """
    data = np.asarray(data)
    rows = np.asarray(rows, dtype=np.intp).ravel()
    cols = np.asarray(cols, dtype=np.intp).ravel()
    if engine() == "numba":
        result = np.empty(rows.size, dtype=np.float64)
        by_point_blocks(
            _compiled.side_medians_lowest,
            compiled_input(data),
            compiled_mask(bad, data.shape),
            rows,
            cols,
            int(radius),
            float(sign),
            result,
            per_point=(rows, cols, result),
        )
        return result
    values = window_values(data, rows, cols, radius=radius, bad=bad)
    size = 2 * radius + 1
    square = values.reshape(-1, size, size)
    sides = np.stack(
        [
            row_median(side)
            for side in (square[:, 0], square[:, -1], square[:, :, 0], square[:, :, -1])
        ],
        axis=1,
    )
    sides = sign * sides
    empty = np.isnan(sides).all(axis=1)
    sides[empty] = 0.0
    lowest = np.nanmin(sides, axis=1)
    lowest[empty] = np.nan
    return lowest
