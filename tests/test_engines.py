"""The compiled (numba) and numpy engines of ccdpixfix.medians agree bit for bit.

Every kernel is run with both engines on the same random images: floats
with NaN, infinities and a bad-pixel mask, quantised integers full of ties,
float64 data, images of one row or one column, and pixels on every edge and
corner. The outputs must be identical to the last bit, not merely close.
"""

import numpy as np
import pytest

from ccdpixfix import fix_pixels, make_bad_pixel_map, medians, residuals, stacks
from ccdpixfix.datasets import SimulatedCamera


def _both(monkeypatch, function):
    """``function()`` with the numpy engine, then with the compiled one."""
    monkeypatch.setenv("CCDPIXFIX_ENGINE", "numpy")
    assert medians.engine() == "numpy"
    reference = function()
    monkeypatch.delenv("CCDPIXFIX_ENGINE")
    assert medians.engine() == "numba"
    return reference, function()


def _assert_identical(reference, compiled):
    if not isinstance(reference, tuple):
        reference, compiled = (reference,), (compiled,)
    for expected, actual in zip(reference, compiled, strict=True):
        assert actual.dtype == expected.dtype
        assert actual.shape == expected.shape
        # the bytes, so that NaN payloads and every rounding must match
        assert actual.tobytes() == expected.tobytes()


