"""A seeded simulated CCD camera whose every pixel defect is known.

Frames behave like raw data from a real camera: unsigned 16-bit integers on a
bias pedestal, Poisson noise on every electron, Gaussian read noise, division
by the gain, rounding to integers and saturation.  Persistent defects (hot,
warm, dead, low-response and stuck pixels, a bad column) and one-exposure
artefacts (cosmic rays, transient hot and cold pixels) are all recorded, so
bad-pixel finders and repairers can be scored exactly.
"""

import dataclasses
import math
from functools import partial

import numpy as np
from astropy.nddata import CCDData
from astropy.table import Table

from ..colour.cfa import cfa_pattern, colour_of_pixels
from ._simulate_checks import (
    _count,
    _require,
    _validate_exptime,
    _validate_seed,
    _validate_shape,
)
from ._simulate_colour import LAMP, NEBULA, SKY, coloured_star_light, tint
from ._simulate_cosmic import realistic_cosmic_rays
from ._simulate_defects import _cosmic_rays, _defect_maps, _defect_masks, _transients
from ._simulate_header import PIXEL_SCALE_ARCSEC as PIXEL_SCALE_ARCSEC
from ._simulate_header import _celestial_wcs, _frame_header
from ._simulate_sky import (
    _FAINT_PER_STAR,
    _faint_stars,
    _galaxies,
    _nebulosity,
    _spectrum_light,
    _stars,
)
from ._simulate_sky import MOFFAT_BETA as MOFFAT_BETA

__all__ = ["DEFECT_KEYS", "Night", "SimulatedCamera", "make_night", "vignetting"]

