"""Options of `replace_bad_pixels`, as one validated object."""

import dataclasses

from ..flags import BAD_PIXEL_FLAGS, PixelFlag
from ..noise.options import NoiseOptions
from ..utils.options import StepOptions, option, option_of

__all__ = ["DEFAULT_REPLACE_FLAGS", "METHODS", "ReplaceOptions"]

#: Flags replaced by default: every "do not use" kind except ``SATURATED``.
#: A saturated pixel holds real light beyond the full well; a neighbour
#: estimate would only fake a lower, flat-topped star. It stays masked.
DEFAULT_REPLACE_FLAGS = PixelFlag(int(BAD_PIXEL_FLAGS) & ~int(PixelFlag.SATURATED))

#: How the good pixels of a window combine into an estimate.
METHODS = ("median", "mean")


@dataclasses.dataclass(frozen=True)
class ReplaceOptions(StepOptions):
    """The options of `replace_bad_pixels` (their meaning is documented there)."""

    owner = "replace_bad_pixels"

    method: str = option(
        "median", "estimate of a replaced pixel from its good neighbours"
    )
    flags_to_replace: int = option(
        DEFAULT_REPLACE_FLAGS, "PixelFlag bits whose pixels are replaced"
    )
    # 15 fills clusters up to ~30 px across; beyond, a pixel keeps its value.
    max_radius: int = option(
        15, "largest half-width (pixels) of the window searched for good pixels"
    )
    gain: float | None = option_of(NoiseOptions, "gain")
    read_noise: float | None = option_of(NoiseOptions, "read_noise")

    def check(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if int(self.max_radius) < 1:
            raise ValueError(f"max_radius must be at least 1, got {self.max_radius!r}")
        NoiseOptions(gain=self.gain, read_noise=self.read_noise).check()
