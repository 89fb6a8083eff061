"""A night's folder of mixed raw frames, sorted by what their headers say.

Capture programs name the kind of a frame in ``IMAGETYP`` (IRAF, MaxIm DL,
SBIG, N.I.N.A., SharpCap, ASIAIR, Siril...), some in ``OBSTYPE`` (Gemini)
or ``FRAME``, each in its own spelling: ``Dark Frame``, ``DARK``, ``dark``,
``Flat Field``, ``Light Frame``, ``object``, ``zero``... The headers are
read with `ccdproc.ImageFileCollection`; `sort_night` decides what each
file is and what the map and the fixing take, and says why it leaves a
file out.
"""

import contextlib
import dataclasses
import fnmatch
import logging
import os
import re
import statistics
import warnings
from pathlib import Path

__all__ = ["NightFile", "frame_kind", "sort_night"]

#: Header keywords naming the kind of frame, in the order they are read.
KIND_KEYWORDS = ("IMAGETYP", "OBSTYPE", "FRAME", "IMAGETYPE")
#: Header keywords of the exposure time (seconds) and the sensor temperature.
EXPOSURE_KEYWORDS = ("EXPTIME", "EXPOSURE")
TEMPERATURE_KEYWORDS = ("CCD-TEMP", "CCDTEMP", "SET-TEMP", "TEMPERAT", "DET-TEMP")
# Darks taken within this many degrees count as one temperature: set points
# are whole degrees, and regulation wanders by a few tenths.
_SAME_TEMPERATURE = 1.0
# Darks further than this (C) from the lights are named (dark current about
# doubles every 6 C).
_FAR_TEMPERATURE = 5.0

# Every spelling we know, normalised (lower case, single spaces).
_SPELLINGS = {
    "bias": ("bias", "bias frame", "zero", "offset", "master bias"),
    "dark": ("dark", "dark frame", "dark current"),
    "flat": (
        "flat",
        "flat field",
        "flat frame",
        "flatfield",
        "sky flat",
        "dome flat",
        "twilight flat",
        "domeflat",
        "skyflat",
    ),
    "dark flat": ("dark flat", "darkflat", "flat dark", "flatdark"),
    "light": ("light", "light frame", "object", "science", "sci"),
}
_KIND_OF = {spelling: kind for kind, names in _SPELLINGS.items() for spelling in names}


def frame_kind(header):
    """The kind of a frame from its header: "bias", "dark", "flat", ...

    Parameters
    ----------
    header : dict-like
        The frame's header.

    Returns
    -------
    kind : str or None
        ``"bias"``, ``"dark"``, ``"flat"``, ``"dark flat"``, ``"light"``, the
        header's own word (lower case) for a kind we do not use (``"arc"``,
        ``"focus"``...), or None when no keyword names it.

    Examples
    --------
    >>> from ccdpixfix.pipeline.night import frame_kind
    >>> frame_kind({"IMAGETYP": "Dark Frame"}), frame_kind({"IMAGETYP": "object"})
    ('dark', 'light')
    >>> frame_kind({"OBSTYPE": "ZERO"}), frame_kind({})
    ('bias', None)
    """
    for key in KIND_KEYWORDS:
        value = header.get(key)
        if value is None or str(value).strip() == "":
            continue
        text = re.sub(r"[\s_]+", " ", str(value).strip().lower())
        return _KIND_OF.get(text, text)
    return None


def _number(header, keys):
    for key in keys:
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if value == value:  # not NaN
            return value
    return None


# Above this a sensor temperature is in kelvin: no camera runs its sensor
# at 150 C, and some write kelvin (ccdproc's raw frame: CCD-TEMP = 180.2).
_KELVIN_ABOVE = 150.0


def _celsius(temperature):
    """A sensor temperature in degrees Celsius (kelvin converted), or None.

    >>> _celsius(180.2), _celsius(-10.0), _celsius(None)
    (-92.95, -10.0, None)
    """
    if temperature is not None and temperature > _KELVIN_ABOVE:
        return round(temperature - 273.15, 2)
    return temperature


@dataclasses.dataclass
class NightFile:
    """One file of a night: what it is, and what is done with it."""

    path: str
    kind: str | None
    exptime: float | None
    temperature: float | None
    shape: tuple
    #: "dark", "flat", "light", or None when left out.
    use: str | None = None
    #: Why it is left out (or how it was taken), for people.
    reason: str = ""


_KEYWORDS = (*KIND_KEYWORDS, *EXPOSURE_KEYWORDS, *TEMPERATURE_KEYWORDS, "NAXIS")


