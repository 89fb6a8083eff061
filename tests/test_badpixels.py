"""make_bad_pixel_map and flag_bad_pixels against the simulator's truth."""

import copy
import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import BadPixelMap, PixelFlag, flag_bad_pixels, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.scoring import score_bad_pixel_map


def _kind(bpm, flag):
    return (bpm.flags & np.uint16(flag)) != 0


def test_recall_and_false_flags(camera, bpm):
    score = score_bad_pixel_map(bpm, camera.truth)
    for kind in ("hot", "dead", "stuck", "bad_column", "warm"):
        assert score["recall"][kind] >= 0.99, kind
    assert score["recall"]["low_response"] >= 0.95
    # 10 false flags per megapixel is 0.65 on this 256 x 256 frame.
    assert score["false_flags"] == 0


def test_each_defect_gets_its_own_kind(camera, bpm):
    truth = camera.truth
    assert _kind(bpm, PixelFlag.STUCK)[truth["stuck"]].all()
    assert _kind(bpm, PixelFlag.BAD_COLUMN)[truth["bad_column"]].mean() >= 0.99
    assert _kind(bpm, PixelFlag.DEAD)[truth["dead"]].all()
    assert _kind(bpm, PixelFlag.LOW_RESPONSE)[truth["low_response"]].mean() >= 0.95
    hot_truth = truth["hot"] & (camera.dark_rate >= 1.0)
    assert _kind(bpm, PixelFlag.HOT)[hot_truth].all()
    # Warm pixels (0.1-0.5 e-/s) are WARM, or HOT right at the 0.5 e-/s edge.
    warm = _kind(bpm, PixelFlag.WARM)[truth["warm"]]
    assert warm.mean() >= 0.95


def test_warm_pixels_are_not_masked(camera, bpm):
    warm = _kind(bpm, PixelFlag.WARM)
    assert warm.any()
    assert not bpm.mask[warm].any()
    assert bpm.mask[camera.truth["hot"] & (camera.dark_rate >= 1.0)].all()


def test_cosmic_rays_in_darks_do_not_become_hot_pixels(camera):
    with_rays = [camera.dark(300.0, seed=seed) for seed in range(20, 25)]
    without = [
        camera.dark(300.0, seed=seed, cosmic_rays=False) for seed in range(20, 25)
    ]
    rays = np.zeros(camera.shape, bool)
    for a, b in zip(with_rays, without, strict=True):
        rays |= a.data != b.data
    assert rays.sum() > 20  # the darks really hold cosmic rays
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flagged = make_bad_pixel_map(with_rays).flags != 0
        reference = make_bad_pixel_map(without).flags != 0
    assert not (flagged & ~reference & rays).any()


def test_darks_of_different_exposure_times_give_rates(camera):
    darks = [
        camera.dark(t, seed=40 + i) for i, t in enumerate((30, 30, 30, 300, 300, 300))
    ]
    bpm = make_bad_pixel_map(darks)
    hot_truth = camera.truth["hot"] & (camera.dark_rate >= 1.0)
    assert _kind(bpm, PixelFlag.HOT)[hot_truth].all()
    assert bpm.meta["dark_noise_unit"] == "ADU/s"
    false = (bpm.flags != 0) & ~camera.truth["defect"]
    assert false.sum() <= 1


def test_paths_and_master_dark(camera, darks, tmp_path):
    paths = []
    for index, dark in enumerate(darks):
        path = tmp_path / f"dark{index}.fits"
        dark.write(path)
        paths.append(str(path))
    from_paths = make_bad_pixel_map(paths)
    from_objects = make_bad_pixel_map(darks)
    assert np.array_equal(from_paths.flags, from_objects.flags)
    assert from_paths.meta["darks"] == [f"dark{i}.fits" for i in range(5)]
    master = CCDData(
        np.median([d.data.astype(float) for d in darks], axis=0),
        unit="adu",
        meta=darks[0].meta,
    )
    from_master = make_bad_pixel_map(master)
    hot_truth = camera.truth["hot"] & (camera.dark_rate >= 1.0)
    assert _kind(from_master, PixelFlag.HOT)[hot_truth].all()
    assert any("master" in note for note in from_master.meta["notes"])


def test_missing_exptime_and_gain(camera):
    darks = []
    for seed in range(3):
        dark = camera.dark(300.0, seed=60 + seed, cosmic_rays=False)
        for key in ("EXPTIME", "EXPOSURE", "GAIN"):
            del dark.meta[key]
        darks.append(dark)
    with pytest.warns(AstropyUserWarning, match="no usable GAIN"):
        bpm = make_bad_pixel_map(darks)
    assert any("EXPTIME" in note for note in bpm.meta["notes"])
    hot_truth = camera.truth["hot"] & (camera.dark_rate >= 1.0)
    assert _kind(bpm, PixelFlag.HOT)[hot_truth].all()
    assert ((bpm.flags != 0) & ~camera.truth["defect"]).sum() <= 1


