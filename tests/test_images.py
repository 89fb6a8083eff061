"""TIFF and PNG files: read as CCDData, fixed, written back as they came."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from ccdpixfix import PixelFlag, fix_pixels, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.images import read_image, sidecar_path, write_image

# The images extra: skipped, with its name, where it is not installed.
tifffile = pytest.importorskip("tifffile")
Image = pytest.importorskip("PIL.Image")
PngImagePlugin = pytest.importorskip("PIL.PngImagePlugin")


def _run(*args):
    command = [sys.executable, "-m", "ccdpixfix", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def camera_and_map():
    camera = SimulatedCamera((128, 160), seed=12)
    return camera, make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])


def test_grey_16_bit_tiff_through_the_command_line(tmp_path, camera_and_map):
    camera, bpm = camera_and_map
    frame, truth = camera.science(fwhm=2.6, seed=3)
    source = tmp_path / "in" / "m42.tif"
    source.parent.mkdir()
    tifffile.imwrite(source, frame.data, description="ASI294MM, 300 s")
    before = _digest(source)
    bpm.write(tmp_path / "bpm.fits")
    result = _run("fix", source, "--bpm", tmp_path / "bpm.fits", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert _digest(source) == before  # the input is only read
    output = tmp_path / "out" / "m42.tif"
    with tifffile.TiffFile(output) as tif:
        pixels = tif.pages[0].asarray()
        assert tif.pages[0].description == "ASI294MM, 300 s"
    assert pixels.dtype == np.uint16 and pixels.shape == frame.data.shape
    with fits.open(sidecar_path(output)) as sidecar:
        flags = sidecar["FLAGS"].data
        assert sidecar["UNCERT"].data.shape == pixels.shape
        assert "fix_pixels" in str(sidecar[0].header["HISTORY"])
    np.testing.assert_array_equal(flags, fix_pixels(read_image(source), bpm).flags)
    replaced = (flags & PixelFlag.REPLACED) != 0
    np.testing.assert_array_equal(pixels[~replaced], frame.data[~replaced])
    hits = truth["transient_hot"] & (truth["transient_amplitude"] > 20 * truth["sigma"])
    assert (flags[hits] & PixelFlag.TRANSIENT_HOT).all()
    # a second run refuses to replace the outputs
    again = _run("fix", source, "--bpm", tmp_path / "bpm.fits", "-o", tmp_path / "out")
    assert again.returncode == 1 and "exists" in again.stderr


def _eight_bit_rgb(camera, seed):
    planes = [camera.science(fwhm=3.0, seed=seed + k)[0].data for k in range(3)]
    cube = np.stack([np.clip((p.astype(float) - 1000) / 8, 0, 255) for p in planes])
    return np.rint(cube).astype(np.uint8)


def test_rgb_png_keeps_depth_text_and_alpha(tmp_path, camera_and_map):
    camera, _ = camera_and_map
    cube = _eight_bit_rgb(camera, seed=30)
    cube[1, 60, 70] = 230  # a hot pixel in the green plane (255: saturated)
    alpha = np.full(cube.shape[1:], 200, np.uint8)
    rgba = np.concatenate([np.moveaxis(cube, 0, -1), alpha[..., None]], -1)
    source = tmp_path / "nebula.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("Software", "SharpCap")
    Image.fromarray(rgba, "RGBA").save(source, pnginfo=text, dpi=(300, 300))
    frame = read_image(source)
    assert frame.data.shape == cube.shape and frame.data.dtype == np.uint8
    fixed = fix_pixels(frame)
    assert fixed.flags[1, 60, 70] & PixelFlag.TRANSIENT_HOT
    assert not (fixed.flags[[0, 2], 60, 70] & PixelFlag.TRANSIENT_HOT).any()
    output = tmp_path / "out.png"
    write_image(fixed, output)
    with Image.open(output) as image:
        assert image.mode == "RGBA"
        assert image.info.get("Software") == "SharpCap"
        assert np.allclose(image.info["dpi"], (300, 300), atol=0.1)
        pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels[..., 3], alpha)
    replaced = (fixed.flags & PixelFlag.REPLACED) != 0
    written = np.moveaxis(pixels[..., :3], -1, 0)
    np.testing.assert_array_equal(written[~replaced], cube[~replaced])
    assert written[1, 60, 70] < 150
    with pytest.raises(FileExistsError, match="exists"):
        write_image(fixed, output)


def test_bayer_tiff_with_cfa_on_the_command_line(tmp_path):
    camera = SimulatedCamera((128, 128), seed=5, cfa="RGGB")
    frame, truth = camera.science(fwhm=2.6, seed=6)
    source = tmp_path / "raw.tiff"
    tifffile.imwrite(source, frame.data)  # TIFF keeps no Bayer keyword
    result = _run("fix", source, "-o", tmp_path / "out", "--cfa", "RGGB")
    assert result.returncode == 0, result.stderr
    with fits.open(tmp_path / "out" / "raw.flags.fits") as sidecar:
        history = str(sidecar[0].header["HISTORY"]).replace("\n", "")
        assert "cfa=RGGB" in history
        flags = sidecar["FLAGS"].data
    hits = truth["transient_hot"] & (truth["transient_amplitude"] > 20 * truth["sigma"])
    assert (flags[hits] & PixelFlag.TRANSIENT_HOT).mean() >= 0.9


def test_unreadable_image_is_one_error_line(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    result = _run("fix", tmp_path / "broken.png", "-o", tmp_path / "out")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "broken.png" in lines[0]
    assert "Traceback" not in result.stderr


def test_two_channel_png_is_refused(tmp_path):
    source = tmp_path / "grey_alpha.png"
    Image.fromarray(np.zeros((8, 8, 2), np.uint8), "LA").save(source)
    with pytest.raises(ValueError, match=r"an image of shape \(8, 8, 2\) is neither"):
        read_image(source)


def _fixed_tiff(tmp_path, camera):
    """A TIFF frame, and the folder it was fixed into (image and sidecar)."""
    source = tmp_path / "in" / "frame.tif"
    source.parent.mkdir()
    tifffile.imwrite(source, camera.science(seed=4)[0].data)
    out = tmp_path / "out"
    assert _run("fix", source, "-o", out).returncode == 0
    return source, out


def test_an_existing_sidecar_is_not_replaced(tmp_path, camera_and_map):
    source, out = _fixed_tiff(tmp_path, camera_and_map[0])
    (out / "frame.tif").unlink()  # the image gone, its flags still there
    again = _run("fix", source, "-o", out)
    assert again.returncode == 1
    assert "frame.flags.fits exists; it is replaced only with" in again.stderr
    assert not (out / "frame.tif").exists()


def test_an_image_without_its_sidecar_is_not_taken_as_done(tmp_path, camera_and_map):
    # Its flags would be lost: --skip-existing says so instead of skipping it.
    source, out = _fixed_tiff(tmp_path, camera_and_map[0])
    assert "1 already there" in _run("fix", source, "-o", out, "--skip-existing").stdout
    (out / "frame.flags.fits").unlink()
    again = _run("fix", source, "-o", out, "--skip-existing")
    assert again.returncode == 1
    assert "frame.tif exists but is not a whole output" in again.stderr
