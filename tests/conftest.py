"""Shared, seeded simulated data for the tests (session-scoped: built once)."""

import signal
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


def _as_typed_at_a_terminal():
    """Give the child Ctrl-C's default action, as a shell does for a command
    in the foreground: a test suite run as a background job of a
    non-interactive shell starts with SIGINT ignored (POSIX), which its
    children inherit, so that Ctrl-C would never reach them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def foreground():
    """``preexec_fn`` for a command line that a test interrupts with Ctrl-C."""
    return _as_typed_at_a_terminal
