"""Sphinx configuration of the ccdpixfix documentation.

Builds offline (no intersphinx): ``python -m sphinx -W --keep-going -b html
docs docs/_build/html`` from the repository root.
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

# No network here: cross-references to numpy/astropy stay plain text.
intersphinx_mapping = {}
default_role = "obj"
nitpicky = False

html_theme = "alabaster"
html_title = f"ccdpixfix {release}"
exclude_patterns = ["_build", "_templates"]
