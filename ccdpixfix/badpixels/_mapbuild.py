"""How make_bad_pixel_map builds a map: from frames to flags and metadata.

The frames are loaded and checked, darks combined per exposure time, the
excess dark signal and the flat response computed (`_defects`) in two
passes, and every kind of defect classified.
"""

import datetime
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from .._version import __version__
from ..flags import PixelFlag
from ..noise.core import header_gain, robust_sigma
from . import _defects
from ._frames import check_darks, check_flats, is_bias, load_frames, saturation_of

__all__ = ["build_map"]

# Response deviation (in sigma of the response noise) beyond which a pixel
# stays out of its neighbours' levels in the second pass: 3 leaves out the
# tail of real responses and only 0.3 % of Gaussian noise.
_LEVEL_SIGMA = 3.0
# Smallest noise used as a divisor: a constant frame has none.
_NOISE_FLOOR = 1e-30
# Rounding to whole ADU adds noise of rms 1/sqrt(12) = 0.2887 ADU per frame;
# integer darks cannot resolve less (0.29: the value every map so far used).
_QUANTISATION_NOISE = 0.29
# Smallest temporal noise (ADU) the combination of integer frames clips
# with: their differences are quantised, so less than half an ADU is not
# measured but rounding.
_INTEGER_NOISE_FLOOR = 0.5


def _group_by_exptime(frames):
    groups = {}
    for frame in frames:
        # A bias is a zero-second dark, whatever its EXPTIME card says.
        t = 0.0 if is_bias(frame) else frame.exptime
        groups.setdefault(None if t is None else round(t, 3), []).append(frame)
    return groups


def _dark_gain(frames, gain):
    if gain is not None:
        return float(gain), "argument"
    for frame in frames:
        found = header_gain(frame.header)
        if found is not None:
            return found, "header"
    return 1.0, "assumed"


def _hot_and_warm(
    excess, per_second, gain, *, significance, hot_rate, warm_rate, quantum
):
    """HOT and WARM masks from the excess dark signal."""
    noise = robust_sigma(excess)
    # A constant dark has no scatter: nothing in it is significant.
    noise = max(noise if np.isfinite(noise) else 0.0, quantum, _NOISE_FLOOR)
    with np.errstate(invalid="ignore"):
        significant = excess > significance * noise
    if not per_second:
        return significant, np.zeros_like(significant), noise
    rate = excess * gain
    with np.errstate(invalid="ignore"):
        hot = significant & (rate >= hot_rate)
        warm = significant & (rate >= warm_rate) & ~hot
    return hot, warm, noise


def _shortest(exptimes):
    """Index of the shortest exposure time (unknown times count as longest)."""
    return int(np.argmin([np.inf if t is None else t for t in exptimes]))


def _dark_defects(
    masters, exptimes, gain, bad, *, significance, hot_rate, warm_rate, quantum
):
    """Excess dark signal and the HOT and WARM pixels it shows."""
    excess, per_second = _defects.dark_excess(masters, exptimes, bad)
    if per_second:
        longest = max((t for t in exptimes if t), default=1.0)
        quantum = quantum / longest
    hot, warm, noise = _hot_and_warm(
        excess,
        per_second,
        gain,
        significance=significance,
        hot_rate=hot_rate,
        warm_rate=warm_rate,
        quantum=quantum,
    )
    with np.errstate(invalid="ignore"):
        # Far below the rest: no defect of the map, but left out of the
        # neighbours' levels, where a column a slope fit made negative made
        # both its neighbours look hot. Not when a brighter defect beside it
        # explains the deficit: the neighbours of a hot column look low, and
        # leaving them out would leave the column only itself as neighbour.
        low = excess < -significance * noise
        found = np.where(hot | warm, np.nan_to_num(excess, nan=0.0), -np.inf)
        low &= -excess > ndimage.maximum_filter(found, size=3)
    return {
        "excess": excess,
        "per_second": per_second,
        "noise": noise,
        "hot": hot,
        "warm": warm,
        "low": low,
    }


