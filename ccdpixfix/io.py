"""Reading frames and writing FITS files safely."""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "FITS_SUFFIXES",
    "OUTPUT_EXTENSIONS",
    "atomic_path",
    "fixed_hdulist",
    "frame_from_hdu",
    "image_hdu_index",
    "is_fits_name",
    "write_hdulist_atomic",
]


@contextlib.contextmanager
def atomic_path(path, *, overwrite=False):
    """A temporary path beside ``path`` that becomes ``path`` on success.

    Write to the path this yields; when the block ends without error the
    file is renamed to ``path`` (permissions as for any new file), and
    otherwise removed, so that no partial file is ever left at ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (--overwrite) to replace it"
        )
    directory = path.parent if str(path.parent) else Path(".")
    # The temporary keeps the target's suffixes: astropy compresses by name.
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=directory
    )
    os.close(handle)
    try:
        yield temporary
        # mkstemp makes files private (0600); an output is an ordinary file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_hdulist_atomic(hdulist, path, *, overwrite=False, checksum=False):
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

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    with atomic_path(path, overwrite=overwrite) as temporary:
        hdulist.writeto(temporary, overwrite=True, checksum=checksum)


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
        images = [
            position
            for position, candidate in enumerate(hdulist)
            if candidate.is_image and candidate.header.get("NAXIS", 0) > 0
        ]
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
        shape = tuple(candidate.header.get(f"NAXIS{i}") for i in range(1, 4))
        raise ValueError(
            f"HDU {index} is not a 2-D image nor a colour cube of three planes "
            f"(NAXIS={naxis}, {shape}); choose an image with --hdu"
        )
    return index


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


def _flags_hdu(flags):
    from astropy.io import fits

    from .flags import PixelFlag

    hdu = fits.ImageHDU(np.asarray(flags, dtype=np.uint16), name="FLAGS")
    for flag in PixelFlag:
        hdu.header[f"HIERARCH FLAG {flag.name}"] = (int(flag), "PixelFlag bit value")
    return hdu


def fixed_hdulist(hdulist, index, fixed):
    """The output file: the input's HDUs with the image replaced, plus planes.

    The repaired image keeps the input HDU's kind (primary, extension or
    tile-compressed, then losslessly) and its header card for card, with the
    step's HISTORY lines appended; only structural cards (BITPIX, BZERO,
    BSCALE, ...) follow the new data type. Extensions ``MASK`` (uint8),
    ``UNCERT`` and ``FLAGS`` (uint16) are appended, replacing any of the
    same names.
    """
    from astropy.io import fits

    source = hdulist[index]
    header = fixed.meta
    data = np.asarray(fixed.data)
    if isinstance(source, fits.CompImageHDU):
        image = fits.CompImageHDU(
            data, header=header, compression_type="GZIP_2", quantize_level=0.0
        )
    elif isinstance(source, fits.PrimaryHDU):
        image = fits.PrimaryHDU(data, header=header)
    else:
        image = fits.ImageHDU(data, header=header)
    hdus = [
        image if position == index else hdu
        for position, hdu in enumerate(hdulist)
        if position == index or hdu.name not in OUTPUT_EXTENSIONS
    ]
    if not isinstance(hdus[0], fits.PrimaryHDU):
        hdus.insert(0, fits.PrimaryHDU())
    mask = fits.ImageHDU(np.asarray(fixed.mask, dtype=np.uint8), name="MASK")
    planes = [mask]
    if fixed.uncertainty is not None:
        uncertainty = fits.ImageHDU(
            np.asarray(fixed.uncertainty.array, dtype=data.dtype), name="UNCERT"
        )
        uncertainty.header["UTYPE"] = type(fixed.uncertainty).__name__
        planes.append(uncertainty)
    planes.append(_flags_hdu(fixed.flags))
    return fits.HDUList(hdus + planes)
