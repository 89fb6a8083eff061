"""Tests of the noise model in ccdpixfix.noise, against known noise."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import flag_transients
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.medians import local_level
from ccdpixfix.noise import NoiseModel, header_gain, residual_factor, robust_sigma

GAIN = 1.5  # e-/ADU
READ_NOISE = 5.0  # e-
BIAS = 1000.0  # ADU


def _level(data, bad=None):
    """The local level and residual factor, as the library's steps get them."""
    level, n_pairs = local_level(data, bad)
    return level.astype(np.float64), residual_factor(n_pairs)


# --- robust_sigma -------------------------------------------------------------


def test_robust_sigma_ignores_one_percent_of_huge_outliers():
    rng = np.random.default_rng(11)
    sigma = 3.0
    values = rng.normal(50.0, sigma, 100_000)
    outliers = rng.choice(values.size, size=1000, replace=False)
    values[outliers] = rng.uniform(1e3, 1e5, outliers.size)
    assert np.std(values) > 100 * sigma  # the plain std is useless here
    assert robust_sigma(values) == pytest.approx(sigma, rel=0.03)


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_robust_sigma_on_integer_quantised_noise(sigma):
    rng = np.random.default_rng(int(sigma * 10))
    values = np.round(rng.normal(1000.0, sigma, 100_000))
    true_std = np.std(values)
    assert robust_sigma(values) == pytest.approx(true_std, rel=0.15)


@pytest.mark.parametrize("sigma", [0.3, 0.4])
def test_mad_fails_on_quantised_noise_where_robust_sigma_does_not(sigma):
    # Why robust_sigma is not the MAD: with noise below about 0.45 ADU more
    # than half of the values are equal, the MAD is 0, and every pixel that
    # differs from the median by one ADU would be "infinitely significant".
    rng = np.random.default_rng(int(sigma * 10))
    values = np.round(rng.normal(1000.0, sigma, 100_000)).astype(np.uint16)
    true_std = np.std(values.astype(np.float64))
    assert true_std > 0.25
    assert mad_std(values) == 0.0
    assert robust_sigma(values) == pytest.approx(true_std, rel=0.15)


def test_robust_sigma_ignores_non_finite_values_and_any_shape():
    rng = np.random.default_rng(2)
    values = rng.normal(0.0, 2.0, (300, 400))
    values[::7, ::3] = np.nan
    values[5, :] = np.inf
    values[6, :] = -np.inf
    finite = values[np.isfinite(values)]
    assert robust_sigma(values) == pytest.approx(np.std(finite), rel=0.02)
    assert np.isnan(robust_sigma(np.full(10, np.nan)))
    assert np.isnan(robust_sigma(np.array([])))


def test_robust_sigma_of_a_large_input_is_still_right():
    # More than the samples it keeps: it subsamples on a stride.
    rng = np.random.default_rng(4)
    values = rng.normal(10.0, 7.0, 1_100_000)
    values[rng.random(values.size) < 0.005] = 1e6
    assert robust_sigma(values) == pytest.approx(7.0, rel=0.02)


# --- NoiseModel.sigma ---------------------------------------------------------


def test_noise_model_sigma_formula():
    model = NoiseModel("header", floor_variance=9.0, slope=0.5, offset=100.0)
    level = np.array([50.0, 100.0, 132.0, 1100.0, np.nan])
    expected = np.sqrt([9.0, 9.0, 9.0 + 16.0, 9.0 + 500.0, 9.0])
    np.testing.assert_allclose(model.sigma(level), expected, rtol=1e-6)
    assert model.sigma(level).dtype == np.float32


# --- NoiseModel.measure -------------------------------------------------------


def _raw_gradient_frame(seed, shape=(256, 256), top=20000.0):
    """Raw ADU: a quarter of the frame at zero signal, then a ramp of light."""
    rng = np.random.default_rng(seed)
    nx = shape[1]
    ramp = np.clip((np.arange(nx) - nx / 4) / (0.75 * nx), 0, None) * top
    electrons = rng.poisson(np.broadcast_to(ramp, shape)).astype(np.float64)
    electrons += rng.normal(0.0, READ_NOISE, shape)
    return np.round(BIAS + electrons / GAIN)


