"""The bad-pixel map: persistent defects of one detector."""

import json
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyDeprecationWarning

from .._version import __version__
from ..colour.cfa import cfa_pattern, planes, sub_frame
from ..flags import BAD_PIXEL_FLAGS, PixelFlag, as_flags, flags_to_mask
from ..io.fits import open_checked, write_hdulist_atomic
from ..noise.core import robust_sigma
from ..utils.ccd import (
    check_ccd,
    input_flags,
    new_ccd,
    quiet_numerics,
    uncertainty_sigma,
)
from ..utils.provenance import record_step
from . import _frames
from ._mapbuild import build_map
from .options import MapOptions

__all__ = [
    "BadPixelMap",
    "FramePrediction",
    "flag_bad_pixels",
    "frame_state",
    "make_bad_pixel_map",
    "predict_frame",
]

_MAP_KINDS = (
    PixelFlag.HOT,
    PixelFlag.WARM,
    PixelFlag.BAD_COLUMN,
    PixelFlag.STUCK,
    PixelFlag.DEAD,
    PixelFlag.LOW_RESPONSE,
    PixelFlag.HIGH_RESPONSE,
)
_FORMAT_KEY = "CPFBPM"
# The measured planes: attribute, FITS extension, BUNIT, what it holds.
_PLANES = (
    ("dark_rate", "DARKRATE", "electron/s", "dark current above the smooth level"),
    ("dark_rate_error", "DARKERR", "electron/s", "uncertainty of DARKRATE"),
    ("response", "RESPONSE", "", "response relative to the neighbours (1 = typical)"),
)


