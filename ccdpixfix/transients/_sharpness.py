"""The tests that tell a defect from a star, a line or a step.

A candidate of `ccdpixfix.transients` passes `_sharp` to become a transient
(L.A.Cosmic's fine-structure test at pixel scale, a ridge test for spectral
lines and traces, a local-peak test for the wings of stars, a step test for
overscan and slit edges); a neighbour of a transient passes `_spill` to join
it. All work on lists of pixels, never on whole frames.
"""

import numpy as np

from ..kernels.medians import OPPOSITE_PAIRS as _OPPOSITE_PAIRS
from ..kernels.medians import lowest_side_median, row_median, window_values

# Half-width of the window whose median is the local background of the
# sharpness test: 7x7 holds an undersampled star's core in under a fifth of
# its pixels, so the median stays at the background around it.
_BACKGROUND_RADIUS = 3
# A transient must exceed the third brightest of its good neighbours by this
# many sigma: two brighter neighbours are allowed for the rest of a track.
_PEAK_RANK = 3
_PEAK_MARGIN = 1.0
# A hit on a pixel corner lights a 2x2 block nearly evenly: each of its
# pixels has three bright neighbours, one more than the rule above allows.
# Such a block is a peak when the five other neighbours lie at the level of
# the window's median, within this share of the pixel's height: the ring
# around a star's 2x2 core carries 9 % of the peak at FWHM 1.5 px, 18 % at
# 1.8 px (pixel-integrated Gaussian centred on a corner).
_CORNER_RING = 0.05
# The 3x3 window (row-major, centre 4) split into the 2x2 blocks that hold
# the centre: the block's three other pixels, and the five around it.
_CORNER_BLOCKS = tuple(
    (block, tuple(i for i in (0, 1, 2, 3, 5, 6, 7, 8) if i not in block))
    for block in ((0, 1, 3), (1, 2, 5), (3, 6, 7), (5, 7, 8))
)
# In its quietest direction a transient must stand above the background by
# this factor more than the neighbours there. Across a line with a FWHM of
# 1 px the ratio is 6; across a 1.5-px star (on its diagonal) 7.5, where the
# ``contrast`` test already spares it; across a track it is unbounded.
_RIDGE_CONTRAST = 3.0
# Along a ridge the brightest pair of neighbours is balanced within this
# fraction of its height above the background, and above the next pair by
# the second fraction.
_RIDGE_BALANCE = 0.3
_RIDGE_DOMINANCE = 0.2
# A neighbour of a detection joins it when, in its darkest direction, its
# neighbours rise above the background by less than this fraction of its own
# excess (or by less than the noise).
_SPILL_FRACTION = 0.3
# The frame's stars, for `star_flatness`: peaks this many sigma above the
# background (their flatness is then measured to a few per cent), at least
# this many of them (fewer: a dark or a spectrum, no PSF to learn from).
STAR_SNR = 30.0
_MIN_STARS = 10
# The limit is the median flatness of the stars times this margin: on the
# simulated camera (FWHM 1.8-4.0) the flattest 1 % of stars lie at 0.8-0.86
# of the median (stars centred between pixels, noise).
STAR_MARGIN = 0.85
# Darkest over brightest pair of a round peak: 0.66 for a centred Gaussian
# star of FWHM 2.6, 0.42 at FWHM 1.8; across a track, near 0.
_STAR_ROUNDNESS = 0.3
# Two pixels from a star's peak, in all eight directions, its light is
# below this fraction of the peak's (0.5 for a Moffat star of FWHM 4,
# 0.72 at FWHM 6); along a line, a trace or a track it is not.
_STAR_FALL = 0.8
# Positions of the eight spokes at distance 2 in a flattened 5x5 window.
_SPOKES = np.array([0, 2, 4, 10, 14, 20, 22, 24])
# Without stars to learn from (a dark, a flat, a spectrum), a ridge is a
# track when it is sharp across (its darkest pair below this fraction of its
# height: a Gaussian cross-section of sigma < 0.85 px) and oblique: more than
# `_AXIS_TOLERANCE` degrees from both axes, where spectral lines, traces
# and slit edges run (tilted by a few degrees at most). Its light in the
# 5x5 window must be elongated by `_ELONGATION` (ratio of second moments).
_RIDGE_FLATNESS = 0.5
_AXIS_TOLERANCE = 15.0
_ELONGATION = 3.0
# A round peak is lit around: its brightest pair stands this many sigma,
# and this share of its height, above the background (at FWHM 1.0 about
# 0.15); a one-pixel hit's neighbours are at the background.
_LIT_NOISE = 3.0
_LIT_SHARE = 0.05
# The stars' flatness values crowd: the narrowest third of them spans less
# than this fraction of its middle (0.05-0.1 on the simulated camera at FWHM
# 1.5-4); the round hits of a dark spread far wider.
_STAR_SPREAD = 0.3
# ... a share that shrinks in proportion below this many peaks: the round
# hits of a spectrum (10-13 in 0.5 Mpx, most of them on its sky lines, their
# flatness spread over 0.05-0.5) crowd a third of themselves within 0.3 of
# its middle by chance (3 of 10 simulated spectra), and the frame was taken
# for a star field (2500-11000 flags on its lines instead of 700-1100).
_FULL_SAMPLE = 30
# A round peak is taken for a star down to this fraction of the limit: at
# FWHM 1.2 px the stars' flatness spreads to 0.7 of its mode with the pixel
# phase. A hot pixel of half a star's peak on the star still falls below.
_STAR_LIKE = 0.8
# A candidate must be flatter than the limit by this many times the noise.
# On the simulated camera 1.5 finds 1-3 % more of the realistic hits but
# flags faint stars near the limit: the 95th percentile photometric error of
# stars with a defect (bench_photometry, sharp events, FWHM 1.8) doubles.
_FLATNESS_NOISE = 2.0
# The flanks of the frame's stars (`flank_limits`): the pixels two and three
# pixels out from each bright star's peak (in its 7x7 window), at least this
# many sigma high (their flatness then known to a few per cent); a class of
# offsets needs this many of them, whose 5 % quantile, lowered by
# STAR_MARGIN, is its limit. On the simulated camera these classes spread by
# 0.05-0.1 around a median of 0.6-0.8; hot pixels of 20-60 sigma there
# bring a pixel to 0.3-0.5.
_FLANK_RADIUS = 3
_FLANK_SNR = 20.0
_FLANK_SAMPLES = 20
_FLANK_QUANTILE = 0.05
# Positions of the eight neighbours of the centre in a flattened 7x7 window.
_INNER_7 = np.array([16, 17, 18, 23, 25, 30, 31, 32])
# ... of the pixels three out along the columns (up, down) and the rows
# (left, right), and two out along both diagonals.
_AXIS_7 = (3, 45, 21, 27)
_DIAGONALS_7 = np.array([8, 12, 36, 40])
# A peak on a line (`_on_a_line`): three pixels out along the line the light
# is this many times what it is two out on the diagonals (a round star's is
# below: 0.9 of it at FWHM 4, 0.9 at FWHM 6 for a Moffat of beta 3; across a
# spectrum's trace and sky lines 1.8-3.5), and this share of the peak's.
_LINE_RISE = 1.5
_LINE_SHARE = 0.2
# Noise of (pixel - mean of two neighbours) in units of the pixel noise.
_PAIR_RESIDUAL = np.sqrt(1.5)


