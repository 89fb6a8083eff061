"""A seeded simulated CCD camera whose every pixel defect is known.

Frames behave like raw data from a real camera: unsigned 16-bit integers on a
bias pedestal, Poisson noise on every electron, Gaussian read noise, division
by the gain, rounding to integers and saturation.  Persistent defects (hot,
warm, dead, low-response and stuck pixels, a bad column) and one-exposure
artefacts (cosmic rays, transient hot and cold pixels) are all recorded, so
bad-pixel finders and repairers can be scored exactly.
"""

import dataclasses
import datetime
import math

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage

__all__ = ["DEFECT_KEYS", "Night", "SimulatedCamera", "make_night", "vignetting"]

#: Keys of the persistent defect masks in ``SimulatedCamera.truth``.
DEFECT_KEYS = ("hot", "warm", "dead", "low_response", "stuck", "bad_column")
MOFFAT_BETA = 3.0
PIXEL_SCALE_ARCSEC = 0.5
ADC_MAXIMUM = 65535
# The kind enters the seed sequence so dark(seed=1) and flat(seed=1) differ.
_KIND_CODES = {"dark": 1, "flat": 2, "science": 3, "auto": 99}
_IMAGE_TYPES = {"dark": "Dark Frame", "flat": "Flat Field", "science": "Light Frame"}
_NIGHT_START = {
    "flat": datetime.datetime(2024, 3, 15, 18, 30),
    "science": datetime.datetime(2024, 3, 15, 20, 0),
    "dark": datetime.datetime(2024, 3, 16, 5, 0),
}
_MJD_ZERO = datetime.datetime(1858, 11, 17)
_FIELD_CENTRE_DEG = (83.8221, -5.3911)


def vignetting(shape: tuple[int, int], *, corner_level: float = 0.7) -> np.ndarray:
    """Return a smooth cos^4 illumination pattern, 1 at the frame centre.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the frame.
    corner_level : float, optional
        Relative illumination at the frame corners.

    Returns
    -------
    numpy.ndarray
        Float64 array of ``shape``.

    Examples
    --------
    >>> round(float(vignetting((64, 64))[0, 0]), 3)
    0.7
    """
    ny, nx = _validate_shape(shape)
    rows = np.arange(ny)[:, None] - (ny - 1) / 2
    cols = np.arange(nx)[None, :] - (nx - 1) / 2
    # cos^4(theta) = (1 + tan^2 theta)^-2; the focal length puts the corner
    # exactly on corner_level.
    focal = math.hypot((ny - 1) / 2, (nx - 1) / 2) / math.tan(
        math.acos(corner_level**0.25)
    )
    return (1.0 + (rows**2 + cols**2) / focal**2) ** -2


