"""Cosmic rays that look like real ones, for `ccdpixfix.datasets`.

Real hits are not one bright pixel and a straight row of them: the charge a
particle frees diffuses on its way to the potential wells, so every event
has a core and wings (a Gaussian spread of 0.3-1.0 px that changes with the
depth of the interaction, hence along an oblique track); energy loss
fluctuates along a track (delta rays); low-energy electrons curl into
worms; and a heavy ion saturates its core. Calibrated against the ESIS
space darks (e2v CCD230-42; ``benchmarks/bench_real.py``): events of 4-14
pixels above 3 sigma (median 7), peaks of 50-500 sigma, 1-16 % of the charge
outside the core, widths (weighted second moment across the event) of
0.4-0.6 px.

Every function draws from the `numpy.random.Generator` it is given, in a
fixed order.
"""

import math

import numpy as np
from scipy.special import erf

# Half-width of the window each charge sample spreads over: 4 sigma of the
# widest halo (2 px) would be 8; 5 keeps >99.9 % of a 1.5-px halo.
_SPREAD_RADIUS = 5
# Shares of the event kinds, from the ESIS darks: mostly compact spots and
# short oblique tracks, a few long grazing tracks and curled worms.
_KINDS = ("spot", "track", "long_track", "worm")
_KIND_SHARES = (0.65, 0.28, 0.02, 0.05)
# Diffusion spread of the charge, in pixels (sigma of a Gaussian): drawn as
# low + (high - low) * u**_SPREAD_POWER, so that most events are as compact
# as the ESIS ones (median width 0.5 px with the pixel) and a few are broad.
_SPREAD_RANGE = (0.3, 1.0)
_SPREAD_POWER = 6
# Compact events (a thinner sensor, with less room to diffuse): spreads
# drawn evenly over this range, sharper than any star, and spots without
# halos.
_COMPACT_RANGE = (0.25, 0.6)
# One event in this many is a heavy ion whose charge is ten times larger:
# its core saturates.
_HEAVY_EVERY = 40
# Samples per pixel of path length.
_SAMPLING = 4


def _pixel_weights(offset, sigma, radius):
    """Share of a Gaussian (centred ``offset`` px from pixel 0) in each pixel.

    Returns an array of shape ``(n, 2 * radius + 1)``.
    """
    edges = np.arange(-radius, radius + 2) - 0.5
    scaled = (edges[None, :] - offset[:, None]) / (math.sqrt(2) * sigma[:, None])
    return 0.5 * np.diff(erf(scaled), axis=1)


def _spread(rows, cols, charges, sigmas):
    """Pixels and charges of point charges spread by diffusion.

    Each sample at ``(rows, cols)`` (floating point) gives ``charges``
    electrons, shared among the pixels around it as a pixel-integrated
    Gaussian of width ``sigmas``.
    """
    base_row, base_col = np.rint(rows).astype(int), np.rint(cols).astype(int)
    weights_y = _pixel_weights(rows - base_row, sigmas, _SPREAD_RADIUS)
    weights_x = _pixel_weights(cols - base_col, sigmas, _SPREAD_RADIUS)
    steps = np.arange(-_SPREAD_RADIUS, _SPREAD_RADIUS + 1)
    share = weights_y[:, :, None] * weights_x[:, None, :] * charges[:, None, None]
    out_rows = base_row[:, None, None] + steps[None, :, None]
    out_cols = base_col[:, None, None] + steps[None, None, :]
    out_rows, out_cols = np.broadcast_arrays(out_rows, out_cols)
    keep = share > 0.05
    return out_rows[keep], out_cols[keep], share[keep]


def _spread_sigma(generator, size=None, compact=False):
    """Diffusion spreads, most near the low end of `_SPREAD_RANGE` (or
    evenly over `_COMPACT_RANGE`)."""
    if compact:
        low, high = _COMPACT_RANGE
        return low + (high - low) * generator.random(size)
    low, high = _SPREAD_RANGE
    return low + (high - low) * generator.random(size) ** _SPREAD_POWER


def _aim(start, shape, generator):
    """A direction, roughly towards the frame centre (so edge hits enter)."""
    centre = (np.asarray(shape) - 1) / 2 - start
    return math.atan2(centre[0], centre[1]) + generator.uniform(-np.pi, np.pi) / 2


