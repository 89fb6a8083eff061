"""Learned cosmic-ray detectors (deepCR, Cosmic-CoNN) as engines of the transient step.

``flag_transients(ccd, detector="deepcr")`` (and `fix_pixels`, and ``ccdpixfix
fix --detector deepcr``) runs a trained U-Net on the frame: the model
*proposes* the pixels whose cosmic-ray probability reaches a threshold, and
ccdpixfix *confirms and completes* them. A proposed pixel becomes a
``TRANSIENT_HOT`` seed only where it stands above the local median level by
``threshold`` times the pixel's noise (the noise model of the classical
engine) and is not the peak of one of the frame's own stars; the seeds the
classical test finds are kept as well (but a lone one just above
``threshold``, where the model sees nothing at all, must stand half a sigma
higher: read noise makes such spikes), and both grow into their spill and
footprint as the classical engine's do (but a spill pixel where the model
sees no charge at all must stand half a sigma higher too), before
replacement. What
the model alone gets wrong (stars it takes for hits, one-pixel defects it
does not know) the classical engine catches; what the classical test refuses
(the blunt middle and wings of diffuse tracks) the model brings.

The models are optional extras, never needed by the default install:

* ``pip install "ccdpixfix[deepcr]"``: deepCR (BSD-3-Clause; Zhang & Bloom
  2020), models ``ACS-WFC`` (the default), ``WFC3-UVIS``, ``decam``, or the
  path of a ``.pth`` file trained with deepCR;
* ``pip install "ccdpixfix[cosmic-conn]"``: Cosmic-CoNN (GPL-3.0; Xu et al.
  2023), models ``ground_imaging`` (the default), ``NRES``, ``HST_ACS_WFC``,
  or the path of a ``.pth`` file. Its licence is the GPL: a program that
  ships it must follow it.

Both need PyTorch, except a deepCR model exported once to ONNX
(`export_onnx`, on a machine with PyTorch): ``model="deepcr.onnx"`` then runs
with onnxruntime alone (``pip install "ccdpixfix[onnx]"``, about 80 MB
instead of PyTorch's 750 MB or more), with the same masks. The model runs
on a CUDA device when PyTorch (or onnxruntime) sees one; ``device="cpu"``
(or ``"cuda"``, ``"cuda:1"``) in ``detector_options``, or the environment
variable ``CCDPIXFIX_DEVICE``, chooses (untested on GPU so far). Frames
are cut into tiles of ``tile`` pixels that overlap by ``overlap`` pixels, so
that memory stays bounded and every pixel is judged with context on all
sides.

The models were trained on calibrated frames in electrons. The frame is
shown to them less a coarse background (block medians, so that bias steps
between read taps and sky gradients go) and multiplied by the gain
(``gain`` option, else the slope of ccdpixfix's noise model, else 1).
"""

import functools
import importlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..colour.cfa import cfa_pattern
from ..colour.rgb import is_rgb_cube

__all__ = [
    "DETECTORS",
    "Calibration",
    "calibrate_threshold",
    "check_detector",
    "engine",
    "export_onnx",
    "model_mask",
    "probability_map",
    "stack_truth",
    "threshold_table",
]

