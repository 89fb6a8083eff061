"""The bad-pixel map: persistent defects of one detector."""

import json
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from . import _frames
from ._ccdutils import check_ccd, check_positive, input_flags, new_ccd, quiet_numerics
from ._mapbuild import build_map
from ._provenance import record_step
from ._version import __version__
from .cfa import cfa_pattern, planes, sub_frame
from .flags import BAD_PIXEL_FLAGS, PixelFlag, as_flags, flags_to_mask
from .io import write_hdulist_atomic

__all__ = ["BadPixelMap", "flag_bad_pixels", "make_bad_pixel_map"]

_MAP_KINDS = (
    PixelFlag.HOT,
    PixelFlag.WARM,
    PixelFlag.BAD_COLUMN,
    PixelFlag.STUCK,
    PixelFlag.DEAD,
    PixelFlag.LOW_RESPONSE,
)
_FORMAT_KEY = "CPFBPM"


class BadPixelMap:
    """The persistent defects of one detector.

    Parameters
    ----------
    flags : 2-D array of int
        `PixelFlag` bits per pixel; stored as ``uint16``.
    meta : dict, optional
        How the map was made (inputs, thresholds, counts, version). Must be
        JSON-serialisable to be written.

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

    def __init__(self, flags, meta=None):
        flags = np.asarray(flags)
        if flags.ndim != 2:
            raise ValueError(f"flags must be a 2-D array, got shape {flags.shape}")
        if flags.dtype.kind not in "iu":
            raise ValueError("flags must be integer PixelFlag bits that fit in uint16")
        self.flags = as_flags(flags)
        self.meta = dict(meta or {})

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
        return np.array_equal(self.flags, other.flags) and self.meta == other.meta

    def write(self, path, *, overwrite=False, rules=None):
        """Write the map as a FITS file (atomically).

        The primary HDU holds the flags (``uint16``) with cards naming each
        bit and counting each kind; extension ``META`` holds ``meta`` as JSON.

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
        write_hdulist_atomic(
            fits.HDUList([primary, meta]),
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
                with fits.open(path) as hdulist:
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
        return cls(flags, _read_meta(hdulist, path))


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
    significance: float = 5.0,
    hot_rate: float = 0.5,
    warm_rate: float = 0.05,
    dead_response: float = 0.2,
    low_response: float = 0.9,
    column_significance: float = 5.0,
    gain: float | None = None,
    cfa: str | None = None,
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
    significance : float, optional
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
        Response below which a pixel is ``LOW_RESPONSE``, if it is also
        ``significance`` sigma below the typical response.
    column_significance : float, optional
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

    Returns
    -------
    BadPixelMap
        With ``meta`` recording inputs, parameters, noise and counts.

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
    check_positive(
        significance=significance,
        hot_rate=hot_rate,
        warm_rate=warm_rate,
        column_significance=column_significance,
        **({} if gain is None else {"gain": gain}),
    )
    _check_fractions(dead_response=dead_response, low_response=low_response)
    options = dict(
        significance=significance,
        hot_rate=hot_rate,
        warm_rate=warm_rate,
        dead_response=dead_response,
        low_response=low_response,
        column_significance=column_significance,
        gain=gain,
    )
    with quiet_numerics():
        pattern, darks, flats = _colour_frames(darks, flats, cfa)
        if pattern is None:
            flags, meta = build_map(darks, flats, **options)
        else:
            flags, meta = _colour_map(darks, flats, pattern, options)
    bpm = BadPixelMap(flags, meta)
    bpm.meta["counts"] = bpm.counts()
    return bpm


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
    meta, colours = None, {}
    for name, plane in planes(shape, pattern):
        dy, dx = plane[0].start, plane[1].start
        plane_flags, plane_meta = build_map(
            [sub_frame(frame, dy, dx) for frame in darks],
            None if flats is None else [sub_frame(frame, dy, dx) for frame in flats],
            **options,
        )
        flags[plane] = plane_flags
        colours[name] = {
            key: plane_meta[key] for key in ("dark_noise", "response_noise", "notes")
        }
        if meta is None:
            meta = plane_meta
        else:
            meta["notes"] += [n for n in plane_meta["notes"] if n not in meta["notes"]]
    meta.update(cfa=pattern, colours=colours)
    return flags, meta


def _check_fractions(**values):
    for name, value in values.items():
        if not 0 < value < 1:
            raise ValueError(
                f"{name} must be a fraction between 0 and 1, got {value!r}"
            )


def flag_bad_pixels(
    ccd, bpm: BadPixelMap, *, warm_is_bad: bool = False, add_keyword=True
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
        If the map's shape differs from the frame's.

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
    out = _flag_bad_pixels(ccd, bpm, warm_is_bad=warm_is_bad)
    return record_step(
        out,
        "flag_bad_pixels",
        add_keyword=add_keyword,
        warm_is_bad=warm_is_bad,
        n_flagged=int(np.count_nonzero(bpm.flags)),
    )


def _flag_bad_pixels(ccd, bpm, *, warm_is_bad):
    """`flag_bad_pixels` without the header record."""
    return new_ccd(ccd, flags=_map_flags(ccd, bpm, warm_is_bad=warm_is_bad))


def _check_map(ccd, bpm):
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


def _map_flags(ccd, bpm, *, warm_is_bad):
    """The flags `flag_bad_pixels` gives a frame."""
    _check_map(ccd, bpm)
    flags = input_flags(ccd) | bpm.flags
    if warm_is_bad:
        flags[(bpm.flags & np.uint16(int(PixelFlag.WARM))) != 0] |= np.uint16(
            PixelFlag.DO_NOT_USE
        )
    return flags
