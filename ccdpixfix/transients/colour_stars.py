"""Stars in colour mosaics: hot transients that a star lit in every colour.

The same-colour search sees a star half as finely sampled as the mosaic
does; `unflag_stars` looks at it whole, in the full mosaic, and unflags the
groups whose brightest pixel is lit like a star, and what the search of one
colour spilled from them.
"""

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..colour.cfa import planes
from ..flags import PixelFlag, flags_to_mask
from ..utils.ccd import uncertainty_sigma
from ._sharpness import _local_background

__all__ = ["star_like", "unflag_stars"]


# A star lights the pixels around its peak in every direction, whatever
# their colour: a star of FWHM 1.8 px whose colour is 2.5 times weaker in the
# neighbours' filters still gives the darkest pair of them, over their own
# colour's background, more than 5 % of its peak's excess. A cosmic ray
# leaves at least one direction at the background.
_STAR_SPREAD = 0.05
# A hit starts from a pixel this many sigma over its colour's background.
_SEED_SIGMA = 5.0


def _background_excess(data, known, pattern, index):
    """Excess of pixels (flat indices) over the background of their own colour.

    The background is seen from a bright pixel: the lowest of the medians of
    the four sides of the 7x7 same-colour window (14 mosaic pixels across),
    which lie off a star's core where the local level would not.
    """
    shape = np.shape(data)
    rows, cols = np.unravel_index(index, shape)
    excess = np.full(index.size, np.nan)
    for _, plane in planes(shape, pattern):
        dy, dx = plane[0].start, plane[1].start
        mine = ((rows % 2) == dy) & ((cols % 2) == dx)
        sub_rows, sub_cols = (rows[mine] - dy) // 2, (cols[mine] - dx) // 2
        sub = np.asarray(data)[plane]
        background = _local_background(sub, known[plane], sub_rows, sub_cols)
        excess[mine] = np.asarray(sub[sub_rows, sub_cols], float) - background
    return excess


def star_like(data, known, pattern, index):
    """Which pixels (flat indices) are lit like a star in the full mosaic.

    A pixel is star-like if, in its darkest direction (of the four pairs of
    opposite mosaic neighbours, any colour), the mean excess of the pair
    over its colour's background exceeds ``_STAR_SPREAD`` times the pixel's
    own: the same-colour search sees a star half as finely sampled as the
    mosaic does; this test sees it whole.
    """
    ny, nx = np.shape(data)
    rows, cols = np.unravel_index(index, (ny, nx))
    # the 3x3 window of every pixel, row-major, all measured in one call
    window_rows = rows[:, None] + np.repeat([-1, 0, 1], 3)[None]
    window_cols = cols[:, None] + np.tile([-1, 0, 1], 3)[None]
    inside = (window_rows >= 0) & (window_rows < ny)
    inside &= (window_cols >= 0) & (window_cols < nx)
    excess = np.full(window_rows.shape, np.nan)
    excess[inside] = _background_excess(
        data, known, pattern, window_rows[inside] * nx + window_cols[inside]
    )
    own = excess[:, 4]
    directions = np.stack(
        [0.5 * (excess[:, a] + excess[:, 8 - a]) for a in range(4)], axis=1
    )
    complete = np.isfinite(directions).any(axis=1)
    directions[~np.isfinite(directions)] = np.inf
    darkest = directions.min(axis=1)
    return complete & (own > 0) & (darkest > _STAR_SPREAD * own)


def _linked(hot, groups, n_groups, pattern):
    """The mosaic ``groups`` of ``hot`` pixels, joined through colour planes.

    Labels (0: not hot) of the groups that touch in the mosaic (8
    neighbours: ``groups``, ``n_groups`` of them) or in a colour plane
    (same-colour neighbours, two mosaic pixels away).
    """
    eight = np.ones((3, 3), dtype=bool)
    # A graph whose nodes are the mosaic groups, then the groups of each
    # plane; each hot pixel links its mosaic group to its plane group.
    links, n_nodes = [], n_groups + 1
    for _, plane in planes(np.shape(hot), pattern):
        labels, n_plane = ndimage.label(hot[plane], structure=eight)
        lit = labels > 0
        links.append(np.stack([groups[plane][lit], labels[lit] + n_nodes - 1]))
        n_nodes += n_plane
    links = np.concatenate(links, axis=1)
    graph = coo_matrix(
        (np.ones(links.shape[1]), (links[0], links[1])), shape=(n_nodes, n_nodes)
    )
    _, component = connected_components(graph, directed=False)
    return np.where(groups > 0, component[groups] + 1, 0)


def _spilled_from_stars(ccd, pattern, hot, groups, n_groups, known, peaks, starry):
    """Groups (mosaic labels) left of a star the same-colour search grew.

    An undersampled star's peak passes the same-colour search as a hit,
    which then spills through the star's core, plane by plane; the star is
    unflagged whole, but the last pixel spilled to may lie two mosaic
    pixels out, a group of its own. A group linked to a star through its
    colour plane (`_linked`) whose brightest pixel (of ``peaks``) stands
    less than `_SEED_SIGMA` times its noise over its colour's background
    (no hit would have started there) goes with the star.
    """
    sigma = uncertainty_sigma(ccd)
    if sigma is None or not starry.any():
        return np.empty(0, dtype=groups.dtype)
    linked = _linked(hot, groups, n_groups, pattern).ravel()
    near_star = np.isin(linked[peaks], linked[peaks[starry]]) & ~starry
    chosen = peaks[near_star]
    excess = _background_excess(ccd.data, known, pattern, chosen)
    with np.errstate(invalid="ignore"):
        faint = excess < _SEED_SIGMA * sigma.ravel()[chosen]
    return groups.ravel()[chosen[faint]]


def unflag_stars(ccd, pattern):
    """``ccd`` with hot transients that are stars unflagged, and their number.

    Connected groups of ``TRANSIENT_HOT`` pixels (a hit, a track, or the core
    of an undersampled star found colour by colour) are judged by their
    brightest pixel: a group whose brightest pixel is `star_like` is a star,
    and all of it is unflagged, with the faint groups the same-colour search
    spilled to from it (linked to it in their colour plane, their brightest
    pixel under 5 sigma). Modifies ``ccd`` (a step's own new output) in
    place.
    """
    hot = np.uint16(PixelFlag.TRANSIENT_HOT)
    flags = ccd.flags.ravel()
    index = np.flatnonzero((flags & hot) != 0)
    if index.size == 0:
        return ccd, 0
    hot_mask = (ccd.flags & hot) != 0
    groups, n_groups = ndimage.label(hot_mask, structure=np.ones((3, 3)))
    group = groups.ravel()[index]
    known = (ccd.flags & ~hot) != 0
    value = np.asarray(ccd.data).ravel()[index].astype(float)
    # the brightest pixel of each group: sorted by group, then by value
    order = np.lexsort((-np.nan_to_num(value, nan=-np.inf), group))
    first = np.ones(order.size, dtype=bool)
    first[1:] = group[order][1:] != group[order][:-1]
    peaks = index[order][first]
    starry = star_like(ccd.data, known, pattern, peaks)
    stars = groups.ravel()[peaks[starry]]
    spilled = _spilled_from_stars(
        ccd, pattern, hot_mask, groups, n_groups, known, peaks, starry
    )
    stars = np.concatenate([stars, spilled])
    unflag = index[np.isin(group, stars)]
    flags[unflag] &= ~hot
    ccd.mask = flags_to_mask(ccd.flags)
    return ccd, int(unflag.size)