@pytest.mark.parametrize("seed", [1, 2])
def test_measure_recovers_read_noise_and_gain_on_a_gradient(seed):
    data = _raw_gradient_frame(seed)
    level, factor = _level(data)
    good = np.isfinite(level)
    model = NoiseModel.measure(data, level, good, factor)
    assert model.source == "measured"
    measured_read_noise = np.sqrt(model.floor_variance) * GAIN  # in e-
    measured_gain = 1.0 / model.slope
    assert measured_read_noise == pytest.approx(READ_NOISE, rel=0.10)
    assert measured_gain == pytest.approx(GAIN, rel=0.10)
    # The zero-signal level is the bias pedestal.
    assert model.offset == pytest.approx(BIAS, abs=3.0)


@pytest.mark.parametrize("sigma", [3.0, 10.0])
def test_measure_on_pure_gaussian_noise_gives_its_sigma(sigma):
    # A flat frame: every pixel has the same noise, which the model must give.
    rng = np.random.default_rng(int(sigma))
    data = rng.normal(500.0, sigma, (256, 256))
    level, factor = _level(data)
    good = np.isfinite(level)
    model = NoiseModel.measure(data, level, good, factor)
    # The residuals of all pixels together have the right noise once divided
    # by the residual factor: an error below can only come from the model.
    residual = ((data - level) / factor)[good]
    assert robust_sigma(residual) == pytest.approx(sigma, rel=0.02)
    # 16 bins of 4096 pixels: each bin's sigma is good to ~1 %, the lowest
    # of 16 about 2 % low; 5 % leaves room for that and nothing else.
    assert np.median(model.sigma(level)) == pytest.approx(sigma, rel=0.05)


# --- NoiseModel.from_header ---------------------------------------------------


@pytest.fixture(scope="module")
def camera():
    return SimulatedCamera((256, 256), seed=41, gain=GAIN, read_noise=READ_NOISE)


def _science_inputs(camera, **kwargs):
    ccd, truth = camera.science(seed=5, **kwargs)
    data = ccd.data.astype(np.float64)
    known = (
        truth["defect"]
        | truth["transient_hot"]
        | truth["transient_cold"]
        | truth["saturated"]
    )
    level, factor = _level(data, known)
    good = ~known & np.isfinite(level)
    return ccd, truth, data, level, good, factor


@pytest.mark.parametrize(
    ("kwargs", "below", "above", "sigma_tolerance"),
    [
        # Sky only: the pedestal comes out within a few ADU (measured: 1 to
        # 6 ADU low over 16 frames) and the noise within 1.5 %.
        ({"n_stars": 0, "nebulosity": False}, 10.0, 10.0, 0.03),
        # Stars and a nebula inflate the scatter of the bright bins, which
        # pulls the pedestal down by tens of ADU (measured: 9 to 72 ADU low on
        # 128x128 and 256x256 frames), so the noise comes out up to 7 % high:
        # on the safe side, never low.
        ({}, 100.0, 10.0, 0.10),
    ],
    ids=["sky_only", "stars_and_nebula"],
)
def test_from_header_with_right_keywords_on_raw_data(
    camera, kwargs, below, above, sigma_tolerance
):
    ccd, truth, data, level, good, factor = _science_inputs(camera, **kwargs)
    model = NoiseModel.from_header(
        ccd.header, ccd.unit, data, level, good, factor=factor
    )
    assert model is not None
    assert model.source == "header"
    assert model.floor_variance == pytest.approx((READ_NOISE / GAIN) ** 2)
    assert model.slope == pytest.approx(1.0 / GAIN)
    assert BIAS - below <= model.offset <= BIAS + above
    ratio = np.median(model.sigma(level)[good] / truth["sigma"][good])
    assert 0.98 < ratio < 1.0 + sigma_tolerance


def test_from_header_uses_gain_one_for_data_in_electrons(camera):
    ccd, _, data, level, good, factor = _science_inputs(
        camera, n_stars=0, nebulosity=False
    )
    electrons = (data - BIAS) * GAIN
    level_electrons = (level - BIAS) * GAIN
    model = NoiseModel.from_header(
        ccd.header, "electron", electrons, level_electrons, good, factor=factor
    )
    assert model is not None
    assert model.floor_variance == pytest.approx(READ_NOISE**2)
    assert model.slope == pytest.approx(1.0)
    assert abs(model.offset) < 10.0 * GAIN