class BadPixelMap:
    """The persistent defects of one detector.

    Parameters
    ----------
    flags : 2-D array of int
        `PixelFlag` bits per pixel; stored as ``uint16``.
    meta : dict, optional
        How the map was made (inputs, thresholds, counts, version, and in
        ``meta["notes"]`` what the frames could not measure). Must be
        JSON-serialisable to be written.
    dark_rate : 2-D array of float, optional
        Dark current of each pixel above the detector's smooth level, in
        e-/s (what makes a pixel ``HOT`` or ``WARM``); None when the darks
        gave no rate (no exposure time, or biases only).
    dark_rate_error : 2-D array of float, optional
        Its uncertainty (e-/s): the pixel-to-pixel scatter of the rates with
        the pixel's own shot noise.
    response : 2-D array of float, optional
        Response of each pixel relative to the level its neighbours predict
        in the flats (1 is typical, 0.9 is 10 % low); None without flats.

    The planes are kept as ``float32``; `fix_pixels` predicts raw frames
    from them (`predict_frame`).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix import BadPixelMap, PixelFlag
    >>> flags = np.zeros((4, 4), np.uint16)
    >>> flags[1, 2] = PixelFlag.HOT; flags[3, 0] = PixelFlag.WARM
    >>> bpm = BadPixelMap(flags)
    >>> int(bpm.mask.sum()), bpm.counts()["WARM"]
    (1, 1)
    """

    def __init__(
        self, flags, meta=None, *, dark_rate=None, dark_rate_error=None, response=None
    ):
        flags = np.asarray(flags)
        if flags.ndim != 2:
            raise ValueError(f"flags must be a 2-D array, got shape {flags.shape}")
        if flags.dtype.kind not in "iu":
            raise ValueError("flags must be integer PixelFlag bits that fit in uint16")
        self.flags = as_flags(flags)
        self.meta = dict(meta or {})
        given = {
            "dark_rate": dark_rate,
            "dark_rate_error": dark_rate_error,
            "response": response,
        }
        for name, plane in given.items():
            setattr(self, name, _plane(plane, name, self.flags.shape))

    @property
    def shape(self):
        """Shape of the detector (rows, columns)."""
        return self.flags.shape

    @property
    def mask(self):
        """True for pixels not to use: every defect except ``WARM``."""
        return flags_to_mask(self.flags, BAD_PIXEL_FLAGS)

    def counts(self):
        """Number of pixels carrying each kind of defect, by flag name."""
        return {
            kind.name: int(np.count_nonzero(self.flags & np.uint16(int(kind))))
            for kind in _MAP_KINDS
        }

    def summary(self):
        """A short table of the defects found, for people.

        Returns
        -------
        str
        """
        npix = self.flags.size
        lines = [
            f"Bad-pixel map {self.shape[1]} x {self.shape[0]} px",
            f"{'kind':<14}{'pixels':>9}{'per Mpx':>10}",
        ]
        for name, count in self.counts().items():
            lines.append(f"{name:<14}{count:>9d}{count / npix * 1e6:>10.1f}")
        masked = int(self.mask.sum())
        lines.append(f"{'masked':<14}{masked:>9d}{masked / npix * 1e6:>10.1f}")
        return "\n".join(lines)

    def __repr__(self):
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"<BadPixelMap {self.shape[1]}x{self.shape[0]}: {counts}>"

    def __eq__(self, other):
        if not isinstance(other, BadPixelMap):
            return NotImplemented
        return (
            np.array_equal(self.flags, other.flags)
            and self.meta == other.meta
            and all(
                _same_plane(getattr(self, name), getattr(other, name))
                for name, *_ in _PLANES
            )
        )

    def _part(self, select):
        """The map of a part of the detector (a slice of every plane)."""
        planes = {name: getattr(self, name) for name, *_ in _PLANES}
        return BadPixelMap(
            self.flags[select],
            self.meta,
            **{
                name: None if plane is None else plane[select]
                for name, plane in planes.items()
            },
        )

    def write(self, path, *, overwrite=False, rules=None):
        """Write the map as a FITS file (atomically).

        The primary HDU holds the flags (``uint16``) with cards naming each
        bit and counting each kind; extension ``META`` holds ``meta`` as JSON;
        the measured planes follow as ``float32`` image extensions
        ``DARKRATE`` and ``DARKERR`` (e-/s) and ``RESPONSE`` (relative), each
        only when measured.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.

        ``rules`` (`ccdpixfix.io.OutputRules`), if given, takes the place of
        ``overwrite``: a command line protects its inputs with it.
        """
        header = fits.Header()
        header[_FORMAT_KEY] = (__version__, "ccdpixfix bad-pixel map")
        for flag in PixelFlag:
            header[f"HIERARCH FLAG {flag.name}"] = (int(flag), "PixelFlag bit value")
        for name, count in self.counts().items():
            header[f"HIERARCH COUNT {name}"] = (count, "pixels with this flag")
        primary = fits.PrimaryHDU(self.flags, header=header)
        text = json.dumps(self.meta, sort_keys=True)
        column = fits.Column(name="JSON", format=f"{max(len(text), 1)}A", array=[text])
        meta = fits.BinTableHDU.from_columns([column], name="META")
        hdus = [primary, meta]
        for name, extension, unit, comment in _PLANES:
            plane = getattr(self, name)
            if plane is None:
                continue
            hdu = fits.ImageHDU(plane, name=extension)
            hdu.header["BUNIT"] = (unit, comment)
            hdus.append(hdu)
        write_hdulist_atomic(
            fits.HDUList(hdus),
            path,
            overwrite=overwrite,
            checksum=True,
            rules=rules,
        )

    @classmethod
    def read(cls, path):
        """Read a map written by `write`.

        Raises
        ------
        ValueError
            If the file is not a ccdpixfix bad-pixel map or is damaged; the
            message names the file.
        """
        path = Path(path)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # A damaged byte in a compressed map gave wrong flags without
                # a word from astropy, which stops before the checksum.
                with open_checked(path) as hdulist:
                    bpm = cls._from_hdulist(hdulist, path)
            damaged = [
                str(w.message).strip().splitlines()[0]
                for w in caught
                if any(word in str(w.message) for word in ("truncated", "corrupt"))
            ]
            if damaged:
                raise ValueError(f"{path} is damaged ({damaged[0]})")
            return bpm
        except (OSError, TypeError, ValueError, KeyError, IndexError) as error:
            text = str(error)
            if str(path) in text:
                raise ValueError(text) from None
            raise ValueError(f"cannot read {path} as a bad-pixel map: {text}") from None

    @classmethod
    def _from_hdulist(cls, hdulist, path):
        if _FORMAT_KEY not in hdulist[0].header:
            raise ValueError(
                f"{path} is not a ccdpixfix bad-pixel map (no {_FORMAT_KEY} card); "
                "make one with make_bad_pixel_map or 'ccdpixfix bpm'"
            )
        data = hdulist[0].data
        if data is None or data.ndim != 2:
            raise ValueError(f"{path} holds no 2-D flag image")
        flags = as_flags(data, f"the flags of {path}")
        planes = {}
        # Maps written before the planes existed have none: they read as None.
        for name, extension, *_ in _PLANES:
            if extension in hdulist:
                planes[name] = _read_plane(hdulist[extension], path, flags.shape)
        return cls(flags, _read_meta(hdulist, path), **planes)