def _local_background(data, known, rows, cols, sign=1.0):
    """Background around each pixel, as seen from a bright (sign 1) or dark one.

    The median of each side of the 7x7 window around the pixel; of the four,
    the lowest for a bright pixel, the highest for a dark one (the lowest of
    ``sign * data``). Next to a star all four sides lie on the background;
    across a spectral line or a trace two of them do, where the median of
    the whole window would sit on the feature's shoulders.

    Returns
    -------
    `numpy.ndarray`
        The background times ``sign``.
    """
    return lowest_side_median(
        data, rows, cols, radius=_BACKGROUND_RADIUS, bad=known, sign=sign
    )


def _local_peak(value, window, typical, noise, cut):
    """Whether each pixel peaks its window as a hit does.

    Above all but two of its good neighbours (room for the rest of a track),
    or the brightest corner of a 2x2 block whose ring is at the median level
    (`_CORNER_RING`). ``window`` and ``value`` carry the sign already.
    """
    third = np.nan_to_num(_third_highest(window), nan=-np.inf)
    peak = value - third > _PEAK_MARGIN * noise
    height = value - typical
    for block, ring in _CORNER_BLOCKS:
        inner = np.fmax.reduce(window[:, block], axis=1)
        outer = np.fmax.reduce(window[:, ring], axis=1)
        peak |= (
            (value >= inner)
            & (value - outer > cut * noise)
            & (outer - typical < _CORNER_RING * height + _PEAK_MARGIN * noise)
        )
    return peak


def _third_highest(values):
    """Third highest non-NaN value of each row (the lowest one if fewer)."""
    ranked = np.where(np.isnan(values), -np.inf, values)
    ranked.sort(axis=1)
    n_valid = np.count_nonzero(np.isfinite(ranked), axis=1)
    index = ranked.shape[1] - np.clip(np.minimum(n_valid, _PEAK_RANK), 1, None)
    third = ranked[np.arange(ranked.shape[0]), index]
    return np.where(n_valid > 0, third, np.nan)


