"""Scores of a bad-pixel map and of fixed frames against simulated truth.

Used by ``ccdpixfix demo`` and the benchmarks; works with the truth that
`ccdpixfix.datasets` returns.
"""

import numpy as np

from ..flags import PixelFlag

__all__ = ["BRIGHT_STAR_SNR", "score_bad_pixel_map", "score_frame"]

#: A star is "bright" when its peak is this many times the background noise.
BRIGHT_STAR_SNR = 50.0
#: A transient counts in the recall when it added this many sigma.
TRANSIENT_SNR = 5.0
# A replaced pixel is good when its estimate lies within 3 sigma of the truth
# (99.7 % of a Gaussian estimate's errors do).
_REPLACED_SIGMA = 3
_MAP_KINDS = ("hot", "warm", "dead", "low_response", "stuck", "bad_column")


def score_bad_pixel_map(bpm, camera_truth):
    """Recall per kind of defect and false flags per megapixel.

    Parameters
    ----------
    bpm : BadPixelMap
        The map found.
    camera_truth : dict of bool arrays
        ``SimulatedCamera.truth``.

    Returns
    -------
    dict
        ``recall`` (kind -> fraction of true defects carrying any flag),
        ``false_flags`` (flagged pixels that are no defect) and
        ``false_per_mpx``.
    """
    flagged = bpm.flags != 0
    recall = {}
    for kind in _MAP_KINDS:
        truth = camera_truth[kind]
        recall[kind] = float(flagged[truth].mean()) if truth.any() else float("nan")
    false = int(np.count_nonzero(flagged & ~camera_truth["defect"]))
    return {
        "recall": recall,
        "false_flags": false,
        "false_per_mpx": false / flagged.size * 1e6,
    }


def _bright_stars_hit(false_flags, stars, noise):
    """Bright stars with a false flag within 1.5 FWHM, and bright stars."""
    return _stars_hit(false_flags, stars[stars["peak_adu"] > BRIGHT_STAR_SNR * noise])


def _share_hit(false_flags, truth, key):
    """Fraction of the sources ``truth[key]`` (faint stars, galaxies) with
    a false flag within 1.5 FWHM of their centre (NaN without any)."""
    sources = truth.get(key)
    if sources is None or not len(sources):
        return float("nan")
    hit, count = _stars_hit(false_flags, sources)
    return hit / count


def _stars_hit(false_flags, stars):
    """How many of ``stars`` have a false flag within 1.5 FWHM, and how many."""
    ny, nx = false_flags.shape
    hit = 0
    for star in stars:
        radius = 1.5 * star["fwhm"]
        y0 = max(int(star["y"] - radius), 0)
        y1 = min(int(star["y"] + radius) + 2, ny)
        x0 = max(int(star["x"] - radius), 0)
        x1 = min(int(star["x"] + radius) + 2, nx)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        near = (yy - star["y"]) ** 2 + (xx - star["x"]) ** 2 <= radius**2
        hit += bool(false_flags[y0:y1, x0:x1][near].any())
    return hit, len(stars)


def _truth_masks(flags, truth):
    """What a frame's flags got right and wrong, as masks.

    Returns
    -------
    flagged, persistent, strong, saturated, false : 2-D bool arrays
        Any flag; a persistent defect; a transient above 5 sigma (or cold);
        flagged saturated; flagged though neither a defect, a transient nor
        saturated.
    """
    flagged = flags != 0
    persistent = np.zeros(flags.shape, bool)
    for kind in _MAP_KINDS:
        persistent |= truth[kind]
    strong = truth["transient_hot"] & (
        truth["transient_amplitude"] > TRANSIENT_SNR * truth["sigma"]
    )
    strong |= truth["transient_cold"]
    saturated = (flags & np.uint16(PixelFlag.SATURATED)) != 0
    explained = persistent | truth["transient_hot"] | truth["transient_cold"]
    false = flagged & ~explained & ~saturated & ~truth["saturated"]
    return flagged, persistent, strong, saturated, false


def _on_star_recall(flagged, strong, truth):
    """Recall of strong transients on stars (NaN without star truth or such hits)."""
    on_stars = truth.get("on_stars")
    if on_stars is None or not (strong & on_stars).any():
        return float("nan")
    return float(flagged[strong & on_stars].mean())