#: Keys of the persistent defect masks in ``SimulatedCamera.truth``.
DEFECT_KEYS = ("hot", "warm", "dead", "low_response", "stuck", "bad_column")
ADC_MAXIMUM = 65535
# The kind enters the seed sequence so dark(seed=1) and flat(seed=1) differ.
_COSMIC_RAY_MODELS = ("sharp", "realistic", "compact")
# Largest share of pixels of one defect kind (or of the PRNU tail): a
# detector with 5 % of its pixels bad is no longer a camera the map and the
# scores are meant for, and the defects would start to touch each other.
_MAX_FRACTION = 0.05
# Star light (e-) above which a pixel counts as "on a star" in the truth.
_BRIGHT_STAR_ELECTRONS = 500.0
_KIND_CODES = {
    "dark": 1,
    "flat": 2,
    "science": 3,
    "spectrum": 4,
    "faint_stars": 5,
    "galaxies": 6,
    "faint_photons": 7,
    "auto": 99,
}


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
    _require(
        0 < corner_level < 1,
        f"corner_level must be a fraction between 0 and 1, got {corner_level!r}",
    )
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
    prnu_tail : float, optional
        Fraction of pixels (outside the defects) in the tail of the response
        that real sensors show and no Gaussian draws: three quarters 2.5-8 %
        high, one quarter 6.5-8 % low (issue 15 found 0.004 in the flats of
        an SBIG STL-1001). 0 by default, so that seeded frames stay as they
        were.
    temperature : float, optional
        Sensor temperature in Celsius, written to ``CCD-TEMP``.
    cfa : str, optional
        Bayer pattern (``"RGGB"``, ...) of a one-shot colour camera: sky,
        lamp, nebula and every star get colours, the header gets
        ``BAYERPAT``, and ``colours`` (and each frame's truth ``colour``) the
        colour of each pixel.
    cosmic_rays : {"sharp", "realistic", "compact"}, optional
        How cosmic rays look. ``"sharp"``: a bright pixel with up to three
        weaker neighbours, or a straight 3-30 px track one pixel wide.
        ``"realistic"``: charge diffusion (0.3-1.0 px, changing along a
        track), oblique tracks of up to 60 px with fluctuating energy loss,
        worms, spots with halos and saturated heavy ions, calibrated on real
        space darks; half the one-exposure hot pixels then fall on stars.
        ``"compact"``: the same events with the diffusion of a thinner
        sensor (0.25-0.6 px, evenly drawn: sharper than any star) and
        spots without halos.

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
        prnu_tail: float = 0.0,
        temperature: float = -10.0,
        cfa: str | None = None,
        cosmic_rays: str = "sharp",
    ) -> None:
        self.shape = _validate_shape(shape)
        _require(
            cosmic_rays in _COSMIC_RAY_MODELS,
            f"cosmic_rays must be one of {_COSMIC_RAY_MODELS}, got {cosmic_rays!r}",
        )
        self.cosmic_rays = cosmic_rays
        self.cfa = None if cfa is None else cfa_pattern(None, cfa)
        self.colours = None if self.cfa is None else colour_of_pixels(shape, self.cfa)
        self.seed = _validate_seed(seed)
        fractions = {
            "hot": hot_fraction,
            "warm": warm_fraction,
            "dead": dead_fraction,
            "low_response": low_response_fraction,
            "stuck": stuck_fraction,
        }
        for name, fraction in fractions.items():
            _require(
                0 <= fraction < _MAX_FRACTION,
                f"{name}_fraction must be in [0, {_MAX_FRACTION})",
            )
        _require(
            0 <= prnu_tail < _MAX_FRACTION, f"prnu_tail must be in [0, {_MAX_FRACTION})"
        )
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
        self.truth = _defect_masks(
            self.shape, DEFECT_KEYS, fractions, bad_column, generator
        )
        (
            self._base_dark_rate,
            self._base_response,
            self.dark_rate,
            self.response,
            self.stuck_value,
        ) = _defect_maps(
            self.shape,
            self.truth,
            dark_current=self.dark_current,
            bias=self.bias,
            prnu=prnu,
            prnu_tail=prnu_tail,
            adc_maximum=ADC_MAXIMUM,
            generator=generator,
        )
        self._auto_seeds = np.random.default_rng((self.seed, _KIND_CODES["auto"]))

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
            render = self._cosmic_ray_renderer() or _cosmic_rays
            electrons += render(self.shape, hits, generator, force_edges=False)
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
        light = level * self.illumination * tint(self.colours, LAMP)
        mean = light * self.response + self.dark_rate * exptime
        electrons = generator.poisson(mean).astype(float)
        adu = self._digitise(electrons, generator.standard_normal(self.shape))
        return self._frame(self._apply_stuck(adu), "flat", exptime, seed)

    def science(
        self,
        *,
        fwhm: float = 2.6,
        psf_beta: float = MOFFAT_BETA,
        exptime: float = 300.0,
        sky: float = 300.0,
        n_stars: int | None = None,
        n_faint_stars: int | None = None,
        n_galaxies: int | None = None,
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
            Full width at half maximum of the Moffat PSF, in pixels.
        psf_beta : float, optional
            The Moffat PSF's ``beta`` (above 1): 3 by default, as seeing
            gives (2.5-4.5); the larger, the nearer a Gaussian, whose wings
            are faint and whose undersampled stars look sharper (50 is a
            Gaussian for every test here).
        exptime : float, optional
            Exposure time in seconds (scales the dark current only).
        sky : float, optional
            Sky electrons per pixel per exposure.
        n_stars : int, optional
            Number of stars; default ``npix // 2000``.
        n_faint_stars : int, optional
            Number of stars a decade fainter (200-2000 e-, peaks of a few
            to a few tens of sigma), as the bright ones' power law
            continues: by default about three per bright star. They draw
            from a stream of their own, so the rest of the frame is the
            same with or without them.
        n_galaxies : int, optional
            Number of compact galaxies (exponential discs of 0.3-2.5 px
            half-light radius through the PSF, 300-3e4 e-): sources broader
            than the stars. Default ``npix // 2000``; from a stream of their
            own too.
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
            ``stars``, ``faint_stars``, ``galaxies``, ``nebulosity``, ``sky``,
            ``on_stars`` (pixels with over 500 e- of star light) and the
            camera's ``truth``.

        Examples
        --------
        >>> ccd, truth = SimulatedCamera((64, 64)).science(fwhm=2.0, seed=5)
        >>> transient = truth["transient_hot"] | truth["transient_cold"]
        >>> usable = ~(truth["defect"] | transient)
        >>> bool(np.all((ccd.data == truth["clean"])[usable]))
        True
        """
        _require(fwhm > 0, f"fwhm must be positive pixels, got {fwhm}")
        _require(psf_beta > 1, f"psf_beta must be above 1, got {psf_beta}")
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
        n_faint = _count(
            "n_faint_stars", n_faint_stars, round(counts["n_stars"] * _FAINT_PER_STAR)
        )
        n_galaxies = _count("n_galaxies", n_galaxies, npix // 2000)
        seed, generator = self._frame_generator("science", seed)
        nebula = np.zeros(self.shape)
        if nebulosity:
            nebula = _nebulosity(self.shape, sky, generator)
        stars, star_light = _stars(
            self.shape, counts["n_stars"], fwhm, generator, psf_beta
        )
        faint_stars, galaxies, faint_light = self._faint_sources(
            n_faint, n_galaxies, fwhm, psf_beta, seed
        )
        if self.colours is not None:
            star_light = coloured_star_light(
                self.shape, stars, fwhm, self.colours, generator, psf_beta
            )
            sky_light = sky * tint(self.colours, SKY)
            nebula = nebula * tint(self.colours, NEBULA)
        else:
            sky_light = sky
        light = (sky_light + nebula + star_light) * self.illumination
        faint_star_light, galaxy_light = (
            part * self.illumination for part in faint_light
        )
        # Star light > 500 e- is where a defect spoils photometry.
        on_stars = (
            star_light * self.illumination + faint_star_light > _BRIGHT_STAR_ELECTRONS
        )
        photons = self._stream("faint_photons", seed)
        data, truth, mean_clean = self._expose(
            light,
            exptime,
            counts,
            generator,
            on_stars=on_stars,
            faint=(faint_star_light + galaxy_light, photons),
        )
        truth["on_stars"] = on_stars
        self._finish_star_table(stars, mean_clean)
        self._finish_star_table(faint_stars, mean_clean)
        truth.update(
            stars=stars,
            faint_stars=faint_stars,
            galaxies=galaxies,
            nebulosity=nebula,
            sky=float(sky),
        )
        if self.colours is not None:
            truth["colour"] = self.colours.copy()
        return self._frame(data, "science", exptime, seed), truth

    def spectrum(
        self,
        *,
        exptime: float = 600.0,
        sky: float = 100.0,
        n_cosmic_rays: int | None = None,
        seed: int | None = None,
    ) -> tuple[CCDData, dict]:
        """Return a raw long-slit spectrum and its truth.

        Dispersion runs along x, the slit along y: a lit slit with sharp
        edges, sky emission lines of 1.8-3.5 px FWHM across the slit, and an
        object trace of 2.5 px FWHM with its continuum; the camera's defects,
        cosmic rays and one-exposure hot and cold pixels as in `science`.

        Parameters
        ----------
        exptime : float, optional
            Exposure time in seconds (scales the dark current only).
        sky : float, optional
            Sky continuum in electrons per pixel per exposure.
        n_cosmic_rays : int, optional
            Cosmic-ray hits; default ``max(5, npix // 4000)``.
        seed : int, optional
            Frame seed; ``None`` draws the next seed from the camera.

        Returns
        -------
        ccd : astropy.nddata.CCDData
            ``uint16`` data in ``adu`` with a header, no WCS.
        truth : dict
            As for `science`, with ``layout`` (slit rows, line columns and
            the row of the trace at each column) instead of ``stars``.

        Examples
        --------
        >>> ccd, truth = SimulatedCamera((64, 128)).spectrum(seed=2)
        >>> ccd.meta["IMAGETYP"], truth["layout"]["slit_rows"]
        ('Light Frame', (5, 58))
        """
        _require(sky >= 0, f"sky must be non-negative electrons, got {sky}")
        exptime = _validate_exptime(exptime)
        npix = self.dark_rate.size
        counts = {
            "n_cosmic_rays": _count(
                "n_cosmic_rays", n_cosmic_rays, max(5, npix // 4000)
            ),
            "n_transient_hot": max(3, npix // 50000),
            "n_transient_cold": max(2, npix // 100000),
        }
        seed, generator = self._frame_generator("spectrum", seed)
        light, layout = _spectrum_light(self.shape, sky, generator)
        data, truth, _ = self._expose(light, exptime, counts, generator)
        truth["layout"] = layout
        return self._frame(data, "spectrum", exptime, seed), truth

    def _faint_sources(self, n_faint, n_galaxies, fwhm, beta, seed):
        """The faint stars and the galaxies: tables, and their light
        (electrons, before vignetting) as a pair.

        Each draws from a stream of its own (and their photons from a
        third, in `_expose`): the rest of a frame (its noise, hits and
        defects) is the same without them. Galaxies are grey in a colour
        camera.
        """
        generator = self._stream("faint_stars", seed)
        stars, star_light = _faint_stars(self.shape, n_faint, fwhm, generator, beta)
        if self.colours is not None:
            star_light = coloured_star_light(
                self.shape, stars, fwhm, self.colours, generator, beta
            )
        generator = self._stream("galaxies", seed)
        galaxies, galaxy_light = _galaxies(
            self.shape, n_galaxies, fwhm, generator, beta
        )
        return stars, galaxies, (star_light, galaxy_light)

    def _stream(self, kind, seed):
        return np.random.default_rng((self.seed, _KIND_CODES[kind], seed))

    def _cosmic_ray_renderer(self):
        """What draws the cosmic rays of the realistic models; None if sharp."""
        if self.cosmic_rays == "sharp":
            return None
        return partial(realistic_cosmic_rays, compact=self.cosmic_rays == "compact")

    def _expose(self, light, exptime, counts, generator, on_stars=None, faint=None):
        """Raw data, truth and noise-free electrons of an exposure to ``light``.

        ``faint``: more light, and the generator that draws its photons (a
        sum of Poisson counts is one), so that the rest of the frame is
        drawn as without it.
        """
        mean_clean = light * self._base_response + self._base_dark_rate * exptime
        mean_real = light * self.response + self.dark_rate * exptime
        # One noise realisation: the real frame differs from the clean one only
        # where a defect or a transient touches it.
        clean_electrons = generator.poisson(mean_clean).astype(float)
        electrons = clean_electrons.copy()
        defect = self.truth["defect"]
        electrons[defect] = generator.poisson(mean_real[defect])
        if faint is not None:
            faint_light, faint_generator = faint
            mean_clean = mean_clean + faint_light * self._base_response
            clean_faint = faint_generator.poisson(faint_light * self._base_response)
            clean_electrons += clean_faint
            real = faint_light[defect] * self.response[defect]
            electrons += clean_faint
            electrons[defect] += faint_generator.poisson(real) - clean_faint[defect]
        render = self._cosmic_ray_renderer()
        deposit, cold = _transients(
            self.truth["defect"],
            counts,
            generator,
            render=render,
            on_stars=None if render is None else on_stars,
        )
        read_noise = generator.standard_normal(self.shape)
        clean = self._digitise(clean_electrons, read_noise)
        data = self._digitise(electrons + deposit, read_noise)
        data[cold] = self.bias + generator.integers(0, 21, cold.sum())
        data = self._apply_stuck(data)
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
        }
        truth.update({key: mask.copy() for key, mask in self.truth.items()})
        return data, truth, mean_clean

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
        header = _frame_header(self, kind, exptime, seed)
        if self.cfa is not None:
            header["BAYERPAT"] = (self.cfa, "Bayer pattern of the colour filter array")
            header["XBAYROFF"] = (0, "X offset of the Bayer pattern")
            header["YBAYROFF"] = (0, "Y offset of the Bayer pattern")
        wcs = None
        if kind == "science":
            wcs = _celestial_wcs(self.shape, header)
            header.update(wcs.to_header())
        return CCDData(adu.astype(np.uint16), unit="adu", meta=header, wcs=wcs)


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
    psf_beta: float = MOFFAT_BETA,
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
    psf_beta : float, optional
        The Moffat ``beta`` of their PSF (`SimulatedCamera.science`).
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
        camera.science(fwhm=fwhm, psf_beta=psf_beta, exptime=dark_exptime, seed=index)
        for index, fwhm in enumerate(fwhms)
    ]
    return Night(
        camera=camera,
        darks=[camera.dark(dark_exptime, seed=index) for index in range(n_darks)],
        flats=[camera.flat(seed=index) for index in range(n_flats)],
        science=[ccd for ccd, _ in frames],
        science_truth=[truth for _, truth in frames],
    )