def _image(kind, shape, seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(1000.0, 3.0, shape) + np.linspace(0, 40, shape[1])[None, :]
    if kind == "uint16":
        # quantised near 1 ADU: most neighbourhoods hold ties
        return np.round(rng.normal(1000.0, 1.0, shape)).astype(np.uint16)
    if kind == "int32":
        return np.round(data).astype(np.int32)
    data[rng.random(shape) < 0.05] = np.nan
    data[rng.random(shape) < 0.01] = np.inf
    data.flat[0] = 1e6  # a hot pixel in a corner
    return data.astype(np.float32 if kind == "float32" else np.float64)


def _bad(shape, seed):
    rng = np.random.default_rng(seed + 1)
    bad = rng.random(shape) < 0.1
    bad[:, shape[1] // 2] = True  # a bad column
    return bad


KINDS = ["float32", "float64", "uint16", "int32"]
SHAPES = [(37, 29), (1, 17), (13, 1), (2, 2), (300, 64)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_local_level_and_ring_median(monkeypatch, kind, shape):
    data, bad = _image(kind, shape, seed=shape[0]), _bad(shape, seed=shape[1])
    for function in (
        lambda: medians.local_level(data, bad),
        lambda: medians.local_level(data),
        lambda: medians.ring_median(data, bad),
        lambda: medians.ring_median(data, bad, radius=2),
    ):
        _assert_identical(*_both(monkeypatch, function))


@pytest.mark.parametrize("kind", KINDS)
def test_kernels_at_pixels_and_rows(monkeypatch, kind):
    shape = (41, 33)
    data, bad = _image(kind, shape, seed=5), _bad(shape, seed=6)
    rng = np.random.default_rng(7)
    rows = np.concatenate([rng.integers(0, shape[0], 300), [0, 0, 40, 40]])
    cols = np.concatenate([rng.integers(0, shape[1], 300), [0, 32, 0, 32]])
    plane = rng.uniform(0.5, 3.0, shape).astype(np.float32)
    plane[rng.random(shape) < 0.1] = 0.0  # unusable noise values
    flags = rng.choice(
        np.array([0, 1, 4, 5], np.uint16), shape, p=[0.9, 0.04, 0.03, 0.03]
    )
    for function in (
        lambda: medians.local_level_at(data, rows, cols, bad),
        lambda: medians.local_level_rows(data, [0, 7, 40], bad),
        lambda: residuals.noise_at(data, bad, rows, cols, plane=plane),
        lambda: residuals.noise_at(data, bad, rows, cols, model=(4.0, 0.5, 990.0)),
        lambda: medians.window_values(data, rows, cols, radius=3, bad=bad),
        lambda: medians.window_values(
            data, rows, cols, radius=1, bad=bad, include_centre=False
        ),
        lambda: medians.window_statistics(
            data, rows, cols, radius=1, bad=bad, include_centre=False, spread=True
        ),
        lambda: medians.window_statistics(data, rows, cols, radius=2, spread=True),
        lambda: medians.window_statistics(data, rows, cols, radius=1, bad=bad)[:3],
        lambda: medians.row_median(
            medians.window_values(data, rows, cols, radius=1, bad=bad)
        ),
        lambda: medians.bits_around(flags, rows * shape[1] + cols, 4),
        lambda: medians.lowest_side_median(data, rows, cols, radius=3, bad=bad),
        lambda: medians.lowest_side_median(
            data, rows, cols, radius=2, bad=bad, sign=-1.0
        ),
    ):
        _assert_identical(*_both(monkeypatch, function))
    # the statistics are those of the windows' good values
    values = medians.window_values(data, rows, cols, radius=2, bad=bad)
    values[~np.isfinite(values)] = np.nan
    median, count, lowest, deviation = medians.window_statistics(
        data, rows, cols, radius=2, bad=bad, spread=True
    )
    several = count > 1
    np.testing.assert_array_equal(count, np.count_nonzero(~np.isnan(values), axis=1))
    np.testing.assert_array_equal(lowest, np.nanmin(values, axis=1))
    np.testing.assert_allclose(median, np.nanmedian(values, axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        deviation[several], np.nanstd(values[several], axis=1, ddof=1), rtol=1e-9
    )
    assert several.all()
    # each point kernel gives what the full-frame kernel gives there
    level, n_pairs = medians.local_level(data, bad)
    at_level, at_pairs = medians.local_level_at(data, rows, cols, bad)
    _assert_identical((level[rows, cols], n_pairs[rows, cols]), (at_level, at_pairs))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(64, 48), (1, 30), (30, 1)])
def test_residual_outliers_and_level_noise(monkeypatch, kind, shape):
    data, bad = _image(kind, shape, seed=11), _bad(shape, seed=12)
    rng = np.random.default_rng(13)
    plane = rng.uniform(0.5, 3.0, shape).astype(np.float32)
    plane[rng.random(shape) < 0.05] = np.nan
    model = (2.0, 0.3, 995.0)
    for function in (
        lambda: residuals.residual_outliers(data, bad, 2.0, plane=plane),
        lambda: residuals.residual_outliers(data, bad, 2.0, plane=plane.astype(float)),
        lambda: residuals.residual_outliers(data, bad, 2.0, model=model),
        lambda: residuals.residual_outliers(data, bad, 2.0, plane=plane, peak_cut=1.0),
        lambda: residuals.residual_outliers(data, bad, 2.0, model=model, peak_cut=1.0),
        lambda: residuals.residual_outliers(data, bad, 2.0, plane=plane, peak_cut=-3.0),
        lambda: residuals.level_noise(data, bad, model),
    ):
        reference, compiled = _both(monkeypatch, function)
        _assert_identical(reference, compiled)
    codes = residuals.residual_outliers(data, bad, 2.0, plane=plane)
    if shape[0] > 1 and shape[1] > 1:
        assert {1, 2} <= set(np.unique(codes))  # both signs occur
    # the faint peaks add codes 3 and leave the others as they were
    with_peaks = residuals.residual_outliers(data, bad, 2.0, plane=plane, peak_cut=1.0)
    assert np.array_equal(with_peaks[with_peaks != 3], codes[with_peaks != 3])
    assert not np.any(codes[with_peaks == 3])
    if shape[0] > 1 and shape[1] > 1:
        assert np.count_nonzero(with_peaks == 3) > 0


def test_faint_peaks_are_local_maxima_between_the_cuts():
    rng = np.random.default_rng(5)
    data = rng.normal(100.0, 0.1, (40, 40))
    # a compact hit of 9 sigma centred on a pixel corner: four pixels share
    # its charge, so that each stands about 4.4 sigma above the level their
    # neighbours give, less than the cut; across its darkest direction it
    # stands 9 sigma high
    data[20:22, 20:22] += [[9.2, 9.0], [9.0, 9.0]]
    # the broad top of a faint star: lit in every direction
    data[9:12, 9:12] += [[5.0, 7.0, 5.0], [7.0, 10.0, 7.0], [5.0, 7.0, 5.0]]
    bad = np.zeros(data.shape, dtype=bool)
    model = (1.0, 0.0, 0.0)
    codes = residuals.residual_outliers(data, bad, 5.0, model=model, peak_cut=3.0)
    assert codes[20, 20] == 3
    assert codes[10, 10] == 0
    assert residuals.residual_outliers(data, bad, 5.0, model=model)[20, 20] == 0
    level, n_pairs = medians.local_level(data, bad)
    residual = (data - level) / medians.RESIDUAL_FACTOR[n_pairs]
    peaks = codes == 3
    assert np.all(residual[peaks] > 3.0)
    for y, x in zip(*np.nonzero(peaks), strict=True):
        window = data[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        assert np.count_nonzero(window >= data[y, x]) == 1


def test_fix_pixels_is_identical_with_either_engine(monkeypatch):
    camera = SimulatedCamera((160, 200), seed=21)
    bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
    frame, _ = camera.science(seed=22)
    reference, compiled = _both(monkeypatch, lambda: fix_pixels(frame, bpm))
    _assert_identical(
        (reference.data, reference.flags, reference.uncertainty.array),
        (compiled.data, compiled.flags, compiled.uncertainty.array),
    )
    assert np.count_nonzero(compiled.flags & 4) > 10  # cosmic rays were found


def test_engine_can_be_chosen_by_environment(monkeypatch):
    monkeypatch.setenv("CCDPIXFIX_ENGINE", "numpy")
    assert medians.engine() == "numpy"
    monkeypatch.setenv("CCDPIXFIX_ENGINE", "")
    assert medians.engine() == "numba"


@pytest.mark.parametrize("n_frames", [2, 3, 6])
@pytest.mark.parametrize("kind", ["uint16", "float32", "float64"])
def test_clipped_stack_mean(monkeypatch, n_frames, kind):
    rng = np.random.default_rng(n_frames)
    stack = rng.normal(1000.0, 2.0, (n_frames, 23, 31))
    stack[0, 5, 5] = 60000.0  # a cosmic ray in one frame
    if kind == "uint16":
        stack = np.round(stack).astype(np.uint16)
    else:
        stack[rng.random(stack.shape) < 0.05] = np.nan
        stack[:, 0, 0] = np.nan  # no valid value at all
        stack = stack.astype(kind)
    for lowest in (False, True):
        reference, compiled = _both(
            monkeypatch,
            lambda lowest=lowest: stacks.clipped_stack_mean(stack, 8.0, lowest=lowest),
        )
        _assert_identical(reference, compiled)
    combined = stacks.clipped_stack_mean(stack, 8.0, lowest=n_frames == 2)
    assert abs(combined[5, 5] - 1000.0) < 10  # the cosmic ray is left out


def test_neighbourhood_holds_the_same_pixels(monkeypatch):
    shape = (9, 7)
    index = np.array([0, 6, 62, 31, 31, 32])  # corners, a repeat, a neighbour
    reference, compiled = _both(
        monkeypatch, lambda: medians.neighbourhood(index, shape, {})
    )
    assert np.array_equal(np.sort(compiled), reference)
    assert reference.size == np.unique(reference).size
    # the stamps let a second call see every pixel again
    seen = {}
    first = medians.neighbourhood(index, shape, seen)
    assert np.array_equal(
        np.sort(medians.neighbourhood(index, shape, seen)), np.sort(first)
    )


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_window_statistics_of_few_or_no_good_values(monkeypatch, engine):
    if engine == "numpy":
        monkeypatch.setenv("CCDPIXFIX_ENGINE", "numpy")
    data = np.arange(16.0).reshape(4, 4)
    bad = np.ones((4, 4), dtype=bool)
    bad[0, 0] = False  # the only good value near (1, 1); none near (3, 3)
    median, count, lowest, deviation = medians.window_statistics(
        data, [1, 3], [1, 3], radius=1, bad=bad, spread=True
    )
    np.testing.assert_array_equal(count, [1, 0])
    assert median[0] == lowest[0] == 0.0 and deviation[0] == 0.0
    assert np.isnan(median[1]) and np.isnan(lowest[1]) and deviation[1] == 0.0


@pytest.mark.parametrize("kind", ["float32", "uint16"])
def test_point_kernels_on_many_points(monkeypatch, kind):
    # Enough points that the compiled kernels split them among threads
    # (`by_point_blocks`, on a machine of two cores or more).
    shape = (300, 64)
    data, bad = _image(kind, shape, seed=31), _bad(shape, seed=32)
    rng = np.random.default_rng(33)
    rows = rng.integers(0, shape[0], 20_000)
    cols = rng.integers(0, shape[1], 20_000)
    plane = rng.uniform(0.5, 3.0, shape).astype(np.float32)
    flags = rng.choice(np.array([0, 4], np.uint16), shape, p=[0.97, 0.03])
    for function in (
        lambda: medians.local_level_at(data, rows, cols, bad),
        lambda: residuals.noise_at(data, bad, rows, cols, plane=plane),
        lambda: residuals.noise_at(data, bad, rows, cols, model=(4.0, 0.5, 990.0)),
        lambda: medians.window_values(data, rows, cols, radius=2, bad=bad),
        lambda: medians.window_statistics(
            data, rows, cols, radius=1, bad=bad, include_centre=False, spread=True
        ),
        lambda: medians.row_median(
            medians.window_values(data, rows, cols, radius=1, bad=bad)
        ),
        lambda: medians.bits_around(flags, rows * shape[1] + cols, 4),
        lambda: medians.lowest_side_median(data, rows, cols, radius=3, bad=bad),
    ):
        _assert_identical(*_both(monkeypatch, function))
