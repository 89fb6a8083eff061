"""What a new user tripped over on raw frames (issue 15), each through the CLI."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from ccdpixfix import BadPixelMap, fix_pixels
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.utils.provenance import history_cards, join_history


def command(*args):
    return [sys.executable, "-m", "ccdpixfix", *map(str, args)]


def run(*args, env=None, **kwargs):
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=300, env=env, **kwargs
    )


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Raw frames with an SBIG-like header: EGAIN, no RDNOISE, no BUNIT."""
    root = tmp_path_factory.mktemp("trial")
    camera = SimulatedCamera((128, 128), seed=41)
    (root / "in").mkdir()
    (root / "darks").mkdir()
    for index in range(3):
        frame = camera.science(seed=index)[0]
        header = fits.Header(frame.meta)
        header["EGAIN"] = header.pop("GAIN")
        header.remove("RDNOISE", ignore_missing=True)
        header.remove("BUNIT", ignore_missing=True)
        header["DATE-OBS"] = "2026-11-29T20:00:00"  # astropy's datfix notes it
        fits.PrimaryHDU(frame.data, header).writeto(root / "in" / f"sci{index}.fits")
        dark = camera.dark(300.0, seed=20 + index)
        header = fits.Header(dark.meta)
        header["DATE-OBS"] = "2026-11-29T19:00:00"
        fits.PrimaryHDU(dark.data, header).writeto(root / "darks" / f"d{index}.fits")
    return root


