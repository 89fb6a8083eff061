"""Reading frames and writing FITS files safely."""

import os
import tempfile
from pathlib import Path

__all__ = ["write_hdulist_atomic"]


def write_hdulist_atomic(hdulist, path, *, overwrite=False):
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
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=directory
    )
    os.close(handle)
    try:
        hdulist.writeto(temporary, overwrite=True, checksum=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
