"""Every documented error of the public functions, with its message."""

import gzip
import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from ccdpixfix import (
    BadPixelMap,
    PixelFlag,
    fix_pixels,
    flag_bad_pixels,
    flag_transients,
    make_bad_pixel_map,
    replace_bad_pixels,
)
from ccdpixfix.datasets import SimulatedCamera

SHAPE = (64, 64)


@pytest.fixture(scope="module")
def camera():
    return SimulatedCamera(SHAPE, seed=31)


@pytest.fixture(scope="module")
def darks(camera):
    return [camera.dark(60.0, seed=s) for s in range(2)]


@pytest.fixture(scope="module")
def frame(camera):
    return camera.science(seed=2)[0]


@pytest.fixture(scope="module")
def empty_map():
    return BadPixelMap(np.zeros(SHAPE, dtype=np.uint16))


# Every step, called with a frame and (where it takes one) a map.
STEPS = {
    "flag_bad_pixels": lambda ccd, bpm: flag_bad_pixels(ccd, bpm),
    "flag_transients": lambda ccd, bpm: flag_transients(ccd),
    "replace_bad_pixels": lambda ccd, bpm: replace_bad_pixels(ccd),
    "fix_pixels": lambda ccd, bpm: fix_pixels(ccd, bpm),
    "fix_pixels_without_map": lambda ccd, bpm: fix_pixels(ccd),
}


# --- the frame given to a step ------------------------------------------------


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize(
    "not_a_ccd", [np.ones(SHAPE), [[1.0, 2.0], [3.0, 4.0]], None], ids=repr
)
def test_input_that_is_not_ccddata(step, not_a_ccd, empty_map):
    with pytest.raises(TypeError, match=r"ccd must be an astropy\.nddata\.CCDData"):
        STEPS[step](not_a_ccd, empty_map)


@pytest.mark.parametrize("step", list(STEPS))
def test_three_dimensional_data(step, empty_map):
    # five planes: not an image, nor a colour cube of three
    cube = CCDData(np.ones((5, *SHAPE)), unit="adu")
    with pytest.raises(ValueError, match=re.escape(f"shape {(5, *SHAPE)}")):
        STEPS[step](cube, empty_map)
    with pytest.raises(ValueError, match="2-D image"):
        STEPS[step](cube, empty_map)


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_frame_without_any_finite_pixel(step, value, empty_map):
    blank = CCDData(np.full(SHAPE, value), unit="adu")
    with pytest.raises(ValueError, match="no finite pixel"):
        STEPS[step](blank, empty_map)


@pytest.mark.parametrize("step", ["flag_transients", "fix_pixels_without_map"])
@pytest.mark.parametrize("dtype", [np.float64, np.uint16])
def test_constant_image_has_no_measurable_noise(step, dtype, empty_map):
    constant = CCDData(np.full(SHAPE, 1000, dtype=dtype), unit="adu")
    with pytest.raises(ValueError, match="no measurable noise"):
        STEPS[step](constant, empty_map)


def test_too_few_pixels_to_measure_noise():
    rng = np.random.default_rng(3)
    tiny = CCDData(rng.normal(100.0, 5.0, (4, 4)), unit="adu")
    with pytest.raises(ValueError, match="too few to measure the noise"):
        flag_transients(tiny)


# --- the bad-pixel map given to a step ----------------------------------------


@pytest.mark.parametrize("step", ["flag_bad_pixels", "fix_pixels"])
def test_map_of_another_shape(step, frame):
    other = BadPixelMap(np.zeros((32, 48), dtype=np.uint16))
    message = re.escape(f"bpm shape (32, 48) does not match image shape {SHAPE}")
    with pytest.raises(ValueError, match=message):
        STEPS[step](frame, other)


@pytest.mark.parametrize("step", ["flag_bad_pixels", "fix_pixels"])
def test_map_that_is_not_a_bad_pixel_map(step, frame):
    flags = np.zeros(SHAPE, dtype=np.uint16)
    with pytest.raises(TypeError, match="bpm must be a BadPixelMap, not ndarray"):
        STEPS[step](frame, flags)


