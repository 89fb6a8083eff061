import ccdpixfix

project = "ccdpixfix"
author = "ccdpixfix developers"
release = ccdpixfix.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "astropy": ("https://docs.astropy.org/en/stable", None),
}
default_role = "obj"
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
