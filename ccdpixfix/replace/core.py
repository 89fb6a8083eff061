"""Replacement of flagged pixels by estimates from good neighbours."""

import numpy as np

from ..colour.cfa import cfa_pattern, per_colour
from ..colour.rgb import check_cube_pattern, is_rgb_cube, per_plane
from ..flags import BAD_PIXEL_FLAGS, PixelFlag
from ..kernels.medians import neighbourhood, window_statistics, window_values
from ..noise.core import frame_noise
from ..transients import local_background as _local_background
from ..utils.ccd import (
    check_ccd,
    input_flags,
    new_ccd,
    output_dtype,
    quiet_numerics,
    uncertainty_sigma,
)
from ..utils.provenance import record_step
from .options import DEFAULT_REPLACE_FLAGS, ReplaceOptions

__all__ = ["DEFAULT_REPLACE_FLAGS", "replace_bad_pixels"]

# Good pixels a window must hold before it gives an estimate: more than half
# of the 8 neighbours, so that a one-pixel-wide column takes both sides.
_MIN_GOOD = 5
# An unflagged neighbour of a replaced pixel is left out of the estimates
# when it stands this many sigma above the median of its own good
# neighbours, and that excess is most of its height above the background:
# the unflagged wing of a hit. The peak of a star stands above its
# neighbours by at most 0.65 of its height (FWHM 1.8 px; less when wider).
_SUSPECT_SIGMA = 3.0
_SUSPECT_SHARE = 0.8
# Efficiency of the median relative to the mean for Gaussian noise.
_MEDIAN_VARIANCE = np.pi / 2


def _fill(data, good, targets, method, max_radius):
    """Estimates for ``targets`` from good pixels, nearest rings first.

    A pixel deep inside a cluster or a wide column waits for a window large
    enough to reach good pixels on its sides, so it is filled from the
    outside in, and never from another flagged pixel.
    """
    rows, cols = np.divmod(np.flatnonzero(targets), targets.shape[1])
    estimate = np.full(rows.size, np.nan)
    n_used = np.zeros(rows.size, dtype=int)
    scatter = np.zeros(rows.size)
    todo = np.arange(rows.size)
    efficiency = 1.0
    bad = ~good
    for radius in range(1, max_radius + 1):
        if todo.size == 0:
            break
        value, n_good, spread, efficiency = _window_estimate(
            data, bad, rows[todo], cols[todo], radius, method
        )
        last = radius == max_radius
        done = n_good >= (1 if last else _MIN_GOOD)
        estimate[todo[done]] = value[done]
        n_used[todo[done]] = n_good[done]
        scatter[todo[done]] = spread[done]
        todo = todo[~done]
    return rows, cols, estimate, n_used, scatter, efficiency


def _window_estimate(data, bad, rows, cols, radius, method):
    """Estimate, good pixels, their scatter and the estimator's efficiency
    in the window of ``radius`` around each pixel, the pixel left out."""
    median, n_good, _, scatter = window_statistics(
        data, rows, cols, radius=radius, bad=bad, include_centre=False, spread=True
    )
    if method == "median":
        return median, n_good, scatter, _MEDIAN_VARIANCE
    values = window_values(
        data, rows, cols, radius=radius, bad=bad, include_centre=False
    )
    mean = np.full(rows.size, np.nan)
    some = n_good > 0
    # long double: the sum of values near the float64 maximum must not overflow
    mean[some] = np.nanmean(values[some].astype(np.longdouble), axis=1)
    return mean, n_good, scatter, 1.0


