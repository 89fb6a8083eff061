"""Tests of the simulated camera in ccdpixfix.datasets."""

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import sigma_clipped_stats
from astropy.wcs import WCS
from scipy import integrate, ndimage

from ccdpixfix.datasets import (
    DEFECT_KEYS,
    SimulatedCamera,
    make_night,
    vignetting,
)

SHAPE = (128, 128)


@pytest.fixture(scope="module")
def camera():
    return SimulatedCamera((256, 256), seed=7)


@pytest.fixture(scope="module")
def science(camera):
    return camera.science(fwhm=2.6, seed=11)


@pytest.fixture(scope="module")
def dark(camera):
    return camera.dark(300.0, seed=4)


def _moffat_pixel_fraction(fwhm, offset_x, offset_y, beta=3.0):
    """Exact fraction of a Moffat star's flux in the pixel at the given offset."""
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))

    def density(y, x):
        return (
            (beta - 1)
            / (math.pi * alpha**2)
            * (1 + (x * x + y * y) / alpha**2) ** -beta
        )

    x_low, y_low = offset_x - 0.5, offset_y - 0.5
    return integrate.dblquad(density, x_low, x_low + 1, y_low, y_low + 1)[0]


def test_same_seed_gives_identical_frames():
    first, second = SimulatedCamera(SHAPE, seed=3), SimulatedCamera(SHAPE, seed=3)
    np.testing.assert_array_equal(first.dark(seed=1).data, second.dark(seed=1).data)
    np.testing.assert_array_equal(first.flat(seed=2).data, second.flat(seed=2).data)
    ccd_first, truth_first = first.science(seed=5)
    ccd_second, truth_second = second.science(seed=5)
    np.testing.assert_array_equal(ccd_first.data, ccd_second.data)
    np.testing.assert_array_equal(truth_first["clean"], truth_second["clean"])
    for key in DEFECT_KEYS:
        np.testing.assert_array_equal(first.truth[key], second.truth[key])


def test_different_seeds_give_different_frames():
    camera = SimulatedCamera(SHAPE, seed=3)
    assert not np.array_equal(camera.dark(seed=1).data, camera.dark(seed=2).data)
    assert not np.array_equal(camera.flat(seed=1).data, camera.dark(seed=1).data)
    assert not np.array_equal(
        camera.science(seed=1)[0].data, camera.science(seed=2)[0].data
    )
    other = SimulatedCamera(SHAPE, seed=4)
    assert not np.array_equal(camera.truth["defect"], other.truth["defect"])
    # Unseeded frames differ from call to call but are reproducible per camera.
    unseeded = [SimulatedCamera(SHAPE, seed=3).dark().data for _ in range(2)]
    np.testing.assert_array_equal(unseeded[0], unseeded[1])
    assert not np.array_equal(camera.dark().data, camera.dark().data)


def test_frames_are_raw_uint16_adu(camera, dark, science):
    for ccd in (dark, camera.flat(seed=0), science[0]):
        assert isinstance(ccd, CCDData)
        assert ccd.data.dtype == np.uint16
        assert ccd.unit == "adu"
        assert ccd.data.shape == camera.shape
        assert ccd.data.max() <= camera.saturation_adu


def test_defects_are_disjoint_isolated_and_counted(camera):
    truth = camera.truth
    total = sum(truth[key].astype(int) for key in DEFECT_KEYS)
    assert total.max() == 1
    np.testing.assert_array_equal(truth["defect"], total == 1)
    npix = truth["defect"].size
    assert truth["hot"].sum() == round(5e-4 * npix)
    assert truth["warm"].sum() == round(1e-3 * npix)
    points = truth["defect"] & ~truth["bad_column"]
    _, sizes = np.unique(ndimage.label(points, np.ones((3, 3)))[0], return_counts=True)
    assert sizes[1:].max() == 1
    near_column = ndimage.binary_dilation(truth["bad_column"], np.ones((3, 3)))
    assert not (near_column & points).any()


