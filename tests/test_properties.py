"""Property-based tests of every public step on odd input.

Hypothesis builds frames no camera simulation would: NaN and inf pixels,
all-zero and constant images, tiny frames (1x1, 1xN, Nx1, 2x2, 3x3), huge
(1e30, the dtype's largest value) and negative values, every integer dtype,
float16/32/64, big-endian dtypes as FITS gives them, an existing mask or
flags, an uncertainty plane of each type, a masked numpy array as data. For
each step it checks the step contract:

- a result, or a ValueError/TypeError raised by ccdpixfix itself with a
  message (never IndexError, ZeroDivisionError, a numpy error, a warning
  other than the documented AstropyUserWarnings, or a hang);
- the input (data, mask, flags, uncertainty, meta) is never modified, and
  the output shares no memory with it;
- the output has the input's shape, ``mask == flags_to_mask(flags)``, flags
  are ``uint16`` and keep every flag (and mask) the input had;
- data are float32 for integer input and the input's own float dtype for
  float input (float16 stays float16, big-endian stays big-endian);
- pixels not replaced keep their value exactly (as float32 for integer
  input; NaN equals NaN), replaced ones lie within the range of the good
  pixels.
"""

import copy
import json
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ccdpixfix
from ccdpixfix import (
    BadPixelMap,
    PixelFlag,
    fix_pixels,
    flag_bad_pixels,
    flag_transients,
    flags_to_mask,
    make_bad_pixel_map,
    replace_bad_pixels,
)

PACKAGE_DIR = Path(ccdpixfix.__file__).resolve().parent

INTEGER_DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    ">i2",
    ">u2",
    ">i4",
]
FLOAT_DTYPES = ["float16", "float32", "float64", ">f4", ">f8"]
ALL_DTYPES = INTEGER_DTYPES + FLOAT_DTYPES

# Tiny frames are the odd ones; a few larger ones give the noise model enough
# pixels to measure, so that the steps get past their first checks.
TINY_SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 3), (1, 24), (24, 1)]
shapes = st.one_of(
    st.sampled_from(TINY_SHAPES),
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(st.integers(8, 24), st.integers(8, 24)),
)

FLAG_VALUES = np.array([int(flag) for flag in PixelFlag], dtype=np.uint16)

# The warnings the library documents for odd input; every other one fails.
DOCUMENTED_WARNINGS = [
    r"GAIN=.* do not match the measured noise",
    r"no usable GAIN in the darks",
]

# A step that takes longer than this on a 24x24 frame hangs.
MAX_SECONDS = 20.0

SETTINGS = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


# --- strategies ----------------------------------------------------------------


def _cast(values, dtype):
    """``values`` (float64) in ``dtype``, clipped to its range (no warning)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        # Clip in float64, then to the exact integer limits: float64 cannot
        # hold int64/uint64 limits exactly.
        clipped = np.clip(np.rint(values), float(info.min), float(info.max))
        out = np.empty(values.shape, dtype=dtype)
        high = clipped >= float(info.max)
        low = clipped <= float(info.min)
        middle = ~(high | low)
        out[middle] = clipped[middle].astype(dtype)
        out[high] = info.max
        out[low] = info.min
        return out
    info = np.finfo(dtype)
    return np.clip(values, float(info.min), float(info.max)).astype(dtype)


def _specials(dtype):
    """Odd pixel values a frame of ``dtype`` can hold."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return [int(info.min), int(info.max), 0, 1]
    largest = float(np.finfo(dtype).max)
    huge = min(1e30, largest)
    return [np.nan, np.inf, -np.inf, huge, -huge, largest, -largest, 0.0, -1.0]