def _no_dark_defects(shape):
    """`_dark_defects` for darks that are all biases: nothing measured."""
    nothing = np.zeros(shape, dtype=bool)
    return {
        "excess": np.zeros(shape, dtype=np.float32),
        "per_second": False,
        "noise": np.nan,
        "hot": nothing,
        "warm": nothing,
    }


def _flat_defects(
    flats,
    bias_level,
    bad,
    *,
    significance,
    dead_response,
    low_response,
    high_response,
):
    """Relative response and the DEAD, LOW_ and HIGH_RESPONSE pixels it shows.

    A pixel beyond a cut must also be ``significance`` times the noise of its
    measurement away from 1: the noise of the flats themselves when there
    are two or more (a pixel 11 % low measured to 0.5 % is surely low, even
    if the pixels' real spread is 2 %), else the spread of the responses.
    """
    response, measured = _defects.flat_response(flats, bias_level, bad)
    noise = robust_sigma(response - 1.0)
    noise = max(noise if np.isfinite(noise) else 0.0, _NOISE_FLOOR)
    pixel_noise = measured if np.isfinite(measured) and measured > 0 else noise
    with np.errstate(invalid="ignore"):
        dead = response < dead_response
        low = ~dead & (response < min(low_response, 1 - significance * pixel_noise))
        high = response > max(high_response, 1 + significance * pixel_noise)
    return {
        "response": response,
        "noise": noise,
        "pixel_noise": float(pixel_noise),
        "dead": dead,
        "low": low,
        "high": high,
    }


def _rate_error(rate, noise, exposure):
    """Uncertainty (e-/s) of each pixel's dark rate: an estimate.

    The robust pixel-to-pixel scatter of the rates (``noise``, e-/s: read
    noise, the typical pixel's shot noise and what the fit leaves) with the
    pixel's own shot noise added, from its charge in ``exposure`` seconds of
    darks in all.
    """
    with np.errstate(invalid="ignore"):
        own = np.clip(rate, 0, None) / exposure
    return np.sqrt(noise**2 + own).astype(np.float32)


def _limit_notes(dark_noise, gain, exptimes, *, significance, hot_rate, warm_rate):
    """What the darks cannot measure: the smallest rate told from noise."""
    limit = significance * dark_noise * gain
    seconds = "/".join(f"{t:g}" for t in sorted(t for t in exptimes if t))
    lost = [
        f"{name} ({rate:g} e-/s)"
        for name, rate in (("HOT", hot_rate), ("WARM", warm_rate))
        if limit > rate
    ]
    if not lost:
        return []
    return [
        f"{seconds} s darks: pixels below {limit:.2g} e-/s cannot be told from "
        f"noise ({significance:g} sigma), so {' and '.join(lost)} "
        f"{'is' if len(lost) == 1 else 'are'} undetectable; take longer darks, "
        "or more of them"
    ]


def _series_segments(masters, exptimes, bad, stuck, *, threshold):
    """Hot column segments of each exposure series on its own (seconds, mask)."""
    found = []
    for master, exptime in zip(masters, exptimes, strict=True):
        if not exptime:
            continue  # a bias's structure is no dark current
        excess = _defects.local_excess(master, bad)
        noise = max(robust_sigma(excess), _NOISE_FLOOR)
        excess /= noise
        excess[stuck] = np.nan
        segments = _defects.column_segments(excess, sign=1, threshold=threshold)
        if segments.any():
            found.append((exptime, segments))
    return found


# Segments named one by one in the notes; beyond, they are counted.
_NAMED_SEGMENTS = 3


