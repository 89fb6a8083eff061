"""Profile fits that tell a hit narrower than the frame's stars from a star.

The flatness tests of `ccdpixfix.transients._sharpness` judge a candidate by
its quietest pair of neighbours: three pixels. A faint compact hit (a 2 x 2
or 2 x 3 block of 5-20 sigma, its charge spread by 0.3-0.5 px) stays within
their noise beside undersampled stars (Gaussian sigma 0.76 px at FWHM 1.8).
Its whole 5 x 5 window tells it: a pixel-integrated Gaussian as wide as the
frame's stars fits it far worse than a narrower one. The stars' width is
measured on the frame's own bright stars with the same profile, so that
what the Gaussian misses of their real shape (a Moffat's wings, the pixel
phase) is in the reference too.
"""

from functools import lru_cache

import numpy as np
from scipy.special import erf

from ..kernels.medians import window_values
from ._sharpness import (
    _ELONGATION,
    _LIT_NOISE,
    _MIN_STARS,
    _local_background,
    _orientation,
)

# The fits use the 5x5 window around the candidate.
_RADIUS = 2
# Sub-pixel centres tried, each way (steps of 1/8 px).
_OFFSETS = np.linspace(-0.5, 0.5, 9)
# Widths (Gaussian sigma, px) tried for the stars; at most this many of the
# bright stars measured (the median of a hundred is known to a few per
# cent); fewer than _MIN_STARS (as for their flatness): no width.
_STAR_WIDTHS = np.arange(0.3, 3.0001, 0.05)
_MAX_STARS = 128
# Widths tried for a hit, as fractions of the stars' width: diffusion of
# 0.3-0.6 px against stars of 0.76 px and more. On the simulated camera the
# bright peaks' own best widths lie at 0.96-1.06 of their median (5th and
# 95th percentiles, FWHM 1.8 and 2.6; at FWHM 4 the round hits among them
# spread lower, the median stays), so a hit must fit at 0.8 or below ...
_NARROW = (0.35, 0.5, 0.6, 0.7, 0.8)
# ... better than at the stars' width by this chi-square (4 sigma for one
# parameter; tried on the simulated camera, 16 found two to three times as
# many faint hits as 25, and no more false flags in bench_quality).
_CHI_GAIN = 16.0
#: Stars narrower than this (Gaussian sigma, px; FWHM about 1.65) are
#: undersampled: a star centred on a pixel has a darkest pair of neighbours
#: under 0.3 of its brightest, fails the roundness test of ``star_like``, and
#: would be taken for a hit (on the simulated camera at FWHM 1.2, 27 of 235
#: bright stars hit). There a sharp peak lit around that the stars' profile
#: fits about as well as a narrower one is a star (`fits_a_star`). Above
#: it, that test would cost the hot pixels on the peaks of bright stars,
#: whose shape they barely change (defects on stars found at FWHM 2.6 and
#: 4.0: 0.667 and 0.667 without it, 0.556 and 0.500 with it).
UNDERSAMPLED = 0.7
# ... about as well: within this chi-square (2 sigma for one parameter).
_STAR_FIT = 4.0


def _pixel_profiles(offsets, width):
    """Pixel-integrated 1-D Gaussians centred ``offsets`` px from the middle.

    Shape ``(offsets.size, 2 * _RADIUS + 1)``.
    """
    edges = np.arange(-_RADIUS, _RADIUS + 2) - 0.5
    scaled = (edges[None, :] - offsets[:, None]) / (np.sqrt(2.0) * width)
    return 0.5 * np.diff(erf(scaled), axis=1)


@lru_cache(maxsize=256)
def _templates(width):
    """Unit 2-D profiles of ``width`` at every sub-pixel centre, as columns.

    Cached: the stars' widths are one grid, a frame's hit widths a few.
    """
    profile = _pixel_profiles(_OFFSETS, width)
    grid = profile[:, None, :, None] * profile[None, :, None, :]
    return grid.reshape(_OFFSETS.size**2, -1).T


def _chi_square(excess, weights, widths):
    """Least chi-square of each window over centres, for each width.

    ``excess`` (data less background) and ``weights`` (inverse variance,
    zero where a pixel is bad) have one row per window; the amplitude is
    fitted, linear. Returns shape ``(n_windows, len(widths))``.
    """
    weighted = weights * excess
    total = np.sum(weighted * excess, axis=1)
    chi = np.empty((excess.shape[0], len(widths)))
    for k, width in enumerate(widths):
        templates = _templates(round(float(width), 6))
        # The centre has a weight (a candidate is above the background) and
        # every template a share of it: the norm is never zero.
        explained = weighted @ templates
        explained *= explained
        explained /= weights @ (templates * templates)
        chi[:, k] = total - np.max(explained, axis=1)
    return chi


def _windows(data, known, rows, cols, noise, cut):
    """Excess over the local background and weights of 5x5 windows.

    One weight for the whole window, that of its centre: a bright star's
    shot noise would weigh its wings more than a faint one's, and a
    Gaussian fitted to a Moffat star would come out broader the brighter
    the star. Pixels ``cut`` times that noise below the background (a cold
    pixel not yet found) are left out.
    """
    values = window_values(data, rows, cols, radius=_RADIUS, bad=known)
    background = _local_background(data, known, rows, cols)
    excess = values - background[:, None]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(excess) & (excess > -cut * noise[:, None])
    weights = np.where(good, 1.0 / noise[:, None] ** 2, 0.0)
    return np.where(good, excess, 0.0), weights, background


