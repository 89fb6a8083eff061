"""The engines ``--engines`` of bench_quality.py and bench_real.py knows."""

#: name: (learned engine or None, with ccdpixfix's confirmation).
ENGINES = {
    "classical": (None, True),
    "deepcr": ("deepcr", False),
    "deepcr+ccdpixfix": ("deepcr", True),
    "cosmic-conn": ("cosmic-conn", False),
    "cosmic-conn+ccdpixfix": ("cosmic-conn", True),
}
