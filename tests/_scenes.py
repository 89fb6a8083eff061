"""Simulated scenes that several test modules share."""

from ccdpixfix.datasets import SimulatedCamera


def defect_free_camera(shape=(256, 256), seed=2):
    """A simulated camera without persistent defects."""
    return SimulatedCamera(
        shape,
        seed=seed,
        hot_fraction=0,
        warm_fraction=0,
        dead_fraction=0,
        low_response_fraction=0,
        stuck_fraction=0,
        bad_column=False,
    )


def sources_only(camera, fwhm, seed, **sources):
    """A frame of ``camera`` with the sky's sources only (``sources``: the
    counts of `SimulatedCamera.science`; no hits), and its truth."""
    return camera.science(
        fwhm=fwhm,
        seed=seed,
        n_cosmic_rays=0,
        n_transient_hot=0,
        n_transient_cold=0,
        **sources,
    )


def stars_only(camera, fwhm, seed=3, n_stars=150, n_faint_stars=0):
    """A frame of ``camera`` with stars and sky only, and its truth.

    Without the faint stars (200-2000 e-) unless asked, and without
    galaxies: the scenes built on it add faint hits and count every flag
    beyond them; one faint star in a few hundred, lifted by its noise, is
    flagged (``test_faint_stars_are_not_taken_for_hits`` measures that
    share, and ``test_galaxies_are_not_taken_for_hits`` the galaxies').
    """
    return sources_only(
        camera, fwhm, seed, n_stars=n_stars, n_faint_stars=n_faint_stars, n_galaxies=0
    )
