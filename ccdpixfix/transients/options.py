"""Options of `flag_transients`, as one validated object."""

import dataclasses
from collections.abc import Mapping

import numpy as np

from ..noise.options import NoiseOptions
from ..utils.ccd import check_positive
from ..utils.options import StepOptions, option, option_of
from .learned import DETECTORS, check_detector

__all__ = ["TransientOptions"]


# The most rings ``grow`` may add: the footprint growth already takes a
# hit's wings down to 3.5 sigma, and even the broadest charge diffusion
# (1-2 px) is spent within a few pixels. (A grow of 1000 once flagged and
# replaced 99.8 % of a frame without a word.)
MAX_GROW = 10


def check_grow(grow):
    """``grow`` must be a whole number of pixels, 0 to `MAX_GROW`."""
    whole = isinstance(grow, int | np.integer) and not isinstance(grow, bool)
    if not whole or grow < 0:
        raise ValueError(f"grow must be a whole number of pixels >= 0, got {grow!r}")
    if grow > MAX_GROW:
        raise ValueError(
            f"grow must be at most {MAX_GROW} pixels, got {grow}: a hit's charge "
            "does not spread that far, and each ring flags more good pixels"
        )


@dataclasses.dataclass(frozen=True)
class TransientOptions(StepOptions):
    """The options of `flag_transients` (their meaning is documented there).

    Its signature's defaults are these (``tests/test_options.py`` checks it).
    """

    owner = "flag_transients"

    threshold: float = option(
        5.0, "detection threshold in units of the pixel noise (sigma)"
    )
    neighbour_threshold: float = option(
        2.5, "threshold for the neighbours of a detected pixel (sigma)"
    )
    contrast: float = option(
        4.0,
        "how much sharper than a star a transient must be: its excess over its "
        "neighbours divided by theirs over the background (a centred star of "
        "FWHM 1.5 px reaches 3; raise it for undersampled frames)",
    )
    footprint_threshold: float | None = option(
        3.5, "level (sigma) above the background down to which a hit's wings join it"
    )
    grow: int = option(
        0, "rings of pixels added around every cosmic ray and hot pixel found"
    )
    saturation: float | None = option(
        None,
        "level at which a pixel is saturated (default: SATURATE in the "
        "header, else the largest value of an integer type)",
    )
    gain: float | None = option_of(NoiseOptions, "gain")
    read_noise: float | None = option_of(NoiseOptions, "read_noise")
    detector: str = option(
        "classical",
        "the engine that proposes hot seeds: "
        + ", ".join(DETECTORS)
        + " (the learned ones need their extra: pip install 'ccdpixfix[deepcr]')",
    )
    detector_options: Mapping | None = option(
        None,
        "for a learned engine: model, threshold (probability), device, tile, "
        "overlap, gain",
    )

    def check(self):
        check_positive(
            threshold=self.threshold,
            neighbour_threshold=self.neighbour_threshold,
            contrast=self.contrast,
        )
        for name in ("footprint_threshold", "saturation"):
            if getattr(self, name) is not None:
                check_positive(**{name: getattr(self, name)})
        NoiseOptions(gain=self.gain, read_noise=self.read_noise).check()
        check_grow(self.grow)
        check_detector(self.detector, self.detector_options)