def _read_headers(directory):
    """A `NightFile` per FITS file of ``directory``: kind, time, temperature.

    The primary headers come from `ccdproc.ImageFileCollection`; a file whose
    image is in an extension (tile-compressed, multi-extension) has that
    extension's header read too, its cards taking precedence.
    """
    from astropy.io.fits.verify import VerifyError
    from ccdproc import ImageFileCollection

    # Files that are not FITS, or odd headers, are judged one by one below;
    # ccdproc would log each of them.
    names, special = _fits_names(directory)
    log = logging.getLogger("ccdproc")
    level = log.level
    log.setLevel(logging.CRITICAL)
    table = None
    try:
        # An empty list of names is no list to ccdproc, which would then
        # open every FITS name of the folder itself, FIFOs too.
        if names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = ImageFileCollection(
                    directory, keywords=list(_KEYWORDS), filenames=names
                ).summary
    except (VerifyError, OSError, ValueError):
        # One card that cannot be parsed (an unquoted DATE-OBS) stops the
        # collection whole: each file's own header is read below instead.
        table = None
    finally:
        log.setLevel(level)
    rows = {} if table is None else {str(row["file"]): row for row in table}
    files = [
        _unreadable(os.path.join(directory, name), "not a regular file")
        for name in special
    ]
    for name in names:
        path = os.path.join(directory, name)
        row = rows.get(name)
        header = {
            key: row[key]
            for key in _KEYWORDS
            if row is not None and key in row.colnames and not _masked(row[key])
        }
        try:
            extension, shape = _image_header(path, primary_too=table is None)
        except (OSError, ValueError, IndexError) as error:
            files.append(_unreadable(path, error))
            continue
        header.update(extension)
        files.append(
            NightFile(
                path,
                frame_kind(header),
                _number(header, EXPOSURE_KEYWORDS),
                _celsius(_number(header, TEMPERATURE_KEYWORDS)),
                shape,
            )
        )
    return sorted(files, key=lambda night_file: night_file.path)


def _masked(value):
    return value is None or bool(getattr(value, "mask", False))


# Names that ccdproc's ImageFileCollection takes for FITS files.
_FITS_NAMES = tuple(
    f"*.{extension}{compression}"
    for extension in ("fit", "fits", "fts")
    for compression in ("", ".gz", ".bz2", ".Z", ".zip", ".fz")
)


def _fits_names(directory):
    """The FITS names of ``directory`` (hidden ones left out, as a killed
    run's temporaries): the regular files, and the rest (a FIFO or a device
    named like a frame, which reading would block on), both sorted."""
    names = sorted(
        name
        for name in os.listdir(directory)
        if not name.startswith(".")
        and any(fnmatch.fnmatch(name, pattern) for pattern in _FITS_NAMES)
    )
    regular = [name for name in names if os.path.isfile(os.path.join(directory, name))]
    return regular, [name for name in names if name not in regular]


def _unreadable(path, error):
    text = str(error).strip().splitlines()
    reason = f"unreadable: {text[0] if text else type(error).__name__}"
    return NightFile(path, None, None, None, (), None, reason)


def _image_header(path, primary_too=False):
    """The cards that name the frame in its image's own header (in the
    primary header too with ``primary_too``), and its shape. A card among
    them that cannot be parsed is left out."""
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    from ..io.fits import image_hdu_index

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdulist:
            index = image_hdu_index(hdulist)
            header = hdulist[index].header
            shape = hdulist[index].shape
            cards = {}
            for key in _KEYWORDS:
                with contextlib.suppress(KeyError, VerifyError, ValueError):
                    cards[key] = header[key]
    return (cards if index or primary_too else {}), tuple(shape)


def sort_night(directory):
    """What each FITS file of a night's folder is, and what it is used for.

    Parameters
    ----------
    directory : str or path-like
        The folder: biases, darks, flats and lights together, told apart by
        their headers.

    Returns
    -------
    list of `NightFile`
        One per FITS file, sorted by name. ``use`` is ``"dark"`` (for the
        map), ``"flat"`` (for the map), ``"light"`` (to fix) or None, with
        ``reason`` saying why it was left out. Darks are kept at one
        temperature (the lights', else the most common), all their exposure
        times together; frames of another shape than most are left out. When
        no file names its kind, every file is taken for whatever is asked
        (``use`` is ``"any"``).
    """
    files = _read_headers(os.fspath(directory))
    if not any(f.kind for f in files):
        for night_file in files:
            if night_file.use is None and not night_file.reason:
                night_file.use = "any"
                night_file.reason = "no file names its kind (IMAGETYP)"
        return files
    for night_file in files:
        if not night_file.reason:
            _judge(night_file)
    _keep_one_shape(files)
    _keep_one_temperature(files)
    return files


