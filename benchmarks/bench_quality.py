"""Quality of ccdpixfix against the truth of a simulated night, with anchors.

Nine 300 s darks, five flats and science frames at FWHM 1.8, 2.6 and 4.0 px
on a 1024 x 1024 simulated camera; ccdproc's ``cosmicray_median`` and
``cosmicray_lacosmic`` (astroscrappy) run on the same frames, with the same
bad-pixel map as mask, for comparison.

``--cosmic-rays realistic`` (the default) gives the camera cosmic rays with
charge diffusion, long oblique tracks, worms and saturated cores, and puts
half the one-exposure hot pixels on stars; ``sharp`` the one-pixel-wide
events of earlier versions. "on stars" is the recall of transients above
5 sigma on pixels with over 500 e- of star light.

Run with::

    python benchmarks/bench_quality.py [--size 1024] [--seed 0]
        [--cosmic-rays {realistic,sharp}]
"""

import argparse
import time
import warnings

import ccdproc
import numpy as np
from _stamp import stamp
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

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
        f"{replaced_text}{score['unflagged_changed']:>9d}{seconds:>8.2f}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument(
        "--cosmic-rays", choices=("realistic", "sharp"), default="realistic"
    )
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    night = make_night(
        shape=(args.size, args.size),
        seed=args.seed,
        n_darks=9,
        n_flats=5,
        cosmic_rays=args.cosmic_rays,
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
    print()
    print(
        f"{'method':<28}{'FWHM':>5}{'persist':>9}{'trans>5s':>9}{'on stars':>9}"
        f"{'false/Mpx':>10}"
        f"{'stars hit (n)':>15}{'repl<3s':>9}{'changed':>9}{'time s':>8}"
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