#: The engines of `ccdpixfix.flag_transients`: the classical one first (the default).
DETECTORS = ("classical", "deepcr", "cosmic-conn")
#: Environment variable naming the PyTorch device of the learned engines.
DEVICE_VARIABLE = "CCDPIXFIX_DEVICE"
# (module to import, name in messages, pip extra) of each learned engine.
_PACKAGES = {
    "deepcr": ("deepCR", "deepCR", "deepcr"),
    "cosmic-conn": ("cosmic_conn", "Cosmic-CoNN", "cosmic-conn"),
}
# The models each package ships (deepCR 0.3: learned_models.mask_dict;
# Cosmic-CoNN 0.6: init_model); a path to a .pth file is also accepted.
_MODELS = {
    "deepcr": ("ACS-WFC", "WFC3-UVIS", "decam"),
    "cosmic-conn": ("ground_imaging", "NRES", "HST_ACS_WFC"),
}
# The options every learned engine takes, with their defaults. A probability
# of 0.5 is what both packages use by default; tiles of 1024 px are
# deepCR's own patch size (about 1 GB of activations on a CPU); 32 px of
# overlap is more than the receptive field a U-Net of this depth needs to
# see a track's context (its 3 poolings see 16-20 px around).
_DEFAULTS = {
    "threshold": 0.5,
    "device": None,
    "tile": 1024,
    "overlap": 32,
    "gain": None,
}
# Tile sides must be multiples of this for each network (its poolings).
_MODULO = {"deepcr": 4, "cosmic-conn": 16}
# Block side of the coarse background shown to the models: small enough to
# follow the bias step between read taps to within a few pixels, large
# enough that a track or a star does not lift the median of its block.
_BACKGROUND_BLOCK = 16
# A pixel's 3 x 3 median this many times the noise from its block's level is
# on the other side of a bias step (or on a star, a track: there no
# neighbouring block's level comes within the margin, and nothing changes).
_STEP_SIGMA = 5.0
# The model is quiet about a pixel (`propose`) when its probability stays
# below this share of its threshold over the pixel's 3 x 3: a tenth, 0.05 by
# default. On the ESIS darks, every event of the stack truth reaches it
# within a pixel of its classical seeds (0.05 or more where the model does
# not propose them itself), while around a pixel of noise the probability
# stays under 0.005.
QUIET_SHARE = 0.1
# The model sees no charge at all at a pixel (`propose`) when its own
# probability is below this. On the ESIS darks, 99 % of the pixels of noise
# at 2.5-3.5 sigma away from every event stay under 3e-7 (half under 2e-8),
# while every pixel of a stack-truth footprint that the spill growth adds
# below 3 sigma has 3.4e-4 or more (209 pixels); 1e-5 lies between, a
# factor 30 from each.
SILENT_PROBABILITY = 1e-5
# A gain read from the noise model's slope is trusted only in this range
# (e-/ADU); outside it the slope was not measured (a dark frame has no
# signal range) and the data are shown as they are.
_GAIN_RANGE = (0.05, 100.0)


def check_detector(detector, options=None):
    """Validate an engine name and its options; return the full options.

    Parameters
    ----------
    detector : str
        One of `DETECTORS`.
    options : dict, optional
        ``model`` (a model name the package ships, or a ``.pth`` path),
        ``threshold`` (probability, 0 to 1, from which a pixel is proposed),
        ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``; default: the
        environment variable ``CCDPIXFIX_DEVICE``, else CUDA when PyTorch
        sees it), ``tile`` and ``overlap`` (pixels), ``gain`` (e-/ADU).
        The classical engine takes none.

    Returns
    -------
    dict
        Every option, defaults filled in (empty for the classical engine).

    Raises
    ------
    ValueError
        For an unknown engine, option or value.

    Examples
    --------
    >>> from ccdpixfix.transients.learned import check_detector
    >>> check_detector("deepcr")["model"]
    'ACS-WFC'
    >>> check_detector("learned")
    Traceback (most recent call last):
    ...
    ValueError: detector must be one of 'classical', 'deepcr', 'cosmic-conn', ...
    """
    if detector not in DETECTORS:
        accepted = ", ".join(repr(name) for name in DETECTORS)
        raise ValueError(f"detector must be one of {accepted}, got {detector!r}")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(
            f"detector_options must be a dict, not {type(options).__name__}"
        )
    if detector == "classical":
        if options:
            raise ValueError(
                "detector_options apply to the learned detectors only "
                f"({', '.join(DETECTORS[1:])}), not to the classical one"
            )
        return {}
    known = {"model": _MODELS[detector][0], **_DEFAULTS}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown detector_options {', '.join(map(repr, unknown))} for "
            f"detector={detector!r}; accepted: {', '.join(sorted(known))}"
        )
    full = {**known, **options}
    model = full["model"]
    # deepCR's models also run exported to ONNX (its licence allows it).
    files = (".pth", ".tar", ".onnx") if detector == "deepcr" else (".pth", ".tar")
    if not isinstance(model, str) or not (
        model in _MODELS[detector] or model.endswith(files)
    ):
        kinds = " or ".join(files)
        raise ValueError(
            f"model for detector={detector!r} must be one of "
            f"{', '.join(_MODELS[detector])} or the path of a {kinds} file, "
            f"got {model!r}"
        )
    threshold = full["threshold"]
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ValueError(
            f"detector_options threshold is a probability between 0 and 1 "
            f"(exclusive), got {threshold!r}"
        )
    for name, lowest in (("tile", 64), ("overlap", 0)):
        value = full[name]
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"detector_options {name} must be a whole number")
        if value < lowest:
            raise ValueError(f"detector_options {name} must be >= {lowest}")
    if 2 * full["overlap"] >= full["tile"]:
        raise ValueError("detector_options overlap must be under half the tile")
    if full["gain"] is not None and not full["gain"] > 0:
        raise ValueError(f"detector_options gain must be > 0, got {full['gain']!r}")
    device = full["device"]
    if device is not None and not (
        device == "cpu" or str(device).split(":")[0] == "cuda"
    ):
        raise ValueError(
            f"detector_options device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        )
    return full


def require(detector, model=None):
    """Import the package of a learned engine, or say which extra installs it.

    A ``model`` ending in ``.onnx`` needs onnxruntime only.

    Raises
    ------
    ImportError
        Naming the extra: ``pip install "ccdpixfix[deepcr]"``.
    """
    if str(model).endswith(".onnx"):
        try:
            return importlib.import_module("onnxruntime")
        except ImportError as error:
            raise ImportError(
                "an ONNX model needs onnxruntime, which is not installed: "
                'pip install "ccdpixfix[onnx]"'
            ) from error
    module, label, extra = _PACKAGES[detector]
    try:
        importlib.import_module("torch")
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"detector={detector!r} needs {label} and PyTorch, which are not "
            f'installed: pip install "ccdpixfix[{extra}]"'
        ) from error


