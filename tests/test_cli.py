"""The ccdpixfix command, run for real in a subprocess."""

import subprocess
import sys
from pathlib import Path

from astropy.nddata import CCDData

import ccdpixfix
from ccdpixfix import BadPixelMap


def _run(*args, cwd=None):
    command = [sys.executable, "-m", "ccdpixfix", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert ccdpixfix.__version__ in result.stdout


def test_no_command_is_a_usage_error():
    result = _run()
    assert result.returncode == 2
    assert "demo" in result.stderr


def test_demo_prints_scores_and_writes_files(tmp_path):
    result = _run("demo", "--size", "128", "--output", tmp_path / "night")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for word in ("recall", "false flags", "hot", "stuck", "MSE"):
        assert word in result.stdout
    night = Path(tmp_path / "night")
    bpm = BadPixelMap.read(night / "bpm.fits")
    assert bpm.counts()["HOT"] > 0
    fixed = CCDData.read(night / "science_0_fixed.fits", hdu_flags="FLAGS")
    assert fixed.flags is not None and fixed.mask is not None
    assert fixed.uncertainty is not None
    # a second run refuses to overwrite, without a traceback
    again = _run("demo", "--size", "128", "--output", night)
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert "Traceback" not in again.stderr
    # one of its files in the way: refused before any work, nothing written
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "science_1_fixed.fits").write_bytes(b"mine")
    blocked = _run("demo", "--size", "128", "--output", fresh)
    assert blocked.returncode == 1
    assert "science_1_fixed.fits exists; nothing written" in blocked.stderr
    assert sorted(p.name for p in fresh.iterdir()) == ["science_1_fixed.fits"]
    assert (fresh / "science_1_fixed.fits").read_bytes() == b"mine"


def test_demo_rejects_tiny_frames_and_negative_seeds():
    result = _run("demo", "--size", "10")
    assert result.returncode == 2
    assert "--size" in result.stderr
    result = _run("demo", "--seed", "-1")
    assert result.returncode == 2
    assert "--seed must be 0 or more, got -1" in result.stderr


def test_demo_output_must_be_a_directory(tmp_path):
    taken = tmp_path / "frame.fits"
    taken.write_bytes(b"not a directory")
    result = _run("demo", "--output", str(taken))
    assert result.returncode == 2
    assert "exists and is not a directory" in result.stderr
    assert "Errno" not in result.stderr
    assert taken.read_bytes() == b"not a directory"
