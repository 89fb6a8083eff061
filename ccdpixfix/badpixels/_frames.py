"""Loading the dark and flat frames given to make_bad_pixel_map."""

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ..io.fits import check_compressed_stream
from ..noise.core import robust_sigma
from ..utils.ccd import saturation_from

__all__ = [
    "Frame",
    "check_darks",
    "check_flats",
    "exposure_time",
    "is_bias",
    "load_frames",
    "saturation_of",
]

# Pixel values beyond this are missing data, like masked ones: no detector
# counts to 1e30; such a value is a fill value or a broken pixel.
_LARGEST_VALUE = 1e30
_EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE", "EXP_TIME", "ITIME", "TEXP", "EXPOSURE_TIME")


@dataclass
class Frame:
    """One input frame: its pixels, header and a label.

    Integer frames of up to 16 bits without a mask keep their integers (in
    native byte order); other frames become float32, or float64 for float64
    data, with NaN where masked or absurd (`_float_copy`).
    """

    data: np.ndarray
    header: object
    label: str
    integer: bool
    dtype: np.dtype

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
            # A compressed frame is read from its stream, checked whole once
            # (astropy stops before the checksum: a damaged byte gave wrong
            # pixels), not decompressed again for its unit and its data.
            content = check_compressed_stream(path, keep=True)
            if content is None:
                return CCDData.read(path, unit=_unit_of(path)), os.path.basename(path)
            # (astropy closes a file object it was given: one for each read)
            raw = content.getvalue()
            unit = _unit_of(io.BytesIO(raw))
            frame = CCDData.read(io.BytesIO(raw), unit=unit, format="fits")
            return frame, os.path.basename(path)
        except Exception as error:
            raise ValueError(f"{name}[{index}]: cannot read {path}: {error}") from None
    raise TypeError(
        f"{name}[{index}] must be a CCDData or a file path, not {type(item).__name__}"
    )


def _unit_of(path):
    from astropy.io import fits

    with fits.open(path) as hdulist:
        for hdu in hdulist:
            # The header first: reading the data to find the unit read every
            # frame twice.
            if hdu.header.get("NAXIS", 0) or hdu.data is not None:
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
        if data.dtype.kind in "iu" and data.dtype.itemsize <= 2 and ccd.mask is None:
            # Raw frames are used as they are: no copy, every value valid.
            values = data.astype(data.dtype.newbyteorder("="), copy=False)
        else:
            values = _float_copy(data, ccd.mask)
            if not np.isfinite(values).any():
                raise ValueError(f"{label} holds no finite pixel")
        loaded.append(
            Frame(values, ccd.meta, label, data.dtype.kind in "iu", data.dtype)
        )
    shapes = {frame.data.shape for frame in loaded}
    if len(shapes) > 1:
        listing = ", ".join(f"{f.label} {f.data.shape}" for f in loaded)
        raise ValueError(
            f"{name} have different shapes ({listing}); use frames of one detector "
            "and binning"
        )
    return loaded


_NOT_DARK = ("light", "object", "science", "flat", "sky")
_BIAS_TYPES = ("bias", "zero")
_NOT_FLAT = ("dark", "bias", "zero", "light", "object", "science")
# A flat whose median reaches this fraction of the saturation level, or with
# more than this fraction of its pixels at the saturation value, is saturated.
_SATURATED_MEDIAN = 0.9
_SATURATED_FRACTION = 0.01


def _image_type(frame):
    try:
        return str(frame.header["IMAGETYP"]).strip().lower()
    except (KeyError, TypeError):
        return ""


def _warn(message):
    warnings.warn(message, AstropyUserWarning, stacklevel=3)


def _warn_if_not(frame, expected, other_kinds):
    """Warn when the frame's IMAGETYP names another kind of frame."""
    kind = _image_type(frame)
    if any(word in kind for word in other_kinds):
        _warn(
            f"{frame.label} has IMAGETYP={kind!r}: not a {expected}? It is used "
            "as one; remove it if it is not"
        )


def is_bias(frame):
    """Whether a frame is a bias: IMAGETYP bias or zero, or zero seconds long."""
    kind = _image_type(frame)
    return any(word in kind for word in _BIAS_TYPES) or frame.exptime == 0