def _device(requested, model=None):
    """The device name: asked for, from the environment, else CUDA if seen."""
    device = requested or os.environ.get(DEVICE_VARIABLE) or None
    if str(model).endswith(".onnx"):
        return device or "auto"  # onnxruntime picks from its providers
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for, but PyTorch sees no CUDA device"
        )
    return device


@functools.lru_cache(maxsize=4)
def _network(detector, model, device):
    """A loaded model, kept for the process (loading takes a good part of a second).

    Returns a function of one float32 tile (sides multiples of `_MODULO`)
    returning its probability map.
    """
    require(detector, model)
    if model.endswith(".onnx"):
        return _onnx_network(model, device)
    import torch

    if detector == "deepcr":
        from deepCR import deepCR

        # deepCR allocates on the current CUDA device: "cuda:N" makes N current.
        place = _cuda_place(device)
        with place():
            net = deepCR(mask=model, device="GPU" if device != "cpu" else "CPU")

        def run(tile):
            with place(), torch.inference_mode():
                return net.clean(
                    tile, threshold=0.5, inpaint=False, binary=False, segment=False
                )

        return run
    from cosmic_conn import init_model

    net = init_model(model)
    net.opt.crop = 0  # the whole tile at once: ccdpixfix cuts the tiles
    net.device = torch.device(device)
    net.network.to(net.device)

    def run(tile):
        return net.detect_cr(tile, ret_numpy=True)

    return run