def test_bad_column_is_a_segment_reaching_an_edge(camera):
    rows, cols = np.nonzero(camera.truth["bad_column"])
    ny, nx = camera.shape
    assert np.unique(cols).size == 1
    assert 10 <= cols[0] < nx - 10
    assert ny / 4 <= rows.size <= 3 * ny / 4
    assert rows.min() == 0 or rows.max() == ny - 1
    assert np.all(np.diff(rows) == 1)


def test_dark_level_and_read_noise(camera, dark):
    expected = camera.bias + camera.dark_current * 300.0 / camera.gain
    assert abs(np.median(dark.data) - expected) <= 1.0
    _, _, std = sigma_clipped_stats(dark.data[~camera.truth["defect"]], sigma=4)
    assert std == pytest.approx(camera.read_noise / camera.gain, rel=0.15)
    bias_frame = camera.dark(0.0, seed=1)
    assert np.median(bias_frame.data) == pytest.approx(camera.bias, abs=1)


def test_dark_defects_stand_out(camera, dark):
    data = dark.data.astype(float)
    median = np.median(data)
    assert np.all(data[camera.truth["hot"]] - median > 100)
    assert np.median(data[camera.truth["warm"]] - median) > 10
    column_excess = np.median(data[camera.truth["bad_column"]]) - median
    assert column_excess == pytest.approx(0.5 * 300 / camera.gain, rel=0.1)
    stuck = camera.truth["stuck"]
    np.testing.assert_array_equal(data[stuck], camera.stuck_value[stuck])


def test_stuck_values_are_from_the_documented_set():
    camera = SimulatedCamera((256, 256), seed=1, stuck_fraction=2e-3)
    values = camera.stuck_value[camera.truth["stuck"]]
    assert np.isnan(camera.stuck_value[~camera.truth["stuck"]]).all()
    middle = (values != 0) & (values != 65535)
    assert (values == 0).any() and (values == 65535).any() and middle.any()
    assert np.all((values[middle] >= camera.bias + 100) & (values[middle] <= 30000))


def test_flat_response(camera):
    flat = camera.flat(20000.0, seed=3)
    scale = 20000.0 * camera.illumination / camera.gain
    normalised = (flat.data - camera.bias) / scale
    truth = camera.truth
    assert np.all(normalised[truth["dead"]] < 0.1)
    low = normalised[truth["low_response"]]
    assert np.all((low > 0.25) & (low < 0.85))
    assert np.median(normalised[~truth["defect"]]) == pytest.approx(1.0, abs=0.01)
    assert flat.header["EXPTIME"] == 2.0
    assert flat.header["IMAGETYP"] == "Flat Field"


def test_vignetting():
    pattern = vignetting((65, 81))
    assert pattern[32, 40] == pytest.approx(1.0)
    for corner in (pattern[0, 0], pattern[-1, -1], pattern[0, -1]):
        assert corner == pytest.approx(0.7)
    np.testing.assert_array_equal(SimulatedCamera.vignetting((65, 81)), pattern)


def test_science_equals_clean_away_from_defects_and_transients(camera, science):
    ccd, truth = science
    touched = truth["defect"] | truth["transient_hot"] | truth["transient_cold"]
    np.testing.assert_array_equal(ccd.data[~touched], truth["clean"][~touched])
    # The defects really change the frame.
    assert (ccd.data[truth["stuck"]] != truth["clean"][truth["stuck"]]).any()
    assert np.all(ccd.data[truth["dead"]] < truth["clean"][truth["dead"]])


def test_expected_agrees_with_clean_within_noise(science):
    _, truth = science
    pull = (truth["clean"] - truth["expected"]) / truth["sigma"]
    assert np.mean(np.abs(pull) < 5) > 0.999
    unsaturated = truth["clean"] < 65535
    assert np.std(pull[unsaturated]) == pytest.approx(1.0, abs=0.05)
    assert abs(np.mean(pull[unsaturated])) < 0.05