def _float_copy(data, mask):
    """Frame data as floats with NaN where masked, infinite or absurd.

    float32 (enough for any detector's counts), float64 for float64 data.
    Values beyond the range of float32 are missing data, like masked ones.
    """
    wide = data.dtype.kind == "f" and data.dtype.itemsize == 8
    values = data.astype(np.float64 if wide else np.float32)
    if mask is not None:
        values[np.asarray(mask, bool)] = np.nan
    with np.errstate(invalid="ignore"):
        values[~(np.abs(values) <= _LARGEST_VALUE)] = np.nan
    return values


def _sample(data, size=50_000):
    """About ``size`` pixels of an image on a regular stride, as float64."""
    flat = np.asarray(data).ravel()
    return flat[:: max(1, flat.size // size)].astype(np.float64)


def check_darks(frames, saturation=None):
    """Warn, naming the file, about darks that do not look like darks.

    By IMAGETYP (a light or flat frame among the darks), by level (among
    darks of one exposure time, a median far from the others': a light leak
    or a frame taken with the shutter open), and by saturation (a median at
    `_SATURATED_MEDIAN` of the ``saturation`` level: no pixel of it can be
    measured, and a map of such darks alone finds nothing).
    """
    for frame in frames:
        _warn_if_not(frame, "dark", _NOT_DARK)
        if saturation is not None:
            finite = frame.data[np.isfinite(frame.data)]
            if finite.size and np.median(finite) >= _SATURATED_MEDIAN * saturation:
                at_limit = np.count_nonzero(finite >= saturation) / finite.size
                _warn(
                    f"{frame.label} is saturated ({at_limit:.1%} of its pixels at "
                    f"{saturation:g}): not a dark? Its pixels cannot be measured"
                )
    biases = [frame.label for frame in frames if is_bias(frame)]
    if biases:
        use = (
            "the bias level only (the zero point of the dark-rate fit)"
            if len(biases) < len(frames)
            else "the bias level only: no dark current is measured"
        )
        _warn(
            f"biases given as darks (EXPTIME 0 or IMAGETYP bias): "
            f"{', '.join(biases)}; used for {use}, never to call a pixel HOT or WARM"
        )
    groups = {}
    for frame in frames:
        groups.setdefault(frame.exptime, []).append(frame)
    for group in groups.values():
        if len(group) < 3:
            continue
        # A regular sample of the pixels tells levels and noise to 0.2 %.
        samples = [_sample(f.data) for f in group]
        medians = np.array([np.nanmedian(sample) for sample in samples])
        reference = np.nanmedian(medians)
        noise = np.nanmedian(
            [robust_sigma(sample - samples[0]) / np.sqrt(2) for sample in samples[1:]]
        )
        for frame, level in zip(group, medians, strict=True):
            if abs(level - reference) > max(10 * noise, 0.02 * abs(reference)):
                _warn(
                    f"{frame.label}: median level {level:.6g} is far from the "
                    f"other darks' {reference:.6g}: light leak or not a dark?"
                )


def check_flats(frames, saturation):
    """Flats worth using: warn about odd types, leave saturated ones out.

    Raises
    ------
    ValueError
        If every flat is saturated.
    """
    usable = []
    for frame in frames:
        _warn_if_not(frame, "flat", _NOT_FLAT)
        if saturation is not None:
            finite = frame.data[np.isfinite(frame.data)]
            at_limit = np.count_nonzero(finite >= saturation) / max(finite.size, 1)
            if (
                np.median(finite) >= _SATURATED_MEDIAN * saturation
                or at_limit > _SATURATED_FRACTION
            ):
                _warn(
                    f"{frame.label} is saturated ({at_limit:.1%} of its pixels at "
                    f"{saturation:g}); left out of the map"
                )
                continue
        usable.append(frame)
    if frames and not usable:
        raise ValueError(
            "every flat is saturated; take flats at about half the full well"
        )
    return usable


def saturation_of(frames):
    """Saturation level of raw frames: SATURATE-like keywords or the type's max."""
    for frame in frames:
        level = saturation_from(frame.header)
        if level is not None:
            return level
    return saturation_from({}, frames[0].dtype) if frames else None
