"""Options of `make_bad_pixel_map`, as one validated object."""

import dataclasses

from ..noise.options import NoiseOptions
from ..utils.ccd import check_positive
from ..utils.options import StepOptions, option

__all__ = ["MapOptions"]


@dataclasses.dataclass(frozen=True)
class MapOptions(StepOptions):
    """The options of `make_bad_pixel_map` (their meaning is documented there)."""

    owner = "make_bad_pixel_map"

    threshold: float = option(
        5.0, "detection threshold, in sigma of the darks' and flats' noise"
    )
    hot_rate: float = option(
        0.5,
        "dark current (e-/s above the typical pixel) from which a pixel is HOT",
    )
    warm_rate: float = option(
        0.05, "dark current (e-/s above the typical pixel) from which a pixel is WARM"
    )
    dead_response: float = option(0.2, "response below which a pixel is DEAD")
    low_response: float = option(0.9, "response below which a pixel is LOW_RESPONSE")
    high_response: float = option(1.1, "response above which a pixel is HIGH_RESPONSE")
    column_threshold: float = option(
        5.0, "threshold (sigma) for hot and bad columns and column segments"
    )
    gain: float | None = option(
        None, "gain in e-/ADU, overriding the GAIN keyword of the darks"
    )

    def build_keywords(self):
        """The options as the map builder takes them (``build_map``: its
        thresholds keep the names the map's META records, ``significance``
        and ``column_significance``)."""
        keywords = self.as_dict()
        keywords["significance"] = keywords.pop("threshold")
        keywords["column_significance"] = keywords.pop("column_threshold")
        return keywords

    def check(self):
        check_positive(
            threshold=self.threshold,
            hot_rate=self.hot_rate,
            warm_rate=self.warm_rate,
            column_threshold=self.column_threshold,
        )
        NoiseOptions(gain=self.gain).check()
        for name in ("dead_response", "low_response"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(
                    f"{name} must be a fraction between 0 and 1, got {value!r}"
                )
        if not self.high_response > 1:
            raise ValueError(
                f"high_response must be above 1, got {self.high_response!r}"
            )
