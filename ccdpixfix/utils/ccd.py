"""Validation of step inputs and construction of step outputs.

Only the public functions of ccdpixfix know about `~astropy.nddata.CCDData`;
these helpers do the checks and copies every step needs, in one place.
"""

import contextlib
import copy
import warnings

import numpy as np
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning

from ..flags import BAD_PIXEL_FLAGS, PixelFlag, as_flags, flags_to_mask

__all__ = [
    "check_ccd",
    "check_positive",
    "input_flags",
    "new_ccd",
    "output_dtype",
    "quiet_numerics",
    "saturation_from",
    "uncertainty_sigma",
]


@contextlib.contextmanager
def quiet_numerics():
    """Silence numpy's floating-point and empty-slice warnings in a step.

    The steps handle NaN and infinite intermediate values themselves (a
    pixel with no good neighbour, an absurd value); the warnings numpy
    raises on the way would only alarm users about handled cases.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        for message in (
            "All-NaN slice encountered",
            "Mean of empty slice",
            "Degrees of freedom <= 0",
            "invalid value encountered",
            "overflow encountered",
            "divide by zero encountered",
        ):
            warnings.filterwarnings("ignore", message=message, category=RuntimeWarning)
        yield


def check_ccd(ccd, name="ccd"):
    """Raise a clear error unless ``ccd`` is a usable 2-D `CCDData`."""
    if not isinstance(ccd, CCDData):
        raise TypeError(
            f"{name} must be an astropy.nddata.CCDData, not {type(ccd).__name__}; "
            "wrap an array with CCDData(data, unit='adu')"
        )
    data = np.asarray(ccd.data)
    if data.ndim != 2:
        raise ValueError(
            f"{name} must hold a 2-D image, got data of shape {data.shape}; "
            "pass one plane of a cube at a time (a (3, ny, nx) colour cube is "
            "taken plane by plane)"
        )
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name} data must be numeric, got dtype {data.dtype}")
    if data.dtype.kind == "f" and not np.isfinite(data).any():
        raise ValueError(
            f"{name} holds no finite pixel (all NaN or inf); nothing can be measured"
        )
    flags = getattr(ccd, "flags", None)
    if flags is not None and np.shape(flags) != data.shape:
        raise ValueError(
            f"{name}.flags shape {np.shape(flags)} does not match data shape "
            f"{data.shape}"
        )


# DATAMAX is left out: in most headers it is the largest value present.
_SATURATION_KEYS = ("SATURATE", "SATLEVEL", "SATURATION", "MAXLIN")


def saturation_from(header, dtype=None):
    """Saturation level from the header's keywords, else the integer type's max.

    Parameters
    ----------
    header : dict-like
        ``SATURATE``, ``SATLEVEL``, ``SATURATION`` or ``MAXLIN``.
    dtype : numpy dtype, optional
        The raw data's type: for integers, the largest value it holds.

    Returns
    -------
    float or None
    """
    for key in _SATURATION_KEYS:
        if key not in header:
            continue
        try:
            value = float(header[key])
        except (TypeError, ValueError):
            value = np.nan  # 'none', 'unknown': no level
        if np.isfinite(value) and value > 0:
            return value
        # Zero or less would call every pixel saturated and mask the frame.
        warnings.warn(
            f"{key} = {header[key]!r} in the header is not a saturation level; ignored",
            AstropyUserWarning,
            stacklevel=2,
        )
    if dtype is not None and np.dtype(dtype).kind in "iu":
        return float(np.iinfo(dtype).max)
    return None


def check_positive(**values):
    """Raise a ValueError naming each argument that is not a positive number."""
    for name, value in values.items():
        try:
            valid = np.isfinite(float(value)) and float(value) > 0
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def output_dtype(data):
    """Float type of a step's output: integers become float32, floats stay."""
    data = np.asarray(data)
    return data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)


def input_flags(ccd):
    """The flags a frame already carries, as a new ``uint16`` array.

    Pixels masked in ``ccd.mask`` without any flag saying why, and pixels
    that are not finite, get ``DO_NOT_USE``, so they are never used as good
    data by later steps.
    """
    data = np.asarray(ccd.data)
    flags = getattr(ccd, "flags", None)
    flags = (
        np.zeros(data.shape, np.uint16)
        if flags is None
        else as_flags(flags, "ccd.flags")  # always a new array
    )
    if ccd.mask is not None:
        unexplained = ~flags_to_mask(flags, BAD_PIXEL_FLAGS)
        flags[np.asarray(ccd.mask, dtype=bool) & unexplained] |= np.uint16(
            PixelFlag.DO_NOT_USE
        )
    if data.dtype.kind == "f":
        flags[~np.isfinite(data)] |= np.uint16(PixelFlag.DO_NOT_USE)
    return flags


