"""Everyday image formats: TIFF and PNG in, the same format out.

Astrophotographers, microscopists and lab cameras often give 8- or 16-bit
TIFF or PNG files rather than FITS. `read_image` turns one into a
`~astropy.nddata.CCDData` (a grey image, or a ``(3, ny, nx)`` colour cube)
with the file's metadata kept in ``meta``; `write_image` writes a fixed
frame back in the input's format and bit depth, with that metadata, and
`write_sidecar` puts the flags, mask and uncertainty, which these formats
cannot hold, in a FITS file beside it.

The readers are optional: ``pip install "ccdpixfix[images]"`` installs
tifffile (TIFF) and Pillow (PNG).
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from ..flags import flags_to_mask
from .fits import OutputRules, _flags_hdu

__all__ = [
    "IMAGE_SUFFIXES",
    "is_image_name",
    "read_image",
    "sidecar_path",
    "write_image",
    "write_sidecar",
]

#: File name endings read as images rather than FITS.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
_COLOUR_CHANNELS = (3, 4)  # RGB, or RGB with alpha


def is_image_name(path):
    """Whether a file name ends like a TIFF or PNG file."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def _needs(module, extra="images"):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"reading and writing this format needs {module}: "
            f'pip install "ccdpixfix[{extra}]"'
        ) from None


def _planes(pixels):
    """(data, alpha): colour samples become a (3, ny, nx) cube."""
    if pixels.ndim == 3 and pixels.shape[-1] in _COLOUR_CHANNELS:
        alpha = pixels[..., 3].copy() if pixels.shape[-1] == 4 else None
        return np.ascontiguousarray(np.moveaxis(pixels[..., :3], -1, 0)), alpha
    if pixels.ndim != 2:
        raise ValueError(f"an image of shape {pixels.shape} is neither grey nor RGB(A)")
    return pixels, None


def read_image(path):
    """A TIFF or PNG file as a `~astropy.nddata.CCDData`.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``, ``.tiff`` or ``.png`` file, grey or RGB(A), of any bit
        depth.

    Returns
    -------
    `~astropy.nddata.CCDData`
        Grey ``(ny, nx)`` or colour ``(3, ny, nx)`` data in the file's type,
        unit ``adu``; ``meta`` holds ``IMAGEFMT`` (``TIFF``, ``PNG``), and the
        file's own metadata, which `write_image` writes back: ``image_info``
        (PNG text chunks; the TIFF description, photometric interpretation
        and resolution) and ``image_save`` (PNG resolution, colour profile
        and gamma). Other TIFF tags (EXIF, colour profile) and any pages
        after the first are not kept.

    Raises
    ------
    ImportError
        If tifffile (TIFF) or Pillow (PNG) is not installed.
    ValueError
        If the file holds neither a grey nor an RGB(A) image.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        _needs("PIL")
        from PIL import Image

        with Image.open(path) as image:
            info = {k: v for k, v in image.info.items() if isinstance(v, str)}
            # resolution and colour profile travel as save() arguments
            extra = {
                key: image.info[key]
                for key in ("dpi", "icc_profile", "gamma")
                if key in image.info
            }
            pixels = np.asarray(image)
        meta = {"IMAGEFMT": "PNG", "image_info": info, "image_save": extra}
    else:
        tifffile = _needs("tifffile")
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            pixels = page.asarray()
            info = {
                "description": page.description or None,
                "photometric": page.photometric.name.lower(),
                "resolution": page.resolution,
                "resolutionunit": page.resolutionunit.name.lower(),
            }
        meta = {"IMAGEFMT": "TIFF", "image_info": info}
    data, alpha = _planes(pixels)
    meta["image_dtype"] = str(data.dtype)
    if alpha is not None:
        meta["image_alpha"] = alpha
    return CCDData(data, unit="adu", meta=meta)


def _pixels_of(ccd):
    """The frame's data as the file's type and layout (samples last)."""
    dtype = np.dtype(ccd.meta.get("image_dtype", np.asarray(ccd.data).dtype))
    data = np.asarray(ccd.data)
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        data = np.clip(np.rint(np.nan_to_num(data)), limits.min, limits.max)
    data = data.astype(dtype)
    if data.ndim == 3:
        data = np.moveaxis(data, 0, -1)
        alpha = ccd.meta.get("image_alpha")
        if alpha is not None:
            data = np.concatenate([data, np.asarray(alpha, dtype)[..., None]], -1)
    return np.ascontiguousarray(data)


def write_image(ccd, path, *, overwrite=False, rules=None):
    """Write a frame read by `read_image` back in its format and bit depth.

    Values are rounded to the file's integer type (and clipped to its
    range); replaced pixels are the only ones that change. Written
    atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    pixels = _pixels_of(ccd)
    info = ccd.meta.get("image_info", {})
    rules = OutputRules(overwrite=overwrite) if rules is None else rules
    with rules.path(path) as temporary:
        if ccd.meta.get("IMAGEFMT") == "PNG":
            from PIL import Image, PngImagePlugin

            text = PngImagePlugin.PngInfo()
            for key, value in info.items():
                text.add_text(key, value)
            extra = ccd.meta.get("image_save", {})
            Image.fromarray(pixels).save(temporary, format="PNG", pnginfo=text, **extra)
        else:
            tifffile = _needs("tifffile")
            tifffile.imwrite(
                temporary,
                pixels,
                photometric=info.get("photometric") or None,
                description=info.get("description"),
                resolution=info.get("resolution"),
                resolutionunit=info.get("resolutionunit"),
                metadata=None,
            )


def sidecar_path(path):
    """Where the flags of an image file go: ``NAME.flags.fits`` beside it."""
    path = Path(path)
    return path.with_name(path.stem + ".flags.fits")


def write_sidecar(ccd, path, *, overwrite=False, rules=None):
    """The flags, mask and uncertainty of a fixed image, as a FITS file.

    The primary header holds the HISTORY of the steps and ``ORIGFILE``;
    the extensions ``FLAGS`` (uint16, with the flag names), ``MASK`` (uint8)
    and, if there is one, ``UNCERT`` (standard deviation, float32) have the
    image's shape (``(3, ny, nx)`` for colour).
    """
    header = fits.Header()
    header["ORIGFILE"] = (Path(path).name.replace(".flags.fits", ""), "image fixed")
    for line in ccd.meta.get("HISTORY", []):
        header.add_history(line)
    flags = np.asarray(ccd.flags, dtype=np.uint16)
    hdus = [
        fits.PrimaryHDU(header=header),
        _flags_hdu(flags),
        fits.ImageHDU(flags_to_mask(flags).astype(np.uint8), name="MASK"),
    ]
    if ccd.uncertainty is not None:
        from ..utils.ccd import uncertainty_sigma

        sigma = uncertainty_sigma(ccd).astype(np.float32)
        hdus.append(fits.ImageHDU(sigma, name="UNCERT"))
    rules = OutputRules(overwrite=overwrite) if rules is None else rules
    with rules.path(path) as temporary:
        fits.HDUList(hdus).writeto(temporary)