def _onnx_network(path, device):
    """An exported model (`export_onnx`) run by onnxruntime, without PyTorch."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        index = int(device.split(":")[1]) if ":" in device else 0
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
    elif device.startswith("cuda"):
        raise ValueError(f"device {device!r} asked for, but onnxruntime has no CUDA")
    session = onnxruntime.InferenceSession(str(path), providers=providers)
    name = session.get_inputs()[0].name

    def run(tile):
        return session.run(None, {name: tile[None, None].astype(np.float32)})[0][0, 0]

    return run


def export_onnx(path, model="ACS-WFC"):
    """Export a deepCR mask model to ONNX, to run it later without PyTorch.

    Needs PyTorch, deepCR and onnx once; the file then runs with
    ``detector_options={"model": path}`` and onnxruntime alone. deepCR's
    BSD-3-Clause licence travels with its weights: the file's metadata
    carries the notice.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file to write.
    model : str, optional
        A deepCR mask model name (or a ``.pth`` file).

    Returns
    -------
    str
        ``path``.
    """
    check_detector("deepcr", {"model": model})
    require("deepcr")
    import onnx
    import torch
    from deepCR import deepCR

    net = deepCR(mask=model, device="CPU")
    if getattr(net, "scale", 1) != 1 or getattr(net, "norm", False):
        raise ValueError(f"deepCR model {model!r} rescales its input: not exported")
    dummy = torch.zeros(1, 1, 256, 256)
    axes = {2: "rows", 3: "columns"}
    with warnings.catch_warnings():
        # The TorchScript exporter, deprecated in PyTorch 2.9, still exports
        # deepCR's U-Net with free image sides and needs no onnxscript; its
        # deprecation notices (about itself and its internals) say nothing
        # of the file it writes.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net.maskNet.eval(),
            dummy,
            str(path),
            input_names=["image"],
            output_names=["probability"],
            dynamic_axes={"image": axes, "probability": axes},
            opset_version=17,
            dynamo=False,
        )
    exported = onnx.load(str(path))
    for key, value in {
        "source": f"deepCR mask model {model} (https://github.com/profjsb/deepCR)",
        "licence": "BSD-3-Clause; Copyright (c) 2019, Keming Zhang and Joshua "
        "Bloom; the notice and disclaimer of deepCR's LICENSE apply",
    }.items():
        entry = exported.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(exported, str(path))
    return str(path)


def _cuda_place(device):
    """A context making ``device`` current (a no-op for "cpu" and plain "cuda")."""
    import contextlib

    import torch

    if ":" not in device:
        return contextlib.nullcontext
    return functools.partial(torch.cuda.device, int(device.split(":")[1]))


def _coarse_background(data, bad):
    """The sky and bias under each pixel, from medians of blocks, steps kept.

    Each block of `_BACKGROUND_BLOCK` pixels gives its median, then the median
    of its 3 x 3 blocks (a block lifted by a bright star or a knot of tracks
    follows its neighbours). Where a block straddles the bias step between
    two read taps, its level is far from the pixels on one side of the step
    (the model would see a bright line along it): a pixel whose 3 x 3 median
    stands more than `_STEP_SIGMA` times the noise from its block's level
    takes, of the eight neighbouring blocks' levels, the closest one, if
    that one is within the same margin. Elsewhere the level is its block's.
    """
    ny, nx = data.shape
    block = _BACKGROUND_BLOCK
    by, bx = -(-ny // block), -(-nx // block)
    filled = np.where(bad, np.nan, data).astype(np.float32)
    padded = np.full((by * block, bx * block), np.nan, dtype=np.float32)
    padded[:ny, :nx] = filled
    blocks = padded.reshape(by, block, bx, block).transpose(0, 2, 1, 3)
    level = np.nanmedian(blocks.reshape(by, bx, -1), axis=2)
    level = np.where(np.isfinite(level), level, np.nanmedian(level))
    level = ndimage.median_filter(level, size=3, mode="nearest")

    def upsampled(grid):
        return np.repeat(np.repeat(grid, block, 0), block, 1)[:ny, :nx]

    background = upsampled(level)
    typical = np.where(bad, background, filled)
    typical = ndimage.median_filter(typical, size=3, mode="nearest")
    away = np.abs(typical - background)
    margin = _STEP_SIGMA * 1.4826 * float(np.nanmedian(np.abs(filled - background)))
    rows, cols = np.nonzero(away > margin)
    if not rows.size:
        return background
    padded_level = np.pad(level, 1, mode="edge")
    best, distance = background[rows, cols], away[rows, cols]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            candidate = padded_level[rows // block + 1 + dy, cols // block + 1 + dx]
            gap = np.abs(typical[rows, cols] - candidate)
            closer = (gap < distance) & (gap <= margin)
            best[closer], distance[closer] = candidate[closer], gap[closer]
    background[rows, cols] = best
    return background


def _gain(options, noise_source):
    """e-/ADU: the option, else the noise model's 1 / slope if sensible, else 1."""
    if options.get("gain") is not None:
        return float(options["gain"])
    model = (noise_source or {}).get("model")
    if model is not None and model[1] > 0:
        gain = 1.0 / model[1]
        if _GAIN_RANGE[0] <= gain <= _GAIN_RANGE[1]:
            return gain
    return 1.0


