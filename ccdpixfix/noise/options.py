"""Options of the noise model that every step shares: gain and read noise."""

import dataclasses

from ..utils.ccd import check_positive
from ..utils.options import StepOptions, option

__all__ = ["NoiseOptions"]


@dataclasses.dataclass(frozen=True)
class NoiseOptions(StepOptions):
    """Gain and read noise overriding the header, used without an uncertainty plane.

    None (the default) reads them from the header (``EGAIN``/``GAIN``,
    ``RDNOISE``) or measures them on the frame.
    """

    owner = "the noise model"

    gain: float | None = option(
        None, "gain in e-/ADU, overriding the header (EGAIN, GAIN)"
    )
    read_noise: float | None = option(
        None, "read noise in e-, overriding the header (RDNOISE)"
    )

    def check(self):
        for name in ("gain", "read_noise"):
            if getattr(self, name) is not None:
                check_positive(**{name: getattr(self, name)})