def _pair_means(window):
    """Means of the four pairs of opposite neighbours in flattened 3x3 windows.

    NaN where a pair is incomplete.
    """
    return np.stack(
        [0.5 * (window[:, a] + window[:, b]) for a, b in _OPPOSITE_PAIRS], axis=1
    )


def _sharp(data, level, noise, known, rows, cols, contrast, sign, cut):
    """Which candidates are sharper than a star, or a line, could be.

    - The excess over the local level must beat ``contrast`` times the
      excess of the typical neighbour (the median of the good ones) over the
      local background: the peak of a star shares its light with all its
      neighbours, a cosmic ray (even a thick track, with two or three bright
      neighbours) does not.
    - In its quietest direction (the darkest pair of opposite neighbours)
      the pixel must stand out by `_RIDGE_CONTRAST`: across a spectral
      trace or an emission line the neighbours carry a good part of the
      peak, across a cosmic-ray track they are at the background. A pixel
      above even its brightest pair by the threshold passes anyway: a hit on
      a line or a trace.
    - The pixel must be a local peak, above all but two of its good
      neighbours (room for the rest of a track), so that a pixel on the
      steep wing of a bright star is never taken for a defect.
    - It must stand out from the median of its neighbours: on a step (the
      edge of an overscan, a slit or a masked area) the level interpolated
      across the step sits half-way, but the pixel is like most neighbours.
    """
    value = sign * np.asarray(data[rows, cols], dtype=np.float64)
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    typical = sign * row_median(window)
    # The tests on the 3x3 window first: most candidates (the wings of
    # stars, the neighbours of a hit) fail them, and the 7x7 background is
    # then needed only for the rest.
    typical_or_inf = np.nan_to_num(typical, nan=np.inf)
    sharp = _local_peak(value, sign * window, typical_or_inf, noise, cut) & (
        value - typical_or_inf > cut * noise
    )
    chosen = np.flatnonzero(sharp)
    value, window, typical = value[chosen], window[chosen], typical[chosen]
    noise = noise[chosen]
    background = _local_background(data, known, rows[chosen], cols[chosen], sign)
    background = np.nan_to_num(background, nan=-np.inf)
    excess = value - sign * level[chosen]
    neighbours = np.clip(np.nan_to_num(typical - background, nan=0.0), 0, None)
    pairs = sign * _pair_means(window)
    has_pair = np.isfinite(pairs).any(axis=1)
    pairs[~has_pair] = -np.inf
    quiet = np.clip(np.nanmin(pairs, axis=1) - background, 0, None)
    brightest = np.where(has_pair, np.nanmax(pairs, axis=1), -np.inf)
    # Not a ridge (a track has dark sides), or above even the brightest
    # direction (a hit on a spectral line or trace).
    not_a_ridge = (value - background > _RIDGE_CONTRAST * quiet) | (
        value - brightest > cut * _PAIR_RESIDUAL * noise
    )
    sharp[chosen] = (excess > contrast * neighbours) & not_a_ridge
    return sharp


def _on_ridge(window, sign, background):
    """Whether each pixel lies along a line-like feature (a spectral line).

    Along a ridge one pair of opposite neighbours is clearly the brightest
    and its two members are alike; around the peak of a star the brightest
    pairs are two alike (a centred star) or unbalanced (an off-centre one).
    """
    values = sign * window
    first = np.array([a for a, _ in _OPPOSITE_PAIRS])
    second = np.array([b for _, b in _OPPOSITE_PAIRS])
    means = 0.5 * (values[:, first] + values[:, second])
    ranked = np.where(np.isfinite(means), means, -np.inf)
    order = np.argsort(ranked, axis=1)
    index = np.arange(values.shape[0])
    top, runner_up = order[:, -1], order[:, -2]
    best = ranked[index, top]
    height = best - background
    with np.errstate(invalid="ignore"):
        imbalance = np.abs(values[index, first[top]] - values[index, second[top]])
        dominance = best - ranked[index, runner_up]
        return (
            np.isfinite(best)
            & (height > 0)
            & (imbalance < _RIDGE_BALANCE * height)
            & (dominance > _RIDGE_DOMINANCE * height)
        )


