"""replace_bad_pixels: estimates from good neighbours only."""

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty

from ccdpixfix import (
    PixelFlag,
    fix_pixels,
    flag_bad_pixels,
    flag_transients,
    replace_bad_pixels,
)

REPLACED = np.uint16(PixelFlag.REPLACED)


@pytest.fixture(scope="module")
def repaired(camera, bpm):
    frame, truth = camera.science(fwhm=2.6, seed=5)
    flagged = flag_transients(flag_bad_pixels(frame, bpm))
    return frame, truth, flagged, replace_bad_pixels(flagged)


def test_only_flagged_pixels_change(repaired):
    frame, _, flagged, fixed = repaired
    replaced = (fixed.flags & REPLACED) != 0
    assert replaced.sum() > 100
    assert np.array_equal(fixed.data[~replaced], flagged.data[~replaced])
    assert np.array_equal(
        fixed.data[~replaced], frame.data[~replaced].astype(np.float32)
    )
    # every replaced pixel keeps the flag that caused it, and stays masked
    assert ((fixed.flags[replaced] & ~REPLACED) != 0).all()
    assert fixed.mask[replaced].all()


def test_replaced_values_are_close_to_the_truth(repaired):
    _, truth, _, fixed = repaired
    replaced = (fixed.flags & REPLACED) != 0
    error = np.abs(fixed.data - truth["expected"]) / truth["sigma"]
    assert (error[replaced] < 3).mean() >= 0.95


def test_uncertainty_is_inflated_for_replaced_pixels(repaired):
    _, truth, flagged, fixed = repaired
    replaced = (fixed.flags & REPLACED) != 0
    before = flagged.uncertainty.array
    after = fixed.uncertainty.array
    assert np.array_equal(after[~replaced], before[~replaced])
    # at least the noise of a measurement there, plus the estimate's error
    assert (after[replaced] >= 0.99 * truth["sigma"][replaced]).mean() >= 0.95
    assert np.median(after[replaced] / truth["sigma"][replaced]) > 1.03


def test_saturated_pixels_are_not_replaced_by_default(repaired):
    _, _, _, fixed = repaired
    saturated = (fixed.flags & np.uint16(PixelFlag.SATURATED)) != 0
    assert saturated.any()
    assert not ((fixed.flags & REPLACED) != 0)[saturated].any()


def test_a_saturated_pixel_without_a_value_is_replaced():
    """A saturated pixel keeps its value; a NaN one has none to keep (found
    by the property tests: a NaN flagged SATURATED stayed NaN)."""
    data = np.random.default_rng(3).normal(100.0, 1.0, (9, 9))
    data[4, 4] = np.nan
    data[2, 2] = 60000.0
    flags = np.zeros(data.shape, np.uint16)
    flags[[4, 2], [4, 2]] = PixelFlag.SATURATED
    ccd = CCDData(data, unit="adu", flags=flags)
    fixed = replace_bad_pixels(ccd)
    assert np.isfinite(fixed.data).all()
    assert fixed.flags[4, 4] & REPLACED
    assert abs(fixed.data[4, 4] - 100.0) < 3
    assert fixed.data[2, 2] == 60000.0
    assert not fixed.flags[2, 2] & REPLACED


def test_never_from_flagged_pixels_and_outside_in():
    rng = np.random.default_rng(2)
    data = rng.normal(100.0, 1.0, (40, 40))
    flags = np.zeros(data.shape, np.uint16)
    data[10:17, 10:17] = 1e6  # a 7 x 7 cluster of absurd values
    flags[10:17, 10:17] = PixelFlag.HOT
    data[:, 30:33] = -1e6  # a three-pixel-wide bad column
    flags[:, 30:33] = PixelFlag.BAD_COLUMN
    fixed = replace_bad_pixels(CCDData(data, unit="adu", flags=flags))
    bad = flags != 0
    assert np.all(np.abs(fixed.data[bad] - 100.0) < 5.0)
    assert ((fixed.flags & REPLACED) != 0)[bad].all()


def test_gradient_across_a_column_is_interpolated():
    ramp = np.add.outer(np.zeros(30), np.arange(30.0) * 10.0)
    flags = np.zeros(ramp.shape, np.uint16)
    flags[:, 15] = PixelFlag.BAD_COLUMN
    data = ramp.copy()
    data[:, 15] = 0.0
    for method in ("median", "mean"):
        fixed = replace_bad_pixels(
            CCDData(data, unit="adu", flags=flags), method=method
        )
        assert np.allclose(fixed.data[1:-1, 15], 150.0)


def test_uncertainty_type_is_kept():
    rng = np.random.default_rng(3)
    data = rng.normal(50.0, 2.0, (20, 20))
    flags = np.zeros(data.shape, np.uint16)
    flags[5, 5] = PixelFlag.TRANSIENT_HOT
    ccd = CCDData(
        data,
        unit="adu",
        flags=flags,
        uncertainty=VarianceUncertainty(np.full((20, 20), 4.0)),
    )
    fixed = replace_bad_pixels(ccd)
    assert isinstance(fixed.uncertainty, VarianceUncertainty)
    assert fixed.uncertainty.array[5, 5] > 4.0
    assert fixed.uncertainty.array[6, 6] == 4.0


def test_photutils_takes_the_fixed_frame(camera, bpm):
    aperture = pytest.importorskip("photutils.aperture")
    CircularAperture = aperture.CircularAperture
    aperture_photometry = aperture.aperture_photometry

    frame, truth = camera.science(fwhm=2.6, seed=8)
    fixed = fix_pixels(frame, bpm)
    assert isinstance(fixed.uncertainty, StdDevUncertainty)
    stars = truth["stars"]
    positions = np.transpose([stars["x"], stars["y"]])[:20]
    apertures = CircularAperture(positions, r=4.0)
    table = aperture_photometry(
        fixed.data, apertures, error=fixed.uncertainty.array, mask=fixed.mask
    )
    assert np.isfinite(table["aperture_sum"]).all()
    assert (table["aperture_sum_err"] > 0).all()
