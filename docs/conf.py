"""Sphinx configuration of the ccdpixfix documentation.

Builds offline and nitpicky (every cross-reference must resolve):
``python -m sphinx -W --keep-going -b html docs docs/_build/html`` from the
repository root.
"""

import sys
from pathlib import Path

import ccdpixfix

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "ccdpixfix"
author = "ccdpixfix developers"
copyright = "ccdpixfix developers"
version = release = ccdpixfix.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "flagtable",  # docs/_ext/flagtable.py: the PixelFlag table, read from the code
    "ourrefs",  # docs/_ext/ourrefs.py: short names of our own objects resolve
    "matplotlib.sphinxext.plot_directive",  # figures made from the simulator
]
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 80)]

# API pages are generated into docs/api/ (git-ignored) on every build.
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
templates_path = ["_templates"]

# numpydoc: autosummary's class template lists the members, so numpydoc must
# not add a second (toctree) listing of its own.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

default_role = "obj"

# Every cross-reference must resolve (tests/test_docs.py builds with -W).
nitpicky = True
# No intersphinx: the build runs without network, and none of the installed
# packages ships an objects.inv to vendor. References to other projects'
# objects therefore cannot resolve; they are listed here and stay plain
# (monospaced) text. Our own names are never listed: a broken reference to a
# ccdpixfix object fails the build.
nitpick_ignore_regex = [
    # numpy.ndarray, numpy.random.Generator, ...
    (r"py:.*", r"numpy(\..*)?"),
    # astropy.nddata.CCDData (and its full path astropy.nddata.ccddata.CCDData),
    # astropy.io.fits.HDUList, astropy.nddata.bitmask, astropy.units.Quantity
    (r"py:.*", r"astropy(\..*)?"),
    # astropy's CCDData named short, as docstrings do: CCDData, CCDData.read
    (r"py:.*", r"CCDData(\..*)?"),
    # ccdproc.Keyword, ccdproc.ImageFileCollection, ccdproc.combine
    (r"py:.*", r"ccdproc(\..*)?"),
    # dask.array.Array, distributed.Client
    (r"py:.*", r"(dask|distributed)(\..*)?"),
    # matplotlib.figure.Figure, photutils, scipy.ndimage
    (r"py:.*", r"(matplotlib|photutils|scipy)(\..*)?"),
    # The standard library: enum.IntFlag, os.path.realpath, pathlib.Path, ...
    (r"py:.*", r"(enum|os|pathlib|concurrent|typing|collections|signal)(\..*)?"),
]

html_theme = "alabaster"
# alabaster's defaults (a 940 px page, an 800 px body) cut the benchmark
# tables (115 characters of verbatim output) and long signatures: a wider
# page, a body without its own cap, code a little smaller; the page still
# narrows to the screen below page_width. docs/_static/ccdpixfix.css makes
# what is still too wide scroll inside the page.
html_theme_options = {
    "page_width": "1280px",
    "sidebar_width": "230px",
    "body_max_width": "none",
    "code_font_size": "0.8em",
}
html_static_path = ["_static"]
html_css_files = ["ccdpixfix.css"]
html_title = f"ccdpixfix {release}"
exclude_patterns = ["_build", "_templates"]
