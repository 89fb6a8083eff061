"""Colour (Bayer) mosaics: every step works on same-colour pixels only.

In a one-shot colour camera each pixel sits behind a red, green or blue
filter, repeating in 2x2 cells (``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``, read
left to right, top to bottom). A pixel's eight neighbours see other colours,
so a local median of them mistakes the colour of a star, or the edge of a
coloured nebula, for a defect, and would replace a red pixel with green
light. ccdpixfix therefore splits a mosaic into its four sub-planes (one per
cell position: R, G1, G2 and B, each half the size in both directions), runs
the grey algorithm on each, and puts the results back in place: levels,
noise, neighbours and replacements are all of the pixel's own colour.

The pattern comes from the ``cfa`` argument of a step, or from the header
keywords that capture programs (N.I.N.A., SharpCap, MaxIm DL, ASIAIR,
KStars/Ekos) write: ``BAYERPAT`` with the offsets ``XBAYROFF`` and
``YBAYROFF`` of the image's first pixel within the pattern. The pattern
describes the rows as they are stored, whatever ``ROWORDER`` says (Siril,
which flips ``TOP-DOWN`` files on reading, flips the pattern identifier with
them), so ``ROWORDER`` itself changes nothing here.
"""

import numpy as np

from ..utils.ccd import input_flags, new_ccd, output_dtype, part_of, uncertainty_sigma

__all__ = [
    "CFA_PATTERNS",
    "cfa_pattern",
    "colour_of_pixels",
    "colour_sites",
    "per_colour",
]

#: The Bayer patterns understood, as the colours of a 2x2 cell read left to
#: right, top to bottom.
CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_NO_PATTERN = ("NONE", "MONO", "")


def _shifted(pattern, x_offset, y_offset):
    """The pattern seen from a first pixel ``(x_offset, y_offset)`` into it."""
    cell = [pattern[0:2], pattern[2:4]]
    return "".join(
        cell[(row + y_offset) % 2][(col + x_offset) % 2]
        for row in (0, 1)
        for col in (0, 1)
    )


def _header_offset(meta, key):
    try:
        value = meta.get(key, 0)
        return round(float(value))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"header {key}={value!r} is not a whole number") from None


def cfa_pattern(meta=None, cfa=None):
    """The Bayer pattern of a frame at its first pixel, or None for grey data.

    Parameters
    ----------
    meta : dict-like, optional
        The header: ``BAYERPAT`` (also ``CFAPATT`` or ``COLORTYP``) and the
        offsets ``XBAYROFF`` and ``YBAYROFF``.
    cfa : str, optional
        The pattern, which overrides the header (``"none"`` for a camera
        whose header claims a pattern that the data no longer have, such as
        a debayered or binned frame).

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        For a pattern that is not one of `CFA_PATTERNS`.

    Examples
    --------
    >>> from ccdpixfix.colour.cfa import cfa_pattern
    >>> cfa_pattern({"BAYERPAT": "RGGB", "XBAYROFF": 1})
    'GRBG'
    >>> cfa_pattern({"BAYERPAT": "RGGB"}, cfa="none") is None
    True
    """
    meta = {} if meta is None else meta
    offsets = (0, 0)
    if cfa is None:
        for key in ("BAYERPAT", "CFAPATT", "COLORTYP"):
            if key in meta:
                cfa = meta[key]
                break
        else:
            return None
        offsets = (_header_offset(meta, "XBAYROFF"), _header_offset(meta, "YBAYROFF"))
    pattern = str(cfa).strip().upper()
    if pattern in _NO_PATTERN:
        return None
    if pattern not in CFA_PATTERNS:
        raise ValueError(
            f"unknown Bayer pattern {cfa!r}; use one of {', '.join(CFA_PATTERNS)} "
            "(or 'none' for grey data)"
        )
    return _shifted(pattern, *offsets)


def colour_sites(pattern):
    """The four cell positions of a pattern: (name, row offset, column offset).

    Examples
    --------
    >>> from ccdpixfix.colour.cfa import colour_sites
    >>> colour_sites("GBRG")
    [('G1', 0, 0), ('B', 0, 1), ('R', 1, 0), ('G2', 1, 1)]
    """
    names, greens = [], 0
    for colour in pattern:
        if colour == "G":
            greens += 1
            colour = f"G{greens}"
        names.append(colour)
    return [(names[2 * dy + dx], dy, dx) for dy in (0, 1) for dx in (0, 1)]


def colour_of_pixels(shape, pattern):
    """An array of ``"R"``, ``"G"`` and ``"B"``: the colour of each pixel."""
    colours = np.empty(shape, dtype="<U1")
    for name, dy, dx in colour_sites(pattern):
        colours[dy::2, dx::2] = name[0]
    return colours


def sub_frame(ccd, dy, dx, flags=None):
    """The same-colour pixels at ``(dy, dx)`` of each 2x2 cell, as a frame.

    The header is shared with ``ccd`` (steps copy it for their output); the
    data, flags, mask and uncertainty are the sub-planes.
    """
    return part_of(ccd, lambda array: array[dy::2, dx::2], flags)


def planes(shape, pattern):
    """(name, (row slice, column slice)) of each non-empty sub-plane."""
    ny, nx = shape
    return [
        (name, (slice(dy, None, 2), slice(dx, None, 2)))
        for name, dy, dx in colour_sites(pattern)
        if dy < ny and dx < nx
    ]


def per_colour(ccd, pattern, step):
    """Run ``step`` on each same-colour sub-plane and put the results together.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The mosaic.
    pattern : str
        Its Bayer pattern at the first pixel.
    step : callable
        ``step(sub_frame, plane) -> (CCDData, counts)`` where ``plane`` is
        the (row slice, column slice) of the sub-plane in the mosaic.

    Returns
    -------
    (`~astropy.nddata.CCDData`, dict)
        The whole frame (a new object: header, WCS and unit of ``ccd``) and
        the counts summed over the colours.
    """
    shape = np.shape(ccd.data)
    flags_in = input_flags(ccd)
    data = np.empty(shape, dtype=output_dtype(ccd.data))
    flags = np.zeros(shape, dtype=np.uint16)
    sigma = None
    counts = {}
    for _, plane in planes(shape, pattern):
        sub = sub_frame(ccd, plane[0].start, plane[1].start, flags=flags_in)
        out, found = step(sub, plane)
        data[plane] = out.data
        flags[plane] = out.flags
        plane_sigma = uncertainty_sigma(out, native=True)
        if plane_sigma is not None:
            if sigma is None:
                sigma = np.full(shape, np.nan, dtype=plane_sigma.dtype)
            sigma[plane] = plane_sigma
        for key, value in found.items():
            counts[key] = counts.get(key, 0) + value
    return new_ccd(ccd, data=data, flags=flags, sigma=sigma), counts
