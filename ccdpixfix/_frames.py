"""Loading the dark and flat frames given to make_bad_pixel_map."""

import os
from dataclasses import dataclass

import numpy as np
from astropy.nddata import CCDData

__all__ = ["Frame", "exposure_time", "load_frames"]

_EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE", "EXP_TIME", "ITIME", "TEXP", "EXPOSURE_TIME")


@dataclass
class Frame:
    """One input frame: its pixels as float64, header and a label."""

    data: np.ndarray
    header: object
    label: str
    integer: bool

    @property
    def exptime(self):
        return exposure_time(self.header)


def exposure_time(header):
    """Exposure time in seconds from the usual keywords, or None."""
    for key in _EXPOSURE_KEYS:
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value) and value >= 0:
            return value
    return None


def _as_list(frames):
    if isinstance(frames, (CCDData, str, os.PathLike)):
        return [frames]
    if isinstance(frames, np.ndarray):
        raise TypeError(
            "give frames as CCDData objects or file paths, not bare arrays; wrap an "
            "array with CCDData(array, unit='adu', meta={'EXPTIME': seconds})"
        )
    try:
        return list(frames)
    except TypeError:
        raise TypeError(
            f"expected a CCDData, a file path or a list of them, got "
            f"{type(frames).__name__}"
        ) from None


def _read(item, name, index):
    if isinstance(item, CCDData):
        return item, f"{name}[{index}]"
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not os.path.exists(path):
            raise ValueError(f"{name}[{index}]: file {path} does not exist")
        try:
            return CCDData.read(path, unit=_unit_of(path)), os.path.basename(path)
        except Exception as error:
            raise ValueError(f"{name}[{index}]: cannot read {path}: {error}") from None
    raise TypeError(
        f"{name}[{index}] must be a CCDData or a file path, not {type(item).__name__}"
    )


def _unit_of(path):
    from astropy.io import fits

    with fits.open(path) as hdulist:
        for hdu in hdulist:
            if hdu.data is not None or hdu.header.get("NAXIS", 0):
                return hdu.header.get("BUNIT", "adu") or "adu"
    return "adu"


def load_frames(frames, name):
    """Frames as a list of `Frame`, all 2-D and of one shape.

    Raises
    ------
    TypeError
        For items that are neither `CCDData` nor paths.
    ValueError
        For an empty list, unreadable files, non-2-D data, data without any
        finite pixel, or frames of different shapes (each named).
    """
    items = _as_list(frames)
    if not items:
        raise ValueError(f"{name} is empty: give at least one frame")
    loaded = []
    for index, item in enumerate(items):
        ccd, label = _read(item, name, index)
        data = np.asarray(ccd.data)
        if data.ndim != 2:
            raise ValueError(f"{label} is not a 2-D image (shape {data.shape})")
        values = data.astype(np.float64)
        if ccd.mask is not None:
            values[np.asarray(ccd.mask, bool)] = np.nan
        if not np.isfinite(values).any():
            raise ValueError(f"{label} holds no finite pixel")
        loaded.append(Frame(values, ccd.meta, label, data.dtype.kind in "iu"))
    shapes = {frame.data.shape for frame in loaded}
    if len(shapes) > 1:
        listing = ", ".join(f"{f.label} {f.data.shape}" for f in loaded)
        raise ValueError(
            f"{name} have different shapes ({listing}); use frames of one detector "
            "and binning"
        )
    return loaded
