"""The built-in demonstration: a simulated night found, fixed and scored."""

import os
import warnings
from pathlib import Path

from astropy.utils.exceptions import AstropyUserWarning

from ..badpixels.core import make_bad_pixel_map
from ..io.fits import write_hdulist_atomic
from ..pipeline.core import fix_pixels
from .core import make_night
from .scoring import score_bad_pixel_map, score_frame

__all__ = ["run_demo"]


def _write(ccd, path, overwrite):
    hdulist = ccd.to_hdu(hdu_mask="MASK", hdu_uncertainty="UNCERT", hdu_flags="FLAGS")
    write_hdulist_atomic(hdulist, path, overwrite=overwrite)


def _map_table(score, bpm):
    counts = bpm.counts()
    lines = [
        "Bad-pixel map (from the darks and flats)",
        f"  {'kind':<14}{'found':>7}{'recall':>9}",
    ]
    for kind, recall in score["recall"].items():
        lines.append(f"  {kind:<14}{counts[kind.upper()]:>7d}{recall:>9.3f}")
    lines.append(
        f"  false flags: {score['false_flags']} "
        f"({score['false_per_mpx']:.1f} per megapixel)"
    )
    return lines


def _frame_table(rows):
    lines = [
        "Science frames (fix_pixels with the map)",
        f"  {'FWHM':>5}{'persist.':>10}{'transient':>10}{'false/Mpx':>10}"
        f"{'stars hit':>10}{'repl<3sig':>10}{'MSE before':>12}{'after':>8}",
    ]
    for fwhm, s in rows:
        lines.append(
            f"  {fwhm:>5.1f}{s['persistent_recall']:>10.3f}"
            f"{s['transient_recall']:>10.3f}"
            f"{s['false_per_mpx']:>10.0f}"
            f"{s['bright_stars_hit'] * 100:>9.1f}%{s['replaced_within_3sigma']:>10.3f}"
            f"{s['mse_before']:>12.1f}{s['mse_after']:>8.2f}"
        )
    lines += [
        "  persist.: fraction of the persistent defects (hot, dead, ...) flagged;",
        "  transient: fraction of cosmic rays and one-exposure hot pixels above",
        "    5 sigma flagged;",
        "  false/Mpx: pixels flagged that hold no defect, per million pixels;",
        "  stars hit: bright stars with a false flag within 1.5 FWHM;",
        "  repl<3sig: fraction of replaced pixels within 3 sigma of the true value;",
        "  MSE: mean squared error against the defect-free image, in units of",
        "    the background noise variance (1.0 would be the noise itself).",
    ]
    return lines


# The science frames' star widths (pixels), one frame each.
_FWHMS = (1.8, 2.6, 4.0)


def _science_names(index):
    """The files of one science frame: as simulated, and fixed."""
    return f"science_{index}.fits", f"science_{index}_fixed.fits"


def _output_names():
    """The files the demo writes in its output directory."""
    names = ["bpm.fits"]
    for index in range(len(_FWHMS)):
        names += _science_names(index)
    return names


def _check_free(output):
    """Refuse, before any work, an output directory holding one of the
    demo's files: a demo stopped half-way would leave a mixed set."""
    for name in _output_names():
        if os.path.lexists(output / name):
            raise FileExistsError(
                f"{output / name} exists; nothing written (--overwrite replaces it)"
            )


def run_demo(*, size=512, seed=0, output=None, overwrite=False):
    """Simulate a night, build the map, fix the frames; return a report.

    Parameters
    ----------
    size : int, optional
        Frames are ``size`` x ``size`` pixels.
    seed : int, optional
        Seed of the simulation.
    output : path-like, optional
        Directory for the simulated raw frames, the map and the fixed frames.
    overwrite : bool, optional
        Replace existing files in ``output``.

    Returns
    -------
    str
        The report, as printed by ``ccdpixfix demo``.
    """
    if output is not None and not overwrite:
        _check_free(Path(output))
    night = make_night(
        shape=(size, size), seed=seed, n_darks=5, n_flats=3, fwhms=_FWHMS
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        bpm = make_bad_pixel_map(night.darks, night.flats)
    lines = [f"ccdpixfix demo: simulated {size} x {size} camera, seed {seed}", ""]
    lines += _map_table(score_bad_pixel_map(bpm, night.camera.truth), bpm)
    rows = []
    fixed_frames = []
    for frame, truth in zip(night.science, night.science_truth, strict=True):
        fixed = fix_pixels(frame, bpm)
        fixed_frames.append(fixed)
        rows.append(
            (float(truth["stars"]["fwhm"][0]), score_frame(frame, fixed, truth))
        )
    lines += ["", *_frame_table(rows)]
    if output is not None:
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        bpm.write(output / "bpm.fits", overwrite=overwrite)
        for index, (raw, fixed) in enumerate(
            zip(night.science, fixed_frames, strict=True)
        ):
            raw_name, fixed_name = _science_names(index)
            _write(raw, output / raw_name, overwrite)
            _write(fixed, output / fixed_name, overwrite)
        lines += ["", f"files written to {output}"]
    return "\n".join(lines)