def test_transients(camera, science):
    ccd, truth = science
    hot = truth["transient_hot"]
    assert hot.sum() > camera.shape[0] * camera.shape[1] // 4000
    assert np.all(truth["transient_amplitude"][~hot] == 0)
    assert np.all(truth["transient_amplitude"][hot] >= 1 / camera.gain)
    gain = ccd.data.astype(float) - truth["clean"]
    strong = hot & (truth["transient_amplitude"] > 50) & ~truth["defect"]
    strong &= truth["clean"] < camera.saturation_adu
    assert np.all(gain[strong] > 0)
    cold = truth["transient_cold"]
    assert cold.sum() == 2
    assert not (cold & hot).any()
    assert np.all(
        (ccd.data[cold] >= camera.bias) & (ccd.data[cold] <= camera.bias + 20)
    )


def test_cosmic_rays_reach_corners_and_edges(science):
    _, truth = science
    hot = truth["transient_hot"]
    assert hot[[0, 0, -1, -1], [0, -1, 0, -1]].any()
    inner_edges = np.concatenate(
        [hot[0, 1:-1], hot[-1, 1:-1], hot[1:-1, 0], hot[1:-1, -1]]
    )
    assert inner_edges.any()


def test_star_table(science):
    _, truth = science
    stars = truth["stars"]
    assert stars.colnames == ["x", "y", "flux", "fwhm", "peak_adu", "saturated"]
    assert len(stars) == 256 * 256 // 2000
    assert np.all(stars["fwhm"] == 2.6)
    assert np.all((stars["flux"] >= 2e3) & (stars["flux"] <= 3e6))
    # More faint stars than bright ones.
    assert np.sum(stars["flux"] < 2e4) > 3 * np.sum(stars["flux"] > 2e5)


def test_bright_stars_saturate(camera, science):
    ccd, truth = science
    stars = truth["stars"]
    assert stars["saturated"].any()
    assert truth["saturated"].any()
    assert np.all(ccd.data[truth["saturated"]] == camera.saturation_adu)
    assert not (truth["saturated"] & camera.truth["stuck"]).any()
    for star in stars[stars["saturated"]]:
        row, col = round(star["y"]), round(star["x"])
        if not camera.truth["defect"][row, col]:
            assert ccd.data[row, col] == camera.saturation_adu


def test_undersampled_star_peak_fraction_matches_pixel_integral():
    camera = SimulatedCamera(SHAPE, seed=2, prnu=0.0)
    _, truth = camera.science(fwhm=1.8, n_stars=6, seed=1)
    for star in truth["stars"]:
        row, col = round(star["y"]), round(star["x"])
        fraction = star["peak_adu"] * camera.gain
        fraction /= star["flux"] * camera.illumination[row, col]
        exact = _moffat_pixel_fraction(1.8, col - star["x"], row - star["y"])
        assert fraction == pytest.approx(exact, rel=0.015)


@pytest.mark.parametrize("beta", [2.0, 50.0])
def test_psf_beta_sets_the_stars_profile(beta):
    """``psf_beta``: broad Moffat wings (2) or nearly a Gaussian (50)."""
    camera = SimulatedCamera(SHAPE, seed=2, prnu=0.0)
    _, truth = camera.science(fwhm=1.8, psf_beta=beta, n_stars=6, seed=1)
    for star in truth["stars"]:
        row, col = round(star["y"]), round(star["x"])
        fraction = star["peak_adu"] * camera.gain
        fraction /= star["flux"] * camera.illumination[row, col]
        exact = _moffat_pixel_fraction(1.8, col - star["x"], row - star["y"], beta)
        assert fraction == pytest.approx(exact, rel=0.015)
        assert fraction != pytest.approx(
            _moffat_pixel_fraction(1.8, col - star["x"], row - star["y"]), rel=0.015
        )


def test_star_image_holds_the_pixel_integrated_flux():
    # A deep well and a high gain keep the bright star unsaturated.
    camera = SimulatedCamera(
        SHAPE, seed=1, prnu=0.0, dark_current=0.0, gain=200.0, full_well=1e8
    )
    options = {"n_stars": 1, "nebulosity": False, "n_cosmic_rays": 0}
    _, truth = camera.science(fwhm=1.8, sky=100.0, seed=3, **options)
    light = (truth["expected"] - camera.bias) * camera.gain / camera.illumination
    star_light = light - 100.0
    (star,) = truth["stars"]
    row, col = round(star["y"]), round(star["x"])
    exact = _moffat_pixel_fraction(1.8, col - star["x"], row - star["y"])
    assert star_light[row, col] / star["flux"] == pytest.approx(exact, rel=0.015)
    # The whole stamp is there: the frame holds the star's flux.
    assert star_light.sum() == pytest.approx(star["flux"], rel=0.01)


