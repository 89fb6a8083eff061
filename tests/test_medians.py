"""Tests of the median kernels in ccdpixfix.medians against brute force.

The references below loop over pixels with plain numpy: a neighbour is used
if it lies inside the image (pixels outside do not exist: no mirroring, no
repetition), is finite, is not marked bad, and is not the pixel itself.
"""

import itertools

import numpy as np
import pytest

from ccdpixfix.medians import local_level, local_level_at, ring_median, window_values


def _usable(data, bad, y, x):
    ny, nx = data.shape
    if not (0 <= y < ny and 0 <= x < nx):
        return False
    return bool(np.isfinite(data[y, x]) and (bad is None or not bad[y, x]))


def _reference_ring_median(data, bad, radius):
    ny, nx = data.shape
    result = np.full((ny, nx), np.nan)
    for y, x in itertools.product(range(ny), range(nx)):
        values = [
            data[y + dy, x + dx]
            for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)
            if (dy or dx) and _usable(data, bad, y + dy, x + dx)
        ]
        if values:
            result[y, x] = np.median(values)
    return result


_PAIRS = (((-1, -1), (1, 1)), ((-1, 0), (1, 0)), ((-1, 1), (1, -1)), ((0, -1), (0, 1)))


def _reference_local_level(data, bad):
    ny, nx = data.shape
    level = np.full((ny, nx), np.nan)
    n_pairs = np.zeros((ny, nx), dtype=int)
    for y, x in itertools.product(range(ny), range(nx)):
        means = [
            0.5 * (data[y + a[0], x + a[1]] + data[y + b[0], x + b[1]])
            for a, b in _PAIRS
            if _usable(data, bad, y + a[0], x + a[1])
            and _usable(data, bad, y + b[0], x + b[1])
        ]
        n_pairs[y, x] = len(means)
        if means:
            level[y, x] = np.median(means)
            continue
        ring = [
            data[y + dy, x + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy or dx) and _usable(data, bad, y + dy, x + dx)
        ]
        if ring:
            level[y, x] = np.median(ring)
    return level, n_pairs


