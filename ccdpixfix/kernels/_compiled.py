"""Compiled (numba) twins of the numpy kernels of `ccdpixfix.kernels`.

Only `ccdpixfix.kernels.engine` imports this module. Every kernel here gives,
bit for bit, what its numpy twin gives (tests/test_engines.py checks it): the
same values are cast to the same float type, the same pair means are taken,
and the median of ``n`` sorted values is
``half * v[(n - 1) // 2] + half * v[n // 2]`` in that type, as numpy computes
it. ``halves`` is a one-element array holding 0.5 in the working float type
(numba would promote a Python float to float64).

Why it is fast: each row of the image is converted once into a buffer with
NaN for bad, non-finite and outside pixels, so the inner loop reads plain
floats; where all four pairs of a pixel are complete (nearly everywhere) the
median of four is taken with min and max, without sorting; and the outlier
kernels first compare each residual with a cheap lower bound of its noise
(the smallest neighbour noise, or the model at the pixel's own level) and
compute the exact noise only where that bound lets the pixel through. No
neighbour stack is built: the kernels need no memory beyond their output.

Each row kernel works on the rows ``y0`` to ``y1`` (its last two arguments)
and releases the GIL, so that `ccdpixfix.kernels.engine` runs blocks of rows
in threads.
"""

import math

import numpy as np
from numba import njit

_jit = njit(nogil=True, cache=True, error_model="numpy")
_FLOAT64_MAX = np.finfo(np.float64).max


@njit(inline="always", error_model="numpy")
def _insert(buffer, count, value):
    """Insert ``value`` into the sorted first ``count`` entries of ``buffer``."""
    position = count
    while position > 0 and buffer[position - 1] > value:
        buffer[position] = buffer[position - 1]
        position -= 1
    buffer[position] = value
    return count + 1