def _spill(data, noise, known, rows, cols, cut, sign, stars=None):
    """Which neighbours of detections are part of the same event.

    The rest of a track or the charge spilled around a hit stands above the
    local background, while in at least one direction its neighbours are at
    the background; or, where a track crosses a spectral line or a trace, it
    stands above even the brightest pair of its neighbours. In a star every
    direction is bright and the wings lie below the pairs that straddle
    them, so a detection next to a star does not eat into it. ``stars``,
    ``(known at the start, flatness limit)`` of `star_flatness`, makes the
    second way stricter where the frame has stars.
    """
    background = _local_background(data, known, rows, cols, sign)
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    pairs = sign * _pair_means(window)
    lonely = ~np.isfinite(pairs).any(axis=1)
    # Where no pair is complete, the darkest single neighbour stands in.
    pairs[lonely, 0] = np.nanmin(
        np.where(np.isfinite(window[lonely]), sign * window[lonely], np.inf), axis=1
    )
    quietest = np.nanmin(pairs, axis=1)
    # In the brightest direction an incomplete pair counts by its remaining
    # member, so that a line or a trace whose next pixel was just flagged
    # does not look like a hit above it, pixel after pixel.
    members = np.stack([sign * window[:, [a, b]] for a, b in _OPPOSITE_PAIRS], axis=1)
    single = np.where(np.isnan(members[..., 0]), members[..., 1], members[..., 0])
    directions = np.where(np.isnan(pairs), single, pairs)
    brightest = np.max(np.nan_to_num(directions, nan=-np.inf), axis=1)
    value = sign * data[rows, cols]
    noise = cut * noise
    # Darker in some direction than half its own height: a track or a halo
    # (even with charge diffusion); never the wing of a star.
    quiet = quietest - background < np.maximum(
        noise, _SPILL_FRACTION * (value - background)
    )
    above = value - background > noise
    above_brightest = ~lonely & (value - brightest > _PAIR_RESIDUAL * noise)
    above_brightest &= _on_ridge(window, sign, background)
    if stars is not None and above_brightest.any():
        # In a frame with stars, the peak of a star beside a hit can look
        # like a ridge above its brightest direction: it must also be
        # sharper than the frame's stars, on the frame as it came.
        start, limit = stars
        chosen = np.flatnonzero(above_brightest)
        flatness, _ = _flatness(
            data, start, rows[chosen], cols[chosen], background[chosen], sign
        )
        above_brightest[chosen] = flatness < limit
    return (quiet & above) | above_brightest