def _vanished_segments(series, columns):
    """Notes on the column segments of one series that the rate fit lost."""
    notes = []
    vertical = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool)
    for exptime, segments in series:
        labels, _ = ndimage.label(segments, structure=vertical)
        lost = [
            where
            for index, where in enumerate(ndimage.find_objects(labels), start=1)
            if not columns[where][labels[where] == index].any()
        ]
        if not lost:
            continue
        named = ", ".join(
            f"column {rows_cols[1].start}, rows {rows_cols[0].start}-"
            f"{rows_cols[0].stop - 1}"
            for rows_cols in lost[:_NAMED_SEGMENTS]
        )
        more = len(lost) - _NAMED_SEGMENTS
        named += f" and {more} more" if more > 0 else ""
        notes.append(
            f"column segments in the {exptime:g} s darks but not in the dark-rate "
            f"fit ({named}): they do not grow with the exposure time as dark "
            "current does (a trap filled, or light leaking, during that series), "
            "so the slope through the exposure times leaves them out of the map"
        )
    return notes


def build_map(
    darks,
    flats,
    *,
    significance,
    hot_rate,
    warm_rate,
    dead_response,
    low_response,
    high_response,
    column_significance,
    gain,
):
    """The flags, metadata and measured planes of `make_bad_pixel_map`'s map.

    Returns
    -------
    flags : 2-D uint16 array
    meta : dict
    planes : dict
        ``dark_rate`` and ``dark_rate_error`` (e-/s, float32) when the darks
        give a rate, ``response`` (float32) when there are flats; None where
        not measured.
    """
    limits = {
        "significance": significance,
        "hot_rate": hot_rate,
        "warm_rate": warm_rate,
        "dead_response": dead_response,
        "low_response": low_response,
        "high_response": high_response,
        "column_significance": column_significance,
    }
    dark_frames, flat_frames = _load(darks, flats)
    shape = dark_frames[0].data.shape
    gain, gain_source = _dark_gain(dark_frames, gain)
    notes = []
    only_biases = all(is_bias(frame) for frame in dark_frames)
    if gain_source == "assumed" and not only_biases:
        notes.append("no usable GAIN in the darks: dark rates assume 1 e-/ADU")
        warnings.warn(notes[-1], AstropyUserWarning, stacklevel=2)
    masters, exptimes = _masters(dark_frames)
    notes += _dark_notes(dark_frames, only_biases)
    # Integer frames cannot resolve less than their quantisation step.
    quantum = (
        _QUANTISATION_NOISE / np.sqrt(len(dark_frames))
        if dark_frames[0].integer
        else 0.0
    )
    stuck, chance = _stuck(dark_frames, flat_frames, notes)
    bias_level = float(np.nanmedian(masters[_shortest(exptimes)]))
    dark, flat, bad = _defect_passes(
        masters,
        exptimes,
        gain,
        stuck,
        flat_frames,
        bias_level,
        quantum,
        {**limits, "only_biases": only_biases},
    )
    if not dark["per_second"] and not only_biases:
        notes.append("no EXPTIME in the darks: every significant pixel is HOT")
    planes = {"dark_rate": None, "dark_rate_error": None, "response": None}
    if dark["per_second"]:
        notes += _rate_planes(planes, dark, gain, dark_frames, exptimes, limits)
    histogram = None
    columns = np.zeros(shape, dtype=bool)
    series = []
    if dark["per_second"] and len(masters) >= 2:
        series = _series_segments(
            masters, exptimes, bad, stuck, threshold=limits["column_significance"]
        )
    if not only_biases:
        # The record first: the excess then becomes the significance in
        # place, and the masters are let go, so that the column search has
        # room.
        histogram = _defects.excess_histogram(dark["excess"], dark["noise"], scale=gain)
        del masters
        columns = _dark_columns(dark, stuck, gain, limits)
    notes += _vanished_segments(series, columns)
    if flat_frames:
        planes["response"] = flat["response"].astype(np.float32)
        columns |= _flat_columns(flat, stuck, limits)
    flags = _flags(dark, flat, stuck, columns)
    meta = {
        "ccdpixfix_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        **_frame_record(dark_frames, flat_frames),
        "gain": gain,
        "gain_source": gain_source,
        # The zero point of raw frames, for predicting them (`fix_pixels`).
        "bias_level": bias_level if dark_frames[0].integer else None,
        "parameters": limits,
        **_noise_record(dark, flat, histogram, only_biases),
        "stuck_chance": None if not np.isfinite(chance) else float(chance),
        "notes": notes,
    }
    return flags, meta, planes


