"""Shared, seeded simulated data for the tests (session-scoped: built once)."""

import warnings

import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera


@pytest.fixture(scope="session")
def camera():
    """A 256 x 256 camera with every kind of persistent defect."""
    return SimulatedCamera((256, 256), seed=11)


@pytest.fixture(scope="session")
def darks(camera):
    """Five raw 300 s darks, with cosmic rays."""
    return [camera.dark(300.0, seed=seed) for seed in range(5)]


@pytest.fixture(scope="session")
def flats(camera):
    """Three raw flats."""
    return [camera.flat(seed=100 + seed) for seed in range(3)]


@pytest.fixture(scope="session")
def bpm(darks, flats):
    """The bad-pixel map of the camera from its darks and flats."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)
        return make_bad_pixel_map(darks, flats)
