"""``ccdpixfix bpm``, ``fix`` and ``info`` run for real on FITS files."""

import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.wcs import WCS

from ccdpixfix import BadPixelMap, PixelFlag
from ccdpixfix.datasets import SimulatedCamera

DATA = Path(ccdproc.__file__).parent / "tests" / "data"
STRUCTURAL = {
    "SIMPLE",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "EXTEND",
    "BZERO",
    "BSCALE",
    "XTENSION",
    "PCOUNT",
    "GCOUNT",
}


def run(*args, cwd=None):
    command = [sys.executable, "-m", "ccdpixfix", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cards(header):
    return [(c.keyword, c.value, c.comment) for c in header.cards]


def assert_header_kept(original, written):
    """Every original card, value and comment, in order; only structural cards
    and ccdpixfix HISTORY lines may differ."""
    before = [c for c in cards(original) if c[0] not in STRUCTURAL]
    after = [
        c
        for c in cards(written)
        if c[0] not in STRUCTURAL
        and not (c[0] == "HISTORY" and c in _ours(written))
        and not (c[0] == "BUNIT" and "BUNIT" not in original)
        and c[0] not in ("FIX_PIXELS", "FIXPIX")  # the step's keyword, as ccdproc's
    ]
    assert after == before
    # a frame without a unit gets ADU, said so, so that CCDData.read works
    assert written.get("BUNIT") == original.get("BUNIT", "adu")
    assert any("ccdpixfix" in str(value) for value in written["HISTORY"])


def _ours(header):
    """The HISTORY cards ccdpixfix added (the wrapped fix_pixels record)."""
    history = [c for c in cards(header) if c[0] == "HISTORY"]
    start = next(i for i, c in enumerate(history) if str(c[1]).startswith("ccdpixfix"))
    # the record wraps over several cards, which astropy appends last
    return history[start:]


def assert_same_sky(original, written):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before, after = WCS(original), WCS(written)
    ny, nx = original["NAXIS2"], original["NAXIS1"]
    yy, xx = np.mgrid[0 : ny : max(ny // 8, 1), 0 : nx : max(nx // 8, 1)]
    assert np.array_equal(
        np.array(before.pixel_to_world_values(xx, yy)),
        np.array(after.pixel_to_world_values(xx, yy)),
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Darks, flats and frames of a 128 x 128 camera, as FITS files."""
    root = tmp_path_factory.mktemp("night")
    camera = SimulatedCamera((128, 128), seed=4)
    (root / "darks").mkdir()
    (root / "lights").mkdir()
    for index in range(4):
        camera.dark(300.0, seed=index).write(root / "darks" / f"dark{index}.fits")
    for index in range(3):
        camera.flat(seed=10 + index).write(root / f"flat{index}.fits")
    for index in range(3):
        frame, _ = camera.science(seed=20 + index)
        frame.write(root / "lights" / f"light{index}.fits")
    result = run(
        "bpm", root / "darks", "--flats", root / "flat*.fits", "-o", root / "bpm.fits"
    )
    assert result.returncode == 0, result.stderr
    return root, result


def test_bpm_command(night):
    root, result = night
    bpm = BadPixelMap.read(root / "bpm.fits")
    assert bpm.shape == (128, 128)
    assert bpm.counts()["HOT"] > 0 and bpm.counts()["DEAD"] > 0
    assert "HOT" in result.stdout and "written to" in result.stdout
    again = run("bpm", root / "darks", "-o", root / "bpm.fits")
    assert again.returncode == 2
    assert "exists" in again.stderr and "bpm.fits" in again.stderr


def test_fix_keeps_headers_wcs_and_inputs(night, tmp_path):
    root, _ = night
    lights = sorted((root / "lights").glob("*.fits"))
    before = {path: digest(path) for path in lights}
    result = run(
        "fix",
        root / "lights" / "*.fits",
        "--bpm",
        root / "bpm.fits",
        "-o",
        tmp_path / "out",
    )
    assert result.returncode == 0, result.stderr
    assert {path: digest(path) for path in lights} == before
    for path in lights:
        written = tmp_path / "out" / path.name
        original = fits.getheader(path)
        header = fits.getheader(written)
        assert_header_kept(original, header)
        assert_same_sky(original, header)
        # long strings, HIERARCH, COMMENT and HISTORY came through
        assert header["SIMNOTE"] == original["SIMNOTE"]
        assert (
            header["HIERARCH CCDPIXFIX SIM SEED"]
            == original["HIERARCH CCDPIXFIX SIM SEED"]
        )
        ccd = CCDData.read(written, hdu_flags="FLAGS")
        assert ccd.mask is not None and ccd.uncertainty is not None
        assert np.array_equal(ccd.mask, (ccd.flags & 11383) != 0)
        with fits.open(written) as hdulist:
            assert hdulist["MASK"].data.dtype == np.uint8
            assert hdulist["FLAGS"].data.dtype == np.uint16
            assert hdulist["FLAGS"].header["HIERARCH FLAG HOT"] == PixelFlag.HOT
            assert hdulist["UNCERT"].header["UTYPE"] == "StdDevUncertainty"
        replaced = (ccd.flags & np.uint16(PixelFlag.REPLACED)) != 0
        raw = fits.getdata(path).astype(np.float32)
        assert np.array_equal(ccd.data[~replaced], raw[~replaced])


@pytest.mark.parametrize("name", ["a8280271.fits", "sip-wcs.fit"])
def test_real_camera_files(name, tmp_path):
    source = DATA / name
    before = digest(source)
    result = run("fix", source, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert digest(source) == before
    original = fits.getheader(source)
    written = fits.getheader(tmp_path / name)
    assert_header_kept(original, written)
    assert_same_sky(original, written)
    if name == "sip-wcs.fit":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert WCS(written).sip is not None


def test_bad_files_do_not_stop_the_batch(night, tmp_path):
    root, _ = night
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in (root / "lights").glob("*.fits"):
        shutil.copy(path, batch / path.name)
    good = batch / "light0.fits"
    (batch / "truncated.fits").write_bytes(good.read_bytes()[:10000])
    (batch / "notes.fits").write_text("this is not a FITS file\n")
    result = run("fix", batch, "--bpm", root / "bpm.fits", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 2
    assert any("truncated.fits" in line and "truncated" in line for line in errors)
    assert any("notes.fits" in line for line in errors)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["light0.fits", "light1.fits", "light2.fits"]


def test_overwrite_rules_and_report(night, tmp_path):
    root, _ = night
    frame = root / "lights" / "light1.fits"
    out = tmp_path / "out"
    first = run("fix", frame, "-o", out, "--report", tmp_path / "report.json")
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    entry = report["files"][0]
    assert entry["status"] == "ok" and entry["counts"]["TRANSIENT_HOT"] > 0
    stamp = digest(out / "light1.fits")
    second = run("fix", frame, "-o", out)
    assert second.returncode == 1
    assert "light1.fits exists" in second.stderr and "--overwrite" in second.stderr
    assert digest(out / "light1.fits") == stamp
    third = run("fix", frame, "-o", out, "--overwrite", "--threshold", "8")
    assert third.returncode == 0
    # the output directory may not be the input's: the input would be lost
    inplace = run("fix", frame, "-o", frame.parent, "--overwrite")
    assert inplace.returncode == 2  # a usage error, before any work
    assert "every output would replace its input" in inplace.stderr


def test_shape_mismatch_with_the_map(night, tmp_path):
    root, _ = night
    small = CCDData(np.ones((64, 64), np.float32), unit="adu")
    small.write(tmp_path / "small.fits")
    result = run(
        "fix",
        tmp_path / "small.fits",
        "--bpm",
        root / "bpm.fits",
        "-o",
        tmp_path / "out",
    )
    # no frame fits the map: a batch-wide problem, one usage error, no work
    assert result.returncode == 2
    assert "small.fits" in result.stderr and "128 x 128" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    # a frame of another shape among others is that frame's problem, first
    # or not
    for order in (1, -1):
        frames = [root / "lights" / "light1.fits", tmp_path / "small.fits"]
        mixed = run(
            "fix", *frames[::order], "--bpm", root / "bpm.fits", "-o", tmp_path / "out"
        )
        assert mixed.returncode == 1
        assert "small.fits" in mixed.stderr and "(128, 128)" in mixed.stderr
        assert (tmp_path / "out" / "light1.fits").exists()
        (tmp_path / "out" / "light1.fits").unlink()


def test_compressed_multi_extension_and_float_inputs(night, tmp_path):
    root, _ = night
    source = root / "lights" / "light2.fits"
    with fits.open(source) as hdulist:
        header, data = hdulist[0].header.copy(), hdulist[0].data.copy()
    gz = tmp_path / "in" / "gz.fits.gz"
    gz.parent.mkdir()
    fits.PrimaryHDU(data, header).writeto(gz)
    fz = tmp_path / "in" / "rice.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(fz)
    mef = tmp_path / "in" / "mef.fits"
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="x", format="E", array=np.arange(3.0))], name="CAT"
    )
    science = fits.ImageHDU(data.astype(np.float32), header, name="SCI")
    fits.HDUList([fits.PrimaryHDU(), table, science]).writeto(mef)
    result = run(
        "fix", tmp_path / "in", "--bpm", root / "bpm.fits", "-o", tmp_path / "out"
    )
    assert result.returncode == 0, result.stderr
    for name, index in (("gz.fits.gz", 0), ("rice.fits.fz", 1), ("mef.fits", 2)):
        source_path = tmp_path / "in" / name
        original = fits.getheader(source_path, index)
        with fits.open(source_path) as inputs:
            kind = type(inputs[index])
        with fits.open(tmp_path / "out" / name) as hdulist:
            names = [hdu.name for hdu in hdulist]
            assert names[-3:] == ["MASK", "UNCERT", "FLAGS"]
            image = hdulist[index]
            assert type(image) is kind
            assert image.data.shape == (128, 128)
            assert np.isfinite(image.data).all()
            assert_header_kept(original, image.header)
        if name == "mef.fits":
            assert names[:3] == ["PRIMARY", "CAT", "SCI"]
    named = run("fix", mef, "--hdu", "SCI", "-o", tmp_path / "named")
    assert named.returncode == 0, named.stderr
    missing = run("fix", mef, "--hdu", "NOPE", "-o", tmp_path / "none")
    assert missing.returncode == 2 and "--hdu NOPE" in missing.stderr
    assert not (tmp_path / "none").exists()  # found before any work


def test_parallel_jobs_give_the_same_files(night, tmp_path):
    root, _ = night
    lights = root / "lights"
    one = run("fix", lights, "--bpm", root / "bpm.fits", "-o", tmp_path / "one")
    two = run(
        "fix", lights, "--bpm", root / "bpm.fits", "-o", tmp_path / "two", "--jobs", "2"
    )
    assert one.returncode == two.returncode == 0
    for path in (tmp_path / "one").iterdir():
        with fits.open(path) as a, fits.open(tmp_path / "two" / path.name) as b:
            for hdu_a, hdu_b in zip(a, b, strict=True):
                assert np.array_equal(hdu_a.data, hdu_b.data)


def test_info_help_and_usage(night, tmp_path):
    root, _ = night
    run("fix", root / "lights" / "light0.fits", "-o", tmp_path)
    info = run("info", tmp_path / "light0.fits")
    assert info.returncode == 0 and "TRANSIENT_HOT" in info.stdout
    info_map = run("info", root / "bpm.fits")
    assert info_map.returncode == 0 and "darks: 4" in info_map.stdout
    not_ours = run("info", root / "flat0.fits")
    assert not_ours.returncode == 1 and "FLAGS" in not_ours.stderr
    for command in ("bpm", "fix", "info", "demo"):
        help_text = run(command, "--help")
        assert help_text.returncode == 0 and "examples:" in help_text.stdout
    assert run("fix", root / "lights", "-o", tmp_path, "--jobs", "0").returncode == 2
    assert run("fix", "-o", tmp_path).returncode == 2
    nothing = run("fix", tmp_path / "none*.fits", "-o", tmp_path / "x")
    assert nothing.returncode == 2 and "no file matches" in nothing.stderr
    assert "no frame to fix" in nothing.stderr and not (tmp_path / "x").exists()
    bad_map = run("fix", root / "lights", "--bpm", root / "flat0.fits", "-o", tmp_path)
    assert bad_map.returncode == 2 and "not a ccdpixfix bad-pixel map" in bad_map.stderr


def test_progress_bar_on_a_terminal(night, tmp_path):
    """On a terminal, stderr shows a progress bar; --quiet silences it."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    root, _ = night
    command = [
        sys.executable,
        "-m",
        "ccdpixfix",
        "fix",
        str(root / "lights"),
        "-o",
        str(tmp_path / "out"),
    ]
    primary, secondary = pty.openpty()
    # a terminal of 24 rows and 80 columns, as a person would have
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        process = subprocess.run(
            command, stderr=secondary, stdout=subprocess.PIPE, timeout=300
        )
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert process.returncode == 0
    assert b"3/3" in shown and b"frame" in shown
    quiet = run("fix", root / "lights", "-o", tmp_path / "quiet", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