def test_nebulosity_is_smooth(science):
    _, truth = science
    nebula = truth["nebulosity"]
    assert nebula.max() > 0.5 * truth["sky"]
    smoothed = ndimage.gaussian_filter(nebula, 1.0, mode="nearest")
    assert np.abs(nebula - smoothed).max() < 0.05 * nebula.max()


def test_header_cards(camera, dark, science):
    ccd, _ = science
    header = ccd.header
    for key in (
        "INSTRUME", "TELESCOP", "OBSERVER", "OBJECT", "DATE-OBS", "EXPTIME",
        "EXPOSURE", "IMAGETYP", "GAIN", "RDNOISE", "SATURATE", "CCD-TEMP",
        "XBINNING", "YBINNING", "BUNIT", "COMMENT", "HISTORY",
    ):  # fmt: skip
        assert key in header
    assert header["INSTRUME"] == "ccdpixfix simulated camera"
    assert header["IMAGETYP"] == "Light Frame"
    assert dark.header["IMAGETYP"] == "Dark Frame"
    assert header["GAIN"] == camera.gain and header["RDNOISE"] == camera.read_noise
    assert header["EXPTIME"] == header["EXPOSURE"] == 300.0
    assert header["HIERARCH CCDPIXFIX SIM SEED"] == 11
    assert "CONTINUE" in header.tostring()
    assert "OBJECT" not in dark.header and dark.wcs is None
    first = camera.dark(seed=1).header["DATE-OBS"]
    assert camera.dark(seed=2).header["DATE-OBS"] > first


def test_science_wcs_round_trips(tmp_path, science):
    ccd, _ = science
    from_header = WCS(ccd.header)
    assert ccd.wcs.wcs.ctype[0] == "RA---TAN"
    centre = [(n - 1) / 2 for n in ccd.shape[::-1]]
    sky = ccd.wcs.pixel_to_world(*centre)
    assert from_header.pixel_to_world(*centre).separation(sky).arcsec < 1e-6
    scale = ccd.wcs.proj_plane_pixel_scales()
    assert scale[0].to_value("arcsec") == pytest.approx(0.5)
    path = tmp_path / "science.fits"
    ccd.write(path)
    again = CCDData.read(path)
    np.testing.assert_array_equal(again.data, ccd.data)
    assert again.wcs.pixel_to_world(*centre).separation(sky).arcsec < 1e-6
    with fits.open(path) as hdus:
        assert hdus[0].header["HIERARCH CCDPIXFIX SIM SEED"] == 11


