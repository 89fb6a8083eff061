"""fix_pixels on a frame held as a Dask array equals the in-memory result."""

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty

from ccdpixfix import fix_pixels
from ccdpixfix.chunks import fix_pixels_dask

da = pytest.importorskip("dask.array")  # the dask extra


@pytest.fixture(scope="module")
def frame(camera):
    frame, _ = camera.science(fwhm=2.6, seed=17)
    data = frame.data.copy()
    # hits straddling the chunk borders (every 64 px): a track across a row
    # border, one across a column border, one on a chunk corner
    data[62:67, 100] += np.uint16(900)
    data[30, 125:132] += np.uint16(700)
    data[127:129, 127:129] += np.uint16(1500)
    return CCDData(data, unit=frame.unit, meta=frame.meta, wcs=frame.wcs)


def lazy(ccd, chunks=64):
    return CCDData(
        da.from_array(ccd.data, chunks=chunks),
        unit=ccd.unit,
        meta=ccd.meta,
        wcs=ccd.wcs,
        uncertainty=ccd.uncertainty,
    )


def test_chunked_equals_in_memory(frame, bpm):
    expected = fix_pixels(frame, bpm)
    result = fix_pixels(lazy(frame), bpm)
    assert isinstance(result.data, da.Array)
    assert np.array_equal(np.asarray(result.data), expected.data)
    assert np.array_equal(result.flags, expected.flags)
    assert np.array_equal(result.mask, expected.mask)
    assert np.array_equal(
        np.asarray(result.uncertainty.array), expected.uncertainty.array
    )
    hits = result.flags != 0
    assert hits[62:67, 100].all() and hits[30, 125:132].all()
    assert hits[127:129, 127:129].all()
    assert "fix_pixels_dask" in str(result.meta["HISTORY"])


def test_chunked_with_an_uncertainty_plane_and_odd_chunks(frame):
    sigma = np.sqrt(np.maximum(frame.data.astype(float) - 1000, 0) / 1.5 + 11.1)
    ccd = CCDData(
        frame.data.astype(np.float64),
        unit="adu",
        uncertainty=StdDevUncertainty(sigma),
        meta={"EXPTIME": 300.0},
    )
    expected = fix_pixels(ccd)
    result = fix_pixels_dask(lazy(ccd, chunks=(100, 77)))
    assert np.array_equal(np.asarray(result.data), expected.data)
    assert np.array_equal(result.flags, expected.flags)


def test_chunked_errors(frame, bpm):
    with pytest.raises(ValueError, match="does not match image shape"):
        fix_pixels_dask(lazy(CCDData(frame.data[:100], unit="adu")), bpm)
    with pytest.raises(ValueError, match="depth must be"):
        fix_pixels_dask(lazy(frame), depth=-1)
    with pytest.raises(TypeError, match="unknown options"):
        fix_pixels_dask(lazy(frame), thresold=4)
