"""Cosmic rays on real frames nobody here made, with the detectors astronomers use.

1. ``esis_darks``: twelve space darks of an e2v CCD230-42 (the ESIS sounding
   rocket, door closed), full of long oblique particle tracks and diffuse
   spots. The truth comes from the stack, never from one frame's look (the
   logic of ``make_truth.py`` in the data folder): for each frame the excess
   ``d`` over the per-pixel median of all frames, in units of its robust
   scatter; core = ``d > 8 sigma``, footprint = ``d > 3 sigma`` and
   8-connected to a core, prescan and overscan columns left out. Columns:

   - core: fraction of core pixels flagged;
   - footprint: fraction of footprint pixels flagged;
   - events: fraction of footprints (connected groups) with a flag;
   - false/Mpx: flags on image pixels that are neither in a footprint nor
     touch one (a flag on the 2-3 sigma rim of a track is the track's), per
     megapixel of image;
   - s/frame: seconds per frame (about 2.2 Mpx).

   ``--centred-truth`` takes each frame's excess less its own offset from the
   stack, in units of a clipped scatter: make_truth.py's median absolute
   excess doubles in frames whose bias drifted by 3-4 ADU (0 and 7), and
   events of 30-40 ADU there fall under its 8 sigma.

2. ``kast_blue``: a 1200 s long-slit spectrum (b27) and a 30 s standard
   (b24), with no truth: how many groups of pixels each detector flags, and
   with ``--figures DIR`` PNG zooms to look at.

3. Frames where nearly every transient flag would be a false one (no
   truth; ``--skip-raw`` leaves them out): the raw Kast dome flat (b11),
   ccdproc's raw test frame ``a8280271`` and the Seestar frames, as Bayer
   mosaics and binned 2 x 2 into grey frames of FWHM about 1 px: the hot
   and cold transient pixels of ``fix_pixels`` with its defaults.

ccdpixfix runs with its defaults (the frames' headers give no gain or read
noise: the noise is measured). astroscrappy runs as ccdproc's
``cosmicray_lacosmic`` would, with the camera's gain and read noise; deepCR
and Cosmic-CoNN run when installed (``pip install deepCR cosmic-conn`` in a
benchmark environment only), with their shipped models.

``--engines classical,deepcr,deepcr+ccdpixfix`` (also ``cosmic-conn``,
``cosmic-conn+ccdpixfix``) gives instead one row per engine of
`ccdpixfix.transients.learned`: ``deepcr`` is the model's own mask (its probability
>= 0.5, the frame shown as ccdpixfix shows it), ``deepcr+ccdpixfix`` is
``flag_transients(detector="deepcr")``: the model proposes, ccdpixfix
confirms and grows. Engines whose extra is not installed are skipped with
one line. ``--calibrate`` first calibrates each learned engine's threshold
on the first half of the frames (`ccdpixfix.transients.learned.calibrate_threshold`)
and scores the engines on the other half only.

Run with::

    python benchmarks/bench_real.py [../shared/realdata] [--figures DIR]
    python benchmarks/bench_real.py ../shared/realdata --skip-kast \
        --engines classical,deepcr,deepcr+ccdpixfix [--calibrate] [--centred-truth]
"""

import argparse
import functools
import time
import warnings
from pathlib import Path

import numpy as np
from _engines import ENGINES
from _stamp import stamp
from astropy.io import fits
from astropy.nddata import CCDData
from scipy import ndimage

from ccdpixfix import PixelFlag, __version__, fix_pixels, flag_transients

# ESIS camera: gain and read noise from the data set's description (the
# header has neither); the prescan and overscan columns of its 2152-column
# raw frames.
ESIS_GAIN = 1.8
ESIS_READ_NOISE_ADU = 2.2
ESIS_SHAPE = (1040, 2152)
# Kast blue raw frames: 2048 data columns, then 2 x 32 overscan columns.
KAST_SHAPE = (350, 2112)
TRANSIENT = np.uint16(PixelFlag.TRANSIENT_HOT)
# Truth thresholds of make_truth.py, in units of the stack-subtracted scatter.
CORE_SIGMA = 8.0
FOOTPRINT_SIGMA = 3.0


def esis_skip(shape):
    """Columns of an ESIS raw frame that are not image pixels."""
    skip = np.zeros(shape, bool)
    if shape == ESIS_SHAPE:
        skip[:, :50] = skip[:, 2102:] = skip[:, 1074:1078] = True
    return skip