def _tiled(image, run, tile, overlap, modulo):
    """``run`` on overlapping tiles of ``image``; each pixel from the tile it is
    deepest in (at least ``overlap`` from a tile edge, except at the frame's)."""
    ny, nx = image.shape
    out = np.zeros((ny, nx), dtype=np.float32)
    step = tile - 2 * overlap
    for y0 in range(0, ny, step):
        ys = max(min(y0 - overlap, ny - tile), 0)
        y1 = min(y0 + step, ny)
        for x0 in range(0, nx, step):
            xs = max(min(x0 - overlap, nx - tile), 0)
            x1 = min(x0 + step, nx)
            part = image[ys : ys + tile, xs : xs + tile]
            # Reflected to the sides the network needs (a small frame, or one
            # whose side is not a multiple of its poolings).
            h, w = part.shape
            pad = ((0, -h % modulo), (0, -w % modulo))
            if any(p for _, p in pad):
                part = np.pad(part, pad, mode="reflect" if min(h, w) > 1 else "edge")
            probability = np.asarray(run(np.ascontiguousarray(part)))[:h, :w]
            out[y0:y1, x0:x1] = probability[y0 - ys : y1 - ys, x0 - xs : x1 - xs]
    return out


def probability_map(data, detector="deepcr", options=None, *, bad=None, noise=None):
    """The model's cosmic-ray probability at each pixel of a frame.

    Parameters
    ----------
    data : 2-D array
        The frame, raw or calibrated.
    detector : {"deepcr", "cosmic-conn"}
        The engine.
    options : dict, optional
        As `check_detector` takes them.
    bad : 2-D bool array, optional
        Pixels that must not count (shown to the model at the background).
    noise : dict, optional
        ccdpixfix's noise source (``{"model": (floor, slope, offset)}``),
        whose slope gives the gain when ``options`` has none.

    Returns
    -------
    `numpy.ndarray` of float32
        Probabilities between 0 and 1.
    """
    options = check_detector(detector, options)
    if detector == "classical":
        raise ValueError("the classical detector has no probability map")
    model = str(options["model"])
    run = _network(detector, model, _device(options["device"], model))
    data = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(data) if bad is None else (np.asarray(bad) | ~np.isfinite(data))
    background = _coarse_background(data, bad)
    image = np.where(bad, 0.0, data - background).astype(np.float32)
    image *= np.float32(_gain(options, noise))
    return _tiled(image, run, options["tile"], options["overlap"], _MODULO[detector])


def model_mask(data, detector="deepcr", options=None, *, bad=None, noise=None):
    """The model's own mask: its probability at or above the ``threshold`` option.

    What the learned engine proposes to ccdpixfix (`probability_map`), also
    the "model alone" row of the benchmarks.

    Returns
    -------
    `numpy.ndarray` of bool
    """
    options = check_detector(detector, options)
    probability = probability_map(data, detector, options, bad=bad, noise=noise)
    return probability >= np.float32(options["threshold"])


def propose(data, bad, noise_source, detector, options):
    """What the model says of each pixel, as `flag_transients` takes it.

    ``bad`` pixels (already flagged) are never proposed.

    Returns
    -------
    proposed : 2-D bool array
        The model's own mask (`model_mask`), ``bad`` pixels left out: the
        seeds it proposes.
    quiet : 2-D bool array
        Where the model sees no cosmic ray: its probability stays below
        `QUIET_SHARE` of its threshold over the pixel and its eight
        neighbours. A seed of the classical test there must stand out more
        (``ccdpixfix.transients.core._agreed``).
    silent : 2-D bool array
        Where the model sees no charge at the pixel itself: its own
        probability is below `SILENT_PROBABILITY`. A pixel the spill growth
        adds there must stand out more (``ccdpixfix.transients.core._heard``).
    """
    options = check_detector(detector, options)
    probability = probability_map(data, detector, options, bad=bad, noise=noise_source)
    threshold = np.float32(options["threshold"])
    mask = (probability >= threshold) & ~bad
    quiet = ndimage.maximum_filter(probability, size=3, mode="nearest")
    quiet = quiet < np.float32(QUIET_SHARE) * threshold
    return mask, quiet, probability < np.float32(SILENT_PROBABILITY)