def _plane(values, name, shape):
    """A measured plane as float32 of the map's shape, or None."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != shape or values.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be a {shape[0]} x {shape[1]} array of numbers like the "
            f"flags, got {values.dtype} of shape {values.shape}"
        )
    return values.astype(np.float32)


def _same_plane(first, second):
    if first is None or second is None:
        return first is second
    return np.array_equal(first, second, equal_nan=True)


def _read_plane(hdu, path, shape):
    """A plane extension's data, checked against the flags' shape."""
    data = hdu.data
    if data is None or data.shape != shape or data.dtype.kind != "f":
        raise ValueError(
            f"{path}: extension {hdu.name} is not a float image of the flags' "
            f"shape {shape}"
        )
    return data


def _read_meta(hdulist, path):
    """The META extension's JSON, checked (an absent one gives ``{}``)."""
    if "META" not in hdulist:
        return {}
    meta = hdulist["META"]
    columns = getattr(meta, "columns", None)
    if columns is None or "JSON" not in columns.names:
        raise ValueError(f"{path}: META extension has no JSON column")
    if len(meta.data) != 1:
        raise ValueError(f"{path}: META extension has {len(meta.data)} rows, not 1")
    try:
        meta = json.loads(meta.data["JSON"][0])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: META holds invalid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: META holds no JSON object")
    return meta


def make_bad_pixel_map(
    darks,
    flats=None,
    *,
    threshold: float = MapOptions.threshold,
    hot_rate: float = MapOptions.hot_rate,
    warm_rate: float = MapOptions.warm_rate,
    dead_response: float = MapOptions.dead_response,
    low_response: float = MapOptions.low_response,
    high_response: float = MapOptions.high_response,
    column_threshold: float = MapOptions.column_threshold,
    gain: float | None = MapOptions.gain,
    cfa: str | None = None,
    significance: float | None = None,
    column_significance: float | None = None,
) -> BadPixelMap:
    """Find the persistent defects of a detector from its darks and flats.

    Parameters
    ----------
    darks : list of `~astropy.nddata.CCDData` or paths, or one master dark
        Raw darks (integers with the bias in them) or calibrated ones. Darks
        of one exposure time are combined with cosmic-ray rejection; with two
        or more exposure times a dark rate is fitted per pixel. One frame is
        taken as an already-combined master dark.
    flats : list of `~astropy.nddata.CCDData` or paths, or one master flat, optional
        Flats of any illumination; the large-scale illumination (vignetting)
        is divided out before looking for dead and low-response pixels.
    threshold : float, optional
        A pixel must stand out by this many sigma of the robust pixel-to-pixel
        noise of the combined dark (or flat) to be flagged at all. 5 gives
        well under one false flag per megapixel on Gaussian noise.
    hot_rate : float, optional
        Excess dark current (e-/s above the detector's typical level) from
        which a pixel is ``HOT``. 0.5 e-/s adds 150 e- to a 300 s exposure,
        many times the sky noise of a dark site in a good pixel.
    warm_rate : float, optional
        Excess dark current (e-/s) from which a pixel is ``WARM``. Warm pixels
        are not masked: dark subtraction removes their signal and they add
        only a little noise, so masking them would waste good data.
    dead_response : float, optional
        Response (fraction of the local typical response) below which a pixel
        is ``DEAD``.
    low_response : float, optional
        Response below which a pixel is ``LOW_RESPONSE`` (masked), if it is
        also ``threshold`` sigma below the typical response. 0.9: a pixel
        that loses more than a tenth of the light is a defect (dust on the
        sensor, a damaged gate); the many pixels a few per cent low are
        ordinary non-uniformity, which the flat field corrects and which the
        map's ``response`` plane lets `fix_pixels` predict in raw frames.
    high_response : float, optional
        Response above which a pixel is ``HIGH_RESPONSE`` (not masked: a flat
        divides it back, and it has more signal, not less), if it is also
        ``threshold`` sigma above the typical response. 1.1 mirrors
        ``low_response``.
    column_threshold : float, optional
        Threshold, in sigma of a 15-pixel running median along the column
        (inflated by the column-to-column scatter), for hot and bad columns
        and column segments.
    gain : float, optional
        e-/ADU, to express dark rates in e-/s; by default from the darks'
        GAIN or EGAIN keyword, else 1 with a warning.
    cfa : str, optional
        Bayer pattern of a colour camera (``"RGGB"``, ...): each colour of
        the mosaic is analysed on its own, so that flats of any colour
        balance find low-response pixels against same-colour neighbours.
        By default from the first dark's ``BAYERPAT``; ``"none"`` ignores
        the header. The map records the pattern (``meta["cfa"]``), and
        `fix_pixels` uses it.
    significance, column_significance : float, optional
        Deprecated names of ``threshold`` and ``column_threshold``.

    Returns
    -------
    BadPixelMap
        With ``meta`` recording inputs, parameters, noise, counts and, in
        ``meta["notes"]``, what the frames could not measure (e.g. the
        smallest dark rate the darks tell from noise); with the planes
        measured: ``dark_rate`` and ``dark_rate_error`` when the darks give
        a rate, ``response`` when there are flats.

    Warns
    -----
    AstropyUserWarning
        Naming the files: darks that look like lights or flats, biases given
        as darks (EXPTIME 0 or IMAGETYP bias; they serve as the bias level
        only), saturated flats, and no gain in the headers.

    Raises
    ------
    TypeError
        For inputs that are neither `~astropy.nddata.CCDData` nor paths.
    ValueError
        For empty inputs, frames of different shapes, unreadable files or
        flats of another shape than the darks.

    Examples
    --------
    >>> from ccdpixfix import make_bad_pixel_map
    >>> from ccdpixfix.datasets import SimulatedCamera
    >>> camera = SimulatedCamera((128, 128), seed=1)
    >>> darks = [camera.dark(300.0, seed=s) for s in range(3)]
    >>> bpm = make_bad_pixel_map(darks)
    >>> bool((bpm.flags[camera.truth["hot"]] & 2048).all())
    True
    """
    threshold, column_threshold = _renamed(
        threshold, column_threshold, significance, column_significance
    )
    options = MapOptions.from_keywords(
        threshold=threshold,
        hot_rate=hot_rate,
        warm_rate=warm_rate,
        dead_response=dead_response,
        low_response=low_response,
        high_response=high_response,
        column_threshold=column_threshold,
        gain=gain,
    ).build_keywords()
    with quiet_numerics():
        pattern, darks, flats = _colour_frames(darks, flats, cfa)
        if pattern is None:
            flags, meta, planes = build_map(darks, flats, **options)
        else:
            flags, meta, planes = _colour_map(darks, flats, pattern, options)
    bpm = BadPixelMap(flags, meta, **planes)
    bpm.meta["counts"] = bpm.counts()
    return bpm