def score_frame(raw, fixed, truth):
    """How well one frame was flagged and repaired.

    Parameters
    ----------
    raw : `~astropy.nddata.CCDData`
        The frame as simulated.
    fixed : `~astropy.nddata.CCDData`
        The output of `fix_pixels`.
    truth : dict
        The truth `SimulatedCamera.science` returned with ``raw``.

    Returns
    -------
    dict
        ``persistent_recall``, ``transient_recall`` (of transients above 5
        sigma), ``on_star_recall`` (the same, for transients on a star's
        pixels with over 500 e- of star light; NaN if none),
        ``false_per_mpx`` (flags on pixels that are neither defect,
        transient nor saturated), ``bright_stars_hit`` (fraction),
        ``faint_stars_hit`` and ``galaxies_hit`` (the same, for the stars
        of 200-2000 e- and the galaxies; NaN if none),
        ``replaced_within_3sigma`` (fraction of replaced pixels within 3 sigma
        of the noise-free signal), ``unflagged_changed`` (count) and the mean
        squared error against the defect-free image, in units of the
        background variance, before and after.
    """
    flags = fixed.flags
    flagged, persistent, strong, saturated, false = _truth_masks(flags, truth)
    replaced = (flags & np.uint16(PixelFlag.REPLACED)) != 0
    error = np.abs(np.asarray(fixed.data, float) - truth["expected"]) / truth["sigma"]
    unchanged = np.asarray(raw.data, np.float32)
    noise = float(np.median(truth["sigma"]))
    hit, n_bright = _bright_stars_hit(false, truth["stars"], noise)
    usable = ~truth["saturated"] & ~saturated
    before = np.asarray(raw.data, float) - truth["clean"]
    after = np.asarray(fixed.data, float) - truth["clean"]
    return {
        "persistent_recall": float(flagged[persistent].mean()),
        "transient_recall": float(flagged[strong].mean()) if strong.any() else 1.0,
        "on_star_recall": _on_star_recall(flagged, strong, truth),
        "false_per_mpx": false.sum() / flags.size * 1e6,
        "bright_stars": n_bright,
        "bright_stars_hit": hit / n_bright if n_bright else 0.0,
        "faint_stars_hit": _share_hit(false, truth, "faint_stars"),
        "galaxies_hit": _share_hit(false, truth, "galaxies"),
        "replaced_within_3sigma": float((error[replaced] < _REPLACED_SIGMA).mean())
        if replaced.any()
        else 1.0,
        "unflagged_changed": int(
            np.count_nonzero(fixed.data[~replaced] != unchanged[~replaced])
        ),
        "mse_before": float(np.mean(before[usable] ** 2)) / noise**2,
        "mse_after": float(np.mean(after[usable] ** 2)) / noise**2,
    }


def score_frame_by_colour(raw, fixed, truth):
    """`score_frame`'s detection figures for each colour of a Bayer mosaic.

    Parameters
    ----------
    raw, fixed, truth
        As for `score_frame`; ``truth`` must hold ``colour`` (the colour of
        each pixel: a simulated colour camera's frame).

    Returns
    -------
    dict
        For ``"R"``, ``"G"`` and ``"B"``: ``transient_recall`` (transients
        above 5 sigma on pixels of that colour), ``false_per_mpx`` (per
        megapixel of that colour) and ``bright_stars_hit`` (fraction of the
        bright stars with a false flag of that colour within 1.5 FWHM).
    """
    flagged, _, strong, _, false = _truth_masks(fixed.flags, truth)
    noise = float(np.median(truth["sigma"]))
    scores = {}
    for colour in "RGB":
        mine = truth["colour"] == colour
        hit, n_bright = _bright_stars_hit(false & mine, truth["stars"], noise)
        targets = strong & mine
        scores[colour] = {
            "transient_recall": float(flagged[targets].mean())
            if targets.any()
            else 1.0,
            "false_per_mpx": (false & mine).sum() / mine.sum() * 1e6,
            "bright_stars": n_bright,
            "bright_stars_hit": hit / n_bright if n_bright else 0.0,
        }
    return scores
