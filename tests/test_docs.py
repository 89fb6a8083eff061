"""The documentation builds without warnings and its examples run."""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.nddata import CCDData

from ccdpixfix import make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera

DOCS = Path(__file__).parent.parent / "docs"


def code_blocks(page):
    """The ``.. code-block:: python`` examples of a page, dedented."""
    text = (DOCS / page).read_text()
    blocks = []
    for match in re.finditer(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text):
        lines = [line[4:] for line in match.group(1).splitlines()]
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


def test_sphinx_build_has_no_warnings(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "html" / "how_it_works.html").exists()
    images = list((tmp_path / "html" / "_images").glob("how_it_works-*.png"))
    assert len(images) >= 2


def test_user_guide_examples_run(tmp_path, monkeypatch):
    """The reduction and photometry examples, on simulated files named as in
    the guide."""
    monkeypatch.chdir(tmp_path)
    camera = SimulatedCamera((256, 256), seed=8)
    darks = [camera.dark(300.0, seed=s) for s in range(4)]
    flats = [camera.flat(seed=10 + s) for s in range(3)]
    make_bad_pixel_map(darks, flats).write("bpm.fits")
    bias = CCDData(np.full(camera.shape, float(camera.bias)), unit="adu")
    bias.write("master_bias.fits")
    dark = np.median([d.data.astype(float) for d in darks], axis=0) - camera.bias
    CCDData(dark, unit="adu", meta={"EXPTIME": 300.0}).write("master_dark.fits")
    flat = np.median([f.data.astype(float) for f in flats], axis=0) - camera.bias
    CCDData(flat, unit="adu").write("master_flat.fits")
    for index in (1, 2, 3):
        camera.science(seed=30 + index)[0].write(f"light{index}.fits")
    reduction, photometry = code_blocks("user_guide.rst")[:2]
    namespace = {}
    with warnings.catch_warnings():
        # ccdproc warns about the all-masked pixels of the stack, as the guide says
        warnings.simplefilter("ignore", RuntimeWarning)
        exec(compile(reduction, "user_guide reduction", "exec"), namespace)
    assert namespace["stack"].shape == camera.shape
    namespace["fixed"] = namespace["fixed_frames"][0]
    exec(compile(photometry, "user_guide photometry", "exec"), namespace)
    assert len(namespace["phot"]) > 0
