"""Aperture photometry of stars with a defect in their aperture, and of clean ones.

Each star is measured with photutils (circular aperture of radius 1.5 FWHM,
background from the median of an annulus) on the simulated raw frame, on the
frame after ``fix_pixels`` and after ``ccdproc.cosmicray_lacosmic`` (given the
same bad-pixel map as mask), and compared with the same measurement on the
defect-free image of the same exposure (same noise). Errors are in units of
the star's photometric noise. Stars with a defect in the aperture should
improve; clean stars must not get worse.

Run with::

    python benchmarks/bench_photometry.py [--size 1024] [--seed 0]
        [--cosmic-rays {realistic,compact,sharp}]

``realistic`` (the default) gives the camera cosmic rays with charge
diffusion and puts half the one-exposure hot pixels on stars.
"""

import argparse
import warnings

import ccdproc
import numpy as np
from _stamp import stamp
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)

from ccdpixfix import fix_pixels, flag_bad_pixels, make_bad_pixel_map
from ccdpixfix.datasets import make_night


def photometry(data, positions, radius):
    """Background-subtracted aperture sums."""
    apertures = CircularAperture(positions, r=radius)
    annulus = CircularAnnulus(positions, r_in=radius + 3, r_out=radius + 8)
    background = ApertureStats(data, annulus).median
    table = aperture_photometry(data, apertures)
    return np.asarray(table["aperture_sum"]) - background * apertures.area


def _stars(truth, size, radius):
    stars = truth["stars"]
    keep = (
        (stars["x"] > radius + 10)
        & (stars["x"] < size - radius - 10)
        & (stars["y"] > radius + 10)
        & (stars["y"] < size - radius - 10)
        & ~stars["saturated"]
        & (stars["peak_adu"] > 20 * np.median(truth["sigma"]))
    )
    return stars[keep]


def _touched(stars, truth, radius):
    """Whether a defect or transient lies in each star's aperture."""
    bad = truth["defect"] | truth["transient_hot"] | truth["transient_cold"]
    rows, cols = np.nonzero(bad)
    touched = []
    for star in stars:
        distance = np.hypot(cols - star["x"], rows - star["y"])
        touched.append(bool((distance <= radius).any()))
    return np.array(touched)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cosmic-rays", choices=("realistic", "compact", "sharp"), default="realistic"
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        bpm = make_bad_pixel_map(night.darks, night.flats)
    bias = night.camera.bias
    rows = []
    for frame, truth in zip(night.science, night.science_truth, strict=True):
        fwhm = float(truth["stars"]["fwhm"][0])
        radius = 1.5 * fwhm
        stars = _stars(truth, args.size, radius)
        positions = np.transpose([stars["x"], stars["y"]])
        touched = _touched(stars, truth, radius)
        reference = photometry(truth["clean"] - bias, positions, radius)
        noise = np.sqrt(
            np.asarray(
                aperture_photometry(
                    truth["sigma"] ** 2, CircularAperture(positions, r=radius)
                )["aperture_sum"]
            )
        )
        raw = np.asarray(frame.data, float) - bias
        fixed = np.asarray(fix_pixels(frame, bpm).data, float) - bias
        masked = flag_bad_pixels(frame, bpm)
        lacosmic = ccdproc.cosmicray_lacosmic(
            CCDData(raw, unit="adu", mask=masked.mask),
            gain=night.camera.gain,
            readnoise=night.camera.read_noise,
            satlevel=night.camera.saturation_adu - bias,
            gain_apply=False,
        )
        for name, data in (
            ("raw", raw),
            ("ccdpixfix.fix_pixels", fixed),
            ("ccdproc.cosmicray_lacosmic", np.asarray(lacosmic.data)),
        ):
            error = np.abs(photometry(data, positions, radius) - reference) / noise
            for group, selection in (
                ("defect in aperture", touched),
                ("clean", ~touched),
            ):
                values = error[selection]
                rows.append(
                    (
                        fwhm,
                        name,
                        group,
                        values.size,
                        np.median(values),
                        np.percentile(values, 95),
                    )
                )
    print(f"{'FWHM':>5} {'method':<28}{'stars':<20}{'n':>5}{'median':>9}{'95th':>9}")
    for fwhm, name, group, count, median, p95 in rows:
        print(f"{fwhm:>5.1f} {name:<28}{group:<20}{count:>5d}{median:>9.2f}{p95:>9.2f}")
    print("errors: |flux - flux of the defect-free image| / photometric noise")


if __name__ == "__main__":
    main()