def recorded(learned):
    """What the header records of an `engine`: its name, model and threshold
    (nothing for the classical one)."""
    if learned is None:
        return {}
    detector, options = learned
    model = os.path.basename(str(options["model"]))
    return {
        "detector": detector,
        "detector_model": model,
        "detector_threshold": float(options["threshold"]),
    }


def stack_truth(frames, *, skip=None, core_sigma=8.0, footprint_sigma=3.0):
    """Cosmic-ray truth for a stack of dark frames, from the stack itself.

    For each frame, ``d`` = frame - per-pixel median of all frames, in units
    of its robust scatter (1.4826 MAD) over the image pixels; bit 1: core
    (``d > core_sigma``); bit 2: footprint (``d > footprint_sigma`` and
    8-connected to a core); bit 4: not an image pixel (``skip``). This is
    ``make_truth.py`` of the shared real-data folder. It needs five frames
    or more of one camera and exposure, so that the median holds no event.

    Parameters
    ----------
    frames : sequence of 2-D arrays or `~astropy.nddata.CCDData`
        The darks.
    skip : 2-D bool array, optional
        Pixels that are no image (prescan, overscan).

    Returns
    -------
    list of `numpy.ndarray` of uint8

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix.transients.learned import stack_truth
    >>> rng = np.random.default_rng(0)
    >>> frames = rng.normal(100.0, 2.0, (5, 32, 32))
    >>> frames[2, 10, 10:13] += 200.0
    >>> truth = stack_truth(frames)
    >>> int((truth[2] & 1).sum()), int((truth[0] & 1).sum())
    (3, 0)
    """
    cube = np.array([np.asarray(getattr(f, "data", f), np.float32) for f in frames])
    if cube.ndim != 3 or len(cube) < 3:
        raise ValueError("stack_truth needs three or more 2-D frames of one shape")
    median = np.median(cube, axis=0)
    skip = np.zeros(median.shape, bool) if skip is None else np.asarray(skip, bool)
    masks = []
    for frame in cube:
        excess = frame - median
        sigma = 1.4826 * np.median(np.abs(excess[~skip]))
        core = (excess > core_sigma * sigma) & ~skip
        labels, _ = ndimage.label(
            (excess > footprint_sigma * sigma) & ~skip, structure=np.ones((3, 3))
        )
        keep = np.unique(labels[core])
        mask = np.zeros(median.shape, np.uint8)
        mask[core] |= 1
        mask[np.isin(labels, keep[keep > 0])] |= 2
        mask[skip] |= 4
        masks.append(mask)
    return masks


def threshold_table(probabilities, truth_masks, thresholds):
    """Recall and false flags of probability maps cut at each threshold.

    Parameters
    ----------
    probabilities : sequence of 2-D float arrays
        One map per frame (`probability_map`).
    truth_masks : sequence of 2-D uint8 arrays
        `stack_truth` bits for the same frames.
    thresholds : sequence of float

    Returns
    -------
    list of dict
        Per threshold: ``threshold``, ``core`` and ``footprint`` recall,
        ``false_per_mpx``: flags on image pixels neither in a footprint nor
        touching one, per million image pixels.
    """
    rows = []
    cores = [(np.asarray(t) & 1) != 0 for t in truth_masks]
    prints = [(np.asarray(t) & 2) != 0 for t in truth_masks]
    image = [(np.asarray(t) & 4) == 0 for t in truth_masks]
    near = [ndimage.binary_dilation(p, structure=np.ones((3, 3))) for p in prints]
    n_core = sum(int(c.sum()) for c in cores)
    n_print = sum(int(p.sum()) for p in prints)
    n_image = sum(int(i.sum()) for i in image)
    for threshold in thresholds:
        flagged = [np.asarray(p) >= threshold for p in probabilities]
        core = sum(int((f & c).sum()) for f, c in zip(flagged, cores, strict=True))
        foot = sum(int((f & p).sum()) for f, p in zip(flagged, prints, strict=True))
        false = sum(
            int((f & ~n & i).sum())
            for f, n, i in zip(flagged, near, image, strict=True)
        )
        rows.append(
            {
                "threshold": float(threshold),
                "core": core / max(n_core, 1),
                "footprint": foot / max(n_print, 1),
                "false_per_mpx": false / max(n_image, 1) * 1e6,
            }
        )
    return rows


