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


def stars_only(camera, fwhm, seed=3, n_stars=150):
    """A frame of ``camera`` with stars and sky only, and its truth."""
    return camera.science(
        fwhm=fwhm,
        seed=seed,
        n_stars=n_stars,
        n_cosmic_rays=0,
        n_transient_hot=0,
        n_transient_cold=0,
    )
