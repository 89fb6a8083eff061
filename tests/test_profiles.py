"""The stars' profile: faint compact hits found, undersampled stars kept."""

import numpy as np
import pytest
from _scenes import defect_free_camera, stars_only
from astropy.nddata import CCDData
from scipy import ndimage
from scipy.special import erf

from ccdpixfix import PixelFlag, flag_transients
from ccdpixfix.transients._profiles import (
    _STAR_FIT,
    _star_background,
    _star_residuals,
    _star_windows,
    defects_on_stars,
    narrowing,
    star_width,
)
from ccdpixfix.transients._sharpness import _local_background, bright_peaks

HOT = np.uint16(PixelFlag.TRANSIENT_HOT)


def _spot(shape, row, col, sigma, electrons):
    """Electrons of a round hit whose charge diffused by ``sigma`` px."""

    def share(centre, n):
        edges = (np.arange(n + 1) - 0.5 - centre) / (np.sqrt(2) * sigma)
        return 0.5 * np.diff(erf(edges))

    return electrons * np.outer(share(row, shape[0]), share(col, shape[1]))


def _bright_stars(frame, truth):
    """Pixels within 2 px of the stars more than 30 sigma high."""
    stars = truth["stars"]
    bright = stars["peak_adu"] > 30 * np.median(truth["sigma"])
    near = np.zeros(frame.shape, dtype=int)
    rows, cols = np.indices(frame.shape)
    for number, star in enumerate(stars[bright], start=1):
        near[np.hypot(rows - star["y"], cols - star["x"]) <= 2] = number
    return near, int(bright.sum())