def _noisy_image(shape, seed, *, nan_fraction=0.05, bad_fraction=0.1):
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 10.0, shape)
    data += np.linspace(0, 50, shape[1])[None, :]  # a gradient
    data[rng.random(shape) < nan_fraction] = np.nan
    bad = rng.random(shape) < bad_fraction
    bad[2:5, 3:6] = True  # a bad block: pixels inside have few or no neighbours
    data[shape[0] // 2, shape[1] // 2] = 1e6  # an outlier that is not flagged
    return data, bad


def _integer_image(shape, seed):
    """Quantised data with many ties, as raw frames have."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(1000.0, 1.0, shape)).astype(np.uint16)


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("shape", [(17, 23), (9, 9), (3, 40)])
def test_ring_median_matches_brute_force(radius, shape):
    data, bad = _noisy_image(shape, seed=radius * 100 + shape[1])
    result = ring_median(data, bad, radius=radius)
    expected = _reference_ring_median(data.astype(np.float32), bad, radius)
    # float32 to save memory, float64 only for float64 data (their range)
    assert result.dtype == (np.float64 if data.dtype == np.float64 else np.float32)
    assert result.shape == shape
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    np.testing.assert_allclose(result, expected, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("radius", [1, 2])
def test_ring_median_with_ties_on_integer_data(radius):
    data = _integer_image((20, 20), seed=3)
    result = ring_median(data, radius=radius)
    expected = _reference_ring_median(data.astype(np.float64), None, radius)
    # Medians of integers are integers or halves: exact in float32.
    np.testing.assert_array_equal(result, expected)
    assert (np.abs(result - np.round(result)) > 0).any()  # some even counts


@pytest.mark.parametrize("radius", [1, 2])
def test_ring_median_at_edges_and_corners_uses_only_pixels_inside(radius):
    data = np.arange(36, dtype=np.float64).reshape(6, 6) ** 1.5
    result = ring_median(data, radius=radius)
    expected = _reference_ring_median(data, None, radius)
    for y, x in [(0, 0), (0, 5), (5, 0), (5, 5), (0, 3), (3, 0), (5, 2), (2, 5)]:
        assert result[y, x] == pytest.approx(expected[y, x], rel=1e-6), (y, x)
    # Top-left corner, radius 1: the three neighbours 1, 6, 7 (no mirroring).
    if radius == 1:
        assert result[0, 0] == pytest.approx(np.median(data[[0, 1, 1], [1, 0, 1]]))


def test_ring_median_never_uses_the_pixel_itself_or_bad_pixels():
    data = np.zeros((7, 7))
    data[3, 3] = 1000.0
    bad = np.zeros((7, 7), dtype=bool)
    bad[2:5, 2:5] = True
    bad[3, 3] = False
    data[bad] = 500.0  # bad neighbours of a bright pixel: must not count
    result = ring_median(data, bad)
    assert np.isnan(result[3, 3])  # every neighbour is bad
    assert result[3, 4] == 0.0
    # The bright pixel is excluded from its own median on an edge too.
    edge = np.zeros((4, 4))
    edge[0, 0] = 1000.0
    assert ring_median(edge)[0, 0] == 0.0


@pytest.mark.parametrize("radius", [1, 2])
def test_ring_median_all_bad_neighbourhood_is_nan(radius):
    data = np.arange(25, dtype=np.float64).reshape(5, 5)
    bad = np.ones((5, 5), dtype=bool)
    bad[2, 2] = False
    result = ring_median(data, bad, radius=radius)
    assert np.isnan(result[2, 2])
    # Every other pixel has the one good pixel (2, 2) within reach or none.
    reach = np.zeros((5, 5), dtype=bool)
    reach[2 - radius : 3 + radius, 2 - radius : 3 + radius] = True
    reach[2, 2] = False
    np.testing.assert_array_equal(result[reach], 12.0)
    assert np.isnan(result[~reach]).all()
    # Non-finite neighbours count as bad without a mask.
    nan_data = np.full((5, 5), np.nan)
    nan_data[0, 0] = 3.0
    nan_result = ring_median(nan_data, radius=radius)
    assert np.isnan(nan_result[0, 0])
    assert nan_result[1, 1] == 3.0


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (2, 2), (2, 3)])
@pytest.mark.parametrize("radius", [1, 2])
def test_ring_median_on_tiny_images(shape, radius):
    data = np.arange(1, np.prod(shape) + 1, dtype=np.float64).reshape(shape) ** 2
    result = ring_median(data, radius=radius)
    expected = _reference_ring_median(data, None, radius)
    np.testing.assert_allclose(result, expected, rtol=1e-6, equal_nan=True)


def test_ring_median_does_not_modify_its_input():
    data, bad = _noisy_image((10, 12), seed=4)
    data_before, bad_before = data.copy(), bad.copy()
    ring_median(data, bad, radius=2)
    local_level(data, bad)
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(bad, bad_before)


@pytest.mark.parametrize("shape", [(17, 23), (3, 40), (1, 7), (2, 2)])
def test_local_level_matches_brute_force(shape):
    data, bad = _noisy_image(shape, seed=shape[0] * 7 + shape[1], bad_fraction=0.2)
    level, n_pairs = local_level(data, bad)
    expected_level, expected_pairs = _reference_local_level(
        data.astype(np.float32).astype(np.float64), bad
    )
    np.testing.assert_array_equal(n_pairs, expected_pairs)
    np.testing.assert_allclose(level, expected_level, rtol=1e-6, equal_nan=True)
    if shape == (17, 23):
        # Every case occurs: four pairs down to none, and no neighbour at all.
        assert set(np.unique(n_pairs)) == {0, 1, 2, 3, 4}
        assert np.isnan(level).any()


def test_local_level_interpolates_a_gradient_beside_a_masked_column():
    ramp = np.add.outer(3.0 * np.arange(8), 10.0 * np.arange(9))
    bad = np.zeros(ramp.shape, dtype=bool)
    bad[:, 4] = True
    level, n_pairs = local_level(ramp, bad)
    # Inside the image, every pixel keeps at least the vertical pair.
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(level[inner], ramp[inner], rtol=1e-6)
    assert (n_pairs[1:-1, 3] == 1).all()
    assert (n_pairs[1:-1, 1] == 4).all()


def test_local_level_at_equals_local_level():
    data, bad = _noisy_image((15, 19), seed=9, bad_fraction=0.25)
    level, n_pairs = local_level(data, bad)
    rows, cols = np.nonzero(np.ones(data.shape, dtype=bool))
    level_at, n_pairs_at = local_level_at(data, rows, cols, bad=bad)
    np.testing.assert_array_equal(n_pairs_at, n_pairs.ravel())
    np.testing.assert_allclose(level_at, level.ravel(), rtol=1e-6, equal_nan=True)


def _reference_window(data, bad, y, x, radius):
    values = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yy, xx = y + dy, x + dx
            usable = 0 <= yy < data.shape[0] and 0 <= xx < data.shape[1]
            usable = usable and (bad is None or not bad[yy, xx])
            values.append(data[yy, xx] if usable else np.nan)
    return values


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (2, 2), (3, 4), (8, 8)])
@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("include_centre", [False, True])
def test_window_values_matches_brute_force(shape, radius, include_centre):
    # Distinct values, so that a value identifies the pixel it came from.
    data = np.arange(1, np.prod(shape) + 1, dtype=np.float64).reshape(shape) * 1.5
    bad = np.zeros(shape, dtype=bool)
    bad.flat[::3] = True
    rows, cols = np.nonzero(np.ones(shape, dtype=bool))
    values = window_values(
        data, rows, cols, radius=radius, bad=bad, include_centre=include_centre
    )
    assert values.shape == (rows.size, (2 * radius + 1) ** 2)
    assert values.dtype == np.float64
    centre = (2 * radius + 1) ** 2 // 2
    for i, (y, x) in enumerate(zip(rows, cols, strict=True)):
        expected = _reference_window(data, bad, y, x, radius)
        if not include_centre:
            expected[centre] = np.nan
        np.testing.assert_array_equal(values[i], expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (2, 2), (2, 5)])
@pytest.mark.parametrize("radius", [1, 2, 4])
def test_window_values_without_centre_never_returns_the_centre_value(shape, radius):
    data = np.arange(10, 10 + np.prod(shape), dtype=np.float64).reshape(shape)
    rows, cols = np.nonzero(np.ones(shape, dtype=bool))
    values = window_values(data, rows, cols, radius=radius, include_centre=False)
    for i, (y, x) in enumerate(zip(rows, cols, strict=True)):
        assert data[y, x] not in values[i]
        # Every other pixel within reach is returned exactly once.
        near = data[
            max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1
        ]
        others = sorted(set(near.ravel()) - {data[y, x]})
        found = values[i][np.isfinite(values[i])]
        assert sorted(found) == others


def test_window_values_with_bad_pixels_and_nan_data():
    data = np.arange(16, dtype=np.float64).reshape(4, 4)
    data[0, 1] = np.nan
    bad = np.zeros((4, 4), dtype=bool)
    bad[1, 0] = True
    values = window_values(data, [0], [0], radius=1, bad=bad)
    # Window around the corner, row-major: outside, outside, outside,
    # outside, (0,0), (0,1)=NaN, outside, (1,0)=bad, (1,1).
    expected = [np.nan] * 4 + [0.0, np.nan, np.nan, np.nan, 5.0]
    np.testing.assert_array_equal(values[0], expected)