def replace_bad_pixels(
    ccd,
    *,
    method: str = ReplaceOptions.method,
    flags_to_replace: int = ReplaceOptions.flags_to_replace,
    max_radius: int = ReplaceOptions.max_radius,
    cfa: str | None = None,
    add_keyword=True,
):
    """Replace flagged pixels with estimates from good neighbours only.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        A frame whose ``flags`` (or ``mask``) say which pixels are bad, as
        `flag_bad_pixels` and `flag_transients` leave it.
    method : {"median", "mean"}, optional
        How the good pixels of the window combine. The median resists a
        neighbour that is bad but was not flagged; the mean has 1/1.57 of the
        median's variance on clean data.
    flags_to_replace : int, optional
        `PixelFlag` bits whose pixels are replaced. By default all "do not
        use" kinds except ``SATURATED`` (see `DEFAULT_REPLACE_FLAGS`); unless
        ``SATURATED`` is among them, a saturated pixel is never replaced,
        whatever other flag it carries.
    max_radius : int, optional
        Largest half-width of the window searched for good pixels (15 fills
        clusters up to ~30 px across). Pixels with no good pixel within it
        keep their value and get no ``REPLACED`` flag.
    cfa : str, optional
        Bayer pattern of a colour camera's raw mosaic (``"RGGB"``, ...): a
        pixel is replaced from neighbours of its own colour only (the radius
        then counts same-colour pixels). By default from the header's
        ``BAYERPAT``; ``"none"`` ignores the header. A colour cube takes
        none (a pattern given with one raises, as in `fix_pixels`).
    add_keyword : bool, str, `ccdproc.Keyword` or dict, optional
        The step's keyword in the header, as ccdproc's steps take it (see
        `fix_pixels`); False adds none.

    Returns
    -------
    `~astropy.nddata.CCDData`
        A new object. Replaced pixels hold the estimate, gain ``REPLACED``
        and keep their other flags (so they stay masked), and their
        uncertainty becomes that of a measurement there plus the estimate's
        error: ``sigma**2 * (1 + c / n) + structure**2``, where ``sigma`` is
        the noise of the good neighbours, ``n`` their number, ``c`` 1 for the
        mean and pi/2 for the median, and ``structure`` the scatter of the
        neighbours beyond their noise (a gradient or a star's profile). Every
        other pixel keeps its exact value. Without an uncertainty plane on
        input, one is made from the noise model (`flag_transients`) when the
        noise can be measured.

    Raises
    ------
    TypeError
        If ``ccd`` is not a `~astropy.nddata.CCDData`.
    ValueError
        For an unknown ``method``, a non-positive ``max_radius``, data that
        are not a 2-D image, or a Bayer pattern given with a colour cube.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from ccdpixfix import PixelFlag, replace_bad_pixels
    >>> flags = np.zeros((5, 5), np.uint16); flags[2, 2] = PixelFlag.HOT
    >>> data = np.full((5, 5), 10.0); data[2, 2] = 5000.0
    >>> fixed = replace_bad_pixels(CCDData(data, unit="adu", flags=flags))
    >>> float(fixed.data[2, 2]), PixelFlag.REPLACED in PixelFlag(fixed.flags[2, 2])
    (10.0, True)
    """
    ReplaceOptions.from_keywords(
        method=method, flags_to_replace=flags_to_replace, max_radius=max_radius
    )
    options = dict(
        method=method, flags_to_replace=flags_to_replace, max_radius=max_radius
    )
    if is_rgb_cube(ccd):
        check_cube_pattern(cfa)
        out, counts = per_plane(
            ccd, lambda plane: _counted(_replace_bad_pixels(plane, **options))
        )
        return record_step(
            out,
            "replace_bad_pixels",
            add_keyword=add_keyword,
            method=method,
            flags_to_replace=int(flags_to_replace),
            planes=3,
            **counts,
        )
    check_ccd(ccd)
    pattern = cfa_pattern(ccd.meta, cfa)
    if pattern is None:
        out, n_replaced = _replace_bad_pixels(ccd, **options)
        colour = {}
    else:
        out, counts = per_colour(
            ccd,
            pattern,
            lambda sub, _: _counted(_replace_bad_pixels(sub, **options)),
        )
        n_replaced, colour = counts["n_replaced"], {"cfa": pattern}
    return record_step(
        out,
        "replace_bad_pixels",
        add_keyword=add_keyword,
        method=method,
        flags_to_replace=int(flags_to_replace),
        n_replaced=n_replaced,
        **colour,
    )