class SimulatedCamera:
    """A seeded CCD camera with persistent defects and complete truth.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(ny, nx)`` of every frame.
    seed : int, optional
        Seed of the persistent properties (defects, response, dark map).
    gain, read_noise, bias : float, optional
        Electrons per ADU, read noise in electrons, bias pedestal in ADU.
    dark_current : float, optional
        Typical dark current in e-/s per pixel.
    saturation_adu : int, optional
        Highest value the ADC writes.
    full_well : float, optional
        Electrons above which a pixel reads ``saturation_adu``.
    hot_fraction, warm_fraction, dead_fraction : float, optional
        Fractions of pixels with each persistent defect.
    low_response_fraction, stuck_fraction : float, optional
        Fractions of pixels with each persistent defect.
    bad_column : bool, optional
        Whether a column segment has extra dark current.
    prnu : float, optional
        Photo-response non-uniformity (relative standard deviation).
    temperature : float, optional
        Sensor temperature in Celsius, written to ``CCD-TEMP``.

    Examples
    --------
    >>> camera = SimulatedCamera((64, 64), seed=1)
    >>> camera.dark(60.0, seed=0).data.dtype
    dtype('uint16')
    """

    vignetting = staticmethod(vignetting)

    def __init__(
        self,
        shape: tuple[int, int] = (256, 256),
        *,
        seed: int = 0,
        gain: float = 1.5,
        read_noise: float = 5.0,
        bias: float = 1000.0,
        dark_current: float = 0.005,
        saturation_adu: int = 65535,
        full_well: float = 90000.0,
        hot_fraction: float = 5e-4,
        warm_fraction: float = 1e-3,
        dead_fraction: float = 2e-4,
        low_response_fraction: float = 3e-4,
        stuck_fraction: float = 1e-4,
        bad_column: bool = True,
        prnu: float = 0.01,
        temperature: float = -10.0,
    ) -> None:
        self.shape = _validate_shape(shape)
        self.seed = _validate_seed(seed)
        fractions = {
            "hot": hot_fraction,
            "warm": warm_fraction,
            "dead": dead_fraction,
            "low_response": low_response_fraction,
            "stuck": stuck_fraction,
        }
        for name, fraction in fractions.items():
            _require(0 <= fraction < 0.05, f"{name}_fraction must be in [0, 0.05)")
        for name, value in (("gain", gain), ("full_well", full_well)):
            _require(value > 0, f"{name} must be positive, got {value}")
        for name, value in (("read_noise", read_noise), ("prnu", prnu)):
            _require(value >= 0, f"{name} must be non-negative, got {value}")
        _require(dark_current >= 0, "dark_current must be non-negative e-/s")
        _require(
            0 <= bias < saturation_adu <= ADC_MAXIMUM,
            f"need 0 <= bias < saturation_adu <= {ADC_MAXIMUM}",
        )
        self.gain, self.read_noise = float(gain), float(read_noise)
        self.bias, self.temperature = float(bias), float(temperature)
        self.dark_current, self.full_well = float(dark_current), float(full_well)
        self.saturation_adu = int(saturation_adu)
        self.illumination = vignetting(self.shape)
        generator = np.random.default_rng(self.seed)
        self.truth = _defect_masks(self.shape, fractions, bad_column, generator)
        self._build_maps(prnu, generator)
        self._auto_seeds = np.random.default_rng((self.seed, _KIND_CODES["auto"]))

    def _build_maps(self, prnu: float, generator: np.random.Generator) -> None:
        truth, shape = self.truth, self.shape
        # The defect-free maps give the truth images of a perfect detector
        # that shares this one's dark and flat-field pattern.
        self._base_dark_rate = self.dark_current * generator.lognormal(0, 0.2, shape)
        self._base_response = 1.0 + prnu * generator.standard_normal(shape)
        self.dark_rate = self._base_dark_rate.copy()
        for key, low, high in (("hot", 1.0, 200.0), ("warm", 0.1, 0.5)):
            self.dark_rate[truth[key]] = _log_uniform(generator, low, high, truth[key])
        self.dark_rate[truth["bad_column"]] += 0.5
        self.response = self._base_response.copy()
        for key, low, high in (("dead", 0.0, 0.05), ("low_response", 0.3, 0.8)):
            self.response[truth[key]] = generator.uniform(low, high, truth[key].sum())
        stuck = truth["stuck"]
        values = np.array([0.0, ADC_MAXIMUM, np.nan])[
            generator.integers(0, 3, stuck.sum())
        ]
        middle = np.isnan(values)
        low = int(self.bias) + 100
        values[middle] = generator.integers(low, max(low + 1, 30001), middle.sum())
        self.stuck_value = np.full(shape, np.nan)
        self.stuck_value[stuck] = values

    def dark(
        self,
        exptime: float = 300.0,
        *,
        seed: int | None = None,
        cosmic_rays: bool = True,
    ) -> CCDData:
        """Return a raw dark frame.

        Parameters
        ----------
        exptime : float, optional
            Exposure time in seconds (0 gives a bias frame).
        seed : int, optional
            Frame seed; ``None`` draws the next seed from the camera.
        cosmic_rays : bool, optional
            Whether cosmic rays hit the sensor during the exposure.

        Returns
        -------
        astropy.nddata.CCDData
            ``uint16`` data in ``adu`` with a full FITS header.

        Examples
        --------
        >>> SimulatedCamera((32, 32)).dark(10.0, seed=3).unit
        Unit("adu")
        """
        exptime = _validate_exptime(exptime)
        seed, generator = self._frame_generator("dark", seed)
        electrons = generator.poisson(self.dark_rate * exptime).astype(float)
        if cosmic_rays:
            hits = generator.poisson(1.5e-7 * electrons.size * exptime)
            electrons += _cosmic_rays(self.shape, hits, generator, force_edges=False)
        adu = self._digitise(electrons, generator.standard_normal(self.shape))
        return self._frame(self._apply_stuck(adu), "dark", exptime, seed)

    def flat(self, level: float = 20000.0, *, seed: int | None = None) -> CCDData:
        """Return a raw 2-second flat field.

        Parameters
        ----------
        level : float, optional
            Light electrons at the frame centre in a pixel of unit response.
        seed : int, optional
            Frame seed; ``None`` draws the next seed from the camera.

        Returns
        -------
        astropy.nddata.CCDData
            ``uint16`` data in ``adu`` with a full FITS header.

        Examples
        --------
        >>> SimulatedCamera((32, 32)).flat(seed=0).header["IMAGETYP"]
        'Flat Field'
        """
        _require(level >= 0, f"level must be non-negative electrons, got {level}")
        seed, generator = self._frame_generator("flat", seed)
        exptime = 2.0
        mean = level * self.illumination * self.response + self.dark_rate * exptime
        electrons = generator.poisson(mean).astype(float)
        adu = self._digitise(electrons, generator.standard_normal(self.shape))
        return self._frame(self._apply_stuck(adu), "flat", exptime, seed)

    def science(
        self,
        *,
        fwhm: float = 2.6,
        exptime: float = 300.0,
        sky: float = 300.0,
        n_stars: int | None = None,
        nebulosity: bool = True,
        n_cosmic_rays: int | None = None,
        n_transient_hot: int | None = None,
        n_transient_cold: int | None = None,
        seed: int | None = None,
    ) -> tuple[CCDData, dict]:
        """Return a raw science frame and its truth.

        Parameters
        ----------
        fwhm : float, optional
            Full width at half maximum of the Moffat (beta 3) PSF, in pixels.
        exptime : float, optional
            Exposure time in seconds (scales the dark current only).
        sky : float, optional
            Sky electrons per pixel per exposure.
        n_stars : int, optional
            Number of stars; default ``npix // 2000``.
        nebulosity : bool, optional
            Whether to add a smooth nebula.
        n_cosmic_rays : int, optional
            Cosmic-ray hits; default ``max(5, npix // 4000)``.
        n_transient_hot : int, optional
            One-exposure hot pixels; default ``max(3, npix // 50000)``.
        n_transient_cold : int, optional
            One-exposure cold pixels; default ``max(2, npix // 100000)``.
        seed : int, optional
            Frame seed; ``None`` draws the next seed from the camera.

        Returns
        -------
        ccd : astropy.nddata.CCDData
            ``uint16`` data in ``adu`` with a header and a celestial WCS.
        truth : dict
            ``expected``, ``clean``, ``sigma``, ``transient_hot``,
            ``transient_amplitude``, ``transient_cold``, ``saturated``,
            ``stars``, ``nebulosity``, ``sky`` and the camera's ``truth``.

        Examples
        --------
        >>> ccd, truth = SimulatedCamera((64, 64)).science(fwhm=2.0, seed=5)
        >>> transient = truth["transient_hot"] | truth["transient_cold"]
        >>> usable = ~(truth["defect"] | transient)
        >>> bool(np.all((ccd.data == truth["clean"])[usable]))
        True
        """
        _require(fwhm > 0, f"fwhm must be positive pixels, got {fwhm}")
        _require(sky >= 0, f"sky must be non-negative electrons, got {sky}")
        exptime = _validate_exptime(exptime)
        npix = self.dark_rate.size
        counts = {
            "n_stars": (n_stars, npix // 2000),
            "n_cosmic_rays": (n_cosmic_rays, max(5, npix // 4000)),
            "n_transient_hot": (n_transient_hot, max(3, npix // 50000)),
            "n_transient_cold": (n_transient_cold, max(2, npix // 100000)),
        }
        counts = {key: _count(key, *values) for key, values in counts.items()}
        seed, generator = self._frame_generator("science", seed)
        nebula = np.zeros(self.shape)
        if nebulosity:
            nebula = _nebulosity(self.shape, sky, generator)
        stars, star_light = _stars(self.shape, counts["n_stars"], fwhm, generator)
        light = (sky + nebula + star_light) * self.illumination
        mean_clean = light * self._base_response + self._base_dark_rate * exptime
        mean_real = light * self.response + self.dark_rate * exptime
        # One noise realisation: the real frame differs from the clean one only
        # where a defect or a transient touches it.
        clean_electrons = generator.poisson(mean_clean).astype(float)
        electrons = clean_electrons.copy()
        defect = self.truth["defect"]
        electrons[defect] = generator.poisson(mean_real[defect])
        deposit, cold = self._transients(counts, generator)
        read_noise = generator.standard_normal(self.shape)
        clean = self._digitise(clean_electrons, read_noise)
        data = self._digitise(electrons + deposit, read_noise)
        data[cold] = self.bias + generator.integers(0, 21, cold.sum())
        data = self._apply_stuck(data)
        self._finish_star_table(stars, mean_clean)
        truth = {
            "expected": self._digitise(mean_clean, None),
            "clean": clean,
            "sigma": np.sqrt(self.read_noise**2 + mean_clean) / self.gain,
            "transient_hot": deposit >= 1,
            "transient_amplitude": deposit / self.gain,
            "transient_cold": cold,
            "saturated": (data == self.saturation_adu)
            & (clean == self.saturation_adu)
            & ~self.truth["stuck"],
            "stars": stars,
            "nebulosity": nebula,
            "sky": float(sky),
        }
        truth.update({key: mask.copy() for key, mask in self.truth.items()})
        return self._frame(data, "science", exptime, seed), truth

    def _transients(self, counts: dict, generator) -> tuple[np.ndarray, np.ndarray]:
        """Return the one-exposure charge (e-) and the mask of cold pixels."""
        deposit = _cosmic_rays(
            self.shape, counts["n_cosmic_rays"], generator, force_edges=True
        )
        # Single-pixel events go where nothing else is, so truth stays unambiguous.
        taken = self.truth["defect"] | (deposit > 0)
        hot = _single_pixels(counts["n_transient_hot"], taken, generator)
        deposit[hot] += _log_uniform(generator, 200.0, 5000.0, hot)
        cold = _single_pixels(counts["n_transient_cold"], taken | hot, generator)
        return np.round(deposit), cold

    def _finish_star_table(self, table: Table, mean_electrons: np.ndarray) -> None:
        rows = np.clip(np.rint(table["y"]).astype(int), 0, self.shape[0] - 1)
        cols = np.clip(np.rint(table["x"]).astype(int), 0, self.shape[1] - 1)
        scale = self.illumination * self._base_response / self.gain
        table["peak_adu"] = table["peak_electrons"] * scale[rows, cols]
        peak = mean_electrons[rows, cols]
        table["saturated"] = (peak > self.full_well) | (
            self.bias + peak / self.gain > self.saturation_adu
        )
        table.remove_column("peak_electrons")

    def _digitise(self, electrons: np.ndarray, normal: np.ndarray | None):
        """Convert electrons to ADU; ``normal=None`` gives the noise-free value."""
        adu = self.bias + electrons / self.gain
        if normal is not None:
            adu = np.round(adu + normal * (self.read_noise / self.gain))
        adu = np.clip(adu, 0.0, self.saturation_adu)
        adu[electrons > self.full_well] = self.saturation_adu
        return adu

    def _apply_stuck(self, adu: np.ndarray) -> np.ndarray:
        stuck = self.truth["stuck"]
        adu[stuck] = self.stuck_value[stuck]
        return adu

    def _frame_generator(self, kind: str, seed: int | None):
        # Unseeded frames still derive from the camera seed, so a session is
        # reproducible while successive calls differ.
        if seed is None:
            seed = int(self._auto_seeds.integers(100_000, 200_000))
        seed = _validate_seed(seed)
        sequence = (self.seed, _KIND_CODES[kind], seed)
        return seed, np.random.default_rng(sequence)

    def _frame(self, adu: np.ndarray, kind: str, exptime: float, seed: int):
        header = self._header(kind, exptime, seed)
        wcs = None
        if kind == "science":
            wcs = _celestial_wcs(self.shape, header)
            header.update(wcs.to_header())
        return CCDData(adu.astype(np.uint16), unit="adu", meta=header, wcs=wcs)

    def _header(self, kind: str, exptime: float, seed: int) -> fits.Header:
        offset = datetime.timedelta(seconds=(seed % 100_000) * (exptime + 60.0))
        start = _NIGHT_START[kind] + offset
        mjd = (start - _MJD_ZERO).total_seconds() / 86400.0
        cards = [
            ("INSTRUME", "ccdpixfix simulated camera", "Instrument"),
            ("TELESCOP", "ccdpixfix 0.5 m simulated reflector", "Telescope"),
            ("OBSERVER", "ccdpixfix test suite", "Observer"),
            ("OBJECT", "Simulated nebula field", "Target"),
            ("DATE-OBS", start.isoformat(timespec="seconds"), "UTC exposure start"),
            ("MJD-OBS", mjd, "[d] MJD at exposure start"),
            ("EXPTIME", float(exptime), "[s] Exposure time"),
            ("EXPOSURE", float(exptime), "[s] Exposure time"),
            ("IMAGETYP", _IMAGE_TYPES[kind], "Type of image"),
            ("FILTER", "R", "Filter"),
            ("GAIN", self.gain, "[e-/ADU] Detector gain"),
            ("RDNOISE", self.read_noise, "[e-] Read noise"),
            ("SATURATE", self.saturation_adu, "[adu] Saturation level"),
            ("CCD-TEMP", self.temperature, "[C] Sensor temperature"),
            ("XBINNING", 1, "Binning factor in x"),
            ("YBINNING", 1, "Binning factor in y"),
            ("BUNIT", "adu", "Unit of the data"),
            ("SIMNOTE", _LONG_NOTE, ""),
            ("HIERARCH CCDPIXFIX SIM SEED", seed, "Frame seed"),
            ("HIERARCH CCDPIXFIX CAMERA SEED", self.seed, "Camera seed"),
        ]
        skip = {"dark": {"OBJECT", "FILTER"}, "flat": {"OBJECT"}, "science": set()}
        header = fits.Header([card for card in cards if card[0] not in skip[kind]])
        header.add_comment("Synthetic data with known truth for bad-pixel tests.")
        header.add_history(f"Generated by ccdpixfix.datasets ({kind}).")
        return header


_LONG_NOTE = (
    "Simulated raw frame from ccdpixfix.datasets.SimulatedCamera; every defect "
    "and transient is known exactly, so this is not a real observation."
)


@dataclasses.dataclass
class Night:
    """One simulated night: a camera and its raw frames.

    Parameters
    ----------
    camera : SimulatedCamera
        The camera that took every frame.
    darks, flats, science : list of astropy.nddata.CCDData
        Raw frames.
    science_truth : list of dict
        Truth of each science frame, in the same order.
    """

    camera: SimulatedCamera
    darks: list[CCDData]
    flats: list[CCDData]
    science: list[CCDData]
    science_truth: list[dict]


def make_night(
    shape: tuple[int, int] = (256, 256),
    *,
    seed: int = 0,
    n_darks: int = 9,
    dark_exptime: float = 300.0,
    n_flats: int = 5,
    fwhms: tuple[float, ...] = (1.8, 2.6, 4.0),
    **camera_kwargs,
) -> Night:
    """Simulate darks, flats and science frames from one camera.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(ny, nx)`` of every frame.
    seed : int, optional
        Camera seed; frame ``i`` of each kind uses frame seed ``i``.
    n_darks, n_flats : int, optional
        Numbers of darks and flats.
    dark_exptime : float, optional
        Exposure of the darks and of the science frames, in seconds.
    fwhms : tuple of float, optional
        One science frame per FWHM, in pixels.
    **camera_kwargs
        Passed on to `SimulatedCamera`.

    Returns
    -------
    Night
        The camera, its frames and the truth of the science frames.

    Examples
    --------
    >>> night = make_night((64, 64), n_darks=2, n_flats=2, fwhms=(2.0,))
    >>> len(night.darks), len(night.flats), len(night.science)
    (2, 2, 1)
    """
    camera = SimulatedCamera(shape, seed=seed, **camera_kwargs)
    frames = [
        camera.science(fwhm=fwhm, exptime=dark_exptime, seed=index)
        for index, fwhm in enumerate(fwhms)
    ]
    return Night(
        camera=camera,
        darks=[camera.dark(dark_exptime, seed=index) for index in range(n_darks)],
        flats=[camera.flat(seed=index) for index in range(n_flats)],
        science=[ccd for ccd, _ in frames],
        science_truth=[truth for _, truth in frames],
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _validate_shape(shape) -> tuple[int, int]:
    values = tuple(np.atleast_1d(shape).tolist()) if np.ndim(shape) == 1 else ()
    _require(
        len(values) == 2 and all(isinstance(v, int) and v >= 8 for v in values),
        f"shape must be a 2-D (ny, nx) tuple of integers >= 8, got {shape!r}",
    )
    return values


def _validate_seed(seed) -> int:
    valid = isinstance(seed, int | np.integer) and not isinstance(seed, bool)
    _require(valid and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _validate_exptime(exptime: float) -> float:
    _require(
        np.isfinite(exptime) and exptime >= 0,
        f"exptime must be a non-negative number of seconds, got {exptime}",
    )
    return float(exptime)


def _count(name: str, value: int | None, default: int) -> int:
    value = default if value is None else value
    valid = isinstance(value, int | np.integer) and value >= 0
    _require(valid, f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _log_uniform(generator, low: float, high: float, mask: np.ndarray) -> np.ndarray:
    """Draw one log-uniform value per True pixel of ``mask``."""
    return np.exp(generator.uniform(np.log(low), np.log(high), mask.sum()))


def _defect_masks(shape, fractions: dict, bad_column: bool, generator) -> dict:
    ny, nx = shape
    masks = {key: np.zeros(shape, dtype=bool) for key in DEFECT_KEYS}
    if bad_column:
        _require(nx >= 21, f"bad_column needs >= 21 columns, got {nx}")
        column = generator.integers(10, nx - 10)
        length = generator.integers(math.ceil(ny / 4), 3 * ny // 4 + 1)
        # A charge trap spoils the column from its row to the readout edge.
        to_bottom = generator.random() < 0.5
        rows = slice(0, length) if to_bottom else slice(ny - length, ny)
        masks["bad_column"][rows, column] = True
    counts = [round(fractions[key] * ny * nx) for key in DEFECT_KEYS[:-1]]
    forbidden = ndimage.binary_dilation(masks["bad_column"], np.ones((3, 3)))
    positions = _isolated_pixels(shape, sum(counts), forbidden, generator)
    for key, chosen in zip(
        DEFECT_KEYS[:-1], np.split(positions, np.cumsum(counts)[:-1]), strict=True
    ):
        masks[key].flat[chosen] = True
    masks["defect"] = np.logical_or.reduce([masks[key] for key in DEFECT_KEYS])
    return masks


def _isolated_pixels(shape, count: int, forbidden: np.ndarray, generator):
    """Draw ``count`` distinct flat indices, no two pixels touching."""
    ny, nx = shape
    occupied, chosen = forbidden.copy(), []
    # Random sequential placement jams near npix / 9; give up well before.
    for _ in range(20):
        if len(chosen) == count:
            break
        for index in generator.integers(0, ny * nx, 2 * (count - len(chosen)) + 16):
            row, col = divmod(int(index), nx)
            if len(chosen) < count and not occupied[row, col]:
                occupied[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = True
                chosen.append(int(index))
    _require(len(chosen) == count, f"cannot isolate {count} defects; lower fractions")
    return np.array(chosen, dtype=int)


def _single_pixels(count: int, excluded: np.ndarray, generator) -> np.ndarray:
    """Mask of ``count`` random pixels outside ``excluded``."""
    mask = np.zeros(excluded.shape, dtype=bool)
    allowed = np.flatnonzero(~excluded)
    mask.flat[generator.choice(allowed, min(count, allowed.size), replace=False)] = 1
    return mask


def _cosmic_rays(shape, n_hits: int, generator, *, force_edges: bool):
    """Electrons deposited by ``n_hits`` cosmic rays, alternately spots and tracks.

    With ``force_edges`` the first hit is a spot on a corner pixel and the
    second a track starting on an edge pixel, so repairers meet both cases.
    """
    ny, nx = shape
    pieces = []
    for index in range(n_hits):
        start = (generator.uniform(-0.5, ny - 0.5), generator.uniform(-0.5, nx - 0.5))
        if force_edges and index == 0:
            start = (generator.choice([0, ny - 1]), generator.choice([0, nx - 1]))
        elif force_edges and index == 1:
            along = generator.integers(1, min(shape) - 1)
            start = [(along, 0), (along, nx - 1), (0, along), (ny - 1, along)][
                generator.integers(0, 4)
            ]
        render = _cosmic_spot if index % 2 == 0 else _cosmic_track
        pieces.append(render(np.asarray(start, dtype=float), shape, generator))
    deposit = np.zeros(ny * nx)
    if pieces:
        rows, cols, charges = (
            np.concatenate(part) for part in zip(*pieces, strict=True)
        )
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        flat = rows[inside] * nx + cols[inside]
        deposit = np.bincount(flat, weights=charges[inside], minlength=ny * nx)
    return deposit.reshape(shape)


def _cosmic_spot(start, shape, generator):
    """A central pixel of 100-20000 e- plus up to three weaker neighbours."""
    centre = np.exp(generator.uniform(np.log(100.0), np.log(20000.0)))
    steps = np.array([(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1) if r or c])
    picked = steps[generator.choice(8, generator.integers(0, 4), replace=False)]
    offsets = np.vstack([(0, 0), picked])
    charges = centre * np.concatenate(
        [[1.0], generator.uniform(0.05, 0.4, len(picked))]
    )
    row, col = np.rint(start).astype(int)
    return row + offsets[:, 0], col + offsets[:, 1], charges


def _cosmic_track(start, shape, generator):
    """A straight 3-30 px track sampled four times per pixel of its length."""
    length = generator.uniform(3.0, 30.0)
    # Aim roughly at the frame centre so edge-starting tracks enter the frame.
    centre = (np.asarray(shape) - 1) / 2 - start
    angle = math.atan2(centre[0], centre[1]) + generator.uniform(-np.pi, np.pi) / 2
    per_pixel = np.exp(generator.uniform(np.log(500.0), np.log(3000.0)))
    distance = np.linspace(0.0, length, math.ceil(4 * length) + 1)
    rows = np.rint(start[0] + distance * math.sin(angle)).astype(int)
    cols = np.rint(start[1] + distance * math.cos(angle)).astype(int)
    charges = per_pixel / 4 * generator.lognormal(0.0, 0.3, distance.size)
    return rows, cols, charges


def _nebulosity(shape, sky: float, generator) -> np.ndarray:
    """Broad Gaussian clouds plus one filament, in electrons; no pixel structure."""
    ny, nx = shape
    scale = min(shape) / 256
    rows, cols = np.arange(ny)[:, None], np.arange(nx)[None, :]
    field = np.zeros(shape)
    for _ in range(generator.integers(3, 7)):
        sigma = max(3.0, generator.uniform(15.0, 60.0) * scale)
        row, col = generator.uniform(0, ny), generator.uniform(0, nx)
        profile = np.exp(-((rows - row) ** 2) / (2 * sigma**2)) * np.exp(
            -((cols - col) ** 2) / (2 * sigma**2)
        )
        field += generator.uniform(0.5, 3.0) * sky * profile
    angle = generator.uniform(0.0, np.pi)
    row, col = generator.uniform(0, ny), generator.uniform(0, nx)
    along = (cols - col) * np.cos(angle) + (rows - row) * np.sin(angle)
    across = (rows - row) * np.cos(angle) - (cols - col) * np.sin(angle)
    major, minor = max(10.0, 80.0 * scale), max(3.0, 5.0 * scale)
    exponent = along**2 / (2 * major**2) + across**2 / (2 * minor**2)
    return field + generator.uniform(0.5, 1.5) * sky * np.exp(-exponent)


def _stars(shape, count: int, fwhm: float, generator) -> tuple[Table, np.ndarray]:
    """Draw positions and power-law fluxes, and render the stars in electrons."""
    ny, nx = shape
    x = generator.uniform(-0.5, nx - 0.5, count)
    y = generator.uniform(-0.5, ny - 0.5, count)
    # Truncated power law N(>F) ~ F^-0.6 between 2e3 and 3e6 e- (inverse CDF).
    low, high, slope = 2e3, 3e6, 0.6
    tail = generator.uniform(0.0, 1.0 - (high / low) ** -slope, count)
    flux = low * (1.0 - tail) ** (-1.0 / slope)
    if count:
        # Pin the brightest star at the top of the range, in the well-lit
        # central half, so that any seeing up to FWHM ~4.4 px saturates it.
        brightest = np.argmax(flux)
        flux[brightest] = high
        x[brightest] = generator.uniform(nx / 4, 3 * nx / 4)
        y[brightest] = generator.uniform(ny / 4, 3 * ny / 4)
    image, peak = _moffat_stars(shape, x, y, flux, fwhm)
    columns = {"x": x, "y": y, "flux": flux, "fwhm": np.full(count, float(fwhm))}
    return Table({**columns, "peak_electrons": peak}), image


def _moffat_stars(shape, x, y, flux, fwhm: float, *, oversample=5, chunk=32):
    """Pixel-integrated Moffat stars by ``oversample`` x ``oversample`` sampling.

    Returns the image and each star's electrons in its nearest pixel.
    """
    ny, nx = shape
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0))
    radius = math.ceil(max(10.0, 6.0 * fwhm))
    offsets = np.arange(-radius, radius + 1)
    sub_pixel = (np.arange(oversample) + 0.5) / oversample - 0.5
    fine = (offsets[:, None] + sub_pixel).ravel()
    image, peaks = np.zeros(ny * nx), np.zeros(len(x))
    for start in range(0, len(x), chunk):
        part = slice(start, start + chunk)
        col, row = np.rint(x[part]).astype(int), np.rint(y[part]).astype(int)
        d_col = fine + (col - x[part])[:, None]
        d_row = fine + (row - y[part])[:, None]
        radius_squared = d_row[:, :, None] ** 2 + d_col[:, None, :] ** 2
        density = (1.0 + radius_squared / alpha**2) ** -MOFFAT_BETA
        shape_5d = (-1, offsets.size, oversample, offsets.size, oversample)
        stamps = density.reshape(shape_5d).mean(axis=(2, 4))
        stamps *= flux[part, None, None] * (MOFFAT_BETA - 1) / (math.pi * alpha**2)
        peaks[part] = stamps[:, radius, radius]
        rows = (row[:, None] + offsets)[:, :, None]
        cols = (col[:, None] + offsets)[:, None, :]
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        flat = (rows * nx + cols)[inside]
        image += np.bincount(flat, weights=stamps[inside], minlength=ny * nx)
    return image.reshape(shape), peaks


def _celestial_wcs(shape, header: fits.Header) -> WCS:
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    # RA grows to the east, i.e. to the left on a north-up image.
    wcs.wcs.cdelt = [-PIXEL_SCALE_ARCSEC / 3600, PIXEL_SCALE_ARCSEC / 3600]
    wcs.wcs.crval = list(_FIELD_CENTRE_DEG)
    wcs.wcs.radesys = "ICRS"
    # Matching dates stop WCS(header) from "fixing" the header with a warning.
    wcs.wcs.dateobs, wcs.wcs.mjdobs = header["DATE-OBS"], header["MJD-OBS"]
    return wcs