def _judge(night_file):
    """Set ``use`` and ``reason`` from the file's kind and exposure time."""
    kind = night_file.kind
    if kind == "dark" and night_file.exptime == 0:
        night_file.reason = "a dark of 0 s is a bias: not used"
    elif kind in ("dark", "flat", "light"):
        night_file.use = kind
    elif kind is None:
        night_file.reason = "no IMAGETYP: its kind is not known"
    elif kind == "bias":
        night_file.reason = "a bias: not used (darks make the map)"
    elif kind == "dark flat":
        night_file.reason = "a dark for flats: not used"
    else:
        night_file.reason = f"IMAGETYP '{kind}' is not a kind ccdpixfix uses"


def _keep_one_shape(files):
    taken = [f for f in files if f.use]
    if not taken:
        return
    shapes = [f.shape for f in taken]
    common = max(set(shapes), key=shapes.count)
    for night_file in taken:
        if night_file.shape != common:
            night_file.use = None
            night_file.reason = (
                f"shape {_shape_text(night_file.shape)} differs from the night's "
                f"{_shape_text(common)}"
            )


def _shape_text(shape):
    return " x ".join(str(n) for n in reversed(shape)) if shape else "none"


def _keep_one_temperature(files):
    """Darks of one temperature: the lights' if they say, else the most common."""
    darks = [f for f in files if f.use == "dark" and f.temperature is not None]
    if not darks:
        return
    lights = sorted(
        f.temperature for f in files if f.use == "light" and f.temperature is not None
    )
    temperatures = sorted({round(f.temperature) for f in darks})
    if lights:
        target = lights[len(lights) // 2]
        chosen = min(temperatures, key=lambda t: (abs(t - target), -_count(darks, t)))
    else:
        chosen = max(temperatures, key=lambda t: (_count(darks, t), -abs(t)))
    for dark in darks:
        if abs(dark.temperature - chosen) > _SAME_TEMPERATURE:
            dark.use = None
            dark.reason = (
                f"taken at {dark.temperature:.0f} C; the darks used are at "
                f"{chosen:.0f} C"
            )


def _count(darks, temperature):
    return sum(abs(d.temperature - temperature) <= _SAME_TEMPERATURE for d in darks)


def summary_lines(files, taken):
    """A short table of a sorted night: groups taken, and files left out.

    Parameters
    ----------
    files : list of `NightFile`
        From `sort_night`.
    taken : iterable of str
        The uses the command takes (``"dark"``, ``"flat"``, ``"light"``).

    Returns
    -------
    list of str
    """
    taken = set(taken)
    groups = {}
    for night_file in files:
        if night_file.use in taken or night_file.use == "any":
            key = (
                night_file.use,
                night_file.exptime,
                None
                if night_file.temperature is None
                else round(night_file.temperature),
            )
            groups[key] = groups.get(key, 0) + 1
    lines = [f"  {'taken as':<10}{'files':>6}{'exptime s':>11}{'temp C':>8}"]
    for (use, exptime, temperature), count in sorted(groups.items(), key=_group_order):
        lines.append(
            f"  {use:<10}{count:>6d}{_optional(exptime):>11}{_optional(temperature):>8}"
        )
    other = {}
    for night_file in files:
        if night_file.use in taken or night_file.use == "any":
            continue
        if night_file.use:  # of another kind: counted, not listed
            other[night_file.use] = other.get(night_file.use, 0) + 1
        elif "light" in taken and night_file.reason.startswith("unreadable"):
            continue  # fixing it fails, with a line of its own
        else:
            name = Path(night_file.path).name
            lines.append(f"  left out: {name}: {night_file.reason}")
    if other:
        counts = ", ".join(f"{count} {use}" for use, count in sorted(other.items()))
        lines.append(f"  left out: {counts} frame(s), not for this command")
    if {"dark", "light"} <= taken:
        lines += _temperature_note(files)
    return lines


def _temperature_note(files):
    """A note where the darks used were taken far from the lights' temperature.

    Dark current about doubles every 6 C: a pixel warm at the darks'
    temperature may be hot in the lights, or the other way round (a light
    whose CCD-TEMP is wrong, too, shows here).
    """
    darks = [
        f.temperature for f in files if f.use == "dark" and f.temperature is not None
    ]
    lights = sorted(
        f.temperature for f in files if f.use == "light" and f.temperature is not None
    )
    if not darks or not lights:
        return []
    dark, light = statistics.median(darks), lights[len(lights) // 2]
    if abs(dark - light) <= _FAR_TEMPERATURE:
        return []
    return [
        f"  note: the darks used are at {dark:.0f} C, the lights at {light:.0f} C: "
        "the map's hot and warm pixels are those of the darks' temperature"
    ]


def _group_order(item):
    (use, exptime, temperature), _ = item
    return (use, exptime or 0.0, temperature or 0.0)


def _optional(value):
    return "-" if value is None else f"{value:g}"
