"""Frames too large for memory: fix_pixels chunk by chunk on a Dask array."""

import copy
import dataclasses

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from ..badpixels.core import BadPixelMap, FramePrediction, predict_frame
from ..flags import BAD_PIXEL_FLAGS, PixelFlag
from ..kernels.medians import local_level
from ..noise.core import fit_noise, fit_rows
from ..transients import dark_level
from ..utils.ccd import (
    input_flags,
    output_dtype,
    quiet_numerics,
    saturation_from,
    uncertainty_sigma,
)
from ..utils.provenance import record_step
from .options import FixOptions
from .steps import fix_steps

__all__ = ["DEFAULT_DEPTH", "fix_pixels_dask"]

#: Halo (pixels) around each chunk: the reach of a pixel's result covers its
#: 7x7 background window, the growth of a track across the chunk border and a
#: replacement window; 48 px hold a 40-px track crossing a border.
DEFAULT_DEPTH = 48

_RESULT = np.dtype([("data", "f8"), ("sigma", "f8"), ("flags", "u2")])


def _strip(array, rows, ny):
    """The rows around each fitted row (row - 1 to row + 1) as one array."""
    index = np.clip(np.add.outer(rows, [-1, 0, 1]).ravel(), 0, ny - 1)
    return array[index]


def _global_model(ccd, data, flags, options):
    """The noise model and the dark level of the whole frame (`dark_level`).

    Both from `fit_rows`, as in memory.
    """
    ny, nx = data.shape
    rows = fit_rows((ny, nx))
    data_rows = np.asarray(_strip(data, rows, ny))
    flags_rows = np.asarray(_strip(flags, rows, ny))
    saturation = options.saturation
    with np.errstate(invalid="ignore"):
        saturated = (
            data_rows >= saturation
            if saturation is not None
            else np.zeros_like(flags_rows, bool)
        )
    known = (flags_rows != 0) | saturated | ~np.isfinite(data_rows)
    plane = None
    if ccd.uncertainty is not None:
        plane_ccd = CCDData(
            data_rows,
            unit=ccd.unit,
            uncertainty=type(ccd.uncertainty)(
                np.asarray(_strip(ccd.uncertainty.array, rows, ny))
            ),
        )
        plane = uncertainty_sigma(plane_ccd, native=True)
    levels, pairs = [], []
    middle = []
    for position in range(rows.size):
        window = slice(3 * position, 3 * position + 3)
        # Rows outside the frame were repeated by the clip: leave them out.
        first = 0 if rows[position] > 0 else 1
        last = 3 if rows[position] < ny - 1 else 2
        part = slice(window.start + first, window.start + last)
        level, n_pairs = local_level(data_rows[part], known[part])
        centre = 1 - first
        levels.append(level[centre])
        pairs.append(n_pairs[centre])
        middle.append(window.start + 1)
    middle = np.array(middle)
    dark = dark_level(data_rows[middle], known[middle])
    with quiet_numerics():
        model = fit_noise(
            ccd.meta,
            ccd.unit,
            np.asarray(data_rows[middle], dtype=np.float64),
            np.asarray(levels, np.float64),
            known[middle],
            n_pairs=np.asarray(pairs),
            plane=None if plane is None else plane[middle],
            gain=options.gain,
            read_noise=options.read_noise,
        )
    return model, dark