def test_a_dark_without_exptime_among_timed_ones_is_named(camera, darks):
    # It would make an exposure group of its own, whose differences from
    # the others come out as defects.
    timeless = camera.dark(300.0, seed=78)
    for key in ("EXPTIME", "EXPOSURE"):
        del timeless.meta[key]
    with pytest.warns(AstropyUserWarning) as caught:
        bpm = make_bad_pixel_map([*darks, timeless])
    named = [str(w.message) for w in caught if "without an exposure" in str(w.message)]
    assert len(named) == 1 and "darks[5]" in named[0]
    assert named[0] in bpm.meta["notes"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)
        make_bad_pixel_map(darks)


def test_amplifier_glow_and_column_pattern_are_not_defects():
    """Smooth glow in a corner and column-to-column offsets (CMOS fixed-pattern
    noise) are features of the detector that dark subtraction removes."""
    camera = SimulatedCamera((256, 256), seed=5, bad_column=False)
    yy, xx = np.mgrid[:256, :256]
    glow = 400.0 * np.exp(-np.hypot(yy, xx) / 40.0)
    offsets = np.random.default_rng(1).normal(0, 1.0, 256)  # ADU per column
    darks = []
    for seed in range(5):
        dark = camera.dark(300.0, seed=seed, cosmic_rays=False)
        data = dark.data.astype(float) + glow + offsets[None, :]
        darks.append(
            CCDData(np.round(data).astype(np.uint16), unit="adu", meta=dark.meta)
        )
    bpm = make_bad_pixel_map(darks)
    false = (bpm.flags != 0) & ~camera.truth["defect"]
    assert false.sum() <= 1
    assert not _kind(bpm, PixelFlag.BAD_COLUMN).any()


def test_summary_counts_and_repr(bpm):
    text = bpm.summary()
    for name, count in bpm.counts().items():
        assert name in text
        assert str(count) in text
    assert "BadPixelMap" in repr(bpm)
    assert bpm.meta["counts"] == bpm.counts()


def test_flag_bad_pixels_copies_flags_and_keeps_input(bpm, camera):
    frame, _ = camera.science(seed=3)
    before = copy.deepcopy(frame)
    # As a calibrated frame: nothing predicted, the map's mask exactly.
    flagged = flag_bad_pixels(frame, bpm, raw=False)
    assert np.array_equal(flagged.flags & bpm.flags, bpm.flags)
    assert np.array_equal(flagged.mask, bpm.mask)
    assert np.array_equal(frame.data, before.data)
    assert frame.mask is None
    assert np.array_equal(flagged.data, frame.data.astype(np.float32))
    warm_bad = flag_bad_pixels(frame, bpm, warm_is_bad=True)
    warm = _kind(bpm, PixelFlag.WARM)
    assert warm_bad.mask[warm].all()


def test_map_round_trip(bpm, tmp_path):
    path = tmp_path / "bpm.fits"
    bpm.write(path)
    assert BadPixelMap.read(path) == bpm
    with pytest.raises(FileExistsError, match="exists"):
        bpm.write(path)


def test_a_light_frame_among_darks_is_named(camera, darks):
    light, _ = camera.science(seed=99)
    light.meta["EXPTIME"] = 300.0
    with pytest.warns(AstropyUserWarning) as caught:
        make_bad_pixel_map([*darks, light])
    messages = [str(w.message) for w in caught]
    assert any("darks[5] has IMAGETYP='light frame'" in m for m in messages)
    shifted = camera.dark(300.0, seed=77)
    shifted.data = shifted.data + np.uint16(500)  # the shutter leaked
    with pytest.warns(AstropyUserWarning, match=r"darks\[5\].*median level"):
        make_bad_pixel_map([*darks, shifted])


def test_saturated_darks_are_named(camera, darks):
    """Darks whose pixels sit at the saturation level (65535 for raw 16-bit
    frames) measure nothing: each is named, where the map alone would have
    come out empty without a word."""
    burnt = [camera.dark(300.0, seed=80 + k) for k in range(3)]
    for frame in burnt:
        frame.data = np.full_like(frame.data, np.iinfo(np.uint16).max)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_bad_pixel_map(burnt)
    saturated = [str(w.message) for w in caught if "is saturated" in str(w.message)]
    assert [message.split()[0] for message in saturated] == [
        "darks[0]",
        "darks[1]",
        "darks[2]",
    ]
    assert all("100.0% of its pixels at 65535" in m for m in saturated)
    # ordinary darks, whose hot pixels saturate, are not named
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_bad_pixel_map(darks)
    assert not any("is saturated" in str(w.message) for w in caught)


def test_saturated_flats_are_left_out(camera, darks, flats):
    burnt = camera.flat(level=200000.0, seed=55)
    with pytest.warns(AstropyUserWarning, match=r"flats\[3\] is saturated"):
        bpm = make_bad_pixel_map(darks, [*flats, burnt])
    assert bpm.meta["flats"] == ["flats[0]", "flats[1]", "flats[2]"]
    assert ((bpm.flags & np.uint16(PixelFlag.DEAD)) != 0)[camera.truth["dead"]].all()
    with (
        pytest.warns(AstropyUserWarning, match="saturated"),
        pytest.raises(ValueError, match="every flat is saturated"),
    ):
        make_bad_pixel_map(darks, [burnt])