def _centred(excess):
    """A frame's offset from the stack and its scatter, neither biased by steps.

    The offset is the median of ``excess``; the scatter the standard
    deviation of the pixels within 4 sigma of it (sigma first from their
    median absolute deviation), corrected for the clipping: unlike the
    median absolute deviation of integer ADU, it is not rounded to steps of
    0.5 ADU, and unlike make_truth.py's it does not grow with a bias drift.
    """
    offset = float(np.median(excess))
    sigma = 1.4826 * float(np.median(np.abs(excess - offset)))
    for _ in range(3):
        kept = excess[np.abs(excess - offset) < 4 * sigma]
        offset, sigma = float(np.mean(kept)), float(np.std(kept)) / 0.99946
    return offset, sigma


def stack_truth(cube, centred=False):
    """Per frame: (core, footprint, excess in sigma), as make_truth.py makes them.

    ``centred``: each frame's excess less its own offset from the stack, in
    units of its clipped scatter (`_centred`), instead of make_truth.py's
    median absolute excess, which a frame whose bias drifted by a few ADU
    doubles (ESIS frames 0 and 7: 5.2 and 5.9 ADU against 2.9 and 3.1).
    """
    median = np.median(cube, axis=0)
    skip = esis_skip(median.shape)
    truths = []
    for frame in cube:
        excess = frame - median
        if centred:
            offset, sigma = _centred(excess[~skip])
            excess = excess - offset
        else:
            sigma = 1.4826 * np.median(np.abs(excess[~skip]))
        core = (excess > CORE_SIGMA * sigma) & ~skip
        labels, _ = ndimage.label(
            (excess > FOOTPRINT_SIGMA * sigma) & ~skip, structure=np.ones((3, 3))
        )
        keep = np.unique(labels[core])
        footprint = np.isin(labels, keep[keep > 0])
        truths.append((core, footprint, excess / sigma, median))
    return truths, skip


def score(flagged, core, footprint, skip):
    """Core, footprint and event recall, and false flags per Mpx of image."""
    labels, n_events = ndimage.label(footprint, structure=np.ones((3, 3)))
    hit = np.unique(labels[flagged & footprint])
    near = ndimage.binary_dilation(footprint, structure=np.ones((3, 3)))
    false = flagged & ~near & ~skip
    return {
        "core": (np.count_nonzero(flagged & core), np.count_nonzero(core)),
        "footprint": (
            np.count_nonzero(flagged & footprint),
            np.count_nonzero(footprint),
        ),
        "events": (np.count_nonzero(hit > 0), n_events),
        "false": (np.count_nonzero(false), np.count_nonzero(~skip)),
    }


def _ccdpixfix(data, **options):
    frame = CCDData(data, unit="adu")
    fixed = flag_transients(frame, **options)
    return (fixed.flags & TRANSIENT) != 0


