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

from ..kernels.medians import lowest_side_median, row_median, window_values
from ..utils.ccd import quiet_numerics
from ._sharpness import (
    _BACKGROUND_RADIUS,
    _ELONGATION,
    _LIT_NOISE,
    _MIN_STARS,
    STAR_MARGIN,
    STAR_SNR,
    _light_orientation,
    _local_background,
    _orientation,
    _round_peaks,
)

# The fits use the 5x5 window around the candidate (its centre: position 12
# of the flattened window).
_RADIUS = 2
_CENTRE = 2 * _RADIUS * (_RADIUS + 1)
# Sub-pixel centres tried, each way (steps of 1/8 px).
_OFFSETS = np.linspace(-0.5, 0.5, 9)
# Widths (Gaussian sigma, px) tried for the stars; at most this many of the
# bright stars measured (the median of a hundred is known to a few per
# cent); fewer than _MIN_STARS (as for their flatness): no width.
_STAR_WIDTHS = np.arange(0.3, 3.0001, 0.05)
_MAX_STARS = 128
# OpenBLAS runs a matrix product of fewer multiply-adds in one thread.
_BLAS_ONE_THREAD = 65536 * 4
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
# A peak whose 5x5 light is elongated (ratio of second moments over
# _TRACK_ELONGATION; round stars: 1-1.3) and is the brightest of its window
# (a star beside a brighter hit is not) is also a hit where an elongated
# profile narrower across than the stars (_ACROSS of their width, along
# _ALONG of it, at _TRACK_ANGLES orientations) fits it better by _ACROSS_GAIN
# than the stars' own profile, round or drawn out along a line as far (a
# trail): a diffuse track, as wide as 0.8-0.95 of the stars, is no star
# across, though round profiles cannot tell. Nothing in the sky is
# narrower than the PSF in any direction. On simulated nights (1024 x
# 1024, realistic and compact hits, FWHM 1.8-4, seeds 0-2) recall rose by
# up to 0.026 (0.01 typical), false flags unchanged but for a faint star
# that a found track ends at; without the brightest-of-window rule, stars
# beside bright hits lost their peaks.
_TRACK_ELONGATION = 1.5
# The chi-square that elongated profile must gain: 9 (3 sigma for one
# parameter), not the round test's 16, as the peak must already be
# elongated and the brightest of its window, which a faint star seldom is.
# On eleven simulated nights of 1024 x 1024 (realistic, compact and sharp
# hits, Gaussian and Moffat beta 2 and 3 stars, FWHM 1.2-4, seeds 0-3), 9
# found 111 more pixels above 5 sigma than 16 (most at FWHM 1.8: recall
# +0.003 to +0.012) and flagged 3 more pixels, all on the sky; 6 found 155
# but flagged 11, 4 of them on stars. (The round test at 9 took a faint
# star of 7 sigma whole.)
_ACROSS_GAIN = 9.0
# ... only where the frame's stars are round: the median moment ratio of
# their light under this (simulated round stars, FWHM 1.2-4, Moffat and
# Gaussian: 1.03-1.22; stars trailed to Gaussian sigma 0.85 by 0.6 px:
# 1.72, whose peaks the test took).
_ROUND_STARS = 1.35
_ACROSS = (0.5, 0.6, 0.7, 0.8)
_ALONG = (1.5, 3.0)
_TRACK_ANGLES = 8
# Sub-pixel samples per pixel each way for the elongated profiles (not
# separable, so not integrated exactly as `_pixel_profiles` is).
_SUBSAMPLE = 4
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
# Where the stars are undersampled, a star's best width on the grid above
# lands a step (0.05 px, 11 % at 0.45) below their median with the pixel
# phase and the real PSF's spread across the frame (the bright stars of
# the Seestar frames binned 2x2: 5th percentile at 0.89 of the median); a
# candidate must fit narrower than the narrower of these shares of the
# stars' width. Simulated star fields of FWHM 0.9 and 1.0 px (512 x 512,
# 40-150 stars, with `undersampled_stars`): bright stars hit 0-10, now 0-1.
_UNDERSAMPLED_SHARES = (0.9, 1.0)
# A flank beside an undersampled star's peak is judged against the frame's
# stars of the nearest pixel phases (`_flank_of_a_star`): this many of them,
# and it may hold their median share of the peak plus this share of it and
# this many times their 10th-90th percentile spread.
_PHASE_NEIGHBOURS = 8
_FLANK_SHARE = 0.3
_FLANK_SPREAD = 2.0
# Undersampled stars that `star_flatness` cannot tell (`undersampled_stars`):
# their best widths (10th to 90th percentile) spread less than this share
# of their median (stars of the simulated camera at FWHM 0.9-1.0: 0.1; the
# Seestar frames binned 2x2: 0.15-0.4; the round hits of simulated
# spectra: 0.56-1.75), which lies between this narrowest width (below it, a
# source puts four fifths of its light in one pixel: a hit) and
# UNDERSAMPLED.
_UNDER_SPREAD = 0.5
_UNDER_NARROWEST = 0.35
# ... and they are round: the median ratio of the second moments of their
# 5x5 light is under this (stars of the simulated camera and of the binned
# Seestar frames: 1.31-1.38; the bright hits of the ESIS darks, short
# tracks most of them: 1.62-2.17, and in one of the twelve frames their
# widths crowd like stars').
_UNDER_ROUND = 1.5
# ... or, with at least `_UNDER_MANY` of them, no more elongated than a round
# profile of their width at their own pixel phase makes them (median ratio
# under this): a Gaussian star of sigma 0.35-0.45 px centred on a pixel
# edge has a moment ratio of 1.5-2.0 (121 of 121 bright stars of such
# fields were hit), its ratio to its round profile's is 0.96-1.04; the
# ESIS darks whose hits' widths crowd have 10 and 12 such peaks (ratios
# 1.02, 1.09), the others 1.06-1.36.
_UNDER_MODEL_ROUND = 1.1
_UNDER_MANY = 30


def _pixel_profiles(offsets, width, radius=_RADIUS):
    """Pixel-integrated 1-D Gaussians centred ``offsets`` px from the middle.

    Shape ``(offsets.size, 2 * radius + 1)``.
    """
    edges = np.arange(-radius, radius + 2) - 0.5
    scaled = (edges[None, :] - offsets[:, None]) / (np.sqrt(2.0) * width)
    return 0.5 * np.diff(erf(scaled), axis=1)


@lru_cache(maxsize=256)
def _templates(width, radius=_RADIUS):
    """Unit 2-D profiles of ``width`` at every sub-pixel centre, as columns.

    On the ``(2 radius + 1)**2`` window. Cached: the stars' widths are one
    grid, a frame's hit widths a few.
    """
    profile = _pixel_profiles(_OFFSETS, width, radius)
    grid = profile[:, None, :, None] * profile[None, :, None, :]
    return grid.reshape(_OFFSETS.size**2, -1).T


def _chi_square(excess, weights, widths):
    """Least chi-square of each window over centres, for each width.

    ``excess`` (data less background) and ``weights`` (inverse variance,
    zero where a pixel is bad) have one row per window; the amplitude is
    fitted, linear. Returns shape ``(n_windows, len(widths))``.
    """
    chi = np.empty((excess.shape[0], len(widths)))
    for k, width in enumerate(widths):
        templates = _templates(round(float(width), 6))
        chi[:, k] = _least_chi_square(excess, weights, templates)
    return chi