def _flatness(data, known, rows, cols, background, sign=1.0):
    """How flat each pixel's profile is: quietest pair over the pixel's height.

    ``(darkest pair of opposite neighbours - background) / (value -
    background)``: for the peak of a star about exp(-1 / s**2) with ``s`` the
    PSF's Gaussian sigma in pixels (its diagonal pair), for a cosmic-ray
    track the ratio across the track, smaller the sharper it is. NaN where
    no pair is complete.
    """
    value = sign * np.asarray(data[rows, cols], dtype=np.float64)
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    pairs = sign * _pair_means(window)
    complete = np.isfinite(pairs).any(axis=1)
    pairs[~complete] = 0.0
    quiet = np.where(complete, np.nanmin(pairs, axis=1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (quiet - background) / (value - background), quiet


def _round_peaks(
    data,
    known,
    rows,
    cols,
    noise,
    sign=1.0,
    *,
    lit=_LIT_NOISE,
    roundness=_STAR_ROUNDNESS,
):
    """Which pixels are the peak of a round, compact source, and their flatness.

    A strict local maximum with all eight neighbours good; round (its darkest
    pair of neighbours is not far below its brightest: along a track, a
    worm or a line it is); lit around (the brightest pair stands above the
    noise: a one-pixel hit is not); and falling off in every direction (two
    pixels away along a line, a trace or a track the light is still nearly
    that of the peak).

    ``roundness`` is the least darkest-over-brightest pair ratio (-inf: any
    pair will do, for undersampled stars, whose pairs the pixel phase
    unbalances).

    Returns
    -------
    chosen : 1-D int array
        Positions, in ``rows``, of the round peaks.
    flatness, height : 1-D arrays
        Their `_flatness` and their height above the background.
    """
    value = sign * np.asarray(data[rows, cols], dtype=np.float64)
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    complete = np.isfinite(window).sum(axis=1) == 8
    window[~complete] = 0.0
    signed = sign * window
    around = np.fmax.reduce(signed, axis=1)
    darkest = np.fmin.reduce(signed, axis=1)
    # Cheap first: a peak lit around stands above its darkest neighbour.
    chosen = np.flatnonzero(
        complete & (value > around) & (value - darkest > lit * noise)
    )
    background = _local_background(data, known, rows[chosen], cols[chosen], sign)
    flatness, quiet = _flatness(
        data, known, rows[chosen], cols[chosen], background, sign
    )
    brightest = np.max(sign * _pair_means(window[chosen]), axis=1) - background
    spokes = window_values(data, rows[chosen], cols[chosen], radius=2, bad=known)
    spokes = np.nan_to_num(sign * spokes[:, _SPOKES], nan=np.inf)
    height = value[chosen] - background
    with np.errstate(invalid="ignore", divide="ignore"):
        round_ = (
            (quiet - background > roundness * brightest)
            & (brightest > np.fmax(_LIT_NOISE * noise[chosen], _LIT_SHARE * height))
            & np.all(
                spokes - background[:, None] < _STAR_FALL * height[:, None], axis=1
            )
            & np.isfinite(flatness)
        )
    return chosen[round_], flatness[round_], height[round_]


def bright_peaks(data, known, rows, cols, noise):
    """The frame's stars (and its round hits) among the candidates.

    The round peaks (`_round_peaks`) more than `STAR_SNR` sigma high: a
    star that high stands over a quarter of that above its darkest
    neighbour even at FWHM 4 (0.36 of its height). The frame's PSF is
    learned from them (`star_flatness`, `flank_limits`,
    `ccdpixfix.transients._profiles.star_width`).

    Returns
    -------
    chosen : 1-D int array
        Their positions in ``rows``.
    flatness : 1-D array
        Their `_flatness`.
    """
    chosen, flatness, height = _round_peaks(
        data, known, rows, cols, noise, lit=STAR_SNR / 4
    )
    bright = height > STAR_SNR * noise[chosen]
    chosen, flatness, height = chosen[bright], flatness[bright], height[bright]
    # Where a trace crosses a sky line, a spectrum has round peaks as alike
    # as a star field's: they are not stars.
    crossing = _on_a_line(data, known, rows[chosen], cols[chosen], height)
    return chosen[~crossing], flatness[~crossing]


def _on_a_line(data, known, rows, cols, height):
    """Whether each peak lies on a line along the rows or the columns.

    Three pixels out along an axis, a round source's light is below what it
    has two pixels out along both diagonals (2.8 px from its peak); along a
    spectral line or a trace it is above, by `_LINE_RISE`, on both sides,
    and stands `_LINE_SHARE` of the peak's ``height`` above the background.
    """
    background = _local_background(data, known, rows, cols)
    window = window_values(data, rows, cols, radius=3, bad=known)
    window -= background[:, None]
    diagonal = np.nanmean(window[:, _DIAGONALS_7], axis=1)
    along = np.fmax(
        np.fmin(window[:, _AXIS_7[0]], window[:, _AXIS_7[1]]),
        np.fmin(window[:, _AXIS_7[2]], window[:, _AXIS_7[3]]),
    )
    with np.errstate(invalid="ignore"):
        return (along > _LINE_RISE * np.fmax(diagonal, 0.0)) & (
            along > _LINE_SHARE * height
        )


def star_flatness(flatness):
    """The flattest a star's peak is not below, from the frame's own stars.

    Among the bright round peaks (`bright_peaks`, their ``flatness``) are
    the frame's stars and its round hits; the stars, all of one PSF, crowd
    at one flatness, the hits spread. The limit is the middle of the
    narrowest third of the flatness values, lowered by `STAR_MARGIN`. None
    when fewer than `_MIN_STARS` peaks are found, or when that third is not
    narrow (no PSF in common: a dark full of hits, a spectrum): no
    frame-specific test then.
    """
    flatness = np.sort(flatness)
    if flatness.size < _MIN_STARS:
        return None
    third = flatness.size // 3
    widths = flatness[third:] - flatness[: flatness.size - third]
    start = int(np.argmin(widths))
    mode = float(np.median(flatness[start : start + third + 1]))
    # With few peaks, chance alone crowds a third of them (see _FULL_SAMPLE).
    spread = _STAR_SPREAD * min(1.0, flatness.size / _FULL_SAMPLE)
    if not mode > 0 or widths[start] > spread * mode:
        return None
    return mode * STAR_MARGIN


def _flank_classes(dy, dx):
    """Offset class of a pixel from its star's peak: ``4 * min + max`` of |dy|, |dx|.

    Pixels of one class lie at one distance from the peak, in directions
    the PSF's symmetry makes alike.
    """
    dy, dx = np.abs(dy), np.abs(dx)
    return 4 * np.minimum(dy, dx) + np.maximum(dy, dx)


def flank_limits(data, known, peak_rows, peak_cols, noise_at):
    """The flattest the flank of this frame's stars is not below, by offset class.

    The flank of a star is flatter than its peak (one pixel out of a
    Moffat star of FWHM 1.8 px the quietest pair of neighbours carries 0.3-
    0.4 of the pixel's height, two and three pixels out 0.6-0.8, at the peak
    0.28), so a hot pixel on the flank can stay above the peak's limit
    (`star_flatness`) yet be far sharper than any star is there. Around the
    bright round peaks (`bright_peaks`), every pixel two or three pixels
    out in their 7x7 windows, with eight good neighbours and `_FLANK_SNR`
    sigma high, gives a flatness to the class of its offset
    (`_flank_classes`); the limit of a class is its `_FLANK_QUANTILE`
    lowered by `STAR_MARGIN`.

    Parameters
    ----------
    data, known : 2-D arrays
        The frame and its pixels known bad.
    peak_rows, peak_cols : 1-D arrays
        The bright round peaks.
    noise_at : callable
        ``noise_at(rows, cols)``, the noise at any pixel.

    Returns
    -------
    `numpy.ndarray`
        Limit by class (index ``4 * min + max`` of the offsets), NaN for a
        class with fewer than `_FLANK_SAMPLES` pixels.
    """
    background = _local_background(data, known, peak_rows, peak_cols)
    offsets = np.arange(-_FLANK_RADIUS, _FLANK_RADIUS + 1)
    dy, dx = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
    # Next to the peak the flatness of a star's pixel swings with where the
    # star is centred (beside a corner-centred star's peak it is as low as
    # at the peak): the classes start two pixels out.
    off_peak = np.maximum(np.abs(dy), np.abs(dx)) >= 2
    dy, dx = dy[off_peak], dx[off_peak]
    ny, nx = np.shape(data)
    flank_rows = (peak_rows[:, None] + dy).ravel()
    flank_cols = (peak_cols[:, None] + dx).ravel()
    inside = (flank_rows >= 0) & (flank_rows < ny) & (flank_cols >= 0)
    inside &= flank_cols < nx
    classes = np.broadcast_to(_flank_classes(dy, dx), (peak_rows.size, dy.size))
    classes = classes.ravel()[inside]
    flank_rows, flank_cols = flank_rows[inside], flank_cols[inside]
    background = np.repeat(background, dy.size)[inside]
    flatness, _ = _flatness(data, known, flank_rows, flank_cols, background)
    value = np.asarray(data[flank_rows, flank_cols], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(flatness) & ~known[flank_rows, flank_cols]
        usable &= _complete(data, known, flank_rows, flank_cols)
        usable &= value - background > _FLANK_SNR * noise_at(flank_rows, flank_cols)
    limits = np.full(_flank_classes(_FLANK_RADIUS, _FLANK_RADIUS) + 1, np.nan)
    for klass in np.unique(classes[usable]):
        values = flatness[usable & (classes == klass)]
        if values.size >= _FLANK_SAMPLES:
            limits[klass] = np.quantile(values, _FLANK_QUANTILE) * STAR_MARGIN
    return limits


def _complete(data, known, rows, cols):
    """Whether all eight neighbours of each pixel are good."""
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    return np.isfinite(window).sum(axis=1) == 8


def sharper_than_flanks(data, noise, known, rows, cols, limits, cut):
    """Which hot candidates on a star's flank are sharper than its flanks can be.

    The star's peak is the brightest pixel of the candidate's 7x7 window,
    and a neighbour of the candidate is brighter than it; the candidate's
    flatness (`_flatness`, all eight neighbours good) must
    fall below the limit of its offset class (`flank_limits`) by more than
    its noise allows, as in `sharper_than_stars`.
    """
    value = np.asarray(data[rows, cols], dtype=np.float64)
    window = window_values(data, rows, cols, radius=_FLANK_RADIUS, bad=known)
    size = 2 * _FLANK_RADIUS + 1
    window[:, size * size // 2] = -np.inf
    window = np.nan_to_num(window, nan=-np.inf)
    brightest = np.argmax(window, axis=1)
    # On a flank, not a peak: a star's light rises towards its peak through
    # a brighter neighbour (the peak of a star blended with a brighter one
    # is a peak, for the peak's tests).
    inner = window[:, _INNER_7].max(axis=1)
    on_flank = (window[np.arange(rows.size), brightest] > value) & (inner > value)
    limit = limits[
        _flank_classes(
            brightest // size - _FLANK_RADIUS, brightest % size - _FLANK_RADIUS
        )
    ]
    chosen = np.flatnonzero(on_flank & np.isfinite(limit))
    chosen = chosen[_complete(data, known, rows[chosen], cols[chosen])]
    background = _local_background(data, known, rows[chosen], cols[chosen])
    _, quiet = _flatness(data, known, rows[chosen], cols[chosen], background)
    height = value[chosen] - background
    sharp = np.zeros(rows.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        sharp[chosen] = (
            quiet - background + _FLATNESS_NOISE * noise[chosen]
            < limit[chosen] * height
        ) & (height > cut * noise[chosen])
    return sharp


def star_like(data, noise, known, rows, cols, limit, sign=1.0):
    """Which candidates are round peaks no sharper than the frame's stars.

    The peak of an undersampled star can pass the fixed sharpness test;
    if it is about as flat as the frame's stars (`star_flatness`, times
    `_STAR_LIKE`: undersampled stars centred on a pixel corner are sharper
    than the typical one), it is one.
    """
    chosen, flatness, _ = _round_peaks(data, known, rows, cols, noise, sign)
    result = np.zeros(np.size(rows), dtype=bool)
    result[chosen] = flatness >= _STAR_LIKE * limit
    return result


def sharper_than_stars(
    data, noise, known, rows, cols, limit, cut, sign=1.0, *, peak=True
):
    """Which candidates are sharper than this frame's stars can be.

    A pixel that stands out from most of its neighbours (the local-peak and
    step tests of `_sharp`) and whose profile is flatter than ``limit``
    (`star_flatness`) by more than its noise allows is a defect even on a
    star: a hot pixel adds to the peak of the star it sits on and makes it
    sharper than any star of the frame; a cosmic-ray track is sharper across
    than the PSF.
    """
    value = sign * np.asarray(data[rows, cols], dtype=np.float64)
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    # Cheap first: above the median neighbour means above the darkest one.
    darkest = np.fmin.reduce(sign * window, axis=1)
    sharp = value - darkest > cut * noise
    chosen = np.flatnonzero(sharp)
    typical = sign * row_median(window[chosen])
    keep = value[chosen] - np.nan_to_num(typical, nan=np.inf) > cut * noise[chosen]
    if peak:
        keep &= _local_peak(
            value[chosen],
            sign * window[chosen],
            np.nan_to_num(typical, nan=np.inf),
            noise[chosen],
            cut,
        )
    sharp[chosen] = keep
    chosen = chosen[keep]
    background = _local_background(data, known, rows[chosen], cols[chosen], sign)
    background = np.nan_to_num(background, nan=np.inf)
    _, quiet = _flatness(data, known, rows[chosen], cols[chosen], background, sign)
    height = value[chosen] - background
    with np.errstate(invalid="ignore"):
        # The pair mean has the noise of sqrt(1/2) pixel; the margin keeps a
        # faint star's fluctuations out.
        flatter = quiet - background + _FLATNESS_NOISE * noise[chosen] < limit * height
    sharp[chosen] = flatter & (height > cut * noise[chosen])
    return sharp


def _orientation(data, known, rows, cols, background, sign=1.0):
    """Angle (degrees, 0-180) and elongation of the light in 5x5 windows.

    From the second moments of the light above the background; elongation
    is the ratio of the larger to the smaller moment (1 for a round star).
    """
    window = window_values(data, rows, cols, radius=2, bad=known)
    light = np.clip(np.nan_to_num(sign * window - background[:, None]), 0, None)
    return _light_orientation(light)


def _light_orientation(light):
    """Angle (degrees, 0-180) and elongation of the light of 5x5 windows.

    ``light``, one flattened window per row, none negative: its second
    moments about the window's centre pixel, as `_orientation` takes them.
    """
    offsets = np.arange(-2, 3, dtype=np.float64)
    dy = np.repeat(offsets, 5)[None, :]
    dx = np.tile(offsets, 5)[None, :]
    total = light.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        myy = (light * dy**2).sum(axis=1) / total
        mxx = (light * dx**2).sum(axis=1) / total
        mxy = (light * dx * dy).sum(axis=1) / total
        angle = np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy)) % 180
        spread = np.sqrt((mxx - myy) ** 2 + 4 * mxy**2)
        elongation = (mxx + myy + spread) / (mxx + myy - spread)
    return angle, np.nan_to_num(elongation, nan=1.0, posinf=np.inf)


def oblique_tracks(data, noise, known, rows, cols, cut, sign=1.0):
    """Which candidates lie on a sharp ridge oblique to the pixel axes.

    For frames with no stars to learn a PSF from: what the fixed test took
    for a spectral line or a trace, but which is sharp across
    (`_RIDGE_FLATNESS`), elongated and oblique, is a cosmic-ray track.
    """
    value = sign * np.asarray(data[rows, cols], dtype=np.float64)
    background = _local_background(data, known, rows, cols, sign)
    background = np.nan_to_num(background, nan=np.inf)
    height = value - background
    # Both sides of the ridge are dark, not just their mean: at the edge of
    # a slit or an overscan one side is lit.
    window = window_values(data, rows, cols, radius=1, bad=known, include_centre=False)
    members = np.stack([sign * window[:, [a, b]] for a, b in _OPPOSITE_PAIRS], axis=1)
    brighter = np.max(members, axis=2)
    brighter[np.isnan(brighter)] = np.inf
    darkest_side = np.min(brighter, axis=1)
    # And the ridge goes on both ways: along a track both members of the
    # brightest pair are lit; at a corner (a slit edge meeting a line) one
    # is dark.
    fainter = np.min(members, axis=2)
    means = np.nan_to_num(np.mean(members, axis=2), nan=-np.inf)
    along = fainter[np.arange(rows.size), np.argmax(means, axis=1)]
    with np.errstate(invalid="ignore"):
        sharp = (
            (height > cut * noise)
            & (
                darkest_side - background + _FLATNESS_NOISE * noise
                < _RIDGE_FLATNESS * height
            )
            & (along - background > _RIDGE_FLATNESS * height)
        )
    chosen = np.flatnonzero(sharp)
    angle, elongation = _orientation(
        data, known, rows[chosen], cols[chosen], background[chosen], sign
    )
    off_axis = np.minimum(angle % 90, 90 - angle % 90) > _AXIS_TOLERANCE
    sharp[chosen] = off_axis & (elongation > _ELONGATION)
    return sharp


def _offset_index(dy, dx, radius):
    """Position of offset ``(dy, dx)`` in a flattened square window."""
    size = 2 * radius + 1
    return (dy + radius) * size + dx + radius


# The four directions of a straight ridge (down, right, and the diagonals),
# with the direction across each.
_RIDGE_DIRECTIONS = (
    ((1, 0), (0, 1)),
    ((0, 1), (1, 0)),
    ((1, 1), (1, -1)),
    ((1, -1), (1, 1)),
)
# A straight ridge goes on this many pixels each way from the candidate
# (seven in all): a star's light has fallen below half of it three pixels
# out for any FWHM up to 4.5 px (Moffat beta 3), a track's has not.
_RIDGE_REACH = 3
# Along the ridge, its pixels (within one pixel across, for tracks between
# the four directions) hold this share of the candidate's height.
_RIDGE_ALONG = 0.5
# Across, its darker side is below this share of what a star's pixel has on
# its sides (sqrt of the stars' flatness): sharper than the stars, which an
# elongated galaxy, seen through the same seeing, cannot be.
_RIDGE_SIDE = 0.9


def straight_ridges(data, noise, known, rows, cols, typical, cut):
    """Which candidates lie on a straight ridge sharper across than a star.

    For frames with stars, where the sharpness tests compare a candidate
    with the frame's PSF: charge diffusion can make a cosmic-ray track
    nearly as wide as the stars, but not as short. A candidate is a track
    when, in one of four directions, the light goes on for `_RIDGE_REACH`
    pixels each way (`_RIDGE_ALONG` of its height, within a pixel across),
    its darker side across is below `_RIDGE_SIDE` of a star pixel's
    (``sqrt(typical)`` of its height, with ``typical`` the stars' flatness,
    `star_flatness` without its margin), and two pixels across both sides
    are below half its height (the far side of a star's flank is not).

    Parameters
    ----------
    data : 2-D array
        The frame.
    noise : 1-D array
        Noise of each candidate.
    known : 2-D bool array
        Pixels left out of the background.
    rows, cols : 1-D int arrays
        The candidates.
    typical : float
        The frame's stars' flatness.
    cut : float
        Height, in units of the noise, a candidate must reach: twice this
        (a faint ridge is too noisy to judge).

    Returns
    -------
    1-D bool array
    """
    reach = _RIDGE_REACH
    # one more: a diagonal track drifts a pixel off the line at its ends
    radius = reach + 1
    values = window_values(data, rows, cols, radius=radius)
    background = _local_background(data, known, rows, cols)
    height = values[:, _offset_index(0, 0, radius)] - background
    margin = cut * noise
    side = _RIDGE_SIDE * np.sqrt(typical) * height - margin / 3
    far = 0.5 * height + margin
    found = np.zeros(np.size(rows), dtype=bool)
    with np.errstate(invalid="ignore"):
        for (ay, ax), (cy, cx) in _RIDGE_DIRECTIONS:
            along = np.ones(np.size(rows), dtype=bool)
            for step in range(1, reach + 1):
                for sign in (1, -1):
                    # the brightest of the pixel on the line and its two
                    # neighbours across: a track between directions drifts
                    lit = np.fmax.reduce(
                        [
                            values[
                                :,
                                _offset_index(
                                    sign * step * ay + shift * cy,
                                    sign * step * ax + shift * cx,
                                    radius,
                                ),
                            ]
                            for shift in (-1, 0, 1)
                        ]
                    )
                    along &= lit - background > _RIDGE_ALONG * height
            sides = values[
                :, [_offset_index(cy, cx, radius), _offset_index(-cy, -cx, radius)]
            ]
            wide = values[
                :,
                [
                    _offset_index(2 * cy, 2 * cx, radius),
                    _offset_index(-2 * cy, -2 * cx, radius),
                ],
            ]
            found |= (
                along
                & (np.fmin.reduce(sides, axis=1) - background < side)
                & (np.fmax.reduce(wide, axis=1) - background < far)
            )
    return found & (height > 2 * margin)
