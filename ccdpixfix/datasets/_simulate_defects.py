"""Pixel defects and one-exposure artefacts for `ccdpixfix.datasets`.

Private helpers that lay out the simulated camera's persistent defects (the
isolated hot, warm, dead, low-response and stuck pixels and the bad column),
draw the dark-current, response and stuck-value maps they spoil, and render
what spoils single exposures: cosmic-ray spots and tracks and single-pixel
transients.  Every function draws from the `numpy.random.Generator` it is
given, in a fixed order, so frames are reproducible from their seeds.
"""

import math

import numpy as np
from scipy import ndimage

# Columns kept clear on each side of the simulated bad column.
_COLUMN_MARGIN = 10


def _log_uniform(generator, low: float, high: float, mask: np.ndarray) -> np.ndarray:
    """Draw one log-uniform value per True pixel of ``mask``."""
    return np.exp(generator.uniform(np.log(low), np.log(high), mask.sum()))


def _defect_masks(shape, keys, fractions: dict, bad_column: bool, generator) -> dict:
    """Lay out the persistent defects: isolated pixels and a bad column.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the sensor.
    keys : tuple of str
        Names of the defect masks: the isolated-pixel kinds, then
        ``"bad_column"`` last (``ccdpixfix.datasets.DEFECT_KEYS``).
    fractions : dict
        Fraction of pixels of each isolated-pixel kind.
    bad_column : bool
        Whether a column segment, from a random row to a readout edge, is bad.
    generator : numpy.random.Generator
        Source of every random draw.

    Returns
    -------
    dict
        One boolean mask per key, plus ``"defect"``, their union.

    Raises
    ------
    ValueError
        If a bad column is asked of fewer than 21 columns, or the defects
        cannot all be isolated from one another.
    """
    ny, nx = shape
    masks = {key: np.zeros(shape, dtype=bool) for key in keys}
    if bad_column:
        if not nx >= 2 * _COLUMN_MARGIN + 1:
            raise ValueError(
                f"bad_column needs >= {2 * _COLUMN_MARGIN + 1} columns, got {nx}"
            )
        column = generator.integers(_COLUMN_MARGIN, nx - _COLUMN_MARGIN)
        length = generator.integers(math.ceil(ny / 4), 3 * ny // 4 + 1)
        # A charge trap spoils the column from its row to the readout edge.
        to_bottom = generator.random() < 0.5
        rows = slice(0, length) if to_bottom else slice(ny - length, ny)
        masks["bad_column"][rows, column] = True
    counts = [round(fractions[key] * ny * nx) for key in keys[:-1]]
    forbidden = ndimage.binary_dilation(masks["bad_column"], np.ones((3, 3)))
    positions = _isolated_pixels(shape, sum(counts), forbidden, generator)
    for key, chosen in zip(
        keys[:-1], np.split(positions, np.cumsum(counts)[:-1]), strict=True
    ):
        masks[key].flat[chosen] = True
    masks["defect"] = np.logical_or.reduce([masks[key] for key in keys])
    return masks


def _defect_maps(
    shape, truth, *, dark_current, bias, prnu, adc_maximum, generator, prnu_tail=0.0
) -> tuple[np.ndarray, ...]:
    """Draw the dark-current, response and stuck-value maps of a sensor.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the sensor.
    truth : dict
        Defect masks from `_defect_masks`.
    dark_current : float
        Typical dark current in e-/s per pixel.
    bias : float
        Bias pedestal in ADU; stuck pixels in mid-range read above it.
    prnu : float
        Photo-response non-uniformity (relative standard deviation).
    prnu_tail : float
        Fraction of pixels in the tail of the response (`_response_tail`).
    adc_maximum : int
        Highest value the ADC can write; some stuck pixels read it.
    generator : numpy.random.Generator
        Source of every random draw.

    Returns
    -------
    base_dark_rate, base_response : numpy.ndarray
        Dark current (e-/s) and relative response of a defect-free detector
        that shares this one's dark and flat-field pattern. With
        ``prnu_tail`` the response has the tail real sensors show
        (`_response_tail`): that fraction of pixels 2.5-8 % high or 6.5-8 %
        low, which are not defects but which no Gaussian draws.
    dark_rate, response : numpy.ndarray
        The same maps with the hot, warm, bad-column, dead and low-response
        pixels applied.
    stuck_value : numpy.ndarray
        ADU that each stuck pixel reads; NaN elsewhere.
    """
    # The defect-free maps give the truth images of a perfect detector
    # that shares this one's dark and flat-field pattern.
    base_dark_rate = dark_current * generator.lognormal(0, 0.2, shape)
    base_response = 1.0 + prnu * generator.standard_normal(shape)
    dark_rate = base_dark_rate.copy()
    for key, low, high in (("hot", 1.0, 200.0), ("warm", 0.1, 0.5)):
        dark_rate[truth[key]] = _log_uniform(generator, low, high, truth[key])
    dark_rate[truth["bad_column"]] += 0.5
    response = base_response.copy()
    for key, low, high in (("dead", 0.0, 0.05), ("low_response", 0.3, 0.8)):
        response[truth[key]] = generator.uniform(low, high, truth[key].sum())
    stuck = truth["stuck"]
    values = np.array([0.0, adc_maximum, np.nan])[generator.integers(0, 3, stuck.sum())]
    middle = np.isnan(values)
    low = int(bias) + 100
    values[middle] = generator.integers(low, max(low + 1, 30001), middle.sum())
    stuck_value = np.full(shape, np.nan)
    stuck_value[stuck] = values
    if prnu_tail > 0:
        # Drawn last, so that every earlier draw (and so every defect and
        # frame of a seeded camera) stays what it was before the tail.
        tail = _response_tail(shape, truth["defect"], prnu_tail, generator)
        base_response[tail > 0] = tail[tail > 0]
        response[tail > 0] = tail[tail > 0]
    return base_dark_rate, base_response, dark_rate, response, stuck_value


# The tail of the pixel response of real sensors: in the two raw flats of an
# SBIG STL-1001 (issue 15) 4,100 pixels per Mpix were 2.5-10 % high or about
# 11 % low in both flats, far beyond a Gaussian PRNU of 1 %. Three quarters
# high, one quarter low, as there; the ranges stop short of the map's cuts
# (``low_response`` 0.9, ``high_response`` 1.1) by a few sigma of a flat's
# noise, so that the truth stays unambiguous: pixels beyond the cuts are the
# camera's ``low_response`` defects.
_TAIL_HIGH_SHARE = 0.75
_TAIL_HIGH = (1.025, 1.08)
_TAIL_LOW = (0.92, 0.935)


def _response_tail(shape, defect, fraction, generator):
    """The response of ``fraction`` of the pixels outside the defects (0 elsewhere)."""
    tail = np.zeros(shape)
    allowed = np.flatnonzero(~defect)
    n_high = round(_TAIL_HIGH_SHARE * fraction * defect.size)
    n_low = round((1 - _TAIL_HIGH_SHARE) * fraction * defect.size)
    chosen = generator.choice(allowed, min(n_high + n_low, allowed.size), replace=False)
    high, low = chosen[:n_high], chosen[n_high:]
    tail.flat[high] = generator.uniform(*_TAIL_HIGH, high.size)
    tail.flat[low] = generator.uniform(*_TAIL_LOW, low.size)
    return tail


def _isolated_pixels(shape, count: int, forbidden: np.ndarray, generator):
    """Draw ``count`` distinct flat indices, no two pixels touching."""
    ny, nx = shape
    occupied, chosen = forbidden.copy(), []
    # Random sequential placement jams near npix / 9; give up well before.
    for _ in range(20):
        if len(chosen) == count:
            break
        for index in generator.integers(0, ny * nx, 2 * (count - len(chosen)) + 16):
            row, col = divmod(int(index), nx)
            if len(chosen) < count and not occupied[row, col]:
                occupied[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = True
                chosen.append(int(index))
    if not len(chosen) == count:
        raise ValueError(f"cannot isolate {count} defects; lower fractions")
    return np.array(chosen, dtype=int)


def _transients(
    defect: np.ndarray, counts: dict, generator, *, render=None, on_stars=None
):
    """Return the one-exposure charge (e-) and the mask of cold pixels.

    Parameters
    ----------
    defect : numpy.ndarray
        Mask of the persistent defects, which single-pixel events avoid.
    counts : dict
        ``n_cosmic_rays``, ``n_transient_hot`` and ``n_transient_cold``.
    generator : numpy.random.Generator
        Source of every random draw.
    render : callable, optional
        ``render(shape, n_hits, generator, force_edges=True)`` gives the
        cosmic rays' electrons; `_cosmic_rays` by default.
    on_stars : numpy.ndarray, optional
        Pixels where a star is bright: half of the transient hot pixels go
        there (defects on stars are where photometry suffers).

    Returns
    -------
    deposit : numpy.ndarray
        Electrons from cosmic rays and transient hot pixels, rounded.
    cold : numpy.ndarray
        Mask of the transient cold pixels.
    """
    render = _cosmic_rays if render is None else render
    deposit = render(defect.shape, counts["n_cosmic_rays"], generator, force_edges=True)
    # Single-pixel events go where nothing else is, so truth stays unambiguous
    # (a diffuse hit's far wings, below one electron, do not count).
    taken = defect | (deposit >= 1)
    n_hot = counts["n_transient_hot"]
    hot = np.zeros(defect.shape, bool)
    if on_stars is not None:
        hot = _single_pixels(n_hot // 2, taken | ~on_stars, generator)
        n_hot -= int(hot.sum())
    hot |= _single_pixels(n_hot, taken | hot, generator)
    deposit[hot] += _log_uniform(generator, 200.0, 5000.0, hot)
    cold = _single_pixels(counts["n_transient_cold"], taken | hot, generator)
    return np.round(deposit), cold


def _single_pixels(count: int, excluded: np.ndarray, generator) -> np.ndarray:
    """Mask of ``count`` random pixels outside ``excluded``."""
    mask = np.zeros(excluded.shape, dtype=bool)
    allowed = np.flatnonzero(~excluded)
    mask.flat[generator.choice(allowed, min(count, allowed.size), replace=False)] = 1
    return mask


def _cosmic_rays(shape, n_hits: int, generator, *, force_edges: bool):
    """Electrons deposited by ``n_hits`` cosmic rays, alternately spots and tracks.

    With ``force_edges`` the first hit is a spot on a corner pixel and the
    second a track starting on an edge pixel, so repairers meet both cases.
    """
    ny, nx = shape
    pieces = []
    for index in range(n_hits):
        start = (generator.uniform(-0.5, ny - 0.5), generator.uniform(-0.5, nx - 0.5))
        if force_edges and index == 0:
            start = (generator.choice([0, ny - 1]), generator.choice([0, nx - 1]))
        elif force_edges and index == 1:
            along = generator.integers(1, min(shape) - 1)
            start = [(along, 0), (along, nx - 1), (0, along), (ny - 1, along)][
                generator.integers(0, 4)
            ]
        render = _cosmic_spot if index % 2 == 0 else _cosmic_track
        pieces.append(render(np.asarray(start, dtype=float), shape, generator))
    deposit = np.zeros(ny * nx)
    if pieces:
        rows, cols, charges = (
            np.concatenate(part) for part in zip(*pieces, strict=True)
        )
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        flat = rows[inside] * nx + cols[inside]
        deposit = np.bincount(flat, weights=charges[inside], minlength=ny * nx)
    return deposit.reshape(shape)


def _cosmic_spot(start, shape, generator):
    """A central pixel of 100-20000 e- plus up to three weaker neighbours."""
    centre = np.exp(generator.uniform(np.log(100.0), np.log(20000.0)))
    steps = np.array([(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1) if r or c])
    picked = steps[generator.choice(8, generator.integers(0, 4), replace=False)]
    offsets = np.vstack([(0, 0), picked])
    charges = centre * np.concatenate(
        [[1.0], generator.uniform(0.05, 0.4, len(picked))]
    )
    row, col = np.rint(start).astype(int)
    return row + offsets[:, 0], col + offsets[:, 1], charges


def _cosmic_track(start, shape, generator):
    """A straight 3-30 px track sampled four times per pixel of its length."""
    length = generator.uniform(3.0, 30.0)
    # Aim roughly at the frame centre so edge-starting tracks enter the frame.
    centre = (np.asarray(shape) - 1) / 2 - start
    angle = math.atan2(centre[0], centre[1]) + generator.uniform(-np.pi, np.pi) / 2
    per_pixel = np.exp(generator.uniform(np.log(500.0), np.log(3000.0)))
    distance = np.linspace(0.0, length, math.ceil(4 * length) + 1)
    rows = np.rint(start[0] + distance * math.sin(angle)).astype(int)
    cols = np.rint(start[1] + distance * math.cos(angle)).astype(int)
    charges = per_pixel / 4 * generator.lognormal(0.0, 0.3, distance.size)
    return rows, cols, charges
