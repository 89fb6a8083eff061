"""Debayered colour images: a cube of three planes, each fixed on its own.

A colour image from a one-shot colour camera after demosaicing, or three
filter frames stacked, is a ``(3, ny, nx)`` cube (red, green, blue). Each
plane is flagged and repaired as a grey image, with its own noise model,
so that a transient that shows in one plane only is found there, and a
pixel is replaced from the same plane's neighbours. The bad-pixel map, a
property of the detector, applies to every plane.
"""

import numpy as np

from ..utils.ccd import new_ccd, part_of, uncertainty_sigma
from .cfa import cfa_pattern

__all__ = ["check_cube_pattern", "is_rgb_cube", "per_plane"]

_RGB_PLANES = 3


def is_rgb_cube(ccd):
    """Whether a frame holds a ``(3, ny, nx)`` colour cube."""
    shape = np.shape(getattr(ccd, "data", None))
    return len(shape) == 3 and shape[0] == _RGB_PLANES and min(shape[1:]) > 0


def check_cube_pattern(cfa):
    """A ValueError if ``cfa`` names a Bayer pattern for a colour cube.

    A cube's planes are colours already: a pattern given with one is a
    mistake (``"none"`` and None are fine).
    """
    if cfa_pattern(None, cfa) is not None:
        raise ValueError("a cube of three colour planes has no Bayer pattern")


def _plane(ccd, index):
    """Plane ``index`` of a cube; 2-D flags or masks apply to every plane."""
    return part_of(ccd, lambda array: array[index] if array.ndim == 3 else array)


def per_plane(ccd, step):
    """Run ``step(plane) -> (CCDData, counts)`` on each plane of a cube.

    Returns
    -------
    (`~astropy.nddata.CCDData`, dict)
        The cube (a new object with ``ccd``'s header and WCS) and the counts
        summed over the planes.
    """
    outputs, counts = [], {}
    for index in range(_RGB_PLANES):
        out, found = step(_plane(ccd, index))
        outputs.append(out)
        for key, value in found.items():
            counts[key] = counts.get(key, 0) + value
    sigmas = [uncertainty_sigma(out, native=True) for out in outputs]
    sigma = None if any(s is None for s in sigmas) else np.stack(sigmas)
    cube = new_ccd(
        ccd,
        data=np.stack([out.data for out in outputs]),
        flags=np.stack([out.flags for out in outputs]),
        sigma=sigma,
    )
    return cube, counts