def _bias_subtracted(data):
    """Data less its bias: per read tap (ESIS quadrants, Kast overscans).

    The anchors take calibrated data: their noise model reads the bias as
    signal otherwise (sqrt(3500 ADU) instead of 2.2 ADU of read noise).
    """
    data = np.asarray(data, np.float32)
    if data.shape == KAST_SHAPE:
        # Two amplifiers, each with its 32 overscan columns after the data.
        out = data[:, :2048].copy()
        out[:, :1024] -= np.median(data[:, 2048:2080])
        out[:, 1024:] -= np.median(data[:, 2080:2112])
        return out
    if data.shape != ESIS_SHAPE:
        return data - np.median(data)
    out = data.copy()
    ny, nx = data.shape
    for rows in (slice(0, ny // 2), slice(ny // 2, ny)):
        for cols in (slice(0, nx // 2), slice(nx // 2, nx)):
            out[rows, cols] -= np.median(data[rows, cols])
    return out


def _astroscrappy(data, gain, read_noise_e):
    import astroscrappy

    mask, _ = astroscrappy.detect_cosmics(
        _bias_subtracted(data),
        gain=gain,
        readnoise=read_noise_e,
        satlevel=65535.0,
        sepmed=True,
        cleantype="meanmask",
        fsmode="median",
    )
    return mask


def _deepcr(data):
    from deepCR import deepCR

    # deepCR 0.3's mask models are ACS-WFC, WFC3-UVIS and decam
    # (ACS-WFC-F606W-2-32 is the name of an inpainting model there).
    model = deepCR(mask="ACS-WFC", device="CPU")
    mask = model.clean(_bias_subtracted(data), threshold=0.5, inpaint=False)
    return np.asarray(mask, bool)


def _cosmic_conn(data, model_name):
    from cosmic_conn import init_model

    model = init_model(model_name)
    probability = model.detect_cr(_bias_subtracted(data))
    return np.asarray(probability) > 0.5


def detectors(gain, read_noise_e):
    """(name, function of the raw data returning a bool mask), those installed."""
    found = [(f"ccdpixfix {__version__}", _ccdpixfix)]
    try:
        import astroscrappy  # noqa: F401

        found.append(
            (
                "astroscrappy (L.A.Cosmic)",
                lambda data: _astroscrappy(data, gain, read_noise_e),
            )
        )
    except ImportError:
        print("astroscrappy is not installed: its row is missing")
    try:
        import deepCR  # noqa: F401

        found.append(("deepCR, ACS-WFC model", _deepcr))
    except ImportError:
        print("deepCR is not installed: its row is missing")
    try:
        import cosmic_conn  # noqa: F401

        found.append(
            ("Cosmic-CoNN, ground-imaging", lambda d: _cosmic_conn(d, "ground_imaging"))
        )
        found.append(("Cosmic-CoNN, NRES", lambda d: _cosmic_conn(d, "NRES")))
    except ImportError:
        print("Cosmic-CoNN is not installed: its rows are missing")
    return found


def install_megabytes(detector):
    """Megabytes the engine's packages take (PyTorch and the model package)."""
    from importlib import metadata

    names = {"deepcr": ("torch", "deepCR"), "cosmic-conn": ("torch", "cosmic-conn")}
    total = 0
    for name in names[detector]:
        for file in metadata.distribution(name).files or ():
            path = file.locate()
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def engines(names, calibrated=None):
    """(row name, detect function) of each engine asked for that is installed."""
    from ccdpixfix.transients import learned

    found = []
    for name in names:
        if name not in ENGINES:
            raise SystemExit(
                f"unknown engine {name!r}; choose from {', '.join(ENGINES)}"
            )
        detector, confirmed = ENGINES[name]
        if detector is None:
            found.append((f"{name} (ccdpixfix {__version__})", _ccdpixfix))
            continue
        try:
            learned.require(detector)
        except ImportError as error:
            print(f"{name}: skipped, {error}")
            continue
        options = dict((calibrated or {}).get(detector, {}))
        label = f"{name} (p>={options.get('threshold', 0.5):g})"
        if confirmed:
            found.append(
                (
                    label,
                    functools.partial(
                        _ccdpixfix, detector=detector, detector_options=options
                    ),
                )
            )
        else:
            found.append(
                (
                    label,
                    functools.partial(
                        learned.model_mask, detector=detector, options=options
                    ),
                )
            )
        print(
            f"{name}: PyTorch + model package take {install_megabytes(detector):.0f} MB"
        )
    return found


def calibrate(folder, names, frames):
    """Each learned engine's threshold, calibrated on ``frames`` of the ESIS darks."""
    from ccdpixfix.transients import learned

    paths = sorted((folder / "esis_darks").glob("*.fit*"))
    cube = np.array([_read(path) for path in paths])
    truth = learned.stack_truth(cube, skip=esis_skip(cube[0].shape))
    calibrated = {}
    for detector in sorted({ENGINES[n][0] for n in names if ENGINES[n][0]}):
        try:
            learned.require(detector)
        except ImportError:
            continue
        result = learned.calibrate_threshold(
            cube[frames], [truth[i] for i in frames], detector=detector
        )
        print(f"\n{detector}: threshold calibrated on ESIS frames {list(frames)}")
        print(f"{'p >=':>8}{'core':>8}{'footprint':>11}{'false/Mpx':>11}")
        for row in result.table:
            print(
                f"{row['threshold']:>8.2f}{row['core']:>8.4f}"
                f"{row['footprint']:>11.4f}{row['false_per_mpx']:>11.2f}"
            )
        print(f"chosen: {result.threshold:g} (false flags <= 1 per Mpx)")
        calibrated[detector] = {"threshold": result.threshold}
    return calibrated


def _read(path):
    return np.asarray(fits.getdata(path), dtype=np.float32)


def esis(folder, figures=None, frames=None, rows=None, centred=False):
    """The table on the ESIS darks; returns {detector: totals}.

    ``rows`` ((name, detect) pairs) replaces the usual detectors;
    ``centred`` scores against the centred truth (`stack_truth`)."""
    paths = sorted((folder / "esis_darks").glob("*.fit*"))
    if not paths:
        raise SystemExit(f"no ESIS darks in {folder / 'esis_darks'}")
    cube = np.array([_read(path) for path in paths])
    truths, skip = stack_truth(cube, centred)
    chosen = range(len(paths)) if frames is None else frames
    results = {}
    if rows is None:
        rows = detectors(ESIS_GAIN, ESIS_READ_NOISE_ADU * ESIS_GAIN)
    for name, detect in rows:
        totals = {key: [0, 0] for key in ("core", "footprint", "events", "false")}
        seconds = []
        for index in chosen:
            start = time.perf_counter()
            flagged = detect(cube[index])
            seconds.append(time.perf_counter() - start)
            core, footprint, excess, _ = truths[index]
            for key, (found, total) in score(flagged, core, footprint, skip).items():
                totals[key][0] += found
                totals[key][1] += total
            if figures is not None and index == chosen[0]:
                _figure(figures, name, paths[index].name, cube[index], excess, flagged)
        totals["seconds"] = float(np.median(seconds))
        results[name] = totals
    print(
        f"\nESIS darks: {len(chosen)} frames, truth from the median of "
        f"{len(paths)}{' (centred)' if centred else ''}; "
        f"{sum(t[0].sum() for t in truths[: len(paths)])} core pixels"
    )
    print(
        f"{'detector':<36}{'core':>8}{'footprint':>11}{'events':>8}"
        f"{'false/Mpx':>11}{'s/frame':>9}"
    )
    for name, totals in results.items():
        print(
            f"{name:<36}"
            f"{totals['core'][0] / max(totals['core'][1], 1):>8.4f}"
            f"{totals['footprint'][0] / max(totals['footprint'][1], 1):>11.4f}"
            f"{totals['events'][0] / max(totals['events'][1], 1):>8.4f}"
            f"{totals['false'][0] / max(totals['false'][1], 1) * 1e6:>11.2f}"
            f"{totals['seconds']:>9.2f}"
        )
    return results


def _replacement_bias(folder, frames=None):
    """How far replaced core pixels land from the stack's value, in sigma."""
    paths = sorted((folder / "esis_darks").glob("*.fit*"))
    cube = np.array([_read(path) for path in paths])
    truths, skip = stack_truth(cube)
    errors = []
    for index in range(len(paths)) if frames is None else frames:
        _, footprint, _, median = truths[index]
        fixed = fix_pixels(CCDData(cube[index], unit="adu"))
        replaced = ((fixed.flags & np.uint16(PixelFlag.REPLACED)) != 0) & footprint
        sigma = (cube[index] - median)[~skip]
        sigma = 1.4826 * np.median(np.abs(sigma))
        errors.append((fixed.data[replaced] - median[replaced]) / sigma)
    errors = np.concatenate(errors)
    print(
        f"\nfix_pixels on the ESIS darks: {errors.size} replaced footprint pixels, "
        f"error against the stack median: median {np.median(errors):+.2f} sigma, "
        f"{np.mean(np.abs(errors) > 3) * 100:.1f} % beyond 3 sigma"
    )


def event_statistics(truths):
    """Percentiles of event size, core size, peak, wing share and width."""
    stats = {key: [] for key in EVENT_STATISTICS}
    for core, footprint, excess, _ in truths:
        labels, _ = ndimage.label(footprint, structure=np.ones((3, 3)))
        for number, box in enumerate(ndimage.find_objects(labels), 1):
            member = labels[box] == number
            heights = np.where(member, excess[box], 0.0)
            in_core = core[box] & member
            rows, cols = np.nonzero(member)
            weights = heights[member]
            stats["pixels > 3 sigma"].append(member.sum())
            stats["core pixels > 8 sigma"].append(in_core.sum())
            stats["peak (sigma)"].append(heights.max())
            stats["wing / core charge"].append(
                heights[member & ~in_core].sum() / heights[in_core].sum()
            )
            width = 0.0
            if member.sum() > 2:
                moments = np.cov(np.vstack([rows, cols]), aweights=weights)
                width = float(np.sqrt(max(np.linalg.eigvalsh(moments)[0], 0.0)))
            stats["width (px, minor axis)"].append(width)
    return {key: np.percentile(values, [10, 50, 90]) for key, values in stats.items()}


EVENT_STATISTICS = (
    "pixels > 3 sigma",
    "core pixels > 8 sigma",
    "peak (sigma)",
    "wing / core charge",
    "width (px, minor axis)",
)


def compare_simulator(folder, n_frames=12):
    """ESIS darks against simulated darks, both through the stack truth."""
    from ccdpixfix.datasets import SimulatedCamera

    paths = sorted((folder / "esis_darks").glob("*.fit*"))
    real, _ = stack_truth(np.array([_read(path) for path in paths]))
    results = {"ESIS darks": (event_statistics(real), len(paths))}
    for model in ("realistic", "sharp"):
        # The ESIS read noise and gain, no persistent defects: only the
        # events differ between the frames.
        camera = SimulatedCamera(
            (1024, 1024),
            seed=3,
            gain=ESIS_GAIN,
            read_noise=ESIS_READ_NOISE_ADU * ESIS_GAIN,
            dark_current=0.0,
            hot_fraction=0,
            warm_fraction=0,
            dead_fraction=0,
            low_response_fraction=0,
            stuck_fraction=0,
            bad_column=False,
            cosmic_rays=model,
        )
        cube = np.array(
            [camera.dark(300.0, seed=seed).data for seed in range(n_frames)],
            dtype=np.float32,
        )
        simulated, _ = stack_truth(cube)
        results[f"simulated, {model}"] = (event_statistics(simulated), n_frames)
    print("\nEvents through the stack truth: 10th / 50th / 90th percentiles")
    print(f"{'':<24}" + "".join(f"{name:>28}" for name in results))
    for key in EVENT_STATISTICS:
        cells = "".join(
            f"{' / '.join(f'{v:.3g}' for v in stats[key]):>28}"
            for stats, _ in results.values()
        )
        print(f"{key:<24}{cells}")


def kast(folder, figures=None):
    """Groups each detector flags on the Kast frames (no truth)."""
    print("\nKast blue (no truth): groups of flagged pixels (8-connected)")
    for stem in ("kast_b27", "kast_b24"):
        path = folder / "kast_blue" / f"{stem}.fits.gz"
        if not path.exists():
            print(f"{path} missing")
            continue
        # DATASEC [1:2048,1:350]: the overscan columns are no image (the
        # anchors trim them themselves, after taking the bias there)
        raw = _read(path)
        data = raw[:, :2048]
        # Kast blue: gain 1.2 e-/ADU, read noise 3.7 e- (PypeIt's values)
        for name, detect in detectors(1.2, 3.7):
            start = time.perf_counter()
            flagged = detect(data if name.startswith("ccdpixfix") else raw)
            took = time.perf_counter() - start
            _, groups = ndimage.label(flagged, structure=np.ones((3, 3)))
            print(
                f"  {stem} {name:<32}{groups:>6d} groups"
                f"{np.count_nonzero(flagged):>8d} px{took:>7.2f} s"
            )
            if figures is not None:
                _figure(figures, name, stem, data, None, flagged)


def _transient_counts(ccd):
    """Hot and cold transient pixels that `fix_pixels` (defaults) flags."""
    flags = fix_pixels(ccd).flags
    hot = np.count_nonzero(flags & np.uint16(PixelFlag.TRANSIENT_HOT))
    cold = np.count_nonzero(flags & np.uint16(PixelFlag.TRANSIENT_COLD))
    return f"{hot:>6d} hot{cold:>6d} cold"


def raw_frames(folder):
    """Frames where nearly every transient flag would be a false one.

    No truth: the raw Kast dome flat (its dust and low-response pixels are
    the map's business), ccdproc's raw test frame ``a8280271`` (a dark
    column beside its overscan) and the Seestar frames, as they are (Bayer
    mosaics) and binned 2 x 2 into grey frames of FWHM about 1 px (a real
    undersampled star field: 10 s exposures have few hits, but the raw
    frames keep their hot pixels).
    """
    print("\nRaw and undersampled frames (no truth): transient pixels of fix_pixels")
    flat = folder / "kast_blue" / "kast_b11.fits.gz"
    if flat.exists():
        print(f"  kast_b11 (dome flat)       {_transient_counts(_ccd(flat))}")
    import ccdproc

    test_frame = Path(ccdproc.__file__).parent / "tests" / "data" / "a8280271.fits"
    if test_frame.exists():
        ccd = CCDData.read(test_frame, unit="adu")
        print(f"  ccdproc a8280271           {_transient_counts(ccd)}")
    for path in sorted((folder / "seestar_ngc7023").glob("*.fit*")):
        ccd = _ccd(path)
        data = np.asarray(ccd.data, dtype=np.float64)
        grey = data[0::2, 0::2] + data[1::2, 0::2] + data[0::2, 1::2] + data[1::2, 1::2]
        stem = path.name.split("_")[-1].split(".")[0]
        print(
            f"  seestar {stem}  mosaic {_transient_counts(ccd)}"
            f"   binned 2x2 {_transient_counts(CCDData(grey, unit='adu'))}"
        )


def _ccd(path):
    with fits.open(path) as hdus:
        return CCDData(hdus[0].data, unit="adu", meta=hdus[0].header)


def _figure(folder, name, frame_name, data, excess, flagged):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    labels, n = ndimage.label(flagged, structure=np.ones((3, 3)))
    sizes = ndimage.sum(flagged, labels, range(1, n + 1)) if n else []
    order = np.argsort(sizes)[::-1][:6]
    fig, axes = plt.subplots(2, 6, figsize=(18, 6))
    for column, label in enumerate(order):
        rows, cols = np.nonzero(labels == label + 1)
        y, x = int(rows.mean()), int(cols.mean())
        box = (
            slice(max(y - 12, 0), y + 13),
            slice(max(x - 12, 0), x + 13),
        )
        image = data[box]
        axes[0, column].imshow(
            image, origin="lower", cmap="gray", vmax=np.percentile(image, 99)
        )
        axes[0, column].contour(flagged[box], levels=[0.5], colors="r", linewidths=0.6)
        shown = excess[box] if excess is not None else image - np.median(image)
        axes[1, column].imshow(
            np.arcsinh(shown / 3), origin="lower", cmap="viridis", vmin=0
        )
        axes[1, column].contour(flagged[box], levels=[0.5], colors="r", linewidths=0.6)
        axes[0, column].set_title(f"({y}, {x})", fontsize=8)
    safe = "".join(c if c.isalnum() else "_" for c in name)
    fig.suptitle(f"{frame_name}: {name} (red: flagged)")
    fig.savefig(folder / f"{frame_name}_{safe}.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
    parser.add_argument("folder", nargs="?", type=Path, default=default)
    parser.add_argument("--figures", type=Path, default=None)
    parser.add_argument(
        "--frames", type=int, nargs="*", default=None, help="ESIS frame indices"
    )
    parser.add_argument("--skip-kast", action="store_true")
    parser.add_argument(
        "--skip-raw",
        action="store_true",
        help="leave out the raw flat, ccdproc's raw frame and the Seestar frames",
    )
    parser.add_argument(
        "--engines",
        default=None,
        help=f"comma-separated rows of ccdpixfix engines, from {','.join(ENGINES)}",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="with --engines: calibrate the learned thresholds on the first half "
        "of the ESIS frames, score on the second half",
    )
    parser.add_argument(
        "--centred-truth",
        action="store_true",
        help="score against a truth centred on each frame's own offset, with "
        "a clipped scatter (not make_truth.py's)",
    )
    parser.add_argument(
        "--compare-simulator",
        action="store_true",
        help="only compare ESIS events with the simulator's",
    )
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.compare_simulator:
            compare_simulator(args.folder)
            return
        if args.engines is not None:
            names = [name.strip() for name in args.engines.split(",") if name.strip()]
            frames, calibrated = args.frames, None
            if args.calibrate:
                n = len(sorted((args.folder / "esis_darks").glob("*.fit*")))
                calibrated = calibrate(args.folder, names, list(range(n // 2)))
                frames = list(range(n // 2, n))
            rows = engines(names, calibrated)
            esis(args.folder, args.figures, frames, rows, args.centred_truth)
            return
        esis(args.folder, args.figures, args.frames, centred=args.centred_truth)
        _replacement_bias(args.folder, args.frames)
        if not args.skip_kast:
            kast(args.folder, args.figures)
        if not args.skip_raw:
            raw_frames(args.folder)


if __name__ == "__main__":
    main()
