"""fix_pixels: the whole step, from a raw or calibrated frame to a repaired one."""

import dataclasses

import numpy as np
from astropy.nddata import CCDData

from ..badpixels import BadPixelMap, check_map
from ..colour import cfa_pattern, check_cube_pattern, is_rgb_cube, per_colour, per_plane
from ..transients import saturation_level, unflag_stars
from ..transients.learned import engine, recorded
from ..utils.ccd import check_ccd
from ..utils.provenance import record_step
from .chunks import fix_pixels_dask
from .options import FixOptions
from .steps import fix_steps

__all__ = ["fix_pixels"]


def fix_pixels(
    ccd,
    bpm: BadPixelMap | None = None,
    *,
    transients: bool = FixOptions.transients,
    replace: bool = FixOptions.replace,
    threshold: float = FixOptions.threshold,
    neighbour_threshold: float = FixOptions.neighbour_threshold,
    contrast: float = FixOptions.contrast,
    footprint_threshold: float | None = FixOptions.footprint_threshold,
    grow: int = FixOptions.grow,
    method: str = FixOptions.method,
    flags_to_replace: int = FixOptions.flags_to_replace,
    max_radius: int = FixOptions.max_radius,
    warm_is_bad: bool = FixOptions.warm_is_bad,
    saturation: float | None = FixOptions.saturation,
    gain: float | None = FixOptions.gain,
    read_noise: float | None = FixOptions.read_noise,
    cfa: str | None = None,
    raw: bool | None = FixOptions.raw,
    add_keyword=True,
    detector: str = FixOptions.detector,
    detector_options: dict | None = FixOptions.detector_options,
):
    """Flag and repair the bad pixels of one frame.

    Runs `flag_bad_pixels` (with ``bpm``), `flag_transients` and
    `replace_bad_pixels` in turn, with the same meaning for each argument,
    and records itself as one HISTORY entry. A frame whose data is a Dask
    array is fixed chunk by chunk (`ccdpixfix.pipeline.chunks.fix_pixels_dask`); a
    ``(3, ny, nx)`` colour cube plane by plane (`ccdpixfix.colour.rgb`), the map
    applying to every plane.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        One exposure, raw or calibrated: an image, a Bayer mosaic or a
        ``(3, ny, nx)`` colour cube.
    bpm : BadPixelMap, optional
        Persistent defects of the detector.
    transients : bool, optional
        Look for cosmic rays and one-exposure hot or cold pixels.
    replace : bool, optional
        Replace the flagged pixels with estimates from good neighbours.
    threshold, neighbour_threshold, contrast, footprint_threshold, grow
        See `flag_transients`.
    saturation, gain, read_noise
        See `flag_transients`.
    detector, detector_options
        The engine of the transient search, as in `flag_transients`
        (``"deepcr"``, ``"cosmic-conn"``: `ccdpixfix.transients.learned`).
    method, flags_to_replace, max_radius
        See `replace_bad_pixels`.
    warm_is_bad : bool, optional
        See `flag_bad_pixels`.
    cfa : str, optional
        Bayer pattern of a colour camera's raw mosaic (``"RGGB"``, ...): every
        step then works on each colour against same-colour neighbours only.
        By default from the header's ``BAYERPAT`` (with ``XBAYROFF`` and
        ``YBAYROFF``), else from the map's; ``"none"`` for grey data.
    raw : bool or None, optional
        Whether the frame is raw: None (default) decides from the frame
        (`ccdpixfix.badpixels.frame_state`: calibration keywords, else
        integer data are raw), True or False say so. In what a raw frame
        still holds, each pixel is predicted from the map
        (`ccdpixfix.badpixels.predict_frame`: its ``response`` times the
        local level, plus its ``dark_rate`` times ``EXPTIME``), and only what
        departs from the prediction can be a transient; a ``WARM`` pixel that
        stands out by ``threshold`` sigma is masked in this frame
        (``WARM | DO_NOT_USE``), never called ``TRANSIENT_HOT``. Calibrated
        frames are searched as they are.
    add_keyword : bool, str, `ccdproc.Keyword` or dict, optional
        The step's entry in the header, as ccdproc's steps make it: by
        default (True) a keyword named after the step (a HIERARCH card
        pointing to the short keyword that holds the parameters, as ccdproc
        logs ``subtract_bias`` under ``subbias``); a string names the
        keyword to add (no value), a `ccdproc.Keyword` or a dict gives
        keywords and values; False adds none. The HISTORY record is written
        in every case. Only ``fix_pixels`` logs itself, not the steps it runs.

    Returns
    -------
    `~astropy.nddata.CCDData`
        A new object with ``flags``, ``mask`` and ``uncertainty`` filled in and
        the flagged pixels replaced; every other pixel, the header cards and
        the WCS are as they were (integer data become float32).

    Raises
    ------
    TypeError, ValueError
        As the steps it runs.

    Examples
    --------
    >>> from ccdpixfix import fix_pixels, make_bad_pixel_map
    >>> from ccdpixfix.datasets import SimulatedCamera
    >>> camera = SimulatedCamera((128, 128), seed=5)
    >>> bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
    >>> frame, truth = camera.science(seed=9)
    >>> fixed = fix_pixels(frame, bpm)
    >>> fixed.data.dtype, fixed.uncertainty is not None
    (dtype('float32'), True)
    """
    options = FixOptions.from_keywords(
        transients=transients,
        replace=replace,
        threshold=threshold,
        neighbour_threshold=neighbour_threshold,
        contrast=contrast,
        footprint_threshold=footprint_threshold,
        grow=grow,
        method=method,
        flags_to_replace=flags_to_replace,
        max_radius=max_radius,
        warm_is_bad=warm_is_bad,
        saturation=saturation,
        gain=gain,
        read_noise=read_noise,
        raw=raw,
        detector=detector,
        detector_options=detector_options,
    )
    # A learned engine proposes seeds (`ccdpixfix.transients.learned`); the
    # rest is ours. Checked here, before any work: it needs a grey frame in
    # memory and its extra installed.
    learned = engine(
        ccd, detector, detector_options, cfa=_pattern(ccd, bpm, cfa) or "none"
    )
    if type(getattr(ccd, "data", None)).__module__.startswith("dask"):
        if _pattern(ccd, bpm, cfa) is not None:
            raise ValueError(
                "Bayer mosaics held as Dask arrays are not supported yet: fix them "
                "in memory, or give cfa='none' to treat the data as grey"
            )
        return fix_pixels_dask(ccd, bpm, add_keyword=add_keyword, **options.as_dict())
    if is_rgb_cube(ccd):
        return _fix_rgb(ccd, bpm, cfa, add_keyword, options)
    check_ccd(ccd)
    # The saturation level of integer data is the type's maximum: take it
    # before flag_bad_pixels turns the data into floats.
    if saturation is None:
        options = dataclasses.replace(options, saturation=saturation_level(ccd))
    pattern = _pattern(ccd, bpm, cfa)
    if pattern is None:
        out, counts = fix_steps(ccd, bpm, options, learned=learned)
    else:
        if bpm is not None:
            check_map(ccd, bpm)
        out, counts = _fix_colours(ccd, bpm, pattern, options)
    parameters = _recorded(bpm, options, pattern, learned)
    return record_step(
        out, "fix_pixels", add_keyword=add_keyword, **parameters, **counts
    )


