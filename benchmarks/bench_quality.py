"""Quality of ccdpixfix against the truth of a simulated night, with anchors.

Nine 300 s darks, five flats and science frames at FWHM 1.8, 2.6 and 4.0 px
(``--fwhm``: ``1.2,1.5`` for undersampled stars) on a 1024 x 1024 simulated
camera; ccdproc's ``cosmicray_median`` and
``cosmicray_lacosmic`` (astroscrappy) run on the same frames, with the same
bad-pixel map as mask, for comparison.

``--cosmic-rays realistic`` (the default) gives the camera cosmic rays with
charge diffusion, long oblique tracks, worms and saturated cores, and puts
half the one-exposure hot pixels on stars; ``compact`` the same events
with the diffusion of a thinner sensor (0.25-0.6 px: sharper than any
star) and spots without halos; ``sharp`` the one-pixel-wide events of
earlier versions. "on stars" is the recall of transients above
5 sigma on pixels with over 500 e- of star light; "faint hit" the share
of the faint stars (200-2000 e-, peaks up to tens of sigma) with a false
flag within 1.5 FWHM, "gal hit" the same for the compact galaxies.
``--psf-beta`` sets the
Moffat ``beta`` of the stars (3 by default; 50 is a Gaussian, whose
undersampled stars look sharper than a Moffat's).

``--engines classical,deepcr,deepcr+ccdpixfix`` (also ``cosmic-conn``,
``cosmic-conn+ccdpixfix``) adds a table of the engines of
`ccdpixfix.transients.learned`: ``deepcr`` is the model's own mask (probability >= 0.5)
beside the map's flags, ``deepcr+ccdpixfix`` is ``fix_pixels(...,
detector="deepcr")``. Both show the model the frame in electrons (the
camera's gain) less its coarse background. "1-px" is the recall of
transients above 5 sigma that are one pixel alone (one-exposure hot pixels,
mostly). Engines whose extra is not installed are skipped with one line.

Run with::

    python benchmarks/bench_quality.py [--size 1024] [--seed 0]
        [--cosmic-rays {realistic,compact,sharp}] [--fwhm 1.8,2.6,4.0] [--psf-beta 3]
        [--no-anchors]
        [--engines classical,deepcr,deepcr+ccdpixfix]
"""

import argparse
import time
import warnings

import ccdproc
import numpy as np
from _engines import ENGINES
from _stamp import stamp
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from ccdpixfix import PixelFlag, fix_pixels, flag_bad_pixels, make_bad_pixel_map
from ccdpixfix.datasets import make_night
from ccdpixfix.scoring import score_bad_pixel_map, score_frame


def _as_flags(frame, bpm, crmask, data):
    """A CCDData holding an anchor's result in ccdpixfix's flag convention."""
    flags = bpm.flags.copy()
    flags[np.asarray(crmask, bool)] |= np.uint16(PixelFlag.TRANSIENT_HOT)
    return CCDData(np.asarray(data, np.float32), unit="adu", flags=flags)


def _anchors(frame, truth, bpm, camera):
    """Results of ccdproc's median and L.A.Cosmic steps, as CCDData."""
    masked = flag_bad_pixels(frame, bpm)
    bias = camera.bias
    calibrated = CCDData(
        np.asarray(frame.data, np.float64) - bias, unit="adu", mask=masked.mask
    )
    results = {}
    start = time.perf_counter()
    median = ccdproc.cosmicray_median(calibrated, error_image=truth["sigma"], thresh=5)
    results["ccdproc.cosmicray_median"] = (
        _as_flags(frame, bpm, median.mask & ~masked.mask, median.data + bias),
        time.perf_counter() - start,
    )
    start = time.perf_counter()
    lacosmic = ccdproc.cosmicray_lacosmic(
        calibrated,
        gain=camera.gain,
        readnoise=camera.read_noise,
        satlevel=camera.saturation_adu - bias,
        gain_apply=False,
    )
    results["ccdproc.cosmicray_lacosmic"] = (
        _as_flags(frame, bpm, lacosmic.mask & ~masked.mask, lacosmic.data + bias),
        time.perf_counter() - start,
    )
    return results


def _row(name, fwhm, score, seconds, replaced=True):
    replaced_text = (
        f"{score['replaced_within_3sigma']:>9.3f}" if replaced else f"{'-':>9}"
    )
    return (
        f"{name:<28}{fwhm:>5.1f}{score['persistent_recall']:>9.3f}"
        f"{score['transient_recall']:>9.3f}{score['on_star_recall']:>9.3f}"
        f"{score['false_per_mpx']:>10.0f}"
        f"{score['bright_stars_hit'] * 100:>8.1f}% ({score['bright_stars']:>3d})"
        f"{score['faint_stars_hit'] * 100:>8.2f}%"
        f"{score['galaxies_hit'] * 100:>7.2f}%"
        f"{replaced_text}{score['unflagged_changed']:>9d}{seconds:>8.2f}"
    )