@pytest.mark.parametrize("fwhm", [1.2, 1.8, 2.6, 4.0])
def test_the_stars_width_is_measured_on_the_frame(fwhm):
    """The Gaussian that fits the frame's Moffat stars (5x5, one weight)."""
    camera = defect_free_camera()
    frame, _ = stars_only(camera, fwhm)
    data = np.asarray(frame.data, dtype=float)
    known = np.zeros(data.shape, dtype=bool)
    noise = np.sqrt(np.maximum(data, 1.0) / camera.gain)
    rows, cols = np.nonzero(data > np.median(data) + 30 * np.median(noise))
    peaks, _ = bright_peaks(data, known, rows, cols, noise[rows, cols])
    width = star_width(
        data, known, rows[peaks], cols[peaks], noise[rows, cols][peaks], 5.0
    )
    # within a fifth of the Gaussian of the same FWHM
    assert width == pytest.approx(fwhm / 2.3548, rel=0.2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_faint_compact_hits_narrower_than_the_stars_are_found(seed):
    """Twelve round hits of 0.55 px, 23 sigma, among stars of FWHM 1.8.

    Their quietest pair of neighbours is within a few sigma of a star's;
    their 5x5 window fits a profile of 0.6 of the stars' width far better
    than the stars' own.
    """
    camera = defect_free_camera()
    frame, truth = stars_only(camera, 1.8)
    sigma = truth["sigma"]
    stars = truth["stars"]
    generator = np.random.default_rng(4)
    spots, electrons = [], np.zeros(frame.shape)
    while len(spots) < 12:
        row, col = generator.uniform(10, 246, 2)
        far = np.min(np.hypot(stars["y"] - row, stars["x"] - col)) >= 8
        if far and all(np.hypot(r - row, c - col) >= 8 for r, c in spots):
            spots.append((row, col))
            electrons += _spot(
                frame.shape, row, col, 0.55, 60 * camera.gain * np.median(sigma)
            )
    counts = np.random.default_rng(seed).poisson(electrons) / camera.gain
    data = np.asarray(frame.data, float) + counts
    hit = CCDData(data.astype(np.uint16), unit="adu", meta=frame.meta)
    flagged = (flag_transients(hit).flags & HOT) != 0
    found = [
        flagged[round(row) - 1 : round(row) + 2, round(col) - 1 : round(col) + 2].any()
        for row, col in spots
    ]
    assert sum(found) >= 11
    # nothing flagged away from them
    by_stars = (flag_transients(frame).flags & HOT) != 0
    lit = ndimage.binary_dilation(electrons / camera.gain > sigma, np.ones((3, 3)))
    assert not (flagged & ~by_stars & ~lit).any()


@pytest.mark.parametrize(
    ("fwhm", "seed", "n_stars", "most"),
    [
        (1.2, 3, 300, 0.03),
        (1.2, 4, 300, 0.03),
        (1.0, 3, 150, 0.06),
        (1.0, 5, 150, 0.06),
        # Few bright stars: their flatness, which the pixel phase spreads,
        # tells no common PSF; their width does (`undersampled_stars`).
        # Before, 89-92 % of their bright stars were hit; at FWHM 0.9 2-7 %
        # still are (seeds 3-6).
        (0.9, 3, 60, 0.08),
        (0.9, 4, 100, 0.08),
        (1.0, 4, 40, 0.03),
    ],
)
def test_undersampled_stars_are_not_taken_for_hits(fwhm, seed, n_stars, most):
    """At FWHM 1.0-1.2 a star centred on a pixel is not round: its diagonal
    neighbours are far darker than its sides. Its profile is the stars'.
    A hot pixel alone is still found.

    At FWHM 1.0 (80 % of the bright stars hit before, bench_quality) a few
    in a hundred stay: a Gaussian fits these Moffat stars only roughly, and
    for some pixel phases a narrower one fits a star somewhat better; two
    stars blended are elongated like a track (so a field of 150 stars
    there, not 300).
    """
    camera = defect_free_camera()
    frame, truth = stars_only(camera, fwhm, seed=seed, n_stars=n_stars)
    data = np.asarray(frame.data, float)
    hot_pixels = [(40, 200), (200, 40), (128, 131)]
    for row, col in hot_pixels:
        data[row, col] += 60 * truth["sigma"][row, col]
    result = flag_transients(CCDData(data, unit="adu", meta=frame.meta))
    flagged = (result.flags & HOT) != 0
    near, bright = _bright_stars(frame, truth)
    for row, col in hot_pixels:
        near[row - 2 : row + 3, col - 2 : col + 3] = 0
    hit = np.unique(near[flagged & (near > 0)]).size
    assert bright > n_stars / 2
    assert hit <= most * bright
    assert all(flagged[row, col] for row, col in hot_pixels)


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_faint_stars_beside_bright_ones_are_seldom_taken_for_defects(seed):
    """A crowded field, 800 stars in 256 x 256 at FWHM 1.8 and nothing
    else: fitted to each of its 240 bright stars, the profile leaves the
    fainter stars on their flanks, whose light is as broad as a star's.
    At most one is taken for a defect (seed 8: a star of flux 36000 3 px
    from one of 640000; with the neighbours' share at 0.3 and no misfit
    allowed for, 2-4 per field)."""
    camera = defect_free_camera(seed=seed)
    frame, truth = stars_only(camera, 1.8, seed=seed + 3, n_stars=800)
    data = np.asarray(frame.data, dtype=float)
    known = np.zeros(data.shape, dtype=bool)
    peaks = (data == ndimage.maximum_filter(data, size=3)) & (
        data - np.median(data) > 30 * truth["sigma"]
    )
    rows, cols = np.nonzero(peaks)
    noise = truth["sigma"][rows, cols]
    stars, _ = bright_peaks(data, known, rows, cols, noise)
    assert stars.size > 200
    rows, cols, noise = rows[stars], cols[stars], noise[stars]
    found = defects_on_stars(
        data,
        known,
        rows,
        cols,
        star_width(data, known, rows, cols, noise, 5.0),
        lambda r, c: truth["sigma"][r, c],
        5.0,
    )
    assert found[0].size <= 1


def _moffat_field(fwhm, seed, beta=3.0):
    """100 pixel-integrated Moffat stars 20 px apart on a sky of 200 e-."""
    rng = np.random.default_rng(seed)
    sky = np.full((200, 200), 200.0)
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    fine = np.arange(-8, 9)[:, None] + (np.arange(5) + 0.5) / 5 - 0.5
    peaks = []
    for y in range(10, 200, 20):
        for x in range(10, 200, 20):
            dy, dx = rng.uniform(-0.5, 0.5, 2)
            r2 = (fine.ravel()[:, None] - dy) ** 2 + (fine.ravel()[None, :] - dx) ** 2
            density = (1 + r2 / alpha**2) ** -beta * (beta - 1) / (np.pi * alpha**2)
            flux = 10 ** rng.uniform(4.5, 5.5)
            sky[y - 8 : y + 9, x - 8 : x + 9] += flux * density.reshape(
                17, 5, 17, 5
            ).mean(axis=(1, 3))
            peaks.append((y, x))
    data = rng.poisson(sky) + rng.normal(0, 5, sky.shape)
    return data, peaks, rng


def test_stars_are_fitted_at_their_centres_to_a_thirty_second_of_a_pixel():
    """The stars' fit finds each star's sub-pixel centre on the 1/32 px grid
    (at 1/8 px, a star of FWHM 1.8 px could sit 1/16 px off its fit, which
    moves half a per cent of its flux between the pixels beside its peak),
    and leaves nothing of a noiseless star of its profile."""
    rng = np.random.default_rng(3)
    centres = rng.uniform(-0.5, 0.5, (20, 2))
    data = np.zeros((40, 420))
    pixels = np.arange(-0.5, 9)
    for k, (dy, dx) in enumerate(centres):
        rows = 0.5 * np.diff(erf((pixels - 4 - dy) / (np.sqrt(2) * 0.8)))
        cols = 0.5 * np.diff(erf((pixels - 4 - dx) / (np.sqrt(2) * 0.8)))
        data[16:25, 20 * k + 16 : 20 * k + 25] = 1e4 * np.outer(rows, cols)
    peaks = np.full(20, 20), 20 * np.arange(20) + 20
    excess = _star_windows(data, np.zeros(data.shape, dtype=bool), *peaks, 0.8)
    residual, flux, fitted, _ = _star_residuals(excess + 0.0, 0.8)
    assert np.all(np.abs(fitted - centres) <= 1 / 64 + 1e-9)
    assert np.all(np.abs(flux - 1e4) < 0.01 * 1e4)
    assert np.nanmax(np.abs(residual)) < 0.02 * np.max(data)


def _defects_beside_cores(fwhm, seed, beta, sigmas):
    """Defects on a `_moffat_field`: hot pixels of ``sigmas`` times the
    noise beside the peaks of 10 of its stars. Returns the pixels found by
    `defects_on_stars` and the hot ones."""
    data, peaks, rng = _moffat_field(fwhm, seed, beta)
    hot = set()
    for k in rng.choice(len(peaks), 10, replace=False):
        y, x = peaks[k]
        core = data[y - 2 : y + 3, x - 2 : x + 3]
        y, x = np.unravel_index(np.argmax(core), core.shape) + np.array([y, x]) - 2
        dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, 1)][rng.integers(6)]
        data[y + dy, x + dx] += sigmas * np.sqrt(data[y + dy, x + dx])
        hot.add((int(y + dy), int(x + dx)))
    known = np.zeros(data.shape, dtype=bool)
    noise = np.sqrt(np.clip(data, 1, None) + 25)
    rows, cols = np.nonzero(
        (data == ndimage.maximum_filter(data, size=3)) & (data - 200 > 30 * noise)
    )
    stars, _ = bright_peaks(data, known, rows, cols, noise[rows, cols])
    rows, cols = rows[stars], cols[stars]
    assert rows.size >= 90
    width = star_width(data, known, rows, cols, noise[rows, cols], 5.0)
    found = defects_on_stars(
        data, known, rows, cols, width, lambda r, c: noise[r, c], 5.0
    )
    return set(zip(found[0].tolist(), found[1].tolist(), strict=True)), hot