@pytest.mark.parametrize(
    "flags",
    [np.zeros((2, 4, 4), dtype=np.uint16), np.zeros(16, dtype=np.uint16)],
    ids=["3-D", "1-D"],
)
def test_bad_pixel_map_that_is_not_two_dimensional(flags):
    with pytest.raises(ValueError, match=re.escape(f"got shape {flags.shape}")):
        BadPixelMap(flags)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (np.full((4, 4), -1, dtype=np.int32), "from 0 to 65535 .* found -1 at"),
        (np.full((4, 4), 0x10000, dtype=np.int64), "from 0 to 65535 .* found 65536"),
        (np.full((4, 4), float(PixelFlag.HOT)), "integer PixelFlag bits"),
    ],
    ids=["negative", "too large", "float"],
)
def test_bad_pixel_map_flags_that_are_not_uint16_bits(flags, message):
    with pytest.raises(ValueError, match=message):
        BadPixelMap(flags)


def test_bad_pixel_map_write_refuses_to_overwrite(tmp_path):
    path = tmp_path / "bpm.fits"
    first = BadPixelMap(np.zeros((8, 8), dtype=np.uint16), {"which": "first"})
    first.write(path)
    content = path.read_bytes()
    flags = np.zeros((8, 8), dtype=np.uint16)
    flags[3, 4] = PixelFlag.HOT
    second = BadPixelMap(flags, {"which": "second"})

    with pytest.raises(FileExistsError, match="overwrite=True"):
        second.write(path)
    assert path.read_bytes() == content
    assert BadPixelMap.read(path) == first

    second.write(path, overwrite=True)
    assert BadPixelMap.read(path) == second


def test_bad_pixel_map_read_of_a_fits_file_that_is_not_a_map(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((8, 8), dtype=np.uint16)).writeto(path)
    with pytest.raises(ValueError, match="is not a ccdpixfix bad-pixel map"):
        BadPixelMap.read(path)


# --- replace_bad_pixels and flag_transients parameters ------------------------


@pytest.mark.parametrize("method", ["mode", "MEDIAN", "", None])
def test_unknown_replacement_method(method, frame):
    with pytest.raises(ValueError, match=re.escape(f"got {method!r}")):
        replace_bad_pixels(frame, method=method)
    with pytest.raises(ValueError, match="method must be one of"):
        fix_pixels(frame, method=method)


@pytest.mark.parametrize("max_radius", [0, -3])
def test_non_positive_max_radius(max_radius, frame):
    with pytest.raises(ValueError, match="max_radius must be at least 1"):
        replace_bad_pixels(frame, max_radius=max_radius)


@pytest.mark.parametrize("parameter", ["threshold", "neighbour_threshold", "contrast"])
@pytest.mark.parametrize("value", [0.0, -5.0, np.nan, np.inf])
def test_thresholds_must_be_positive_numbers(parameter, value, frame):
    message = f"{parameter} must be a positive number"
    with pytest.raises(ValueError, match=message):
        flag_transients(frame, **{parameter: value})
    with pytest.raises(ValueError, match=message):
        fix_pixels(frame, **{parameter: value})


# --- make_bad_pixel_map inputs ------------------------------------------------


@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_empty_dark_list(empty):
    with pytest.raises(ValueError, match="darks is empty"):
        make_bad_pixel_map(empty)


def test_empty_flat_list(darks):
    with pytest.raises(ValueError, match="flats is empty"):
        make_bad_pixel_map(darks, [])


def test_darks_of_different_shapes(darks):
    other = SimulatedCamera((64, 80), seed=31).dark(60.0, seed=9)
    message = re.escape("darks[1] (64, 80)")
    with pytest.raises(ValueError, match=message):
        make_bad_pixel_map([darks[0], other])
    with pytest.raises(ValueError, match=re.escape(f"darks[0] {SHAPE}")):
        make_bad_pixel_map([darks[0], other])


