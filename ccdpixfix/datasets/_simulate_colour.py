"""Colour for the simulated camera: a Bayer mosaic behind every pixel.

Each pixel of a one-shot colour camera sees the light through a red, green
or blue filter. The sky, the flat-field lamp and the nebula each have their
own colour, and every star gets its own red and blue brightness relative to
green, so that a star's pixels differ by colour as on a real raw frame.
"""

import numpy as np

from ._simulate_sky import MOFFAT_BETA, _moffat_stars

#: Relative signal through each filter, by light source.
SKY = {"R": 0.8, "G": 1.0, "B": 0.6}
LAMP = {"R": 0.7, "G": 1.0, "B": 0.5}
NEBULA = {"R": 1.0, "G": 0.35, "B": 0.25}  # H-alpha red
# Stars' red and blue relative to green: a factor up to 2.5 either way.
_STAR_COLOUR_DEX = 0.4


def tint(colours, weights):
    """Per-pixel factor of a light source's colour, for a colour map."""
    if colours is None:
        return 1.0
    factor = np.ones(colours.shape)
    for name, weight in weights.items():
        factor[colours == name] = weight
    return factor


def coloured_star_light(shape, stars, fwhm, colours, generator, beta=MOFFAT_BETA):
    """The stars' light in each pixel's own colour; adds their colours to ``stars``."""
    count = len(stars)
    red = 10 ** generator.uniform(-_STAR_COLOUR_DEX, _STAR_COLOUR_DEX, count)
    blue = 10 ** generator.uniform(-_STAR_COLOUR_DEX, _STAR_COLOUR_DEX, count)
    stars["red"], stars["blue"] = red, blue
    x, y, flux = (np.asarray(stars[key]) for key in ("x", "y", "flux"))
    light = np.zeros(shape)
    for name, factor in (("R", red), ("G", np.ones(count)), ("B", blue)):
        image, _ = _moffat_stars(shape, x, y, flux * factor, fwhm, beta=beta)
        light[colours == name] = image[colours == name]
    return light