def _stuck(dark_frames, flat_frames, notes):
    """Stuck pixels (none if they cannot be searched, with a note) and chance."""
    stuck, chance = _defects.stuck_pixels(
        [f.data for f in dark_frames] + [f.data for f in flat_frames]
    )
    if stuck is None:
        notes.append(
            "stuck pixels not searched: need two or more frames with "
            "noise or light that varies between them"
        )
        stuck = np.zeros(dark_frames[0].data.shape, dtype=bool)
    return stuck, chance


def _load(darks, flats):
    """The dark and flat `Frame` lists, checked and of one shape."""
    dark_frames = load_frames(darks, "darks")
    check_darks(dark_frames, saturation_of(dark_frames))
    flat_frames = [] if flats is None else load_frames(flats, "flats")
    flat_frames = check_flats(flat_frames, saturation_of(flat_frames))
    shape = dark_frames[0].data.shape
    if flat_frames and flat_frames[0].data.shape != shape:
        raise ValueError(
            f"flats have shape {flat_frames[0].data.shape} but darks have {shape}; "
            "use darks and flats of the same detector and binning"
        )
    return dark_frames, flat_frames


def _masters(dark_frames):
    """One combined dark per exposure time, and the exposure times."""
    masters, exptimes = [], []
    for exptime, frames in _group_by_exptime(dark_frames).items():
        combined, _ = _defects.robust_combine(
            [f.data for f in frames],
            floor=_INTEGER_NOISE_FLOOR if frames[0].integer else 0.0,
        )
        masters.append(combined)
        exptimes.append(exptime)
    return masters, exptimes


def _dark_notes(dark_frames, only_biases):
    """Notes on what the darks given cannot measure."""
    notes = []
    if len(dark_frames) == 1:
        notes.append("one dark: taken as a master; cosmic rays cannot be rejected")
    if only_biases:
        notes.append(
            "the darks are all biases (zero seconds): dark current not measured, "
            "no pixel is HOT or WARM; give darks as long as your exposures"
        )
    timeless = [f.label for f in dark_frames if f.exptime is None and not is_bias(f)]
    if timeless and len(timeless) < len(dark_frames):
        # They make a group of their own, of unknown exposure, whose
        # differences from the others look like stuck or hot pixels.
        notes.append(
            "darks without an exposure time (EXPTIME) among darks with one: "
            f"{', '.join(timeless[:3])}{'...' if len(timeless) > 3 else ''}; "
            "give them one, or leave them out"
        )
        warnings.warn(notes[-1], AstropyUserWarning, stacklevel=3)
    return notes


def _defect_passes(masters, exptimes, gain, stuck, flats, bias_level, quantum, limits):
    """The dark and flat defects, found in two passes: (dark, flat, bad).

    The second pass leaves the defects of the first out of the levels of
    their neighbours, so that a defect never makes its neighbour look bad.
    """
    shape = stuck.shape
    bad = stuck
    for _ in range(2):
        dark = flat = None  # the first pass's planes are not needed any more
        if limits["only_biases"]:
            dark = _no_dark_defects(shape)
        else:
            dark = _dark_defects(
                masters,
                exptimes,
                gain,
                bad,
                significance=limits["significance"],
                hot_rate=limits["hot_rate"],
                warm_rate=limits["warm_rate"],
                quantum=quantum,
            )
        found = stuck | dark["hot"] | dark["warm"] | dark.get("low", False)
        if flats:
            flat = _flat_defects(
                [f.data for f in flats],
                bias_level,
                bad,
                significance=limits["significance"],
                dead_response=limits["dead_response"],
                low_response=limits["low_response"],
                high_response=limits["high_response"],
            )
            found |= flat["dead"] | flat["low"] | flat["high"]
            # Pixels of the response's tail, a few per cent off, are no
            # defects but would pull their neighbours' levels: two of them
            # a pixel apart made the one between look 7 % low.
            with np.errstate(invalid="ignore"):
                found |= np.abs(flat["response"] - 1) > _LEVEL_SIGMA * flat["noise"]
        bad = found
    return dark, flat, bad


