"""Median kernels that ignore bad pixels.

Every local median in ccdpixfix goes through this module, so that pixels
already known to be bad (flagged, masked or not finite) never enter the
reference a pixel is compared with. ccdproc's median step lets them in and
so raises false flags around masked blocks.

Edges are handled by mirroring about the edge pixel (``d c b | a b c d``),
never by repeating it: a cosmic ray on the edge must not become part of its
own reference.
"""

import numpy as np

__all__ = ["mirror_index", "ring_median", "window_values"]

# Rows per strip: bounds the temporary neighbour stack to a few frames' worth
# of memory whatever the image size, and keeps each strip cache friendly.
_STRIP_ROWS = 256


def mirror_index(index, size):
    """Fold indices outside ``[0, size)`` back in by mirroring about the edges.

    Examples
    --------
    >>> from ccdpixfix.medians import mirror_index
    >>> mirror_index([-2, -1, 0, 4, 5, 6], 5).tolist()
    [2, 1, 0, 4, 3, 2]
    """
    index = np.asarray(index)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return (size - 1) - np.abs(folded - (size - 1))


def _ring_offsets(radius):
    return [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if dy or dx
    ]


def _median_of_sorted(sorted_stack, n_valid):
    """Median along axis 0 of a stack sorted with NaNs last."""
    lower = np.clip((n_valid - 1) // 2, 0, None)
    upper = np.clip(n_valid // 2, 0, None)
    low = np.take_along_axis(sorted_stack, lower[None], axis=0)[0]
    high = np.take_along_axis(sorted_stack, upper[None], axis=0)[0]
    median = 0.5 * (low + high)
    median[n_valid == 0] = np.nan
    return median


def ring_median(data, bad=None, *, radius=1):
    """Median of each pixel's neighbours, the pixel itself excluded.

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
    median : `numpy.ndarray` of float32
        For an even number of good neighbours, the mean of the two middle
        values (unbiased on symmetric noise). NaN where no neighbour is good.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.medians import ring_median
    >>> image = np.zeros((5, 5)); image[2, 2] = 100.0
    >>> float(ring_median(image)[2, 2]), float(ring_median(image)[2, 3])
    (0.0, 0.0)
    """
    data = np.asarray(data)
    values = data.astype(np.float32, copy=True)
    if bad is not None:
        values[np.asarray(bad, dtype=bool)] = np.nan
    ny, nx = values.shape
    rows = mirror_index(np.arange(-radius, ny + radius), ny)
    cols = mirror_index(np.arange(-radius, nx + radius), nx)
    padded = values[np.ix_(rows, cols)]
    offsets = _ring_offsets(radius)
    result = np.empty((ny, nx), dtype=np.float32)
    for y0 in range(0, ny, _STRIP_ROWS):
        y1 = min(ny, y0 + _STRIP_ROWS)
        stack = np.stack(
            [
                padded[
                    y0 + radius + dy : y1 + radius + dy, radius + dx : radius + dx + nx
                ]
                for dy, dx in offsets
            ]
        )
        n_valid = np.count_nonzero(~np.isnan(stack), axis=0)
        stack.sort(axis=0)
        result[y0:y1] = _median_of_sorted(stack, n_valid)
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
        Mirrored at the image edges, like `ring_median`.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    win_rows = mirror_index(np.asarray(rows)[:, None] + dy.ravel()[None], ny)
    win_cols = mirror_index(np.asarray(cols)[:, None] + dx.ravel()[None], nx)
    values = data[win_rows, win_cols].astype(np.float64)
    if bad is not None:
        values[np.asarray(bad, dtype=bool)[win_rows, win_cols]] = np.nan
    if not include_centre:
        centre = dy.ravel() == 0
        centre &= dx.ravel() == 0
        values[:, centre] = np.nan
    # A mirrored window can hold the centre pixel itself more than once at
    # the edges; it must not count as its own neighbour then either.
    if not include_centre:
        same = (win_rows == np.asarray(rows)[:, None]) & (
            win_cols == np.asarray(cols)[:, None]
        )
        values[same] = np.nan
    return values
