"""The documentation builds without warnings, documents every public name and
its examples run."""

import importlib
import pkgutil
import re
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import CCDData

import ccdpixfix
from ccdpixfix import make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera

DOCS = Path(__file__).parent.parent / "docs"
pytestmark = pytest.mark.docs


def code_blocks(page):
    """The ``.. code-block:: python`` examples of a page, dedented."""
    lines = (DOCS / page).read_text().splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = re.match(r"( *)\.\. code-block:: python$", line)
        if not match:
            continue
        indent = len(match.group(1))
        body = []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """The HTML documentation, built once for the tests of this module with
    warnings as errors and every cross-reference checked (-W -n)."""
    html = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-n",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(html),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, html


def inventory_names(html):
    """The Python objects the build documents, from its objects.inv."""
    with open(html / "objects.inv", "rb") as stream:
        for _ in range(4):
            stream.readline()
        text = zlib.decompress(stream.read()).decode()
    names = set()
    for line in text.splitlines():
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            names.add(name)
    return names


_MISSING = object()


def resolve(dotted):
    """The object a dotted name points to: the longest prefix that imports as
    a module, then attributes; ``_MISSING`` when it does not resolve."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def documented_objects(names):
    """The documented objects by attribute name: for each ``ccdpixfix.``
    name of the inventory that resolves, its last part and the object."""
    objects = {}
    for name in names:
        if not name.startswith("ccdpixfix."):
            continue
        obj = resolve(name)
        if obj is not _MISSING:
            objects.setdefault(name.rsplit(".", 1)[-1], []).append(obj)
    return objects


def test_sphinx_build_has_no_warnings(built_docs):
    result, html = built_docs
    assert result.returncode == 0, result.stderr[-3000:]
    assert (html / "how_it_works.html").exists()
    images = list((html / "_images").glob("how_it_works-*.png"))
    assert len(images) >= 2


def test_every_exported_name_is_in_the_reference(built_docs):
    """Every name of ccdpixfix.__all__, of the __all__ of every public module
    and subpackage of the package, and of the __all__ of every public
    submodule of a subpackage is documented: the same object, under the same
    name, is in the built inventory under any module path (a subpackage's
    re-export counts as documented where its defining module, or the top
    level, documents it). Every public module and subpackage has its module
    documented under its real name (``module.__name__``: an old module path
    kept as an alias needs its new module documented)."""
    result, html = built_docs
    assert result.returncode == 0, result.stderr[-3000:]
    documented = inventory_names(html)
    objects = documented_objects(documented)

    def missing_of(module):
        return [
            f"{module.__name__}.{name}"
            for name in getattr(module, "__all__", ())
            if not any(obj is getattr(module, name) for obj in objects.get(name, ()))
        ]

    missing = missing_of(ccdpixfix)
    no_page = []
    for module_info in pkgutil.iter_modules(ccdpixfix.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ccdpixfix.{module_info.name}")
        if module.__name__ not in documented:
            no_page.append(module.__name__)
        missing += missing_of(module)
        if not module_info.ispkg:
            continue
        for submodule_info in pkgutil.iter_modules(module.__path__):
            if submodule_info.name.startswith("_"):
                continue
            submodule = importlib.import_module(
                f"{module.__name__}.{submodule_info.name}"
            )
            missing += missing_of(submodule)
    assert not no_page, f"modules not in the API reference: {no_page}"
    missing = sorted(set(missing))
    assert not missing, f"not in the API reference: {missing}"


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


def test_other_examples_run(tmp_path, monkeypatch):
    """Getting started, the steps one by one, flags by name, FITS output, a
    Dask array (the cluster example needs a scheduler: tests/test_cluster.py
    runs the same calls)."""
    monkeypatch.chdir(tmp_path)
    camera = SimulatedCamera((128, 128), seed=9)
    for index in (1, 2, 3):
        camera.dark(300.0, seed=index).write(f"dark{index}.fits")
        camera.flat(seed=10 + index).write(f"flat{index}.fits")
    frame, _ = camera.science(seed=20)
    frame.write("light.fits")
    namespace = {}
    for block in code_blocks("getting_started.rst"):
        exec(compile(block, "getting_started", "exec"), namespace)
    assert namespace["hot_or_dead"].any() and namespace["cosmic_rays"].any()
    # flags.rst writes the same file as getting started, then reads it back
    read_back = code_blocks("flags.rst")[1]
    exec(
        compile("from astropy.nddata import CCDData\n" + read_back, "flags", "exec"),
        namespace,
    )
    assert namespace["fixed"].flags is not None
    steps, _, chunked = code_blocks("user_guide.rst")[2:5]
    namespace.update(frame=frame)
    exec(compile(steps, "user_guide steps", "exec"), namespace)
    namespace.update(big_array=np.asarray(frame.data), header=frame.meta)
    exec(compile(chunked, "user_guide dask", "exec"), namespace)
    assert namespace["repaired"].shape == (128, 128)