def _renamed(threshold, column_threshold, significance, column_significance):
    """The thresholds, from their names before 0.2 where those are given.

    ``significance`` and ``column_significance`` were renamed ``threshold``
    and ``column_threshold``, as `flag_transients` and ccdproc's
    ``cosmicray_median`` (``thresh``) name an n-sigma cut; the old names
    still work, with a deprecation warning.
    """
    for old, new, value in (
        ("significance", "threshold", significance),
        ("column_significance", "column_threshold", column_significance),
    ):
        if value is None:
            continue
        warnings.warn(
            f"make_bad_pixel_map's {old} is now called {new}; {old} will be "
            "removed in a later version",
            AstropyDeprecationWarning,
            stacklevel=3,
        )
        if new == "threshold":
            threshold = value
        else:
            column_threshold = value
    return threshold, column_threshold


def _colour_frames(darks, flats, cfa):
    """The Bayer pattern of the darks, and the frames read if there is one."""
    if cfa is not None and cfa_pattern(None, cfa) is None:
        return None, darks, flats
    dark_items = _frames._as_list(darks)
    if not dark_items:
        return None, darks, flats  # build_map says what is wrong
    first, _ = _frames._read(dark_items[0], "darks", 0)
    pattern = cfa_pattern(first.meta, cfa)
    if pattern is None:
        return None, darks, flats
    flat_items = [] if flats is None else _frames._as_list(flats)
    darks = [_frames._read(item, "darks", i)[0] for i, item in enumerate(dark_items)]
    flats = [_frames._read(item, "flats", i)[0] for i, item in enumerate(flat_items)]
    return pattern, darks, flats or None


