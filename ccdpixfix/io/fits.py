"""Reading frames and writing FITS files safely."""

import contextlib
import dataclasses
import glob
import gzip
import io
import os
import re
import secrets
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "FITS_SUFFIXES",
    "OUTPUT_EXTENSIONS",
    "OutputRules",
    "RunCancelled",
    "atomic_path",
    "available_memory",
    "check_image_size",
    "fixed_hdulist",
    "frame_from_hdu",
    "image_hdu_index",
    "is_fits_name",
    "is_temporary_name",
    "new_run_id",
    "write_hdulist_atomic",
]


#: Marks the temporaries of ccdpixfix: ``.NAME.cpf-RUN-RANDOM.tmp...``.
TEMPORARY_MARK = ".cpf-"
_TEMPORARY_NAME = re.compile(r"^\..+\.cpf-[0-9a-f]{12}-[^.]+\.tmp")


def new_run_id():
    """A token naming one run's temporaries, so that it removes only its own."""
    return secrets.token_hex(6)


def is_temporary_name(path):
    """Whether ``path`` is named like a temporary file of a ccdpixfix run."""
    return bool(_TEMPORARY_NAME.match(Path(path).name))


#: Temporaries being written by this process right now: a worker that is
#: told to stop removes them and leaves at once (`remove_active_temporaries`).
_ACTIVE_TEMPORARIES = set()


def remove_active_temporaries():
    """Delete the temporaries this process is writing (it is about to exit)."""
    for temporary in list(_ACTIVE_TEMPORARIES):
        with contextlib.suppress(OSError):
            os.unlink(temporary)


class RunCancelled(Exception):
    """The run that asked for this write was cancelled; nothing was written."""


@dataclasses.dataclass(frozen=True)
class OutputRules:
    """The rules every file a run writes goes by, in one place.

    Outputs, sidecars, reports, maps and plots are all written through
    `OutputRules.path`: an existing file (a dangling link included) is
    refused unless ``overwrite`` is set; an input of the run is never
    written, whatever ``overwrite`` says; the file appears whole or not at
    all (a temporary beside it, renamed when complete); the temporary is
    named with the run's token, and the run removes no temporary but its
    own.

    Parameters
    ----------
    overwrite : bool, optional
        Replace files that exist.
    protected : frozenset of str, optional
        Real paths (`os.path.realpath`) never to write: the run's inputs.
    protected_files : frozenset of tuple, optional
        The inputs' (device, inode): no other name of them (a hard link)
        is written either.
    run_id : str, optional
        Token in the temporaries' names (`new_run_id`).
    cancel_marker : str, optional
        A file whose presence at publishing time means the run was
        cancelled (a lost cluster): the write is then dropped.
    """

    overwrite: bool = False
    protected: frozenset = frozenset()
    protected_files: frozenset = frozenset()
    run_id: str = dataclasses.field(default_factory=new_run_id)
    cancel_marker: str | None = None

    def protecting(self, paths):
        """The same rules, with ``paths`` added to the protected inputs."""
        keys = frozenset(os.path.realpath(os.fspath(path)) for path in paths)
        files = frozenset(filter(None, (_file_identity(path) for path in paths)))
        return dataclasses.replace(
            self,
            protected=self.protected | keys,
            protected_files=self.protected_files | files,
        )

    def check(self, path):
        """Raise if ``path`` may not be written under these rules.

        Raises
        ------
        ValueError
            If ``path`` is (or links to) an input of the run.
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        """
        if (
            os.path.realpath(os.fspath(path)) in self.protected
            # ... or another name of one (a hard link)
            or _file_identity(path) in self.protected_files
        ):
            raise ValueError(
                f"{path} is an input of this run; an input is never written over"
            )
        if os.path.lexists(path) and not self.overwrite:
            raise FileExistsError(
                f"{path} exists; it is replaced only with overwrite=True "
                "(--overwrite on the command line)"
            )

    @contextlib.contextmanager
    def path(self, path):
        """A temporary path beside ``path`` that becomes ``path`` on success.

        Write to the path this yields; when the block ends without error the
        file takes the name ``path`` (permissions as for any new file),
        otherwise it is removed, so that no partial file is ever left.

        Raises
        ------
        ValueError, FileExistsError
            As `check`, before anything is written; FileExistsError also
            when another process created ``path`` meanwhile.
        RunCancelled
            If the cancel marker appeared while the file was made.
        """
        path = Path(path)
        self.check(path)
        directory = path.parent if str(path.parent) else Path(".")
        # The temporary keeps the target's suffixes: astropy compresses by name.
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}{TEMPORARY_MARK}{self.run_id}-",
            suffix=".tmp" + "".join(path.suffixes[-2:]),
            dir=directory,
        )
        os.close(handle)
        _ACTIVE_TEMPORARIES.add(temporary)
        try:
            yield temporary
            # mkstemp makes files private (0600); an output is an ordinary file.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
            if self.cancel_marker and os.path.exists(self.cancel_marker):
                raise RunCancelled(f"{path}: the run was cancelled; not written")
            _sync_file(temporary)
            self._publish(temporary, path)
            _sync_directory(directory)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        finally:
            _ACTIVE_TEMPORARIES.discard(temporary)

    def _publish(self, temporary, path):
        if self.overwrite:
            os.replace(temporary, path)
            return
        # A hard link fails if the name exists, where a rename would replace
        # it: two runs started together cannot both write the same file.
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise FileExistsError(
                f"{path} was created by someone else while it was being "
                "written; it was not replaced"
            ) from None
        except OSError:
            # A filesystem without hard links: claim the name, then fill it.
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(descriptor)
            os.replace(temporary, path)
            return
        os.unlink(temporary)

    def remove_temporaries(self, targets):
        """Delete the temporaries this run left for ``targets`` (a killed worker's)."""
        for target in targets:
            target = Path(target)
            pattern = glob.escape(f".{target.name}{TEMPORARY_MARK}{self.run_id}-")
            for stale in target.parent.glob(pattern + "*.tmp*"):
                stale.unlink(missing_ok=True)


