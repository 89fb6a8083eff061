"""fix_pixels: the whole step, from a raw or calibrated frame to a repaired one."""

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from ._ccdutils import (
    check_ccd,
    check_positive,
    input_flags,
    new_ccd,
    uncertainty_sigma,
)
from ._provenance import record_step
from .badpixels import (
    BadPixelMap,
    _check_map,
    _map_flags,
    check_raw,
    predict_frame,
    warm_not_transient,
    warm_standing_out,
)
from .cfa import cfa_pattern, per_colour, unflag_stars
from .flags import PixelFlag
from .learned import engine, recorded
from .replace import DEFAULT_REPLACE_FLAGS, _replaced_planes
from .rgb import is_rgb_cube, per_plane
from .transients import _check_grow, _transient_planes, saturation_level

__all__ = ["fix_pixels", "fix_steps"]


def fix_pixels(
    ccd,
    bpm: BadPixelMap | None = None,
    *,
    transients: bool = True,
    replace: bool = True,
    threshold: float = 5.0,
    neighbour_threshold: float = 2.5,
    contrast: float = 4.0,
    footprint_threshold: float | None = 3.5,
    grow: int = 0,
    method: str = "median",
    flags_to_replace: int = DEFAULT_REPLACE_FLAGS,
    warm_is_bad: bool = False,
    saturation: float | None = None,
    gain: float | None = None,
    read_noise: float | None = None,
    cfa: str | None = None,
    raw: bool | None = None,
    add_keyword=True,
    detector: str = "classical",
    detector_options: dict | None = None,
):
    """Flag and repair the bad pixels of one frame.

    Runs `flag_bad_pixels` (with ``bpm``), `flag_transients` and
    `replace_bad_pixels` in turn, with the same meaning for each argument,
    and records itself as one HISTORY entry. A frame whose data is a Dask
    array is fixed chunk by chunk (`ccdpixfix.chunks.fix_pixels_dask`); a
    ``(3, ny, nx)`` colour cube plane by plane (`ccdpixfix.rgb`), the map
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
    detector, detector_options
        The engine of the transient search, as in `flag_transients`
        (``"deepcr"``, ``"cosmic-conn"``: `ccdpixfix.learned`).
    saturation, gain, read_noise
        See `flag_transients`.
    method, flags_to_replace
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
    options = {
        "transients": transients,
        "replace": replace,
        "threshold": threshold,
        "neighbour_threshold": neighbour_threshold,
        "contrast": contrast,
        "footprint_threshold": footprint_threshold,
        "grow": grow,
        "method": method,
        "flags_to_replace": flags_to_replace,
        "warm_is_bad": warm_is_bad,
        "saturation": saturation,
        "gain": gain,
        "read_noise": read_noise,
    }
    _check_options(options)
    check_raw(raw)
    learned = engine(
        ccd, detector, detector_options, cfa=_pattern(ccd, bpm, cfa) or "none"
    )
    if learned is not None:
        # A learned engine proposes seeds (`ccdpixfix.learned`); the rest is ours.
        options["learned"] = learned
    if type(getattr(ccd, "data", None)).__module__.startswith("dask"):
        from .chunks import fix_pixels_dask

        if _pattern(ccd, bpm, cfa) is not None:
            raise ValueError(
                "Bayer mosaics held as Dask arrays are not supported yet: fix them "
                "in memory, or give cfa='none' to treat the data as grey"
            )
        return fix_pixels_dask(ccd, bpm, raw=raw, add_keyword=add_keyword, **options)
    options["raw"] = raw
    if is_rgb_cube(ccd):
        return _fix_rgb(ccd, bpm, cfa=cfa, add_keyword=add_keyword, **options)
    check_ccd(ccd)
    # The saturation level of integer data is the type's maximum: take it
    # before flag_bad_pixels turns the data into floats.
    if saturation is None:
        saturation = options["saturation"] = saturation_level(ccd)
    pattern = _pattern(ccd, bpm, cfa)
    if pattern is None:
        out, counts = fix_steps(ccd, bpm, **options)
    else:
        if bpm is not None:
            _check_map(ccd, bpm)
        out, counts = _fix_colours(ccd, bpm, pattern, options)
    recorded = _recorded(bpm, options, pattern)
    return record_step(out, "fix_pixels", add_keyword=add_keyword, **recorded, **counts)


def _check_options(options):
    """Every option checked once, before any path (in memory, by chunks, by
    colour) starts, and whether or not the step that uses it runs: a bad
    value is a mistake even where it would be ignored."""
    check_positive(
        threshold=options["threshold"],
        neighbour_threshold=options["neighbour_threshold"],
        contrast=options["contrast"],
    )
    for name in ("footprint_threshold", "saturation", "gain", "read_noise"):
        if options[name] is not None:
            check_positive(**{name: options[name]})
    methods = ("median", "mean")
    if options["method"] not in methods:
        raise ValueError(f"method must be one of {methods}, got {options['method']!r}")
    _check_grow(options["grow"])


def _recorded(bpm, options, pattern=None):
    """The parameters `fix_pixels` writes in its HISTORY line."""
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
        parameters.update(recorded(options.get("learned")))
    if options["replace"]:
        parameters["method"] = options["method"]
        parameters["flags_to_replace"] = int(options["flags_to_replace"])
    # Only what was given: the rest is in the header or the frame's type.
    for name in ("saturation", "gain", "read_noise"):
        if options[name] is not None:
            parameters[name] = options[name]
    return parameters


def _fix_rgb(ccd, bpm, *, cfa, add_keyword, **options):
    """`fix_pixels` on each plane of a colour cube, recorded once."""
    if cfa_pattern(None, cfa) is not None:
        raise ValueError("a cube of three colour planes has no Bayer pattern")
    if bpm is not None:
        _check_map(_first_plane(ccd), bpm)
    out, counts = per_plane(ccd, lambda plane: _fixed_plane(plane, bpm, options))
    recorded = _recorded(bpm, options)
    return record_step(
        out, "fix_pixels", add_keyword=add_keyword, **recorded, planes=3, **counts
    )


def _first_plane(ccd):
    return CCDData(np.asarray(ccd.data)[0], unit=ccd.unit)


def _fixed_plane(plane, bpm, options):
    if options["saturation"] is None:
        options = {**options, "saturation": saturation_level(plane)}
    return fix_steps(plane, bpm, **options)


def _pattern(ccd, bpm, cfa):
    """The frame's Bayer pattern: argument, header, or the map's record."""
    pattern = cfa_pattern(getattr(ccd, "meta", None), cfa)
    if pattern is None and cfa is None and isinstance(bpm, BadPixelMap):
        pattern = cfa_pattern(None, bpm.meta.get("cfa"))
    return pattern


def _fix_colours(ccd, bpm, pattern, options):
    """`fix_steps` on each colour of a mosaic, stars judged on the whole mosaic.

    The colours are flagged on their own, then hot transients that are lit
    like a star in the full mosaic are unflagged (`ccdpixfix.cfa.unflag_stars`),
    and only then is each colour repaired.
    """
    # No footprint growth on a mosaic (see flag_transients).
    flag_only = {**options, "replace": False, "footprint_threshold": None}
    out, counts = per_colour(
        ccd,
        pattern,
        lambda sub, plane: fix_steps(sub, _sub_map(bpm, plane), **flag_only),
    )
    if options["transients"]:
        out, n_stars = unflag_stars(out, pattern)
        counts["n_hot"] -= n_stars
    if options["replace"]:
        repair = {**options, "transients": False}
        out, replaced = per_colour(
            out, pattern, lambda sub, _: fix_steps(sub, None, **repair)
        )
        counts["n_replaced"] = replaced["n_replaced"]
    return out, counts


def _sub_map(bpm, plane):
    return None if bpm is None else bpm._part(plane)


def fix_steps(
    ccd,
    bpm,
    *,
    transients,
    replace,
    threshold,
    neighbour_threshold,
    contrast,
    method,
    flags_to_replace,
    warm_is_bad,
    saturation,
    gain,
    read_noise,
    footprint_threshold=3.5,
    grow=0,
    noise_model="fit",
    raw=False,
    prediction=None,
    learned=None,
):
    """The steps of `fix_pixels` without its checks and header record.

    ``noise_model`` is "fit" (fit it on this frame) or a model fitted on the
    whole frame (`fix_pixels_dask` runs this on chunks). ``raw`` as in
    `fix_pixels`; False (the default here) predicts nothing. ``prediction``
    (a `ccdpixfix.badpixels.FramePrediction` for this frame or chunk) takes
    the place of the one the map would give. ``learned`` is a learned
    engine (`ccdpixfix.learned.engine`) or None.

    Returns
    -------
    (`~astropy.nddata.CCDData`, dict)
        The new frame and the counts of what was found.
    """
    counts = {}
    # Between the steps the frame travels as a light view sharing the
    # input's data, header and uncertainty: only the planes a step changes
    # are new, and the output is built once, at the end.
    view, flags, sigma, data = ccd, None, None, None
    if bpm is not None:
        flags = _map_flags(ccd, bpm, warm_is_bad=warm_is_bad)
        view = _view(ccd, flags, sigma)
        counts["n_map"] = int(np.count_nonzero(bpm.flags))
        if raw is not False and prediction is None:
            prediction = predict_frame(ccd, bpm, raw=raw)
    if transients:
        search, searched_from = view, flags
        if prediction is not None and flags is None:
            searched_from = input_flags(ccd)  # a chunk: its flags hold the map's
        if prediction is not None and not prediction.empty:
            # Transients are searched in the frame as the map predicts it
            # (`predict_frame`): a pixel doing what the map says has no
            # residual there. Saturation is judged on the data as read.
            flags = _saturated(
                ccd, input_flags(ccd) if flags is None else flags, saturation
            )
            noise = prediction.noise
            if noise is None:
                noise = uncertainty_sigma(ccd)
            flattened = prediction.flatten(ccd.data, noise)
            search = _view(ccd, flags, sigma, data=flattened)
        flags, new_sigma, found = _transient_planes(
            search,
            threshold=threshold,
            neighbour_threshold=neighbour_threshold,
            contrast=contrast,
            footprint_threshold=footprint_threshold,
            grow=grow,
            saturation=saturation,
            gain=gain,
            read_noise=read_noise,
            noise_model=noise_model,
            learned=learned,
        )
        sigma = sigma if new_sigma is None else new_sigma
        del search
        counts.update(found)
        if prediction is not None and prediction.state["dark"]:
            # A WARM pixel that stands out of a frame holding its dark
            # current is that pixel, not a cosmic ray: it is masked in this
            # frame, as WARM, whether the map predicted it or not.
            # Only the map's WARM pixels: a WARM flag the frame brought
            # with it says nothing of this exposure's dark current (a chunk
            # of a Dask frame has the map's flags merged in already).
            map_warm = None
            if bpm is not None:
                map_warm = (bpm.flags & np.uint16(PixelFlag.WARM)) != 0
            renamed = warm_not_transient(flags, searched_from, only=map_warm)
            counts["n_hot"] -= renamed
            noise = sigma if sigma is not None else uncertainty_sigma(ccd)
            if noise is not None:
                renamed += warm_standing_out(flags, prediction, noise, threshold)
            counts["n_warm_masked"] = renamed
        view = _view(ccd, flags, sigma)
    if replace:
        data, flags, new_sigma, counts["n_replaced"] = _replaced_planes(
            view,
            method=method,
            flags_to_replace=flags_to_replace,
            max_radius=15,
            gain=gain,
            read_noise=read_noise,
            noise_model=noise_model,
        )
        sigma = sigma if new_sigma is None else new_sigma
    del view  # its planes are no longer needed: free them before the output
    return new_ccd(ccd, data=data, flags=flags, sigma=sigma), counts


def _saturated(ccd, flags, saturation):
    """``flags`` with SATURATED where the data as read reach ``saturation``."""
    if saturation is None:
        return flags
    data = np.asarray(ccd.data)
    flags = flags.copy()
    with np.errstate(invalid="ignore"):
        flags[(data >= saturation) & (data < np.inf)] |= np.uint16(PixelFlag.SATURATED)
    return flags


def _view(ccd, flags, sigma, data=None):
    """``ccd`` with new flags (and noise), sharing its data and header."""
    if sigma is not None:
        uncertainty = StdDevUncertainty(sigma, copy=False)
    elif ccd.uncertainty is not None:
        # A new uncertainty object: CCDData would adopt the input's own.
        uncertainty = type(ccd.uncertainty)(ccd.uncertainty.array, copy=False)
    else:
        uncertainty = None
    return CCDData(
        ccd.data if data is None else data,
        unit=ccd.unit,
        meta=ccd.meta,
        flags=flags,
        uncertainty=uncertainty,
    )
