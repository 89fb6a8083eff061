"""Colour (Bayer) mosaics: same-colour neighbours in every step."""

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import (
    BadPixelMap,
    PixelFlag,
    fix_pixels,
    flag_transients,
    make_bad_pixel_map,
    replace_bad_pixels,
)
from ccdpixfix.cfa import cfa_pattern, colour_of_pixels, colour_sites
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.scoring import score_frame, score_frame_by_colour
from ccdpixfix.transients.colour_stars import unflag_stars


@pytest.mark.parametrize(
    ("meta", "cfa", "expected"),
    [
        ({"BAYERPAT": "RGGB"}, None, "RGGB"),
        ({"BAYERPAT": "rggb", "XBAYROFF": 1}, None, "GRBG"),
        ({"BAYERPAT": "RGGB", "YBAYROFF": 1}, None, "GBRG"),
        ({"BAYERPAT": "RGGB", "XBAYROFF": 1, "YBAYROFF": 1}, None, "BGGR"),
        ({"BAYERPAT": "RGGB"}, "BGGR", "BGGR"),  # the argument wins
        ({"BAYERPAT": "RGGB"}, "none", None),
        ({}, None, None),
        ({"BAYERPAT": "MONO"}, None, None),
    ],
)
def test_pattern_from_header_and_argument(meta, cfa, expected):
    assert cfa_pattern(meta, cfa) == expected


def test_bad_patterns_are_refused():
    with pytest.raises(ValueError, match="unknown Bayer pattern 'RGBW'"):
        cfa_pattern({}, "RGBW")
    with pytest.raises(ValueError, match="XBAYROFF='one'"):
        cfa_pattern({"BAYERPAT": "RGGB", "XBAYROFF": "one"})


def test_colour_sites_cover_the_cell():
    sites = colour_sites("RGGB")
    assert sites == [("R", 0, 0), ("G1", 0, 1), ("G2", 1, 0), ("B", 1, 1)]
    colours = colour_of_pixels((3, 5), "BGGR")
    assert colours[0, 0] == "B" and colours[1, 1] == "R" and colours[2, 4] == "B"


@pytest.fixture(scope="module")
def colour_camera():
    camera = SimulatedCamera((256, 256), seed=7, cfa="RGGB")
    darks = [camera.dark(300.0, seed=s) for s in range(5)]
    flats = [camera.flat(seed=s) for s in range(3)]
    return camera, make_bad_pixel_map(darks, flats=flats)


def test_map_of_a_colour_camera_records_its_pattern(colour_camera):
    camera, bpm = colour_camera
    assert bpm.meta["cfa"] == "RGGB"
    assert set(bpm.meta["colours"]) == {"R", "G1", "G2", "B"}
    for kind, bit in (("dead", PixelFlag.DEAD), ("hot", PixelFlag.HOT)):
        assert (bpm.flags[camera.truth[kind]] & bit).all()
    # The blue pixels get half the green light from the lamp: analysed
    # against all neighbours, every one of them would look low-response.
    defect = np.zeros(camera.shape, bool)
    for mask in camera.truth.values():
        defect |= mask
    assert np.count_nonzero(bpm.flags[~defect]) == 0


# FWHM 1.8 px in the mosaic is 0.9 px in each colour's plane: there the
# star test must veto by the whole mosaic, and hits next to stars go with
# them (recall 0.88-0.98 by seed); see docs/benchmarks.rst.
@pytest.mark.parametrize("fwhm", [2.6, 4.0])
def test_fix_pixels_on_a_mosaic_meets_the_grey_targets(colour_camera, fwhm):
    camera, bpm = colour_camera
    frame, truth = camera.science(fwhm=fwhm, seed=11)
    fixed = fix_pixels(frame, bpm)  # the pattern from the header
    assert "cfa" in str(fixed.meta["HISTORY"])
    score = score_frame(frame, fixed, truth)
    assert score["persistent_recall"] == 1.0
    assert score["transient_recall"] >= 0.95
    assert score["false_per_mpx"] <= 300
    assert score["bright_stars_hit"] <= 0.03
    assert score["unflagged_changed"] == 0
    for colour, figures in score_frame_by_colour(frame, fixed, truth).items():
        assert figures["transient_recall"] >= 0.9, colour
        assert figures["false_per_mpx"] <= 600, colour