def test_flats_of_another_shape_than_the_darks(darks):
    flat = SimulatedCamera((64, 80), seed=31).flat(seed=1)
    message = re.escape(f"flats have shape (64, 80) but darks have {SHAPE}")
    with pytest.raises(ValueError, match=message):
        make_bad_pixel_map(darks, [flat])


def test_dark_path_that_does_not_exist(tmp_path, darks):
    missing = tmp_path / "no_such_dark.fits"
    with pytest.raises(ValueError, match=r"darks\[1\]: file .*no_such_dark.fits"):
        make_bad_pixel_map([darks[0], missing])
    with pytest.raises(ValueError, match="does not exist"):
        make_bad_pixel_map([str(missing)])


def test_dark_path_that_is_not_fits(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("exposure log\nnot a FITS file\n")
    with pytest.raises(ValueError, match=r"darks\[0\]: cannot read .*notes\.txt"):
        make_bad_pixel_map([text])


def test_compressed_dark_paths_are_read_whole_and_a_damaged_one_is_named(
    tmp_path, darks
):
    paths = []
    for index, dark in enumerate(darks):
        dark.write(tmp_path / f"d{index}.fits")
        packed = gzip.compress((tmp_path / f"d{index}.fits").read_bytes())
        paths.append(tmp_path / f"d{index}.fits.gz")
        paths[-1].write_bytes(packed)
    from_files = make_bad_pixel_map(
        [tmp_path / f"d{i}.fits" for i in range(len(darks))]
    )
    from_gzip = make_bad_pixel_map(paths)
    np.testing.assert_array_equal(from_gzip.flags, from_files.flags)
    assert from_gzip.flags.any()
    # astropy stops before the gzip checksum: a damaged byte gave wrong pixels
    damaged = bytearray(paths[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    paths[1].write_bytes(bytes(damaged))
    with pytest.raises(
        ValueError, match=r"darks\[1\]: cannot read .*d1\.fits\.gz: damaged compressed"
    ):
        make_bad_pixel_map(paths)


def test_darks_given_as_a_bare_array():
    with pytest.raises(TypeError, match="not bare arrays"):
        make_bad_pixel_map(np.zeros((3, *SHAPE)))


@pytest.mark.parametrize("item", [3.5, np.zeros(SHAPE)], ids=["number", "array"])
def test_dark_list_item_of_the_wrong_type(item, darks):
    with pytest.raises(TypeError, match=r"darks\[1\] must be a CCDData or a file path"):
        make_bad_pixel_map([darks[0], item])


def test_dark_without_any_finite_pixel(darks):
    blank = CCDData(np.full(SHAPE, np.nan), unit="adu")
    with pytest.raises(ValueError, match=r"darks\[1\] holds no finite pixel"):
        make_bad_pixel_map([darks[0], blank])


@pytest.mark.parametrize("name", ["dead_response", "low_response"])
@pytest.mark.parametrize("value", [0.0, 1.0, -0.2, 1.5])
def test_response_fractions_outside_zero_one(name, value, darks):
    message = re.escape(f"{name} must be a fraction between 0 and 1, got {value!r}")
    with pytest.raises(ValueError, match=message):
        make_bad_pixel_map(darks, **{name: value})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"transients": False, "threshold": -1}, "threshold must be a positive"),
        ({"replace": False, "method": "mode"}, "method must be one of"),
        ({"grow": 1.5}, "grow must be a whole number"),
        ({"gain": 0}, "gain must be a positive number"),
        ({"footprint_threshold": -3}, "footprint_threshold must be a positive"),
    ],
)
def test_fix_pixels_checks_every_option_even_unused(options, message):
    frame, _ = SimulatedCamera((32, 32), seed=1).science(seed=1)
    with pytest.raises(ValueError, match=message):
        fix_pixels(frame, **options)