def fix_pixels_dask(ccd, bpm=None, *, depth=DEFAULT_DEPTH, add_keyword=True, **options):
    """`fix_pixels` for a frame held as a Dask array, chunk by chunk.

    The noise model is fitted once on the rows `fit_rows` picks (as
    `fix_pixels` does), then each chunk is fixed with a halo of ``depth``
    pixels (``dask.array.map_overlap``), so that the result equals the
    in-memory one for every defect whose reach (a track, a replacement
    window) stays within the halo.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        A frame whose ``data`` is a `dask.array.Array` (a numpy array is
        wrapped in one). Its ``flags`` and ``uncertainty``, if any, are
        numpy or Dask arrays of the same shape.
    bpm : BadPixelMap, optional
        The detector's map.
    depth : int, optional
        Halo in pixels around each chunk.
    add_keyword : bool, str, `ccdproc.Keyword` or dict, optional
        As for `fix_pixels`.
    **options
        As for `fix_pixels` (``raw`` too: raw frames are predicted from the
        map chunk by chunk, as in memory).

    Returns
    -------
    `~astropy.nddata.CCDData`
        A new object whose ``data``, ``flags``, ``mask`` and ``uncertainty``
        are lazy Dask arrays (``.compute()`` them, or write them chunk by
        chunk); the header gains the fix_pixels HISTORY record.

    Raises
    ------
    TypeError, ValueError
        As `fix_pixels`, or if ``depth`` is negative.
    """
    import dask.array as da

    data = ccd.data if isinstance(ccd.data, da.Array) else da.from_array(ccd.data)
    _check_frame(data, bpm, depth)
    settings = FixOptions.from_keywords(**options)
    # The map's prediction is made here, for the whole frame; the chunks get
    # their part of it (`fix_steps` predicts nothing itself).
    raw = settings.raw
    settings = dataclasses.replace(settings, raw=False)
    if settings.saturation is None:
        saturation = saturation_from(ccd.meta, data.dtype)
        settings = dataclasses.replace(settings, saturation=saturation)
    flags = _input_flags(ccd, data, bpm, settings.warm_is_bad)
    prediction = None
    if bpm is not None and raw is not False:
        prediction = predict_frame(ccd, bpm, raw=raw)
        if prediction.empty:
            prediction = None
    names, predicted = _prediction_planes(prediction, data)
    model, dark = _frame_model(ccd, data, flags, settings, prediction, names, predicted)
    planes = [data, flags]
    if ccd.uncertainty is not None:
        planes.append(_as_dask(ccd.uncertainty.array, data))
    planes += predicted
    combined = da.map_overlap(
        _block_fixer(ccd, settings, model, dark, prediction, names),
        *planes,
        depth=int(depth),
        boundary="none",
        dtype=_RESULT,
        meta=np.empty((0, 0), _RESULT),
    )
    # One computation for every plane; the chunks stay where Dask holds them
    # (on the workers of a cluster).
    out = _lazy_output(ccd, data.dtype, combined.persist())
    return record_step(
        out,
        "fix_pixels_dask",
        add_keyword=add_keyword,
        bpm=bpm is not None,
        depth=int(depth),
        chunks=str(data.chunksize),
    )


def _check_frame(data, bpm, depth):
    """A clear error for a frame, map or halo `fix_pixels_dask` cannot take."""
    if data.ndim != 2:
        raise ValueError(f"ccd must hold a 2-D image, got data of shape {data.shape}")
    if int(depth) < 0:
        raise ValueError(f"depth must be a number of pixels >= 0, got {depth!r}")
    if bpm is not None:
        if not isinstance(bpm, BadPixelMap):
            raise TypeError(f"bpm must be a BadPixelMap, not {type(bpm).__name__}")
        if bpm.shape != data.shape:
            raise ValueError(
                f"bpm shape {bpm.shape} does not match image shape {data.shape}; "
                "use the map made for this detector and binning"
            )


def _frame_model(ccd, data, flags, settings, prediction, names, predicted):
    """What the chunks share: the noise model and dark level of the whole frame.

    The model is "fit" (and the dark level None) where no transients are
    searched and the frame has an uncertainty plane.
    """
    if not (settings.transients or ccd.uncertainty is None):
        return "fit", None
    if prediction is None:
        return _global_model(ccd, data, flags, settings)
    # As in memory: the noise of the frame as the map predicts it, with the
    # pixels saturated as read left out.
    searched = _flattened(ccd, data, prediction, names, predicted)
    return _global_model(
        ccd, searched, _with_saturated(flags, data, settings), settings
    )


def _block_fixer(ccd, settings, model, dark, prediction, names):
    """The function `map_overlap` runs on each chunk and its halo."""

    def fix_block(block_data, block_flags, *rest):
        rest = list(rest)
        block_sigma = [rest.pop(0)] if ccd.uncertainty is not None else []
        block_prediction = _block_prediction(prediction, names, rest)
        frame = CCDData(
            np.asarray(block_data),
            unit=ccd.unit,
            meta=ccd.meta,
            flags=np.asarray(block_flags, np.uint16),
            uncertainty=(
                type(ccd.uncertainty)(np.asarray(block_sigma[0]))
                if block_sigma
                else None
            ),
        )
        fixed, _ = fix_steps(
            frame,
            None,
            settings,
            noise_model=model,
            prediction=block_prediction,
            dark_level=dark,
        )
        result = np.empty(frame.data.shape, _RESULT)
        result["data"] = fixed.data
        result["flags"] = fixed.flags
        result["sigma"] = (
            np.nan
            if fixed.uncertainty is None
            else StdDevUncertainty(fixed.uncertainty).array
            if isinstance(fixed.uncertainty, StdDevUncertainty)
            else _sigma_of(fixed.uncertainty)
        )
        return result

    return fix_block