@dataclass
class Calibration:
    """A learned engine's threshold, calibrated on a stack of one's own darks.

    Attributes
    ----------
    detector : str
    options : dict
        ``detector_options`` to pass to the steps (the threshold chosen).
    table : list of dict
        `threshold_table` on the calibration frames.
    """

    detector: str
    options: dict
    table: list = field(default_factory=list)

    @property
    def threshold(self):
        return self.options["threshold"]


def calibrate_threshold(
    frames,
    truth_masks,
    *,
    detector="deepcr",
    options=None,
    max_false_per_mpx=1.0,
    thresholds=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
):
    """The lowest probability threshold whose false flags stay within a budget.

    The model is run once on each frame; its probability map is cut at each
    of ``thresholds`` and scored against ``truth_masks`` (`stack_truth`);
    the lowest threshold with at most ``max_false_per_mpx`` false flags per
    million image pixels wins (the highest recall the budget allows). The
    noise model of ccdpixfix confirms each proposal afterwards, so a budget
    of a few false flags per megapixel for the model alone is safe.

    Parameters
    ----------
    frames : sequence of 2-D arrays or `~astropy.nddata.CCDData`
        Darks (or any frames with a stack truth) of the camera to calibrate.
    truth_masks : sequence of 2-D uint8 arrays
        Their truth, bits as `stack_truth` makes them.
    detector : {"deepcr", "cosmic-conn"}
    options : dict, optional
        Other ``detector_options`` (model, device, gain...).
    max_false_per_mpx : float, optional
        Budget of the model's false flags.
    thresholds : sequence of float, optional
        Probabilities tried.

    Returns
    -------
    Calibration
        ``.options`` goes to ``detector_options``; ``.table`` holds every
        threshold's figures.
    """
    options = check_detector(detector, options)
    if len(frames) != len(truth_masks):
        raise ValueError(
            f"{len(frames)} frames but {len(truth_masks)} truth masks: give one each"
        )
    probabilities = []
    for frame, truth in zip(frames, truth_masks, strict=True):
        data = np.asarray(getattr(frame, "data", frame))
        skip = (np.asarray(truth) & 4) != 0
        probabilities.append(probability_map(data, detector, options, bad=skip))
    table = threshold_table(probabilities, truth_masks, sorted(thresholds))
    within = [row for row in table if row["false_per_mpx"] <= max_false_per_mpx]
    chosen = within[0]["threshold"] if within else table[-1]["threshold"]
    return Calibration(detector, {**options, "threshold": chosen}, table)


def engine(ccd, detector, options=None, *, cfa=None):
    """The engine a step is asked for, checked before any work.

    Returns None for the classical engine, else ``(detector, options)`` with
    every option filled in (`check_detector`). A learned engine works on
    grey 2-D frames held in memory, and needs its extra installed.

    Raises
    ------
    ValueError
        For an unknown engine or option, a colour cube, a Bayer mosaic, or
        a frame held as a Dask array.
    ImportError
        When the engine's extra is not installed (``require``).
    """
    options = check_detector(detector, options)
    if detector == "classical":
        return None
    if is_rgb_cube(ccd) or cfa_pattern(getattr(ccd, "meta", None), cfa) is not None:
        raise ValueError(
            f"detector={detector!r} works on grey frames, not on colour cubes or "
            "Bayer mosaics: use detector='classical' (or cfa='none' to take a "
            "mosaic as grey)"
        )
    if type(getattr(ccd, "data", None)).__module__.startswith("dask"):
        raise ValueError(
            f"detector={detector!r} needs the frame in memory, not as a Dask "
            "array: compute it first (a Dask cluster can still run whole frames)"
        )
    require(detector, options["model"])
    return detector, options