def star_width(data, known, peak_rows, peak_cols, peak_noise, cut):
    """The width (Gaussian sigma, px) that fits this frame's bright stars.

    Of the bright round peaks (`bright_peaks`: the frame's stars), at most
    `_MAX_STARS` spread evenly through their list (which runs row by row, so
    that all the frame has its say where the PSF changes across it): the
    median of their best-fitting widths. None with fewer than `_MIN_STARS`.
    """
    if peak_rows.size < _MIN_STARS:
        return None
    chosen = np.unique(np.linspace(0, peak_rows.size - 1, _MAX_STARS).astype(int))
    excess, weights, _ = _windows(
        data, known, peak_rows[chosen], peak_cols[chosen], peak_noise[chosen], cut
    )
    chi = _chi_square(excess, weights, _STAR_WIDTHS)
    return float(np.median(_STAR_WIDTHS[np.argmin(chi, axis=1)]))


def narrower_than_stars(data, known, rows, cols, noise, width, cut):
    """Which candidates are peaks narrower than this frame's stars can be.

    A strict local maximum ``cut`` times its noise above the local
    background whose 5x5 window a pixel-integrated Gaussian of at most 0.8
    of the stars' ``width`` (`star_width`) fits better, by `_CHI_GAIN`,
    than one of the stars' width: a faint compact hit, or a hot pixel on a
    star's peak. A blend, a galaxy or a trailed star is broader and fits
    worse narrow.

    Examples
    --------
    A 2 x 2 hit of 20 sigma among stars of Gaussian sigma 0.8 px:

    >>> import numpy as np
    >>> data = np.random.default_rng(0).normal(100.0, 1.0, (15, 15))
    >>> data[7:9, 7:9] += [[20.0, 12.0], [11.0, 6.0]]
    >>> known = np.zeros(data.shape, dtype=bool)
    >>> rows, cols = np.array([7]), np.array([7])
    >>> narrower_than_stars(
    ...     data, known, rows, cols, np.ones(1), width=0.8, cut=5.0
    ... )
    array([ True])
    """
    return narrowing(data, known, rows, cols, noise, width, cut) > _CHI_GAIN


def fits_a_star(data, known, rows, cols, noise, width, cut):
    """Which candidates lie on a source that the stars' profile fits.

    Lit around (its brightest neighbour `_LIT_NOISE` sigma above the local
    background: a lone hot pixel's neighbours are sky), round (the light of
    its 5x5 window elongated less than `_ELONGATION`: a track's is more),
    and at the peak it lies on (`narrowing` with ``climb``), a profile
    narrower than the stars' ``width`` fits no better than theirs, by
    `_STAR_FIT`.
    """
    gain = narrowing(data, known, rows, cols, noise, width, cut, climb=True)
    around = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    background = _local_background(data, known, rows, cols)
    # A track's light in its 5x5 window is elongated (as `oblique_tracks`
    # asks); a star's is round.
    _, elongation = _orientation(data, known, rows, cols, background)
    with np.errstate(invalid="ignore"):
        lit = np.fmax.reduce(around, axis=1) - background > _LIT_NOISE * noise
        return lit & (gain < _STAR_FIT) & (elongation < _ELONGATION)


def narrowing(data, known, rows, cols, noise, width, cut, *, climb=False):
    """How much better a narrower profile fits each candidate than the stars'.

    The chi-square at the stars' ``width`` less the least at `_NARROW` of
    it, on the 5x5 window (`_windows`); NaN where the candidate is no strict
    local maximum ``cut`` times its noise above the local background. With
    ``climb``, a candidate below a good neighbour is judged at its brightest
    one: the peak of the source it lies on (an undersampled star's other
    candidates are next to its peak).
    """
    value = np.asarray(data[rows, cols], dtype=np.float64)
    around = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    around = np.nan_to_num(around, nan=-np.inf)
    if climb:
        brightest = np.argmax(around, axis=1)
        below = around[np.arange(rows.size), brightest] > value
        # Positions in the 3x3 window (its centre NaN, never the brightest;
        # outside the image NaN too).
        rows = rows + np.where(below, brightest // 3 - 1, 0)
        cols = cols + np.where(below, brightest % 3 - 1, 0)
        value = np.asarray(data[rows, cols], dtype=np.float64)
        around = window_values(
            data, rows, cols, radius=1, bad=known, include_centre=False
        )
        around = np.nan_to_num(around, nan=-np.inf)
    chosen = np.flatnonzero(value > np.max(around, axis=1))
    excess, weights, background = _windows(
        data, known, rows[chosen], cols[chosen], noise[chosen], cut
    )
    gain = np.full(rows.size, np.nan)
    tall = value[chosen] - background > cut * noise[chosen]
    chosen, excess, weights = chosen[tall], excess[tall], weights[tall]
    if not chosen.size:
        return gain
    widths = [width] + [share * width for share in _NARROW]
    chi = _chi_square(excess, weights, widths)
    gain[chosen] = chi[:, 0] - np.min(chi[:, 1:], axis=1)
    return gain
