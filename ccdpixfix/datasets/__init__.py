"""A simulated camera night with known truth, and scores against that truth.

`SimulatedCamera` and `make_night` make seeded frames (``_simulate_*`` draw
the sky, the defects and the cosmic rays); `ccdpixfix.datasets.scoring`
scores a result against the truth and `ccdpixfix.datasets.demo` runs both.
"""

from .core import ADC_MAXIMUM as ADC_MAXIMUM
from .core import (
    DEFECT_KEYS,
    Night,
    SimulatedCamera,
    make_night,
    vignetting,
)
from .core import MOFFAT_BETA as MOFFAT_BETA
from .core import PIXEL_SCALE_ARCSEC as PIXEL_SCALE_ARCSEC

__all__ = ["DEFECT_KEYS", "Night", "SimulatedCamera", "make_night", "vignetting"]
