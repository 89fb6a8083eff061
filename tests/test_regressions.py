"""Bugs found in review, each pinned by a test."""

import gzip
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from ccdpixfix import (
    BadPixelMap,
    PixelFlag,
    fix_files,
    fix_pixels,
    flag_transients,
    make_bad_pixel_map,
)


def _sky(seed=0, shape=(48, 48)):
    rng = np.random.default_rng(seed)
    return np.round(1000 + rng.normal(0, 5, shape)).astype(np.uint16)


def test_datamax_is_not_a_saturation_level():
    data = _sky()
    data[20, 20] = 5000  # a cosmic ray, the largest value of the frame
    frame = CCDData(
        data, unit="adu", meta={"DATAMAX": 5000, "GAIN": 1.0, "RDNOISE": 5.0}
    )
    flags = flag_transients(frame).flags
    assert flags[20, 20] & PixelFlag.TRANSIENT_HOT
    assert not flags[20, 20] & PixelFlag.SATURATED


def test_a_saturated_pixel_of_the_map_keeps_its_value():
    data = _sky()
    data[10:14, 10:14] = 65535  # a saturated star core
    map_flags = np.zeros(data.shape, np.uint16)
    map_flags[11, 11] = PixelFlag.HOT
    fixed = fix_pixels(CCDData(data, unit="adu"), BadPixelMap(map_flags))
    assert fixed.flags[11, 11] & PixelFlag.SATURATED
    assert fixed.flags[11, 11] & PixelFlag.HOT
    assert fixed.data[11, 11] == 65535
    assert fixed.mask[11, 11]


def test_replacement_uses_the_given_gain_and_read_noise():
    data = _sky().astype(np.float64)
    flags = np.zeros(data.shape, np.uint16)
    flags[5, 5] = PixelFlag.HOT
    fixed = fix_pixels(
        CCDData(data, unit="adu", flags=flags),
        transients=False,
        gain=0.01,
        read_noise=10.0,
    )
    # read noise 10 e- at 0.01 e-/ADU is 1000 ADU, whatever the data scatter
    assert np.median(fixed.uncertainty.array) > 900


def test_map_arguments_are_checked(camera, darks):
    with pytest.raises(ValueError, match="gain must be a positive number"):
        make_bad_pixel_map(darks, gain=0)
    with pytest.raises(ValueError, match="hot_rate must be a positive number"):
        make_bad_pixel_map(darks, hot_rate=-1)


def test_a_map_file_without_flags_is_refused(tmp_path):
    header = fits.Header({"CPFBPM": "0.1.0"})
    fits.PrimaryHDU(header=header).writeto(tmp_path / "empty.fits")
    with pytest.raises(ValueError, match="holds no 2-D flag image"):
        BadPixelMap.read(tmp_path / "empty.fits")


def test_cosmic_rays_rejected_in_darks_of_small_units():
    rng = np.random.default_rng(4)
    darks = []
    for _ in range(5):
        darks.append(
            CCDData(
                rng.normal(0.010, 0.001, (64, 64)),
                unit="adu",
                meta={"EXPTIME": 300.0, "GAIN": 1.0},
            )
        )
    darks[2].data[30, 30] += 0.04  # a 40-sigma cosmic ray in one dark
    bpm = make_bad_pixel_map(darks)
    assert bpm.flags[30, 30] == 0


def test_outputs_are_ordinary_gzip_files(tmp_path):
    frame = CCDData(_sky(), unit="adu")
    source = tmp_path / "in" / "frame.fits.gz"
    source.parent.mkdir()
    frame.write(source)
    old = os.umask(0o022)
    try:
        results = fix_files([source], None, tmp_path / "out")
    finally:
        os.umask(old)
    assert results[0]["status"] == "ok"
    written = tmp_path / "out" / "frame.fits.gz"
    packed = written.read_bytes()
    assert packed[:2] == b"\x1f\x8b"  # gzip magic
    # Not gzip's slowest level (XFL 2), which took 18 s a 2048 x 2048 frame
    # and its planes.
    assert packed[8] != 2
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    # What the compressed input held is what was fixed: the same pixels as
    # from the plain file.
    plain = tmp_path / "plain.fits"
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    fix_files([plain], None, tmp_path / "plain_out")
    with (
        fits.open(written) as from_gz,
        fits.open(tmp_path / "plain_out" / "plain.fits") as from_plain,
    ):
        for a, b in zip(from_gz, from_plain, strict=True):
            assert np.array_equal(a.data, b.data, equal_nan=True)


def test_two_inputs_with_one_name(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        CCDData(_sky(seed=len(folder)), unit="adu").write(tmp_path / folder / "x.fits")
    results = fix_files(
        [tmp_path / "a" / "x.fits", tmp_path / "b" / "x.fits"],
        None,
        tmp_path / "out",
        overwrite=True,
    )
    assert [r["status"] for r in results] == ["ok", "error"]
    assert "would replace that of" in results[1]["error"]
    assert str(tmp_path / "a" / "x.fits") in results[1]["error"]


def test_negative_hdu_index(tmp_path):
    data = _sky().astype(np.float32)
    data[7, 7] = 1e5
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(
        tmp_path / "mef.fits"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccdpixfix",
            "fix",
            tmp_path / "mef.fits",
            "--hdu",
            "-1",
            "-o",
            tmp_path / "out",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with fits.open(tmp_path / "out" / "mef.fits") as hdulist:
        assert hdulist["SCI"].data[7, 7] < 2000
        assert hdulist["FLAGS"].data[7, 7] & PixelFlag.REPLACED