def _fine_chi_square(excess, weights, widths):
    """`_chi_square` with the centres fitted to 1/32 px (`_fine_centres`).

    An undersampled star's light moves between its pixels fast with its
    centre: at Gaussian sigma 0.4 px, a bright star 1/16 px off the 1/8 px
    grid of `_templates` missed its own profile by a chi-square of hundreds
    to thousands, far more than a narrower profile did, and was taken for
    a hit (`narrowing`).
    """
    size = 2 * _RADIUS + 1
    count = len(excess)
    values = (weights * excess).reshape(count, size, size)
    windows = weights.reshape(count, size, size)
    total = np.sum(weights * excess * excess, axis=1)
    chi = np.empty((count, len(widths)))
    for k, width in enumerate(widths):
        profile = _pixel_profiles(_FINE_OFFSETS, round(float(width), 6))
        chi[:, k] = total - _fine_centres(values, windows, profile)[3]
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
    chosen = _spread_evenly(peak_rows.size)
    best = _best_widths(
        data, known, peak_rows[chosen], peak_cols[chosen], peak_noise[chosen], cut
    )
    return float(np.median(best))


def _spread_evenly(count):
    """At most `_MAX_STARS` positions spread evenly through ``count``."""
    return np.unique(np.linspace(0, count - 1, _MAX_STARS).astype(int))


def _best_widths(data, known, rows, cols, noise, cut):
    """The width of `_STAR_WIDTHS` that best fits each peak's 5x5 window."""
    excess, weights, _ = _windows(data, known, rows, cols, noise, cut)
    return _STAR_WIDTHS[np.argmin(_chi_square(excess, weights, _STAR_WIDTHS), axis=1)]


def undersampled_stars(data, known, rows, cols, noise, cut):
    """The frame's undersampled stars, where their flatness told nothing.

    At FWHM 1 px the pixel phase unbalances a star's pairs of neighbours
    and spreads its flatness, so that a frame with a few dozen bright stars
    finds no common PSF by `star_flatness`, and the fixed tests take their
    peaks for hits (about 90 % of the bright stars of simulated fields of
    FWHM 0.9-1.0 px with 40-150 stars; 1000 pixels of star cores in the
    Seestar frames binned 2x2). Among the candidates ``rows, cols``, the
    peaks `STAR_SNR` sigma high, lit around and falling off
    (`_round_peaks`, any pair balance), are fitted with the
    pixel-integrated profile of each width of `_STAR_WIDTHS` (the phase is
    fitted too): where at least `_MIN_STARS` of them share an undersampled
    width (`_UNDER_SPREAD`) and are round (`_UNDER_ROUND`), those are the
    frame's stars.

    Returns
    -------
    chosen : 1-D int array or None
        Their positions in ``rows``; None where they are no such stars.
    limit : float or None
        Their flatness limit (as `star_flatness` gives it): the 10th
        percentile of theirs, lowered by `STAR_MARGIN`.
    """
    chosen, flatness, height = _round_peaks(
        data, known, rows, cols, noise, lit=STAR_SNR / 4, roundness=-np.inf
    )
    bright = height > STAR_SNR * noise[chosen]
    chosen, flatness = chosen[bright], flatness[bright]
    if chosen.size < _MIN_STARS:
        return None, None
    some = _spread_evenly(chosen.size)
    chosen, flatness = chosen[some], flatness[some]
    best = _best_widths(data, known, rows[chosen], cols[chosen], noise[chosen], cut)
    middle = float(np.median(best))
    low, high = np.percentile(best, [10, 90])
    if not _UNDER_NARROWEST <= middle < UNDERSAMPLED:
        return None, None
    if high - low >= _UNDER_SPREAD * middle:
        return None, None
    background = _local_background(data, known, rows[chosen], cols[chosen])
    _, elongation = _orientation(data, known, rows[chosen], cols[chosen], background)
    if not (
        np.nanmedian(elongation) < _UNDER_ROUND
        or (
            chosen.size >= _UNDER_MANY
            and np.nanmedian(
                elongation
                / _round_elongation(
                    data, known, rows[chosen], cols[chosen], noise[chosen], middle, cut
                )
            )
            < _UNDER_MODEL_ROUND
        )
    ):
        return None, None
    # Those of the common width (within a grid step and a tenth).
    alike = (np.abs(best - middle) <= 0.1 * middle + 0.05) & (flatness > 0)
    if np.count_nonzero(alike) < _MIN_STARS:
        return None, None
    return chosen[alike], STAR_MARGIN * float(np.percentile(flatness[alike], 10))


def _round_elongation(data, known, rows, cols, noise, width, cut):
    """The moment ratio of the round profile of ``width`` fitted to each peak.

    The profile at the best of its sub-pixel centres (`_templates`), its
    light's second moments on the 5x5 window taken as `_orientation` takes
    the data's: how elongated the pixel phase alone makes a round star.
    """
    best, _ = _best_centres(data, known, rows, cols, noise, width, cut)
    return _light_orientation(_templates(round(float(width), 6))[:, best].T)[1]


