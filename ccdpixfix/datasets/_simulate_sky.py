"""Astronomical light for the simulated camera in `ccdpixfix.datasets`.

Private helpers that render, in electrons per pixel, what the sky sends to
the sensor during one exposure: pixel-integrated Moffat stars drawn from a
power-law flux distribution, and smooth nebulosity.  Every function draws
from the `numpy.random.Generator` it is given, in a fixed order, so frames
are reproducible from their seeds.
"""

import math

import numpy as np
from astropy.table import Table
from scipy.signal import fftconvolve

#: Moffat ``beta`` of the simulated point-spread function.
MOFFAT_BETA = 3.0


def _nebulosity(shape, sky: float, generator) -> np.ndarray:
    """Broad Gaussian clouds plus one filament, in electrons; no pixel structure."""
    ny, nx = shape
    scale = min(shape) / 256
    rows, cols = np.arange(ny)[:, None], np.arange(nx)[None, :]
    field = np.zeros(shape)
    for _ in range(generator.integers(3, 7)):
        sigma = max(3.0, generator.uniform(15.0, 60.0) * scale)
        row, col = generator.uniform(0, ny), generator.uniform(0, nx)
        profile = np.exp(-((rows - row) ** 2) / (2 * sigma**2)) * np.exp(
            -((cols - col) ** 2) / (2 * sigma**2)
        )
        field += generator.uniform(0.5, 3.0) * sky * profile
    angle = generator.uniform(0.0, np.pi)
    row, col = generator.uniform(0, ny), generator.uniform(0, nx)
    along = (cols - col) * np.cos(angle) + (rows - row) * np.sin(angle)
    across = (rows - row) * np.cos(angle) - (cols - col) * np.sin(angle)
    major, minor = max(10.0, 80.0 * scale), max(3.0, 5.0 * scale)
    exponent = along**2 / (2 * major**2) + across**2 / (2 * minor**2)
    return field + generator.uniform(0.5, 1.5) * sky * np.exp(-exponent)


# Sources' fluxes follow a truncated power law N(>F) ~ F**-_SLOPE.
_SLOPE = 0.6


def _placed_sources(shape, count, low, high, generator):
    """Positions anywhere on the frame, and fluxes by the power law between
    ``low`` and ``high`` (inverse CDF)."""
    ny, nx = shape
    x = generator.uniform(-0.5, nx - 0.5, count)
    y = generator.uniform(-0.5, ny - 0.5, count)
    tail = generator.uniform(0.0, 1.0 - (high / low) ** -_SLOPE, count)
    return x, y, low * (1.0 - tail) ** (-1.0 / _SLOPE)


def _stars(
    shape, count: int, fwhm: float, generator, beta: float = MOFFAT_BETA
) -> tuple[Table, np.ndarray]:
    """Draw positions and power-law fluxes, and render the stars in electrons."""
    ny, nx = shape
    low, high = 2e3, 3e6
    x, y, flux = _placed_sources(shape, count, low, high, generator)
    if count:
        # Pin the brightest star at the top of the range, in the well-lit
        # central half, so that any seeing up to FWHM ~4.4 px saturates it.
        brightest = np.argmax(flux)
        flux[brightest] = high
        x[brightest] = generator.uniform(nx / 4, 3 * nx / 4)
        y[brightest] = generator.uniform(ny / 4, 3 * ny / 4)
    image, peak = _moffat_stars(shape, x, y, flux, fwhm, beta=beta)
    columns = {"x": x, "y": y, "flux": flux, "fwhm": np.full(count, float(fwhm))}
    return Table({**columns, "peak_electrons": peak}), image


# The faint stars (`_faint_stars`) continue the bright ones' power law a
# decade further down, to 200 e-: peaks of about 3-40 sigma on the default
# sky, where a faint compact hit and a faint star look most alike. Their
# number follows from the law: (10 ** 0.6 - 1), about three, per bright star.
_FAINT_LOW = 2e2
_FAINT_PER_STAR = 10**0.6 - 1


def _faint_stars(
    shape, count: int, fwhm: float, generator, beta: float = MOFFAT_BETA
) -> tuple[Table, np.ndarray]:
    """Stars a decade fainter than `_stars` draws, by the same power law."""
    x, y, flux = _placed_sources(shape, count, _FAINT_LOW, 10 * _FAINT_LOW, generator)
    image, peak = _moffat_stars(shape, x, y, flux, fwhm, beta=beta)
    columns = {"x": x, "y": y, "flux": flux, "fwhm": np.full(count, float(fwhm))}
    return Table({**columns, "peak_electrons": peak}), image


# Galaxies (`_galaxies`): exponential discs of half-light radius 0.3-2.5 px
# (log-uniform) and axis ratio 0.3-1, their fluxes by the stars' power law
# from 300 e- to 3e4 e-, seen through the frame's PSF: sources broader than
# the stars, some of them compact enough to be nearly as sharp.
_GALAXY_FLUX = (3e2, 3e4)
_GALAXY_RADIUS = (0.3, 2.5)
_GALAXY_AXES = (0.3, 1.0)
# An exponential disc holds half its light within 1.678 scale lengths.
_EXPONENTIAL_HALF_LIGHT = 1.678
_GALAXY_REACH = 12