def _file_identity(path):
    """(device, inode) of the file at ``path``, or None where there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def _sync_file(path):
    """Push a file's data to the disk before it takes its name.

    Some filesystems (ext4 with delayed allocation, XFS) may record a
    rename before the data of the renamed file: after a power cut or a
    crash the output's name would hold an empty or partial file, which a
    rerun with ``--skip-existing`` must then tell from a whole one.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_directory(directory):
    """Push a directory's entries (a new name) to the disk, where it can be."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # a directory that cannot be opened (some systems): nothing to do
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # not every filesystem syncs a directory; the data are synced
    finally:
        os.close(descriptor)


def atomic_path(path, *, overwrite=False):
    """A temporary path beside ``path`` that becomes ``path`` on success.

    Short for ``OutputRules(overwrite=overwrite).path(path)``: see
    `OutputRules.path`.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    return OutputRules(overwrite=overwrite).path(path)


# gzip's level for a ``.gz`` output. On a fixed 2048 x 2048 float32 frame
# with its planes (46 MB), level 9 (Python's default) took 18 s for 13.2
# MB, level 4 0.5 s for 14.1 MB, level 1 0.35 s for 14.9 MB: beyond 4 the
# time grows far faster than the file shrinks.
_GZIP_LEVEL = 4


def write_hdulist_atomic(hdulist, path, *, overwrite=False, checksum=False, rules=None):
    """Write ``hdulist`` to ``path`` via a temporary file and a rename.

    An interrupted write leaves no partial file at ``path``: the data go to
    a temporary file in the same directory, which replaces ``path`` only
    once complete.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
        What to write.
    path : str or path-like
        Destination.
    overwrite : bool, optional
        Replace an existing file; otherwise an existing ``path`` raises.
    checksum : bool, optional
        Add (or update) CHECKSUM and DATASUM cards in every HDU.
    rules : OutputRules, optional
        The run's rules (they take the place of ``overwrite``).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    rules = OutputRules(overwrite=overwrite) if rules is None else rules
    with rules.path(path) as temporary:
        if not os.fspath(path).lower().endswith(".gz"):
            hdulist.writeto(temporary, overwrite=True, checksum=checksum)
            return
        # gzip records a file name: the output's, not the temporary's.
        with (
            open(temporary, "wb") as raw,
            gzip.GzipFile(
                Path(path).name[:-3], "wb", _GZIP_LEVEL, fileobj=raw
            ) as stream,
        ):
            hdulist.writeto(stream, checksum=checksum)


#: File names taken as FITS when a directory is given.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz")
#: Extensions written beside the repaired image.
OUTPUT_EXTENSIONS = ("MASK", "UNCERT", "FLAGS")


def is_fits_name(path):
    """Whether a file name has one of the usual FITS suffixes."""
    name = os.fspath(path).lower()
    return name.endswith(FITS_SUFFIXES) or name.endswith(".fz")


def image_hdu_index(hdulist, hdu=None):
    """Index of the image to process in an open FITS file.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
        The open file.
    hdu : int or str, optional
        Index or EXTNAME of the image; by default the first HDU holding an
        image.

    Raises
    ------
    ValueError
        If there is no such HDU, it holds no image, or the image is neither
        2-D nor a cube of three colour planes.
    """
    if hdu is None:
        images = _image_positions(hdulist)
        if not images:
            raise ValueError("holds no image (only headers or tables)")
        index = images[0]
    else:
        key = int(hdu) if str(hdu).lstrip("-").isdigit() else str(hdu)
        try:
            index = hdulist.index_of(key)
            hdulist[index]
        except (KeyError, IndexError):
            raise ValueError(f"has no HDU {hdu!r}") from None
        index %= len(hdulist)  # -1 is the last HDU
    candidate = hdulist[index]
    if not candidate.is_image or candidate.header.get("NAXIS", 0) == 0:
        raise ValueError(f"HDU {index} holds no image")
    naxis = candidate.header["NAXIS"]
    colour_cube = naxis == 3 and candidate.header.get("NAXIS3") == 3
    if naxis != 2 and not colour_cube:
        # As numpy gives it: the last FITS axis first.
        shape = tuple(candidate.header.get(f"NAXIS{i}") for i in range(naxis, 0, -1))
        raise ValueError(
            f"HDU {index} is not a 2-D image nor a colour cube of three planes "
            f"(NAXIS={naxis}, data shape {shape}); {_shape_hint(hdulist, index, shape)}"
        )
    return index


def _image_positions(hdulist):
    """Positions of the HDUs that hold an image (not only a header)."""
    return [
        position
        for position, hdu in enumerate(hdulist)
        if hdu.is_image and hdu.header.get("NAXIS", 0) > 0
    ]


def _shape_hint(hdulist, index, shape):
    """What to do about an image of ``shape`` that is not 2-D."""
    if sum(length != 1 for length in shape) == 2:
        # A plane with axes of length one (a cube of one plane).
        return "save its one plane as a 2-D image (in numpy: data.squeeze())"
    if set(_image_positions(hdulist)) - {index}:
        return "choose an image with --hdu"
    return "fix each plane saved as a 2-D image"


# Bytes per pixel a fix needs beyond the input: float32 data and uncertainty,
# flags (2), mask (1), and the steps' working planes (bench_speed measures
# a peak of 3.9 frames of float32 above the input).
_WORKING_BYTES_PER_PIXEL = 6 * 4


def _axes(header):
    """The image's axis lengths from its header, checked."""
    lengths = []
    for axis in range(1, int(header.get("ZNAXIS", header.get("NAXIS", 0))) + 1):
        value = header.get(f"ZNAXIS{axis}", header.get(f"NAXIS{axis}"))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"invalid header: NAXIS{axis} = {value!r}")
        lengths.append(value)
    return lengths


