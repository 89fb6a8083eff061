"""Property-based tests of every public step on odd input.

Hypothesis builds frames no camera simulation would: NaN and inf pixels,
all-zero and constant images, tiny frames (1x1, 1xN, Nx1, 2x2, 3x3), huge
(1e30, the dtype's largest value) and negative values, every integer dtype,
float16/32/64, big-endian dtypes as FITS gives them, an existing mask or
flags, an uncertainty plane of each type, a masked numpy array as data. For
each step it checks the step contract:

- a result, or a ValueError/TypeError raised on purpose by ccdpixfix with a
  message (never IndexError, ZeroDivisionError, a numpy error, a warning
  other than the documented AstropyUserWarnings, or a hang);
- the input (data, mask, flags, uncertainty, meta) is never modified, and
  the output shares no memory with it;
- the output has the input's shape, ``mask == flags_to_mask(flags)``, flags
  are ``uint16`` and keep every flag (and mask) the input had;
- data are float32 for integer input and the input's own float dtype for
  float input (float16 stays float16, big-endian stays big-endian);
- pixels not replaced keep their value exactly (as float32 for integer
  input; NaN equals NaN), replaced ones are finite and lie within the range
  of the input's finite pixels.

The frames are drawn as `Parts` (data, mask, flags, uncertainty, meta) so
that a failing example prints all of them, not only the data as the repr of
`~astropy.nddata.CCDData` would.
"""

import copy
import json
import time
import traceback
import warnings
from dataclasses import dataclass, field
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
from hypothesis import HealthCheck, Phase, given, settings
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

# Tiny frames are the odd ones; larger ones give the noise model enough
# pixels to measure, so that the steps get past their first checks.
TINY_SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 3), (1, 24), (24, 1)]
shapes = st.one_of(
    st.sampled_from(TINY_SHAPES),
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(st.integers(8, 24), st.integers(8, 24)),
)

FLAG_VALUES = np.array([int(flag) for flag in PixelFlag], dtype=np.uint16)
# A bad-pixel map holds persistent defects, never REPLACED.
MAP_FLAG_VALUES = FLAG_VALUES[FLAG_VALUES != int(PixelFlag.REPLACED)]

# AstropyUserWarning is how ccdpixfix tells its user about odd input (an
# implausible GAIN or uncertainty plane, a saturated flat, darks without
# GAIN...): those are allowed, and recorded. Every other warning (a numpy
# RuntimeWarning above all) fails a test.
ALLOWED_WARNING = AstropyUserWarning

# A step that takes longer than this on a 24x24 frame hangs.
MAX_SECONDS = 20.0