def _counted(result):
    out, n_replaced = result
    return out, {"n_replaced": n_replaced}


def _replace_bad_pixels(ccd, **parameters):
    """`replace_bad_pixels` without the header record: (new ccd, count)."""
    data, flags, sigma, n_replaced = replace_bad_pixels_planes(ccd, **parameters)
    return new_ccd(ccd, data=data, flags=flags, sigma=sigma), n_replaced


def replace_bad_pixels_planes(ccd, **parameters):
    """The planes `replace_bad_pixels` makes: (data, flags, sigma or None, count).

    ``sigma`` is None where the frame's uncertainty plane stays as it is.
    """
    with quiet_numerics():
        return _replace_bad_pixels_quietly(ccd, **parameters)


def _replace_bad_pixels_quietly(
    ccd,
    *,
    method,
    flags_to_replace,
    max_radius,
    gain=None,
    read_noise=None,
    noise_model="fit",
    star_light=None,
):
    """The work of `_replace_bad_pixels`, numpy warnings left on.

    The options were checked by `ReplaceOptions` at the public boundary.
    ``star_light``: pixels near the peaks of stars (flat indices) and what
    the stars give there (`ccdpixfix.transients.flag_transients_planes`),
    which replaces them where they are bad: the median of a pixel's
    neighbours misses a star's curved profile.
    """
    flags = input_flags(ccd)  # DO_NOT_USE where the data are not finite
    data = np.asarray(ccd.data)
    good = (flags & np.uint16(int(BAD_PIXEL_FLAGS))) == 0
    targets = (flags & np.uint16(int(flags_to_replace))) != 0
    if not int(flags_to_replace) & int(PixelFlag.SATURATED):
        # A saturated pixel keeps its value even if it is also hot or stuck:
        # neighbours in a saturated core would only dig a hole in the star.
        # One that is not finite has no value to keep.
        saturated = (flags & np.uint16(PixelFlag.SATURATED)) != 0
        targets &= ~saturated | ~np.isfinite(data)
    sigma = uncertainty_sigma(ccd, native=True)
    if sigma is None and targets.any():
        sigma = _model_sigma(ccd, data, ~good, gain, read_noise, noise_model)
    usable = good
    # Only one-exposure hits have wings; a mapped defect does not.
    if sigma is not None:
        hits = np.flatnonzero((flags & np.uint16(PixelFlag.TRANSIENT_HOT)) != 0)
        hits = hits[targets.ravel()[hits]]
        if hits.size:
            usable = _without_suspects(data, good, targets, hits, sigma)
    rows, cols, estimate, n_used, scatter, efficiency = _fill(
        data, usable, targets, method, int(max_radius)
    )
    del usable
    if star_light is not None:
        _from_stars(estimate, rows, cols, targets, *star_light)
    del targets
    filled = np.isfinite(estimate)
    rows, cols = rows[filled], cols[filled]
    out_data = np.array(ccd.data, dtype=output_dtype(ccd.data), copy=True)
    out_data[rows, cols] = estimate[filled]
    flags[rows, cols] |= np.uint16(PixelFlag.REPLACED)
    out_sigma = None
    # An input plane with nothing replaced is kept exactly as it was.
    if sigma is not None and (rows.size or ccd.uncertainty is None):
        out_sigma = sigma
        if ccd.uncertainty is not None:
            out_sigma = np.array(sigma, copy=True)  # may share the input's memory
        if rows.size:
            neighbour_sigma = _neighbour_sigma(sigma, good, rows, cols)
            n = np.maximum(n_used[filled], 1)
            structure2 = np.clip(scatter[filled] ** 2 - neighbour_sigma**2, 0, None)
            out_sigma[rows, cols] = np.sqrt(
                neighbour_sigma**2 * (1 + efficiency / n) + structure2
            )
    return out_data, flags, out_sigma, int(rows.size)