def available_memory():
    """Bytes of memory free for a new frame, or None where it cannot be told."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_compressed_stream(path, keep=False):
    """Raise ValueError where a gzip or bzip2 file is cut short or fails its
    checksum.

    astropy reads such a file only as far as its headers ask: a copy cut
    short loses its last extensions without a word, and a damaged byte gives
    wrong pixels, since the checksum at the stream's end is never reached.
    Read to the end here, both are found. Other files pass.

    With ``keep``, returns what the stream holds, as a file in memory
    (`io.BytesIO`; None for a file that is not compressed), so that the
    file need not be decompressed twice.

    Examples
    --------
    >>> import gzip, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cut.fits.gz")
    >>> with open(path, "wb") as stream:
    ...     _ = stream.write(gzip.compress(os.urandom(10000))[:5000])
    >>> check_compressed_stream(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: damaged compressed file (Compressed file ended before the ...
    """
    import bz2
    import zlib

    openers = {".gz": gzip.open, ".bz2": bz2.open}
    opener = openers.get(Path(os.fspath(path).lower()).suffix)
    if opener is None:
        return None
    # Written block by block into one buffer: no list of blocks joined into
    # a second copy of the frame.
    kept = io.BytesIO() if keep else None
    try:
        with opener(path, "rb") as stream:
            while block := stream.read(1 << 22):
                if keep:
                    kept.write(block)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"damaged compressed file ({error})") from None
    if keep:
        kept.seek(0)
    return kept


def open_checked(path, **options):
    """`astropy.io.fits.open` of ``path``, a compressed file checked whole first.

    A gzip or bzip2 file is read to the end of its stream
    (`check_compressed_stream`: a damaged one raises ValueError) and opened
    from what the stream held, so that it is decompressed once. ``options``
    go to `astropy.io.fits.open`.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.fits.gz")
    >>> fits.PrimaryHDU(np.ones((4, 4), np.float32)).writeto(path)
    >>> with open_checked(path) as hdulist:
    ...     print(hdulist[0].data.shape)
    (4, 4)
    """
    from astropy.io import fits

    content = check_compressed_stream(path, keep=True)
    return fits.open(path if content is None else content, **options)


def check_image_size(hdu):
    """Raise a clear error for an image whose header is absurd or too big.

    Checked from the header alone, before any pixel is read: axis lengths
    must be positive integers, and the frame with the planes a fix makes
    must fit in the memory available now.

    Raises
    ------
    ValueError
        For an invalid axis length.
    MemoryError
        If the frame would not fit in memory, saying how much it needs.
    """
    lengths = _axes(hdu.header)
    pixels = int(np.prod(lengths, dtype=np.float64))
    bitpix = abs(int(hdu.header.get("ZBITPIX", hdu.header.get("BITPIX", 32))))
    needed = pixels * (bitpix // 8 + _WORKING_BYTES_PER_PIXEL)
    available = available_memory()
    if available is not None and needed > available:
        shape = " x ".join(str(n) for n in reversed(lengths))
        raise MemoryError(
            f"a {shape} frame needs about {needed / 2**30:.1f} GiB of memory to "
            f"fix; {available / 2**30:.1f} GiB is available"
        )


def frame_from_hdu(hdu):
    """A `CCDData` holding an image HDU's data and its full header.

    Unlike `CCDData.read`, the header is kept whole (WCS cards included), so
    it can be written back card for card; the WCS is parsed from it.
    """
    import warnings

    from astropy import units as u
    from astropy.nddata import CCDData
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    header = hdu.header.copy()
    data = hdu.data
    if data is None:
        raise ValueError("the image HDU holds no data")
    try:
        unit = u.Unit(header.get("BUNIT", "adu") or "adu")
    except ValueError:
        unit = u.adu
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header, relax=True)
            wcs = wcs if wcs.has_celestial or wcs.wcs.ctype[0] else None
        except Exception:
            wcs = None
    return CCDData(data, unit=unit, meta=header, wcs=wcs)


#: Extensions that carry an image's uncertainty in multi-extension files:
#: variance (Gemini's VAR) or standard deviation (ERR).
UNCERTAINTY_EXTENSIONS = {"VAR": "variance", "ERR": "standard deviation"}


def companion_uncertainty(hdulist, index):
    """The uncertainty an image's own extension gives, or None.

    A multi-extension file (Gemini GMOS, for instance) may keep each image's
    variance in an extension ``VAR`` (or its standard deviation in ``ERR``)
    with the image's ``EXTVER`` and shape.

    Returns
    -------
    tuple or None
        ``(uncertainty, position)``: a `~astropy.nddata.VarianceUncertainty`
        or `~astropy.nddata.StdDevUncertainty`, and the extension's index.
    """
    from astropy.nddata import StdDevUncertainty, VarianceUncertainty

    image = hdulist[index]
    version = image.header.get("EXTVER", 1)
    for position, hdu in enumerate(hdulist):
        if position == index or hdu.name not in UNCERTAINTY_EXTENSIONS:
            continue
        if not hdu.is_image or hdu.header.get("EXTVER", 1) != version:
            continue
        if hdu.data is None or hdu.data.shape != image.data.shape:
            continue
        kind = VarianceUncertainty if hdu.name == "VAR" else StdDevUncertainty
        return kind(np.asarray(hdu.data, dtype=np.float32)), position
    return None


def _flags_hdu(flags):
    from astropy.io import fits

    from ..flags import PixelFlag

    hdu = fits.ImageHDU(np.asarray(flags, dtype=np.uint16), name="FLAGS")
    for flag in PixelFlag:
        hdu.header[f"HIERARCH FLAG {flag.name}"] = (int(flag), "PixelFlag bit value")
    return hdu


def fixed_hdulist(
    hdulist,
    index,
    fixed,
    *,
    planes=OUTPUT_EXTENSIONS,
    compress=False,
    uncertainty_at=None,
):
    """The output file: the input's HDUs with the image replaced, plus planes.

    The repaired image keeps the input HDU's kind (primary, extension or
    tile-compressed, then losslessly) and its header card for card, with the
    step's HISTORY lines appended; only structural cards (BITPIX, BZERO,
    BSCALE, ...) follow the new data type. Extensions ``MASK`` (uint8),
    ``UNCERT`` and ``FLAGS`` (uint16) are appended, replacing any of the
    same names. ``planes`` chooses which of them are written; with
    ``compress`` the image and the planes are tile-compressed losslessly.
    ``uncertainty_at`` is the index of the input's own uncertainty extension
    (`companion_uncertainty`), which then holds the updated uncertainty.
    Each plane names the image it describes (card ``IMAGEHDU``, its index
    in the output).

    Raises
    ------
    ValueError
        If the input's planes describe another of its images (a second
        image of an output fixed before): replacing them would lose them.
    """
    from astropy.io import fits

    check_planes_belong(hdulist, index)
    source = hdulist[index]
    header = fixed.meta
    data = np.asarray(fixed.data)
    if data.dtype.kind == "f":
        # BLANK marks missing integers; float data carry NaN instead.
        header.remove("BLANK", ignore_missing=True)
    if "BUNIT" not in header:
        # CCDData.read needs a unit; a frame without one was read as ADU.
        header["BUNIT"] = (fixed.unit.to_string(), "added by ccdpixfix (none given)")
        header.add_history(f"ccdpixfix: BUNIT = '{fixed.unit}' added (none given)")
    if isinstance(source, fits.CompImageHDU) or compress:
        image = _compressed(data, header)
    elif isinstance(source, fits.PrimaryHDU):
        image = fits.PrimaryHDU(data, header=header)
    else:
        image = fits.ImageHDU(data, header=header)
    hdus = [
        image if position == index else hdu
        for position, hdu in enumerate(hdulist)
        if position == index or hdu.name not in OUTPUT_EXTENSIONS
    ]
    if uncertainty_at is not None and fixed.uncertainty is not None:
        source = hdulist[uncertainty_at]
        values = np.asarray(fixed.uncertainty.array, dtype=np.float32)
        updated = type(source)(values, header=source.header.copy())
        hdus[hdus.index(source)] = updated
    if not isinstance(hdus[0], fits.PrimaryHDU):
        hdus.insert(0, fits.PrimaryHDU())
    extensions = []
    if "MASK" in planes:
        extensions.append(
            fits.ImageHDU(np.asarray(fixed.mask, dtype=np.uint8), name="MASK")
        )
    if "UNCERT" in planes and fixed.uncertainty is not None:
        uncertainty = fits.ImageHDU(
            np.asarray(fixed.uncertainty.array, dtype=data.dtype), name="UNCERT"
        )
        uncertainty.header["UTYPE"] = type(fixed.uncertainty).__name__
        extensions.append(uncertainty)
    if "FLAGS" in planes:
        extensions.append(_flags_hdu(fixed.flags))
    for plane in extensions:
        plane.header[_IMAGE_CARD] = (hdus.index(image), "index of the image described")
    if compress:
        extensions = [
            _compressed(hdu.data, hdu.header, name=hdu.name) for hdu in extensions
        ]
    for hdu in hdus:
        repair_header(hdu.header)
    return fits.HDUList(hdus + extensions)


# The card by which a plane names the image it describes.
_IMAGE_CARD = "IMAGEHDU"


def check_planes_belong(hdulist, index):
    """Refuse to replace planes that describe another image of the file.

    A plane that names its image (`_IMAGE_CARD`) must name ``index``. One
    that does not (written by ccdproc, or before the card) is taken for the
    image's only where the file holds no other image.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> image = np.zeros((4, 4), np.float32)
    >>> flags = fits.ImageHDU(np.zeros((4, 4), np.uint16), name="FLAGS")
    >>> flags.header["IMAGEHDU"] = 1
    >>> hdus = [fits.PrimaryHDU(), fits.ImageHDU(image), fits.ImageHDU(image), flags]
    >>> check_planes_belong(fits.HDUList(hdus), 1)  # the image they describe
    >>> check_planes_belong(fits.HDUList(hdus), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: its FLAGS planes may describe HDU 1, not HDU 2: ...
    """
    planes = [hdu for hdu in hdulist if hdu.name in OUTPUT_EXTENSIONS]
    if not planes:
        return
    named = {hdu.header[_IMAGE_CARD] for hdu in planes if _IMAGE_CARD in hdu.header}
    others = [
        position
        for position in _image_positions(hdulist)
        if position != index
        and hdulist[position].name not in OUTPUT_EXTENSIONS
        and hdulist[position].name not in UNCERTAINTY_EXTENSIONS
    ]
    foreign = named - {index}
    unnamed = any(_IMAGE_CARD not in hdu.header for hdu in planes)
    if foreign or (unnamed and others):
        owner = (
            "HDU " + ", ".join(sorted(map(str, foreign)))
            if foreign
            else "another image"
        )
        found = "/".join(hdu.name for hdu in planes)
        raise ValueError(
            f"its {found} planes may describe {owner}, not HDU {index}: fixing "
            f"HDU {index} would replace them; fix each image from the original "
            "file instead"
        )


def _compressed(data, header, name=None):
    """A lossless tile-compressed HDU (GZIP_2, floats not quantised)."""
    from astropy.io import fits

    return fits.CompImageHDU(
        data, header=header, name=name, compression_type="GZIP_2", quantize_level=0.0
    )


_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_KEYWORD_CHARACTERS = re.compile(r"[^A-Z0-9_-]")


def repair_header(header):
    """Make every card of ``header`` writable, saying what was changed.

    A card that FITS does not allow (control characters in a value or
    comment, a keyword with characters a keyword cannot hold) would make the
    whole file fail to write. Each such card is mended: unprintable
    characters become ``?``, an illegal keyword has them replaced by ``_``.
    Each change is recorded in HISTORY and warned about, naming the card.

    Returns
    -------
    list of str
        What was changed, one line per card.

    Raises
    ------
    ValueError
        Naming the card, if it cannot be mended.
    """
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    notes = []
    for position, card in enumerate(header.cards):
        try:
            card.verify("exception")
        except VerifyError:
            pass
        else:
            continue
        keyword = card.keyword
        if not fits.Card._keywd_FSC_RE.match(keyword) and len(keyword) <= 8:
            keyword = _KEYWORD_CHARACTERS.sub("_", keyword.upper()) or "BADKEY"

        def printable(text):
            return _PRINTABLE.sub("?", text) if isinstance(text, str) else text

        mended = fits.Card(keyword, printable(card.value), printable(card.comment))
        try:
            mended.verify("exception")
        except VerifyError as error:
            reason = str(error).strip().splitlines()[-2:]
            raise ValueError(
                f"header card {position} ({card.keyword!r}) cannot be written: "
                f"{' '.join(reason)}"
            ) from None
        del header[position]
        header.insert(position, mended)
        changes = ["unprintable characters -> '?'"] * (mended.keyword == card.keyword)
        if mended.keyword != card.keyword:
            changes = [f"keyword -> {mended.keyword!r}"]
        notes.append(f"mended card {position} {card.keyword!r}: {changes[0]}")
    for note in notes:
        warnings.warn(note, AstropyUserWarning, stacklevel=2)
        header.add_history(f"ccdpixfix: {note}")
    return notes