def test_replacement_takes_the_pixels_own_colour():
    pattern = colour_of_pixels((40, 40), "RGGB")
    levels = {"R": 1000.0, "G": 3000.0, "B": 500.0}
    rng = np.random.default_rng(3)
    data = np.vectorize(levels.get)(pattern) + rng.normal(0, 5, (40, 40))
    flags = np.zeros((40, 40), np.uint16)
    flags[20, 20] = PixelFlag.HOT  # a red pixel
    flags[21, 21] = PixelFlag.HOT  # a blue one
    ccd = CCDData(data, unit="adu", flags=flags, meta={"BAYERPAT": "RGGB"})
    fixed = replace_bad_pixels(ccd)
    assert abs(fixed.data[20, 20] - 1000.0) < 20
    assert abs(fixed.data[21, 21] - 500.0) < 20
    grey = replace_bad_pixels(ccd, cfa="none")
    assert abs(grey.data[20, 20] - 1000.0) > 500  # green light in a red pixel
    unchanged = np.ones((40, 40), bool)
    unchanged[20, 20] = unchanged[21, 21] = False
    assert np.array_equal(fixed.data[unchanged], data[unchanged])


def test_flag_transients_finds_hits_in_each_colour_and_spares_stars():
    camera = SimulatedCamera((192, 192), seed=4, cfa="GBRG")
    frame, truth = camera.science(fwhm=2.6, seed=5)
    before = frame.data.copy()
    flagged = flag_transients(frame)
    np.testing.assert_array_equal(frame.data, before)  # input untouched
    hot = (flagged.flags & PixelFlag.TRANSIENT_HOT) != 0
    strong = truth["transient_hot"] & (
        truth["transient_amplitude"] > 20 * truth["sigma"]
    )
    for colour in "RGB":
        mine = truth["colour"] == colour
        assert hot[strong & mine].mean() >= 0.95, colour


def test_the_map_gives_its_pattern_to_frames_without_one(colour_camera):
    camera, bpm = colour_camera
    frame, _ = camera.science(fwhm=2.6, seed=12)
    del frame.meta["BAYERPAT"]
    assert "cfa" in str(fix_pixels(frame, bpm).meta["HISTORY"])
    # as grey data, the colours look like noise far above the header's
    with pytest.warns(AstropyUserWarning, match="do not match the measured noise"):
        grey = fix_pixels(frame, bpm, cfa="none")
    assert "cfa" not in str(grey.meta["HISTORY"])


def test_dask_mosaics_are_refused_clearly():
    da = pytest.importorskip("dask.array")
    ccd = CCDData(da.zeros((16, 16), chunks=8), unit="adu", meta={"BAYERPAT": "RGGB"})
    with pytest.raises(ValueError, match="Bayer mosaics held as Dask arrays"):
        fix_pixels(ccd)


