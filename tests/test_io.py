"""Tests of the atomic FITS writer and of the bad-pixel map file format."""

import json
import os

import numpy as np
import pytest
from astropy.io import fits

import ccdpixfix
from ccdpixfix import BadPixelMap, PixelFlag, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.io import write_hdulist_atomic


def _hdulist(value):
    data = np.arange(12, dtype=np.float32).reshape(3, 4) * value
    hdu = fits.PrimaryHDU(data)
    hdu.header["MARKER"] = (value, "which list this is")
    return fits.HDUList([hdu])


def _unwritable_hdulist():
    """An HDU list astropy refuses to write: a card with an illegal keyword."""
    hdu = fits.PrimaryHDU(np.zeros((3, 4), dtype=np.float32))
    hdu.header.append(fits.Card.fromstring("BAD KEY =                    1"))
    return fits.HDUList([hdu])


def test_write_creates_the_file_and_nothing_else(tmp_path):
    path = tmp_path / "out.fits"
    write_hdulist_atomic(_hdulist(2.0), path)
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]
    with fits.open(path) as hdulist:
        np.testing.assert_array_equal(hdulist[0].data, _hdulist(2.0)[0].data)
        assert hdulist[0].header["MARKER"] == 2.0
        # No card is added unless asked: the header stays as given.
        assert "CHECKSUM" not in hdulist[0].header
    checked = tmp_path / "checked.fits"
    write_hdulist_atomic(_hdulist(2.0), checked, checksum=True)
    with fits.open(checked, checksum=True) as hdulist:
        # Written with checksums, which verify.
        assert "CHECKSUM" in hdulist[0].header
        assert "DATASUM" in hdulist[0].header


def test_write_to_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hdulist_atomic(_hdulist(3.0), "relative.fits")
    assert sorted(os.listdir(tmp_path)) == ["relative.fits"]
    assert fits.getval(tmp_path / "relative.fits", "MARKER") == 3.0


def test_write_accepts_a_string_path(tmp_path):
    path = tmp_path / "as_string.fits"
    write_hdulist_atomic(_hdulist(4.0), str(path))
    assert fits.getval(path, "MARKER") == 4.0


def test_write_refuses_to_overwrite(tmp_path):
    path = tmp_path / "out.fits"
    write_hdulist_atomic(_hdulist(1.0), path)
    before = path.read_bytes()
    with pytest.raises(
        FileExistsError, match="exists; it is replaced only with overwrite=True"
    ):
        write_hdulist_atomic(_hdulist(5.0), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]


def test_write_refuses_to_overwrite_a_file_that_is_not_fits(tmp_path):
    path = tmp_path / "precious.fits"
    path.write_bytes(b"not written by us\x00\x01")
    with pytest.raises(FileExistsError):
        write_hdulist_atomic(_hdulist(5.0), path)
    assert path.read_bytes() == b"not written by us\x00\x01"


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "out.fits"
    write_hdulist_atomic(_hdulist(1.0), path)
    write_hdulist_atomic(_hdulist(6.0), path, overwrite=True)
    assert fits.getval(path, "MARKER") == 6.0
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_data_reach_the_disk_before_the_file_takes_its_name(
    tmp_path, monkeypatch, overwrite
):
    """fsync of the file's data before it is named, and of the directory after:
    a power cut never leaves the name on a file whose data were not written."""
    path = tmp_path / "out.fits"
    if overwrite:
        fits.PrimaryHDU(np.zeros(3)).writeto(path)
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        status = os.fstat(descriptor)
        synced.append(
            (
                status.st_ino,
                os.path.lexists(path) and os.stat(path).st_ino == status.st_ino,
            )
        )
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_hdulist_atomic(
        fits.HDUList([fits.PrimaryHDU(np.arange(6.0))]), path, overwrite=overwrite
    )
    monkeypatch.undo()
    assert len(synced) == 2
    (file_inode, named_then), (directory_inode, _) = synced
    # The data first, while the file did not yet bear the name ...
    assert file_inode == os.stat(path).st_ino and not named_then
    # ... then the directory that now holds the name.
    assert directory_inode == os.stat(tmp_path).st_ino
    assert np.array_equal(fits.getdata(path), np.arange(6.0))


def test_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.fits"
    with pytest.raises(fits.VerifyError, match="Illegal keyword name"):
        write_hdulist_atomic(_unwritable_hdulist(), path)
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.fits"
    write_hdulist_atomic(_hdulist(1.0), path)
    before = path.read_bytes()
    with pytest.raises(fits.VerifyError):
        write_hdulist_atomic(_unwritable_hdulist(), path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]


# --- BadPixelMap files ---------------------------------------------------------


