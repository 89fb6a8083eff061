"""Cosmic rays and one-exposure hot or cold pixels, from median residuals.

A pixel is a transient when it stands out from the median of its
neighbours by more than ``threshold`` times its noise *and* is sharper than
any star could be. The sharpness test is a pixel-scale version of
L.A.Cosmic's fine-structure test: the excess of the pixel over its
neighbours, ``r = x - m``, is compared with the excess of the neighbours over
the local background, ``n = m - b``. For a star, even an undersampled one,
the neighbours carry a good part of the peak (``r / n`` stays below about 3
for a pixel-integrated PSF with FWHM 1.5 px centred on a pixel); a cosmic
ray or hot pixel deposits its charge in one pixel, so ``n`` is just noise.
"""

from functools import cache

import numpy as np

from ..colour.cfa import cfa_pattern, per_colour
from ..colour.rgb import check_cube_pattern, is_rgb_cube, per_plane
from ..flags import PixelFlag, flags_to_mask
from ..kernels.medians import (
    RESIDUAL_FACTOR,
    bits_around,
    local_level_at,
    neighbourhood,
    window_values,
)
from ..kernels.residuals import level_noise, residual_outliers
from ..noise.core import fit_rows, frame_noise
from ..utils.ccd import (
    check_ccd,
    input_flags,
    new_ccd,
    quiet_numerics,
    saturation_from,
)
from ..utils.provenance import record_step
from ._profiles import (
    UNDERSAMPLED,
    defects_on_stars,
    fits_a_star,
    narrower_across,
    narrower_than_stars,
    profile_misfit,
    round_stars,
    star_width,
    undersampled_stars,
)
from ._sharpness import (
    STAR_MARGIN,
    STAR_SNR,
    _local_background,
    _offset_index,
    _sharp,
    _spill,
    bright_peaks,
    flank_limits,
    oblique_tracks,
    sharper_than_flanks,
    sharper_than_stars,
    star_flatness,
    star_like,
    straight_ridges,
)
from .colour_stars import unflag_stars
from .learned import engine, propose, recorded
from .options import TransientOptions

__all__ = ["flag_transients", "saturation_level"]

# The options of `flag_transients` its HISTORY record names (with what it
# found); saturation, gain and read noise are the header's unless given.
_RECORDED = (
    "threshold",
    "neighbour_threshold",
    "contrast",
    "footprint_threshold",
    "grow",
)

