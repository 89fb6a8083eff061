"""Issue 15: what the map measured, per pixel, and raw frames predicted from it."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import (
    BadPixelMap,
    PixelFlag,
    fix_pixels,
    flag_bad_pixels,
    make_bad_pixel_map,
)
from ccdpixfix.badpixels import frame_state, predict_frame
from ccdpixfix.datasets import SimulatedCamera

TRANSIENT = np.uint16(PixelFlag.TRANSIENT_HOT | PixelFlag.TRANSIENT_COLD)
WARM = np.uint16(PixelFlag.WARM)
DO_NOT_USE = np.uint16(PixelFlag.DO_NOT_USE)


def _quiet_map(darks, flats=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        return make_bad_pixel_map(darks, flats, **options)


@pytest.fixture(scope="module")
def tail_camera():
    """A camera whose response has the tail of the SBIG flats of issue 15."""
    return SimulatedCamera((256, 256), seed=21, prnu_tail=0.004)


@pytest.fixture(scope="module")
def tail_flats(tail_camera):
    return [tail_camera.flat(seed=s) for s in range(5)]


@pytest.fixture(scope="module")
def tail_map(tail_camera, tail_flats):
    darks = [tail_camera.dark(300.0, seed=s) for s in range(5)]
    return make_bad_pixel_map(darks, tail_flats)


def _transients(frame, bpm, **options):
    with warnings.catch_warnings():
        # The noise of a raw flat is not the header's model at 20,000 e-:
        # the pixels' response differs (by 1 %, or 0.3 % once the map's
        # response is divided out), and the step says so and measures it.
        warnings.filterwarnings(
            "ignore", "GAIN=.* do not match the measured noise", AstropyUserWarning
        )
        fixed = fix_pixels(frame, bpm, replace=False, **options)
    return (fixed.flags & TRANSIENT) != 0


# -- the planes -------------------------------------------------------------


def test_the_map_keeps_dark_rate_error_and_response(tail_camera, tail_map):
    bpm, camera = tail_map, tail_camera
    for plane in (bpm.dark_rate, bpm.dark_rate_error, bpm.response):
        assert plane.dtype == np.float32 and plane.shape == camera.shape
    # Rates above the smooth level, e-/s: warm pixels measured to their error.
    warm = camera.truth["warm"]
    excess = camera.dark_rate[warm] - np.median(camera.dark_rate)
    off = np.abs(bpm.dark_rate[warm] - excess) / bpm.dark_rate_error[warm]
    assert np.median(off) < 2
    assert (bpm.dark_rate_error > 0).all()
    # The response tail is measured to a per cent.
    tail = ~camera.truth["defect"] & (np.abs(camera.response - 1) > 0.025)
    assert tail.sum() > 100
    assert np.nanmax(np.abs(bpm.response[tail] - camera.response[tail])) < 0.03


def test_planes_round_trip_with_units(tail_map, tmp_path):
    path = tmp_path / "bpm.fits"
    tail_map.write(path)
    with fits.open(path) as hdulist:
        for name, unit in (
            ("DARKRATE", "electron/s"),
            ("DARKERR", "electron/s"),
            ("RESPONSE", ""),
        ):
            assert hdulist[name].data.dtype == np.dtype(">f4")
            assert hdulist[name].header["BUNIT"] == unit
    back = BadPixelMap.read(path)
    assert back == tail_map
    np.testing.assert_array_equal(back.response, tail_map.response)


def test_a_map_without_planes_writes_and_reads_as_before(tmp_path):
    flags = np.zeros((4, 5), np.uint16)
    flags[1, 2] = PixelFlag.HOT
    bpm = BadPixelMap(flags, {"made": "by hand"})
    assert bpm.dark_rate is None and bpm.response is None
    path = tmp_path / "old.fits"
    bpm.write(path)
    with fits.open(path) as hdulist:
        assert [hdu.name for hdu in hdulist] == ["PRIMARY", "META"]
    back = BadPixelMap.read(path)
    assert back == bpm and back.dark_rate_error is None


def test_a_plane_of_another_shape_is_refused(tmp_path):
    flags = np.zeros((4, 5), np.uint16)
    with pytest.raises(ValueError, match=r"response must be a 4 x 5 array"):
        BadPixelMap(flags, response=np.ones((5, 4)))
    path = tmp_path / "bad.fits"
    BadPixelMap(flags, response=np.ones((4, 5))).write(path)
    with fits.open(path, mode="update") as hdulist:
        hdulist["RESPONSE"].data = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"bad\.fits.*RESPONSE is not a float image"):
        BadPixelMap.read(path)


def test_a_colour_map_has_planes_for_every_colour():
    camera = SimulatedCamera((64, 64), seed=3, cfa="RGGB")
    darks = [camera.dark(300.0, seed=s) for s in range(3)]
    flats = [camera.flat(seed=s) for s in range(3)]
    bpm = make_bad_pixel_map(darks, flats)
    assert np.isfinite(bpm.response).mean() > 0.99
    assert np.isfinite(bpm.dark_rate).all()


# -- HIGH_RESPONSE and the response cuts -----------------------------------


def test_high_response_pixels_are_flagged_and_not_masked():
    camera = SimulatedCamera((128, 128), seed=5)
    camera.response[40, 50] = camera._base_response[40, 50] = 1.2
    darks = [camera.dark(300.0, seed=s) for s in range(3)]
    bpm = make_bad_pixel_map(darks, [camera.flat(seed=s) for s in range(3)])
    assert bpm.flags[40, 50] == PixelFlag.HIGH_RESPONSE
    assert not bpm.mask[40, 50]
    assert bpm.counts()["HIGH_RESPONSE"] == 1


def test_low_response_cut_holds_when_the_pixels_spread_widely():
    # Real response spread of 2.5 %: 1 - 5 sigma of it would be 0.875, and a
    # pixel 11 % low would be missed; the flats measure it to 0.3 %.
    camera = SimulatedCamera((128, 128), seed=6, prnu=0.025)
    for where in ((30, 30), (60, 90), (100, 20)):
        camera.response[where] = camera._base_response[where] = 0.89
    darks = [camera.dark(300.0, seed=s) for s in range(3)]
    bpm = make_bad_pixel_map(darks, [camera.flat(seed=s) for s in range(5)])
    for where in ((30, 30), (60, 90), (100, 20)):
        assert bpm.flags[where] & PixelFlag.LOW_RESPONSE, where
    assert bpm.meta["response_pixel_noise"] < 0.01 < bpm.meta["response_noise"]


def test_high_response_must_be_above_one(darks):
    with pytest.raises(ValueError, match=r"high_response must be above 1, got 0\.9"):
        make_bad_pixel_map(darks, high_response=0.9)


# -- what the map could not measure ----------------------------------------


def test_short_darks_say_warm_pixels_are_undetectable():
    camera = SimulatedCamera((128, 128), seed=7)
    bpm = make_bad_pixel_map([camera.dark(60.0, seed=s) for s in range(3)])
    notes = " ".join(bpm.meta["notes"])
    assert "60 s darks: pixels below 0." in notes
    assert "so WARM (0.05 e-/s) is undetectable; take longer darks" in notes
    bpm = make_bad_pixel_map([camera.dark(10.0, seed=s) for s in range(3)])
    notes = " ".join(bpm.meta["notes"])
    assert "so HOT (0.5 e-/s) and WARM (0.05 e-/s) are undetectable" in notes
    long = make_bad_pixel_map([camera.dark(600.0, seed=s) for s in range(3)])
    assert not any("undetectable" in note for note in long.meta["notes"])


def test_a_column_segment_of_one_series_is_named_when_the_slope_loses_it():
    camera = SimulatedCamera((128, 128), seed=8, bad_column=False)
    darks = [camera.dark(t, seed=s) for s, t in enumerate((60, 60, 60, 300, 300, 300))]
    for dark in darks[:3]:
        # A trap filled during the 60 s series only: +60 ADU on a segment.
        dark.data[20:80, 40] += np.uint16(60)
    bpm = make_bad_pixel_map(darks)
    notes = " ".join(bpm.meta["notes"])
    assert (
        "column segments in the 60 s darks but not in the dark-rate fit "
        "(column 40, rows 20-79): they do not grow with the exposure time"
    ) in notes
    # Its negative slope does not make its neighbours look hot.
    assert bpm.counts()["BAD_COLUMN"] == 0


# -- biases given as darks --------------------------------------------------


def test_biases_given_as_darks_are_named_and_call_nothing_hot(tmp_path):
    camera = SimulatedCamera((128, 128), seed=9)
    paths = []
    for seed in range(3):
        bias = camera.dark(0.0, seed=seed)
        bias.meta["IMAGETYP"] = "Bias Frame"
        paths.append(tmp_path / f"bias{seed}.fits")
        bias.write(paths[-1])
    with pytest.warns(
        AstropyUserWarning,
        match=r"biases given as darks.*bias0\.fits, bias1\.fits, bias2\.fits",
    ):
        bpm = make_bad_pixel_map(paths)
    counts = bpm.counts()
    assert counts["HOT"] == counts["WARM"] == counts["BAD_COLUMN"] == 0
    assert bpm.dark_rate is None
    assert bpm.meta["biases"] == ["bias0.fits", "bias1.fits", "bias2.fits"]
    assert any("all biases" in note for note in bpm.meta["notes"])


def test_biases_among_darks_are_the_zero_point_of_the_rate(camera, darks):
    biases = [camera.dark(0.0, seed=40 + s) for s in range(2)]
    with pytest.warns(AstropyUserWarning, match=r"darks\[5\], darks\[6\]"):
        bpm = make_bad_pixel_map([*darks, *biases])
    hot = camera.truth["hot"] & (camera.dark_rate >= 1.0)
    assert (bpm.flags[hot] & PixelFlag.HOT).all()
    assert bpm.dark_rate is not None


# -- which frames are raw ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "meta", "expected"),
    [
        (np.uint16, {}, (True, True, True)),
        (np.float32, {}, (False, False, False)),
        (np.float32, {"SUBBIAS": "master"}, (False, True, True)),
        (np.uint16, {"SUBDARK": "m", "SUBBIAS": "m"}, (False, False, True)),
        (np.float32, {"subtract_dark": "m", "flat_correct": "m"}, (True, False, False)),
        (np.float32, {"ZEROCOR": "z", "DARKCOR": "d", "FLATCOR": "f"}, (0, 0, 0)),
        (np.float32, {"CALSTAT": "BD"}, (False, False, True)),
    ],
)
def test_frame_state_from_data_type_and_keywords(data, meta, expected):
    frame = CCDData(np.zeros((2, 2), data), unit="adu", meta=meta)
    state = frame_state(frame)
    assert (state["bias"], state["dark"], state["response"]) == tuple(
        bool(e) for e in expected
    )


def test_raw_says_so_and_is_checked():
    frame = CCDData(np.zeros((2, 2), np.float32), unit="adu")
    assert frame_state(frame, raw=True) == dict.fromkeys(
        ("bias", "dark", "response"), True
    )
    with pytest.raises(ValueError, match=r"raw must be True .* got 'yes'"):
        frame_state(frame, raw="yes")
    with pytest.raises(ValueError, match="raw must be True"):
        fix_pixels(frame, raw=1)


# -- raw frames predicted from the map --------------------------------------


def test_raw_flats_show_the_tail_as_transients_without_the_prediction(
    tail_map, tail_flats
):
    # Today's behaviour (raw=False) on the camera with the tail: the same
    # pixels in both flats, thousands per Mpix as in the SBIG flats.
    first, second = (_transients(f, tail_map, raw=False) for f in tail_flats[:2])
    assert np.sum(first & second) / first.size * 1e6 > 300


def test_raw_flats_predicted_have_no_repeated_transients(tail_map, tail_flats):
    first, second = (_transients(f, tail_map) for f in tail_flats[:2])
    per_mpix = 1e6 / first.size
    assert np.sum(first & second) * per_mpix <= 1
    assert first.sum() * per_mpix < 50


def test_cosmic_rays_on_raw_flats_are_still_found(tail_camera, tail_map):
    flat = tail_camera.flat(seed=30)
    hits = np.zeros(flat.shape, bool)
    hits[[40, 100, 200], [50, 150, 30]] = True
    flat.data[hits] += np.uint16(3000)
    assert _transients(flat, tail_map)[hits].all()


def test_no_map_warm_pixel_is_a_transient_in_raw_darks_and_spectra(
    tail_camera, tail_map
):
    warm = (tail_map.flags & WARM) != 0
    dark = tail_camera.dark(300.0, seed=50, cosmic_rays=False)
    spectrum, _ = tail_camera.spectrum(seed=60)
    for frame in (dark, spectrum):
        fixed = fix_pixels(frame, tail_map)
        assert not ((fixed.flags & TRANSIENT) != 0)[warm].any()
    # The warm pixels that stand out of the spectrum are masked, as WARM,
    # and repaired.
    stands_out = warm & (fixed.flags & DO_NOT_USE != 0)
    assert stands_out.sum() > 10
    assert (fixed.flags[stands_out] & PixelFlag.REPLACED).all()
    assert "n_warm_masked" in str(fixed.meta["HISTORY"])


def test_a_map_without_planes_still_keeps_warm_pixels_from_transients(
    tail_camera, tail_map
):
    old = BadPixelMap(tail_map.flags, tail_map.meta)
    warm = (old.flags & WARM) != 0
    spectrum, _ = tail_camera.spectrum(seed=61)
    fixed = fix_pixels(spectrum, old)
    assert not ((fixed.flags & TRANSIENT) != 0)[warm].any()
    assert (fixed.flags[warm] & DO_NOT_USE).any()


def test_calibrated_frames_keep_todays_behaviour(tail_camera, tail_map):
    spectrum, _ = tail_camera.spectrum(seed=62)
    calibrated = CCDData(
        spectrum.data.astype(np.float32),
        unit="adu",
        meta=spectrum.meta,
        uncertainty=StdDevUncertainty(np.full(spectrum.shape, 10.0, np.float32)),
    )
    auto = fix_pixels(calibrated, tail_map)
    told = fix_pixels(calibrated, tail_map, raw=False)
    np.testing.assert_array_equal(auto.flags, told.flags)
    np.testing.assert_array_equal(auto.data, told.data)
    assert "raw" not in str(auto.meta["HISTORY"])


def test_predict_frame_scales_the_dark_rate_by_the_exposure(tail_camera, tail_map):
    frame = tail_camera.dark(600.0, seed=70)
    predicted = predict_frame(frame, tail_map)
    hot = tail_map.dark_rate > 10 * tail_map.dark_rate_error
    expected = tail_map.dark_rate[hot] * 600 / tail_map.meta["gain"]
    np.testing.assert_allclose(predicted.dark[hot], expected, rtol=1e-5)
    assert predicted.zero == pytest.approx(tail_map.meta["bias_level"])
    assert predict_frame(frame, tail_map, raw=False).empty


def test_flag_bad_pixels_masks_warm_pixels_standing_out_of_raw_frames(
    tail_camera, tail_map
):
    frame = tail_camera.dark(600.0, seed=71, cosmic_rays=False)
    warm = (tail_map.flags & WARM) != 0
    raw = flag_bad_pixels(frame, tail_map)
    calibrated = flag_bad_pixels(frame, tail_map, raw=False)
    masked = raw.mask & ~calibrated.mask
    assert masked.any() and not (masked & ~warm).any()
    # A warm pixel of 0.3 e-/s or more gives 120 ADU in 600 s, far above the
    # ~3.5 ADU of noise.
    strong = warm & (tail_map.dark_rate > 0.3)
    assert raw.mask[strong].all()


def test_frames_calibrated_by_ccdproc_are_recognised(tail_camera):
    import astropy.units as u
    import ccdproc

    raw = tail_camera.spectrum(seed=80)[0]
    bias = tail_camera.dark(0.0, seed=81)
    dark = tail_camera.dark(600.0, seed=82)
    debiased = ccdproc.subtract_bias(raw, bias)
    assert frame_state(debiased) == {"bias": False, "dark": True, "response": True}
    darkened = ccdproc.subtract_dark(
        debiased,
        ccdproc.subtract_bias(dark, bias),
        exposure_time="EXPTIME",
        exposure_unit=u.s,
    )
    assert frame_state(darkened) == {"bias": False, "dark": False, "response": True}


def test_a_raw_frame_held_as_a_dask_array_is_predicted_as_in_memory(
    tail_camera, tail_map
):
    da = pytest.importorskip("dask.array")
    spectrum, _ = tail_camera.spectrum(seed=90)
    assert not predict_frame(spectrum, tail_map).empty
    expected = fix_pixels(spectrum, tail_map)
    lazy = CCDData(
        da.from_array(spectrum.data, chunks=(100, 128)),
        unit=spectrum.unit,
        meta=spectrum.meta,
    )
    result = fix_pixels(lazy, tail_map)
    np.testing.assert_array_equal(np.asarray(result.flags), expected.flags)
    np.testing.assert_array_equal(np.asarray(result.data), expected.data)
    told = fix_pixels(lazy, tail_map, raw=False)
    assert not np.array_equal(np.asarray(told.flags), expected.flags)


def test_prnu_tail_is_a_small_fraction():
    with pytest.raises(ValueError, match=r"prnu_tail must be in \[0, 0\.05\)"):
        SimulatedCamera((32, 32), prnu_tail=0.1)
    # The default leaves the response (and every seeded frame) as it was.
    plain = SimulatedCamera((64, 64), seed=2)
    tailed = SimulatedCamera((64, 64), seed=2, prnu_tail=0.004)
    changed = plain.response != tailed.response
    assert changed.sum() == round(0.004 * 64 * 64)
    assert not (changed & plain.truth["defect"]).any()
    np.testing.assert_array_equal(plain.dark_rate, tailed.dark_rate)


def test_transient_flags_that_came_in_are_kept_on_warm_pixels(tail_camera, tail_map):
    spectrum, _ = tail_camera.spectrum(seed=63)
    warm = np.argwhere((tail_map.flags & WARM) != 0)[:3]
    flags = np.zeros(spectrum.shape, np.uint16)
    flags[tuple(warm.T)] = PixelFlag.TRANSIENT_HOT
    spectrum.flags = flags
    fixed = fix_pixels(spectrum, tail_map)
    assert (fixed.flags[tuple(warm.T)] & PixelFlag.TRANSIENT_HOT).all()
