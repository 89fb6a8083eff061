"""Collection rules for the whole repository (tests/conftest.py holds fixtures).

The old module paths kept as aliases (``ccdpixfix/batch.py`` and the like)
replace themselves in ``sys.modules`` with the module they name; their
doctests run there, so the doctest collector skips the alias files.
"""

from pathlib import Path

_ALIASES = (
    "batch",
    "cfa",
    "chunks",
    "demo",
    "images",
    "medians",
    "night",
    "plotting",
    "residuals",
    "rgb",
    "scoring",
    "stacks",
)

collect_ignore = [str(Path("ccdpixfix", f"{name}.py")) for name in _ALIASES]