def _installed(names):
    """The engines asked for whose extra is installed; one line for each other."""
    from ccdpixfix.transients import learned

    kept = []
    for name in names:
        if name not in ENGINES:
            raise SystemExit(
                f"unknown engine {name!r}; choose from {', '.join(ENGINES)}"
            )
        detector = ENGINES[name][0]
        if detector is not None:
            try:
                learned.require(detector)
            except ImportError as error:
                print(f"{name}: skipped, {error}")
                continue
        kept.append(name)
    return kept


def _one_pixel(truth):
    """Transients above 5 sigma that are one pixel alone (8-connected)."""
    labels, n = ndimage.label(truth["transient_hot"], structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    alone = (sizes[labels] == 1) & truth["transient_hot"]
    return alone & (truth["transient_amplitude"] > 5 * truth["sigma"])


def _engine(name, frame, bpm, gain):
    """One engine's result on a frame, as a CCDData with flags."""
    from ccdpixfix.transients import learned

    detector, confirmed = ENGINES[name]
    if detector is None:
        return fix_pixels(frame, bpm)
    options = {"gain": gain}
    if confirmed:
        return fix_pixels(frame, bpm, detector=detector, detector_options=options)
    mask = learned.model_mask(
        np.asarray(frame.data), detector, options, bad=bpm.flags != 0
    )
    return _as_flags(frame, bpm, mask, frame.data)


def engine_table(night, bpm, names):
    """Recall, false flags, stars hit and seconds of each engine, per frame."""
    names = _installed(names)
    print(
        f"\n{'engine':<24}{'FWHM':>5}{'trans>5s':>9}{'on stars':>9}{'1-px':>7}"
        f"{'false/Mpx':>10}{'stars hit (n)':>15}{'s/frame':>8}"
    )
    for frame, truth in zip(night.science, night.science_truth, strict=True):
        fwhm = float(truth["stars"]["fwhm"][0])
        alone = _one_pixel(truth)
        for name in names:
            start = time.perf_counter()
            result = _engine(name, frame, bpm, night.camera.gain)
            seconds = time.perf_counter() - start
            score = score_frame(frame, result, truth)
            hot = (result.flags & np.uint16(PixelFlag.TRANSIENT_HOT)) != 0
            print(
                f"{name:<24}{fwhm:>5.1f}{score['transient_recall']:>9.3f}"
                f"{score['on_star_recall']:>9.3f}{hot[alone].mean():>7.3f}"
                f"{score['false_per_mpx']:>10.0f}"
                f"{score['bright_stars_hit'] * 100:>8.1f}% "
                f"({score['bright_stars']:>3d}){seconds:>8.2f}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument(
        "--cosmic-rays", choices=("realistic", "compact", "sharp"), default="realistic"
    )
    parser.add_argument(
        "--fwhm",
        default="1.8,2.6,4.0",
        help="comma-separated FWHMs (px) of the science frames; below 1.5 px "
        "the stars are undersampled",
    )
    parser.add_argument(
        "--psf-beta",
        type=float,
        default=3.0,
        help="Moffat beta of the stars (50: a Gaussian)",
    )
    parser.add_argument(
        "--engines",
        default=None,
        help=f"comma-separated engines to compare, from {','.join(ENGINES)}",
    )
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    night = make_night(
        shape=(args.size, args.size),
        seed=args.seed,
        n_darks=9,
        n_flats=5,
        cosmic_rays=args.cosmic_rays,
        fwhms=tuple(float(value) for value in args.fwhm.split(",")),
        psf_beta=args.psf_beta,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        bpm = make_bad_pixel_map(night.darks, night.flats)
    map_seconds = time.perf_counter() - start
    map_score = score_bad_pixel_map(bpm, night.camera.truth)
    print(
        f"Bad-pixel map, {args.size} x {args.size}, 9 darks + 5 flats, "
        f"{map_seconds:.2f} s"
    )
    for kind, recall in map_score["recall"].items():
        print(f"  recall {kind:<14}{recall:.4f}  ({night.camera.truth[kind].sum()})")
    print(
        f"  false flags {map_score['false_flags']} "
        f"({map_score['false_per_mpx']:.1f} per Mpx)"
    )
    if args.engines is not None:
        names = [name.strip() for name in args.engines.split(",") if name.strip()]
        engine_table(night, bpm, names)
        return
    print()
    print(
        f"{'method':<28}{'FWHM':>5}{'persist':>9}{'trans>5s':>9}{'on stars':>9}"
        f"{'false/Mpx':>10}"
        f"{'stars hit (n)':>15}{'faint hit':>10}{'gal hit':>8}{'repl<3s':>9}"
        f"{'changed':>9}"
        f"{'time s':>8}"
    )
    for frame, truth in zip(night.science, night.science_truth, strict=True):
        fwhm = float(truth["stars"]["fwhm"][0])
        start = time.perf_counter()
        fixed = fix_pixels(frame, bpm)
        seconds = time.perf_counter() - start
        print(
            _row(
                "ccdpixfix.fix_pixels", fwhm, score_frame(frame, fixed, truth), seconds
            )
        )
        if args.no_anchors:
            continue
        for name, (result, took) in _anchors(frame, truth, bpm, night.camera).items():
            print(
                _row(
                    name, fwhm, score_frame(frame, result, truth), took, replaced=False
                )
            )


if __name__ == "__main__":
    main()
