"""One options object per step: defaults written once, checked once, everywhere."""

import dataclasses
import inspect

import numpy as np
import pytest
from astropy.nddata import CCDData

from ccdpixfix import (
    fix_files,
    fix_pixels,
    flag_transients,
    make_bad_pixel_map,
    replace_bad_pixels,
)
from ccdpixfix.badpixels import MapOptions
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.noise import NoiseOptions
from ccdpixfix.pipeline.options import FixOptions
from ccdpixfix.replace import ReplaceOptions
from ccdpixfix.transients import TransientOptions


def _defaults(function):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(
    ("options", "function"),
    [
        (FixOptions, fix_pixels),
        (ReplaceOptions, replace_bad_pixels),
        (MapOptions, make_bad_pixel_map),
        # flag_transients keeps its own signature (its body is being
        # rewritten elsewhere): its defaults must still be these.
        (TransientOptions, flag_transients),
    ],
)
def test_signatures_take_the_defaults_of_the_options(options, function):
    defaults = _defaults(function)
    # replace_bad_pixels takes no gain or read noise (its input's noise or
    # header serves); every other option is in the signature.
    taken = set(options.names()) - {"gain", "read_noise"}
    assert taken <= set(defaults)
    for name in set(options.names()) & set(defaults):
        assert defaults[name] == options.default(name), name


def test_fix_options_hold_the_options_of_the_steps():
    fix = FixOptions()
    for options in (TransientOptions, ReplaceOptions, NoiseOptions):
        for name in options.names():
            assert getattr(fix, name) == options.default(name), name
            assert FixOptions.help(name) == options.help(name), name


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FixOptions().threshold = 3.0


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        (
            {"treshold": 3},
            TypeError,
            r"unknown options: treshold \(did you mean threshold\?\)",
        ),
        ({"threshold": -1}, ValueError, "threshold must be a positive number, got -1"),
        ({"transients": False, "threshold": -1}, ValueError, "threshold must be"),
        ({"grow": 1.5}, ValueError, "grow must be a whole number"),
        ({"grow": 1000}, ValueError, "grow must be at most 10 pixels, got 1000"),
        ({"method": "mode"}, ValueError, "method must be one of"),
        ({"max_radius": 0}, ValueError, "max_radius must be at least 1"),
        ({"gain": 0}, ValueError, "gain must be a positive number"),
        ({"raw": "yes"}, ValueError, "raw must be True"),
    ],
)
def test_fix_options_name_the_bad_option(keywords, error, match):
    with pytest.raises(error, match=match):
        FixOptions.from_keywords(**keywords)


def test_fix_files_refuses_bad_options_before_any_work(tmp_path):
    with pytest.raises(TypeError, match="did you mean threshold"):
        fix_files([tmp_path / "missing.fits"], None, tmp_path / "out", treshold=3)
    with pytest.raises(ValueError, match="threshold must be a positive number"):
        fix_files([tmp_path / "missing.fits"], None, tmp_path / "out", threshold=-1)
    assert not (tmp_path / "out").exists()


def test_fix_pixels_takes_max_radius():
    camera = SimulatedCamera((96, 96), seed=2)
    frame, _ = camera.science(seed=1)
    flagged = flag_transients(frame)
    narrow = replace_bad_pixels(flagged, max_radius=2)
    fixed = fix_pixels(frame, max_radius=2)
    assert np.array_equal(fixed.data, narrow.data, equal_nan=True)
    assert "max_radius=2" in str(fixed.meta["HISTORY"])
    assert "max_radius" not in str(fix_pixels(frame).meta["HISTORY"])


def test_flag_transients_checks_its_options_once_before_any_work():
    frame, _ = SimulatedCamera((64, 64), seed=2).science(seed=1)
    with pytest.raises(ValueError, match="threshold"):
        flag_transients(frame, threshold=-1)
    with pytest.raises(ValueError, match="detector must be one of"):
        flag_transients(frame, detector="bogus")
    with pytest.raises(ValueError, match="grow"):
        flag_transients(frame, grow=1.5)


def test_a_colour_cube_takes_no_bayer_pattern():
    plane, _ = SimulatedCamera((64, 64), seed=2).science(seed=1)
    cube = CCDData(np.stack([plane.data] * 3).astype(np.float32), unit="adu")
    for step in (fix_pixels, flag_transients, replace_bad_pixels):
        with pytest.raises(ValueError, match="has no Bayer pattern"):
            step(cube, cfa="RGGB")
        assert step(cube, cfa="none").data.shape == cube.shape


def test_the_command_line_takes_the_defaults_of_the_options():
    from ccdpixfix.cli.parser import _parser

    args = _parser().parse_args(["fix", "frame.fits", "-o", "out"])
    for name in ("threshold", "contrast", "grow", "method", "max_radius", "raw"):
        assert getattr(args, name) == FixOptions.default(name), name
    args = _parser().parse_args(["bpm", "dark.fits", "-o", "bpm.fits"])
    assert args.hot_rate == MapOptions.default("hot_rate")


def test_the_map_threshold_has_the_name_of_the_other_steps():
    """make_bad_pixel_map's n-sigma cut is ``threshold`` (as in
    flag_transients); the name before, ``significance``, still works, with a
    deprecation warning, and gives the same map."""
    from astropy.utils.exceptions import AstropyDeprecationWarning

    camera = SimulatedCamera((64, 64), seed=3)
    darks = [camera.dark(300.0, seed=s) for s in range(3)]
    new = make_bad_pixel_map(darks, threshold=6.0, column_threshold=7.0)
    with pytest.warns(AstropyDeprecationWarning, match="now called threshold"):
        old = make_bad_pixel_map(darks, significance=6.0, column_threshold=7.0)
    assert np.array_equal(new.flags, old.flags)
    assert new.meta["parameters"]["significance"] == 6.0
    with pytest.raises(ValueError, match="threshold"):
        make_bad_pixel_map(darks, threshold=-1)