@njit(inline="always", error_model="numpy")
def _median(buffer, count, half):
    return half * buffer[(count - 1) // 2] + half * buffer[count // 2]


@njit(inline="always", error_model="numpy")
def _fill_row(data, bad, y, row):
    """Row ``y`` as floats, NaN where bad or not finite, one NaN on each side."""
    nx = data.shape[1]
    row[0] = np.nan
    row[nx + 1] = np.nan
    if y < 0 or y >= data.shape[0]:
        for x in range(nx):
            row[x + 1] = np.nan
        return
    for x in range(nx):
        row[x + 1] = data[y, x]
        if bad[y, x] or not math.isfinite(row[x + 1]):
            row[x + 1] = np.nan


@njit(error_model="numpy")
def _ring(up, centre, down, x, buffer, half):
    """Median of the valid neighbours of pixel x of the centre row; NaN if none."""
    count = 0
    for row in (up, down):
        for k in range(x, x + 3):
            if not math.isnan(row[k]):
                count = _insert(buffer, count, row[k])
    for k in (x, x + 2):
        if not math.isnan(centre[k]):
            count = _insert(buffer, count, centre[k])
    if count == 0:
        return up[0]  # a NaN of the working type
    return _median(buffer, count, half)


@njit(inline="always", error_model="numpy")
def _smaller(a, b):
    # a conditional expression compiles to a branch-free select; the builtin
    # min, with its NaN handling, to branches that random data mispredict
    return a if a < b else b


@njit(inline="always", error_model="numpy")
def _larger(a, b):
    return a if a > b else b


@njit(inline="always", error_model="numpy")
def _sorted_four(a, b, c, d):
    """Four values in ascending order (five compare-exchanges, branch-free)."""
    a, b = _smaller(a, b), _larger(a, b)
    c, d = _smaller(c, d), _larger(c, d)
    a, c = _smaller(a, c), _larger(a, c)
    b, d = _smaller(b, d), _larger(b, d)
    b, c = _smaller(b, c), _larger(b, c)
    return a, b, c, d


@njit(inline="always", error_model="numpy")
def _complete_ring(up, centre, down, x, half):
    """Median of the eight neighbours of pixel x of the centre row, or NaN.

    NaN if any neighbour is; the caller then falls back on `_ring`. The 4th
    and 5th smallest of the eight come from two sorted fours ``a``, ``b``:
    the k-th smallest of their union is the smallest of
    ``max(a[i - 1], b[k - i - 1])`` over the ways of taking ``i`` values
    from ``a`` and ``k - i`` from ``b``.
    """
    total = up[x] + up[x + 1] + up[x + 2] + centre[x]
    total += centre[x + 2] + down[x] + down[x + 1] + down[x + 2]
    if total != total:
        return total
    a0, a1, a2, a3 = _sorted_four(up[x], up[x + 1], up[x + 2], centre[x])
    b0, b1, b2, b3 = _sorted_four(centre[x + 2], down[x], down[x + 1], down[x + 2])
    fourth = _smaller(
        _smaller(_smaller(a3, b3), _larger(a2, b0)),
        _smaller(_larger(a1, b1), _larger(a0, b2)),
    )
    fifth = _smaller(
        _smaller(_larger(a0, b3), _larger(a1, b2)),
        _smaller(_larger(a2, b1), _larger(a3, b0)),
    )
    return half * fourth + half * fifth


@njit(inline="always", error_model="numpy")
def _complete_level(up, centre, down, x, half):
    """Level of pixel x of the centre row if its four pairs are complete, else NaN.

    The middle two of four values, without sorting. The caller falls back
    on `_level` where this is NaN: keeping that rare path out of line (and
    returning one value) keeps this one branch-free, ten times faster.
    """
    m0 = half * up[x] + half * down[x + 2]
    m1 = half * up[x + 1] + half * down[x + 1]
    m2 = half * up[x + 2] + half * down[x]
    m3 = half * centre[x] + half * centre[x + 2]
    total = m0 + m1 + m2 + m3
    if total != total:
        return total
    low = _larger(_smaller(m0, m1), _smaller(m2, m3))
    high = _smaller(_larger(m0, m1), _larger(m2, m3))
    return half * low + half * high


@njit(error_model="numpy")
def _level(up, centre, down, x, buffer, half):
    """Local level and number of complete pairs of pixel x of the centre row."""
    count = 0
    for a, b in ((x, x + 2), (x + 1, x + 1), (x + 2, x)):
        mean = half * up[a] + half * down[b]
        if not math.isnan(mean):
            count = _insert(buffer, count, mean)
    mean = half * centre[x] + half * centre[x + 2]
    if not math.isnan(mean):
        count = _insert(buffer, count, mean)
    if count > 0:
        return _median(buffer, count, half), count
    return _ring(up, centre, down, x, buffer, half), 0


@njit(inline="always", error_model="numpy")
def _model_sigma(level, floor, slope, offset):
    signal = np.float64(level) - offset
    if signal < 0 or math.isnan(signal):
        signal = 0.0
    # as numpy.nan_to_num: an infinite level counts as the largest float
    signal = min(signal, _FLOAT64_MAX)
    return np.float32(math.sqrt(floor + slope * signal))


@njit(inline="always", error_model="numpy")
def _code(value, level, noise, cut):
    residual = (np.float64(value) - np.float64(level)) / np.float64(noise)
    if math.isfinite(residual):
        if residual > cut:
            return 1
        if residual < -cut:
            return 2
    return 0


@njit(error_model="numpy")
def _peak(up, centre, down, x):
    """Whether pixel x of the centre row is good and above each of its good
    neighbours (at least one)."""
    middle = centre[x + 1]
    if math.isnan(middle):
        return False
    good = 0
    for row in (up, down):
        for k in range(x, x + 3):
            if not math.isnan(row[k]):
                if not middle > row[k]:
                    return False
                good += 1
    for k in (x, x + 2):
        if not math.isnan(centre[k]):
            if not middle > centre[k]:
                return False
            good += 1
    return good > 0


@njit(error_model="numpy")
def _darkest_pair(up, centre, down, x, half):
    """Lowest mean of a complete pair of opposite neighbours; NaN if none."""
    darkest = np.nan
    for k in range(4):
        if k == 3:
            mean = half * centre[x] + half * centre[x + 2]
        else:
            mean = half * up[x + k] + half * down[x + 2 - k]
        if not math.isnan(mean) and not mean >= darkest:
            darkest = mean
    return darkest


@njit(inline="always", error_model="numpy")
def _faint_code(value, level, darkest, noise, low, cut):
    """3 if the pixel is ``low`` times ``noise`` above ``level`` and ``cut``
    times above the ``darkest`` pair of its neighbours, else 0."""
    residual = (np.float64(value) - np.float64(level)) / np.float64(noise)
    across = (np.float64(value) - np.float64(darkest)) / np.float64(noise)
    return 3 if residual > low and across > cut else 0


@njit(error_model="numpy")
def _maybe_faint(value, noise, cut, up, centre, down, x, half):
    """Whether a pixel above its level by more than the faint peaks' cut,
    but not by ``cut``, may be a faint peak (`_faint_code`), judged with a
    lower bound of its ``noise``: the final noise can only make it less."""
    if not _peak(up, centre, down, x):
        return False
    darkest = _darkest_pair(up, centre, down, x, half)
    return (np.float64(value) - np.float64(darkest)) / np.float64(noise) > cut


@njit(inline="always", error_model="numpy")
def _pixel_code(value, level, sigma, factor, cut, low, up, centre, down, x, wide, half):
    """The code of a pixel the quick test did not settle: 1 or 2 beyond the
    ``cut`` and beyond its neighbours' median (`_stands_out`), else 3 for a
    faint peak (`_faint_code`), else 0. ``sigma``: its noise; ``factor``:
    the level's (``RESIDUAL_FACTOR``)."""
    code = _code(value, level, sigma * factor, cut)
    if code:
        code = _stands_out(value, up, centre, down, x, wide, code, sigma, cut)
    if code == 0 and _peak(up, centre, down, x):
        darkest = _darkest_pair(up, centre, down, x, half)
        code = _faint_code(value, level, darkest, sigma * factor, low, cut)
    return code


@njit(error_model="numpy")
def _stands_out(value, up, centre, down, x, wide, code, sigma, cut):
    """``code`` if the pixel is beyond the median of its neighbours by ``cut``
    times its noise ``sigma``, else 0.

    The median in float64, as `ccdpixfix.kernels.medians.row_median` takes it.
    """
    count = 0
    for row in (up, down):
        for k in range(x, x + 3):
            if not math.isnan(row[k]):
                count = _insert(wide, count, np.float64(row[k]))
    for k in (x, x + 2):
        if not math.isnan(centre[k]):
            count = _insert(wide, count, np.float64(centre[k]))
    if count == 0:
        return 0
    difference = np.float64(value) - _median(wide, count, 0.5)
    if code == 2:
        difference = -difference
    return code if difference > np.float32(cut) * sigma else 0


@njit(inline="always", error_model="numpy")
def _rows(nx, halves):
    return (
        np.empty(nx + 2, halves.dtype),
        np.empty(nx + 2, halves.dtype),
        np.empty(nx + 2, halves.dtype),
    )


@njit(inline="always", error_model="numpy")
def _first_rows(data, bad, halves, y0):
    """Row buffers for a block from ``y0``: the rows above and at ``y0`` filled.

    A kernel then fills the third with the row below, moving down.
    """
    up, centre, down = _rows(data.shape[1], halves)
    _fill_row(data, bad, y0 - 1, up)
    _fill_row(data, bad, y0, centre)
    return up, centre, down


@_jit
def level_rows(data, bad, halves, level, n_pairs, y0, y1):
    half = halves[0]
    up, centre, down = _first_rows(data, bad, halves, y0)
    buffer = np.empty(8, halves.dtype)
    for y in range(y0, y1):
        _fill_row(data, bad, y + 1, down)
        for x in range(data.shape[1]):
            value, count = _complete_level(up, centre, down, x, half), 4
            if value != value:
                value, count = _level(up, centre, down, x, buffer, half)
            level[y, x], n_pairs[y, x] = value, count
        up, centre, down = centre, down, up


@njit(inline="always", error_model="numpy")
def _fill_stretch(data, bad, y, x, up, centre, down):
    """The 3x3 window around (y, x) into the row buffers, where _level reads it."""
    ny, nx = data.shape
    for row, yy in ((up, y - 1), (centre, y), (down, y + 1)):
        for k in range(3):
            xx = x + k - 1
            row[x + k] = np.nan
            if 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
                row[x + k] = data[yy, xx]
                if not math.isfinite(row[x + k]):
                    row[x + k] = np.nan
    up[0] = np.nan


@_jit
def level_listed_rows(data, bad, halves, rows, level, n_pairs):
    half = halves[0]
    up, centre, down = _rows(data.shape[1], halves)
    buffer = np.empty(8, halves.dtype)
    for i in range(rows.size):
        _fill_row(data, bad, rows[i] - 1, up)
        _fill_row(data, bad, rows[i], centre)
        _fill_row(data, bad, rows[i] + 1, down)
        for x in range(data.shape[1]):
            value, count = _complete_level(up, centre, down, x, half), 4
            if value != value:
                value, count = _level(up, centre, down, x, buffer, half)
            level[i, x], n_pairs[i, x] = value, count


@_jit
def level_points(data, bad, halves, rows, cols, level, n_pairs):
    half = halves[0]
    up, centre, down = _rows(data.shape[1], halves)
    buffer = np.empty(8, halves.dtype)
    for i in range(rows.size):
        _fill_stretch(data, bad, rows[i], cols[i], up, centre, down)
        value, count = _complete_level(up, centre, down, cols[i], half), 4
        if value != value:
            value, count = _level(up, centre, down, cols[i], buffer, half)
        level[i], n_pairs[i] = value, count


@_jit
def plane_points(plane, bad, halves, rows, cols, sigma):
    half = halves[0]
    up, centre, down = _rows(plane.shape[1], halves)
    buffer = np.empty(8, halves.dtype)
    for i in range(rows.size):
        y, x = rows[i], cols[i]
        _fill_stretch(plane, bad, y, x, up, centre, down)
        for row in (up, centre, down):
            for k in range(x, x + 3):
                if row[k] <= 0:
                    row[k] = np.nan
        value = _complete_ring(up, centre, down, x, half)
        if value != value:
            value = _ring(up, centre, down, x, buffer, half)
        sigma[i] = plane[y, x] if math.isnan(value) else value


@_jit
def model_points(data, bad, halves, floor, slope, offset, rows, cols, sigma):
    half = halves[0]
    up, centre, down = _rows(data.shape[1], halves)
    buffer = np.empty(8, halves.dtype)
    for i in range(rows.size):
        _fill_stretch(data, bad, rows[i], cols[i], up, centre, down)
        level, _ = _level(up, centre, down, cols[i], buffer, half)
        ring = _ring(up, centre, down, cols[i], buffer, half)
        if math.isnan(level) or ring > level:
            level = ring
        sigma[i] = _model_sigma(level, floor, slope, offset)


@_jit
def ring_rows(data, bad, halves, radius, result, y0, y1):
    half = halves[0]
    ny, nx = data.shape
    size = 2 * radius + 1
    window = np.empty(size * size, halves.dtype)
    buffer = np.empty(size * size, halves.dtype)
    for y in range(y0, y1):
        for x in range(nx):
            count = 0
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    yy, xx = y + dy, x + dx
                    if (dy or dx) and 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
                        window[0] = data[yy, xx]
                        if math.isfinite(window[0]):
                            count = _insert(buffer, count, window[0])
            result[y, x] = _median(buffer, count, half) if count else np.nan


@_jit
def outlier_plane_rows(
    data, bad, halves, plane, plane_halves, factor, cut, low, codes, y0, y1
):
    half, plane_half = halves[0], plane_halves[0]
    # Under the lower of the cuts a pixel is no candidate of either kind
    # (low is infinite where no faint peaks are asked for).
    quick = min(cut, low)
    nx = data.shape[1]
    up, centre, down = _first_rows(data, bad, halves, y0)
    plane_up, plane_centre, plane_down = _rows(nx, plane_halves)
    buffer = np.empty(8, halves.dtype)
    wide = np.empty(8, np.float64)
    plane_buffer = np.empty(8, plane_halves.dtype)
    _fill_plane_row(plane, bad, y0 - 1, plane_up)
    _fill_plane_row(plane, bad, y0, plane_centre)
    for y in range(y0, y1):
        _fill_row(data, bad, y + 1, down)
        _fill_plane_row(plane, bad, y + 1, plane_down)
        for x in range(nx):
            level, count = _complete_level(up, centre, down, x, half), 4
            if level != level:
                level, count = _level(up, centre, down, x, buffer, half)
            # The smallest neighbour noise bounds the median from below.
            lowest = _smallest(plane_up, plane_centre, plane_down, x)
            if not math.isnan(lowest):
                bound = np.float32(lowest) * factor[count]
                excess = np.float64(data[y, x]) - np.float64(level)
                ratio = abs(excess) / np.float64(bound)
                if ratio <= quick or (
                    ratio <= cut
                    and (
                        excess < 0
                        or not _maybe_faint(
                            data[y, x], bound, cut, up, centre, down, x, half
                        )
                    )
                ):
                    codes[y, x] = 0
                    continue
            sigma = _ring(
                plane_up, plane_centre, plane_down, x, plane_buffer, plane_half
            )
            if math.isnan(sigma):
                sigma = plane[y, x]
            codes[y, x] = _pixel_code(
                data[y, x],
                level,
                np.float32(sigma),
                factor[count],
                cut,
                low,
                up,
                centre,
                down,
                x,
                wide,
                half,
            )
        up, centre, down = centre, down, up
        plane_up, plane_centre, plane_down = plane_centre, plane_down, plane_up


@njit(inline="always", error_model="numpy")
def _fill_plane_row(plane, bad, y, row):
    """An uncertainty row: NaN also where the noise is not positive."""
    _fill_row(plane, bad, y, row)
    for x in range(1, row.size - 1):
        if row[x] <= 0:
            row[x] = np.nan


@njit(inline="always", error_model="numpy")
def _smallest(up, centre, down, x):
    lowest = np.inf
    for row in (up, down):
        for k in range(x, x + 3):
            if row[k] < lowest:
                lowest = row[k]
    for k in (x, x + 2):
        if centre[k] < lowest:
            lowest = centre[k]
    return lowest if lowest < np.inf else np.nan


@_jit
def outlier_model_rows(
    data, bad, halves, floor, slope, offset, factor, cut, low, codes, y0, y1
):
    half = halves[0]
    quick = min(cut, low)
    nx = data.shape[1]
    up, centre, down = _first_rows(data, bad, halves, y0)
    buffer = np.empty(8, halves.dtype)
    wide = np.empty(8, np.float64)
    for y in range(y0, y1):
        _fill_row(data, bad, y + 1, down)
        for x in range(nx):
            level, count = _complete_level(up, centre, down, x, half), 4
            if level != level:
                level, count = _level(up, centre, down, x, buffer, half)
            sigma = _model_sigma(level, floor, slope, offset)
            if not math.isnan(level):
                # The model grows with the level: at the level it is a lower
                # bound of the noise at the brighter of level and ring.
                excess = np.float64(data[y, x]) - np.float64(level)
                bound = abs(excess) / np.float64(sigma * factor[count])
                if bound <= quick or (
                    bound <= cut
                    and (
                        excess < 0
                        or not _maybe_faint(
                            data[y, x],
                            sigma * factor[count],
                            cut,
                            up,
                            centre,
                            down,
                            x,
                            half,
                        )
                    )
                ):
                    codes[y, x] = 0
                    continue
                ring = _ring(up, centre, down, x, buffer, half)
                if ring > level:
                    sigma = _model_sigma(ring, floor, slope, offset)
            codes[y, x] = _pixel_code(
                data[y, x],
                level,
                sigma,
                factor[count],
                cut,
                low,
                up,
                centre,
                down,
                x,
                wide,
                half,
            )
        up, centre, down = centre, down, up


@_jit
def model_rows(data, bad, halves, floor, slope, offset, sigma, y0, y1):
    half = halves[0]
    up, centre, down = _first_rows(data, bad, halves, y0)
    buffer = np.empty(8, halves.dtype)
    for y in range(y0, y1):
        _fill_row(data, bad, y + 1, down)
        for x in range(data.shape[1]):
            level = _complete_level(up, centre, down, x, half)
            if level != level:
                level = _level(up, centre, down, x, buffer, half)[0]
            sigma[y, x] = _model_sigma(level, floor, slope, offset)
        up, centre, down = centre, down, up


@_jit
def gather_windows(data, bad, rows, cols, radius, include_centre, values):
    ny, nx = data.shape
    size = 2 * radius + 1
    for i in range(rows.size):
        for dy in range(size):
            yy = rows[i] + dy - radius
            for dx in range(size):
                xx = cols[i] + dx - radius
                k = dy * size + dx
                if 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
                    values[i, k] = data[yy, xx]
                else:
                    values[i, k] = np.nan
        if not include_centre:
            values[i, size * size // 2] = np.nan


# Largest window whose sums `_pairwise_sum` adds as numpy does (numpy splits
# longer runs in halves).
PAIRWISE_BLOCK = 128


@njit(inline="always", error_model="numpy")
def _pairwise_sum(values, n):
    """The sum of ``values[:n]`` (n <= 128) in numpy's order of addition.

    numpy adds a contiguous run of eight or more values in eight running
    sums, combined as a tree: the same order gives the same rounding.
    """
    if n < 8:
        total = 0.0
        for k in range(n):
            total += values[k]
        return total
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    blocks = n - n % 8
    for k in range(8, blocks, 8):
        r0 += values[k]
        r1 += values[k + 1]
        r2 += values[k + 2]
        r3 += values[k + 3]
        r4 += values[k + 4]
        r5 += values[k + 5]
        r6 += values[k + 6]
        r7 += values[k + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for k in range(blocks, n):
        total += values[k]
    return total


@njit(inline="always", error_model="numpy")
def _sort_eight(values):
    """Sort ``values[:8]`` in place: a 19-exchange network, branch-free."""
    p0, p1, p2, p3, p4, p5, p6, p7 = values[:8]
    p0, p2 = _smaller(p0, p2), _larger(p0, p2)
    p1, p3 = _smaller(p1, p3), _larger(p1, p3)
    p4, p6 = _smaller(p4, p6), _larger(p4, p6)
    p5, p7 = _smaller(p5, p7), _larger(p5, p7)
    p0, p4 = _smaller(p0, p4), _larger(p0, p4)
    p1, p5 = _smaller(p1, p5), _larger(p1, p5)
    p2, p6 = _smaller(p2, p6), _larger(p2, p6)
    p3, p7 = _smaller(p3, p7), _larger(p3, p7)
    p0, p1 = _smaller(p0, p1), _larger(p0, p1)
    p2, p3 = _smaller(p2, p3), _larger(p2, p3)
    p4, p5 = _smaller(p4, p5), _larger(p4, p5)
    p6, p7 = _smaller(p6, p7), _larger(p6, p7)
    p2, p4 = _smaller(p2, p4), _larger(p2, p4)
    p3, p5 = _smaller(p3, p5), _larger(p3, p5)
    p1, p4 = _smaller(p1, p4), _larger(p1, p4)
    p3, p6 = _smaller(p3, p6), _larger(p3, p6)
    p1, p2 = _smaller(p1, p2), _larger(p1, p2)
    p3, p4 = _smaller(p3, p4), _larger(p3, p4)
    p5, p6 = _smaller(p5, p6), _larger(p5, p6)
    for k, value in enumerate((p0, p1, p2, p3, p4, p5, p6, p7)):
        values[k] = value


@njit(inline="always", error_model="numpy")
def _sort_nine(values):
    """Sort ``values[:9]`` in place: a 25-exchange network, branch-free."""
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = values[:9]
    p0, p3 = _smaller(p0, p3), _larger(p0, p3)
    p1, p7 = _smaller(p1, p7), _larger(p1, p7)
    p2, p5 = _smaller(p2, p5), _larger(p2, p5)
    p4, p8 = _smaller(p4, p8), _larger(p4, p8)
    p0, p7 = _smaller(p0, p7), _larger(p0, p7)
    p2, p4 = _smaller(p2, p4), _larger(p2, p4)
    p3, p8 = _smaller(p3, p8), _larger(p3, p8)
    p5, p6 = _smaller(p5, p6), _larger(p5, p6)
    p0, p2 = _smaller(p0, p2), _larger(p0, p2)
    p1, p3 = _smaller(p1, p3), _larger(p1, p3)
    p4, p5 = _smaller(p4, p5), _larger(p4, p5)
    p7, p8 = _smaller(p7, p8), _larger(p7, p8)
    p1, p4 = _smaller(p1, p4), _larger(p1, p4)
    p3, p6 = _smaller(p3, p6), _larger(p3, p6)
    p5, p7 = _smaller(p5, p7), _larger(p5, p7)
    p0, p1 = _smaller(p0, p1), _larger(p0, p1)
    p2, p4 = _smaller(p2, p4), _larger(p2, p4)
    p3, p5 = _smaller(p3, p5), _larger(p3, p5)
    p6, p8 = _smaller(p6, p8), _larger(p6, p8)
    p2, p3 = _smaller(p2, p3), _larger(p2, p3)
    p4, p5 = _smaller(p4, p5), _larger(p4, p5)
    p6, p7 = _smaller(p6, p7), _larger(p6, p7)
    p1, p2 = _smaller(p1, p2), _larger(p1, p2)
    p3, p4 = _smaller(p3, p4), _larger(p3, p4)
    p5, p6 = _smaller(p5, p6), _larger(p5, p6)
    for k, value in enumerate((p0, p1, p2, p3, p4, p5, p6, p7, p8)):
        values[k] = value


@njit(inline="always", error_model="numpy")
def _sort(values, count):
    """Sort ``values[:count]`` in place; branch-free for 8 or 9 values (a
    pixel's full ring of neighbours, or with the pixel), which in registers
    take a third of the time of an insertion sort on noise."""
    if count == 8:
        _sort_eight(values)
    elif count == 9:
        _sort_nine(values)
    else:
        sorted_count = 0
        for k in range(count):
            sorted_count = _insert(values, sorted_count, values[k])


@_jit
def row_medians(values, result):
    buffer = np.empty(max(values.shape[1], 1), np.float64)
    half = np.float64(0.5)
    for i in range(values.shape[0]):
        count = 0
        for k in range(values.shape[1]):
            if not math.isnan(values[i, k]):
                buffer[count] = values[i, k]
                count += 1
        if count == 0:
            result[i] = np.nan
            continue
        _sort(buffer, count)
        result[i] = _median(buffer, count, half)


@njit(inline="always", error_model="numpy")
def _window_deviation(slots, valid, n, count):
    """Sample standard deviation (ddof 1) of the valid ``slots``, as
    `numpy.nanstd` takes it: invalid slots hold 0 in both sums."""
    mean = _pairwise_sum(slots, n) / count
    for k in range(n):
        deviation = slots[k] - mean
        slots[k] = deviation * deviation if valid[k] else 0.0
    return math.sqrt(_pairwise_sum(slots, n) / (count - 1))


@_jit
def window_statistics(
    data, bad, rows, cols, radius, include_centre, spread, limit, median, count,
    lowest, deviation,
):  # fmt: skip
    """Returns True if a value beyond ``limit`` (in size) was met with
    ``spread``: the caller then takes the deviations in long double."""
    ny, nx = data.shape
    size = 2 * radius + 1
    n = size * size
    slots = np.zeros(n, np.float64)
    valid = np.zeros(n, np.bool_)
    buffer = np.empty(n, np.float64)
    half = np.float64(0.5)
    beyond = False
    for i in range(rows.size):
        found = 0
        for dy in range(size):
            yy = rows[i] + dy - radius
            for dx in range(size):
                xx = cols[i] + dx - radius
                k = dy * size + dx
                if spread:
                    slots[k], valid[k] = 0.0, False
                if (include_centre or k != n // 2) and 0 <= yy < ny and 0 <= xx < nx:
                    value = np.float64(data[yy, xx])
                    if not bad[yy, xx] and math.isfinite(value):
                        buffer[found] = value
                        found += 1
                        if spread:
                            slots[k], valid[k] = value, True
                            beyond |= abs(value) > limit
        _sort(buffer, found)
        count[i] = found
        deviation[i] = 0.0
        if found == 0:
            median[i], lowest[i] = np.nan, np.nan
            continue
        median[i], lowest[i] = _median(buffer, found, half), buffer[0]
        if spread and found > 1:
            deviation[i] = _window_deviation(slots, valid, n, found)
    return beyond and spread


@njit(inline="always", error_model="numpy")
def _middle_of_seven(values):
    """The 4th smallest of seven values: Paeth's 13 compare-exchanges.

    Branch-free (`_smaller`, `_larger`): on noise the order of two values
    is a coin toss that a branch would mispredict half the time.
    """
    p0, p1, p2, p3, p4, p5, p6 = (
        values[0], values[1], values[2], values[3], values[4], values[5], values[6]
    )  # fmt: skip
    p0, p5 = _smaller(p0, p5), _larger(p0, p5)
    p0, p3 = _smaller(p0, p3), _larger(p0, p3)
    p1, p6 = _smaller(p1, p6), _larger(p1, p6)
    p2, p4 = _smaller(p2, p4), _larger(p2, p4)
    p1 = _larger(p0, p1)
    p3, p5 = _smaller(p3, p5), _larger(p3, p5)
    p2, p6 = _smaller(p2, p6), _larger(p2, p6)
    p3 = _larger(p2, p3)
    p3 = _smaller(p3, p6)
    p4 = _smaller(p4, p5)
    p1, p4 = _smaller(p1, p4), _larger(p1, p4)
    p3 = _larger(p1, p3)
    return _smaller(p3, p4)


@njit(inline="always", error_model="numpy")
def _side_median(data, bad, y, x, step_y, step_x, size, values, half):
    """Median of the valid pixels of one side; NaN if none."""
    ny, nx = data.shape
    count = 0
    for k in range(size):
        yy, xx = y + k * step_y, x + k * step_x
        if 0 <= yy < ny and 0 <= xx < nx and not bad[yy, xx]:
            value = np.float64(data[yy, xx])
            if not math.isnan(value):
                values[count] = value
                count += 1
    if count == 0:
        return np.nan
    if count == 7:
        middle = _middle_of_seven(values)
        return half * middle + half * middle
    sorted_count = 0
    for k in range(count):
        sorted_count = _insert(values, sorted_count, values[k])
    return _median(values, count, half)


@_jit
def side_medians_lowest(data, bad, rows, cols, radius, sign, result):
    size = 2 * radius + 1
    half = np.float64(0.5)
    values = np.empty(size, np.float64)
    for i in range(rows.size):
        top, left = rows[i] - radius, cols[i] - radius
        lowest = np.nan
        # the top and bottom rows, then the left and right columns
        for y, x, step_y, step_x in (
            (top, left, 0, 1),
            (top + size - 1, left, 0, 1),
            (top, left, 1, 0),
            (top, left + size - 1, 1, 0),
        ):
            median = sign * _side_median(
                data, bad, y, x, step_y, step_x, size, values, half
            )
            if math.isnan(lowest) or median < lowest:
                lowest = median
        result[i] = lowest


@_jit
def clipped_mean_rows(stack, limit, lowest, combined, y0, y1):
    n_frames = len(stack)
    nx = combined.shape[1]
    half = np.float32(0.5)
    buffer = np.empty(n_frames, np.float32)
    # One row of every frame at a time, as float32: a frame is looked up
    # once per row, not once per pixel.
    rows = np.empty((nx, n_frames), np.float32)
    for y in range(y0, y1):
        for frame in range(n_frames):
            row = stack[frame][y]
            for x in range(nx):
                rows[x, frame] = row[x]
        for x in range(nx):
            values = rows[x]
            count = 0
            for frame in range(n_frames):
                if not math.isnan(values[frame]):
                    count = _insert(buffer, count, values[frame])
            if count == 0:
                combined[y, x] = np.nan
                continue
            reference = buffer[0] if lowest else _median(buffer, count, half)
            total = 0.0
            kept = 0
            for frame in range(n_frames):
                if abs(values[frame] - reference) <= limit:
                    total += np.float64(values[frame])
                    kept += 1
            combined[y, x] = total / kept if kept else reference


@_jit
def neighbourhood(index, nx, ny, seen, stamp, result):
    count = 0
    for i in range(index.size):
        y, x = index[i] // nx, index[i] % nx
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                pixel = yy * nx + xx
                if seen[pixel] != stamp:
                    seen[pixel] = stamp
                    result[count] = pixel
                    count += 1
    return count


@_jit
def bits_around(flags, index, bits, result):
    ny, nx = flags.shape
    for i in range(index.size):
        y, x = index[i] // nx, index[i] % nx
        found = False
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                if flags[yy, xx] & bits:
                    found = True
        result[i] = found
