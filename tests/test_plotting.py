"""Diagnostic figures are valid PNG files of the size asked."""

import struct
import subprocess
import sys

import numpy as np

from ccdpixfix import fix_pixels
from ccdpixfix.plotting import plot_bad_pixel_map, plot_frame


def png_size(path):
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def test_plot_frame(camera, bpm, tmp_path):
    frame, _ = camera.science(seed=3)
    figure = plot_frame(fix_pixels(frame, bpm), figsize=(10, 6), dpi=50)
    assert len(figure.axes) == 5
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("TRANSIENT_HOT") for label in labels)
    assert any(label.startswith("HOT") for label in labels)
    figure.savefig(tmp_path / "frame.png")
    assert png_size(tmp_path / "frame.png") == (500, 300)


def test_plot_frame_without_flags(camera, tmp_path):
    frame, _ = camera.science(seed=4)
    figure = plot_frame(frame, dpi=40)
    figure.savefig(tmp_path / "raw.png")
    assert png_size(tmp_path / "raw.png") == (520, 320)


def test_plot_bad_pixel_map(bpm, tmp_path):
    figure = plot_bad_pixel_map(bpm, figsize=(9, 3), dpi=60)
    bars = figure.axes[1].patches
    assert sorted(int(bar.get_width()) for bar in bars) == sorted(bpm.counts().values())
    history = bpm.meta["dark_histogram"]
    assert history["unit"] == "e-/s"
    assert sum(history["counts"]) + history["below"] <= bpm.flags.size
    figure.savefig(tmp_path / "bpm.png")
    assert png_size(tmp_path / "bpm.png") == (540, 180)


def _plot(source, output):
    """The ``plot`` command line on ``source``, written to ``output``."""
    return subprocess.run(
        [sys.executable, "-m", "ccdpixfix", "plot", source, "-o", output],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plot_command(camera, bpm, tmp_path):
    frame, _ = camera.science(seed=5)
    fixed = fix_pixels(frame, bpm)
    fixed.write(tmp_path / "fixed.fits", hdu_flags="FLAGS")
    bpm.write(tmp_path / "bpm.fits")
    for name in ("fixed", "bpm"):
        result = _plot(tmp_path / f"{name}.fits", tmp_path / f"{name}.png")
        assert result.returncode == 0, result.stderr
        width, height = png_size(tmp_path / f"{name}.png")
        assert width > 500 and height > 300
    again = _plot(tmp_path / "bpm.fits", tmp_path / "bpm.png")
    assert again.returncode == 2 and "exists" in again.stderr
    # The name's ending says the format.
    for suffix, magic in ((".pdf", b"%PDF"), (".SVG", b"<?xml")):
        result = _plot(tmp_path / "bpm.fits", tmp_path / f"bpm{suffix}")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / f"bpm{suffix}").read_bytes().startswith(magic)
    assert np.isfinite(fixed.data).all()
