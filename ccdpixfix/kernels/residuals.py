"""Residuals from the local level, in units of each pixel's noise.

The one pass over a frame that finds the candidates of `ccdpixfix.transients`
(`residual_outliers`), the same noise at chosen pixels (`noise_at`), and a
noise model evaluated over a frame (`level_noise`). Like the kernels of
`ccdpixfix.kernels.medians`, each runs on the compiled engine or on its numpy twin,
with identical results.
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
)
from .medians import (
    _RING,
    RESIDUAL_FACTOR,
    _level_from_window,
    _nanmedian_axis0,
    local_level,
    ring_median,
    row_median,
    window_values,
)

__all__ = ["level_noise", "noise_at", "residual_outliers"]


def _model_sigma(level, model):
    """numpy twin of the compiled model: float32 noise at float ``level``."""
    floor_variance, slope, offset = model
    with np.errstate(invalid="ignore", over="ignore"):
        signal = np.clip(np.asarray(level).astype(np.float64) - offset, 0, None)
        signal = np.nan_to_num(signal, nan=0.0)
        return np.sqrt(floor_variance + slope * signal).astype(np.float32)


def _neighbour_noise(plane, bad):
    """numpy twin: median noise of the good neighbours, else the pixel's own."""
    with np.errstate(invalid="ignore"):
        unusable = bad | ~np.isfinite(plane) | (plane <= 0)
    noise = ring_median(plane, unusable)
    return np.where(np.isfinite(noise), noise, plane).astype(np.float32)


def _check_noise(plane, model):
    if (plane is None) == (model is None):
        raise ValueError("give either an uncertainty plane or a noise model")
    if model is not None:
        return None, tuple(float(value) for value in model)
    plane = np.asarray(plane)
    return np.ascontiguousarray(plane, dtype=float_type(plane)), None