def _rate_planes(planes, dark, gain, dark_frames, exptimes, limits):
    """Fill ``planes`` with the dark rate and its error; notes on the limits."""
    rate = (dark["excess"] * gain).astype(np.float32)
    dark_seconds = sum(t for t in (frame.exptime for frame in dark_frames) if t)
    planes["dark_rate"] = rate
    planes["dark_rate_error"] = _rate_error(rate, dark["noise"] * gain, dark_seconds)
    notes = _limit_notes(
        dark["noise"],
        gain,
        exptimes,
        significance=limits["significance"],
        hot_rate=limits["hot_rate"],
        warm_rate=limits["warm_rate"],
    )
    if sum(1 for t in exptimes if t) >= 2 or (len(exptimes) >= 2 and 0 in exptimes):
        notes.append(
            "dark rates are slopes through several exposure times: what does "
            "not grow with the exposure (bias structure, a column segment or "
            "glow seen in one series only, e.g. a trap filled or light leaking "
            "then) is left out of the map"
        )
    return notes


def _dark_columns(dark, stuck, gain, limits):
    """Bright column segments of the darks; ``dark``'s excess becomes theirs."""
    dark_noise = dark["noise"]
    dark_significance = dark.pop("excess")
    dark_significance /= dark_noise
    dark_significance[stuck] = np.nan
    column_floor = (
        limits["warm_rate"] / gain / dark_noise if dark["per_second"] else None
    )
    return _defects.column_segments(
        dark_significance,
        sign=1,
        threshold=limits["column_significance"],
        minimum=column_floor,
    )


def _flat_columns(flat, stuck, limits):
    """Dark column segments of the flats."""
    response_noise = flat["noise"]
    with np.errstate(invalid="ignore"):
        flat_significance = np.where(
            stuck, np.nan, (flat["response"] - 1) / response_noise
        )
    floor = (1 - limits["low_response"]) / response_noise
    return _defects.column_segments(
        flat_significance,
        sign=-1,
        threshold=limits["column_significance"],
        minimum=floor,
    )


def _flags(dark, flat, stuck, columns):
    """The map's flags: a stuck pixel or a column takes no other kind."""
    shape = stuck.shape
    dead = low = high = np.zeros(shape, dtype=bool)
    if flat is not None:
        dead, low, high = flat["dead"], flat["low"], flat["high"]
    columns &= ~stuck
    flags = np.zeros(shape, dtype=np.uint16)
    flags[stuck] |= np.uint16(PixelFlag.STUCK)
    flags[columns] |= np.uint16(PixelFlag.BAD_COLUMN)
    other = ~(stuck | columns)
    flags[dark["hot"] & other] |= np.uint16(PixelFlag.HOT)
    flags[dark["warm"] & other] |= np.uint16(PixelFlag.WARM)
    flags[dead & other] |= np.uint16(PixelFlag.DEAD)
    flags[low & other] |= np.uint16(PixelFlag.LOW_RESPONSE)
    flags[high & other] |= np.uint16(PixelFlag.HIGH_RESPONSE)
    return flags


def _frame_record(dark_frames, flat_frames):
    """The frames a map was made from, for its metadata."""
    return {
        "darks": [f.label for f in dark_frames],
        "biases": [f.label for f in dark_frames if is_bias(f)],
        "flats": [f.label for f in flat_frames],
        "dark_exptimes": [f.exptime for f in dark_frames],
    }


def _noise_record(dark, flat, histogram, only_biases):
    """The noise of the darks and flats, for the map's metadata."""
    return {
        "dark_noise": None if only_biases else float(dark["noise"]),
        "dark_noise_unit": "ADU/s" if dark["per_second"] else "ADU",
        "dark_histogram": None
        if histogram is None
        else {"unit": "e-/s" if dark["per_second"] else "e-", **histogram},
        "response_noise": None if flat is None else float(flat["noise"]),
        "response_pixel_noise": None if flat is None else flat["pixel_noise"],
    }
