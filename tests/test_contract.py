"""The step contract, checked once for every public step.

Every step takes a `~astropy.nddata.CCDData` and returns a new one: the input
is never touched, header cards and WCS survive unchanged, ``mask`` follows
``flags``, the shape is kept, integer data become float32 and float64 stays
float64, and a HISTORY record names the step and the ccdpixfix version.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

import ccdpixfix
from ccdpixfix import (
    BAD_PIXEL_FLAGS,
    PixelFlag,
    fix_pixels,
    flag_bad_pixels,
    flag_transients,
    make_bad_pixel_map,
    replace_bad_pixels,
)
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.utils.provenance import SHORT_NAMES

SHAPE = (96, 128)  # not square, so that swapped axes would show


@dataclass(frozen=True)
class Step:
    """A public step as called in the contract test."""

    name: str  # the name its HISTORY record must carry
    call: Callable
    needs_flags: bool = False  # the input must already carry flags


STEPS = {
    "flag_bad_pixels": Step(
        "flag_bad_pixels", lambda ccd, bpm: flag_bad_pixels(ccd, bpm)
    ),
    "flag_transients": Step("flag_transients", lambda ccd, bpm: flag_transients(ccd)),
    "replace_bad_pixels": Step(
        "replace_bad_pixels", lambda ccd, bpm: replace_bad_pixels(ccd), True
    ),
    "fix_pixels_with_map": Step("fix_pixels", lambda ccd, bpm: fix_pixels(ccd, bpm)),
    "fix_pixels_without_map": Step("fix_pixels", lambda ccd, bpm: fix_pixels(ccd)),
}


@pytest.fixture(scope="module")
def camera():
    return SimulatedCamera(SHAPE, seed=21)


@pytest.fixture(scope="module")
def bpm(camera):
    return make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])


@pytest.fixture(scope="module")
def raw_science(camera):
    ccd, truth = camera.science(fwhm=2.6, seed=8)
    return ccd, truth


def _raw_uint16(raw_science, tmp_path_factory):
    return raw_science[0]


def _float64_with_mask_and_uncertainty(raw_science, tmp_path_factory):
    ccd, truth = raw_science
    mask = np.zeros(SHAPE, dtype=bool)
    mask[10, 20:23] = True
    mask[50, 7] = True
    return CCDData(
        ccd.data.astype(np.float64),
        unit=ccd.unit,
        meta=ccd.header.copy(),
        wcs=ccd.wcs.deepcopy(),
        mask=mask,
        uncertainty=StdDevUncertainty(truth["sigma"].astype(np.float64)),
    )


def _read_from_fits(raw_science, tmp_path_factory):
    path = tmp_path_factory.mktemp("contract") / "science.fits"
    raw_science[0].write(path)
    return CCDData.read(path)


def _plain_dict_meta(raw_science, tmp_path_factory):
    ccd = raw_science[0]
    meta = {}
    for card in ccd.header.cards:
        if card.keyword in ("COMMENT", "HISTORY"):
            meta.setdefault(card.keyword, []).append(card.value)
        else:
            meta[card.keyword] = card.value
    return CCDData(ccd.data.copy(), unit=ccd.unit, meta=meta, wcs=ccd.wcs.deepcopy())


INPUTS = {
    "raw_uint16": _raw_uint16,
    "float64_mask_uncertainty": _float64_with_mask_and_uncertainty,
    "read_from_fits": _read_from_fits,
    "plain_dict_meta": _plain_dict_meta,
}


def _with_flags(ccd, bpm):
    """A copy of ``ccd`` carrying the map's flags and a few transients."""
    flagged = ccd.copy()
    flags = bpm.flags.copy()
    flags[5, 5] |= np.uint16(PixelFlag.TRANSIENT_HOT)
    flags[40, 60:62] |= np.uint16(PixelFlag.TRANSIENT_HOT)
    flags[0, 0] |= np.uint16(PixelFlag.DEAD)
    flagged.flags = flags
    return flagged


def _snapshot(ccd):
    """Everything about ``ccd`` a step could mutate, copied deeply."""
    return {
        "data": np.array(ccd.data, copy=True),
        "mask": None if ccd.mask is None else np.array(ccd.mask, copy=True),
        "flags": None if ccd.flags is None else np.array(ccd.flags, copy=True),
        "uncertainty": None
        if ccd.uncertainty is None
        else (type(ccd.uncertainty), np.array(ccd.uncertainty.array, copy=True)),
        "meta": _meta_items(ccd.meta, comments=True),
        "wcs_header": ccd.wcs.to_header(),
    }


def _meta_items(meta, *, comments=False):
    """The header as a list of cards, or a dict as a list of items (deep)."""
    if isinstance(meta, fits.Header):
        if comments:
            return [(c.keyword, c.value, c.comment) for c in meta.cards]
        return [(c.keyword, c.value) for c in meta.cards]
    return copy.deepcopy(list(meta.items()))


def _assert_arrays_equal_or_both_none(before, after):
    if before is None:
        assert after is None
    else:
        np.testing.assert_array_equal(after, before, strict=True)


def _assert_unchanged(ccd, before):
    """``ccd`` is as it was when ``before = _snapshot(ccd)`` was taken."""
    _assert_arrays_equal_or_both_none(before["data"], ccd.data)
    _assert_arrays_equal_or_both_none(before["mask"], ccd.mask)
    _assert_arrays_equal_or_both_none(before["flags"], ccd.flags)
    if before["uncertainty"] is None:
        assert ccd.uncertainty is None
    else:
        assert type(ccd.uncertainty) is before["uncertainty"][0]
        np.testing.assert_array_equal(ccd.uncertainty.array, before["uncertainty"][1])
    assert _meta_items(ccd.meta, comments=True) == before["meta"], "input meta changed"
    assert ccd.wcs.to_header() == before["wcs_header"]


