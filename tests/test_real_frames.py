"""Real camera frames that ship with ccdproc's test data."""

from pathlib import Path

import ccdproc
import numpy as np
import pytest
from astropy.nddata import CCDData
from scipy import ndimage

from ccdpixfix import PixelFlag, fix_pixels

DATA = Path(ccdproc.__file__).parent / "tests" / "data"
TRANSIENT = np.uint16(PixelFlag.TRANSIENT_HOT | PixelFlag.TRANSIENT_COLD)


@pytest.fixture(scope="module")
def a8280271():
    frame = CCDData.read(DATA / "a8280271.fits", unit="adu")
    return frame, fix_pixels(frame)


def test_overscan_edge_is_not_a_defect(a8280271):
    """The frame has a bias-level overscan (~200 ADU) beside sky (~300 ADU):
    a step no median filter should take for a row of hot pixels."""
    frame, fixed = a8280271
    data = np.asarray(frame.data, float)
    lit = np.nonzero(np.median(data, axis=0) > 250)[0]
    first, last = lit[0], lit[-1]
    lit_rows = np.nonzero(np.median(data, axis=1) > 250)[0]
    transient = (fixed.flags & TRANSIENT) != 0
    boundary = np.zeros(data.shape, bool)
    boundary[:, [first - 1, first, last, last + 1]] = True
    boundary[[lit_rows[-1], lit_rows[-1] + 1], first - 1 : last + 2] = True
    assert boundary.sum() > 2000
    # The two corners of the lit area are single bright pixels with only
    # three bright neighbours: nothing at the pixel scale tells them from a
    # short track. One more flag allows for a 4-sigma fluctuation.
    assert transient[boundary].sum() <= 3


def test_cosmic_rays_found_and_stars_spared(a8280271):
    frame, fixed = a8280271
    data = np.asarray(frame.data, float)
    transient = (fixed.flags & TRANSIENT) != 0
    smooth = ndimage.gaussian_filter(data, 2)
    stars, n_stars = ndimage.label(smooth > 600)
    assert n_stars == 2
    near_stars = ndimage.binary_dilation(stars > 0, iterations=3)
    assert not transient[near_stars].any()
    # the brightest single-pixel outliers on the sky are cosmic rays
    level = ndimage.median_filter(data, size=5)
    sky = (np.median(data, axis=0) > 250)[None, :] & ~near_stars
    outliers = sky & (data - level > 200)
    assert outliers.sum() >= 5
    assert transient[outliers].mean() >= 0.9
    assert 10 < transient.sum() < 0.01 * transient.size


def test_fixed_frame_keeps_every_other_pixel(a8280271):
    frame, fixed = a8280271
    replaced = (fixed.flags & np.uint16(PixelFlag.REPLACED)) != 0
    assert np.array_equal(
        fixed.data[~replaced], frame.data[~replaced].astype(np.float32)
    )
    # every card kept in order; the step adds its keyword (as ccdproc's steps
    # do) and HISTORY
    added = {"FIX_PIXELS", "FIXPIX"}
    kept = [key for key in fixed.meta.keys() if key not in added]
    assert kept[: len(frame.meta)] == list(frame.meta.keys())
    assert fixed.meta["FIX_PIXELS"] == "fixpix"


def test_raw_frame_with_warm_pixels_and_no_gain():
    """An Apogee Alta subframe without GAIN or RDNOISE: the noise is measured,
    and the frame's many warm pixels stand out, as they should without a map."""
    frame = CCDData.read(DATA / "sip-wcs.fit", unit="adu")
    fixed = fix_pixels(frame)
    data = np.asarray(frame.data, float)
    sigma = fixed.uncertainty.array
    # the measured noise matches the robust scatter of the frame
    scatter = 1.4826 * np.median(np.abs(data - np.median(data)))
    assert 0.8 < np.median(sigma) / scatter < 1.25
    transient = (fixed.flags & TRANSIENT) != 0
    strong = data - ndimage.median_filter(data, size=3) > 10 * np.median(sigma)
    assert transient[strong].mean() >= 0.9
    assert np.allclose(
        fixed.wcs.pixel_to_world_values(10, 20), frame.wcs.pixel_to_world_values(10, 20)
    )


def test_a_dark_column_is_no_line_of_cold_transients(a8280271):
    """The frame's second column reads about 16 ADU under the overscan on
    either side of it, row after row: a dark line, persistent, not 379
    pixels that read out empty (as they were called before)."""
    frame, fixed = a8280271
    cold = (fixed.flags & np.uint16(PixelFlag.TRANSIENT_COLD)) != 0
    level = np.median(np.asarray(frame.data, float), axis=0)
    assert level[1] < min(level[0], level[2]) - 10
    assert cold[:, 1].sum() <= 2
