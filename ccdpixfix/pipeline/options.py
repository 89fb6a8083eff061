"""Options of `fix_pixels`, as one validated object for every path.

The frame in memory, by colour or by plane (``ccdpixfix.pipeline.core``), the
Dask frame chunk by chunk (`ccdpixfix.pipeline.chunks`), batches of files
(`ccdpixfix.pipeline.batch`) and the command line all take their defaults
and their checks from `FixOptions`; the options of the steps it runs come
from `TransientOptions` and `ReplaceOptions`.
"""

import dataclasses
from collections.abc import Mapping

from ..badpixels import check_raw
from ..replace import ReplaceOptions
from ..transients import TransientOptions
from ..utils.options import StepOptions, option, option_of

__all__ = ["FixOptions"]


@dataclasses.dataclass(frozen=True)
class FixOptions(StepOptions):
    """The options of `fix_pixels` (their meaning is documented there)."""

    owner = "fix_pixels"

    transients: bool = option(
        True, "look for cosmic rays and one-exposure hot or cold pixels"
    )
    replace: bool = option(
        True, "replace the flagged pixels with estimates from good neighbours"
    )
    threshold: float = option_of(TransientOptions, "threshold")
    neighbour_threshold: float = option_of(TransientOptions, "neighbour_threshold")
    contrast: float = option_of(TransientOptions, "contrast")
    footprint_threshold: float | None = option_of(
        TransientOptions, "footprint_threshold"
    )
    grow: int = option_of(TransientOptions, "grow")
    method: str = option_of(ReplaceOptions, "method")
    flags_to_replace: int = option_of(ReplaceOptions, "flags_to_replace")
    max_radius: int = option_of(ReplaceOptions, "max_radius")
    warm_is_bad: bool = option(
        False,
        "mask and replace the map's WARM pixels too (for frames that are not "
        "dark-subtracted)",
    )
    saturation: float | None = option_of(TransientOptions, "saturation")
    gain: float | None = option_of(TransientOptions, "gain")
    read_noise: float | None = option_of(TransientOptions, "read_noise")
    detector: str = option_of(TransientOptions, "detector")
    detector_options: Mapping | None = option_of(TransientOptions, "detector_options")
    raw: bool | None = option(
        None,
        "whether the frames are raw (True), calibrated (False) or to be "
        "judged from each frame's header and data type (None)",
    )

    def check(self):
        """Every option checked, whether or not the step that uses it runs:
        a bad value is a mistake even where it would be ignored."""
        self.transient_options().check()
        self.replace_options().check()
        check_raw(self.raw)

    def transient_options(self):
        """The `TransientOptions` of the transient search."""
        return _part(TransientOptions, self)

    def replace_options(self):
        """The `ReplaceOptions` of the replacement."""
        return _part(ReplaceOptions, self)


def _part(options, fix_options):
    return options(**{name: getattr(fix_options, name) for name in options.names()})