@pytest.fixture(scope="module", autouse=True)
def compiled_for_every_dtype():
    """The compiled kernels, compiled for every dtype before a step is timed.

    numba compiles a kernel for each new type of input on its first call,
    and caches it on disk; in a fresh checkout there is no cache yet. On a
    slow 2-core machine the first ``fix_pixels`` of an int16 frame took 34 s
    so (of a float32 frame 52 s), over `MAX_SECONDS`, which is for the
    steps' own time.
    """
    rng = np.random.default_rng(0)
    empty = BadPixelMap(np.zeros((32, 32), np.uint16))
    for dtype in ALL_DTYPES:
        values = rng.normal(60.0, 3.0, (32, 32))
        values[16, 16] += 60.0
        ccd = CCDData(values.astype(dtype), unit="adu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fix_pixels(ccd, empty)


SETTINGS = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    # The explain phase costs seconds per failure and adds little here.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


# --- odd frames ------------------------------------------------------------------


@dataclass
class Parts:
    """What a `~astropy.nddata.CCDData` is made of; hypothesis prints this."""

    data: np.ndarray  # possibly a numpy masked array
    mask: np.ndarray | None = None
    flags: np.ndarray | None = None
    uncertainty: object = None
    meta: dict = field(default_factory=dict)
    header: bool = False  # meta as an astropy.io.fits.Header

    def ccd(self):
        """A new CCDData of fresh copies of the parts."""
        meta = copy.deepcopy(self.meta)
        if self.header:
            header = fits.Header()
            for key, value in meta.items():
                if key == "HISTORY":
                    header.add_history(value)
                else:
                    header[key] = value
            meta = header
        return CCDData(
            copy.deepcopy(self.data),
            unit="adu",
            mask=None if self.mask is None else self.mask.copy(),
            flags=None if self.flags is None else self.flags.copy(),
            uncertainty=copy.deepcopy(self.uncertainty),
            meta=meta,
        )


def _cast(values, dtype):
    """``values`` (float64) in ``dtype``, clipped to its range (no warning)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        # float64 cannot hold the int64/uint64 limits exactly: set them apart.
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
def pixel_arrays(draw, dtypes=ALL_DTYPES, shape=None):
    """(data, its noise sigma): noise, constant, zero or ramp, odd pixels."""
    shape = draw(shapes) if shape is None else shape
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    kind = draw(st.sampled_from(["noise", "noise", "constant", "zeros", "ramp"]))
    level = draw(st.sampled_from([0.0, 100.0, -50.0, 1e4, 1e30, -1e30]))
    sigma = draw(st.sampled_from([0.5, 3.0, 30.0]))
    sigma += draw(st.sampled_from([0.0, 0.01])) * abs(level)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "zeros":
        values = np.zeros(shape)
    elif kind == "constant":
        values = np.full(shape, level)
    elif kind == "ramp":
        values = level + np.add.outer(np.arange(shape[0]), 3.0 * np.arange(shape[1]))
    else:
        values = rng.normal(level, sigma, shape)
    data = _cast(values, dtype)
    specials = _specials(dtype)
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.integers(0, data.size - 1))
        data.flat[index] = draw(st.sampled_from(specials))
    return data, sigma


def _random_flags(rng, shape, fraction, values=FLAG_VALUES):
    flags = np.zeros(shape, dtype=np.uint16)
    chosen = rng.random(shape) < fraction
    flags[chosen] = rng.choice(values, size=int(chosen.sum()))
    return flags


def _uncertainty(kind, sigma, rng, shape, dtype):
    """An uncertainty plane of ``kind`` around the data's noise ``sigma``."""
    values = sigma * rng.uniform(0.9, 1.1, shape)
    if kind == "std_small":  # underestimated, e.g. carried over from a bias
        values /= 100.0
    if kind == "std_odd":
        odd = rng.random(shape)
        values[odd < 0.1] = 0.0
        values[odd > 0.9] = np.nan
    values = values.astype(dtype)
    if kind == "variance":
        return VarianceUncertainty(values.astype(np.float64) ** 2)
    if kind == "inverse":
        return InverseVariance(1 / values.astype(np.float64) ** 2)
    return StdDevUncertainty(values)


@st.composite
def frame_parts(draw, dtypes=ALL_DTYPES, shape=None):
    """An odd frame with, or without, mask, flags, uncertainty and meta."""
    data, sigma = draw(pixel_arrays(dtypes, shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    parts = Parts(data)
    mask_kind = draw(st.sampled_from(["none", "none", "mask", "masked_array"]))
    if mask_kind != "none":
        mask = rng.random(data.shape) < draw(st.sampled_from([0.05, 0.3, 1.0]))
        if mask_kind == "masked_array":
            parts.data = np.ma.masked_array(data, mask=mask)
        else:
            parts.mask = mask
    if draw(st.booleans()):
        flags = _random_flags(rng, data.shape, draw(st.sampled_from([0.02, 0.2])))
        parts.flags = flags.astype(draw(st.sampled_from(["uint16", "int32", ">u2"])))
    unc_kind = draw(
        st.sampled_from(
            ["none", "none", "std", "std_small", "std_odd", "variance", "inverse"]
        )
    )
    if unc_kind != "none":
        dtype = draw(st.sampled_from(["f8", "f4", ">f4"]))
        parts.uncertainty = _uncertainty(unc_kind, sigma, rng, data.shape, dtype)
    meta_kind = draw(st.sampled_from(["dict", "header", "odd_dict"]))
    if meta_kind == "header":
        parts.header = True
        parts.meta = {"OBJECT": "test", "HISTORY": "an earlier step"}
        if draw(st.booleans()):
            parts.meta["GAIN"] = draw(st.sampled_from([1.5, 0.001, 1000.0]))
            parts.meta["RDNOISE"] = draw(st.sampled_from([5.0, 0.0, -3.0]))
        if draw(st.booleans()):
            parts.meta["SATURATE"] = draw(st.sampled_from([100.0, 0.0, -1.0, 1e30]))
    elif meta_kind == "odd_dict":
        parts.meta = {
            "SATURATE": draw(st.sampled_from([np.nan, np.inf, "junk", None, 50])),
            "GAIN": draw(st.sampled_from([np.nan, "2", None, 2.0])),
            "RDNOISE": draw(st.sampled_from([np.inf, "x", 4.0])),
            "HISTORY": "a lone string",
        }
    else:
        parts.meta = {"EXPTIME": 30.0}
    return parts


@st.composite
def frames_and_map_flags(draw, dtypes=ALL_DTYPES):
    """A frame and the flags of a bad-pixel map of its shape."""
    parts = draw(frame_parts(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    fraction = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]))
    return parts, _random_flags(rng, parts.data.shape, fraction, MAP_FLAG_VALUES)


# --- checks -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a step did: its result or documented error, and its warnings."""

    result: object
    warned: list

    @property
    def failed(self):
        return isinstance(self.result, Exception)


def call(step, *args, **kwargs):
    """Run a step: warnings are errors, except AstropyUserWarnings.

    Any exception other than a ValueError/TypeError raised on purpose by
    ccdpixfix propagates and fails the test.
    """
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", ALLOWED_WARNING)
        try:
            result = step(*args, **kwargs)
        except (ValueError, TypeError) as error:
            assert_documented_error(error)
            result = error
    elapsed = time.perf_counter() - start
    assert elapsed < MAX_SECONDS, f"{step.__name__} took {elapsed:.0f} s"
    return Outcome(result, [str(w.message) for w in caught])


def assert_documented_error(error):
    """The error was raised by a ``raise`` of ccdpixfix, with a message."""
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


def _array_snapshot(array):
    if array is None:
        return None
    array = np.asarray(array)
    return array.dtype, array.shape, array.tobytes()


def snapshot(ccd):
    """Everything a step must leave untouched, copied."""
    meta = ccd.meta
    if isinstance(meta, fits.Header):
        meta_copy = [card.image for card in meta.cards]
    else:
        meta_copy = copy.deepcopy(dict(meta))
    unc = ccd.uncertainty
    return {
        "data": _array_snapshot(ccd.data),
        "mask": _array_snapshot(ccd.mask),
        "flags": _array_snapshot(ccd.flags),
        "uncertainty": None if unc is None else (type(unc), _array_snapshot(unc.array)),
        # repr, so that NaN equals NaN and types are told apart.
        "meta": repr((type(meta), meta_copy)),
    }


def assert_unchanged(ccd, before):
    after = snapshot(ccd)
    for key, value in before.items():
        assert after[key] == value, f"the step modified its input's {key}"


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


def _has_finite_pixel(ccd):
    data = np.asarray(ccd.data)
    return data.dtype.kind != "f" or bool(np.isfinite(data).any())


def assert_contract(ccd, before, out, step_name, *, may_replace=True, warned=()):
    """The step contract, checked on a result ``out`` of input ``ccd``."""
    assert_unchanged(ccd, before)
    assert isinstance(out, CCDData)
    data_in = np.asarray(ccd.data)
    integer_input = data_in.dtype.kind in "iub"

    # Shape and dtype.
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

    # No memory shared with the input.
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

    # Values: pixels without REPLACED are exactly the input's (a step that
    # only flags changes none); pixels this step replaced hold a finite
    # estimate within the range of the input's finite pixels. (A pixel that
    # came in REPLACED may be replaced again.)
    replaced = (out.flags & np.uint16(PixelFlag.REPLACED)) != 0
    if not may_replace:
        replaced = np.zeros(data_in.shape, bool)
    before_values = data_in.astype(np.float32) if integer_input else data_in
    np.testing.assert_array_equal(
        out.data[~replaced],
        before_values[~replaced],
        err_msg="a pixel that was not replaced changed",
    )
    # The input's uncertainty plane keeps its type, and its values (to the
    # rounding of the output's float type) wherever no pixel was replaced,
    # unless a warning said it was far too small and the model replaced it.
    if ccd.uncertainty is not None:
        assert type(out.uncertainty) is type(ccd.uncertainty)
        kept = np.asarray(out.uncertainty.array, np.float64)[~replaced]
        given = np.asarray(ccd.uncertainty.array, np.float64)[~replaced]
        precision = np.finfo(np.asarray(out.uncertainty.array).dtype).eps
        if not any("uncertainty plane is" in message for message in warned):
            np.testing.assert_allclose(
                kept,
                given,
                rtol=8 * precision,
                equal_nan=True,
                err_msg="the uncertainty of a pixel not replaced changed",
            )
    newly = replaced & ((in_flags & np.uint16(PixelFlag.REPLACED)) == 0)
    if newly.any():
        values = np.asarray(out.data[newly], dtype=np.float64)
        assert np.isfinite(values).all(), "a replaced pixel is not finite"
        # Up to the rounding of a mean: a few units in the last place.
        finite = before_values[np.isfinite(before_values)].astype(np.float64)
        with np.errstate(over="ignore"):
            slack = 4 * np.finfo(out.data.dtype).eps * np.abs(finite).max()
            low, high = finite.min() - slack, finite.max() + slack
        assert low <= values.min() and values.max() <= high, (
            "a replaced value lies outside the range of the input's pixels"
        )

    assert step_name in _history(out.meta), "no HISTORY record of the step"


def _asks_for_what_was_given(error, *, gain, read_noise):
    """An error that advises giving GAIN and RDNOISE although they were given."""
    given_ = gain is not None and read_noise is not None and read_noise > 0
    return given_ and "GAIN and RDNOISE" in str(error)


def _trusted_plane(ccd, outcome):
    """A StdDev plane, positive and finite everywhere, that the step kept."""
    plane = ccd.uncertainty
    if not isinstance(plane, StdDevUncertainty):
        return False
    values = np.asarray(plane.array)
    rejected = any("uncertainty plane" in message for message in outcome.warned)
    return bool(np.isfinite(values).all() and (values > 0).all()) and not rejected


# --- the steps ------------------------------------------------------------------


@settings(max_examples=100, **SETTINGS)
@given(case=frames_and_map_flags(), warm_is_bad=st.booleans())
def test_flag_bad_pixels_on_odd_frames(case, warm_is_bad):
    parts, map_flags = case
    ccd, bpm = parts.ccd(), BadPixelMap(map_flags)
    before = snapshot(ccd)
    outcome = call(flag_bad_pixels, ccd, bpm, warm_is_bad=warm_is_bad)
    assert_unchanged(ccd, before)
    np.testing.assert_array_equal(bpm.flags, map_flags, "the map was modified")
    if outcome.failed:
        # Copying flags needs no measurement: only a frame without any
        # finite pixel is refused.
        assert not _has_finite_pixel(ccd), f"refused a usable frame: {outcome.result}"
        assert "no finite pixel" in str(outcome.result)
        return
    out = outcome.result
    assert_contract(ccd, before, out, "flag_bad_pixels", may_replace=False)
    assert np.array_equal(out.flags & bpm.flags, bpm.flags), "map flags were lost"
    if warm_is_bad:
        warm = (bpm.flags & np.uint16(PixelFlag.WARM)) != 0
        assert out.mask[warm].all(), "warm_is_bad left a WARM pixel unmasked"


@settings(max_examples=100, **SETTINGS)
@given(
    parts=frame_parts(),
    saturation=st.sampled_from([None, None, 0.0, -1.0, 1e30, np.nan, 120.0]),
    noise=st.sampled_from([(None, None), (None, None), (1.5, 5.0), (2.0, 0.0)]),
)
def test_flag_transients_on_odd_frames(parts, saturation, noise):
    gain, read_noise = noise
    ccd = parts.ccd()
    before = snapshot(ccd)
    outcome = call(
        flag_transients, ccd, saturation=saturation, gain=gain, read_noise=read_noise
    )
    assert_unchanged(ccd, before)
    valid_saturation = saturation is None or bool(
        np.isfinite(saturation) and saturation > 0
    )
    assert outcome.failed or valid_saturation, f"saturation={saturation} accepted"
    if outcome.failed:
        error = outcome.result
        assert not _asks_for_what_was_given(error, gain=gain, read_noise=read_noise), (
            f"asks for GAIN and RDNOISE that were given: {error}"
        )
        if not valid_saturation or read_noise == 0.0:
            # An invalid argument is refused whether or not it would be used;
            # a saturation level of 0 or less would call every pixel saturated.
            invalid = ["saturation"] * (not valid_saturation)
            invalid += ["read_noise"] * (read_noise == 0.0)
            named = [f"{name} must be a positive number" for name in invalid]
            assert any(text in str(error) for text in named) or (
                "no finite pixel" in str(error)
            ), error
            return
        # With an uncertainty plane it keeps, the noise needs no measurement.
        assert not (_trusted_plane(ccd, outcome) and _has_finite_pixel(ccd)), (
            f"refused a usable frame with an uncertainty plane: {error}"
        )
        return
    assert_contract(
        ccd,
        before,
        outcome.result,
        "flag_transients",
        may_replace=False,
        warned=outcome.warned,
    )


@settings(max_examples=100, **SETTINGS)
@given(
    parts=frame_parts(),
    method=st.sampled_from(["median", "mean"]),
    max_radius=st.sampled_from([1, 2, 15]),
)
def test_replace_bad_pixels_on_odd_frames(parts, method, max_radius):
    ccd = parts.ccd()
    before = snapshot(ccd)
    outcome = call(replace_bad_pixels, ccd, method=method, max_radius=max_radius)
    assert_unchanged(ccd, before)
    if outcome.failed:
        # Replacement works on constant and tiny images (documented: no
        # uncertainty plane is made then); only a frame without any finite
        # pixel is refused.
        assert not _has_finite_pixel(ccd), f"refused a usable frame: {outcome.result}"
        assert "no finite pixel" in str(outcome.result)
        return
    out = outcome.result
    assert_contract(ccd, before, out, "replace_bad_pixels")
    # On a frame no wider than 16 px every pixel lies within max_radius=15 of
    # every other: if any pixel is good, every non-finite one is replaced.
    data = np.asarray(ccd.data)
    if data.dtype.kind == "f" and max_radius == 15 and max(ccd.shape) <= 16:
        in_flags = out.flags & ~np.uint16(PixelFlag.REPLACED)
        good = ~flags_to_mask(in_flags) & np.isfinite(data)
        if good.any():
            assert np.isfinite(out.data).all(), "a non-finite pixel was not replaced"


@settings(max_examples=100, **SETTINGS)
@given(
    case=frames_and_map_flags(),
    use_map=st.booleans(),
    transients=st.booleans(),
    replace=st.booleans(),
    method=st.sampled_from(["median", "mean"]),
    noise=st.sampled_from([(None, None), (None, None), (1.5, 5.0)]),
)
def test_fix_pixels_on_odd_frames(case, use_map, transients, replace, method, noise):
    parts, map_flags = case
    ccd, bpm = parts.ccd(), BadPixelMap(map_flags)
    gain, read_noise = noise
    before = snapshot(ccd)
    outcome = call(
        fix_pixels,
        ccd,
        bpm if use_map else None,
        transients=transients,
        replace=replace,
        method=method,
        gain=gain,
        read_noise=read_noise,
    )
    assert_unchanged(ccd, before)
    if outcome.failed:
        error = outcome.result
        assert not _asks_for_what_was_given(error, gain=gain, read_noise=read_noise), (
            f"asks for GAIN and RDNOISE that were given: {error}"
        )
        if not transients:
            # Flagging from a map and replacing need no noise measurement.
            assert not _has_finite_pixel(ccd), f"refused a usable frame: {error}"
        return
    out = outcome.result
    assert_contract(ccd, before, out, "fix_pixels", warned=outcome.warned)
    if use_map:
        assert np.array_equal(out.flags & bpm.flags, bpm.flags), "map flags lost"


# --- metamorphic properties -----------------------------------------------------


def assert_same_outcome(a, b):
    """Two outcomes agree: same error, or same data, flags and uncertainty."""
    assert a.failed == b.failed, (a.result, b.result)
    if a.failed:
        assert type(a.result) is type(b.result)
        assert str(a.result) == str(b.result)
        return
    a, b = a.result, b.result
    np.testing.assert_array_equal(a.flags, b.flags, "flags differ")
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    assert (a.uncertainty is None) == (b.uncertainty is None)
    if a.uncertainty is not None:
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)


@settings(max_examples=50, **SETTINGS)
@given(parts=frame_parts(dtypes=["uint16", "int16", "uint8", "int32"]))
def test_fix_pixels_with_an_empty_map_is_fix_pixels_without_one(parts):
    """A map that flags nothing changes nothing, on raw integer data too.

    Flagging from the map first must not lose what the raw integer type
    tells the later steps, such as its saturation level.
    """
    empty = BadPixelMap(np.zeros(parts.data.shape, np.uint16))
    assert_same_outcome(
        call(fix_pixels, parts.ccd(), empty), call(fix_pixels, parts.ccd())
    )


@settings(max_examples=50, **SETTINGS)
@given(parts=frame_parts(dtypes=[">f4", ">f8", ">i2", ">u2", ">i4"]))
def test_big_endian_frames_give_the_native_result(parts):
    """A big-endian frame (as FITS gives it) is fixed like its native copy."""
    native = copy.deepcopy(parts)
    native.data = parts.data.astype(parts.data.dtype.newbyteorder("="))
    assert_same_outcome(call(fix_pixels, parts.ccd()), call(fix_pixels, native.ccd()))


# --- make_bad_pixel_map ---------------------------------------------------------


@st.composite
def dark_stacks(draw):
    """1 to 4 odd darks of one shape and dtype, sometimes with one flat."""
    shape = draw(shapes)
    dtypes = draw(st.sampled_from([ALL_DTYPES, ["uint16"], ["float32"]]))
    dtype = draw(st.sampled_from(dtypes))
    darks = []
    for _ in range(draw(st.integers(1, 4))):
        data, _ = draw(pixel_arrays([dtype], shape))
        parts = Parts(data)
        exptime = draw(st.sampled_from([None, 0.0, 30.0, 300.0, np.nan]))
        if exptime is not None:
            parts.meta["EXPTIME"] = exptime
        gain = draw(st.sampled_from([None, 1.5, 1000.0]))
        if gain is not None:
            parts.meta["GAIN"] = gain
        if draw(st.booleans()):
            parts.mask = np.zeros(shape, bool)
            parts.mask.flat[draw(st.integers(0, parts.mask.size - 1))] = True
        darks.append(parts)
    flats = None
    if draw(st.integers(0, 3)) == 0:
        flats = [Parts(draw(pixel_arrays([dtype], shape))[0])]
    return darks, flats


@settings(max_examples=60, **SETTINGS)
@given(stack=dark_stacks(), gain=st.sampled_from([None, None, 2.0]))
def test_make_bad_pixel_map_on_odd_darks(stack, gain):
    dark_parts, flat_parts = stack
    darks = [parts.ccd() for parts in dark_parts]
    flats = None if flat_parts is None else [parts.ccd() for parts in flat_parts]
    inputs = darks + (flats or [])
    before = [snapshot(frame) for frame in inputs]
    outcome = call(make_bad_pixel_map, darks, flats, gain=gain)
    for frame, snap in zip(inputs, before, strict=True):
        assert_unchanged(frame, snap)
    if outcome.failed:
        return
    bpm = outcome.result
    assert isinstance(bpm, BadPixelMap)
    assert bpm.shape == darks[0].shape
    assert bpm.flags.dtype == np.uint16
    kinds = (
        PixelFlag.HOT
        | PixelFlag.WARM
        | PixelFlag.BAD_COLUMN
        | PixelFlag.STUCK
        | PixelFlag.DEAD
        | PixelFlag.LOW_RESPONSE
        | PixelFlag.HIGH_RESPONSE
    )
    assert not (bpm.flags & ~np.uint16(int(kinds))).any(), "a flag a map never holds"
    json.dumps(bpm.meta)  # written to the map's META extension as JSON
    # The map of the frames' own detector applies to them.
    applied = call(flag_bad_pixels, darks[0], bpm)
    if not applied.failed:
        assert np.array_equal(applied.result.flags & bpm.flags, bpm.flags)


# --- one plain frame of every dtype ---------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_keeps_its_output_type(dtype):
    """One noisy frame with a hot pixel per dtype: float16, '>f4' are kept."""
    rng = np.random.default_rng(1)
    data = _cast(rng.normal(100.0, 3.0, (16, 16)), np.dtype(dtype))
    data.flat[37] = np.iinfo(data.dtype).max if data.dtype.kind in "iu" else 5e3
    ccd = CCDData(data, unit="adu")
    before = snapshot(ccd)
    for step in (flag_transients, replace_bad_pixels, fix_pixels):
        outcome = call(step, ccd)
        assert not outcome.failed, f"{step.__name__}: {outcome.result}"
        assert_contract(ccd, before, outcome.result, step.__name__)


@settings(max_examples=40, **SETTINGS)
@given(
    flags=st.integers(1, 12).flatmap(
        lambda rows: st.integers(1, 12).flatmap(
            lambda cols: st.lists(
                st.integers(0, 0xFFFF), min_size=rows * cols, max_size=rows * cols
            ).map(lambda values: np.array(values, np.uint16).reshape(rows, cols))
        )
    ),
)
def test_bad_pixel_map_round_trip_and_mask(flags, tmp_path_factory):
    from ccdpixfix import BAD_PIXEL_FLAGS, BadPixelMap, flags_to_mask

    bpm = BadPixelMap(flags, {"note": "odd"})
    assert np.array_equal(bpm.mask, (flags & BAD_PIXEL_FLAGS) != 0)
    assert np.array_equal(flags_to_mask(flags), bpm.mask)
    path = tmp_path_factory.mktemp("bpm") / "map.fits"
    bpm.write(path)
    assert BadPixelMap.read(path) == bpm


@settings(max_examples=30, **SETTINGS)
@given(
    values=st.sampled_from(
        [
            np.ones((2, 2, 2), np.uint16),
            np.full((3, 3), -1),
            np.full((2, 2), 70000),
            np.ones((3, 3)) * 1.5,
            np.ones(4, np.uint16),
        ]
    )
)
def test_bad_pixel_map_refuses_what_is_not_flags(values):
    from ccdpixfix import BadPixelMap

    with pytest.raises(ValueError, match="flags must be"):
        BadPixelMap(values)