def _path(start, angle, length, curl, generator):
    """Sample points along a path of ``length`` px (straight if ``curl`` is 0)."""
    n = max(math.ceil(_SAMPLING * length), 1) + 1
    turns = angle + np.cumsum(curl * generator.standard_normal(n))
    step = length / (n - 1)
    rows = start[0] + np.concatenate([[0.0], np.cumsum(step * np.sin(turns[:-1]))])
    cols = start[1] + np.concatenate([[0.0], np.cumsum(step * np.cos(turns[:-1]))])
    return rows, cols


def _energy_loss(per_pixel, n, generator):
    """Charge of each sample: a mean loss with fluctuations and delta rays."""
    charges = per_pixel / _SAMPLING * generator.lognormal(0.0, 0.35, n)
    # A delta ray now and then: a knock-on electron deposits a lump.
    delta = generator.random(n) < 0.02
    charges[delta] *= 1 + generator.exponential(3.0, delta.sum())
    return charges


def realistic_cosmic_ray(start, shape, kind, generator, compact=False):
    """Pixels (rows, cols) and electrons of one event of ``kind``.

    ``compact``: spreads from `_COMPACT_RANGE`, and a spot has no halo.
    """
    heavy = 10.0 if generator.integers(0, _HEAVY_EVERY) == 0 else 1.0
    if kind == "spot":
        charge = heavy * math.exp(generator.uniform(math.log(200.0), math.log(1e4)))
        sigma = _spread_sigma(generator, compact=compact)
        if compact:
            rows = np.array([start[0]]) + generator.uniform(-0.5, 0.5)
            cols = np.array([start[1]]) + generator.uniform(-0.5, 0.5)
            return _spread(rows, cols, np.array([charge]), np.array([sigma]))
        halo = generator.uniform(0.02, 0.3)
        rows = np.array([start[0], start[0]]) + generator.uniform(-0.5, 0.5)
        cols = np.array([start[1], start[1]]) + generator.uniform(-0.5, 0.5)
        charges = charge * np.array([1 - halo, halo])
        sigmas = np.array([sigma, generator.uniform(1.2, 2.0)])
        return _spread(rows, cols, charges, sigmas)
    angle = _aim(start, shape, generator)
    if kind == "worm":
        length, curl = generator.uniform(4.0, 12.0), 0.15
    elif kind == "long_track":
        length, curl = math.exp(generator.uniform(math.log(20.0), math.log(60.0))), 0
    else:
        length, curl = math.exp(generator.uniform(math.log(1.0), math.log(6.0))), 0
    rows, cols = _path(start, angle, length, curl, generator)
    per_pixel = heavy * math.exp(generator.uniform(math.log(200.0), math.log(3000.0)))
    charges = _energy_loss(per_pixel, rows.size, generator)
    # The spread changes with depth, so along an oblique track.
    ends = _spread_sigma(generator, 2, compact)
    sigmas = np.linspace(ends[0], ends[1], rows.size)
    return _spread(rows, cols, charges, sigmas)


def realistic_cosmic_rays(shape, n_hits, generator, *, force_edges, compact=False):
    """Electrons deposited by ``n_hits`` realistic events (see the module).

    With ``force_edges`` the first hit is a spot on a corner pixel and the
    second a track starting on an edge pixel, so repairers meet both cases.
    With ``compact``, the events of a thinner sensor (`realistic_cosmic_ray`).
    """
    ny, nx = shape
    pieces = []
    for index in range(n_hits):
        kind = _KINDS[generator.choice(len(_KINDS), p=_KIND_SHARES)]
        start = (generator.uniform(-0.5, ny - 0.5), generator.uniform(-0.5, nx - 0.5))
        if force_edges and index == 0:
            kind = "spot"
            start = (generator.choice([0, ny - 1]), generator.choice([0, nx - 1]))
        elif force_edges and index == 1:
            kind = "track"
            along = generator.integers(1, min(shape) - 1)
            start = [(along, 0), (along, nx - 1), (0, along), (ny - 1, along)][
                generator.integers(0, 4)
            ]
        start = np.asarray(start, dtype=float)
        pieces.append(realistic_cosmic_ray(start, shape, kind, generator, compact))
    deposit = np.zeros(ny * nx)
    if pieces:
        rows, cols, charges = (
            np.concatenate(part) for part in zip(*pieces, strict=True)
        )
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        flat = rows[inside] * nx + cols[inside]
        deposit = np.bincount(flat, weights=charges[inside], minlength=ny * nx)
    return deposit.reshape(shape)