@pytest.mark.parametrize("wrong_gain", [GAIN * 30, GAIN / 30])
def test_from_header_rejects_a_gain_wrong_by_thirty(camera, wrong_gain):
    ccd, _, data, level, good, factor = _science_inputs(camera)
    header = ccd.header.copy()
    header["GAIN"] = wrong_gain
    assert header_gain(header) == pytest.approx(wrong_gain)  # plausible alone
    with pytest.warns(AstropyUserWarning, match="do not match the measured noise"):
        model = NoiseModel.from_header(
            header, ccd.unit, data, level, good, factor=factor
        )
    assert model is None


def test_from_header_without_keywords_returns_none(camera):
    ccd, _, data, level, good, factor = _science_inputs(camera)
    for missing in ("GAIN", "RDNOISE"):
        header = ccd.header.copy()
        del header[missing]
        assert (
            NoiseModel.from_header(header, ccd.unit, data, level, good, factor=factor)
            is None
        )
    # A gain setting in GAIN is no gain at all: no model, and no warning.
    header = ccd.header.copy()
    header["GAIN"] = 139
    assert NoiseModel.from_header(header, ccd.unit, data, level, good) is None


# --- header_gain --------------------------------------------------------------


@pytest.mark.parametrize("as_fits_header", [False, True], ids=["dict", "Header"])
def test_header_gain(as_fits_header):
    def gain(cards):
        return header_gain(
            fits.Header(list(cards.items())) if as_fits_header else cards
        )

    assert gain({"GAIN": 139}) is None  # a ZWO gain setting, not e-/ADU
    assert gain({"GAIN": 139, "EGAIN": 0.25}) == 0.25
    assert gain({"EGAIN": 1.2, "GAIN": 2.0}) == 1.2
    assert gain({"GAIN": 2.0, "EGAIN": 1.2}) == 1.2  # EGAIN whatever the order
    assert gain({"GAIN": 1.5}) == 1.5
    assert gain({"CCDGAIN": 0.8}) == 0.8
    assert gain({"GAIN": "1.75"}) == 1.75
    assert gain({}) is None
    for nonsense in (0, -1.5, "high", 1000.0, 0.001):
        assert gain({"GAIN": nonsense}) is None, nonsense


def test_given_gain_and_read_noise_serve_a_frame_too_small_to_check_them():
    """A 4 x 9 ramp with a saturated corner: too few pixels with good
    neighbours to check the keywords, so the given values are used as they
    are rather than asked for (found by hypothesis, test_properties)."""
    data = (np.arange(9)[None, :] * 3 + np.arange(4)[:, None] + 100).astype(np.int8)
    ccd = CCDData(data, unit="adu", meta={"EXPTIME": 30.0})
    flagged = flag_transients(ccd, saturation=120.0, gain=1.5, read_noise=5.0)
    assert flagged.uncertainty is not None


# --- FrameNoise ---------------------------------------------------------------


def test_frame_noise_is_the_plane_or_the_model_at_pixels():
    from astropy.nddata import StdDevUncertainty

    from ccdpixfix.kernels import level_noise, noise_at
    from ccdpixfix.noise import frame_noise

    frame, _ = SimulatedCamera((96, 96), seed=4).science(seed=2)
    data = np.asarray(frame.data, dtype=np.float32)
    known = np.zeros(data.shape, bool)
    rows, cols = np.array([3, 40, 95]), np.array([0, 50, 7])
    noise = frame_noise(frame, data, known)
    assert noise.model is not None and list(noise) == ["model"]
    assert np.array_equal(
        noise.at(rows, cols), noise_at(data, known, rows, cols, **noise)
    )
    assert np.array_equal(noise.everywhere(), level_noise(data, known, noise["model"]))
    sigma = np.full(data.shape, 7.0, np.float32)
    given = CCDData(data, unit="adu", uncertainty=StdDevUncertainty(sigma))
    noise = frame_noise(given, data, known, model=None)
    assert noise.model is None and list(noise) == ["plane"]
    assert np.array_equal(noise.at(rows, cols), np.full(3, 7.0, np.float32))
    assert noise.everywhere() is noise.plane