def test_make_night():
    night = make_night((64, 64), seed=5, n_darks=3, n_flats=2, fwhms=(1.8, 4.0))
    assert len(night.darks) == 3 and len(night.flats) == 2
    assert len(night.science) == len(night.science_truth) == 2
    assert night.science_truth[1]["stars"]["fwhm"][0] == 4.0
    again = make_night((64, 64), seed=5, n_darks=3, n_flats=2, fwhms=(1.8, 4.0))
    np.testing.assert_array_equal(night.darks[2].data, again.darks[2].data)
    assert not np.array_equal(night.darks[0].data, night.darks[1].data)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SimulatedCamera((64,)), "shape must be a 2-D"),
        (lambda: SimulatedCamera((4, 64, 64)), "shape must be a 2-D"),
        (lambda: SimulatedCamera((64, 64), gain=0), "gain must be positive"),
        (lambda: SimulatedCamera((64, 64), seed=-1), "seed must be a non-negative"),
        (lambda: SimulatedCamera((64, 64), hot_fraction=0.5), "hot_fraction"),
        (lambda: SimulatedCamera((64, 4)), "shape must be"),
        (lambda: SimulatedCamera((64, 16)), "bad_column needs"),
        (lambda: SimulatedCamera(SHAPE).dark(-1.0), "exptime must be a non-negative"),
        (lambda: SimulatedCamera(SHAPE).science(exptime=-5), "exptime"),
        (lambda: SimulatedCamera(SHAPE).science(fwhm=0), "fwhm must be positive"),
        (lambda: SimulatedCamera(SHAPE).science(psf_beta=1), "psf_beta must be"),
        (lambda: SimulatedCamera(SHAPE).science(n_stars=-1), "n_stars must be"),
        (
            lambda: SimulatedCamera(SHAPE).science(n_faint_stars=-1),
            "n_faint_stars must be",
        ),
        (lambda: SimulatedCamera(SHAPE).science(n_galaxies=2.5), "n_galaxies must be"),
        (lambda: SimulatedCamera(SHAPE).flat(-10.0), "level must be"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_faint_stars_continue_the_bright_ones_and_leave_the_rest_alone():
    """A decade of fainter stars (200-2000 e-), about three per bright one,
    drawn from a stream of their own: without them the frame is the same
    wherever their light does not fall (galaxies left out: their photons
    come from the faint stars' stream)."""
    camera = SimulatedCamera((256, 256), seed=4)
    ccd, truth = camera.science(fwhm=1.8, seed=2, n_galaxies=0)
    faint, bright = truth["faint_stars"], truth["stars"]
    assert len(faint) == round(len(bright) * (10**0.6 - 1))
    assert np.all((faint["flux"] >= 200) & (faint["flux"] <= 2000))
    assert np.all(bright["flux"] >= 2000)
    # Peaks from below the noise to tens of sigma: where faint hits and
    # faint stars look alike.
    peaks = faint["peak_adu"] / np.median(truth["sigma"])
    assert peaks.min() < 2 and peaks.max() > 8
    plain, plain_truth = camera.science(fwhm=1.8, seed=2, n_faint_stars=0, n_galaxies=0)
    assert len(plain_truth["faint_stars"]) == 0
    # (Moffat wings reach far: "no light" is under a millionth of an ADU.)
    same = np.abs(truth["expected"] - plain_truth["expected"]) < 1e-6
    assert 0.3 < same.mean() < 0.95
    assert np.array_equal(ccd.data[same], plain.data[same])
    for key in ("transient_hot", "transient_cold", "defect"):
        assert np.array_equal(truth[key], plain_truth[key])


def test_galaxies_are_broader_than_the_stars_and_leave_the_rest_alone():
    camera = SimulatedCamera((256, 256), seed=4)
    _, truth = camera.science(fwhm=1.8, seed=2, n_galaxies=40)
    galaxies = truth["galaxies"]
    assert len(galaxies) == 40
    assert np.all((galaxies["flux"] >= 300) & (galaxies["flux"] <= 3e4))
    assert np.all((galaxies["radius"] >= 0.3) & (galaxies["radius"] <= 2.5))
    # Each galaxy's light, second moment about its centre, is broader than
    # the PSF's: measured on the noise-free light of a frame of one.
    one, one_truth = camera.science(
        fwhm=1.8, seed=2, n_galaxies=1, n_stars=0, nebulosity=False, sky=0.0
    )
    plain, plain_truth = camera.science(
        fwhm=1.8, seed=2, n_galaxies=0, n_stars=0, nebulosity=False, sky=0.0
    )
    light = one_truth["expected"] - plain_truth["expected"]
    (galaxy,) = one_truth["galaxies"]
    rows, cols = np.indices(light.shape)
    r2 = (rows - galaxy["y"]) ** 2 + (cols - galaxy["x"]) ** 2
    near = r2 < 100
    width = np.sqrt(np.sum(light[near] * r2[near]) / np.sum(light[near]) / 2)
    assert width > 1.8 / 2.3548
    same = np.abs(one_truth["expected"] - plain_truth["expected"]) < 1e-6
    assert np.array_equal(one.data[same], plain.data[same])