def _colour_map(darks, flats, pattern, options):
    """`build_map` on each same-colour sub-plane, put together."""
    shapes = {np.shape(frame.data) for frame in darks + (flats or [])}
    if len(shapes) > 1:
        raise ValueError(f"darks and flats differ in shape: {sorted(shapes)}")
    shape = shapes.pop()
    flags = np.zeros(shape, dtype=np.uint16)
    meta, colours, measured = None, {}, {}
    for name, plane in planes(shape, pattern):
        dy, dx = plane[0].start, plane[1].start
        plane_flags, plane_meta, plane_measured = build_map(
            [sub_frame(frame, dy, dx) for frame in darks],
            None if flats is None else [sub_frame(frame, dy, dx) for frame in flats],
            **options,
        )
        flags[plane] = plane_flags
        for key, values in plane_measured.items():
            if values is not None:
                measured.setdefault(key, np.full(shape, np.nan, np.float32))
                measured[key][plane] = values
        colours[name] = {
            key: plane_meta[key] for key in ("dark_noise", "response_noise", "notes")
        }
        if meta is None:
            meta = plane_meta
        else:
            meta["notes"] += [n for n in plane_meta["notes"] if n not in meta["notes"]]
    meta.update(cfa=pattern, colours=colours)
    return flags, meta, measured


# What a calibration step leaves in a header: ccdproc's keywords (short and
# long), IRAF ccdproc's, and MaxIm DL's CALSTAT letters.
_BIAS_DONE = ("SUBBIAS", "SUBTRACT_BIAS", "SUBOSCAN", "SUBTRACT_OVERSCAN", "ZEROCOR")
_DARK_DONE = ("SUBDARK", "SUBTRACT_DARK", "DARKCOR")
_FLAT_DONE = ("FLATCOR", "FLAT_CORRECT")
# A dark excess is predicted only where the map measured it at this many
# sigma: subtracting the map's noise everywhere would add it to the frame.
_DARK_PREDICTED_SIGMA = 3.0
# A response is predicted only where it differs from 1 by this many sigma of
# the flats' measurement noise (``meta["response_pixel_noise"]``).
_RESPONSE_PREDICTED_SIGMA = 3.0
# The response is divided out of a pixel only where that changes it by more
# than this many sigma of the frame's noise: a smaller difference cannot
# make a transient, and changing the pixels of a faint sky by a fraction of
# their noise would only move the search's borderline cases.
_RESPONSE_SHOWS_SIGMA = 1.0
# Responses below this are DEAD pixels (masked): nothing to predict there.
_SMALLEST_RESPONSE = 0.05
# A WARM pixel stands out of a raw frame, for `flag_bad_pixels`, when its
# predicted dark signal exceeds this many sigma of the frame's noise: the
# default threshold of `flag_transients`, which would otherwise name it.
_WARM_STANDS_OUT = 5.0


def _header_has(meta, keys):
    names = {str(key).upper() for key in (meta or {})}
    return any(key in names for key in keys)


def _calstat(meta):
    try:
        return str((meta or {})["CALSTAT"]).upper()
    except (KeyError, TypeError):
        return ""


def check_raw(raw):
    """A ValueError unless ``raw`` is None, True or False."""
    if raw is not None and not isinstance(raw, (bool, np.bool_)):
        raise ValueError(
            f"raw must be True (raw frame), False (calibrated) or None (from "
            f"the frame), got {raw!r}"
        )


def frame_state(ccd, raw=None):
    """What a frame still holds that calibration would remove.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The frame.
    raw : bool or None, optional
        True: the frame is raw (bias, dark current and the pixels' response
        all in it). False: it is calibrated (today's behaviour: nothing is
        predicted). None (default): from the frame. Calibration keywords
        decide when there are any (ccdproc's ``SUBBIAS``, ``SUBDARK``,
        ``FLATCOR`` or their long names, IRAF's ``ZEROCOR``, ``DARKCOR``,
        ``FLATCOR``, MaxIm DL's ``CALSTAT``): each step recorded is done, the
        others are not. Without any, integer data are raw and floating-point
        data calibrated, since an unmarked float frame is more often the
        output of some calibration than a raw frame.

    Returns
    -------
    dict
        ``bias``, ``dark``, ``response``: True for what is still in the frame.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from ccdpixfix.badpixels import frame_state
    >>> frame_state(CCDData(np.zeros((2, 2), np.uint16), unit="adu"))
    {'bias': True, 'dark': True, 'response': True}
    >>> frame = CCDData(np.zeros((2, 2)), unit="adu", meta={"SUBDARK": "yes"})
    >>> frame_state(frame)
    {'bias': True, 'dark': False, 'response': True}
    """
    check_raw(raw)
    if raw is not None:
        return {"bias": bool(raw), "dark": bool(raw), "response": bool(raw)}
    meta, calstat = ccd.meta, _calstat(ccd.meta)
    marked = calstat or _header_has(meta, _BIAS_DONE + _DARK_DONE + _FLAT_DONE)
    if not marked:
        # The type of a Dask array is known without computing it.
        data = ccd.data
        dtype = data.dtype if hasattr(data, "dtype") else np.asarray(data).dtype
        integer = dtype.kind in "iu"
        return {"bias": integer, "dark": integer, "response": integer}
    return {
        "bias": "B" not in calstat and not _header_has(meta, _BIAS_DONE),
        "dark": "D" not in calstat and not _header_has(meta, _DARK_DONE),
        "response": "F" not in calstat and not _header_has(meta, _FLAT_DONE),
    }


