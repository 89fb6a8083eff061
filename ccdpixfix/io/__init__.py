"""Reading and writing: FITS (``ccdpixfix.io.fits``: cards kept verbatim,
atomic writes) and 8- or 16-bit TIFF/PNG (``ccdpixfix.io.images``).
"""

from .fits import (
    FITS_SUFFIXES,
    OUTPUT_EXTENSIONS,
    OutputRules,
    RunCancelled,
    atomic_path,
    available_memory,
    check_image_size,
    companion_uncertainty,
    fixed_hdulist,
    frame_from_hdu,
    image_hdu_index,
    is_fits_name,
    is_temporary_name,
    new_run_id,
    repair_header,
    write_hdulist_atomic,
)

__all__ = [
    "FITS_SUFFIXES",
    "OUTPUT_EXTENSIONS",
    "OutputRules",
    "RunCancelled",
    "atomic_path",
    "available_memory",
    "check_image_size",
    "companion_uncertainty",
    "fixed_hdulist",
    "frame_from_hdu",
    "image_hdu_index",
    "is_fits_name",
    "is_temporary_name",
    "new_run_id",
    "repair_header",
    "write_hdulist_atomic",
]