@pytest.fixture(scope="module")
def made_map():
    camera = SimulatedCamera((64, 96), seed=12)
    darks = [camera.dark(300.0, seed=s) for s in range(3)]
    flats = [camera.flat(seed=s) for s in range(2)]
    return make_bad_pixel_map(darks, flats)


def test_made_map_round_trip_is_exact(made_map, tmp_path):
    path = tmp_path / "bpm.fits"
    made_map.write(path)
    back = BadPixelMap.read(path)
    assert back.flags.dtype == np.uint16
    np.testing.assert_array_equal(back.flags, made_map.flags, strict=True)
    assert back.meta == made_map.meta
    assert back == made_map
    assert made_map.flags.any()  # the round trip carried real defects


def test_a_compressed_map_round_trips_and_a_damaged_one_is_refused(made_map, tmp_path):
    path = tmp_path / "bpm.fits.gz"
    made_map.write(path)
    assert BadPixelMap.read(path) == made_map
    # astropy stops before the gzip checksum: a damaged byte gave wrong flags
    packed = bytearray(path.read_bytes())
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "damaged.fits.gz").write_bytes(bytes(packed))
    with pytest.raises(ValueError, match=r"damaged\.fits\.gz.*damaged compressed file"):
        BadPixelMap.read(tmp_path / "damaged.fits.gz")


def test_round_trip_of_every_flag_and_awkward_meta(tmp_path):
    rng = np.random.default_rng(5)
    bits = np.array([int(flag) for flag in PixelFlag], dtype=np.uint16)
    picks = rng.random((20, 30, bits.size)) < 0.2
    flags = (picks * bits).sum(axis=2).astype(np.uint16)
    flags[0, 0] = 0xFFFF  # the largest value a map may hold
    meta = {
        "text": "  padded with spaces  ",
        "unicode": "Öland, 20 µm, -10 °C, Ångström",
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
        "float": 0.1 + 0.2,
        "tiny": 5e-324,
        "none": None,
    }
    bpm = BadPixelMap(flags, meta)
    path = tmp_path / "bpm.fits"
    bpm.write(path)
    back = BadPixelMap.read(path)
    np.testing.assert_array_equal(back.flags, flags, strict=True)
    assert back.meta == meta
    assert back.meta["float"] == 0.1 + 0.2


def test_round_trip_with_empty_meta(tmp_path):
    flags = np.zeros((5, 7), dtype=np.uint16)
    flags[2, 3] = PixelFlag.DEAD
    path = tmp_path / "bpm.fits"
    BadPixelMap(flags).write(path)
    back = BadPixelMap.read(path)
    assert back.meta == {}
    np.testing.assert_array_equal(back.flags, flags)
    assert back.shape == (5, 7)


def test_map_file_layout(made_map, tmp_path):
    path = tmp_path / "bpm.fits"
    made_map.write(path)
    with fits.open(path, checksum=True) as hdulist:
        header = hdulist[0].header
        assert header["CPFBPM"] == ccdpixfix.__version__
        for flag in PixelFlag:
            assert header[f"HIERARCH FLAG {flag.name}"] == int(flag)
        for name, count in made_map.counts().items():
            assert header[f"HIERARCH COUNT {name}"] == count
            assert count == np.count_nonzero(made_map.flags & int(PixelFlag[name]))
        # Stored as 16-bit unsigned integers (BITPIX 16 with BZERO 32768).
        assert header["BITPIX"] == 16
        assert header["BZERO"] == 32768
        assert hdulist[0].data.dtype.kind == "u"
        assert hdulist[0].data.dtype.itemsize == 2
        stored = json.loads(hdulist["META"].data["JSON"][0])
        assert stored == made_map.meta
    assert sorted(os.listdir(tmp_path)) == ["bpm.fits"]


@pytest.mark.parametrize(
    "shape, other, hint",
    [
        ((1, 16, 16), False, "save its one plane as a 2-D image"),
        ((1, 1, 16, 16), False, "save its one plane as a 2-D image"),
        ((5, 16, 16), False, "fix each plane saved as a 2-D image"),
        ((5, 16, 16), True, "choose an image with --hdu"),
    ],
)
def test_an_image_that_is_not_2d_is_refused_with_a_hint_that_helps(shape, other, hint):
    from ccdpixfix.io import image_hdu_index

    hdus = [fits.PrimaryHDU(np.zeros(shape, np.float32))]
    if other:
        hdus.append(fits.ImageHDU(np.zeros((16, 16), np.float32)))
    with pytest.raises(ValueError, match=hint) as error:
        image_hdu_index(fits.HDUList(hdus))
    assert f"data shape {shape}" in str(error.value)
    if other:
        assert image_hdu_index(fits.HDUList(hdus), 1) == 1
