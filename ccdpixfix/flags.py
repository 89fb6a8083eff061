"""Bit flags for bad pixels: one bit per kind of defect.

The values follow the JWST data-quality convention wherever it has the same
meaning (``DO_NOT_USE=1``, ``SATURATED=2``, ``JUMP_DET=4`` for cosmic rays,
``DEAD=1024``, ``HOT=2048``, ``WARM=4096``, ``LOW_QE=8192``), so the ``FLAGS``
plane reads naturally to users of that pipeline. Kinds JWST has no bit for use
bits whose JWST meaning (dropout, outlier, persistence, A/D floor, charge loss)
cannot occur in what ccdpixfix writes.
"""

import enum

import numpy as np
from astropy.nddata import bitmask

__all__ = [
    "BAD_PIXEL_FLAGS",
    "FLAG_NAME_MAP",
    "PixelFlag",
    "as_flags",
    "flags_to_mask",
]


class PixelFlag(enum.IntFlag):
    """Kinds of bad pixel, one bit each; the values fit in ``uint16``.

    Examples
    --------
    >>> from ccdpixfix import PixelFlag
    >>> int(PixelFlag.HOT | PixelFlag.REPLACED)
    2176
    >>> PixelFlag(2048).name
    'HOT'
    """

    #: Do not use this pixel for another reason (e.g. the input's own mask).
    DO_NOT_USE = 1
    #: Saturated by light in this exposure (JWST ``SATURATED``).
    SATURATED = 2
    #: Cosmic ray or a pixel hot for this exposure only (JWST ``JUMP_DET``).
    TRANSIENT_HOT = 4
    #: Response well above the rest in flats (JWST's 8, ``DROPOUT``, marks a
    #: lost read of an up-the-ramp exposure, which single frames cannot have).
    HIGH_RESPONSE = 8
    #: Far below its neighbours in this exposure only, having lost most of
    #: its light (a readout glitch, a dropout to the bias).
    TRANSIENT_COLD = 16
    #: Reads the same value whatever the exposure time or light.
    STUCK = 32
    #: Part of a hot or bad column, or of a column segment.
    BAD_COLUMN = 64
    #: The pixel's value was replaced by an estimate from good neighbours.
    REPLACED = 128
    #: Response near zero in flats (JWST ``DEAD``).
    DEAD = 1024
    #: Dark current far above the rest (JWST ``HOT``).
    HOT = 2048
    #: Dark current moderately above the rest (JWST ``WARM``).
    WARM = 4096
    #: Response well below the rest in flats (JWST ``LOW_QE``).
    LOW_RESPONSE = 8192


#: Flags whose pixels are masked (``CCDData.mask``): every kind except
#: ``WARM`` (a warm pixel is corrected well by dark subtraction, masking it
#: throws away good data), ``HIGH_RESPONSE`` (a pixel that collects more light
#: than its neighbours is divided back by the flat, and its signal-to-noise is
#: if anything better) and ``REPLACED`` (which always comes together with the
#: flag that caused the replacement).
BAD_PIXEL_FLAGS = PixelFlag(
    sum(
        int(f)
        for f in PixelFlag
        if f not in (PixelFlag.WARM, PixelFlag.HIGH_RESPONSE, PixelFlag.REPLACED)
    )
)

#: Flag-name map for `astropy.nddata.bitmask`, so that flags decode by name,
#: as in ``bitfield_to_boolean_mask(flags, ignore_flags="~HOT+DEAD",
#: flag_name_map=FLAG_NAME_MAP)``.
FLAG_NAME_MAP = bitmask.extend_bit_flag_map(
    "PixelFlagMap", **{f.name: int(f) for f in PixelFlag}
)


def flags_to_mask(flags: np.ndarray, bits: int = BAD_PIXEL_FLAGS) -> np.ndarray:
    """Boolean mask of the pixels that carry any of ``bits``.

    Parameters
    ----------
    flags : array of int
        A `PixelFlag` plane.
    bits : int, optional
        The flags that mean "do not use"; by default `BAD_PIXEL_FLAGS`.

    Returns
    -------
    mask : `numpy.ndarray` of bool
        True where ``flags & bits`` is not zero.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix import PixelFlag, flags_to_mask
    >>> flags_to_mask(np.array([0, PixelFlag.HOT, PixelFlag.WARM], dtype=np.uint16))
    array([False,  True, False])
    """
    return (np.asarray(flags) & np.uint16(int(bits))) != 0


def as_flags(values, what="flags"):
    """``values`` as a new ``uint16`` flag plane, or a ValueError saying why not.

    Flags come from files and from users: a float plane is taken when every
    value is a whole number from 0 to 65535, so that -1 does not become 65535
    (every defect), 70000 does not wrap to 4464 and NaN does not become 0.

    Parameters
    ----------
    values : array-like
        The flag values.
    what : str, optional
        What they are, for the message.

    Returns
    -------
    `numpy.ndarray` of ``uint16``

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.flags import as_flags
    >>> as_flags(np.array([0.0, 2048.0]))
    array([   0, 2048], dtype=uint16)
    >>> as_flags(np.array([-1.0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: flags must be whole numbers from 0 to 65535 ... found -1 at (0,)
    """
    values = np.asarray(values)
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    if values.dtype.kind not in "iuf":
        raise ValueError(
            f"{what} must be integers (PixelFlag bits), not {values.dtype}"
        )
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        return values.astype(np.uint16)
    with np.errstate(invalid="ignore"):
        bad = ~((values >= 0) & (values <= 0xFFFF))
        if values.dtype.kind == "f":
            bad |= values != np.round(values)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{what} must be whole numbers from 0 to 65535 (PixelFlag bits); found "
            f"{values[where]:g} at {where}"
        )
    return values.astype(np.uint16)
