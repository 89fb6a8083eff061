"""The steps of `fix_pixels` on one frame, plane or chunk, without its checks.

`ccdpixfix.pipeline.core` (frames in memory, by colour, by plane) and
`ccdpixfix.pipeline.chunks` (Dask frames, chunk by chunk) both run them.
"""

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from ..badpixels import map_flags, predict_frame, warm_not_transient, warm_standing_out
from ..flags import PixelFlag
from ..replace import replace_bad_pixels_planes
from ..transients import flag_transients_planes
from ..utils.ccd import input_flags, new_ccd, uncertainty_sigma

__all__ = ["fix_steps"]


def fix_steps(
    ccd,
    bpm,
    options,
    *,
    noise_model="fit",
    prediction=None,
    learned=None,
    dark_level=None,
    mosaic=False,
):
    """The steps of `fix_pixels` without its checks and header record.

    ``options`` is a checked ``FixOptions``; its ``raw`` as in `fix_pixels`
    (False predicts nothing). ``noise_model`` is "fit" (fit it on this
    frame) or a model fitted on the whole frame (`fix_pixels_dask` runs this
    on chunks). ``prediction``
    (a `ccdpixfix.badpixels.FramePrediction` for this frame or chunk) takes
    the place of the one the map would give. ``learned`` is a learned
    engine (`ccdpixfix.transients.learned.engine`) or None. ``dark_level``
    is the whole frame's (``ccdpixfix.transients.dark_level``) for a
    chunk, None to measure it on this frame. ``mosaic``: the frame is one
    colour of a Bayer mosaic, whose stars are judged on the whole mosaic.

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
    star_light = None
    if bpm is not None:
        flags = map_flags(ccd, bpm, warm_is_bad=options.warm_is_bad)
        view = _view(ccd, flags, sigma)
        counts["n_map"] = int(np.count_nonzero(bpm.flags))
        if options.raw is not False and prediction is None:
            prediction = predict_frame(ccd, bpm, raw=options.raw)
    if options.transients:
        context = {
            "noise_model": noise_model,
            "learned": learned,
            "dark_level": dark_level,
            "mosaic": mosaic,
        }
        flags, sigma, star_light = _transient_step(
            ccd, bpm, view, flags, options, prediction, counts, context
        )
        view = _view(ccd, flags, sigma)
    if options.replace:
        data, flags, new_sigma, counts["n_replaced"] = replace_bad_pixels_planes(
            view,
            method=options.method,
            flags_to_replace=options.flags_to_replace,
            max_radius=options.max_radius,
            gain=options.gain,
            read_noise=options.read_noise,
            noise_model=noise_model,
            star_light=star_light,
        )
        sigma = sigma if new_sigma is None else new_sigma
    del view  # its planes are no longer needed: free them before the output
    return new_ccd(ccd, data=data, flags=flags, sigma=sigma), counts


def _transient_step(ccd, bpm, view, flags, options, prediction, counts, context):
    """The transient search of `fix_steps`: (flags, sigma, star_light),
    ``counts`` updated (``star_light``: the pixels near the peaks of the
    stars that their profile fits, and what the stars give there,
    `flag_transients_planes`).

    ``view`` is the frame with the map's ``flags`` (None without a map);
    ``context`` the keywords of `fix_steps` that the search takes as they
    are (the noise model, the learned engine `fix_pixels` checked or None,
    the dark level, whether the frame is a colour of a mosaic).
    """
    search, searched_from, sigma = view, flags, None
    if prediction is not None and flags is None:
        searched_from = input_flags(ccd)  # a chunk: its flags hold the map's
    if prediction is not None and not prediction.empty:
        # Transients are searched in the frame as the map predicts it
        # (`predict_frame`): a pixel doing what the map says has no
        # residual there. Saturation is judged on the data as read.
        flags = _saturated(
            ccd, input_flags(ccd) if flags is None else flags, options.saturation
        )
        noise = prediction.noise
        if noise is None:
            noise = uncertainty_sigma(ccd)
        flattened = prediction.flatten(ccd.data, noise)
        search = _view(ccd, flags, sigma, data=flattened)
    parameters = options.transient_options().as_dict()
    # The engine was made from these two by fix_pixels (`engine`).
    del parameters["detector"], parameters["detector_options"]
    flags, sigma, found, star_light = flag_transients_planes(
        search, **parameters, **context
    )
    del search
    counts.update(found)
    if prediction is not None and prediction.state["dark"]:
        counts["n_warm_masked"] = _warm_masked(
            ccd, bpm, flags, searched_from, sigma, options, prediction, counts
        )
    return flags, sigma, star_light


def _warm_masked(ccd, bpm, flags, searched_from, sigma, options, prediction, counts):
    """WARM pixels standing out of a frame that holds its dark current.

    Such a pixel is that pixel, not a cosmic ray: it is masked in this frame,
    as WARM, whether the map predicted it or not. Only the map's WARM pixels
    are renamed from ``TRANSIENT_HOT``: a WARM flag the frame brought with
    it says nothing of this exposure's dark current (a chunk of a Dask frame
    has the map's flags merged in already). Returns their number, and takes
    the renamed ones off ``counts["n_hot"]``.
    """
    map_warm = None
    if bpm is not None:
        map_warm = (bpm.flags & np.uint16(PixelFlag.WARM)) != 0
    renamed = warm_not_transient(flags, searched_from, only=map_warm)
    counts["n_hot"] -= renamed
    noise = sigma if sigma is not None else uncertainty_sigma(ccd)
    if noise is not None:
        renamed += warm_standing_out(flags, prediction, noise, options.threshold)
    return renamed


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
