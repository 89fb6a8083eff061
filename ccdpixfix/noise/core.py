"""The noise model: how much a pixel may scatter around its local level.

The noise of a pixel comes, in this order of preference, from

1. the frame's uncertainty plane (trusted as given);
2. the GAIN (e-/ADU) and RDNOISE (e-) header keywords, with the bias level
   estimated from the data when the frame is raw, checked against the
   scatter measured in the frame so that a wrong keyword (some capture
   programs write the camera's gain *setting* into GAIN) cannot make every
   pixel look significant;
3. a robust fit of the measured scatter against the local level: a constant
   (read noise) plus a term that grows linearly with the signal (shot noise),
   from sigma-clipped statistics, never from the plain standard deviation,
   which a few defects inflate tenfold.
"""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.stats import sigma_clipped_stats
from astropy.utils.exceptions import AstropyUserWarning

from ..kernels.medians import RESIDUAL_FACTOR, local_level_rows
from ..kernels.residuals import level_noise, noise_at
from ..utils.ccd import uncertainty_sigma

__all__ = [
    "FrameNoise",
    "NoiseModel",
    "fit_noise",
    "fit_rows",
    "frame_noise",
    "header_gain",
    "header_read_noise",
    "residual_factor",
    "robust_sigma",
]


def residual_factor(n_pairs):
    """Standard deviation of ``pixel - local level`` in units of the pixel noise.

    Parameters
    ----------
    n_pairs : array of int
        Complete pairs of opposite neighbours behind each level (see
        `ccdpixfix.kernels.medians.local_level`).

    Returns
    -------
    `numpy.ndarray` of float32
        ``sqrt(1 + var(level) / sigma**2)``: 1.07 with all eight neighbours
        good, 1.22 with one pair left (on the image edge).
    """
    return RESIDUAL_FACTOR[np.asarray(n_pairs)]


_GAIN_KEYS = ("EGAIN", "GAIN", "CCDGAIN", "GAINE")
_READ_NOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "READNOISE", "RDNOISEE")
# Gains outside this range (e-/ADU) are not physical for an astronomical
# detector; such a keyword holds a gain setting, not a conversion factor.
_PLAUSIBLE_GAIN = (0.01, 50.0)
# An uncertainty plane may say the noise is smaller than the measured scatter
# by up to this factor (a plane from a model that misses some noise source);
# beyond it the plane is not trusted (a master bias's uncertainty carried
# over by ccdproc is several times too small).
_PLANE_TOLERANCE = 1.5
# The sky is the lowest 1/_SKY_PART of the level bins (a quarter): the bins
# least disturbed by the profiles of stars; the brightest quarter, mostly
# star profiles, stays out of the slope's fit.
_SKY_PART = 4
# Fewest level bins through which the slope of variance with level is
# fitted: two would fit any line exactly.
_FIT_BINS = 3
# Fewest pixels from which scatter is measured (or a header model checked).
_MIN_PIXELS = 25
# Most pixels of the rows on which the noise of a frame is fitted: 16 level
# bins of 30 000 pixels each give their scatter to 0.4 %.
_FIT_PIXELS = 500_000
# Pixels on which an uncertainty plane is checked: its ratio to the scatter
# to 0.5 %, against a tolerance of 50 % (more only cost time: 5 ms a frame
# at 50 000).
_CHECK_SAMPLES = 20_000
# Most pixels sampled for global statistics: enough for 0.3 % precision.
_MAX_SAMPLES = 250_000
# A header model is consistent when the bias pedestal it implies lies no
# further below the lowest level than 10 read-noise variances in ADU times
# the gain plus 100 read noises (a raw frame's pedestal), nor more than 3
# read noises above it (noise alone).
_PEDESTAL_BELOW_VARIANCES = 10
_PEDESTAL_BELOW_NOISES = 100
_PEDESTAL_ABOVE_NOISES = 3