class FramePrediction:
    """What a bad-pixel map predicts in one frame, beyond its neighbours.

    Made by `predict_frame`. ``response`` (None: nothing to predict) is each
    pixel's relative response, ``dark`` (None likewise) its dark signal above
    the smooth level in data units, ``zero`` the level of no light (the
    bias, or 0 when it was subtracted), ``state`` what `frame_state` found,
    ``variance`` the noise (data units squared) that the predicted dark
    signal adds to each pixel: its shot noise and the map's error, ``noise``
    the frame's typical noise when it has no uncertainty plane.
    """

    def __init__(self, response, dark, zero, state, variance=None, noise=None):
        self.response, self.dark, self.zero, self.state = response, dark, zero, state
        self.variance, self.noise = variance, noise

    def part(self, select):
        """The prediction for a part of the frame (its planes sliced)."""
        planes = [
            None if plane is None else plane[select]
            for plane in (self.response, self.dark, self.variance)
        ]
        response, dark, variance = planes
        return FramePrediction(
            response, dark, self.zero, self.state, variance, self.noise
        )

    @property
    def empty(self):
        """True when the map predicts nothing in this frame."""
        return self.response is None and self.dark is None

    def flatten(self, data, sigma=None):
        """The frame as a detector without those pixels' differences reads it.

        ``data - dark - (response - 1) * light``, ``light`` being the median
        of the pixel's neighbours above ``zero``: a pixel doing what the map
        predicts then stands out of its neighbours by noise alone. With
        ``sigma``, the frame's noise (one figure or a plane), the response
        is taken out only where that changes the pixel by more than
        ``sigma`` (on a raw flat, not on a faint sky), and a pixel with a
        predicted dark signal has its departure from its neighbours' median
        scaled down by ``sigma / sqrt(sigma**2 + variance)``, so that its own
        shot noise does not make it stand out more than a typical pixel.
        """
        out = np.asarray(data, dtype=np.float32).copy()
        if self.dark is not None:
            out -= self.dark
        if sigma is not None:
            sigma = np.broadcast_to(np.asarray(sigma, np.float64), out.shape)
        if self.response is not None:
            rows, cols = np.nonzero(self.response != 1)
            # The light the pixel's neighbours see (not its own value, which
            # may hold a cosmic ray's charge, which no response scales).
            light = _neighbour_median(out, rows, cols) - self.zero
            change = (1 - self.response[rows, cols]) * light
            keep = np.isfinite(change)
            if sigma is not None:
                # Only where the difference shows in this frame.
                keep &= np.abs(change) > _RESPONSE_SHOWS_SIGMA * sigma[rows, cols]
            out[rows[keep], cols[keep]] += change[keep]
        if sigma is not None and self.variance is not None:
            rows, cols = np.nonzero(self.variance)
            noise = sigma[rows, cols]
            level = _neighbour_median(out, rows, cols)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = noise / np.sqrt(noise**2 + self.variance[rows, cols])
            scale = np.where(np.isfinite(scale), scale, 1.0)
            out[rows, cols] = level + (out[rows, cols] - level) * scale
        return out


def _neighbour_median(image, rows, cols):
    """Median of the 8 neighbours of each pixel (edges repeated)."""
    ny, nx = image.shape
    values = [
        image[np.clip(rows + dy, 0, ny - 1), np.clip(cols + dx, 0, nx - 1)]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    ]
    return np.nanmedian(np.stack(values), axis=0)


