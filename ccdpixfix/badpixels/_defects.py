"""Detection of persistent defects in combined darks and flats.

Plain numpy helpers behind `make_bad_pixel_map`; they know nothing of
`CCDData` or headers.
"""

import itertools

import numpy as np
from scipy import ndimage

from ..kernels.medians import local_level
from ..kernels.stacks import clipped_stack_mean, stack_median
from ..noise.core import robust_sigma

__all__ = [
    "column_segments",
    "dark_excess",
    "flat_response",
    "local_excess",
    "robust_combine",
    "stuck_pixels",
]

# Rejection threshold (in temporal noise) for cosmic rays in a dark stack.
_CLIP_SIGMA = 5.0
# Length (px) of the running median along a column that finds hot and bad
# column segments; also the shortest segment reported.
_COLUMN_WINDOW = 15
# Threshold (sigma) that extends a column segment pixel by pixel at its ends.
_COLUMN_GROW_SIGMA = 2.5
# Expected chance coincidences per image above which stuck pixels cannot be
# told from noise that happened to repeat.
_STUCK_CHANCE_LIMIT = 0.1


def robust_combine(stack, *, floor=0.0):
    """Combine frames of one exposure time, rejecting cosmic rays.

    Each pixel averages the frames that lie within 5 temporal-noise sigma of
    its median (of its lower value when there are two frames, since cosmic
    rays only add charge). The temporal noise is measured from the
    differences between frames, so it is the noise of a single frame; it is
    taken as at least ``floor`` (half an ADU for integer frames, whose
    differences are quantised).

    Returns
    -------
    combined : 2-D float32 array
    noise : float
        Temporal noise of one frame (data units).
    """
    n_frames = len(stack)
    if n_frames == 1:
        return np.asarray(stack[0]).astype(np.float32), np.nan
    # A regular sample of the difference of two frames gives the noise.
    step = max(1, np.size(stack[0]) // 500_000)
    first, second = (np.asarray(frame).ravel()[::step] for frame in stack[:2])
    noise = robust_sigma(second.astype(np.float64) - first) / np.sqrt(2)
    limit = _CLIP_SIGMA * max(noise, floor)
    return clipped_stack_mean(stack, limit, lowest=n_frames == 2), noise


def local_excess(image, bad=None):
    """Excess of each pixel over the level its neighbours predict.

    The level (`ccdpixfix.kernels.medians.local_level`) interpolates linear
    gradients exactly, so smooth structure of any scale (amplifier glow,
    vignetting, dust shadows) leaves no excess, while a defect keeps all of
    its own. Pixels in ``bad`` (defects already found) are left out of the
    levels of their neighbours.
    """
    return image - local_level(image, bad)[0]


def dark_excess(masters, exptimes, bad=None):
    """Dark signal of each pixel above the detector's smooth level.

    Parameters
    ----------
    masters : list of 2-D arrays
        Combined darks, one per exposure time.
    exptimes : list of float or None
        Their exposure times.
    bad : 2-D bool array, optional
        Known defects, left out of their neighbours' levels.

    Returns
    -------
    excess : 2-D array
        Per second (a slope fitted through the exposure times, so the bias
        cancels) when two or more exposure times are known, else per frame.
    per_second : bool
        Whether ``excess`` is a rate.
    """
    times = [t for t in exptimes if t is not None]
    if len(masters) >= 2 and len(times) == len(masters) and np.ptp(times) > 0:
        t = np.asarray(times, dtype=np.float64)
        t_mean = t.mean()
        stack = np.asarray(masters, dtype=np.float64)
        slope = np.tensordot(t - t_mean, stack - stack.mean(axis=0), axes=1)
        slope /= np.sum((t - t_mean) ** 2)
        return local_excess(slope, bad), True
    longest = int(np.argmax([-1 if t is None else t for t in exptimes]))
    master = masters[longest]
    excess = local_excess(master, bad)
    exptime = exptimes[longest]
    if exptime:
        return excess / exptime, True
    return excess, False


def flat_response(flats, bias_level, bad=None):
    """Relative response of each pixel, illumination removed.

    Each flat loses ``bias_level`` (unless it lies below it: then it is taken
    as already calibrated), is normalised by its median, the flats are
    combined (median of three or more, else mean) and divided by the level
    the neighbours of each pixel predict, which removes illumination,
    vignetting and dust shadows.

    Returns
    -------
    response : 2-D array
    measurement_noise : float
        Noise of one pixel's measured response (relative), from the
        differences between the first two flats (shot and read noise, not
        the pixels' real differences), for the combination; NaN with one
        flat.
    """
    normalised = []
    for flat in flats:
        level = np.nanmedian(flat)
        signal = flat - bias_level if level > bias_level else flat
        scale = np.nanmedian(signal)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError("a flat has no signal above the bias level")
        normalised.append(signal / scale)
    measurement_noise = np.nan
    if len(flats) >= 2:
        step = max(1, np.size(normalised[0]) // 500_000)
        first, second = (np.asarray(n).ravel()[::step] for n in normalised[:2])
        single = robust_sigma(second.astype(np.float64) - first) / np.sqrt(2)
        # The median of n frames is sqrt(pi / 2) noisier than their mean.
        factor = np.sqrt(np.pi / 2) if len(flats) >= 3 else 1.0
        measurement_noise = single * factor / np.sqrt(len(flats))
    if len(flats) >= 3:
        combined = stack_median(normalised)
    else:
        combined = np.mean(normalised, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return combined / local_level(combined, bad)[0], measurement_noise


def stuck_pixels(frames):
    """Pixels reading exactly the same value in every frame.

    Returns
    -------
    stuck : 2-D bool array or None
        None when the frames cannot tell a stuck pixel from noise that
        repeated by chance (fewer than two frames, or noise so coarsely
        quantised that the expected number of chance repeats exceeds 0.1).
    chance : float
        Expected number of pixels repeating by chance.
    """
    if len(frames) < 2:
        return None, np.nan
    chance = float(frames[0].size)
    for previous, current in itertools.pairwise(frames):
        chance *= float(np.mean(previous == current))
    if chance > _STUCK_CHANCE_LIMIT:
        return None, chance
    stuck = np.ones(frames[0].shape, dtype=bool)
    for frame in frames[1:]:
        stuck &= frame == frames[0]
    return stuck & np.isfinite(frames[0]), chance


def column_segments(significance, *, sign, threshold, minimum=None):
    """Runs of a column whose running median stands out by ``threshold``.

    Parameters
    ----------
    significance : 2-D array
        Pixel excess in units of its noise; NaN for pixels to ignore.
    sign : {1, -1}
        1 for hot (bright) columns, -1 for dark ones.
    threshold : float
        Detection threshold in sigma of the running median, which accounts
        for column-to-column offsets (fixed-pattern noise of CMOS sensors)
        so that they do not count as bad columns.
    minimum : 2-D array of float, optional
        A second bound, in units of ``significance``, that the running median
        must also exceed (e.g. the warm-pixel rate).

    Returns
    -------
    2-D bool array
        The pixels of the segments, at least `_COLUMN_WINDOW` long, extended
        at their ends while single pixels stay above 2.5 sigma.
    """
    values = np.nan_to_num(np.asarray(significance, dtype=np.float32), nan=0.0)
    if sign < 0:
        np.negative(values, out=values)  # in place: a frame less at the peak
    ny, nx = values.shape
    window = min(_COLUMN_WINDOW, ny if ny % 2 else ny - 1)
    if window < 3:
        return np.zeros(values.shape, dtype=bool)
    # in blocks of columns: a median over the whole frame would copy it
    column_offsets = np.concatenate(
        [np.median(values[:, x : x + 256], axis=0) for x in range(0, nx, 256)]
    )
    offset_var = max(robust_sigma(column_offsets) ** 2 - np.pi / (2 * ny), 0.0)
    noise = np.sqrt(np.pi / (2 * window) + offset_var)
    # A running median above the cut needs half its window above it: only
    # the columns with that many such pixels are filtered (the rest cannot
    # hold a seed), which spares the slow filter most of the frame.
    cut = threshold * noise
    # counts up to the window length (< 256) fit in one byte
    above = ndimage.convolve1d(
        (values > cut).view(np.uint8), np.ones(window, np.uint8), axis=0, mode="mirror"
    )
    columns = np.flatnonzero((above >= window // 2 + 1).any(axis=0))
    seeds = np.zeros(values.shape, dtype=bool)
    if columns.size:
        running = ndimage.median_filter(
            values[:, columns], size=(window, 1), mode="mirror"
        )
        found = running > cut
        if minimum is not None:
            found &= running > np.broadcast_to(minimum, values.shape)[:, columns]
        seeds[:, columns] = found
    # Keep runs at least one window long.
    vertical = np.ones((window, 1), dtype=bool)
    seeds = ndimage.binary_opening(seeds, structure=vertical)
    if not seeds.any():
        return seeds
    grow = values > _COLUMN_GROW_SIGMA
    return ndimage.binary_propagation(
        seeds,
        structure=np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool),
        mask=grow | seeds,
    )


def excess_histogram(excess, noise, *, scale=1.0, bins=40):
    """Histogram of a positive excess on log-spaced bins, for the record.

    From half the noise up to the largest value (both times ``scale``);
    pixels below the first edge are counted apart. Compact enough for a
    map's metadata, so that its plot can show the distribution without the
    image. Taken in blocks of rows, so that it costs no copy of the image.
    """
    excess = np.asarray(excess)
    blocks = [excess[start : start + 256] for start in range(0, len(excess), 256)]
    finite = [block[np.isfinite(block)] * scale for block in blocks]
    largest = max((float(part.max()) for part in finite if part.size), default=None)
    low = max(0.5 * float(noise) * scale, 1e-12)
    high = max(largest if largest is not None else low, 2 * low)
    edges = np.geomspace(low, high * 1.0001, bins + 1)
    counts = sum(np.histogram(part, edges)[0] for part in finite)
    below = sum(int(np.count_nonzero(part < low)) for part in finite)
    return {
        "edges": [float(f"{edge:.6g}") for edge in edges],
        "counts": [int(count) for count in np.broadcast_to(counts, bins)],
        "below": below,
    }