@pytest.mark.parametrize("beta", [3.0, 2.0])
@pytest.mark.parametrize("fwhm", [2.0, 2.6, 3.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_hot_pixels_beside_the_cores_of_moffat_stars_are_found(fwhm, seed, beta):
    """Real stars are not Gaussian: a Moffat core is sharper and its wings
    broader, on every star alike at one pixel phase. Learned from the
    frame's stars of the nearest phases, that shape is part of their
    profile (`_common_misfit`), so a 20-sigma hot pixel beside the peak of
    a Moffat star stands out of it, even where it becomes the star's peak
    (FWHM 3.5): 6-9 of 10 found per field (beta 3 and 2), where one profile
    learned from all phases, the peak never judged, found 1-7 and the
    Gaussian profile alone 0-4 (FWHM 2.0 and 2.6); none on a clean star."""
    found, hot = _defects_beside_cores(fwhm, seed, beta, 20)
    assert len(found & hot) >= 6
    assert found <= hot


def test_the_sky_under_a_broad_star_is_measured_beyond_its_light():
    """Moffat stars of FWHM 4 (beta 3) on a sky of 200 e-: three pixels out
    their light is still 0.15 of their peak (median), where the sharpness tests'
    7x7 window takes the sky; four of the stars' widths out it is a few
    thousandths."""
    data, peaks, _ = _moffat_field(4.0, seed=0)
    rows, cols = np.array(peaks).T
    rows, cols = _brightest_of_cores(data, rows, cols)
    known = np.zeros(data.shape, dtype=bool)
    height = data[rows, cols] - 200.0
    width = 4.0 / 2.3548
    near = _local_background(data, known, rows, cols) - 200.0
    beyond = _star_background(data, known, rows, cols, width) - 200.0
    assert np.median(near / height) > 0.1
    assert np.median(np.abs(beyond) / height) < 0.03


def _brightest_of_cores(data, rows, cols):
    """The brightest pixel of each star's 3x3 core."""
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    values = np.stack([data[rows + dy, cols + dx] for dy, dx in offsets])
    best = np.array(offsets)[np.argmax(values, axis=0)]
    return rows + best[:, 0], cols + best[:, 1]


def test_hot_pixels_beside_the_cores_of_broad_stars_are_found():
    """With the sky under a star measured inside the 7x7 window, on the
    star's wings, the profile of a broad star (FWHM 4, beta 3) fitted on
    that missed its wings by a ring: 27 of 40 hot pixels of 20 sigma beside
    the peaks were found in four fields; with the sky four widths out, 34.
    None on a clean star."""
    found_hot = 0
    for seed in range(4):
        found, hot = _defects_beside_cores(4.0, seed, 3.0, 20)
        assert found <= hot
        found_hot += len(found & hot)
    assert found_hot >= 30


@pytest.mark.parametrize("fwhm", [2.0, 2.6])
@pytest.mark.parametrize("seed", [0, 1])
def test_faint_hot_pixels_beside_the_cores_of_moffat_stars_are_found(fwhm, seed):
    """10-sigma hot pixels beside the peaks of Moffat stars (beta 3): the
    star's fit at its centre to 1/32 px, with the frame's PSF at that
    phase, finds 3-6 of 10 per field (the profile of all phases, at 1/8 px,
    0-4); none on a clean star."""
    found, hot = _defects_beside_cores(fwhm, seed, 3.0, 10)
    assert len(found & hot) >= 3
    assert found <= hot


def _gaussian_field(sigma, seed):
    """121 pixel-integrated round Gaussian stars 24 px apart, sky 300 e-."""
    return _elongated_field(sigma, sigma, seed)


@pytest.mark.parametrize(("sigma", "most"), [(0.4, 0.25), (0.45, 0.2)])
def test_undersampled_gaussian_stars_are_recognised(sigma, most):
    """At Gaussian sigma 0.4-0.45 px (FWHM about 1 px) the pixel phase alone
    makes a round star's light look elongated (moment ratios 1.55-1.76,
    over the 1.5 that tells tracks), so no PSF was learned and all 121
    bright stars lost their cores. Measured against the elongation of the
    round profile at each star's own phase, they are the frame's stars; and
    a star's flank beside its peak, which looks elongated measured about
    itself, is judged by what the frame's stars of that pixel phase hold
    there (`_flank_of_a_star`): 15-24 and 9-17 stars hit (of 121) at sigma
    0.4 and 0.45, 86-90 and 38-45 with the first alone."""
    data = _gaussian_field(sigma, seed=0)
    flagged = (flag_transients(CCDData(data, unit="adu")).flags & HOT) != 0
    peaks = [(y, x) for y in range(12, 256, 24) for x in range(12, 256, 24)]
    hit = sum(flagged[y - 2 : y + 3, x - 2 : x + 3].any() for y, x in peaks)
    assert hit < most * len(peaks)


@pytest.mark.parametrize(("sigma", "most"), [(0.4, 0.06), (0.45, 0.07)])
def test_undersampled_gaussian_stars_keep_their_cores_at_every_phase(sigma, most):
    """A star of sigma 0.4 px near a pixel's edge moves its light between two
    pixels by several sigma within 1/16 px: fitted on the 1/8 px grid its
    own profile missed it by more than a narrower one, and 54 and 38 of 363
    stars (three fields) lost their cores at sigma 0.4 and 0.45 (12 and 16
    with the centres fitted to 1/32 px)."""
    peaks = [(y, x) for y in range(12, 256, 24) for x in range(12, 256, 24)]
    hit = 0
    for seed in range(3):
        data = _gaussian_field(sigma, seed)
        flagged = (flag_transients(CCDData(data, unit="adu")).flags & HOT) != 0
        hit += sum(flagged[y - 2 : y + 3, x - 2 : x + 3].any() for y, x in peaks)
    assert hit < most * 3 * len(peaks)


def test_an_undersampled_star_fits_its_own_profile_at_its_phase():
    """The stars' profile fits a bright star of sigma 0.4 px a third of a
    pixel off centre no worse than a narrower one (`narrowing`), while a
    one-pixel hit of the same height fits a narrower one far better."""
    shape, sky, flux = (15, 15), 300.0, 1.5e5
    rng = np.random.default_rng(4)
    gains = []
    for offset in ((0.47, 0.31), (-0.44, 0.28), (0.36, -0.47)):
        star = sky + _spot(shape, 7 + offset[0], 7 + offset[1], 0.4, flux)
        data = rng.poisson(star).astype(float)
        peak = np.unravel_index(np.argmax(data), shape)
        rows, cols = np.array([peak[0]]), np.array([peak[1]])
        noise = np.sqrt(data[rows, cols])
        known = np.zeros(shape, dtype=bool)
        gains.append(narrowing(data, known, rows, cols, noise, 0.4, 5.0)[0])
    assert max(gains) < _STAR_FIT
    hit = rng.poisson(np.full(shape, sky)).astype(float)
    hit[7, 7] += data.max() - sky
    known = np.zeros(shape, dtype=bool)
    centre = np.array([7])
    noise = np.sqrt(hit[centre, centre])
    assert narrowing(hit, known, centre, centre, noise, 0.4, 5.0)[0] > 100 * _STAR_FIT


def _elongated_field(sigma_y, sigma_x, seed):
    """121 pixel-integrated Gaussian stars 24 px apart, sky 300 e-."""

    def share(centre, sigma):
        edges = (np.arange(257) - 0.5 - centre) / (np.sqrt(2) * sigma)
        return 0.5 * np.diff(erf(edges))

    rng = np.random.default_rng(seed)
    sky = np.full((256, 256), 300.0)
    for y in range(12, 256, 24):
        for x in range(12, 256, 24):
            row = share(y + rng.uniform(-0.5, 0.5), sigma_y)
            col = share(x + rng.uniform(-0.5, 0.5), sigma_x)
            sky += 10 ** rng.uniform(4, 5.3) * np.outer(row, col)
    return rng.poisson(sky).astype(float)


@pytest.mark.parametrize("seed", [0, 1])
def test_elongated_stars_keep_their_flanks(seed):
    """Stars trailed by guiding (Gaussian sigma 0.85 by 0.6 px) are not
    round: a round profile misses them differently at each pixel phase,
    so their common misfit is not learned from them (`_common_misfit`);
    learned, it took pixels of 7-17 of the 121 stars for defects."""
    data = _elongated_field(0.85, 0.6, seed)
    flagged = (flag_transients(CCDData(data, unit="adu")).flags & HOT) != 0
    peaks = [(y, x) for y in range(12, 256, 24) for x in range(12, 256, 24)]
    hit = sum(flagged[y - 2 : y + 3, x - 2 : x + 3].any() for y, x in peaks)
    assert hit <= 0.03 * len(peaks)


def test_the_chi_square_of_many_windows_is_that_of_each_alone():
    # Taken in blocks of rows (one BLAS thread each), the fit of a window
    # must not depend on how many others are fitted with it.
    from ccdpixfix.transients._profiles import (
        _BLAS_ONE_THREAD,
        _least_chi_square,
        _templates,
    )

    rng = np.random.default_rng(5)
    templates = _templates(1.1)
    count = 3 * max(_BLAS_ONE_THREAD // templates.size, 1) + 7
    excess = rng.normal(0.0, 1.0, (count, templates.shape[0]))
    excess += 1000.0 * templates[:, rng.integers(templates.shape[1], size=count)].T
    weights = rng.uniform(0.5, 2.0, excess.shape)
    weights[::5, 3] = 0.0  # a bad pixel in some windows
    together = _least_chi_square(excess, weights, templates)
    alone = [
        _least_chi_square(excess[i : i + 1], weights[i : i + 1], templates)[0]
        for i in range(count)
    ]
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-9)
    # each window's best template explains most of its bright profile
    assert np.all(together < 0.1 * np.sum(weights * excess**2, axis=1))