def residual_outliers(data, bad, cut, *, plane=None, model=None, peak_cut=None):
    """Pixels whose residual from `local_level` exceeds ``cut`` times its noise.

    The residual is ``(data - level) / (sigma * RESIDUAL_FACTOR[n_pairs])``;
    a pixel must also lie beyond the median of its good neighbours by
    ``cut * sigma`` (one like most of its neighbours sits on a step or on
    the wing of a star, and is no defect): this keeps the candidates that
    the costlier tests of `ccdpixfix.transients` examine few.
    The noise ``sigma`` of a pixel is that of its neighbours (the pixel is
    tested for being like them, and an uncertainty computed from the data is
    inflated exactly at a cosmic ray): the median of the good neighbours of
    the uncertainty ``plane`` (the pixel's own value where none is good), or
    the noise ``model`` at the brighter of the local level and the median of
    the neighbours (beside a step, such as the edge of an overscan, the
    level sits half-way while the pixel's side is brighter).

    Parameters
    ----------
    data : 2-D array
        The image.
    bad : 2-D bool array
        Pixels left out of every level and neighbour median.
    cut : float
        Threshold in units of the noise.
    plane : 2-D float array, optional
        Standard deviation of each pixel.
    model : (floor_variance, slope, offset), optional
        The noise model ``sqrt(floor_variance + slope * max(level - offset, 0))``.
    peak_cut : float, optional
        Also mark, with 3, the pixels not marked 1 or 2 whose residual exceeds
        ``+peak_cut``, that are brighter than each of their good neighbours
        (one at least) and that stand ``cut`` times the same noise above
        the darkest mean of a complete pair of opposite neighbours: the
        peaks of faint compact events whose neighbours share their charge
        (the top of a broad star is lit in every direction), which the
        tests of `ccdpixfix.transients` judge by their profile.

    Returns
    -------
    `numpy.ndarray` of uint8
        1 above ``+cut``, 2 below ``-cut``, 3 for the peaks above
        ``peak_cut``, 0 elsewhere and where the residual is not finite: one
        byte per pixel, whatever the frame's type.
    """
    shape = np.shape(data)
    plane, model = _check_noise(plane, model)
    bad = compiled_mask(bad, shape)
    cut = float(cut)
    low = np.inf if peak_cut is None else float(peak_cut)
    if engine() == "numba":
        codes = np.empty(shape, dtype=np.uint8)
        halves = np.array([0.5], float_type(data))
        data = compiled_input(data)
        if plane is not None:
            arguments = (plane, np.array([0.5], plane.dtype))
            kernel = _compiled.outlier_plane_rows
        else:
            arguments, kernel = model, _compiled.outlier_model_rows
        by_row_blocks(
            kernel,
            shape,
            data,
            bad,
            halves,
            *arguments,
            RESIDUAL_FACTOR,
            cut,
            low,
            codes,
        )
        return codes
    level, n_pairs = local_level(data, bad)
    if plane is not None:
        sigma = _neighbour_noise(plane, bad)
    else:
        sigma = _model_sigma(np.fmax(level, ring_median(data, bad)), model)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        residual = np.asarray(data, dtype=np.float64) - level.astype(np.float64)
        residual /= sigma * RESIDUAL_FACTOR[n_pairs]
    codes = np.zeros(shape, dtype=np.uint8)
    codes[residual > cut] = 1
    codes[residual < -cut] = 2
    codes[~np.isfinite(residual)] = 0
    noise = sigma * RESIDUAL_FACTOR[n_pairs]
    del level, n_pairs
    # ... and beyond the median of the neighbours (float64, as row_median)
    rows, cols = np.nonzero(codes != 0)
    window = window_values(data, rows, cols, radius=1, bad=bad, dtype=float_type(data))
    window[~np.isfinite(window)] = np.nan
    window[:, 4] = np.nan
    typical = row_median(window.astype(np.float64))
    sign = np.where(codes[rows, cols] == 1, 1.0, -1.0)
    value = np.asarray(data[rows, cols], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        beyond = sign * (value - typical) > cut * sigma[rows, cols]
    codes[rows[~beyond], cols[~beyond]] = 0
    if np.isfinite(low):
        with np.errstate(invalid="ignore"):
            rows, cols = np.nonzero((residual > low) & (codes == 0))
        faint = _faint_peaks(data, bad, rows, cols, noise[rows, cols], cut)
        codes[rows, cols] = 3 * faint
    return codes


def _faint_peaks(data, bad, rows, cols, noise, cut):
    """numpy twin: whether each pixel is good, above all its good neighbours
    (one at least), and ``cut`` times ``noise`` above their darkest
    complete pair."""
    window = window_values(data, rows, cols, radius=1, bad=bad, dtype=float_type(data))
    window[~np.isfinite(window)] = np.nan
    middle = window[:, 4].copy()
    window[:, 4] = np.nan
    good = np.isfinite(window)
    pairs = np.stack([0.5 * window[:, a] + 0.5 * window[:, 8 - a] for a in range(4)])
    with np.errstate(invalid="ignore", divide="ignore"):
        above = np.where(good, middle[:, None] > window, True).all(axis=1)
        darkest = np.fmin.reduce(pairs, axis=0).astype(np.float64)
        value = np.asarray(data[rows, cols], dtype=np.float64)
        across = (value - darkest) / noise.astype(np.float64) > cut
    return np.isfinite(middle) & good.any(axis=1) & above & across


def noise_at(data, bad, rows, cols, *, plane=None, model=None):
    """The noise `residual_outliers` uses, at the given pixels only.

    Returns
    -------
    `numpy.ndarray` of float32
    """
    plane, model = _check_noise(plane, model)
    rows = np.asarray(rows, dtype=np.intp).ravel()
    cols = np.asarray(cols, dtype=np.intp).ravel()
    bad = compiled_mask(bad, np.shape(data))
    if engine() == "numba":
        sigma = np.empty(rows.size, dtype=np.float32)
        if plane is not None:
            kernel = _compiled.plane_points
            arguments = (plane, bad, np.array([0.5], plane.dtype))
        else:
            kernel = _compiled.model_points
            halves = np.array([0.5], float_type(data))
            arguments = (compiled_input(data), bad, halves, *model)
        by_point_blocks(
            kernel, *arguments, rows, cols, sigma, per_point=(rows, cols, sigma)
        )
        return sigma
    if plane is not None:
        window = window_values(
            plane,
            rows,
            cols,
            radius=1,
            bad=bad,
            include_centre=False,
            dtype=plane.dtype,
        )
        with np.errstate(invalid="ignore"):
            window[~np.isfinite(window) | (window <= 0)] = np.nan
        noise = _nanmedian_axis0(window.T)[0]
        return np.where(np.isfinite(noise), noise, plane[rows, cols]).astype(np.float32)
    window = window_values(data, rows, cols, radius=1, bad=bad, dtype=float_type(data))
    window[~np.isfinite(window)] = np.nan
    level = _level_from_window(window.T)[0]
    ring = _nanmedian_axis0(window.T[list(_RING)])[0]
    return _model_sigma(np.fmax(level, ring), model)


def level_noise(data, bad, model):
    """A noise model evaluated at each pixel's `local_level`.

    Parameters
    ----------
    data : 2-D array
        The image.
    bad : 2-D bool array
        Pixels left out of the levels.
    model : (floor_variance, slope, offset)
        ``sqrt(floor_variance + slope * max(level - offset, 0))``; a NaN level
        counts as no signal.

    Returns
    -------
    `numpy.ndarray` of float32
    """
    shape = np.shape(data)
    model = _check_noise(None, model)[1]
    if engine() == "numba":
        sigma = np.empty(shape, dtype=np.float32)
        by_row_blocks(
            _compiled.model_rows,
            shape,
            compiled_input(data),
            compiled_mask(bad, shape),
            np.array([0.5], float_type(data)),
            *model,
            sigma,
        )
        return sigma
    return _model_sigma(local_level(data, bad)[0], model)