def _lazy_output(ccd, dtype, combined):
    """The output frame, its planes lazy fields of the combined result."""
    out_flags = combined["flags"]
    return CCDData(
        combined["data"].astype(output_dtype(np.empty(0, dtype))),
        unit=ccd.unit,
        meta=copy.deepcopy(ccd.meta),
        wcs=copy.deepcopy(ccd.wcs),
        flags=out_flags,
        mask=(out_flags & np.uint16(int(BAD_PIXEL_FLAGS))) != 0,
        uncertainty=StdDevUncertainty(combined["sigma"].astype(np.float32)),
    )


def _prediction_planes(prediction, data):
    """Names and Dask arrays (chunked as the data) of a prediction's planes."""
    if prediction is None:
        return [], []
    names = [
        name
        for name in ("response", "dark", "variance")
        if getattr(prediction, name) is not None
    ]
    return names, [_as_dask(getattr(prediction, name), data) for name in names]


def _block_prediction(prediction, names, blocks):
    """The prediction for one block, from its planes' blocks."""
    if prediction is None:
        return None
    planes = dict(zip(names, (np.asarray(block) for block in blocks), strict=True))
    return FramePrediction(
        planes.get("response"),
        planes.get("dark"),
        prediction.zero,
        prediction.state,
        planes.get("variance"),
        prediction.noise,
    )


def _flattened(ccd, data, prediction, names, predicted):
    """The frame as the map predicts it (`FramePrediction.flatten`), lazily."""
    import dask.array as da

    with_sigma = prediction.noise is None and ccd.uncertainty is not None
    extra = [_as_dask(ccd.uncertainty.array, data)] if with_sigma else []

    def flatten_block(block, *rest):
        rest = list(rest)
        noise = prediction.noise
        if with_sigma:
            noise = _sigma_of(type(ccd.uncertainty)(np.asarray(rest.pop(0))))
        return _block_prediction(prediction, names, rest).flatten(block, noise)

    # The neighbours' median of a pixel reaches one pixel out.
    return da.map_overlap(
        flatten_block,
        data,
        *extra,
        *predicted,
        depth=1,
        boundary="none",
        dtype=np.float32,
    )


def _with_saturated(flags, data, settings):
    """``flags`` with SATURATED where the data as read reach saturation."""
    saturation = settings.saturation
    if saturation is None:
        return flags
    bit = np.uint16(PixelFlag.SATURATED)
    return flags | ((data >= saturation) & (data < np.inf)).astype(np.uint16) * bit


def _sigma_of(uncertainty):
    return uncertainty_sigma(
        CCDData(np.zeros(uncertainty.array.shape), unit="adu", uncertainty=uncertainty)
    )


def _as_dask(array, like):
    import dask.array as da

    if isinstance(array, da.Array):
        return array.rechunk(like.chunks)
    return da.from_array(np.asarray(array), chunks=like.chunks)


def _input_flags(ccd, data, bpm, warm_is_bad):
    """The frame's flags (as `input_flags` makes them) and the map's, lazily."""
    import dask.array as da

    from ..flags import PixelFlag

    mask = None if ccd.mask is None else _as_dask(ccd.mask, data)
    flags = None if getattr(ccd, "flags", None) is None else _as_dask(ccd.flags, data)

    def block_flags(block, *parts):
        parts = list(parts)
        block_mask = parts.pop(0) if mask is not None else None
        block_own = parts.pop(0) if flags is not None else None
        frame = CCDData(np.asarray(block), unit="adu", mask=block_mask, flags=block_own)
        return input_flags(frame)

    arguments = (
        [data]
        + ([mask] if mask is not None else [])
        + ([flags] if flags is not None else [])
    )
    result = da.map_blocks(block_flags, *arguments, dtype=np.uint16)
    if bpm is not None:
        extra = bpm.flags.copy()
        if warm_is_bad:
            extra[(extra & np.uint16(PixelFlag.WARM)) != 0] |= np.uint16(
                PixelFlag.DO_NOT_USE
            )
        result = result | da.from_array(extra, chunks=data.chunks)
    return result