def predict_frame(ccd, bpm, *, raw=None):
    """What the map predicts in a frame: each pixel's response and dark signal.

    A pixel of a raw frame reads ``zero + response * light + dark rate *
    EXPTIME / gain``, with ``light`` what its neighbours see: the map's
    ``response`` plane (where it differs from 1 by 3 sigma of the flats'
    measurement noise or more) applies while the frame is not flat-fielded, its
    ``dark_rate`` plane (where measured at 3 sigma or more, scaled by the
    frame's exposure time and the map's gain) while it is not
    dark-subtracted. Calibrated frames get no prediction.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        A frame from the detector the map describes.
    bpm : BadPixelMap
        The map.
    raw : bool or None, optional
        See `frame_state`.

    Returns
    -------
    FramePrediction

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from ccdpixfix import BadPixelMap
    >>> from ccdpixfix.badpixels import predict_frame
    >>> response = np.ones((3, 3)); response[1, 1] = 1.05
    >>> bpm = BadPixelMap(np.zeros((3, 3), np.uint16), response=response)
    >>> frame = CCDData(np.full((3, 3), 1000, np.uint16), unit="adu")
    >>> frame.data[1, 1] = 1050
    >>> predicted = predict_frame(frame, bpm)
    >>> round(float(predicted.flatten(frame.data)[1, 1]), 3)
    1000.0
    """
    check_map(ccd, bpm)
    state = frame_state(ccd, raw)
    response = dark = variance = None
    if state["response"] and bpm.response is not None:
        measured = bpm.response
        # Only differences the flats measured: dividing by the noise of the
        # map's response would add it to the frame (on an arc line, or a
        # flat, more than the frame's own noise).
        noise = bpm.meta.get("response_pixel_noise") or 0.0
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(measured) & (measured > _SMALLEST_RESPONSE)
            usable &= np.abs(measured - 1) > _RESPONSE_PREDICTED_SIGMA * noise
        response = np.where(usable, measured, np.float32(1)) if usable.any() else None
    exptime = _frames.exposure_time(ccd.meta)
    if state["dark"] and bpm.dark_rate is not None and exptime:
        gain = float(bpm.meta.get("gain") or 1.0)
        rate, error = bpm.dark_rate, bpm.dark_rate_error
        with np.errstate(invalid="ignore"):
            measured = np.isfinite(rate)
            if error is not None:
                measured &= np.abs(rate) > _DARK_PREDICTED_SIGMA * error
        dark = np.where(measured, rate * np.float32(exptime / gain), np.float32(0))
        if not dark.any():
            dark = None
        else:
            # Shot noise of the predicted dark electrons, and the map's error
            # scaled to this exposure, in data units squared.
            variance = np.clip(dark, 0, None) / gain
            if error is not None:
                variance += (error * np.float32(exptime / gain)) ** 2
            variance = np.where(measured, variance, np.float32(0))
    zero = bpm.meta.get("bias_level") if state["bias"] else 0.0
    noise = None
    if (dark is not None or response is not None) and ccd.uncertainty is None:
        noise = frame_sigma(ccd)
    return FramePrediction(response, dark, float(zero or 0.0), state, variance, noise)


def flag_bad_pixels(
    ccd,
    bpm: BadPixelMap,
    *,
    warm_is_bad: bool = False,
    raw: bool | None = None,
    add_keyword=True,
):
    """Copy the flags of a bad-pixel map into a frame.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        A frame from the detector the map describes.
    bpm : BadPixelMap
        The map.
    warm_is_bad : bool, optional
        Also mask ``WARM`` pixels (they get ``DO_NOT_USE`` as well), e.g. for
        frames that will not be dark-subtracted.
    raw : bool or None, optional
        Whether the frame still holds its dark current (see `frame_state`;
        None: from the frame). In a frame that does, a ``WARM`` pixel whose
        dark signal, from the map's ``dark_rate`` and the frame's exposure
        time, stands out by 5 sigma of the frame's noise is masked in this
        frame (``DO_NOT_USE``): it is a persistent pixel, not a cosmic ray.
    add_keyword : bool, str, `ccdproc.Keyword` or dict, optional
        The step's keyword in the header, as ccdproc's steps take it (see
        `fix_pixels`); False adds none.

    Returns
    -------
    `~astropy.nddata.CCDData`
        A new object whose ``flags`` hold the frame's own flags and the map's,
        and whose ``mask`` follows. Data and uncertainty are unchanged.

    Raises
    ------
    TypeError
        If ``bpm`` is not a `BadPixelMap`.
    ValueError
        If the map's shape differs from the frame's, or ``raw`` is not
        None, True or False.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from ccdpixfix import BadPixelMap, PixelFlag, flag_bad_pixels
    >>> flags = np.zeros((3, 3), np.uint16); flags[1, 1] = PixelFlag.HOT
    >>> frame = CCDData(np.ones((3, 3)), unit="adu")
    >>> int(flag_bad_pixels(frame, BadPixelMap(flags)).mask.sum())
    1
    """
    check_ccd(ccd)
    flags = map_flags(ccd, bpm, warm_is_bad=warm_is_bad)
    prediction = predict_frame(ccd, bpm, raw=raw)
    n_warm = 0
    if prediction.dark is not None:
        sigma = prediction.noise if ccd.uncertainty is None else uncertainty_sigma(ccd)
        n_warm = warm_standing_out(flags, prediction, sigma, _WARM_STANDS_OUT)
    out = new_ccd(ccd, flags=flags)
    recorded = {"warm_is_bad": warm_is_bad}
    if raw is not None:
        recorded["raw"] = raw
    return record_step(
        out,
        "flag_bad_pixels",
        add_keyword=add_keyword,
        **recorded,
        n_flagged=int(np.count_nonzero(bpm.flags)),
        **({"n_warm_masked": n_warm} if n_warm else {}),
    )