@st.composite
def frames(draw, dtypes=ALL_DTYPES, shape=None):
    """Data array of an odd frame: (array, description)."""
    shape = draw(shapes) if shape is None else shape
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    kind = draw(st.sampled_from(["noise", "noise", "constant", "zeros", "ramp"]))
    level = draw(st.sampled_from([0.0, 100.0, -50.0, 1e4, 1e30, -1e30]))
    sigma = draw(st.sampled_from([0.5, 3.0, 30.0]))
    relative = draw(st.sampled_from([0.0, 0.01]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if kind == "zeros":
        values = np.zeros(shape)
    elif kind == "constant":
        values = np.full(shape, level)
    elif kind == "ramp":
        values = level + np.add.outer(np.arange(shape[0]), 3.0 * np.arange(shape[1]))
    else:
        values = rng.normal(level, sigma + relative * abs(level), shape)
    data = _cast(values, dtype)
    n_special = draw(st.integers(0, 4))
    specials = _specials(dtype)
    for _ in range(n_special):
        index = draw(st.integers(0, data.size - 1))
        data.flat[index] = draw(st.sampled_from(specials))
    return data


def _random_flags(rng, shape, fraction):
    flags = np.zeros(shape, dtype=np.uint16)
    chosen = rng.random(shape) < fraction
    flags[chosen] = rng.choice(FLAG_VALUES, size=int(chosen.sum()))
    return flags


@st.composite
def ccds(draw, dtypes=ALL_DTYPES, shape=None):
    """An odd `CCDData` with, or without, mask, flags, uncertainty and meta."""
    data = draw(frames(dtypes, shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mask_kind = draw(st.sampled_from(["none", "none", "mask", "masked_array"]))
    mask = None
    if mask_kind != "none":
        mask = rng.random(data.shape) < draw(st.sampled_from([0.05, 0.3, 1.0]))
    if mask_kind == "masked_array":
        data = np.ma.masked_array(data, mask=mask)
        mask = None
    flags = None
    if draw(st.booleans()):
        flags = _random_flags(rng, data.shape, draw(st.sampled_from([0.02, 0.2])))
        flags = flags.astype(draw(st.sampled_from(["uint16", "int32", ">u2"])))
    uncertainty = None
    unc_kind = draw(
        st.sampled_from(["none", "none", "std", "std_odd", "variance", "inverse"])
    )
    if unc_kind != "none":
        sigma = rng.uniform(0.5, 5.0, data.shape)
        if unc_kind == "std_odd":
            odd = rng.random(data.shape)
            sigma[odd < 0.1] = 0.0
            sigma[odd > 0.9] = np.nan
        wrap = {
            "std": StdDevUncertainty,
            "std_odd": StdDevUncertainty,
            "variance": lambda s: VarianceUncertainty(s**2),
            "inverse": lambda s: InverseVariance(1 / s**2),
        }[unc_kind]
        uncertainty = wrap(sigma.astype(draw(st.sampled_from(["f8", "f4", ">f4"]))))
    meta_kind = draw(st.sampled_from(["dict", "header", "odd_dict"]))
    if meta_kind == "header":
        meta = fits.Header()
        meta["OBJECT"] = "test"
        if draw(st.booleans()):
            meta["GAIN"] = draw(st.sampled_from([1.5, 0.001, 1000.0]))
            meta["RDNOISE"] = draw(st.sampled_from([5.0, 0.0, -3.0]))
        if draw(st.booleans()):
            meta["SATURATE"] = draw(st.sampled_from([100.0, 0.0, -1.0, 1e30]))
        meta.add_history("an earlier step")
    elif meta_kind == "odd_dict":
        meta = {
            "SATURATE": draw(st.sampled_from([np.nan, np.inf, "junk", None, 50])),
            "GAIN": draw(st.sampled_from([np.nan, "2", None, 2.0])),
            "RDNOISE": draw(st.sampled_from([np.inf, "x", 4.0])),
            "HISTORY": "a lone string",
        }
    else:
        meta = {"EXPTIME": 30.0}
    ccd = CCDData(
        data,
        unit="adu",
        mask=mask,
        flags=flags,
        uncertainty=uncertainty,
        meta=meta,
    )
    return ccd


@st.composite
def ccds_and_maps(draw, dtypes=ALL_DTYPES):
    """A frame and a bad-pixel map of its shape."""
    ccd = draw(ccds(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    fraction = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]))
    bpm = BadPixelMap(_random_flags(rng, ccd.shape, fraction))
    return ccd, bpm


# --- helpers -------------------------------------------------------------------


def _array_snapshot(array):
    if array is None:
        return None
    array = np.asarray(array)
    return array.dtype, array.shape, array.tobytes()


def snapshot(ccd):
    """Everything a step must leave untouched, copied."""
    meta = ccd.meta
    meta_copy = (
        [card.image for card in meta.cards]
        if isinstance(meta, fits.Header)
        else copy.deepcopy(dict(meta))
    )
    unc = ccd.uncertainty
    return {
        "data": _array_snapshot(ccd.data),
        "mask": _array_snapshot(ccd.mask),
        "flags": _array_snapshot(ccd.flags),
        "uncertainty": None if unc is None else (type(unc), _array_snapshot(unc.array)),
        "meta": (type(meta), meta_copy),
    }


def _same_meta(a, b):
    # repr so that NaN compares equal to NaN and types are kept apart.
    return repr(a) == repr(b)


def assert_unchanged(ccd, before):
    after = snapshot(ccd)
    for key in ("data", "mask", "flags", "uncertainty"):
        assert after[key] == before[key], f"the step modified its input's {key}"
    assert _same_meta(after["meta"], before["meta"]), "the step modified the meta"


def call(step, *args, **kwargs):
    """The step's result, or the documented error it raised.

    Warnings are errors, except the documented AstropyUserWarnings; any
    exception other than ValueError/TypeError propagates and fails the test.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in DOCUMENTED_WARNINGS:
            warnings.filterwarnings(
                "ignore", message=message, category=AstropyUserWarning
            )
        try:
            result = step(*args, **kwargs)
        except (ValueError, TypeError) as error:
            assert_documented_error(error)
            result = error
    elapsed = time.perf_counter() - start
    assert elapsed < MAX_SECONDS, f"{step.__name__} took {elapsed:.0f} s"
    return result


def assert_documented_error(error):
    """The error was raised by a ``raise`` of ccdpixfix, with a clear message."""
    innermost = traceback.extract_tb(error.__traceback__)[-1]
    where = f"{innermost.filename}:{innermost.lineno}"
    source = Path(innermost.filename).resolve()
    assert PACKAGE_DIR in source.parents, (
        f"{type(error).__name__} from outside ccdpixfix at {where}: {error}"
    )
    assert (innermost.line or "").lstrip().startswith("raise"), (
        f"{type(error).__name__} not raised on purpose at {where}: {error}"
    )
    assert len(str(error)) > 20, f"unclear message {str(error)!r} at {where}"


def _values(data, integer_input):
    """Data as compared for "unchanged": float32 for integer input."""
    data = np.asarray(data)
    return data.astype(np.float32) if integer_input else data


def _is_float(ccd):
    return np.asarray(ccd.data).dtype.kind == "f"


def _input_flags(ccd):
    """The flags the input carries explicitly (zeros if none)."""
    if ccd.flags is None:
        return np.zeros(ccd.shape, np.uint16)
    return np.asarray(ccd.flags).astype(np.uint16)


def _history(meta):
    if isinstance(meta, fits.Header):
        return " ".join(str(line) for line in meta.get("HISTORY", []))
    history = meta.get("HISTORY", [])
    return history if isinstance(history, str) else " ".join(map(str, history))


def assert_contract(ccd, before, out, step_name, *, may_replace=True):
    """The step contract, checked on a result ``out`` of input ``ccd``."""
    assert_unchanged(ccd, before)
    assert isinstance(out, CCDData)
    data_in = np.asarray(ccd.data)
    integer_input = data_in.dtype.kind in "iub"

    # Shape, dtype.
    assert out.shape == ccd.shape
    assert out.data.shape == data_in.shape
    expected_dtype = np.dtype(np.float32) if integer_input else data_in.dtype
    assert out.data.dtype == expected_dtype, (
        f"output dtype {out.data.dtype} for input {data_in.dtype}"
    )

    # Flags and mask.
    assert out.flags is not None
    assert out.flags.dtype == np.uint16
    assert out.flags.shape == data_in.shape
    assert out.mask is not None and out.mask.shape == data_in.shape
    np.testing.assert_array_equal(out.mask, flags_to_mask(out.flags))
    in_flags = _input_flags(ccd)
    assert np.array_equal(out.flags & in_flags, in_flags), "input flags were lost"
    if ccd.mask is not None:
        assert not (np.asarray(ccd.mask, bool) & ~out.mask).any(), (
            "a pixel masked on input is no longer masked"
        )
    if data_in.dtype.kind == "f":
        assert out.mask[~np.isfinite(data_in)].all(), "a non-finite pixel is unmasked"

    # No shared memory with the input.
    for name in ("data", "flags", "mask"):
        theirs = getattr(ccd, name)
        if theirs is not None:
            assert not np.may_share_memory(getattr(out, name), theirs), (
                f"output {name} shares memory with the input"
            )
    if out.uncertainty is not None:
        assert out.uncertainty.array.shape == data_in.shape
        if ccd.uncertainty is not None:
            assert not np.may_share_memory(out.uncertainty.array, ccd.uncertainty.array)

    # Values: pixels not replaced are exactly the input's; a step that only
    # flags changes none.
    if may_replace:
        replaced = (out.flags & np.uint16(PixelFlag.REPLACED)) != 0
    else:
        replaced = np.zeros(data_in.shape, bool)
    before_values = _values(data_in, integer_input)
    np.testing.assert_array_equal(
        out.data[~replaced],
        before_values[~replaced],
        err_msg="a pixel that was not replaced changed",
    )
    if replaced.any():
        values = np.asarray(out.data[replaced])
        assert np.isfinite(values).all(), "a replaced pixel is not finite"
        # An estimate from good (finite) pixels lies within their range (up
        # to the rounding of a mean: a few units in the last place).
        finite = before_values[np.isfinite(before_values)].astype(np.float64)
        slack = 4 * np.finfo(out.data.dtype).eps * np.abs(finite).max()
        low, high = finite.min() - slack, finite.max() + slack
        assert low <= values.min() and values.max() <= high, (
            "a replaced value lies outside the range of the input's pixels"
        )

    assert step_name in _history(out.meta), "no HISTORY record of the step"


def _has_finite_pixel(ccd):
    data = np.asarray(ccd.data)
    return data.dtype.kind != "f" or bool(np.isfinite(data).any())


def _noise_advice_without_need(error, *, gain, read_noise):
    """An error that advises giving GAIN and RDNOISE although they were given."""
    given = gain is not None and read_noise is not None and read_noise > 0
    return given and "GAIN and RDNOISE" in str(error)


# --- the steps -----------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(
    case=ccds_and_maps(),
    warm_is_bad=st.booleans(),
)
def test_flag_bad_pixels_on_odd_frames(case, warm_is_bad):
    ccd, bpm = case
    before = snapshot(ccd)
    bpm_flags = bpm.flags.copy()
    out = call(flag_bad_pixels, ccd, bpm, warm_is_bad=warm_is_bad)
    if isinstance(out, Exception):
        # Copying flags needs no measurement: only a frame without any
        # finite pixel is refused.
        assert not _has_finite_pixel(ccd), f"refused a usable frame: {out}"
        assert "no finite pixel" in str(out)
        assert_unchanged(ccd, before)
        return
    assert_contract(ccd, before, out, "flag_bad_pixels", may_replace=False)
    np.testing.assert_array_equal(bpm.flags, bpm_flags, "the map was modified")
    assert np.array_equal(out.flags & bpm.flags, bpm.flags), "map flags were lost"
    if warm_is_bad:
        warm = (bpm.flags & np.uint16(PixelFlag.WARM)) != 0
        assert out.mask[warm].all(), "warm_is_bad left a WARM pixel unmasked"


@settings(max_examples=40, **SETTINGS)
@given(
    ccd=ccds(),
    saturation=st.sampled_from([None, None, 0.0, -1.0, 1e30, np.nan, 120.0]),
    noise=st.sampled_from([(None, None), (None, None), (1.5, 5.0), (2.0, 0.0)]),
)
def test_flag_transients_on_odd_frames(ccd, saturation, noise):
    gain, read_noise = noise
    before = snapshot(ccd)
    out = call(
        flag_transients, ccd, saturation=saturation, gain=gain, read_noise=read_noise
    )
    if isinstance(out, Exception):
        assert_unchanged(ccd, before)
        assert not _noise_advice_without_need(out, gain=gain, read_noise=read_noise), (
            f"asks for GAIN and RDNOISE that were given: {out}"
        )
        # With an uncertainty plane the noise needs no measurement.
        plane = ccd.uncertainty
        trusted = isinstance(plane, StdDevUncertainty) and bool(
            (np.asarray(plane.array) > 0).all()
        )
        assert not (trusted and _has_finite_pixel(ccd)), (
            f"refused a usable frame with an uncertainty plane: {out}"
        )
        return
    assert_contract(ccd, before, out, "flag_transients", may_replace=False)


@settings(max_examples=40, **SETTINGS)
@given(
    ccd=ccds(),
    method=st.sampled_from(["median", "mean"]),
    max_radius=st.sampled_from([1, 2, 15]),
)
def test_replace_bad_pixels_on_odd_frames(ccd, method, max_radius):
    before = snapshot(ccd)
    out = call(replace_bad_pixels, ccd, method=method, max_radius=max_radius)
    if isinstance(out, Exception):
        # Replacement works on constant and tiny images (documented: no
        # uncertainty plane is made then); only a frame without any finite
        # pixel is refused.
        assert not _has_finite_pixel(ccd), f"refused a usable frame: {out}"
        assert "no finite pixel" in str(out)
        assert_unchanged(ccd, before)
        return
    assert_contract(ccd, before, out, "replace_bad_pixels")
    # On a frame no wider than 16 px every pixel lies within max_radius=15 of
    # every other: if any pixel is good, every non-finite one is replaced.
    data = np.asarray(ccd.data)
    if data.dtype.kind == "f" and max_radius == 15 and max(ccd.shape) <= 16:
        in_flags = out.flags & ~np.uint16(PixelFlag.REPLACED)
        good = ~flags_to_mask(in_flags) & np.isfinite(data)
        if good.any():
            assert np.isfinite(out.data).all(), "a non-finite pixel was not replaced"


@settings(max_examples=40, **SETTINGS)
@given(
    case=ccds_and_maps(),
    use_map=st.booleans(),
    transients=st.booleans(),
    replace=st.booleans(),
    method=st.sampled_from(["median", "mean"]),
    noise=st.sampled_from([(None, None), (None, None), (1.5, 5.0)]),
)
def test_fix_pixels_on_odd_frames(case, use_map, transients, replace, method, noise):
    ccd, bpm = case
    gain, read_noise = noise
    before = snapshot(ccd)
    out = call(
        fix_pixels,
        ccd,
        bpm if use_map else None,
        transients=transients,
        replace=replace,
        method=method,
        gain=gain,
        read_noise=read_noise,
    )
    if isinstance(out, Exception):
        assert_unchanged(ccd, before)
        assert not _noise_advice_without_need(out, gain=gain, read_noise=read_noise), (
            f"asks for GAIN and RDNOISE that were given: {out}"
        )
        if not transients:
            # Flagging from a map and replacing need no noise measurement.
            assert not _has_finite_pixel(ccd), f"refused a usable frame: {out}"
        return
    assert_contract(ccd, before, out, "fix_pixels")
    if use_map:
        assert np.array_equal(out.flags & bpm.flags, bpm.flags), "map flags lost"


# --- metamorphic properties ---------------------------------------------------


def _same_result(a, b):
    """Two step results agree on data, flags and uncertainty."""
    if isinstance(a, Exception) or isinstance(b, Exception):
        assert type(a) is type(b) and str(a) == str(b)
        return
    np.testing.assert_array_equal(a.flags, b.flags)
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    assert (a.uncertainty is None) == (b.uncertainty is None)
    if a.uncertainty is not None:
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)


@settings(max_examples=25, **SETTINGS)
@given(ccd=ccds(dtypes=["uint16", "int16", "uint8", "int32"]))
def test_fix_pixels_with_an_empty_map_is_fix_pixels_without_one(ccd):
    """A map that flags nothing changes nothing, on raw integer data too.

    (Flagging from the map first must not lose what the raw integer type
    tells the later steps, such as its saturation level.)
    """
    empty = BadPixelMap(np.zeros(ccd.shape, np.uint16))
    _same_result(call(fix_pixels, ccd, empty), call(fix_pixels, ccd))


@settings(max_examples=25, **SETTINGS)
@given(ccd=ccds(dtypes=[">f4", ">f8", ">i2", ">u2", ">i4"]))
def test_big_endian_frames_give_the_native_result(ccd):
    """A big-endian frame (as FITS gives it) is fixed like its native copy."""
    data = np.asarray(ccd.data)
    native = ccd.copy()
    native.data = data.astype(data.dtype.newbyteorder("="))
    native.flags = None if ccd.flags is None else np.array(ccd.flags)
    a, b = call(fix_pixels, ccd), call(fix_pixels, native)
    _same_result(a, b)


# --- make_bad_pixel_map ---------------------------------------------------------


@st.composite
def dark_stacks(draw):
    """1 to 4 odd darks of one shape and dtype, with or without EXPTIME/GAIN."""
    shape = draw(shapes)
    dtypes = draw(st.sampled_from([ALL_DTYPES, ["uint16"], ["float32"]]))
    dtype = draw(st.sampled_from(dtypes))
    n_darks = draw(st.integers(1, 4))
    darks = []
    for _ in range(n_darks):
        data = draw(frames([dtype], shape))
        meta = {}
        exptime = draw(st.sampled_from([None, 0.0, 30.0, 300.0, np.nan]))
        if exptime is not None:
            meta["EXPTIME"] = exptime
        gain = draw(st.sampled_from([None, 1.5, 1000.0]))
        if gain is not None:
            meta["GAIN"] = gain
        mask = None
        if draw(st.booleans()):
            mask = np.zeros(shape, bool)
            mask.flat[draw(st.integers(0, mask.size - 1))] = True
        darks.append(CCDData(data, unit="adu", meta=meta, mask=mask))
    flats = None
    if draw(st.integers(0, 3)) == 0:
        flats = [CCDData(draw(frames([dtype], shape)), unit="adu")]
    return darks, flats


@settings(max_examples=30, **SETTINGS)
@given(stack=dark_stacks(), gain=st.sampled_from([None, None, 2.0]))
def test_make_bad_pixel_map_on_odd_darks(stack, gain):
    darks, flats = stack
    frames_in = darks + (flats or [])
    before = [snapshot(frame) for frame in frames_in]
    bpm = call(make_bad_pixel_map, darks, flats, gain=gain)
    for frame, snap in zip(frames_in, before, strict=True):
        assert_unchanged(frame, snap)
    if isinstance(bpm, Exception):
        return
    assert isinstance(bpm, BadPixelMap)
    assert bpm.shape == darks[0].shape
    assert bpm.flags.dtype == np.uint16
    # Only the kinds a map holds.
    kinds = (
        PixelFlag.HOT
        | PixelFlag.WARM
        | PixelFlag.BAD_COLUMN
        | PixelFlag.STUCK
        | PixelFlag.DEAD
        | PixelFlag.LOW_RESPONSE
    )
    assert not (bpm.flags & ~np.uint16(int(kinds))).any()
    # The record can be written (FITS META extension holds it as JSON).
    json.dumps(bpm.meta)
    # A map of the frames' own detector applies to them.
    out = call(flag_bad_pixels, darks[0], bpm)
    if not isinstance(out, Exception):
        assert np.array_equal(out.flags & bpm.flags, bpm.flags)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_keeps_its_output_type(dtype):
    """One plain noisy frame per dtype: float16 and big-endian floats kept."""
    rng = np.random.default_rng(1)
    data = _cast(rng.normal(100.0, 3.0, (16, 16)), np.dtype(dtype))
    data.flat[37] = np.iinfo(data.dtype).max if data.dtype.kind in "iu" else 5e3
    ccd = CCDData(data, unit="adu")
    before = snapshot(ccd)
    for step in (flag_transients, replace_bad_pixels, fix_pixels):
        out = call(step, ccd)
        assert not isinstance(out, Exception), f"{step.__name__}: {out}"
        assert_contract(ccd, before, out, step.__name__)