def _run(*args):
    import subprocess
    import sys

    command = [sys.executable, "-m", "ccdpixfix", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_command_line_honours_the_header_and_cfa(tmp_path):
    from astropy.io import fits

    camera = SimulatedCamera((128, 128), seed=9, cfa="RGGB")
    darks = []
    for seed in range(3):
        path = tmp_path / f"dark{seed}.fits"
        camera.dark(300.0, seed=seed).write(path)
        darks.append(path)
    frame, _ = camera.science(fwhm=2.6, seed=3)
    frame.write(tmp_path / "light.fits")
    result = _run("bpm", *darks, "-o", tmp_path / "bpm.fits")
    assert result.returncode == 0, result.stderr
    bpm = BadPixelMap.read(tmp_path / "bpm.fits")
    assert bpm.meta["cfa"] == "RGGB"  # from the darks' BAYERPAT
    result = _run(
        "fix",
        tmp_path / "light.fits",
        "--bpm",
        tmp_path / "bpm.fits",
        "-o",
        tmp_path / "out",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    with fits.open(tmp_path / "out" / "light.fits") as hdulist:
        flags = hdulist["FLAGS"].data
        assert "cfa" in str(hdulist[0].header["HISTORY"])
    # the same as the library with the pattern of the header
    np.testing.assert_array_equal(flags, fix_pixels(frame, bpm).flags)
    assert np.count_nonzero(flags & PixelFlag.TRANSIENT_HOT) > 10
    refused = _run(
        "fix", tmp_path / "light.fits", "-o", tmp_path / "x", "--cfa", "RGBW"
    )
    assert refused.returncode == 2
    assert "--cfa: unknown Bayer pattern 'RGBW'" in refused.stderr


def test_colour_cube_is_fixed_plane_by_plane():
    camera = SimulatedCamera((96, 96), seed=2)
    bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
    planes, truths = zip(
        *(camera.science(fwhm=2.6, seed=20 + k, n_cosmic_rays=0) for k in range(3)),
        strict=True,
    )
    cube = np.stack([np.asarray(p.data, np.float32) for p in planes])
    # a hit in the green plane only
    cube[1, 40, 50] += 3000.0
    ccd = CCDData(cube, unit="adu", meta=planes[0].meta)
    before = cube.copy()
    fixed = fix_pixels(ccd, bpm)
    np.testing.assert_array_equal(ccd.data, before)
    assert fixed.data.shape == fixed.flags.shape == (3, 96, 96)
    assert fixed.uncertainty.array.shape == (3, 96, 96)
    assert fixed.flags[1, 40, 50] & PixelFlag.TRANSIENT_HOT
    assert not fixed.flags[0, 40, 50] & PixelFlag.TRANSIENT_HOT
    assert not fixed.flags[2, 40, 50] & PixelFlag.TRANSIENT_HOT
    assert abs(fixed.data[1, 40, 50] - truths[1]["expected"][40, 50]) < 50
    for plane in range(3):  # each plane equals the plane fixed alone
        alone = fix_pixels(CCDData(cube[plane], unit="adu", meta=planes[0].meta), bpm)
        np.testing.assert_array_equal(fixed.data[plane], alone.data)
        np.testing.assert_array_equal(fixed.flags[plane], alone.flags)
    assert "planes" in str(fixed.meta["HISTORY"])


def test_colour_cube_fits_file_through_the_command_line(tmp_path):
    from astropy.io import fits

    camera = SimulatedCamera((64, 80), seed=8)
    planes = [camera.science(fwhm=2.6, seed=40 + k)[0] for k in range(3)]
    cube = np.stack([np.asarray(p.data, np.float32) for p in planes])
    cube[2, 30, 30] += 4000.0  # a hit in the blue plane only
    header = fits.Header({"OBJECT": "M 27", "EXPTIME": 300.0})
    fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "m27.fits")
    result = _run("fix", tmp_path / "m27.fits", "-o", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr
    with fits.open(tmp_path / "out" / "m27.fits") as hdulist:
        assert hdulist[0].data.shape == (3, 64, 80)
        assert hdulist[0].header["OBJECT"] == "M 27"
        flags = hdulist["FLAGS"].data
        assert flags.shape == hdulist["MASK"].data.shape == (3, 64, 80)
        assert hdulist["UNCERT"].data.shape == (3, 64, 80)
    assert flags[2, 30, 30] & PixelFlag.TRANSIENT_HOT
    assert not (flags[:2, 30, 30] & PixelFlag.TRANSIENT_HOT).any()


def test_colour_cube_step_by_step():
    camera = SimulatedCamera((64, 64), seed=3)
    planes = [camera.science(fwhm=2.6, seed=50 + k)[0] for k in range(3)]
    cube = np.stack([np.asarray(p.data, np.float32) for p in planes])
    cube[0, 20, 20] += 3000.0  # red only
    flagged = flag_transients(CCDData(cube, unit="adu"))
    assert flagged.flags.shape == (3, 64, 64)
    assert flagged.flags[0, 20, 20] & PixelFlag.TRANSIENT_HOT
    assert not (flagged.flags[1:, 20, 20] & PixelFlag.TRANSIENT_HOT).any()
    fixed = replace_bad_pixels(flagged)
    assert fixed.flags[0, 20, 20] & PixelFlag.REPLACED
    assert abs(fixed.data[0, 20, 20] - np.median(cube[0, 18:23, 18:23])) < 100
    replaced = (fixed.flags & PixelFlag.REPLACED) != 0
    np.testing.assert_array_equal(fixed.data[~replaced], cube[~replaced])


def test_a_colour_cube_with_a_bayer_pattern_is_refused():
    cube = CCDData(np.ones((3, 8, 8), np.float32), unit="adu")
    with pytest.raises(ValueError, match="a cube of three colour planes has no Bayer"):
        fix_pixels(cube, cfa="RGGB")


def test_colour_darks_and_flats_of_different_shapes_are_refused():
    camera = SimulatedCamera((32, 32), seed=1, cfa="RGGB")
    other = SimulatedCamera((32, 40), seed=1, cfa="RGGB")
    darks = [camera.dark(300.0, seed=s) for s in range(2)]
    with pytest.raises(ValueError, match=r"darks and flats differ in shape: "):
        make_bad_pixel_map(darks, flats=[other.flat(seed=0)])


def test_what_the_colour_search_spilled_from_a_star_goes_with_it():
    """An undersampled star's peak passes the same-colour search as a hit,
    which spills through the star's core plane by plane; the mosaic's star
    test unflags the core, and a faint pixel spilled to two mosaic pixels
    out, a group of its own, goes with it. A hit linked to it in the plane
    stays."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[:40, :40]
    star = 2e5 / (2 * np.pi * 0.8**2)
    sky = 1000.0 + star * np.exp(-((rows - 20.2) ** 2 + (cols - 19.8) ** 2) / 1.28)
    sigma = np.sqrt(sky)
    data = sky + rng.normal(0.0, 1.0, sky.shape) * sigma
    # Spilled to, faint; its mosaic neighbours a little under the sky, so
    # that the mosaic's star test alone keeps it (with the noise it does so
    # for about half of such pixels).
    data[15:18, 23:26] = sky[15:18, 23:26] - 0.5 * sigma[15:18, 23:26]
    data[16, 24] = sky[16, 24] + 2.5 * sigma[16, 24]
    data[14, 26] = sky[14, 26] + 40.0 * sigma[14, 26]  # a hit beyond it
    flags = np.zeros(data.shape, np.uint16)
    hot = np.uint16(PixelFlag.TRANSIENT_HOT)
    flags[18:23, 18:23] = hot  # the star's core, every colour
    # Beside the core's red corner (18, 22) in the red plane, apart from it
    # in the mosaic and off the star's light; the hit beside that one, in the
    # red plane too.
    flags[16, 24] = flags[14, 26] = hot
    ccd = CCDData(
        data,
        unit="adu",
        flags=flags,
        uncertainty=StdDevUncertainty(sigma),
        meta={"BAYERPAT": "RGGB"},
    )
    out, n_unflagged = unflag_stars(ccd, "RGGB")
    left = (out.flags & hot) != 0
    assert not left[18:23, 18:23].any()
    assert not left[16, 24]
    assert left[14, 26]
    assert n_unflagged == 26
