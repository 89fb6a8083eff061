"""ccdpixfix steps in a ccdproc chain: one trail of keywords (issue 17)."""

import ccdproc
import numpy as np
import pytest
from astropy.nddata import CCDData

from ccdpixfix import fix_pixels, flag_transients, replace_bad_pixels
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.utils.provenance import join_history


@pytest.fixture(scope="module")
def raw():
    camera = SimulatedCamera((96, 96), seed=61)
    frame, _ = camera.science(seed=1)
    bias = CCDData(np.full(frame.shape, float(np.median(frame.data))), unit="adu")
    flat = CCDData(np.ones(frame.shape), unit="adu")
    return frame, bias, flat


def test_a_chain_names_every_step_with_its_keyword(raw):
    frame, bias, flat = raw
    ccd = ccdproc.subtract_bias(
        CCDData(frame.data.astype(float), unit="adu", meta=frame.meta), bias
    )
    ccd = fix_pixels(ccd)
    ccd = ccdproc.flat_correct(ccd, flat)
    header = ccd.meta
    # ccdproc's own steps and ours read the same way
    assert header["HIERARCH SUBTRACT_BIAS"] == "subbias"
    assert header["HIERARCH FIX_PIXELS"] == "fixpix"
    assert header["HIERARCH FLAT_CORRECT"] == "flatcor"
    assert "threshold=5" in header["fixpix"] and "n_replaced=" in header["fixpix"]
    assert any("fix_pixels(" in line for line in join_history(header["HISTORY"]))
    # the written file keeps the trail
    assert ccd.to_hdu()[0].header["FIXPIX"] == header["fixpix"]


def test_add_keyword_takes_what_ccdproc_takes(raw):
    frame = raw[0]
    quiet = flag_transients(frame, add_keyword=False)
    assert "flagcr" not in quiet.meta and "FLAG_TRANSIENTS" not in quiet.meta
    assert any("flag_transients(" in str(line) for line in quiet.meta["HISTORY"])
    named = replace_bad_pixels(quiet, add_keyword="REPAIRED")
    assert "REPAIRED" in named.meta and "replbad" not in named.meta
    keyword = ccdproc.Keyword("CRFIXED", value="yes")
    assert fix_pixels(frame, add_keyword=keyword).meta["CRFIXED"] == "yes"
    many = fix_pixels(frame, add_keyword={"STEP1": "ccdpixfix", "STEP2": 2})
    assert many.meta["STEP1"] == "ccdpixfix" and many.meta["STEP2"] == 2
    with pytest.raises(TypeError, match="add_keyword must be True, False"):
        fix_pixels(frame, add_keyword=3.5)
    assert frame.meta.get("fixpix") is None  # the input is untouched