# A pixel beside a flagged one continues a line when this many pixels beyond
# it, straight on, are lit too (`_continues_a_line`): a spectral line or a
# trace is long, a hit's wing is not. On the ESIS darks 3 and 6 cut the
# tracks that run within a few degrees of an axis (core pixels found 0.9963
# -> 0.9884 and 0.9948); 12 leaves them as they were, and still stops the
# growth along the sky lines of simulated spectra (false flags 188 -> 19
# and 121 -> 2 on a 512 x 512 spectrum with sharp and realistic hits).
_LINE_REACH = 12
# The neighbours straight above, below, left and right: their positions in a
# flattened 3x3 window, and their offsets.
_AXIS_NEIGHBOURS = ((1, (-1, 0)), (7, (1, 0)), (3, (0, -1)), (5, (0, 1)))
# Growth stops when nothing new is found; this only bounds pathological cases.
_MAX_ITERATIONS = 50
# Times the edges of grown events are looked at again (`_grow_footprints`).
_REVISITS = 1
# A star STAR_SNR sigma high stands over this share of that above the level
# its neighbours give (0.28 of its height at FWHM 4).
_TALL_SHARE = 0.25
# Peaks this share of the threshold above their 3x3 level (3 sigma at the
# default 5) are looked at as faint events (`_faint_events`): the faint
# diffuse hits found so on simulated nights stood 3.0-4.9 sigma above it,
# their neighbours sharing their charge.
_FAINT_SHARE = 0.6
# Beyond a wing pixel, away from its core, the charge has fallen below this
# fraction of the wing's own excess (or below the growth cut); along a
# spectral line or a slit edge it has not.
_FAR_FRACTION = 0.3
# With stars in the frame, that fraction is at most this share of a star's
# own fall from one pixel out to two (0.21 of the wing at FWHM 1.8).
_FAR_STAR_SHARE = 0.5
# The bright middle of a wide event, lit on every side, joins it where the
# stars' profile misses its unflagged 5x5 window (`_no_star_there`): the
# pixel stands this many sigma above the background, the event has this
# many flagged pixels in its 7x7 window, and the profile's rms misfit
# exceeds this share of the pixel's height (bright stars: 0.02-0.06; the
# middles of wide tracks left unflagged on the simulated camera: a median
# of 0.22-0.34). Simulated 256 x 256 fields of 400 and 800 stars (18 of
# them, FWHM 1.8-4): a false flag on a blend grew into it with fewer
# flagged pixels asked for (113 flagged pixels in all, 129 with 5, 206
# with none).
_CORE_HEIGHT = 15.0
_CORE_EVENT = 6
_CORE_MISFIT = 0.15
# Times a diffuse track is followed past where its growth stopped
# (`_rest_of_tracks`): on simulated nights (1024 x 1024, realistic hits,
# FWHM 2.6, seeds 0-2) recall rose by 0.002, 0.016 and 0.015 with three;
# false flags the same.
_TRACK_ROUNDS = 3
# A cold transient has lost at least this share of its light above the
# darkest level of the frame (`dark_level`): a pixel that read out empty
# reads the bias, while a flat's dust or a low-response pixel keeps most of
# its light (on a raw Kast dome flat with its overscan: 196 -> 24 cold
# transients; simulated cold transients all kept).
_COLD_LOSS = 0.5
# ... and it is no dark line: fewer than this many of the pixels within this
# reach each way along its row or column are cold too (`_on_a_cold_line`).
_COLD_LINE = 4
_COLD_REACH = 4
# The darkest level of a frame is this percentile of its good pixels, on a
# sample of this many: a raw frame's overscan or its darkest sky, above a
# few dead pixels.
_DARK_PERCENTILE = 0.5
_DARK_SAMPLES = 50_000
# Pixels sampled for the frame's low noise (the first, cheapest screen of
# the footprint growth).
_FLOOR_SAMPLES = 1024
# The centre of a flattened 3x3 window.
_CENTRE_3 = 4
# Positions in a flattened 5x5 window: the centre, its eight neighbours.
_CENTRE_5 = 12
_INNER_5 = np.array([6, 7, 8, 11, 13, 16, 17, 18])
# A track goes on past a pixel of its edge (`_continues_track`): the next
# pixel along holds at least this share of the pixel's height, and at least
# _ALONG_STAR times what a star's flank passes on one pixel further out.
_ALONG_SHARE = 0.5
_ALONG_STAR = 2.0
# The pixel stands this many growth margins above the background: fainter,
# noise alone passes the tests on faint extended light.
_CONTINUE_MARGIN = 2.0
# One side across is dark: below this share of what a star's pixel has on
# both sides, less the margin over _SIDE_NOISE (the side's own noise).
_SIDE_SHARE = 0.7
_SIDE_NOISE = 3.0
# ... and two pixels across on both sides, the light is below this share of
# the pixel's (plus the growth margin: noise).
_ACROSS_FAR = 0.5
# Steps to the eight neighbours; positions of offsets in a flattened 5x5
# window.
_STEPS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
_AT_5 = {
    (dy, dx): _offset_index(dy, dx, 2) for dy in range(-2, 3) for dx in range(-2, 3)
}
# A track three pixels wide goes on past the middle of its flagged end
# (`_continues_wide_track`): this many pixels flagged behind, as many lit
# ahead as the reach, in a 9x9 window.
_WIDE_BEHIND = 3
_WIDE_REACH = 4
# ... and this many steps across it, on both sides, the light is no longer
# lit: a track three pixels wide, its wings diffused, ends there; the edge
# of an overscan or a slit does not.
_WIDE_ACROSS = 3
# Along a track the light ahead stays within this factor of the pixel's
# (the energy loss varies by tens of per cent); towards a star's peak it
# rises faster: five times from two pixels out at FWHM 2.6.
_WIDE_RISE = 2.0
# The lines ahead: how far across each of the four pixels ahead lies, for a
# track along one of the eight directions or up to 27 degrees off it.
_WIDE_LINES = (
    (0, 0, 0, 0),
    (0, 0, 1, 1),
    (0, 0, -1, -1),
    (0, 1, 1, 2),
    (0, -1, -1, -2),
)
_AT_9 = {
    (dy, dx): _offset_index(dy, dx, _WIDE_REACH)
    for dy in range(-_WIDE_REACH, _WIDE_REACH + 1)
    for dx in range(-_WIDE_REACH, _WIDE_REACH + 1)
}
# Positions of the ring of a flattened 5x5 window (distance 2 from the centre).
_RING_2 = np.array([k for k in range(25) if max(abs(k // 5 - 2), abs(k % 5 - 2)) == 2])
# With a learned engine, a lone classical seed where the model is quiet must
# stand this many sigma above ``threshold`` (`_agreed`): Gaussian noise
# passes 5.5 sigma 15 times less often than 5 (0.02 instead of 0.29 pixels
# per megapixel). A pixel of the spill growth where the model sees no charge
# must stand as much above ``neighbour_threshold`` (`_heard`): 3 sigma, the
# level of a stack truth's footprint, which noise passes 4.6 times less often
# than 2.5.
_QUIET_MARGIN = 0.5


def saturation_level(ccd):
    """Level at or above which a pixel is saturated, or None if unknown.

    From the header (``SATURATE``, ``SATLEVEL``, ``SATURATION``,
    ``MAXLIN``) or, for raw integer data, the largest value the type holds.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The frame.

    Returns
    -------
    float or None
    """
    return saturation_from(ccd.meta, ccd.data.dtype)


def _protected(data, flags, index):
    """Which pixels (flat indices) can never be transients.

    Masked or non-finite pixels, and the neighbours of saturated ones,
    whose bleeding charge is not a defect.
    """
    protected = flags_to_mask(flags.ravel()[index])
    protected |= ~np.isfinite(np.asarray(data).ravel()[index])
    protected |= bits_around(flags, index, PixelFlag.SATURATED)
    return protected


class _Search:
    """What the search of one frame carries from step to step.

    The frame (``data``) and its input ``flags``; the pixels known bad at
    the start (``known_start``: the noise stays that of the frame as it
    came) and now (``known_now``: the local levels leave out what is
    flagged as it is found); how the noise is known (``noise``, a
    `ccdpixfix.noise.FrameNoise`); ``label``, 1 for a hot transient, -1 for
    a cold one; the scratch space of `neighbourhood`; ``limit``, the
    flatness the frame's stars do not go below (`star_flatness`), or None,
    ``flanks``, the same for their flanks by offset from the peak
    (`flank_limits`), ``width``, the Gaussian width that fits them
    (`star_width`), ``stars``, their rows, columns and noise, ``round``,
    whether they are round (`round_stars`), and
    ``on_stars``, the hot pixels found on stars by their profile
    (`defects_on_stars`), which are not grown, and ``star_light``, the
    pixels near the peaks of the stars their profile fits (flat indices)
    and what those stars give there. ``mosaic``: the
    frame is one colour of a Bayer mosaic, whose stars the mosaic's own
    test judges (`unflag_stars`).
    """

    def __init__(self, data, flags, known, noise, mosaic=False):
        self.data, self.flags, self.noise = data, flags, noise
        self.shape = np.shape(data)
        self.known_start, self.known_now = known, known.copy()
        self.label = np.zeros(self.shape, dtype=np.int8)
        self.seen = {}
        self.limit = None
        self.flanks = None
        self.width = None
        self.stars = None
        self.round = False
        self.on_stars = np.empty(0, dtype=np.intp)
        none = np.empty(0, dtype=np.intp)
        self.star_light = none, np.empty(0), none
        self.mosaic = mosaic

    def mark(self, index, sign):
        """Flag the pixels ``index`` (flat) as transients of ``sign``."""
        self.known_now.ravel()[index] = True
        self.label.ravel()[index] = sign

    def around(self, index):
        """Unlabelled neighbours (flat indices) of the pixels ``index``."""
        search = neighbourhood(index, self.shape, self.seen)
        return search[self.label.ravel()[search] == 0]

    def noise_at(self, rows, cols):
        """The noise at any pixels, as the frame came."""
        return self.noise.at(rows, cols, self.known_start)

    def protected(self, index):
        """Which of the pixels ``index`` can never be transients."""
        return _protected(self.data, self.flags, index)


def _significant(search, index, sign, cut):
    """Pixels (flat indices) whose residual exceeds ``cut`` in direction ``sign``.

    Returns the pixels with their rows, columns, levels and noise, with the
    same arithmetic as `ccdpixfix.kernels.residuals.residual_outliers`.
    """
    data = search.data
    rows, cols = np.unravel_index(index, np.shape(data))
    level, n_pairs = local_level_at(data, rows, cols, search.known_now)
    with np.errstate(invalid="ignore", over="ignore"):
        excess = sign * (
            np.asarray(data.ravel()[index], dtype=np.float64) - level.astype(np.float64)
        )
    # A pixel on the wrong side of its level fails whatever its noise: most
    # neighbours of an event do, and their noise need not be looked up.
    maybe = excess > 0
    index, rows, cols, level, n_pairs, excess = (
        array[maybe] for array in (index, rows, cols, level, n_pairs, excess)
    )
    noise = search.noise.at(rows, cols, search.known_start)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        residual = excess / (noise * RESIDUAL_FACTOR[n_pairs])
        keep = np.isfinite(residual) & (residual > cut)
    return index[keep], rows[keep], cols[keep], level[keep], noise[keep]


def _noise_floor(search):
    """A low noise of the frame: the 5th percentile on a sparse grid of pixels."""
    ny, nx = search.shape
    step = max(int(np.sqrt(ny * nx / _FLOOR_SAMPLES)), 1)
    rows, cols = np.mgrid[step // 2 : ny : step, step // 2 : nx : step]
    noise = search.noise.at(rows.ravel(), cols.ravel(), search.known_now)
    noise = noise[np.isfinite(noise) & (noise > 0)]
    return float(np.percentile(noise, 5)) if noise.size else 0.0


def _grow_footprints(search, hot, cut):
    """The rest of each hot event: its wings above ``cut`` sigma, whole.

    Charge diffusion gives every real hit wings (8-30 sigma beside a
    150-sigma core) that the spill test refuses, fearing a star's wing.
    Around a found event, an unflagged neighbour joins it when it stands
    above the local background, and above the lower quartile of the pixels
    two steps away (the 5x5 ring), by ``cut`` times its noise (L.A.Cosmic's
    ``sigfrac`` growth), and the event does not sit on extended light: that
    quartile is at the background; the pixel lies between the event and
    the dark sky (`_between`); and it is not below a good neighbour (a
    star's wing falls away from the star's unflagged core, a track's wing
    from the flagged track). Beside a star's core the ring is on the star,
    and beside its wing the core is brighter, so a defect on a star does
    not eat the star; beside a track, even a wide diagonal one, most of the
    ring is on the sky. The growth climbs too: the bright middle of a wide
    event, too blunt for the sharpness test, joins the edge that was found
    when it is the brightest good pixel around; lit on every side, where
    the stars' profile does not fit it (`_no_star_there`). In frames with stars, a
    track is also followed where it is sharper across than the stars, or
    goes on as a track does (`_continues_track`).

    Returns
    -------
    1-D int array
        Flat indices of the pixels added.
    """
    hot_mask = search.label == 1
    added, frontier = [], hot
    floor = _noise_floor(search)
    far_fraction = _FAR_FRACTION
    if search.limit is not None:
        # Where the frame has stars, the far side of a wing must fall below
        # what a star of this frame gives one pixel further out on its
        # flank: a Gaussian star whose diagonal pair is F of its peak
        # (F = limit / margin) gives F**1.5 from one pixel out to two.
        typical = search.limit / STAR_MARGIN
        far_fraction = min(_FAR_FRACTION, _FAR_STAR_SHARE * typical**1.5)
    # A track is followed by what lies two pixels away (`_continues_track`),
    # which may be flagged after its neighbour was judged: with stars, once
    # the growth stops, the pixels within two of those it added are looked
    # at again.
    revisits = _REVISITS if search.limit is not None else 0
    since = []
    for _ in range(_MAX_ITERATIONS):
        if not frontier.size:
            if not (revisits and since):
                break
            revisits -= 1
            frontier = neighbourhood(np.concatenate(since), search.shape, search.seen)
            since = []
        pixels = search.around(frontier)
        if not pixels.size:
            frontier = pixels
            continue
        frontier = _wings(search, pixels, hot_mask, cut, floor, far_fraction)
        search.mark(frontier, 1)
        hot_mask.ravel()[frontier] = True
        added.append(frontier)
        if frontier.size:
            since.append(frontier)
    return np.concatenate(added) if added else np.empty(0, dtype=np.intp)


def _rest_of_tracks(search, hot, threshold, cut):
    """Diffuse tracks followed past where the growth stopped (flat indices).

    The growth refuses a pixel below a brighter good neighbour (a star's
    wing falls away from the star's core), so where a track as wide as the
    stars goes on, its unflagged part stays out. Such a part peaks beside
    the event: an unflagged neighbour of it that is the brightest good
    pixel of its 5x5 window, the flagged pixels left out, and elongated
    and narrower across than the stars (`narrower_across`, judged without
    the flagged pixels: a star beside a hit is round once the hit is left
    out) is a seed, and grows as the others do (`_grow_footprints`), up to
    `_TRACK_ROUNDS` times. Only where the frame's stars are round (as
    `narrower_across` itself), and not on one colour of a mosaic.
    """
    empty = np.empty(0, dtype=np.intp)
    # (A colour plane's stars are judged by the mosaic's own test.)
    if search.mosaic or not search.round or search.width < UNDERSAMPLED:
        return empty
    added, frontier = [], hot
    floor = _noise_floor(search)
    for _ in range(_TRACK_ROUNDS):
        pixels = search.around(frontier)
        rows, cols = np.unravel_index(pixels, search.shape)
        # Cheap first: most pixels beside an event are below a good
        # neighbour (its wing falls away), or are sky.
        around = window_values(search.data, rows, cols, radius=1, bad=search.known_now)
        value = around[:, _CENTRE_3].copy()  # NaN where masked: no seed
        around[:, _CENTRE_3] = np.nan
        brightest, darkest = _extremes(around)
        with np.errstate(invalid="ignore"):
            peak = (value > brightest) & (value - darkest > threshold * floor)
        pixels, rows, cols = pixels[peak], rows[peak], cols[peak]
        unprotected = ~search.protected(pixels)
        pixels, rows, cols = pixels[unprotected], rows[unprotected], cols[unprotected]
        seeds = pixels[
            narrower_across(
                search.data,
                search.known_now,
                rows,
                cols,
                search.noise.at(rows, cols, search.known_start),
                search.width,
                threshold,
            )
        ]
        if not seeds.size:
            break
        search.mark(seeds, 1)
        frontier = np.concatenate([seeds, _grow_footprints(search, seeds, cut)])
        added.append(frontier)
    return np.concatenate(added) if added else empty


def _extremes(windows):
    """Largest and smallest non-NaN value of each row (NaN where none).

    Column by column: on tens of thousands of 3x3 windows several times
    faster than a reduction along the rows.
    """
    brightest, darkest = windows[:, 0].copy(), windows[:, 0].copy()
    for column in windows.T[1:]:
        np.fmax(brightest, column, out=brightest)
        np.fmin(darkest, column, out=darkest)
    return brightest, darkest


def _wings(search, pixels, hot_mask, cut, floor, far_fraction):
    """Which of ``pixels`` (flat) join the hot events: one round of growth."""
    data, known = search.data, search.known_now
    rows, cols = np.unravel_index(pixels, search.shape)
    value = np.asarray(data[rows, cols], dtype=np.float64)
    square = window_values(data, rows, cols, radius=2, bad=known)
    square[:, _CENTRE_5] = np.nan
    # Cheap first: a wing, or a track seen across, stands above the darkest
    # good pixel of its 5x5 window by the cut; most pixels around a hit are
    # plain sky, and the darkest of 24 sky pixels lies 2 sigma low, so that
    # only 7 % of them pass. fmin skips NaN without a copy; NaN only where
    # all are.
    darkest = np.fmin.reduce(square, axis=1)
    lit = np.flatnonzero(value - darkest > cut * floor)
    lit = lit[~search.protected(pixels[lit])]
    pixels, rows, cols = pixels[lit], rows[lit], cols[lit]
    value, square = value[lit], square[lit]
    noise = search.noise.at(rows, cols, known)
    window = square[:, _INNER_5]
    has_good = np.isfinite(window).any(axis=1)
    window[~has_good] = 0.0
    outer = _lower_quartile(square[:, _RING_2])
    brightest = np.where(has_good, np.nanmax(window, axis=1), -np.inf)
    margin = cut * noise
    with np.errstate(invalid="ignore"):
        # The tests on the windows at hand first, the background after.
        keep = (value - np.nan_to_num(outer, nan=-np.inf) > margin) & (
            value > brightest - margin
        )
        chosen = np.flatnonzero(keep)
        background = _local_background(data, known, rows[chosen], cols[chosen])
        outer_c = np.where(np.isfinite(outer[chosen]), outer[chosen], background)
        value_c, margin_c = value[chosen], margin[chosen]
        standing = (value_c - background > margin_c) & (outer_c - background < margin_c)
        between = _between(
            data,
            hot_mask,
            rows[chosen],
            cols[chosen],
            background + np.fmax(margin_c, far_fraction * (value_c - background)),
            # Without stars, the frame may be a spectrum.
            lines=search.limit is None,
        )
        keep[chosen] = standing & between
        if search.width is not None:
            # Lit on every side: a star's core beside a hit, or the bright
            # middle of a wide event.
            tall = value_c - background > _CORE_HEIGHT * noise[chosen]
            rest = chosen[standing & ~between & tall]
            keep[rest] = _no_star_there(
                search, hot_mask, rows[rest], cols[rest], noise[rest], cut
            )
    if search.limit is not None:
        rest = np.flatnonzero(~keep)
        keep[rest] = _along_track(
            search, hot_mask, rows[rest], cols[rest], noise[rest], outer[rest], cut
        )
    return pixels[keep]


def _no_star_there(search, hot_mask, rows, cols, noise, cut):
    """Whether each pixel is the middle of a wide event, not a star's core.

    The pixel is lit on every side (`_between` fails), as a star's core
    beside a hit is; but it lies in a sizeable event (`_CORE_EVENT` flagged
    pixels in its 7x7 window), and the stars' profile (``search.width``),
    fitted to its 5x5 window without the flagged pixels, misses it by more
    than `_CORE_MISFIT` of its height (rms): across a track the light falls
    to the sky on one side within a pixel, where a star would still shine.
    """
    flagged = window_values(hot_mask.view(np.uint8), rows, cols, radius=3) == 1
    found = np.zeros(rows.size, dtype=bool)
    chosen = np.flatnonzero(np.count_nonzero(flagged, axis=1) >= _CORE_EVENT)
    if not chosen.size:
        return found
    misfit = profile_misfit(
        search.data,
        search.known_now,
        rows[chosen],
        cols[chosen],
        noise[chosen],
        search.width,
        cut,
    )
    found[chosen] = misfit > _CORE_MISFIT
    return found


def _along_track(search, hot_mask, rows, cols, noise, outer, cut):
    """Which pixels beside a hot event lie along a track, in a frame with stars.

    Sharper across than this frame's stars can be, judged on the frame as it
    came (with what is flagged since): without the hit beside it, a star's
    pixel would lose its brightest pair and look sharp. Or, for a track as
    wide as the stars, the event goes on past the pixel with a dark side.
    """
    keep = sharper_than_stars(
        search.data,
        noise,
        search.known_start,
        rows,
        cols,
        search.limit,
        cut,
        peak=False,
    )
    # Cheap first: a pixel that continues a track stands above the ring
    # two pixels out (most of the pixels beside an event do not).
    value = np.asarray(search.data[rows, cols], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        rest = np.flatnonzero(~keep & (value - outer > cut * noise))
    keep[rest] = _continues_track(
        search.data,
        search.known_now,
        hot_mask,
        rows[rest],
        cols[rest],
        outer[rest],
        cut * noise[rest],
        search.limit / STAR_MARGIN,
    )
    return keep


def _between(data, hot_mask, rows, cols, dark, lines=False):
    """Whether each pixel lies between a flagged pixel and the dark sky.

    True where, opposite some flagged neighbour, the pixel's other neighbour
    is below ``dark`` (or outside the image): the wing of a track falls to
    the sky on its far side, while along a spectral line, a slit edge or a
    star's profile the far side is lit too. With ``lines`` (a frame without
    stars), not where the pixel continues a line through a flagged
    neighbour (`_continues_a_line`).
    """
    # As bytes: the compiled gather reads them without a float copy.
    flagged = window_values(hot_mask.view(np.uint8), rows, cols, radius=1) == 1
    values = window_values(data, rows, cols, radius=1)
    # Row-major 3x3 window: position k and 8 - k are opposite neighbours.
    opposite = values[:, ::-1]
    with np.errstate(invalid="ignore"):
        far_is_dark = (opposite < dark[:, None]) | np.isnan(opposite)
    between = (flagged & far_is_dark).any(axis=1)
    if lines:
        chosen = np.flatnonzero(between)
        between[chosen] = ~_continues_a_line(
            data, flagged[chosen], rows[chosen], cols[chosen], dark[chosen]
        )
    return between


def _continues_a_line(data, flagged, rows, cols, dark):
    """Whether each pixel continues a line along the rows or the columns.

    A flagged neighbour straight above, below or beside the pixel, and the
    `_LINE_REACH` pixels beyond it on the other side all lit (above
    ``dark``): a spectral line or a trace that a hit crossed, which would
    otherwise be followed pixel by pixel (its diagonal neighbours, across
    the line, are dark). ``flagged`` is the 3x3 window of flags.
    """
    ny, nx = np.shape(data)
    steps = np.arange(1, _LINE_REACH + 1)
    found = np.zeros(rows.size, dtype=bool)
    for position, (dy, dx) in _AXIS_NEIGHBOURS:
        # The pixels beyond, away from that neighbour (outside the frame:
        # no line to go on).
        beyond_rows = rows[:, None] - steps * dy
        beyond_cols = cols[:, None] - steps * dx
        inside = (beyond_rows >= 0) & (beyond_rows < ny)
        inside &= (beyond_cols >= 0) & (beyond_cols < nx)
        values = np.asarray(
            data[np.clip(beyond_rows, 0, ny - 1), np.clip(beyond_cols, 0, nx - 1)],
            dtype=np.float64,
        )
        with np.errstate(invalid="ignore"):
            lit = (inside & (values >= dark[:, None])).all(axis=1)
        found |= flagged[:, position] & lit
    return found


def _continues_track(data, known, hot_mask, rows, cols, outer, margin, typical):
    """Whether each pixel continues a flagged track that is as wide as a star.

    Diffusion can make a track nearly as wide across as the frame's stars,
    so that the sharpness tests cannot tell the two apart; its shape does.
    Take the direction from a flagged neighbour through the pixel, where
    the pixel beyond that neighbour is flagged or lit too, and the next two
    pixels ahead are lit (five in a row: a track, not a hit beside a star,
    whose light falls within two pixels). For a
    Gaussian star of the frame (its diagonal pair ``typical`` of its peak:
    `star_flatness` without its margin), wherever the pixel lies on the
    star, one of these fails, while along a track all hold:

    - the next pixels carry at least `_ALONG_SHARE` of the pixel's height
      (the event goes on; out from a star's flank the light falls to
      ``typical**1.5`` of it, 0.15 at FWHM 1.8, and the test is not made
      where twice that exceeds the share: broad stars, for which the
      sharpness tests suffice);
    - one side across the direction is dark, below `_SIDE_SHARE` of
      ``sqrt(typical)`` of the pixel's height (a Gaussian star's pixel has
      both sides at ``sqrt(typical)`` of itself, 0.53 at FWHM 1.8);
    - two pixels across, on both sides, the light is below `_ACROSS_FAR` of
      the pixel's: across a star's flank it rises towards the core;
    - the pixel stands `_CONTINUE_MARGIN` growth margins high, and the ring
      two pixels out is mostly sky.
    """
    background = _local_background(data, known, rows, cols)
    values = window_values(data, rows, cols, radius=2)
    flagged = window_values(hot_mask.view(np.uint8), rows, cols, radius=2) == 1
    height = values[:, _CENTRE_5] - background
    share = max(_ALONG_SHARE, _ALONG_STAR * typical**1.5)
    along = np.fmax(share * height, margin)
    side = _SIDE_SHARE * np.sqrt(typical) * height - margin / _SIDE_NOISE
    far = _ACROSS_FAR * height + margin
    found = np.zeros(rows.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        lit = (
            (height > _CONTINUE_MARGIN * margin)
            & (values[:, _CENTRE_5] - outer > margin)
            & (outer - background < margin)
        )
        for dy, dx in _STEPS:
            across = [_AT_5[(sign * dx, -sign * dy)] for sign in (1, -1)]
            wide = [_AT_5[(2 * sign * dx, -2 * sign * dy)] for sign in (1, -1)]
            behind = _AT_5[(2 * dy, 2 * dx)]
            # two ahead, or a pixel off the line (a track between the
            # eight directions drifts across it)
            ahead = [
                _AT_5[_clip(-2 * dy + shift * dx, 2), _clip(-2 * dx - shift * dy, 2)]
                for shift in (-1, 0, 1)
            ]
            found |= (
                flagged[:, _AT_5[(dy, dx)]]
                & (flagged[:, behind] | (values[:, behind] - background > along))
                & (values[:, _AT_5[(-dy, -dx)]] - background > along)
                & (np.fmax.reduce(values[:, ahead], axis=1) - background > along)
                & (np.fmin(*values[:, across].T) - background < side)
                & (np.fmax(*values[:, wide].T) - background < far)
            )
    # The longer test only where the shorter one failed, on lit pixels.
    todo = np.flatnonzero(lit & ~found)
    faint = None
    if _ALONG_STAR * typical**1.5 <= _ALONG_SHARE:
        # The stars fall off fast: with eight pixels in a row to go by, a
        # faint track is followed through the dips of its energy loss.
        # Broad stars keep the share: round their flanks the light stays
        # (tried at FWHM 4 on the simulated camera: nothing more found, 3
        # more false flags per megapixel with sharp hits).
        faint = margin[todo]
    found[todo] = _continues_wide_track(
        data, hot_mask, rows[todo], cols[todo], background[todo], along[todo], faint
    )
    return found & lit


def _continues_wide_track(data, hot_mask, rows, cols, background, along, faint=None):
    """Whether each pixel continues the middle of a track three pixels wide.

    Across the middle of such a track both sides are lit and two pixels
    out the light still rises towards the middle, so the tests across of
    `_continues_track` fail; length does not: three flagged pixels in a row
    behind the pixel and four lit ahead on a straight line (`_WIDE_LINES`:
    a track between the eight directions drifts across them), nine in a
    row; the rest of its width then joins as wings (`_wings`). Past a
    star's peak the light has fallen below ``along`` within three pixels at
    FWHM 2.6 (0.02 of the peak four pixels out), and before its peak the
    light rises more than a track's does (`_WIDE_RISE`): a track that ends
    at a star, or passes beside one, stops at it. `_WIDE_ACROSS` pixels
    across, on both sides, nothing is lit: the track has ended there, where
    the edge of an overscan or a slit, lit on one side, has not.

    The energy loss of a faint track dips by half and more from pixel to
    pixel. Where no good pixel of the 9x9 window rises that much (no star
    near), the pixels ahead need only stand above ``faint`` (the growth
    margin, given where the frame's stars are sharp): so a faint track two
    pixels wide is followed too.
    """
    values = window_values(data, rows, cols, radius=_WIDE_REACH)
    flagged = window_values(hot_mask.view(np.uint8), rows, cols, radius=_WIDE_REACH)
    flagged = flagged == 1
    height = values[:, _AT_9[(0, 0)]] - background
    if faint is not None:
        good = np.where(flagged, -np.inf, values)
        with np.errstate(invalid="ignore"):
            alone = np.fmax.reduce(good, axis=1) - background <= _WIDE_RISE * height
        along = np.where(alone, faint, along)
    with np.errstate(invalid="ignore"):
        lit = (values - background[:, None] > along[:, None]) & (
            values - background[:, None] <= _WIDE_RISE * height[:, None]
        )
        # Across, a track ends: the edge of a lit area (an overscan's, a
        # slit's) is lit on one side as far as one looks.
        beside = values - background[:, None] > along[:, None]
    found = np.zeros(rows.size, dtype=bool)
    for dy, dx in _STEPS:
        behind, ahead = _wide_positions(dy, dx)
        found |= (
            flagged[:, behind].all(axis=1)
            & lit[:, ahead].all(axis=2).any(axis=1)
            & ~beside[:, _across_positions(dy, dx)].any(axis=1)
        )
    return found


@cache
def _across_positions(dy, dx):
    """Positions in the 9x9 window `_WIDE_ACROSS` steps across ``(dy, dx)``."""
    return np.array(
        [
            _AT_9[(side * dx * _WIDE_ACROSS, -side * dy * _WIDE_ACROSS)]
            for side in (1, -1)
        ]
    )


@cache
def _wide_positions(dy, dx):
    """Positions in the 9x9 window of the wide-track test for a direction.

    The `_WIDE_BEHIND` pixels behind, towards ``(dy, dx)``, and for each of
    `_WIDE_LINES` the `_WIDE_REACH` pixels ahead (shape ``(lines, reach)``).
    """
    behind = [_AT_9[(step * dy, step * dx)] for step in range(1, _WIDE_BEHIND + 1)]
    ahead = [
        [
            _AT_9[
                _clip(-step * dy + shift * dx, _WIDE_REACH),
                _clip(-step * dx - shift * dy, _WIDE_REACH),
            ]
            for step, shift in enumerate(line, start=1)
        ]
        for line in _WIDE_LINES
    ]
    return np.array(behind), np.array(ahead)


def _clip(offset, reach):
    """An offset kept within ``reach`` of the centre (a diagonal's drift)."""
    return min(max(offset, -reach), reach)


def _lower_quartile(values):
    """Lower quartile of the non-NaN values of each row (NaN if none)."""
    ranked = np.sort(np.where(np.isnan(values), np.inf, values), axis=1)
    n_valid = np.count_nonzero(np.isfinite(ranked), axis=1)
    index = np.clip((n_valid - 1) // 4, 0, None)
    quartile = ranked[np.arange(ranked.shape[0]), index]
    return np.where(n_valid > 0, quartile, np.nan)


def _grown(search, index, grow):
    """``grow`` more rings of pixels around the hot events, asked for by the user.

    Saturated pixels, their neighbours and masked pixels stay out.
    """
    added, frontier = [], index
    for _ in range(int(grow)):
        if not frontier.size:
            break
        pixels = search.around(frontier)
        frontier = pixels[~search.protected(pixels)]
        search.label.ravel()[frontier] = 1
        added.append(frontier)
    return np.concatenate(added) if added else np.empty(0, dtype=np.intp)


def _find_transients(
    data,
    flags,
    known,
    noise_source,
    threshold,
    neighbour_threshold,
    contrast,
    footprint_threshold=None,
    grow=0,
    proposed=None,
    quiet=None,
    silent=None,
    dark=None,
    mosaic=False,
):
    """Flag sharp outliers, then grow them into their above-noise neighbours.

    Only candidates are ever examined: the first pass over the whole frame
    (`residual_outliers`) keeps one byte per pixel; after it, each round
    looks only at the neighbours of what the last one found, with the local
    level recomputed without the pixels flagged so far. ``proposed``, a
    learned engine's proposals (`ccdpixfix.transients.learned`), are hot
    candidates that need not be sharp; where that engine is ``quiet``, a
    hot seed must stand out more (`_agreed`), and where it is ``silent``,
    so must a pixel of the spill growth (`_heard`).

    Returns
    -------
    hot, cold : 1-D int arrays
        Flat indices of the transients.
    star_light : (1-D int array, 1-D float array, 1-D int array)
        The pixels near the peaks of the stars that their profile fits
        (flat indices), what the stars give there (`defects_on_stars`),
        and the peaks (flat indices).
    """
    search = _Search(data, flags, known, noise_source, mosaic)
    candidates, signs, faint = _candidates(search, threshold, proposed)
    hot = _hot_seeds(search, candidates[signs > 0], threshold, contrast, proposed)
    faint = _faint_events(search, faint, threshold)
    # A hit is grown; a defect on a star is not: a faint hit is no longer one.
    search.on_stars = _not_in(search.on_stars, np.sort(faint))
    hot = np.concatenate([hot, faint])
    if quiet is not None:
        hot = _agreed(search, hot, quiet, threshold, neighbour_threshold)
    cold = _cold_seeds(search, candidates[signs < 0], threshold, contrast, dark)
    # A defect found on a star is not grown: its neighbours are the star's.
    search.mark(search.on_stars, 1.0)
    hot, cold = _spill_growth(search, hot, cold, neighbour_threshold, silent)
    cold = cold[~_on_a_cold_line(search, cold)]
    if footprint_threshold is not None and hot.size:
        hot = np.concatenate([hot, _grow_footprints(search, hot, footprint_threshold)])
        hot = np.concatenate(
            [hot, _rest_of_tracks(search, hot, threshold, footprint_threshold)]
        )
    hot = np.concatenate([hot, search.on_stars])
    if grow and hot.size:
        hot = np.concatenate([hot, _grown(search, hot, grow)])
    return hot, cold, search.star_light


def _candidates(search, threshold, proposed):
    """Flat indices and signs (+1 hot, -1 cold) of the first pass's outliers.

    Also the faint peaks (`_FAINT_SHARE` of the threshold above their level)
    that `_faint_events` judges. The pixels that can never be transients
    (`_protected`) left out.
    """
    codes = residual_outliers(
        search.data,
        search.known_start,
        threshold,
        peak_cut=_FAINT_SHARE * threshold,
        **search.noise,
    ).ravel()
    if proposed is not None:
        codes[proposed.ravel() & ((codes == 0) | (codes == 3))] = 1
    marked = np.flatnonzero(codes != 0)  # on bools: 10x faster than on bytes
    code = codes[marked]
    del codes
    unprotected = ~search.protected(marked)
    marked, code = marked[unprotected], code[unprotected]
    candidates = marked[code != 3]
    signs = np.where(code[code != 3] == 1, 1.0, -1.0)
    return candidates, signs, marked[code == 3]


def _faint_events(search, faint, threshold):
    """The faint peaks that are compact hits, in a frame with stars (flat indices).

    A faint diffuse hit shares its charge with its neighbours, so that it
    stands less than the threshold above the level they give, and is no
    candidate; above the local background it stands out, and a profile
    narrower than the stars' fits it better than theirs
    (`narrower_than_stars`), as no star of the frame can. Only where the
    stars' width is known and they are not undersampled (a faint
    undersampled star looks as compact), and not on one colour of a
    mosaic, whose stars the mosaic's test judges.
    """
    if search.width is None or search.width < UNDERSAMPLED or search.mosaic:
        return np.empty(0, dtype=np.intp)
    data, known = search.data, search.known_now
    rows, cols = np.unravel_index(faint, search.shape)
    noise = search.noise.at(rows, cols, search.known_start)
    # Most faint peaks are the sky's noise, or the tops of broad stars that
    # stand less than the threshold above the sky; the profile is fitted to
    # the rest only (on the 2048 x 2048 speed frame, 328 of 520; 3 are hits).
    with np.errstate(invalid="ignore"):
        tall = np.flatnonzero(
            np.asarray(data[rows, cols], dtype=np.float64)
            - _local_background(data, known, rows, cols)
            > threshold * noise
        )
    keep = narrower_than_stars(
        data,
        known,
        rows[tall],
        cols[tall],
        noise[tall],
        search.width,
        threshold,
        across=search.round,
    )
    return faint[tall[keep]]


def _hot_seeds(search, candidates, threshold, contrast, proposed):
    """The hot candidates that are transients (flat indices).

    The fixed sharpness test's verdicts are judged against the frame's own
    stars (`_judged_by_stars`), which it learns here (``search.limit``);
    with their width known, the defects on them that their profile finds
    are kept apart (``search.on_stars``, `_on_stars`), not to be grown.
    """
    data = search.data
    index, rows, cols, level, noise = _significant(search, candidates, 1.0, threshold)
    keep = _sharp(
        data, level, noise, search.known_now, rows, cols, contrast, 1.0, threshold
    )
    if proposed is not None:
        # ... that need not be sharp (the model saw the track around them):
        # significance above, and the star test below, judge them.
        keep |= proposed.ravel()[index]
    if not index.size:
        return index[keep]
    # The stars are looked for among the tall candidates only (`_TALL_SHARE`).
    tall = np.flatnonzero(
        np.asarray(data[rows, cols], dtype=np.float64) - level
        > _TALL_SHARE * STAR_SNR * noise
    )
    peaks, flatness = bright_peaks(
        data, search.known_now, rows[tall], cols[tall], noise[tall]
    )
    peaks = tall[peaks]
    search.limit = star_flatness(flatness)
    if search.limit is None and not search.mosaic:
        # Undersampled stars, whose flatness the pixel phase spreads, are
        # told by their common width (a colour plane's stars are judged on
        # the whole mosaic).
        alike, limit = undersampled_stars(
            data, search.known_now, rows[tall], cols[tall], noise[tall], threshold
        )
        if limit is not None:
            peaks, search.limit = tall[alike], limit
    if search.limit is not None:
        search.flanks = flank_limits(
            data, search.known_now, rows[peaks], cols[peaks], search.noise_at
        )
        search.width = star_width(
            data, search.known_now, rows[peaks], cols[peaks], noise[peaks], threshold
        )
        search.stars = rows[peaks], cols[peaks], noise[peaks]
        # (Their roundness matters only where their width is known.)
        search.round = search.width is not None and round_stars(
            data, search.known_now, rows[peaks], cols[peaks]
        )
    _judged_by_stars(search, keep, rows, cols, noise, threshold)
    found = index[keep]
    if search.width is not None:
        on_stars, search.star_light = _on_stars(search, rows, cols, peaks, threshold)
        search.on_stars = _not_in(np.unique(on_stars), found)
    return found


def _not_in(values, ordered):
    """The ``values`` not in ``ordered`` (sorted): `numpy.setdiff1d` without
    sorting ``ordered`` again (on the speed frame 10 000 hot seeds, 0.9 ms)."""
    at = np.searchsorted(ordered, values)
    inside = at < ordered.size
    found = np.zeros(values.size, dtype=bool)
    found[inside] = ordered[at[inside]] == values[inside]
    return values[~found]


def _on_stars(search, rows, cols, peaks, threshold):
    """Hot pixels on the frame's stars (flat indices), by the stars' profile.

    The median tests cannot see a defect on a bright star's flank, nor are
    the pixels there all candidates: each of the frame's stars, the bright
    round ``peaks`` (positions in ``rows, cols``), is fitted instead
    (`defects_on_stars`). Returns them, and the pixels within three pixels
    of the peaks of the stars the profile fits (flat indices, each near one
    star only) with what those stars give there and their stars' peaks
    (flat indices).
    """
    *found, (light_rows, light_cols, light, peak) = defects_on_stars(
        search.data,
        search.known_now,
        rows[peaks],
        cols[peaks],
        search.width,
        search.noise_at,
        threshold,
    )
    found = np.ravel_multi_index(found, search.shape)
    lit = np.ravel_multi_index((light_rows, light_cols), search.shape)
    # A pixel near two stars' peaks is neither's alone.
    lit, first, count = np.unique(lit, return_index=True, return_counts=True)
    first = first[count == 1]
    peak = np.ravel_multi_index(peak, search.shape)[first]
    return found[~search.protected(found)], (lit[count == 1], light[first], peak)


def _agreed(search, hot, quiet, threshold, neighbour_threshold):
    """The hot seeds (flat) that a learned engine's silence leaves standing.

    The classical test's ``threshold`` (5 sigma) lets Gaussian noise through
    at 0.29 pixels per megapixel: a sharp one-pixel spike, which no test of
    shape can tell from a faint one-pixel hit or a pixel hot for this
    exposure. A trained model has looked at the pixel too. Where it is
    ``quiet`` (its probability under a tenth of its threshold over the
    pixel's 3 x 3, `ccdpixfix.transients.learned.propose`), a seed that is
    also alone, no neighbour ``neighbour_threshold`` sigma above its level
    (read noise is independent from pixel to pixel, while charge spreads),
    must stand `_QUIET_MARGIN` higher: ``threshold + 0.5`` sigma, which
    noise passes 15 times less often. Each verdict needs the model's
    silence and the spike's lone faintness together: where the model sees
    any sign of a hit (it misses faint and diffuse events and one-pixel
    defects, but still gives their neighbourhood a few per cent), where
    the charge has spread, or where the pixel stands out clearly, the
    classical verdict stands. On the ESIS darks the model stays under
    0.0001 around the seven lone 5.0 to 5.3 sigma seeds of the classical
    test away from every event (as many cold pixels lie as far below), and
    at 0.05 or more beside the seeds of real events.
    """
    lonely = quiet.ravel()[hot]
    if not lonely.any():
        return hot
    index, rows, cols, level, noise = _significant(search, hot[lonely], 1.0, threshold)
    strong = _significant(search, index, 1.0, threshold + _QUIET_MARGIN)[0]
    around = window_values(
        search.data, rows, cols, radius=1, bad=search.known_now, include_centre=False
    )
    with np.errstate(invalid="ignore"):
        spread = np.fmax.reduce(around, axis=1) - level > neighbour_threshold * noise
    keep = ~lonely
    keep[np.flatnonzero(lonely)] = np.isin(
        hot[lonely], np.concatenate([strong, index[spread]])
    )
    return hot[keep]


def _judged_by_stars(search, keep, rows, cols, noise, threshold):
    """The sharpness test's verdicts ``keep``, revised in place.

    With stars in the frame (``search.limit``): a defect on a star is
    sharper than any of them, the peak of an undersampled star is not (by
    its flatness; in undersampled frames by its 5x5 profile, `fits_a_star`),
    a straight ridge longer than any star is a track, and a peak that a
    profile narrower than the stars' fits better is a hit
    (`narrower_than_stars`). Without: a sharp oblique ridge is no line or
    trace.
    """
    data, known, limit = search.data, search.known_now, search.limit
    # A colour plane keeps the stars' own width: the mosaic's test saves
    # its stars.
    shares = (1.0,) if search.mosaic else None
    rest = np.flatnonzero(~keep)
    if limit is None:
        keep[rest] = oblique_tracks(
            data, noise[rest], known, rows[rest], cols[rest], threshold
        )
        return
    taken = np.flatnonzero(keep)
    keep[taken] = ~star_like(data, noise[taken], known, rows[taken], cols[taken], limit)
    if search.width is not None and search.width < UNDERSAMPLED:
        # Undersampled stars fail star_like's roundness; their 5x5 profile
        # tells them.
        taken = np.flatnonzero(keep)
        keep[taken] = ~fits_a_star(
            data,
            known,
            rows[taken],
            cols[taken],
            noise[taken],
            search.width,
            threshold,
            shares,
            None if search.mosaic else search.stars,
        )
    keep[rest] = sharper_than_stars(
        data, noise[rest], known, rows[rest], cols[rest], limit, threshold
    )
    rest = rest[~keep[rest]]
    keep[rest] = straight_ridges(
        data,
        noise[rest],
        known,
        rows[rest],
        cols[rest],
        limit / STAR_MARGIN,
        threshold,
    )
    rest = rest[~keep[rest]]
    # A star's peak is the brightest pixel near the candidate, once the
    # defects found beside it are left out.
    found = known.copy()
    found[rows[keep], cols[keep]] = True
    keep[rest] = sharper_than_flanks(
        data, noise[rest], found, rows[rest], cols[rest], search.flanks, threshold
    )
    if search.width is not None:
        # The star-like peaks vetoed above are judged again, on all their
        # 5x5 window.
        rest = np.flatnonzero(~keep)
        keep[rest] = narrower_than_stars(
            data,
            known,
            rows[rest],
            cols[rest],
            noise[rest],
            search.width,
            threshold,
            shares,
            across=search.round,
        )


def _cold_seeds(search, candidates, threshold, contrast, dark=None):
    """The cold candidates that are transients (flat indices).

    A cold pixel must also lie below the sky around it, not just below the
    stars or lines it sits between, and have lost `_COLD_LOSS` of its light
    above the frame's darkest level ``dark`` (`dark_level`; measured here
    if None): a pixel that read out empty falls to the bias, while the dust
    and the low-response pixels of a flat, the bad-pixel map's business,
    keep most of theirs and are no transients.
    """
    data = search.data
    index, rows, cols, level, noise = _significant(search, candidates, -1.0, threshold)
    keep = _sharp(
        data, level, noise, search.known_now, rows, cols, contrast, -1.0, threshold
    )
    sky = _local_background(data, search.known_now, rows, cols)
    value = np.asarray(data[rows, cols], dtype=np.float64)
    keep &= sky - value > threshold * noise
    if keep.any():
        if dark is None:
            fitted = fit_rows(search.shape)
            dark = dark_level(data[fitted], search.known_start[fitted])
        keep &= value - dark < _COLD_LOSS * (level - dark)
    return index[keep]


def dark_level(values, known):
    """The darkest level of a frame: where its signal is zero, or nearly.

    The `_DARK_PERCENTILE` percentile of the good pixels among ``values``
    (sampled): a raw frame's overscan, or its darkest sky; a few dead
    pixels do not reach it. Given the rows `fit_rows` picks, it is the same
    for a frame in memory and in chunks (`fix_pixels_dask` gives each chunk
    the whole frame's).

    Parameters
    ----------
    values : array
        Pixels of the frame as searched (its `fit_rows`).
    known : bool array
        Which of them are known to be bad, left out.

    Returns
    -------
    float
        -inf where no pixel is good (then no cold pixel is a transient).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.transients import dark_level
    >>> flat = np.full((100, 100), 12000.0)
    >>> flat[:, -10:] = 1000.0  # the overscan, at the bias
    >>> dark_level(flat, np.zeros(flat.shape, bool))
    1000.0
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.asarray(known) & np.isfinite(values)]
    if not values.size:
        return -np.inf
    values = values[:: max(1, values.size // _DARK_SAMPLES)]
    return float(np.percentile(values, _DARK_PERCENTILE))


def _on_a_cold_line(search, cold):
    """Which cold pixels (flat) lie on a dark line along a row or a column.

    A pixel that read out empty is one pixel; a dark column or row (the
    first columns of an overscan, a column of low response without a map)
    runs on: `_COLD_LINE` or more of the `_COLD_REACH` pixels each way along
    a row or a column are cold too. Persistent, not a transient.
    """
    if cold.size < _COLD_LINE:
        return np.zeros(cold.size, dtype=bool)
    ny, nx = search.shape
    rows, cols = np.unravel_index(cold, search.shape)
    steps = np.concatenate([np.arange(-_COLD_REACH, 0), np.arange(1, _COLD_REACH + 1)])
    line = np.zeros(cold.size, dtype=bool)
    for dy, dx in ((1, 0), (0, 1)):  # along the column, along the row
        r, c = rows[:, None] + dy * steps, cols[:, None] + dx * steps
        inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
        labels = search.label[np.clip(r, 0, ny - 1), np.clip(c, 0, nx - 1)]
        line |= np.count_nonzero(inside & (labels == -1), axis=1) >= _COLD_LINE
    return line


def _spill_growth(search, hot, cold, cut, silent=None):
    """The seeds and their neighbours that spilled from them (`_spill`).

    Round after round, the neighbours of what the last round found join
    when they stand ``cut`` sigma out and look like the rest of the event;
    a hot one where a learned engine is ``silent`` must stand out more
    (`_heard`).

    Returns
    -------
    hot, cold : 1-D int arrays
        Flat indices, seeds included.
    """
    new = (hot, cold)
    found = ([], [])
    for _ in range(_MAX_ITERATIONS):
        if not (new[0].size or new[1].size):
            break
        for side, sign in enumerate((1.0, -1.0)):
            search.mark(new[side], sign)
            found[side].append(new[side])
        new = tuple(
            _spilled(search, new[side], sign, cut)
            for side, sign in enumerate((1.0, -1.0))
        )
        if silent is not None:
            new = (_heard(search, new[0], silent, cut), new[1])
    empty = [np.empty(0, dtype=np.intp)]
    return np.concatenate(found[0] or empty), np.concatenate(found[1] or empty)


def _heard(search, spilled, silent, cut):
    """The hot spill pixels (flat) that a learned engine's silence leaves standing.

    The spill growth takes a neighbour of an event from ``cut`` (2.5) sigma
    up: around a one-pixel hit, which has no charge to spill, that takes
    the noise (Gaussian noise passes 2.5 sigma once in 160 pixels). The
    model has looked at the pixel itself. Where it sees no charge there
    (its own probability under
    `ccdpixfix.transients.learned.SILENT_PROBABILITY`, 1e-5, where noise
    gives 1e-8 to 3e-7 and the charge beside even the hits it misses
    3e-4 or more), the pixel must stand `_QUIET_MARGIN` higher, 3 sigma:
    the level at which a stack of the frames calls a pixel footprint. On
    the ESIS darks this drops a 2.7-sigma pixel beside a one-pixel hit of
    790 e- (1.7 sigma in the stack, probability 5e-7) and keeps every
    footprint pixel; one footprint pixel there at 3.04 sigma has 3e-6:
    the margin is what keeps it, the model alone would not.
    """
    lonely = silent.ravel()[spilled]
    if not lonely.any():
        return spilled
    strong = _significant(search, spilled[lonely], 1.0, cut + _QUIET_MARGIN)[0]
    return spilled[~lonely | np.isin(spilled, strong)]


def _spilled(search, index, sign, cut):
    """Neighbours of ``index`` that spilled from it (flat indices)."""
    pixels = search.around(index)
    pixels = pixels[~search.protected(pixels)]
    index, rows, cols, _, noise = _significant(search, pixels, sign, cut)
    stars = None
    if search.limit is not None and sign > 0:
        stars = (search.known_start, search.limit)
    keep = _spill(
        search.data, noise, search.known_now, rows, cols, cut, sign, stars=stars
    )
    return index[keep]


def flag_transients(
    ccd,
    *,
    threshold: float = TransientOptions.threshold,
    neighbour_threshold: float = TransientOptions.neighbour_threshold,
    contrast: float = TransientOptions.contrast,
    footprint_threshold: float | None = TransientOptions.footprint_threshold,
    grow: int = TransientOptions.grow,
    saturation: float | None = TransientOptions.saturation,
    gain: float | None = TransientOptions.gain,
    read_noise: float | None = TransientOptions.read_noise,
    cfa: str | None = None,
    add_keyword=True,
    detector: str = TransientOptions.detector,
    detector_options: dict | None = TransientOptions.detector_options,
):
    """Flag pixels hit by cosmic rays or hot or cold for this exposure only.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        One exposure, raw (integers with the bias still in) or calibrated; a
        ``(3, ny, nx)`` colour cube is searched plane by plane.
        Pixels already flagged or masked never enter the medians or the
        noise estimate.
    threshold : float, optional
        Detection threshold in units of the pixel noise. 5 keeps false
        detections from Gaussian noise below one per megapixel.
    neighbour_threshold : float, optional
        Threshold, in units of the pixel noise, for the neighbours of a
        detected pixel (the rest of a cosmic-ray track, the charge that
        spilled around a hit). 2.5 takes what is still above the noise.
    contrast : float, optional
        How much sharper than its surroundings a transient must be: its
        excess over the median of its neighbours must exceed ``contrast``
        times the neighbours' excess over the local background. A centred
        star with FWHM 1.5 px reaches 3; a cosmic ray on the sky is far above.
        Lower values find more hits on stars and flag more stars.
    footprint_threshold : float or None, optional
        Once a hit is found, its wings join it where they stand above the
        local background by this many times the pixel noise, fall away from
        the flagged pixel they touch, and are not on a star (as L.A.Cosmic's
        ``sigfrac``). Real tracks carry charge diffusion: on the ESIS space
        darks (``benchmarks/bench_real.py``) 3.5 flags 96 % of the footprint
        a stack of the frames shows above 3 sigma, with under one false flag
        per megapixel; 3 takes 97 % but nearly doubles the false flags on
        the rims of tracks. None keeps only the spill growth of
        ``neighbour_threshold``.
    grow : int, optional
        Rings of pixels, beyond what is found, added around every hot event
        (0 to 3 are sensible: a safety margin for photometry, at the price of
        more replaced pixels; at most 10). Saturated and masked pixels stay
        out.
    saturation : float, optional
        Saturation level in data units; by default from the header
        (``SATURATE`` and similar) or, for integer data, the type's maximum.
        Saturated pixels get ``SATURATED``; they and their neighbours are
        never flagged as transients.
    gain, read_noise : float, optional
        Gain (e-/ADU) and read noise (e-) overriding the header's ``GAIN``
        and ``RDNOISE``. Used only if the frame has no uncertainty plane.
    cfa : str, optional
        Bayer pattern of a colour camera's raw mosaic (``"RGGB"``, ...): each
        colour is searched on its own, against same-colour neighbours only
        (`ccdpixfix.cfa`). By default from the header's ``BAYERPAT``;
        ``"none"`` ignores the header.
    add_keyword : bool, str, `ccdproc.Keyword` or dict, optional
        The step's keyword in the header, as ccdproc's steps take it (see
        `fix_pixels`); False adds none.
    detector : {"classical", "deepcr", "cosmic-conn"}, optional
        The engine that proposes hot seeds. "classical" (the default) is the
        median-residual and sharpness test above. "deepcr" and "cosmic-conn"
        run a trained network (`ccdpixfix.transients.learned`; ``pip install
        "ccdpixfix[deepcr]"`` or ``"ccdpixfix[cosmic-conn]"``): each pixel it
        proposes becomes a seed where it stands ``threshold`` sigma above the
        local level and is not a star's peak, beside the classical seeds
        (a lone one where the model sees nothing needs ``threshold + 0.5``);
        growth and flags are the same (but a spill pixel where the model
        sees no charge needs ``neighbour_threshold + 0.5``). Grey frames only.
    detector_options : dict, optional
        For a learned engine: ``model``, ``threshold`` (probability),
        ``device``, ``tile``, ``overlap``, ``gain``
        (`ccdpixfix.transients.learned.check_detector`). The engine, its model and
        threshold are recorded in the HISTORY entry.

    Returns
    -------
    `~astropy.nddata.CCDData`
        A new object: ``flags`` gains ``TRANSIENT_HOT``, ``TRANSIENT_COLD``
        and ``SATURATED``, ``mask`` is updated, ``data`` is unchanged
        (integers become float32). Without an uncertainty plane on input, one
        is added from the noise model.

    Raises
    ------
    TypeError
        If ``ccd`` is not a `~astropy.nddata.CCDData`.
    ValueError
        If the data are not 2-D, hold no finite pixel, or have no measurable
        noise, or for an unknown ``detector``.
    ImportError
        If a learned ``detector``'s extra is not installed.

    Examples
    --------
    >>> from ccdpixfix import PixelFlag, flag_transients
    >>> from ccdpixfix.datasets import SimulatedCamera
    >>> frame, truth = SimulatedCamera((128, 128), seed=3).science(seed=4)
    >>> flagged = flag_transients(frame)
    >>> hits = (flagged.flags & PixelFlag.TRANSIENT_HOT) != 0
    >>> bool(hits[truth["transient_amplitude"] > 50 * truth["sigma"]].all())
    True
    """
    checked = TransientOptions.from_keywords(
        threshold=threshold,
        neighbour_threshold=neighbour_threshold,
        contrast=contrast,
        footprint_threshold=footprint_threshold,
        grow=grow,
        saturation=saturation,
        gain=gain,
        read_noise=read_noise,
        detector=detector,
        detector_options=detector_options,
    )
    parameters = {name: getattr(checked, name) for name in _RECORDED}
    options = dict(saturation=saturation, gain=gain, read_noise=read_noise)
    if is_rgb_cube(ccd):
        # A cube's planes are colours already, as in the other steps.
        check_cube_pattern(cfa)
    learned = engine(ccd, detector, detector_options, cfa=cfa)
    if learned is not None:
        # A learned engine proposes seeds (`ccdpixfix.transients.learned`);
        # the rest is ours.
        options["learned"] = learned
    if is_rgb_cube(ccd):
        out, counts = per_plane(
            ccd, lambda plane: _flag_transients(plane, **options, **parameters)
        )
        return record_step(
            out,
            "flag_transients",
            add_keyword=add_keyword,
            planes=3,
            **parameters,
            **counts,
        )
    check_ccd(ccd)
    pattern = cfa_pattern(ccd.meta, cfa)
    if pattern is None:
        out, counts = _flag_transients(ccd, **options, **parameters)
    else:
        # Footprint growth stays off on a mosaic: in a half-resolution colour
        # plane the wing of an undersampled star looks like a hit's wing.
        mosaic = {**parameters, "footprint_threshold": None, "mosaic": True}
        out, counts = per_colour(
            ccd,
            pattern,
            lambda sub, _: _flag_transients(sub, **options, **mosaic),
        )
        out, n_stars = unflag_stars(out, pattern)
        counts["n_hot"] -= n_stars
        counts["cfa"] = pattern
    return record_step(
        out,
        "flag_transients",
        add_keyword=add_keyword,
        **parameters,
        **recorded(learned),
        **counts,
    )


def _flag_transients_quietly(
    ccd,
    *,
    threshold,
    neighbour_threshold,
    contrast,
    saturation,
    gain,
    read_noise,
    footprint_threshold=3.5,
    grow=0,
    noise_model="fit",
    learned=None,
    dark_level=None,
    mosaic=False,
):
    """The work of `_flag_transients`, numpy warnings left on.

    The options were checked by the caller (`TransientOptions`);
    ``dark_level`` is the whole frame's (`dark_level`) when this is a chunk
    of it, or None: measured on this frame. ``mosaic``: the frame is one
    colour of a Bayer mosaic.
    """
    data = np.asarray(ccd.data)
    flags = input_flags(ccd)
    level_cut = saturation_level(ccd) if saturation is None else float(saturation)
    if level_cut is not None:
        # +inf is a broken value, not light: it is replaced like NaN.
        with np.errstate(invalid="ignore"):
            flags[(data >= level_cut) & (data < np.inf)] |= np.uint16(
                PixelFlag.SATURATED
            )
    # Every flagged pixel (warm ones too, and those not finite: input_flags
    # gives them DO_NOT_USE) stays out of the medians and the noise; masked
    # ones cannot be transients, but a cosmic ray on a warm pixel must still
    # be found.
    known = flags != 0
    noise_source = frame_noise(
        ccd,
        data,
        known,
        gain=gain,
        read_noise=read_noise,
        model=noise_model,
    )
    # A learned engine's proposals, judged with the noise found (see above),
    # and where it sees no hit at all.
    proposed = quiet = silent = None
    if learned is not None:
        proposed, quiet, silent = propose(data, known, noise_source, *learned)
    hot, cold, star_light = _find_transients(
        data,
        flags,
        known,
        noise_source,
        threshold,
        neighbour_threshold,
        contrast,
        footprint_threshold,
        grow,
        proposed,
        quiet,
        silent,
        dark_level,
        mosaic,
    )
    flags.ravel()[hot] |= np.uint16(PixelFlag.TRANSIENT_HOT)
    flags.ravel()[cold] |= np.uint16(PixelFlag.TRANSIENT_COLD)
    out_sigma = None
    # A frame without an uncertainty plane gets one from the model (at each
    # pixel's local level), and so does a frame whose plane was found far
    # too small.
    if noise_source.model is not None:
        del known
        out_sigma = level_noise(data, flags != 0, noise_source["model"])
    counts = {"n_hot": int(hot.size), "n_cold": int(cold.size)}
    return flags, out_sigma, counts, star_light


def _flag_transients(ccd, **parameters):
    """`flag_transients` without the header record: (new ccd, counts)."""
    flags, sigma, counts, _ = flag_transients_planes(ccd, **parameters)
    return new_ccd(ccd, flags=flags, sigma=sigma), counts


def flag_transients_planes(ccd, **parameters):
    """The planes `flag_transients` makes, and the stars' light.

    (flags, sigma or None, counts, star_light): ``sigma`` is None where the
    frame's uncertainty plane stays as it is; ``star_light`` holds the
    pixels near the peaks of the stars that their profile fits (flat
    indices) and what the stars give there, the estimates that replace a
    bad pixel there (`fix_pixels`).
    """
    with quiet_numerics():
        return _flag_transients_quietly(ccd, **parameters)