def test_outputs_read_back_as_documented_without_bunit(night, tmp_path):
    result = run("fix", night / "in" / "sci0.fits", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    fixed = CCDData.read(tmp_path / "sci0.fits", hdu_flags="FLAGS")
    assert fixed.unit == "adu" and fixed.flags.dtype == np.uint16
    history = join_history(fits.getheader(tmp_path / "sci0.fits")["HISTORY"])
    assert "ccdpixfix: BUNIT = 'adu' added (none given)" in history


def test_skip_existing_says_nothing_per_file(night, tmp_path):
    assert run("fix", night / "in", "-o", tmp_path).returncode == 0
    again = run("fix", night / "in", "-o", tmp_path, "--skip-existing")
    assert again.returncode == 0
    assert again.stderr == "" and "None" not in again.stdout
    assert "3 already there" in again.stdout
    quiet = run("fix", night / "in", "-o", tmp_path, "--skip-existing", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    both = run("fix", night / "in", "-o", tmp_path, "--skip-existing", "--overwrite")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_step_options_on_the_command_line(night, tmp_path):
    source = night / "in" / "sci1.fits"
    options = {
        "--contrast": "6",
        "--method": "mean",
        "--saturation": "60000",
        "--gain": "1.4",
        "--read-noise": "4.5",
    }
    args = [item for pair in options.items() for item in pair]
    result = run("fix", source, "-o", tmp_path, "--warm-is-bad", *args)
    assert result.returncode == 0, result.stderr
    with fits.open(source) as hdulist:
        frame = CCDData(hdulist[0].data, unit="adu", meta=hdulist[0].header)
    expected = fix_pixels(
        frame,
        contrast=6.0,
        method="mean",
        saturation=60000.0,
        gain=1.4,
        read_noise=4.5,
        warm_is_bad=True,
    )
    with fits.open(tmp_path / "sci1.fits") as hdulist:
        assert np.array_equal(hdulist["FLAGS"].data, expected.flags)
        assert np.array_equal(hdulist[0].data, expected.data)
        record = join_history(hdulist[0].header["HISTORY"])[0]
    for text in ("contrast=6", "method=mean", "gain=1.4", "read_noise=4.5"):
        assert text in record
    bad = run("fix", source, "-o", tmp_path / "b", "--gain", "-1")
    assert bad.returncode == 2 and "--gain must be a positive number" in bad.stderr


def test_history_cards_are_whole_and_info_shows_them_whole(night, tmp_path):
    cards = history_cards("fix_pixels", **{f"name{i}": 1.5 * i for i in range(20)})
    assert len(cards) > 1 and all(len(card) <= 72 for card in cards)
    assert all(card.endswith(",") for card in cards[:-1]) and cards[-1].endswith(")")
    run("fix", night / "in" / "sci0.fits", "-o", tmp_path)
    info = run("info", tmp_path / "sci0.fits")
    line = next(x for x in info.stdout.splitlines() if "fix_pixels(" in x)
    assert line.rstrip().endswith(")") and "warm_is_bad" not in line  # no map
    assert "flags_to_replace=" in line and "n_replaced=" in line
    piped = subprocess.run(
        f"{sys.executable} -m ccdpixfix info {tmp_path / 'sci0.fits'} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.stdout.count("\n") == 1
    assert "Broken pipe" not in piped.stderr and "Traceback" not in piped.stderr


def test_bpm_is_quiet_about_wcs_and_takes_tiff_darks(night, tmp_path):
    result = run("bpm", night / "darks", "-o", tmp_path / "bpm.fits")
    assert result.returncode == 0, result.stderr
    assert "datfix" not in result.stderr and "datfix" not in result.stdout
    tifffile = pytest.importorskip("tifffile")
    tiffs = tmp_path / "tiffs"
    tiffs.mkdir()
    for path in sorted((night / "darks").iterdir()):
        tifffile.imwrite(tiffs / (path.stem + ".tif"), fits.getdata(path))
    from_tiff = run("bpm", tiffs, "-o", tmp_path / "bpm_tiff.fits")
    assert from_tiff.returncode == 0, from_tiff.stderr
    assert "SIMPLE" not in from_tiff.stderr
    assert BadPixelMap.read(tmp_path / "bpm_tiff.fits").shape == (128, 128)


def test_a_colour_png_is_no_dark(night, tmp_path):
    image = pytest.importorskip("PIL.Image")
    path = tmp_path / "colour.png"
    image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    result = run("bpm", path, "-o", tmp_path / "bpm.fits")
    assert result.returncode == 2
    assert "colour.png is a colour image" in result.stderr


def test_compress_and_planes(night, tmp_path):
    source = night / "in" / "sci2.fits"
    assert run("fix", source, "-o", tmp_path / "plain").returncode == 0
    small = run("fix", source, "-o", tmp_path / "small", "--compress")
    assert small.returncode == 0, small.stderr
    flags_only = run(
        "fix", source, "-o", tmp_path / "flags", "--compress", "--planes", "flags"
    )
    assert flags_only.returncode == 0, flags_only.stderr
    sizes = {
        name: os.path.getsize(tmp_path / name / "sci2.fits")
        for name in ("plain", "small", "flags")
    }
    assert sizes["flags"] < sizes["small"] < 0.6 * sizes["plain"]
    with fits.open(tmp_path / "plain" / "sci2.fits") as a:
        with fits.open(tmp_path / "small" / "sci2.fits") as b:
            assert np.array_equal(a[0].data, b[1].data)  # lossless
            for name in ("MASK", "UNCERT", "FLAGS"):
                assert np.array_equal(a[name].data, b[name].data)
        with fits.open(tmp_path / "flags" / "sci2.fits") as c:
            assert [hdu.name for hdu in c][-1] == "FLAGS"
            assert "MASK" not in c and "UNCERT" not in c
    wrong = run("fix", source, "-o", tmp_path / "w", "--planes", "FLAGS,VAR")
    assert wrong.returncode == 2 and "unknown VAR" in wrong.stderr
    empty = run("fix", source, "-o", tmp_path / "w", "--planes", " ,")
    assert empty.returncode == 2 and "--planes is empty" in empty.stderr
    assert not (tmp_path / "w").exists()


def test_engine_choice_and_compile_notice(night, tmp_path):
    env = {**os.environ, "CCDPIXFIX_ENGINE": "bogus"}
    result = run("fix", night / "in" / "sci0.fits", "-o", tmp_path, env=env)
    assert result.returncode == 2
    assert "CCDPIXFIX_ENGINE must be 'numba' or 'numpy', not 'bogus'" in result.stderr
    from ccdpixfix.medians import needs_compiling

    # compiled once by the tests above: the notice is for a first run only
    assert needs_compiling() is False
    quiet = run("fix", night / "in" / "sci0.fits", "-o", tmp_path / "q")
    assert "compiling" not in quiet.stderr


def test_the_demo_explains_its_columns():
    result = run("demo", "--size", "96")
    assert result.returncode == 0, result.stderr
    for column in ("persist.:", "false/Mpx:", "repl<3sig:", "transient:"):
        assert column in result.stdout


def test_a_variance_extension_is_the_input_uncertainty(night, tmp_path):
    data = fits.getdata(night / "in" / "sci0.fits").astype(np.float32)
    variance = (data - 1000).clip(0) / 1.5 + 25.0
    hdus = [fits.PrimaryHDU()]
    for name, array in (("SCI", data), ("VAR", variance)):
        hdu = fits.ImageHDU(array, name=name)
        hdu.header["EXTVER"] = 1
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(tmp_path / "gmos.fits")
    result = run("fix", tmp_path / "gmos.fits", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    with fits.open(tmp_path / "out" / "gmos.fits") as hdulist:
        history = join_history(hdulist["SCI"].header["HISTORY"])
        assert "ccdpixfix: uncertainty from extension VAR" in history
        assert hdulist["UNCERT"].header["UTYPE"] == "VarianceUncertainty"
        replaced = (hdulist["FLAGS"].data & 128) != 0
        assert replaced.any()
        # the VAR extension holds the updated variance; others are untouched
        assert np.array_equal(hdulist["VAR"].data, hdulist["UNCERT"].data)
        assert np.array_equal(hdulist["VAR"].data[~replaced], variance[~replaced])


def test_the_planes_of_one_image_are_not_replaced_by_another_s(night, tmp_path):
    data = fits.getdata(night / "in" / "sci0.fits").astype(np.float32)
    images = [
        fits.ImageHDU(data + offset, name=f"CCD{i}") for i, offset in ((1, 0), (2, 5))
    ]
    fits.HDUList([fits.PrimaryHDU(), *images]).writeto(tmp_path / "two.fits")
    first = run("fix", tmp_path / "two.fits", "--hdu", "CCD1", "-o", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    fixed = tmp_path / "a" / "two.fits"
    with fits.open(fixed) as hdulist:
        assert {hdulist[n].header["IMAGEHDU"] for n in ("MASK", "UNCERT", "FLAGS")} == {
            1
        }
    before = digest(fixed)
    # Fixing the other image of that output would replace CCD1's planes.
    second = run("fix", fixed, "--hdu", "CCD2", "-o", tmp_path / "b")
    assert second.returncode == 1
    assert "two.fits" in second.stderr and "describe HDU 1, not HDU 2" in second.stderr
    assert not (tmp_path / "b" / "two.fits").exists() and digest(fixed) == before
    # The same image again may be fixed; so may a file whose planes name no
    # image when it holds only one (as ccdproc writes them).
    again = run("fix", fixed, "--hdu", "CCD1", "-o", tmp_path / "c")
    assert again.returncode == 0, again.stderr
    CCDData(data, unit="adu", mask=np.zeros(data.shape, bool)).write(
        tmp_path / "p.fits"
    )
    single = run("fix", tmp_path / "p.fits", "-o", tmp_path / "d")
    assert single.returncode == 0, single.stderr
    with fits.open(tmp_path / "d" / "p.fits") as hdulist:
        assert [h.name for h in hdulist].count("MASK") == 1


def test_plot_before_after_and_a_frame_never_fixed(night, tmp_path):
    pytest.importorskip("matplotlib")
    source = night / "in" / "sci0.fits"
    run("fix", source, "-o", tmp_path / "out")
    never = run("plot", source, "-o", tmp_path / "raw.png")
    assert never.returncode == 1 and "was not fixed by ccdpixfix" in never.stderr
    both = run(
        "plot",
        tmp_path / "out" / "sci0.fits",
        "--original",
        source,
        "-o",
        tmp_path / "both.png",
    )
    assert both.returncode == 0, both.stderr
    assert Path(tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"
    assert "note" not in both.stderr  # the frame it was fixed from
    other = run(
        "plot",
        tmp_path / "out" / "sci0.fits",
        "--original",
        night / "in" / "sci1.fits",
        "-o",
        tmp_path / "other.png",
    )
    assert other.returncode == 0, other.stderr
    assert "differs from the fixed frame" in other.stderr
    assert "sci1.fits" in other.stderr


def test_many_flags_are_drawn_as_dots():
    pytest.importorskip("matplotlib")
    from ccdpixfix.plotting import plot_frame

    frame = SimulatedCamera((256, 256), seed=2).science(seed=3)[0]
    fixed = fix_pixels(frame)
    fixed.flags[::2, ::3] |= 2048  # 10,000+ HOT pixels
    figure = plot_frame(fixed)
    hot = next(c for c in figure.axes[0].collections if c.get_label().startswith("HOT"))
    assert hot.get_sizes()[0] < 1 and hot.get_facecolor()[0][3] > 0


def test_raw_or_calibrated_on_the_command_line(night, tmp_path):
    from ccdpixfix import make_bad_pixel_map

    bpm = make_bad_pixel_map(sorted(str(p) for p in (night / "darks").iterdir()))
    bpm.write(tmp_path / "bpm.fits")
    source = night / "in" / "sci2.fits"
    for flag, value in (("--raw", True), ("--calibrated", False)):
        out = tmp_path / flag.strip("-")
        result = run("fix", source, "--bpm", tmp_path / "bpm.fits", "-o", out, flag)
        assert result.returncode == 0, result.stderr
        with fits.open(source) as hdulist:
            frame = CCDData(hdulist[0].data, unit="adu", meta=hdulist[0].header)
        expected = fix_pixels(frame, bpm, raw=value)
        with fits.open(out / "sci2.fits") as hdulist:
            assert np.array_equal(hdulist["FLAGS"].data, expected.flags)
            record = join_history(hdulist[0].header["HISTORY"])[0]
        assert f"raw={value}" in record
    both = run("fix", source, "-o", tmp_path / "x", "--raw", "--calibrated")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
