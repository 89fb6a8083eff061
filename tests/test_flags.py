"""Tests of the bit flags in ccdpixfix.flags."""

import numpy as np
import pytest
from astropy.nddata.bitmask import bitfield_to_boolean_mask

from ccdpixfix import BAD_PIXEL_FLAGS, FLAG_NAME_MAP, PixelFlag, flags_to_mask

# The JWST data-quality values (jwst.datamodels.dqflags) for the kinds that
# mean the same thing there.
JWST_VALUES = {
    "DO_NOT_USE": 1,
    "SATURATED": 2,
    "TRANSIENT_HOT": 4,  # JWST JUMP_DET
    "DEAD": 1024,
    "HOT": 2048,
    "WARM": 4096,
    "LOW_RESPONSE": 8192,  # JWST LOW_QE
}


@pytest.mark.parametrize(("name", "value"), sorted(JWST_VALUES.items()))
def test_jwst_compatible_values(name, value):
    assert int(PixelFlag[name]) == value


def test_every_flag_is_a_distinct_single_bit_that_fits_in_uint16():
    values = [int(flag) for flag in PixelFlag]
    assert len(values) == len(set(values))
    for value in values:
        assert value > 0
        assert value & (value - 1) == 0, f"{value} is not a single bit"
        assert value <= np.iinfo(np.uint16).max
    # OR-ing every flag into a uint16 loses nothing.
    combined = np.uint16(0)
    for value in values:
        combined |= np.uint16(value)
    assert int(combined) == sum(values)


# Kinds that are not reasons to mask a pixel.
NOT_BAD = (PixelFlag.WARM, PixelFlag.HIGH_RESPONSE, PixelFlag.REPLACED)


def test_warm_high_response_and_replaced_are_not_bad_but_every_other_kind_is():
    for flag in NOT_BAD:
        assert not flag & BAD_PIXEL_FLAGS, flag.name
    for flag in PixelFlag:
        if flag not in NOT_BAD:
            assert flag & BAD_PIXEL_FLAGS, flag.name


def test_high_response_uses_a_bit_free_in_jwst_single_frames():
    # JWST's 8 is DROPOUT, a lost read of a ramp: never in a single frame.
    assert int(PixelFlag.HIGH_RESPONSE) == 8


def test_flag_name_map_has_every_flag_by_name():
    for flag in PixelFlag:
        assert getattr(FLAG_NAME_MAP, flag.name) == int(flag)


@pytest.fixture(scope="module")
def all_combinations():
    """Every flag alone, some combinations, zero, and random planes."""
    rng = np.random.default_rng(17)
    bits = np.array([int(flag) for flag in PixelFlag], dtype=np.uint16)
    picks = rng.random((40, 30, bits.size)) < 0.15
    plane = (picks * bits).sum(axis=2).astype(np.uint16)
    plane[0, : bits.size] = bits
    plane[1, 0] = 0
    return plane


def test_bitfield_to_boolean_mask_decodes_flags_by_name(all_combinations):
    flags = all_combinations
    selected = bitfield_to_boolean_mask(
        flags, ignore_flags="~HOT+DEAD", flag_name_map=FLAG_NAME_MAP
    )
    direct = (flags & (2048 | 1024)) != 0
    np.testing.assert_array_equal(selected, direct)
    assert selected.any()
    assert not selected.all()

    ignoring_warm = bitfield_to_boolean_mask(
        flags, ignore_flags="WARM,REPLACED", flag_name_map=FLAG_NAME_MAP
    )
    np.testing.assert_array_equal(ignoring_warm, (flags & ~np.uint16(4096 | 128)) != 0)


def test_flags_to_mask_uses_bad_pixel_flags_by_default(all_combinations):
    flags = all_combinations
    expected = (flags & int(BAD_PIXEL_FLAGS)) != 0
    mask = flags_to_mask(flags)
    assert mask.dtype == bool
    assert mask.shape == flags.shape
    np.testing.assert_array_equal(mask, expected)
    # The same as astropy's decoding with the kinds that are not bad ignored.
    np.testing.assert_array_equal(
        mask,
        bitfield_to_boolean_mask(
            flags,
            ignore_flags="WARM,HIGH_RESPONSE,REPLACED",
            flag_name_map=FLAG_NAME_MAP,
        ),
    )


@pytest.mark.parametrize("flag", list(PixelFlag), ids=lambda f: f.name)
def test_flags_to_mask_single_flags(flag):
    flags = np.array(
        [[0, int(flag)], [int(PixelFlag.WARM), int(flag | PixelFlag.WARM)]]
    )
    mask = flags_to_mask(flags.astype(np.uint16))
    bad = flag not in NOT_BAD
    np.testing.assert_array_equal(mask, [[False, bad], [False, bad]])


def test_flags_to_mask_with_chosen_bits():
    flags = np.array(
        [0, PixelFlag.HOT, PixelFlag.WARM, PixelFlag.HOT | PixelFlag.DEAD, 128],
        dtype=np.uint16,
    )
    mask = flags_to_mask(flags, PixelFlag.WARM | PixelFlag.REPLACED)
    np.testing.assert_array_equal(mask, [False, False, True, False, True])
    np.testing.assert_array_equal(
        flags_to_mask(flags, PixelFlag.DEAD), [False, False, False, True, False]
    )