def _galaxies(shape, count: int, fwhm: float, generator, beta: float = MOFFAT_BETA):
    """Draw compact galaxies and render them, through the PSF, in electrons.

    Each disc is sampled 5 x 5 times per pixel out to `_GALAXY_REACH` px,
    then the image is convolved with the pixel-integrated Moffat PSF (a
    pixel's width of extra blur, small beside the PSF's).
    """
    ny, nx = shape
    x, y, flux = _placed_sources(shape, count, *_GALAXY_FLUX, generator)
    radius = np.exp(generator.uniform(*np.log(_GALAXY_RADIUS), count))
    axis_ratio = generator.uniform(*_GALAXY_AXES, count)
    angle = generator.uniform(0.0, np.pi, count)
    # Room for a disc's whole window at the edges, cut off at the end.
    reach = _GALAXY_REACH
    image = np.zeros((ny + 2 * reach, nx + 2 * reach))
    offsets = np.arange(-reach, reach + 1)
    fine = (offsets[:, None] + (np.arange(5) + 0.5) / 5 - 0.5).ravel()
    for index in range(count):
        row, col = round(y[index]), round(x[index])
        d_row = fine[:, None] + (row - y[index])
        d_col = fine[None, :] + (col - x[index])
        cos, sin = math.cos(angle[index]), math.sin(angle[index])
        major = d_col * cos + d_row * sin
        minor = (d_row * cos - d_col * sin) / axis_ratio[index]
        scale = radius[index] / _EXPONENTIAL_HALF_LIGHT
        disc = np.exp(-np.hypot(major, minor) / scale)
        disc = disc.reshape(offsets.size, 5, offsets.size, 5).mean(axis=(1, 3))
        disc *= flux[index] / disc.sum()
        # (row, col) of the frame is (row + reach, col + reach) here.
        image[row : row + 2 * reach + 1, col : col + 2 * reach + 1] += disc
    image = image[reach:-reach, reach:-reach]
    reach = math.ceil(max(10.0, 6.0 * fwhm))
    psf, _ = _moffat_stars(
        (2 * reach + 1,) * 2,
        np.array([reach]),
        np.array([reach]),
        np.ones(1),
        fwhm,
        beta=beta,
    )
    image = fftconvolve(image, psf / psf.sum(), mode="same")
    table = Table(
        {
            "x": x,
            "y": y,
            "flux": flux,
            "radius": radius,
            "axis_ratio": axis_ratio,
            "angle": angle,
            "fwhm": np.full(count, float(fwhm)),
        }
    )
    # The transform leaves rounding noise of 1e-12 where there is no light.
    return table, np.clip(image, 0.0, None)


def _moffat_stars(
    shape, x, y, flux, fwhm: float, *, beta=MOFFAT_BETA, oversample=5, chunk=32
):
    """Pixel-integrated Moffat stars by ``oversample`` x ``oversample`` sampling.

    Returns the image and each star's electrons in its nearest pixel.
    """
    ny, nx = shape
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    radius = math.ceil(max(10.0, 6.0 * fwhm))
    offsets = np.arange(-radius, radius + 1)
    sub_pixel = (np.arange(oversample) + 0.5) / oversample - 0.5
    fine = (offsets[:, None] + sub_pixel).ravel()
    image, peaks = np.zeros(ny * nx), np.zeros(len(x))
    for start in range(0, len(x), chunk):
        part = slice(start, start + chunk)
        col, row = np.rint(x[part]).astype(int), np.rint(y[part]).astype(int)
        d_col = fine + (col - x[part])[:, None]
        d_row = fine + (row - y[part])[:, None]
        radius_squared = d_row[:, :, None] ** 2 + d_col[:, None, :] ** 2
        density = (1.0 + radius_squared / alpha**2) ** -beta
        shape_5d = (-1, offsets.size, oversample, offsets.size, oversample)
        stamps = density.reshape(shape_5d).mean(axis=(2, 4))
        stamps *= flux[part, None, None] * (beta - 1) / (math.pi * alpha**2)
        peaks[part] = stamps[:, radius, radius]
        rows = (row[:, None] + offsets)[:, :, None]
        cols = (col[:, None] + offsets)[:, None, :]
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        flat = (rows * nx + cols)[inside]
        image += np.bincount(flat, weights=stamps[inside], minlength=ny * nx)
    return image.reshape(shape), peaks


def _spectrum_light(shape, sky: float, generator):
    """Light of a long-slit spectrum, in electrons, and where its parts lie.

    Dispersion runs along the columns (x), the slit along the rows (y). The
    slit is lit between two rows (sharp edges, as on a real detector), the
    sky has a continuum plus emission lines of 1.8-3.5 px FWHM spanning the
    slit, and one object trace of 2.5 px FWHM drifts slowly across the rows
    with its own continuum and emission lines.
    """
    ny, nx = shape
    rows = np.arange(ny)[:, None]
    cols = np.arange(nx)
    first, last = int(0.08 * ny), int(0.92 * ny)
    slit = (rows >= first) & (rows <= last)
    line_profile = np.zeros(nx)
    n_lines = max(3, nx // 25)
    centres = generator.uniform(3, nx - 3, n_lines)
    for centre in centres:
        sigma = generator.uniform(1.8, 3.5) / 2.3548
        flux = 10 ** generator.uniform(2.5, 4.5)
        line_profile += (
            flux
            / (sigma * math.sqrt(2 * math.pi))
            * np.exp(-0.5 * ((cols - centre) / sigma) ** 2)
        )
    trace_row = ny / 2 + generator.uniform(-0.05, 0.05) * (cols - nx / 2)
    trace_sigma = 2.5 / 2.3548
    across = np.exp(-0.5 * ((rows - trace_row[None, :]) / trace_sigma) ** 2)
    across /= trace_sigma * math.sqrt(2 * math.pi)
    continuum = generator.uniform(2000, 20000) * (1 + 0.3 * np.sin(cols / nx * 6))
    light = (sky + line_profile[None, :] + continuum[None, :] * across) * slit
    layout = {
        "slit_rows": (first, last),
        "line_columns": np.sort(centres),
        "trace_row": trace_row,
    }
    return light, layout