def narrower_than_stars(
    data, known, rows, cols, noise, width, cut, shares=None, across=False
):
    """Which candidates are peaks narrower than this frame's stars can be.

    A strict local maximum ``cut`` times its noise above the local
    background whose 5x5 window a pixel-integrated Gaussian of at most 0.8
    of the stars' ``width`` (`star_width`) fits better, by `_CHI_GAIN`,
    than one of the stars' width: a faint compact hit, or a hot pixel on a
    star's peak. A blend, a galaxy or a trailed star is broader and fits
    worse narrow. With ``across`` (the frame's stars are round,
    `round_stars`), also an elongated peak narrower across than the stars
    (`narrower_across`).

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
    gain = narrowing(data, known, rows, cols, noise, width, cut, shares=shares)
    narrower = gain > _CHI_GAIN
    if across and shares is None and width >= UNDERSAMPLED:
        rest = np.flatnonzero(~narrower)
        narrower[rest] = narrower_across(
            data, known, rows[rest], cols[rest], noise[rest], width, cut
        )
    return narrower


def narrower_across(data, known, rows, cols, noise, width, cut):
    """Which candidates are elongated peaks narrower across than the stars.

    A strict local maximum, the brightest of its 5x5 window, ``cut`` times
    its noise above the local background, whose window's light is elongated
    (`_TRACK_ELONGATION`), and which an elongated profile narrower across
    than the stars' ``width`` fits better, by `_ACROSS_GAIN`, than the stars'
    profile, round or drawn out as far along a line (`_elongated_templates`).

    Examples
    --------
    A faint diffuse track (Gaussian sigma 0.55 px across) among stars of
    sigma 0.8 px, and one of those stars:

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> rows, cols = np.mgrid[:15, :15]
    >>> track = 12.0 * np.exp(-((rows - cols) ** 2) / 4 / 0.55**2)
    >>> track *= np.exp(-((rows + cols - 14) ** 2) / 4 / 2.5**2)
    >>> star = 12.0 * np.exp(-((rows - 7) ** 2 + (cols - 7) ** 2) / 2 / 0.8**2)
    >>> known = np.zeros((15, 15), dtype=bool)
    >>> at = (np.array([7]), np.array([7]), np.ones(1))
    >>> [bool(narrower_across(100 + image + rng.normal(0, 1, (15, 15)), known,
    ...                       *at, 0.8, 5.0)[0])
    ...  for image in (track, star)]
    [True, False]
    """
    found = np.zeros(rows.size, dtype=bool)
    value, around = _with_neighbours(data, known, rows, cols)
    chosen = np.flatnonzero(value > np.max(around, axis=1))
    background = _local_background(data, known, rows[chosen], cols[chosen])
    tall = value[chosen] - background > cut * noise[chosen]
    chosen, background = chosen[tall], background[tall]
    # Cheap first: most peaks are round.
    _, elongation = _orientation(data, known, rows[chosen], cols[chosen], background)
    chosen = chosen[elongation > _TRACK_ELONGATION]
    window = window_values(
        data,
        rows[chosen],
        cols[chosen],
        radius=_RADIUS,
        bad=known,
        include_centre=False,
    )
    with np.errstate(invalid="ignore"):
        chosen = chosen[value[chosen] > np.fmax.reduce(window, axis=1)]
    if not chosen.size:
        return found
    excess, weights, _ = _windows(
        data, known, rows[chosen], cols[chosen], noise[chosen], cut
    )
    width = round(float(width), 6)
    star = _least_chi_square(excess, weights, _elongated_templates(width, 1.0, True))
    narrow = np.min(
        [
            _least_chi_square(excess, weights, _elongated_templates(width, share))
            for share in _ACROSS
        ],
        axis=0,
    )
    found[chosen] = star - narrow > _ACROSS_GAIN
    return found


def round_stars(data, known, rows, cols):
    """Whether the stars at ``rows, cols`` (their peaks) are round.

    The median moment ratio of their 5x5 light (`_orientation`) is under
    `_ROUND_STARS`. Stars drawn out by guiding or by the optics are
    narrower across than the round profile that fits them (`star_width`),
    as a track is: `narrower_across` would take their peaks.
    """
    if not rows.size:
        return False
    background = _local_background(data, known, rows, cols)
    _, elongation = _orientation(data, known, rows, cols, background)
    return bool(np.median(elongation) < _ROUND_STARS)


def _least_chi_square(excess, weights, templates):
    """Least chi-square of each window over the columns of ``templates``.

    ``excess`` and ``weights`` as for `_chi_square`; each template's
    amplitude is fitted, linear.
    """
    weighted = weights * excess
    total = np.sum(weighted * excess, axis=1)
    squares = templates * templates
    best = np.empty(len(excess))
    # In blocks of rows small enough that OpenBLAS multiplies each in one
    # thread: the threads of a larger product spin on after it, taking the
    # other core from the compiled kernels (a batch with two processes ran
    # 20 % slower).
    step = max(_BLAS_ONE_THREAD // templates.size, 1)
    for start in range(0, len(excess), step):
        block = slice(start, start + step)
        # The centre has a weight (a candidate is above the background) and
        # every template a share of it: the norm is never zero.
        explained = weighted[block] @ templates
        explained *= explained
        explained /= weights[block] @ squares
        best[block] = np.max(explained, axis=1)
    return total - best


@lru_cache(maxsize=64)
def _elongated_templates(width, across, round_too=False):
    """Unit elongated Gaussians on the 5x5 window, as columns.

    Sigma ``across * width`` across and `_ALONG` times ``width`` along
    (also ``width`` along, a round profile, with ``round_too``), at
    `_TRACK_ANGLES` orientations and centres within half a pixel of the
    middle (quarter-pixel steps), each pixel sampled `_SUBSAMPLE` times
    each way.
    """
    alongs = ((1.0,) if round_too else ()) + _ALONG
    sub = (np.arange(_SUBSAMPLE) + 0.5) / _SUBSAMPLE - 0.5
    offsets = np.arange(-_RADIUS, _RADIUS + 1)
    sub_rows = (offsets[:, None] + sub[None, :]).ravel()
    # Sample points of every pixel: (25 pixels, _SUBSAMPLE**2 samples).
    y = np.repeat(sub_rows.reshape(-1, _SUBSAMPLE), len(offsets), axis=0)
    y = np.repeat(y, _SUBSAMPLE, axis=1)
    x = np.tile(sub_rows.reshape(-1, _SUBSAMPLE), (len(offsets), _SUBSAMPLE))
    columns = []
    for angle in np.arange(_TRACK_ANGLES) * np.pi / _TRACK_ANGLES:
        cos, sin = np.cos(angle), np.sin(angle)
        for along in alongs:
            for centre_y in np.linspace(-0.5, 0.5, 5):
                for centre_x in np.linspace(-0.5, 0.5, 5):
                    dy, dx = y - centre_y, x - centre_x
                    u = (dx * cos + dy * sin) / (along * width)
                    v = (dy * cos - dx * sin) / (across * width)
                    profile = np.exp(-0.5 * (u * u + v * v)).mean(axis=1)
                    columns.append(profile / profile.sum())
    return np.array(columns).T


def fits_a_star(data, known, rows, cols, noise, width, cut, shares=None, stars=None):
    """Which candidates lie on a source that the stars' profile fits.

    Lit around (its brightest neighbour `_LIT_NOISE` sigma above the local
    background: a lone hot pixel's neighbours are sky), round (the light of
    its 5x5 window elongated less than `_ELONGATION`: a track's is more),
    and at the peak it lies on (`narrowing` with ``climb``), a profile
    narrower than the stars' ``width`` fits no better than theirs, by
    `_STAR_FIT`. With the frame's ``stars`` (rows, columns and noise of its
    bright peaks), a candidate beside a star's peak that these tests call
    no star is the star's flank where it holds what the frame's stars of
    that pixel phase hold there (`_flank_of_a_star`).
    """
    gain = narrowing(
        data, known, rows, cols, noise, width, cut, climb=True, shares=shares
    )
    around = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    background = _local_background(data, known, rows, cols)
    # A track's light in its 5x5 window is elongated (as `oblique_tracks`
    # asks); a star's is round.
    _, elongation = _orientation(data, known, rows, cols, background)
    with np.errstate(invalid="ignore"):
        lit = np.fmax.reduce(around, axis=1) - background > _LIT_NOISE * noise
        star = lit & (gain < _STAR_FIT) & (elongation < _ELONGATION)
    if stars is not None:
        # Measured about the candidate, an undersampled star's flank, its
        # peak beside it, looks elongated.
        odd = np.flatnonzero(~star)
        star[odd] = _flank_of_a_star(
            data, known, rows[odd], cols[odd], noise[odd], width, cut, stars
        )
    return star


def _best_centres(data, known, rows, cols, noise, width, cut, left_out=None):
    """The best sub-pixel centre of the profile of ``width`` on 5x5 windows.

    Returns the index of its template (a column of `_templates`) and the
    windows' excess over the local background (`_windows`); ``left_out``
    pixels take no part in the fit.
    """
    excess, weights, _ = _windows(data, known, rows, cols, noise, cut)
    if left_out is not None:
        weights = np.where(left_out, 0.0, weights)
    size = 2 * _RADIUS + 1
    profile = _pixel_profiles(_OFFSETS, round(float(width), 6))
    tried = np.broadcast_to(profile, (len(excess), *profile.shape))
    best, _, _ = _separable_fit(
        (weights * excess).reshape(-1, size, size),
        weights.reshape(-1, size, size),
        tried,
        tried,
    )
    return best, excess


def _star_phases(data, known, rows, cols, noise, width, cut, left_out=None):
    """Sub-pixel centres of the profile of ``width`` fitted to 5x5 windows.

    Returns the centres (row and column offsets from the window's centre
    pixel, on the grid of `_OFFSETS`) and the windows' excess
    (`_best_centres`).
    """
    best, excess = _best_centres(data, known, rows, cols, noise, width, cut, left_out)
    row, col = np.divmod(best, _OFFSETS.size)
    return np.stack([_OFFSETS[row], _OFFSETS[col]], axis=1), excess


def _with_neighbours(data, known, rows, cols):
    """Each pixel's value and its eight neighbours' (bad or outside: -inf).

    The neighbours in the order of the 3x3 window, its centre left out
    (-inf too).
    """
    value = np.asarray(data[rows, cols], dtype=np.float64)
    around = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    return value, np.nan_to_num(around, nan=-np.inf)


def _brightest_neighbour(around):
    """Row and column steps to each pixel's brightest neighbour, and its value.

    ``around``: the neighbours from `_with_neighbours`.
    """
    brightest = np.argmax(around, axis=1)
    value = around[np.arange(len(around)), brightest]
    return brightest // 3 - 1, brightest % 3 - 1, value


def _flank_of_a_star(data, known, rows, cols, noise, width, cut, stars):
    """Whether each candidate is the flank of the star whose peak it touches.

    The frame's own PSF at each pixel phase: the frame's ``stars`` (rows,
    columns, noise of its bright peaks) are fitted with the profile of
    ``width`` for their sub-pixel centres (`_star_phases`), and their 5x5
    light taken as shares of their peak. A candidate below a neighbour that
    is a strict local maximum is that star's flank where it holds no more
    than what the `_PHASE_NEIGHBOURS` stars of the nearest phases hold
    there (their median share of the peak, the star's centre fitted
    without the candidate), plus ``cut`` times its noise, `_FLANK_SPREAD`
    times their 10th-90th percentile spread and `_FLANK_SHARE` of that
    median. A hot pixel beside the peak holds more; an undersampled star's
    flank, which the tests measured about the candidate take for a hit
    (its peak is off centre there), does not.
    """
    flank = np.zeros(rows.size, dtype=bool)
    value, around = _with_neighbours(data, known, rows, cols)
    dy, dx, brightest = _brightest_neighbour(around)
    chosen = np.flatnonzero(brightest > value)
    dy, dx = dy[chosen], dx[chosen]
    peak_rows, peak_cols = rows[chosen] + dy, cols[chosen] + dx
    peak_value, peak_around = _with_neighbours(data, known, peak_rows, peak_cols)
    is_peak = peak_value > np.max(peak_around, axis=1)
    chosen, dy, dx = chosen[is_peak], dy[is_peak], dx[is_peak]
    if not chosen.size:
        return flank
    peak_rows, peak_cols = peak_rows[is_peak], peak_cols[is_peak]
    star_rows, star_cols, star_noise = stars
    phases, light = _star_phases(
        data, known, star_rows, star_cols, star_noise, width, cut
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = light / light[:, _CENTRE, None]
    # The candidate's place in its star's 5x5 window.
    at = (_RADIUS - dy) * (2 * _RADIUS + 1) + (_RADIUS - dx)
    left_out = np.zeros((chosen.size, (2 * _RADIUS + 1) ** 2), dtype=bool)
    left_out[np.arange(chosen.size), at] = True
    phase, excess = _star_phases(
        data, known, peak_rows, peak_cols, noise[chosen], width, cut, left_out
    )
    distance = np.sum((phase[:, None, :] - phases[None, :, :]) ** 2, axis=2)
    nearest = np.argsort(distance, axis=1)[:, :_PHASE_NEIGHBOURS]
    alike = shares[nearest, at[:, None]]
    low, middle, high = np.nanpercentile(alike, [10, 50, 90], axis=1)
    peak = excess[:, _CENTRE]
    allowed = peak * ((1 + _FLANK_SHARE) * middle + _FLANK_SPREAD * (high - low))
    with np.errstate(invalid="ignore"):
        flank[chosen] = excess[np.arange(chosen.size), at] <= (
            allowed + cut * noise[chosen]
        )
    return flank


def profile_misfit(data, known, rows, cols, noise, width, cut):
    """How far the stars' profile misses each pixel's 5x5 window.

    The rms residual of the best fit of the profile of ``width`` (amplitude
    and centre free, as `narrowing` fits it) on the good pixels of the
    window (`_windows`), as a share of the pixel's height over the local
    background. A star's core gives a few per cent (its real shape, its
    noise); the middle of a track, whose light falls to the sky on one side
    within a pixel, far more.

    Examples
    --------
    >>> import numpy as np
    >>> rows, cols = np.mgrid[:15, :15]
    >>> star = 100 + 400 * np.exp(-((rows - 7) ** 2 + (cols - 7) ** 2) / 2.0)
    >>> track = np.full((15, 15), 100.0)
    >>> track[rows == cols] = 500.0
    >>> track[np.abs(rows - cols) == 1] = 150.0
    >>> known = np.zeros((15, 15), dtype=bool)
    >>> at = (np.array([7]), np.array([7]), np.ones(1))
    >>> [round(float(profile_misfit(image, known, *at, 1.0, 5.0)[0]), 2)
    ...  for image in (star, track)]
    [0.02, 0.38]
    """
    excess, weights, _ = _windows(data, known, rows, cols, noise, cut)
    chi = _chi_square(excess, weights, [width])[:, 0]
    used = np.count_nonzero(weights, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.maximum(chi, 0.0) / used) * noise / excess[:, _CENTRE]


def narrowing(data, known, rows, cols, noise, width, cut, *, climb=False, shares=None):
    """How much better a narrower profile fits each candidate than the stars'.

    The least chi-square at ``shares`` of the stars' ``width`` less the
    least at `_NARROW` of it, on the 5x5 window (`_windows`); NaN where the
    candidate is no strict local maximum ``cut`` times its noise above the
    local background. With
    ``climb``, a candidate below a good neighbour is judged at its brightest
    one: the peak of the source it lies on (an undersampled star's other
    candidates are next to its peak). By default ``shares`` is 1, and
    `_UNDERSAMPLED_SHARES` for undersampled stars.
    """
    value, around = _with_neighbours(data, known, rows, cols)
    if climb:
        dy, dx, brightest = _brightest_neighbour(around)
        below = brightest > value
        rows = rows + np.where(below, dy, 0)
        cols = cols + np.where(below, dx, 0)
        value, around = _with_neighbours(data, known, rows, cols)
    chosen = np.flatnonzero(value > np.max(around, axis=1))
    excess, weights, background = _windows(
        data, known, rows[chosen], cols[chosen], noise[chosen], cut
    )
    gain = np.full(rows.size, np.nan)
    tall = value[chosen] - background > cut * noise[chosen]
    chosen, excess, weights = chosen[tall], excess[tall], weights[tall]
    if not chosen.size:
        return gain
    if shares is None:
        shares = _UNDERSAMPLED_SHARES if width < UNDERSAMPLED else (1.0,)
    widths = [share * width for share in tuple(shares) + _NARROW]
    # Fields of 121 Gaussian stars of sigma 0.4 and 0.45 px (three each):
    # 54 and 38 of the 363 stars lost their cores with the 1/8 px centres,
    # 12 and 16 with centres to 1/32 px.
    fit = _fine_chi_square if width < UNDERSAMPLED else _chi_square
    chi = fit(excess, weights, widths)
    stars = len(shares)
    gain[chosen] = np.min(chi[:, :stars], axis=1) - np.min(chi[:, stars:], axis=1)
    return gain


# Defects on stars (`defects_on_stars`). The star's profile is fitted on the
# 5x5 window of its peak and compared with the data out to three pixels
# from it; a pixel's excess is judged against its eight neighbours' in a
# 9x9 window.
_FIT_RADIUS = 2
_ON_STAR_RADIUS = 3
_STAR_REACH = _ON_STAR_RADIUS + 1
# How far the stars' profile misses them (`_misfit_limits`): this many times
# the median share of a star's flux by which it misses the brighter half of
# the bright peaks, per offset from the peak (for a Gaussian, 4 times the
# median absolute value is 6 sigma). A median, not a high quantile, so that
# the defects on the learning stars themselves do not widen it: with 25-
# sigma hot pixels on 8 of the 40 bright stars of a 256 x 256 frame, the
# 99th percentile let only 3-6 of them through, this 6-8. On the simulated
# camera (bench_quality, seeds 0 and 1) 3 found a few more defects on stars
# at the price of a bright star hit (seed 1, FWHM 1.8); 6 found fewer.
_MISFIT_SPREAD = 4.0
# From this many pixels out (the larger offset) the noise and that limit
# add in quadrature (`_above_misfit`).
_QUADRATURE_FROM = 2
# ... and the noise of a pixel that the profile misses by this many sigma
# does not make its star unclean.
_MISFIT_NOISE = 3.0
# A defect's neighbours' excesses (their median, less the typical misfit
# there: a quarter of the limit above) are below this share of its own: a
# fainter star on the flank of a brighter one is as broad as the stars (the
# median of its eight neighbours holds about 0.22 of its peak at FWHM 1.8).
# Simulated 256 x 256 fields of 400 and 800 stars (18 of them, FWHM 1.8-4):
# 8 pixels of faint stars taken for defects with 0.3 and no misfit allowed
# for, 4 now; the defects on stars that bench_quality finds (seeds 0 and 1,
# sharp events) hold at most 0.10. With the stars' common misfit taken off
# (`_common_misfit`) the limits are tighter and more faint stars reach the
# test: 0.2 then let 6 more through in those fields (119 flagged pixels in
# all; 113 at 0.1, as before it), and 0.1 finds the same defects.
_NEIGHBOUR_SHARE = 0.1
# Fewer bright peaks than this in an offset class: no limit (nothing found
# there).
_MISFIT_SAMPLES = 20
# The stars' common misfit is learned only where they are round: the median
# ratio of the second moments of their light is under this.
_COMMON_ROUND = 1.3
# The stars are fitted at sub-pixel centres 1/32 px apart: at the 1/8 px of
# `_OFFSETS` a star of FWHM 1.8 px may sit 1/16 px off its fit, which moves
# up to 0.5 % of its flux between the pixels beside its peak, more than a
# 10-sigma defect there on a star of 1e5 ADU.
_FINE_OFFSETS = np.linspace(-0.5, 0.5, 33)
# The frame's PSF at a star's pixel phase is learned from its brightest
# stars (`_learning_stars`), which also set the limits (`_misfit_limits`):
# in fainter ones the noise, not the PSF, makes most of the misfit. The
# brightest quarter of the bright peaks, but at least this many of the
# brighter half, so that `_PHASE_NEIGHBOURS` of them lie near each phase.
_PSF_SHARE = 0.25
_PSF_MIN_STARS = 64
# The sky under a star is measured this many of its Gaussian widths out,
# to the nearest pixel (`_star_background`). The 7x7 window of the
# sharpness tests lies on the star itself when the stars are broad: the
# sides of a Moffat star of FWHM 4 (beta 3), three pixels out, hold 0.15 of
# its peak (median), and the stars' fits, made on that sky, missed their
# wings by a ring (10 sigma five pixels out on a bright star). Four widths
# out: 5 and 6 pixels at FWHM 2.6 and 4 (widths 1.15 and 1.5), the 7x7
# still at FWHM 1.8 (width 0.85) and below. Hot pixels of 20 sigma beside
# the peaks of such stars (FWHM 4, four fields): 34 of 40 found, 27
# before. On seven simulated nights (1024 x 1024: realistic and compact
# hits, seeds 0 and 1; Gaussian stars, undersampled stars, sharp hits) the
# defects on stars found rose by one pixel in three of the 21 frames (FWHM
# 2.6 and 4), with nothing else changed. At FWHM 1.8, four pixels out
# (the width rounded up) found one more but took 5 faint stars for
# defects in crowded fields (800 stars on 256 x 256, three seeds), where
# the 7x7 takes 3.
_SKY_WIDTHS = 4.0


def _offset_grid(radius):
    """Row and column offsets of a flattened ``(2 radius + 1)**2`` window."""
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    return dy.ravel(), dx.ravel()


_DY, _DX = _offset_grid(_STAR_REACH)
_IN_FIT = np.maximum(np.abs(_DY), np.abs(_DX)) <= _FIT_RADIUS
_ON_STAR = np.maximum(np.abs(_DY), np.abs(_DX)) <= _ON_STAR_RADIUS
# Offset classes, alike under the star's symmetries: 4 * nearer + farther.
# (Beyond three pixels, where nothing is judged, clipped to the last.)
_MISFIT_CLASS = 4 * np.minimum(
    np.minimum(np.abs(_DY), np.abs(_DX)), _ON_STAR_RADIUS
) + np.minimum(np.maximum(np.abs(_DY), np.abs(_DX)), _ON_STAR_RADIUS)
_N_CLASSES = 4 * _ON_STAR_RADIUS + _ON_STAR_RADIUS + 1


def _neighbour_positions():
    """Positions of the eight neighbours of each pixel within 3 of the peak."""
    size = 2 * _STAR_REACH + 1
    centres = np.flatnonzero(_ON_STAR)
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    return np.array(
        [[centre + dy * size + dx for dy, dx in steps] for centre in centres]
    )


_NEIGHBOURS = _neighbour_positions()


def _star_background(data, known, rows, cols, width):
    """The sky around each star of ``width``, beyond its light.

    The lowest median of the four sides of a square `_SKY_WIDTHS` times the
    width out (at least the 7x7 of `_local_background`).
    """
    radius = max(_BACKGROUND_RADIUS, round(_SKY_WIDTHS * width))
    return lowest_side_median(data, rows, cols, radius=radius, bad=known)


def _star_windows(data, known, rows, cols, width):
    """The 9x9 windows of the stars, less the sky around them (bad: NaN)."""
    values = window_values(data, rows, cols, radius=_STAR_REACH, bad=known)
    return values - _star_background(data, known, rows, cols, width)[:, None]


def _star_residuals(excess, width, left_out=None):
    """What the stars' profile leaves of each star's window ``excess``.

    The profile of ``width`` (amplitude and centre fitted, the centre to
    1/32 px, `_FINE_OFFSETS`; one weight for all pixels, as `star_width`
    does) on the 5x5 window of each peak, less the pixels ``left_out``.
    Returns the residuals (NaN where a pixel is bad), the fitted amplitudes
    (the stars' fluxes), the fitted centres (row and column offsets from
    the peak, px) and the fitted profiles (the stars' light at every pixel
    of the window, bad ones too).
    """
    used = np.isfinite(excess) & _IN_FIT
    if left_out is not None:
        used &= ~left_out
    count, size = len(excess), 2 * _STAR_REACH + 1
    fit = slice(_STAR_REACH - _FIT_RADIUS, _STAR_REACH + _FIT_RADIUS + 1)
    weights = used.reshape(count, size, size)[:, fit, fit].astype(np.float64)
    values = np.where(used, excess, 0.0).reshape(count, size, size)[:, fit, fit]
    profile = _pixel_profiles(_FINE_OFFSETS, round(float(width), 6), _STAR_REACH)
    row, col, amplitude, _ = _fine_centres(values, weights, profile[:, fit])
    model = profile[row][:, :, None] * profile[col][:, None, :]
    light = amplitude[:, None] * model.reshape(count, -1)
    centre = np.stack([_FINE_OFFSETS[row], _FINE_OFFSETS[col]], axis=1)
    return excess - light, amplitude, centre, light


def _fine_centres(values, weights, profile):
    """The best centre of each window on the grid of `_FINE_OFFSETS`.

    ``values`` (weighted) and ``weights``: the windows (n, k, k);
    ``profile``: the 1-D profiles (`_pixel_profiles`) at `_FINE_OFFSETS`
    on k pixels. The centre on the 1/8 px grid of `_OFFSETS` first, then
    on the fine grid within 1/8 px of it: on 600 noisy Gaussian stars the
    same centres as a search of the whole fine grid, at a tenth of the
    cost. Returns the row and column centres (indices of `_FINE_OFFSETS`),
    the amplitudes and the chi-square they explain (`_separable_fit`).
    """
    count = len(values)
    step = (_FINE_OFFSETS.size - 1) // (_OFFSETS.size - 1)
    coarse = np.broadcast_to(profile[::step], (count, _OFFSETS.size, profile.shape[1]))
    best, _, _ = _separable_fit(values, weights, coarse, coarse)
    near = np.arange(-step, step + 1)
    row_at, col_at = (
        np.clip(step * index[:, None] + near, 0, _FINE_OFFSETS.size - 1)
        for index in np.divmod(best, _OFFSETS.size)
    )
    best, amplitude, explained = _separable_fit(
        values, weights, profile[row_at], profile[col_at]
    )
    row = row_at[np.arange(count), best // near.size]
    col = col_at[np.arange(count), best % near.size]
    return row, col, amplitude, explained


def _separable_fit(values, weights, row_profiles, col_profiles):
    """The best of the centres tried for each window, and its amplitude.

    ``values`` (weighted) and ``weights``: the windows (n, k, k);
    ``row_profiles`` and ``col_profiles``: the 1-D profiles (n, m, k) of
    the row and column centres tried. The profile at a centre is the
    product of its row's and column's, so each least-squares fit is two
    small matrix products. Returns the index of the best centre
    (``row * m + col``, as the columns of `_templates`), its amplitude and
    the chi-square it explains (the weighted sum of squares less the fit's
    chi-square).
    """
    count = len(values)
    cols_t = np.swapaxes(col_profiles, 1, 2)
    explained = (row_profiles @ values @ cols_t).reshape(count, -1)
    norm = (row_profiles**2 @ weights @ cols_t**2).reshape(count, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        amplitude = explained / norm
    score = np.nan_to_num(explained * amplitude, nan=-np.inf)
    best = np.argmax(score, axis=1)
    at = np.arange(count)
    return best, amplitude[at, best], score[at, best]


def _sharp_excess(residual):
    """Each residual within three pixels of the peak less its neighbours' median.

    A profile that misses a star's real shape misses it smoothly, the
    neighbours alike; a defect stands alone. NaN beyond three pixels.
    Returns that and the neighbours' median.
    """
    typical = _median(residual[:, _NEIGHBOURS])
    sharp = np.full(residual.shape, np.nan)
    sharp[:, _ON_STAR] = residual[:, _ON_STAR] - typical
    return sharp, typical


def _median(values):
    """Median over the last axis, NaN left out (NaN where all are)."""
    values = np.asarray(values, dtype=np.float64)
    if not values.shape[-1]:
        return np.full(values.shape[:-1], np.nan)
    return row_median(values.reshape(-1, values.shape[-1])).reshape(values.shape[:-1])


def _window_noise(noise_at, shape, rows, cols):
    """The noise of every pixel of the 9x9 windows (infinite outside the image)."""
    window_rows = rows[:, None] + _DY[None, :]
    window_cols = cols[:, None] + _DX[None, :]
    inside = (window_rows >= 0) & (window_rows < shape[0])
    inside &= (window_cols >= 0) & (window_cols < shape[1])
    noise = np.full(window_rows.shape, np.inf)
    noise[inside] = noise_at(window_rows[inside], window_cols[inside])
    return noise, window_rows, window_cols


def _common_misfit(residual, flux, centre, width, elongation, learning):
    """What the stars' profile misses on this frame's stars at each pixel phase.

    ``residual``, ``flux`` and ``centre``: the fits of the frame's bright
    stars (`_star_residuals`, profile of ``width``). A Gaussian misses a
    real star's shape (a Moffat's sharper core and broader wings) the same
    way on every star of one pixel phase: for each star, the median, over
    the `_PHASE_NEIGHBOURS` stars of the nearest fitted centres among the
    brightest (``learning``, `_learning_stars`; the star itself left out),
    of each window pixel's residual as a share of the star's flux. Added to
    the profile it makes the frame's own PSF at that phase, learned from
    its stars; what is left is the noise, the pixels' response and the
    defects.
    Zero where the stars are undersampled (``width`` under `UNDERSAMPLED`:
    `_flank_of_a_star` judges their flanks; with a median over all phases,
    5 of 58 bright stars of a field of FWHM 0.9 were hit), where they are
    not round (the median moment ratio of their 5x5 light, ``elongation``,
    `_COMMON_ROUND` or more: fields of 121 Gaussian stars of sigma 0.6-0.7
    by 0.85-0.9 px, ratios 1.48-1.70, had 1-14 % of them hit with a median
    over all phases, 0-2 % without it; round stars 1.04-1.17), or where
    fewer than `_MIN_STARS` / 2 are bright.

    Returns
    -------
    2-D array, one row per star
        The shares; zero where nothing is learned.

    Notes
    -----
    One median over all the stars (the first version) left the pixel
    phase in the misfit: on the brightest tenth of the stars of a simulated
    night (FWHM 1.8, 1/8 px centres) the profile missed the pixels beside
    the peak by 0.27 % of the flux (median), 0.13 % with the phase. On the
    simulated camera (`bench_quality` nights of seeds 0 and 1 and one of
    charge spread 0.25-0.6 px, FWHM 1.8-4) the defects on stars found above
    5 sigma rose from 62 to 65 of 119 (above 20 sigma from 50 to 53 of
    58), with the same false flags and bright stars hit; in fields of 100
    Moffat stars (beta 3, four fields each) 10-sigma hot pixels beside the
    peaks were found 1 and 9 times of 40 at FWHM 2.0 and 2.6, now 16 and
    23, none on a clean star.
    """
    no_misfit = np.zeros(residual.shape)
    if width < UNDERSAMPLED or elongation >= _COMMON_ROUND:
        return no_misfit
    if np.count_nonzero(flux >= np.median(flux)) < _MIN_STARS // 2:
        return no_misfit
    # A star centred at a negative row offset from its peak pixel is seen
    # turned half round: an elliptical star (round, or trailed in any
    # direction) looks the same so, and twice as many stars lie near each
    # phase. (Flips and transposes would give eight times as many for round
    # stars, but in fields of Gaussian stars of sigma 1.0 by 0.9 px 55 of
    # 1452 were then hit, none so.)
    turn = (centre[:, 0] < 0) | ((centre[:, 0] == 0) & (centre[:, 1] < 0))
    centre = np.where(turn[:, None], -centre, centre)
    residual = np.where(turn[:, None], residual[:, ::-1], residual)
    learning = np.flatnonzero(learning)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = residual[learning] / flux[learning, None]
        # Defects on the learning stars are left out: the pixels that stand
        # out of the median over all of them beyond `_misfit_limits`.
        off = share - _median(share.T)
        limits = _misfit_limits(off, np.ones(learning.size), slice(None))
        share[_sharp_excess(off)[0] > limits[_MISFIT_CLASS]] = np.nan
    rows = centre[:, None, 0] - centre[None, learning, 0]
    cols = centre[:, None, 1] - centre[None, learning, 1]
    # The centres lie on a grid: of stars as near, the first is taken.
    distance = rows * rows + cols * cols + 1e-9 * np.arange(learning.size)
    distance[learning, np.arange(learning.size)] = np.inf
    alike = min(_PHASE_NEIGHBOURS, learning.size - 1)
    nearest = np.argpartition(distance, alike - 1, axis=1)[:, :alike]
    common = np.nan_to_num(_median(np.swapaxes(share[nearest], 1, 2)))
    return np.where(turn[:, None], common[:, ::-1], common)


def _above_misfit(sharp, floor, allowed, width):
    """Which sharp excesses (`_sharp_excess`) stand out of a star's fit.

    Beyond ``floor`` (``cut`` times each pixel's noise) and what the
    profile may miss there (``allowed``, `_misfit_limits`). Near the peak
    the two add: the pixel phase makes the misfit there, and it varies
    from star to star. From `_QUADRATURE_FROM` pixels out they add in
    quadrature, as independent errors do: there the limit is mostly the
    noise of the stars it was learned on (their sharp excess two and three
    pixels out is 0.7-1.0 times their noise, median, on a simulated night
    of FWHM 1.8), which ``floor`` already counts. Eleven simulated nights
    (FWHM 1.2-4, Gaussian and Moffat stars, seeds 0-3): 12 more pixels of
    hits on stars' flanks found, none lost, no more false flags; from one pixel
    out 16 more, but one lost and two stars' pixels flagged. Not where the
    stars are undersampled (``width`` under `UNDERSAMPLED`): no PSF is
    learned there.
    """
    over = sharp > floor + allowed
    if width >= UNDERSAMPLED:
        far = np.maximum(np.abs(_DY), np.abs(_DX)) >= _QUADRATURE_FROM
        over[:, far] = sharp[:, far] > np.hypot(floor[:, far], allowed[:, far])
    return over


def _refitted(excess, first_fit, width, floor, limit, common=0.0):
    """The stars' fits without the pixels that stood out of a first one.

    ``excess``: the stars' windows (`_star_windows`); ``first_fit``: their
    residuals and fluxes under the profile of ``width`` (`_star_residuals`).
    With the ``common`` misfit (`_common_misfit`) added to the profile, the
    pixels whose residual passes ``floor`` plus ``limit`` (by pixel, a
    share of the flux: `_misfit_limits`) times the star's flux are left
    out, and the fit is made again. Returns the residuals, their sharp
    excesses and their neighbours' median (`_sharp_excess`), what the
    profile may miss at each pixel (``limit`` times the flux), and the
    stars' light in the fit (the profile with the common misfit) at every
    pixel.
    """
    residual, flux = first_fit
    residual = residual - common * flux[:, None]
    first = residual > floor + limit * flux[:, None]
    residual, flux, _, light = _star_residuals(excess, width, left_out=first)
    residual -= common * flux[:, None]
    sharp, typical = _sharp_excess(residual)
    return (
        residual,
        sharp,
        typical,
        limit * flux[:, None],
        light + common * flux[:, None],
    )


def _learning_stars(flux):
    """Which of the stars of fluxes ``flux`` teach the frame's PSF.

    The brightest `_PSF_SHARE` of them, at least `_PSF_MIN_STARS`, at most
    the brighter half.
    """
    count = max(int(np.ceil(_PSF_SHARE * flux.size)), _PSF_MIN_STARS)
    count = min(count, np.count_nonzero(flux >= np.median(flux)))
    chosen = np.zeros(flux.size, dtype=bool)
    chosen[np.argsort(-flux, kind="stable")[:count]] = True
    return chosen


def _misfit_limits(residual, flux, bright=None):
    """How far the stars' profile misses this frame's stars, by offset.

    ``residual`` and ``flux``: the fits of the frame's bright stars
    (`_star_residuals`). The profile misses them where their real shape
    differs from it (a Moffat's wings, the pixel phase). On the stars
    ``bright`` (by default the brighter half), whose misfit stands above
    their noise, each pixel's sharp excess (`_sharp_excess`) as a share of
    the star's flux: `_MISFIT_SPREAD` times its median absolute value in
    each offset class (`_MISFIT_CLASS`); infinite where a class has fewer
    than `_MISFIT_SAMPLES` pixels.
    """
    if bright is None:
        bright = flux >= np.median(flux)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.abs(_sharp_excess(residual[bright])[0]) / flux[bright, None]
    limits = np.full(_N_CLASSES, np.inf)
    for klass in range(_N_CLASSES):
        values = share[:, _MISFIT_CLASS == klass]
        values = values[np.isfinite(values)]
        if values.size >= _MISFIT_SAMPLES:
            limits[klass] = _MISFIT_SPREAD * np.median(values)
    return limits


def defects_on_stars(data, known, rows, cols, width, noise_at, cut):
    """Hot pixels on the frame's stars, found by the stars' profile.

    The stars ``rows, cols`` (the bright round peaks, `bright_peaks`) are
    fitted with their profile (``width``, `star_width`) on their 5x5
    windows above the sky around them (`_star_background`), at their
    centres to 1/32 px (`_star_residuals`), and what it
    misses on the brightest stars of the nearest centres is added to it
    (`_common_misfit`: the frame's PSF at each pixel phase); how far it
    still misses the brightest stars sets, by offset from the peak, what it
    may miss (`_misfit_limits`). Each star that is the brightest of its 5x5
    window is then fitted again without the pixels that stood out of the
    first fit. A pixel within three pixels of its peak (the peak itself
    too, unless the stars are undersampled) is a defect when its sharp
    excess over that fit (`_sharp_excess`) passes ``cut`` times its noise
    (``noise_at(rows, cols)``) plus the limit times the star's flux, stands
    above every neighbour's excess and more than 1 / `_NEIGHBOUR_SHARE`
    times their median (less the typical misfit there), and no neighbour
    passes too (a fainter star on the flank of a brighter one stands out
    over several pixels). A star that the Gaussian profile alone misses
    anywhere else by more than its own limit and `_MISFIT_NOISE` sigma (a
    blend, a galaxy) gives nothing.

    Returns
    -------
    def_rows, def_cols : 1-D int arrays
        The defects.
    star_light : (1-D int array, 1-D int array, 1-D float array, tuple)
        The pixels within three pixels of the peaks of the stars that the
        profile fits (no blend), what those stars give there (their fit
        with the frame's PSF, and the sky around them: the estimate that
        replaces a bad pixel there), and their stars' peaks (rows, cols).

    Examples
    --------
    Thirty-six Gaussian stars of sigma 1 px, 20 px apart; a 40-sigma hot
    pixel two pixels from the peak of one, where its pixel holds about a
    tenth of the peak:

    >>> import numpy as np
    >>> from scipy.special import erf
    >>> rng = np.random.default_rng(1)
    >>> rows, cols = np.mgrid[:120, :120]
    >>> def share(pixel, centre):
    ...     edges = (pixel - centre + np.array([[[0.5]], [[-0.5]]])) / np.sqrt(2)
    ...     return 0.5 * (erf(edges[0]) - erf(edges[1]))
    >>> sky = np.full((120, 120), 100.0)
    >>> for y in range(10, 120, 20):
    ...     for x in range(10, 120, 20):
    ...         y0, x0 = rng.uniform(-0.5, 0.5, 2)
    ...         sky += 1e5 * share(rows, y + y0) * share(cols, x + x0)
    >>> data = rng.poisson(sky).astype(float)
    >>> y, x = np.unravel_index(np.argmax(data[40:60, 40:60]), (20, 20))
    >>> y, x = int(y) + 40, int(x) + 40
    >>> data[y, x + 2] += 40 * np.sqrt(data[y, x + 2])
    >>> known = np.zeros(data.shape, dtype=bool)
    >>> from scipy.ndimage import maximum_filter
    >>> stars = (data == maximum_filter(data, size=5)) & (data > 1000)
    >>> star_rows, star_cols = np.nonzero(stars)
    >>> found = defects_on_stars(
    ...     data, known, star_rows, star_cols, 1.0,
    ...     lambda r, c: np.sqrt(data[r, c]), cut=5.0,
    ... )
    >>> [(int(r) - y, int(c) - x) for r, c in zip(found[0], found[1])]
    [(0, 2)]

    What the star gives there, without the hot pixel, is about 40 times the
    pixel's noise below its value:

    >>> light_rows, light_cols, light, _ = found[2]
    >>> there = (light_rows == y) & (light_cols == x + 2)
    >>> bool(data[y, x + 2] - light[there][0] > 30 * np.sqrt(data[y, x + 2]))
    True
    """
    empty = np.array([], dtype=int)
    if rows.size < _MIN_STARS:
        return empty, empty, (empty, empty, np.array([]), (empty, empty))
    excess = _star_windows(data, known, rows, cols, width)
    residual, flux, centre, _ = _star_residuals(excess, width)
    background = _star_background(data, known, rows, cols, width)
    _, elongation = _orientation(data, known, rows, cols, background)
    learning = _learning_stars(flux)
    common = _common_misfit(
        residual, flux, centre, width, np.median(elongation), learning
    )
    # How far the Gaussian profile misses the stars, and the frame's PSF.
    plain_limit = _misfit_limits(residual, flux)[_MISFIT_CLASS]
    limit = _misfit_limits(residual - common * flux[:, None], flux, learning)
    limit = limit[_MISFIT_CLASS]
    # The star's own peak, not a bump of noise on its broad top.
    window = excess[:, _IN_FIT]
    top = np.nan_to_num(window, nan=-np.inf).argmax(axis=1) == window.shape[1] // 2
    rows, cols, excess, common = rows[top], cols[top], excess[top], common[top]
    background = background[top]
    first_fit = residual[top], flux[top]
    window_noise, window_rows, window_cols = _window_noise(
        noise_at, np.shape(data), rows, cols
    )
    with quiet_numerics():
        residual, sharp, typical, allowed, light = _refitted(
            excess, first_fit, width, cut * window_noise, limit, common
        )
        over = _above_misfit(sharp, cut * window_noise, allowed, width)
        if width < UNDERSAMPLED:
            # Where the stars are undersampled their peaks are the pixel
            # phase's (in fields of Gaussian stars of sigma 0.4 px, two
            # more stars were hit with them judged). Elsewhere a peak is
            # judged too: beside the peak of a broad star a hot pixel
            # becomes its peak (25 of 40 hot pixels of 20 sigma beside the
            # peaks of Moffat stars of FWHM 3.5 did, and were missed; now
            # 30 of the 40 are found).
            over[:, _DY.size // 2] = False
        around = residual[:, _NEIGHBOURS]
        alone = np.zeros_like(over)
        alone[:, _ON_STAR] = (
            (
                typical - allowed[:, _ON_STAR] / _MISFIT_SPREAD
                < _NEIGHBOUR_SHARE * residual[:, _ON_STAR]
            )
            & (np.nanmax(around, axis=2) < residual[:, _ON_STAR])
            & ~np.any(over[:, _NEIGHBOURS], axis=2)
        )
        defect = over & alone
        near = defect.copy()
        near[:, _ON_STAR] |= np.any(defect[:, _NEIGHBOURS], axis=2)
        # Blends are told by the Gaussian profile and its own limits: the
        # tighter ones of the frame's PSF would also catch the pixel phase
        # two pixels out and drop clean stars (2 of 8 hot pixels three
        # pixels from the peaks of stars of FWHM 1.8 lost so).
        _, sharp, _, allowed, _ = _refitted(
            excess, first_fit, width, cut * window_noise, plain_limit
        )
        missed = np.abs(sharp) > _MISFIT_NOISE * window_noise + allowed
    fitted = ~np.any(missed & ~near, axis=1)
    defect &= fitted[:, None]
    # What the stars that the profile fits give within three pixels of
    # their peaks, bad pixels too: their fit with the frame's PSF at their
    # phase.
    # (The noise is infinite outside the image.)
    model = light + background[:, None]
    lit = fitted[:, None] & _ON_STAR & np.isfinite(window_noise + model)
    star = np.nonzero(lit)[0]
    star_light = (
        window_rows[lit],
        window_cols[lit],
        model[lit],
        (rows[star], cols[star]),
    )
    return window_rows[defect], window_cols[defect], star_light