def _from_stars(estimate, rows, cols, targets, near, values, peaks):
    """``estimate`` (of the pixels ``rows, cols``) set, in place, to what the
    stars give where a pixel is one of ``near`` (flat indices; ``values``
    there) and its star's peak (``peaks``) has at most one pixel of its
    3x3 core among the ``targets``: a round hit the search took for a star
    has its whole core flagged, and a star whose core a hit crossed is
    left to the median.

    A hot pixel beside a star's peak, replaced by the median of its
    neighbours, came out 1 to 20 sigma low (median over the frames of two
    simulated nights; 9 of 31 within 3 sigma of the truth): the star's
    profile curves there. The star's fit with the frame's PSF, which found
    the defect, puts 22 of the 31 within 3 sigma.
    """
    if not near.size:
        return
    shape = targets.shape
    # Each star once (a star has tens of pixels near its peak).
    stars, star_of = np.unique(peaks, return_inverse=True)
    core = window_values(
        targets.view(np.uint8), *np.unravel_index(stars, shape), radius=1
    )
    whole = (np.count_nonzero(core == 1, axis=1) <= 1)[star_of]
    near, values = near[whole], values[whole]
    usable = np.isfinite(values)
    order = np.argsort(near[usable])
    near, values = near[usable][order], values[usable][order]
    if not near.size:
        return
    index = np.ravel_multi_index((rows, cols), shape)
    at = np.minimum(np.searchsorted(near, index), near.size - 1)
    found = near[at] == index
    estimate[found] = values[at[found]]


def _without_suspects(data, good, targets, hits, sigma):
    """``good`` less the unflagged wings of the hits (flat indices) to replace.

    A neighbour of a target that stands well above its own good neighbours
    with most of its height (the unflagged edge of a cosmic ray) would pull
    the estimate up; the peak of a star does not stand out that much, and
    stays in.
    """
    shape = np.shape(data)
    around = neighbourhood(hits, shape, {})
    around = around[good.ravel()[around]]
    if not around.size:
        return good
    rows, cols = np.unravel_index(around, shape)
    bad = ~good | targets
    median, _, _, _ = window_statistics(
        data, rows, cols, radius=1, bad=bad, include_centre=False
    )
    value = np.asarray(data[rows, cols], dtype=np.float64)
    noise = np.asarray(sigma[rows, cols], dtype=np.float64)
    excess = value - median
    chosen = np.flatnonzero(excess > _SUSPECT_SIGMA * noise)
    excess = excess[chosen]
    if not chosen.size:
        return good
    rows, cols = rows[chosen], cols[chosen]
    background = _local_background(data, bad, rows, cols)
    suspect = excess > _SUSPECT_SHARE * (value[chosen] - background)
    if not suspect.any():
        return good
    usable = good.copy()
    usable[rows[suspect], cols[suspect]] = False
    return usable


def _model_sigma(ccd, data, bad, gain, read_noise, noise_model):
    """The noise model of a frame without an uncertainty plane, at each pixel."""
    try:
        source = frame_noise(
            ccd, data, bad, gain=gain, read_noise=read_noise, model=noise_model
        )
    except ValueError:
        # No measurable noise (a constant or tiny image): the pixels are
        # still replaced, but no uncertainty plane can be made.
        return None
    return source.everywhere()


def _neighbour_sigma(sigma, good, rows, cols):
    """Typical noise of the good pixels around each replaced pixel."""
    # window_statistics leaves non-finite noise out itself: no full-frame
    # test of it here (2 ms on the 2048 x 2048 speed frame).
    unusable = ~good
    result = np.full(rows.size, np.nan)
    todo = np.arange(rows.size)
    # Each pixel takes the nearest window holding a good pixel, so that a
    # large cluster elsewhere does not widen the window of the others.
    for radius in (1, 2, 4, 8):
        if todo.size == 0:
            break
        median, count, _, _ = window_statistics(
            sigma, rows[todo], cols[todo], radius=radius, bad=unusable
        )
        found = count > 0
        result[todo[found]] = median[found]
        todo = todo[~found]
    if todo.size:
        usable = good & np.isfinite(sigma)
        result[todo] = np.nanmedian(sigma[usable]) if usable.any() else 0.0
    return result