def frame_sigma(ccd):
    """The noise of each pixel (its uncertainty), or one robust figure.

    The figure, from differences of neighbours along rows (where smooth
    structure cancels), is the noise of the typical pixel.
    """
    if ccd.uncertainty is not None:
        return uncertainty_sigma(ccd)
    # About 256 rows: the figure is good to a few per cent, and a Dask
    # array computes only those.
    step = max(1, np.shape(ccd.data)[0] // 256)
    rows = np.asarray(ccd.data[::step], dtype=np.float32)
    return robust_sigma(np.diff(rows, axis=1)) / np.sqrt(2)


def warm_standing_out(flags, prediction, sigma, threshold):
    """Mask (in place) the WARM pixels whose predicted dark signal stands out.

    A WARM pixel of a frame that is not dark-subtracted, with more dark
    signal in this exposure than ``threshold`` times its noise, keeps
    ``WARM`` and gains ``DO_NOT_USE``, so that it is masked and replaced in
    this frame rather than taken for a cosmic ray.

    Returns
    -------
    int
        How many pixels were masked.
    """
    if prediction.dark is None:
        return 0
    warm = (flags & np.uint16(PixelFlag.WARM)) != 0
    with np.errstate(invalid="ignore"):
        stands_out = warm & (prediction.dark > threshold * np.asarray(sigma))
    stands_out &= (flags & np.uint16(PixelFlag.DO_NOT_USE)) == 0
    flags[stands_out] |= np.uint16(PixelFlag.DO_NOT_USE)
    return int(np.count_nonzero(stands_out))


def warm_not_transient(flags, before=None, only=None):
    """Rename (in place) map-WARM pixels flagged ``TRANSIENT_HOT``.

    For a frame that holds its dark current: a WARM pixel that stands out is
    a persistent pixel, so it loses ``TRANSIENT_HOT`` and is masked
    (``DO_NOT_USE``) in this frame. Only flags the search added are renamed:
    ``before`` holds the flags it started from (the frame's and the map's),
    which are kept as they came; where ``only`` is given, only the pixels it
    marks (the map's WARM pixels) are renamed.

    Returns
    -------
    int
        How many pixels were renamed.
    """
    warm = np.uint16(PixelFlag.WARM)
    hot = np.uint16(PixelFlag.TRANSIENT_HOT)
    renamed = ((flags & warm) != 0) & ((flags & hot) != 0)
    if before is not None:
        renamed &= (before & hot) == 0
    if only is not None:
        renamed &= only
    flags[renamed] &= ~hot
    flags[renamed] |= np.uint16(PixelFlag.DO_NOT_USE)
    return int(np.count_nonzero(renamed))


def check_map(ccd, bpm):
    """A BadPixelMap of the frame's shape, or a TypeError or ValueError."""
    if not isinstance(bpm, BadPixelMap):
        raise TypeError(
            f"bpm must be a BadPixelMap, not {type(bpm).__name__}; read one with "
            "BadPixelMap.read(path)"
        )
    if bpm.shape != np.shape(ccd.data):
        raise ValueError(
            f"bpm shape {bpm.shape} does not match image shape {np.shape(ccd.data)}; "
            "use the map made for this detector and binning"
        )


def map_flags(ccd, bpm, *, warm_is_bad):
    """The flags `flag_bad_pixels` gives a frame."""
    check_map(ccd, bpm)
    flags = input_flags(ccd) | bpm.flags
    if warm_is_bad:
        flags[(bpm.flags & np.uint16(int(PixelFlag.WARM))) != 0] |= np.uint16(
            PixelFlag.DO_NOT_USE
        )
    return flags