def _recorded(bpm, options, pattern=None, learned=None):
    """The parameters `fix_pixels` writes in its HISTORY line."""
    options = options.as_dict()
    parameters = {
        "bpm": bpm is not None,
        "transients": options["transients"],
        "replace": options["replace"],
    }
    if pattern is not None:
        parameters["cfa"] = pattern
    if bpm is not None:
        parameters["warm_is_bad"] = options["warm_is_bad"]
        if options.get("raw") is not None:
            parameters["raw"] = options["raw"]
    if options["transients"]:
        for name in (
            "threshold",
            "neighbour_threshold",
            "contrast",
            "footprint_threshold",
            "grow",
        ):
            parameters[name] = options[name]
        parameters.update(recorded(learned))
    if options["replace"]:
        parameters["method"] = options["method"]
        parameters["flags_to_replace"] = int(options["flags_to_replace"])
        # Only a radius other than the default, as the lines before it read.
        if options["max_radius"] != FixOptions.max_radius:
            parameters["max_radius"] = options["max_radius"]
    # Only what was given: the rest is in the header or the frame's type.
    for name in ("saturation", "gain", "read_noise"):
        if options[name] is not None:
            parameters[name] = options[name]
    return parameters


def _fix_rgb(ccd, bpm, cfa, add_keyword, options):
    """`fix_pixels` on each plane of a colour cube, recorded once."""
    check_cube_pattern(cfa)
    if bpm is not None:
        check_map(_first_plane(ccd), bpm)
    out, counts = per_plane(ccd, lambda plane: _fixed_plane(plane, bpm, options))
    recorded = _recorded(bpm, options)
    return record_step(
        out, "fix_pixels", add_keyword=add_keyword, **recorded, planes=3, **counts
    )


def _first_plane(ccd):
    return CCDData(np.asarray(ccd.data)[0], unit=ccd.unit)


def _fixed_plane(plane, bpm, options):
    if options.saturation is None:
        options = dataclasses.replace(options, saturation=saturation_level(plane))
    return fix_steps(plane, bpm, options)


def _pattern(ccd, bpm, cfa):
    """The frame's Bayer pattern: argument, header, or the map's record."""
    pattern = cfa_pattern(getattr(ccd, "meta", None), cfa)
    if pattern is None and cfa is None and isinstance(bpm, BadPixelMap):
        pattern = cfa_pattern(None, bpm.meta.get("cfa"))
    return pattern


def _fix_colours(ccd, bpm, pattern, options):
    """`fix_steps` on each colour of a mosaic, stars judged on the whole mosaic.

    The colours are flagged on their own, then hot transients that are lit
    like a star in the full mosaic are unflagged (`ccdpixfix.transients.unflag_stars`),
    and only then is each colour repaired.
    """
    # No footprint growth on a mosaic (see flag_transients).
    flag_only = dataclasses.replace(options, replace=False, footprint_threshold=None)
    out, counts = per_colour(
        ccd,
        pattern,
        lambda sub, plane: fix_steps(sub, _sub_map(bpm, plane), flag_only, mosaic=True),
    )
    if options.transients:
        out, n_stars = unflag_stars(out, pattern)
        counts["n_hot"] -= n_stars
    if options.replace:
        repair = dataclasses.replace(options, transients=False)
        out, replaced = per_colour(
            out, pattern, lambda sub, _: fix_steps(sub, None, repair)
        )
        counts["n_replaced"] = replaced["n_replaced"]
    return out, counts


def _sub_map(bpm, plane):
    return None if bpm is None else bpm._part(plane)