def _scribble_on(out):
    """Change every part of a step's output in place, as a user might."""
    out.data[...] = -1
    out.mask[...] = True
    out.flags[...] = 0xFFFF
    if out.uncertainty is not None:
        out.uncertainty.array[...] = -1
    meta = out.meta
    if isinstance(meta, fits.Header):
        meta["OBSERVER"] = "someone else"
        meta.add_comment("added to the output")
        meta.add_history("added to the output")
    else:
        for value in meta.values():
            if isinstance(value, list):
                value.append("added to the output")
            elif isinstance(value, dict):
                value["added"] = "to the output"
        meta["OBSERVER"] = "someone else"
    out.wcs.wcs.crval = [0.0, 0.0]


def _assert_header_kept_with_history(before, after, step_name):
    """Input cards kept in order; the only additions are HISTORY naming us and
    the step's keyword, as ccdproc's add_keyword makes it."""
    short = SHORT_NAMES[step_name]
    keys = {step_name.upper(), short.upper(), step_name, short}
    assert after[short].startswith(("bpm=", "warm_is_bad=", "threshold=", "method="))
    after_keyword = after.get(step_name.upper(), after.get(step_name))
    assert after_keyword in (short, (short, "Shortened name for ccdpixfix command"))
    if isinstance(before, fits.Header):
        old = [(c.keyword, c.value) for c in before.cards]
        new = [(c.keyword, c.value) for c in after.cards if c.keyword not in keys]
        assert new[: len(old)] == old
        added = new[len(old) :]
        assert added, "no HISTORY card was added"
        assert all(keyword == "HISTORY" for keyword, _ in added)
        # astropy wraps a long HISTORY line over several cards.
        text = "".join(value for _, value in added)
    else:
        old = list(before.items())
        new = [(key, value) for key, value in after.items() if key not in keys]
        assert [key for key, _ in new] == [key for key, _ in old]
        for (key, old_value), (_, new_value) in zip(old, new, strict=True):
            if key != "HISTORY":
                assert new_value == old_value, key
        old_history = before["HISTORY"]
        new_history = after["HISTORY"]
        assert new_history[: len(old_history)] == old_history
        added = new_history[len(old_history) :]
        assert added, "no HISTORY line was added"
        text = "".join(added)
    assert "ccdpixfix" in text
    assert ccdpixfix.__version__ in text
    assert f"{step_name}(" in text


@pytest.mark.parametrize("input_name", list(INPUTS))
@pytest.mark.parametrize("step_name", list(STEPS))
def test_step_contract(step_name, input_name, raw_science, bpm, tmp_path_factory):
    step = STEPS[step_name]
    ccd = INPUTS[input_name](raw_science, tmp_path_factory)
    if step.needs_flags:
        ccd = _with_flags(ccd, bpm)
    before = _snapshot(ccd)
    header_before = copy.deepcopy(ccd.meta)
    ny, nx = ccd.shape
    grid_y, grid_x = np.meshgrid(
        np.linspace(0, ny - 1, 7), np.linspace(0, nx - 1, 9), indexing="ij"
    )
    sky_before = ccd.wcs.pixel_to_world_values(grid_x, grid_y)

    out = step.call(ccd, bpm)

    # The input is untouched.
    _assert_unchanged(ccd, before)

    # The output is a new object that shares no pixel memory with the input.
    assert isinstance(out, CCDData)
    assert out is not ccd
    assert out.meta is not ccd.meta
    assert out.wcs is not ccd.wcs
    for name in ("data", "mask", "flags"):
        if getattr(ccd, name) is not None and getattr(out, name) is not None:
            assert not np.shares_memory(getattr(out, name), getattr(ccd, name)), name
    if ccd.uncertainty is not None:
        assert not np.shares_memory(out.uncertainty.array, ccd.uncertainty.array)

    # Header cards, values and order kept; one HISTORY record added at the end.
    _assert_header_kept_with_history(header_before, out.meta, step.name)

    # The WCS is the same transformation.
    assert out.wcs.to_header() == before["wcs_header"]
    sky_after = out.wcs.pixel_to_world_values(grid_x, grid_y)
    for axis_before, axis_after in zip(sky_before, sky_after, strict=True):
        np.testing.assert_array_equal(axis_after, axis_before)

    # mask follows flags exactly.
    assert out.flags is not None
    assert out.flags.shape == ccd.shape
    expected_mask = (np.asarray(out.flags) & int(BAD_PIXEL_FLAGS)) != 0
    np.testing.assert_array_equal(out.mask, expected_mask, strict=True)
    # Pixels masked or flagged on input stay masked.
    if before["mask"] is not None:
        assert out.mask[before["mask"]].all()
    if before["flags"] is not None:
        kept = (before["flags"] & np.asarray(out.flags)) == before["flags"]
        assert kept.all()

    # Shape, unit and type: integers become float32, float64 stays float64.
    assert out.shape == ccd.shape
    assert out.unit == ccd.unit
    if before["data"].dtype.kind in "iu":
        assert out.data.dtype == np.float32
    else:
        assert out.data.dtype == before["data"].dtype
    if out.uncertainty is not None:
        assert out.uncertainty.array.shape == ccd.shape

    # Every pixel that was not replaced keeps its exact value.
    not_replaced = (np.asarray(out.flags) & int(PixelFlag.REPLACED)) == 0
    np.testing.assert_array_equal(
        out.data[not_replaced], before["data"].astype(out.data.dtype)[not_replaced]
    )

    # The output is independent: changing it in place leaves the input alone.
    _scribble_on(out)
    _assert_unchanged(ccd, before)