def robust_sigma(values):
    """Standard deviation of the bulk of ``values``, immune to outliers.

    Iterative 4-sigma clipping about the median. Unlike the MAD it stays
    right on quantised data whose noise is near one ADU (where most values
    are equal and the MAD collapses to zero); unlike the plain standard
    deviation it ignores the hot pixels and cosmic rays.

    Parameters
    ----------
    values : array
        Any shape; non-finite values are ignored. Large inputs are
        subsampled on a regular stride.

    Returns
    -------
    float
        NaN if there are no finite values.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.noise import robust_sigma
    >>> rng = np.random.default_rng(1)
    >>> values = rng.normal(0, 2.0, 100_000)
    >>> values[:500] = 1e4  # defects
    >>> print(f"{robust_sigma(values):.1f}  {values.std():.0f}")
    2.0  705
    """
    values = np.asarray(values).ravel()
    # Subsampled before the conversion, which would copy a whole frame.
    if values.size > 2 * _MAX_SAMPLES:
        values = values[:: values.size // (2 * _MAX_SAMPLES)]
    values = values.astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    if values.size > _MAX_SAMPLES:
        values = values[:: values.size // _MAX_SAMPLES]
    _, _, std = sigma_clipped_stats(
        values, sigma=4.0, maxiters=20, cenfunc="median", stdfunc="std"
    )
    return float(std)


def header_gain(header):
    """Gain (e-/ADU) from the header if present and physical, else None."""
    low, high = _PLAUSIBLE_GAIN
    for key in _GAIN_KEYS:
        value = _header_float(header, key)
        if value is not None and low <= value <= high:
            return value
    return None


def _header_float(header, key):
    try:
        value = float(header[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def header_read_noise(header):
    """Read noise (e-) from the header (RDNOISE, READNOIS, ...), else None."""
    for key in _READ_NOISE_KEYS:
        value = _header_float(header, key)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class NoiseModel:
    """Noise of a pixel as a function of its local level (ADU or data unit).

    ``sigma(level) = sqrt(floor_variance + max(level - offset, 0) * slope)``

    Attributes
    ----------
    source : str
        ``"uncertainty"``, ``"header"`` or ``"measured"``.
    floor_variance : float
        Variance at zero signal (read noise squared, in data units).
    slope : float
        Variance added per unit of signal (1 / gain for data in ADU).
    offset : float
        Level of zero signal (the bias pedestal of raw data).
    """

    source: str
    floor_variance: float
    slope: float = 0.0
    offset: float = 0.0

    def sigma(self, level):
        """Noise of pixels whose local level is ``level``."""
        signal = np.clip(np.asarray(level, dtype=np.float64) - self.offset, 0, None)
        signal = np.nan_to_num(signal, nan=0.0)
        return np.sqrt(self.floor_variance + self.slope * signal).astype(np.float32)

    @classmethod
    def measure(cls, data, level, good, factor=1.0):
        """Fit the scatter of ``data - level`` against ``level``.

        The pixels are sorted by level into bins; in each bin the robust
        scatter gives a variance; a straight line through those variances
        (slope forced non-negative) is the model. Bins dominated by the
        profiles of stars have inflated scatter, which errs on the safe side.
        """
        centres, variances = _binned_variance(data, level, good, factor)
        # The sky: the lowest quarter of the levels, least disturbed by stars.
        lowest = slice(0, max(1, centres.size // _SKY_PART))
        floor = float(np.nanmedian(variances[lowest]))
        if not np.isfinite(floor) or floor <= 0:
            raise ValueError(
                "the frame has no measurable noise: its pixels do not scatter "
                "about their neighbours (a constant or synthetic image?), so no "
                "pixel can be told from noise; with real noise, give it an "
                "uncertainty plane"
            )
        slope = 0.0
        # The brightest quarter of the levels is mostly star profiles, whose
        # scatter is structure, not noise: it stays out of the fit.
        fitted = slice(0, max(_FIT_BINS, (3 * centres.size) // _SKY_PART))
        if centres.size >= _FIT_BINS and np.ptp(centres[fitted]) > 0:
            slope = np.polyfit(centres[fitted], variances[fitted], 1)[0]
            slope = max(float(slope), 0.0)
        offset = float(np.nanmedian(centres[lowest]))
        return cls("measured", floor, slope, offset)

    @classmethod
    def from_header(
        cls,
        header,
        unit,
        data,
        level,
        good,
        *,
        factor=1.0,
        gain=None,
        read_noise=None,
    ):
        """Model from GAIN and RDNOISE, or None if they are absent or wrong.

        Data in electrons use gain 1. In bins of local level, the measured
        scatter gives the zero-signal level (bias pedestal) at which the
        model matches it; their median is the pedestal (about 0 for
        calibrated data). A pedestal above the data, or far below it, means
        the keywords are wrong: a warning says so and None is returned. A
        ``gain`` and ``read_noise`` given by the caller are used as they are.
        """
        # Values given by the caller are trusted; header keywords are checked.
        explicit = gain is not None and read_noise is not None
        gain = header_gain(header) if gain is None else float(gain)
        read_noise = header_read_noise(header) if read_noise is None else read_noise
        if gain is None or read_noise is None:
            return None
        if unit is not None and u.Unit(unit) == u.electron:
            gain = 1.0
        floor = (read_noise / gain) ** 2
        try:
            centres, variances = _binned_variance(data, level, good, factor)
        except ValueError:
            # Too few pixels with good neighbours to check the keywords:
            # trust them, and take the faintest level as the zero of the
            # signal.
            levels = np.asarray(level)[good]
            levels = levels[np.isfinite(levels)]
            offset = float(np.min(levels)) if levels.size else 0.0
            return cls("header", floor, 1.0 / gain, offset)
        # Each bin tells the zero-signal level at which the header's model
        # matches its scatter: the bias pedestal of raw data, ~0 for
        # calibrated data. A wrong gain or read noise puts it far off.
        # The lowest levels (the sky) are the least disturbed by the
        # profiles of stars, which inflate the scatter of the brighter bins.
        pedestals = centres - gain * (variances - floor)
        offset = float(np.nanmedian(pedestals[: max(1, pedestals.size // _SKY_PART)]))
        lowest = float(np.nanmin(centres))
        margin = gain * _PEDESTAL_BELOW_VARIANCES * floor + (
            _PEDESTAL_BELOW_NOISES * np.sqrt(floor)
        )
        above = _PEDESTAL_ABOVE_NOISES * np.sqrt(floor)
        consistent = lowest - margin <= offset <= lowest + above
        if explicit and not consistent:
            offset = lowest
        offset = min(offset, lowest)
        if not consistent and not explicit:
            warnings.warn(
                f"GAIN={gain:g} e-/ADU and RDNOISE={read_noise:g} e- do not match "
                f"the measured noise ({np.sqrt(np.nanmin(variances)):.3g} at level "
                f"{np.nanmin(centres):.6g}); using the measured noise instead",
                AstropyUserWarning,
                stacklevel=4,
            )
            return None
        return cls("header", floor, 1.0 / gain, offset)


def _binned_variance(data, level, good, factor):
    """Pixel variance against local level, in up to 16 bins of equal counts.

    ``factor`` (scalar or per pixel) is the residual noise in units of the
    pixel noise, `residual_factor`.
    """
    # Sorting by a pixel's own level would select on the noise of that level
    # and hide it from the residuals; the level three columns away shares no
    # pixel with it and follows the same smooth signal.
    shifted = np.roll(np.asarray(level, np.float64), 3, axis=1)
    good = good & np.isfinite(shifted)
    residual = ((np.asarray(data, np.float64) - level) / factor)[good]
    levels = shifted[good]
    if residual.size < _MIN_PIXELS:
        raise ValueError(
            f"only {residual.size} pixels with good neighbours: too few to measure "
            "the noise; give the frame an uncertainty plane or GAIN and RDNOISE"
        )
    if residual.size > _MAX_SAMPLES * 4:
        step = residual.size // (_MAX_SAMPLES * 4)
        residual, levels = residual[::step], levels[::step]
    order = np.argsort(levels, kind="stable")
    n_bins = int(np.clip(residual.size // 2000, 1, 16))
    bins = np.array_split(order, n_bins)
    centres = np.array([np.median(levels[b]) for b in bins])
    variances = np.array([robust_sigma(residual[b]) ** 2 for b in bins])
    return centres, variances


def fit_rows(shape):
    """Rows on which the noise of a frame is fitted.

    Every row of frames up to 2 megapixels, every k-th row of larger ones:
    plenty for the fit, and the same rows whether the frame is in memory or
    split in chunks (`fix_pixels_dask`), so both give the same model.
    """
    ny, nx = shape
    step = max(1, -(-ny * nx // _FIT_PIXELS))
    return np.arange(0, ny, step)


def fit_noise(
    meta,
    unit,
    data,
    level,
    known,
    *,
    n_pairs=None,
    plane=None,
    gain=None,
    read_noise=None,
):
    """The noise model of a frame from some of its rows.

    Parameters
    ----------
    meta : dict-like
        The header (GAIN, RDNOISE).
    unit : `~astropy.units.Unit`
        The data's unit.
    data, level, known : 2-D arrays
        Data, local level and known-bad pixels of the rows to fit on.
    n_pairs : 2-D int array, optional
        Pairs behind each level.
    plane : 2-D float array, optional
        The uncertainty plane (standard deviations).
    gain, read_noise : float, optional
        Override the header's GAIN and RDNOISE.

    Returns
    -------
    NoiseModel or None
        None when the uncertainty plane is to be used as it is.
    """
    good = ~known & np.isfinite(level) & np.isfinite(data)
    factor = residual_factor(4 if n_pairs is None else n_pairs)
    if plane is not None:
        check = check_rows(np.shape(data))
        factor_check = factor[check] if np.ndim(factor) == 2 else factor
        if _plane_checked(
            data[check], level[check], good[check], factor_check, plane[check]
        ):
            return None
    model = NoiseModel.from_header(
        meta, unit, data, level, good, factor=factor, gain=gain, read_noise=read_noise
    )
    if model is None:
        model = NoiseModel.measure(data, level, good, factor)
    return model


class FrameNoise(Mapping):
    """How the noise of a frame is known: its uncertainty plane or a model.

    Made by `frame_noise`. ``at(rows, cols)`` gives the noise at pixels,
    ``everywhere()`` a plane of it; ``model`` is the `NoiseModel` used (None
    where the uncertainty plane is). As a mapping it holds one item,
    ``"plane"`` or ``"model"`` (the model as ``(floor_variance, slope,
    offset)``): the keyword arguments of
    `ccdpixfix.kernels.residuals.residual_outliers` and
    `ccdpixfix.kernels.residuals.noise_at`.

    Parameters
    ----------
    data : 2-D array
        The frame's data.
    known : 2-D bool array
        Pixels known to be bad, left out of the local levels.
    plane : 2-D array, optional
        The noise of each pixel (an uncertainty plane as standard deviations).
    model : NoiseModel, optional
        The model, where there is no trusted plane.
    """

    def __init__(self, data, known, *, plane=None, model=None):
        self.data, self.known = data, known
        self.plane, self.model = plane, model
        if model is None:
            self._keywords = {"plane": plane}
        else:
            self._keywords = {
                "model": (model.floor_variance, model.slope, model.offset)
            }

    def at(self, rows, cols, known=None):
        """The noise at the pixels ``(rows, cols)`` (float32).

        ``known``, pixels known to be bad, left out of the local levels the
        model is read at: by default those the frame had when it was made.
        """
        known = self.known if known is None else known
        return noise_at(self.data, known, rows, cols, **self._keywords)

    def everywhere(self):
        """The noise of every pixel: the plane, or the model at each level."""
        if self.model is None:
            return self.plane
        return level_noise(self.data, self.known, self._keywords["model"])

    def __getitem__(self, key):
        return self._keywords[key]

    def __iter__(self):
        return iter(self._keywords)

    def __len__(self):
        return len(self._keywords)


def frame_noise(
    ccd,
    data,
    known,
    *,
    gain=None,
    read_noise=None,
    model="fit",
):
    """How the noise of a frame is known: its uncertainty plane or a model.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The frame, for its uncertainty plane, header and unit.
    data : 2-D array
        Its data.
    known : 2-D bool array
        Pixels already known to be bad, left out of every estimate.
    gain, read_noise : float, optional
        Override the header's GAIN (e-/ADU) and RDNOISE (e-).
    model : NoiseModel, None or "fit", optional
        A model already fitted (None: use the uncertainty plane); by default
        it is fitted on `fit_rows` of this frame.

    Returns
    -------
    ``FrameNoise``
        The plane or the model, with ``at(rows, cols)``.
    """
    plane = uncertainty_sigma(ccd, native=True)
    if isinstance(model, str):
        model = _fit_on_rows(ccd, data, known, plane, gain, read_noise)
    if model is None:
        return FrameNoise(data, known, plane=plane)
    return FrameNoise(data, known, model=model)


def check_rows(shape):
    """Rows, out of `fit_rows`, on which an uncertainty plane is checked.

    Parameters
    ----------
    shape : tuple
        Shape of the rows fitted (as many as `fit_rows` gave, full width).

    Returns
    -------
    slice
    """
    n_rows, nx = shape
    return slice(None, None, max(1, (n_rows * nx) // _CHECK_SAMPLES))


def _fit_on_rows(ccd, data, known, plane, gain, read_noise):
    """`fit_noise` on the `fit_rows` of a frame.

    A plane is checked first on a few of the rows; the levels of them all
    are needed only where it fails or there is none.
    """
    rows = fit_rows(np.shape(data))
    if plane is not None:
        sample = rows[check_rows((rows.size, np.shape(data)[1]))]
        level, n_pairs = local_level_rows(data, sample, known)
        values = np.asarray(data[sample], dtype=np.float64)
        level = level.astype(np.float64)
        good = ~np.asarray(known[sample]) & np.isfinite(level) & np.isfinite(values)
        factor = residual_factor(n_pairs)
        if _plane_checked(values, level, good, factor, plane[sample]):
            return None
    level, n_pairs = local_level_rows(data, rows, known)
    return fit_noise(
        ccd.meta,
        ccd.unit,
        np.asarray(data[rows], dtype=np.float64),
        level.astype(np.float64),
        np.asarray(known[rows]),
        n_pairs=n_pairs,
        gain=gain,
        read_noise=read_noise,
    )


def _plane_checked(data, level, good, factor, sigma):
    """Whether an uncertainty plane does not underestimate the data's scatter.

    An uncertainty that ccdproc carried over from a master bias alone, say,
    is far smaller than the noise of a light frame and would make every
    pixel look significant. The plane is kept unless the residuals scatter
    more than 1.5 times what it says; then a warning says so.
    """
    usable = good & np.isfinite(sigma) & (sigma > 0)
    if np.count_nonzero(usable) < _MIN_PIXELS:
        return True
    factor = np.broadcast_to(factor, np.shape(data))
    residual = (np.asarray(data, np.float64) - level) / factor
    ratio = robust_sigma(residual[usable] / sigma[usable])
    if not np.isfinite(ratio) or ratio <= _PLANE_TOLERANCE:
        return True
    warnings.warn(
        f"the uncertainty plane is {ratio:.3g} times smaller than the scatter of "
        "the data (was it carried over from a master bias alone?); using the "
        "noise model from the header or the data instead, also in the output",
        AstropyUserWarning,
        stacklevel=4,
    )
    return False