def uncertainty_sigma(ccd, *, native=False):
    """Standard deviation per pixel from ``ccd.uncertainty``, or None.

    float64, or with ``native`` the plane's own float type (at least
    float32, native byte order), which saves a copy of a float32 plane.
    """
    unc = ccd.uncertainty
    if unc is None:
        return None
    if np.shape(unc.array) != np.shape(ccd.data):
        raise ValueError(
            f"uncertainty shape {np.shape(unc.array)} does not match data shape "
            f"{np.shape(ccd.data)}"
        )
    return _sigma_of(unc, native)


def _sigma_of(unc, native):
    """Standard deviation per pixel from an uncertainty object."""
    values = np.asarray(unc.array)
    dtype = np.result_type(values.dtype, np.float32) if native else np.float64
    values = values.astype(np.dtype(dtype).newbyteorder("="), copy=False)
    if isinstance(unc, StdDevUncertainty):
        return values
    if isinstance(unc, VarianceUncertainty):
        return np.sqrt(np.clip(values, 0, None))
    if isinstance(unc, InverseVariance):
        with np.errstate(divide="ignore"):
            return np.where(values > 0, 1 / np.sqrt(np.abs(values)), np.inf)
    raise TypeError(
        f"uncertainty of type {type(unc).__name__} is not supported; use "
        "StdDevUncertainty, VarianceUncertainty or InverseVariance"
    )


def _uncertainty_like(template, sigma):
    """An uncertainty of the same type as ``template`` holding ``sigma``.

    Squares are taken in float64 (a float16 or float32 sigma would overflow)
    and stored in the template's float type, at least float32.
    """
    dtype = np.float32
    if template is not None:
        dtype = np.result_type(np.asarray(template.array).dtype, np.float32)
    # copy=False: the arrays are new; an uncertainty copies its array otherwise
    if template is None or isinstance(template, StdDevUncertainty):
        return StdDevUncertainty(
            np.asarray(sigma).astype(dtype, copy=False), copy=False
        )
    # Pixels whose sigma is the template's own keep the template's value:
    # squaring a square root is off by a rounding.
    own = _sigma_of(template, native=True) == sigma
    sigma = np.asarray(sigma, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if isinstance(template, VarianceUncertainty):
            values = (sigma**2).astype(dtype)
        else:
            values = np.where(sigma > 0, 1 / sigma**2, 0).astype(dtype)
    values[own] = np.asarray(template.array)[own]
    return type(template)(values, copy=False)


def _copy_meta(meta):
    """A copy of a header that shares nothing with it."""
    if isinstance(meta, fits.Header):
        return meta.copy()
    return copy.deepcopy(meta)


def part_of(ccd, select, flags=None):
    """A frame made of a part of ``ccd``: a colour's sub-plane, a cube's plane.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The whole frame.
    select : callable
        Takes each plane (data, flags, mask, uncertainty array) and returns
        its part.
    flags : array, optional
        Flags to take the part of instead of ``ccd.flags``.

    Returns
    -------
    `~astropy.nddata.CCDData`
        The parts; the header is shared with ``ccd`` (steps copy it for
        their output), the uncertainty is a new object of the same type.
    """
    flags = getattr(ccd, "flags", None) if flags is None else flags
    uncertainty = None
    if ccd.uncertainty is not None:
        uncertainty = type(ccd.uncertainty)(select(np.asarray(ccd.uncertainty.array)))
    return CCDData(
        select(np.asarray(ccd.data)),
        unit=ccd.unit,
        meta=ccd.meta,
        flags=None if flags is None else select(np.asarray(flags)),
        mask=None if ccd.mask is None else select(np.asarray(ccd.mask)),
        uncertainty=uncertainty,
    )


def new_ccd(ccd, *, data=None, flags=None, sigma=None):
    """A new `CCDData` built from ``ccd`` without touching it.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The step's input.
    data, flags : array, optional
        Replacements for the data and flag planes (copied from ``ccd`` if
        not given). Integer data becomes float32.
    sigma : array, optional
        Standard deviation per pixel for the new uncertainty plane, stored in
        the input uncertainty's own type.

    Returns
    -------
    `~astropy.nddata.CCDData`
        ``mask`` is derived from ``flags`` (`BAD_PIXEL_FLAGS`), the header is a
        copy (every card kept in order), the WCS a deep copy.
    """
    if data is None:
        data = np.array(ccd.data, dtype=output_dtype(ccd.data), copy=True)
    if flags is None:
        flags = input_flags(ccd)
    if sigma is not None:
        uncertainty = _uncertainty_like(ccd.uncertainty, sigma)
    elif ccd.uncertainty is not None:
        uncertainty = copy.deepcopy(ccd.uncertainty)
    else:
        uncertainty = None
    out = CCDData(
        data,
        unit=ccd.unit,
        meta=_copy_meta(ccd.meta),
        wcs=copy.deepcopy(ccd.wcs),
        mask=flags_to_mask(flags),
        flags=flags,
        uncertainty=uncertainty,
        psf=None if ccd.psf is None else np.array(ccd.psf, copy=True),
    )
    return out
