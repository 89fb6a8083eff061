"""Speed and memory of ccdpixfix against the tools astronomers use today.

Three tables, all measured in the same run on the same machine:

1. One 2048 x 2048 float32 frame with an uncertainty plane and a bad-pixel
   map: ``fix_pixels`` (compiled engine, and the numpy engine), astroscrappy
   (L.A.Cosmic in C), ``ccdproc.cosmicray_median``,
   ``ccdproc.cosmicray_lacosmic``, scipy's 3x3 and 5x5 median filters and a
   plain copy. Time is the median of several runs; "ratio" is the time over
   that of ``fix_pixels`` (above 1: slower than ccdpixfix); peak memory is
   what numpy allocated during one call (tracemalloc) in units of the
   frame's size.
2. ``fix_pixels`` at growing frame sizes: time per megapixel stays flat if
   the cost is linear.
3. ``make_bad_pixel_map`` on ten 2048 x 2048 darks against
   ``ccdproc.combine(..., method="median")`` on the same darks, with peak
   memory in units of one dark and of the stack of darks.

Run with::

    python benchmarks/bench_speed.py [--sizes 1024 2048 4096] [--repeat 5]

astroscrappy is optional (``pip install astroscrappy``); without it its row
says so.
"""

import argparse
import functools
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np
from _stamp import stamp
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyWarning
from scipy import ndimage

from ccdpixfix import fix_pixels, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.medians import engine


def _median_time(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_bytes(function):
    """Peak memory numpy and Python allocated during one call."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _frame(size, seed=2):
    """A float32 frame with an uncertainty plane, and the camera's map."""
    camera = SimulatedCamera((size, size), seed=1)
    frame, truth = camera.science(seed=seed)
    ccd = CCDData(
        frame.data.astype(np.float32),
        unit="adu",
        meta=frame.meta,
        uncertainty=StdDevUncertainty(truth["sigma"].astype(np.float32)),
    )
    bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
    return ccd, bpm


def _with_numpy_engine(function):
    def run():
        os.environ["CCDPIXFIX_ENGINE"] = "numpy"
        try:
            return function()
        finally:
            del os.environ["CCDPIXFIX_ENGINE"]

    return run


def _anchors(ccd, bpm):
    """(name, function, runs) of every method compared on one frame."""
    import ccdproc

    data = ccd.data
    sigma = ccd.uncertainty.array
    mask = bpm.flags != 0
    methods = [
        ("ccdpixfix.fix_pixels", lambda: fix_pixels(ccd, bpm), None),
        (
            "ccdpixfix.fix_pixels (numpy engine)",
            _with_numpy_engine(lambda: fix_pixels(ccd, bpm)),
            1,
        ),
    ]
    try:
        import astroscrappy

        methods.append(
            (
                "astroscrappy.detect_cosmics",
                lambda: astroscrappy.detect_cosmics(
                    data, inmask=mask, invar=sigma**2, gain=1.0, readnoise=5.0
                ),
                3,
            )
        )
    except ImportError:
        methods.append(("astroscrappy.detect_cosmics", None, 0))
    masked = CCDData(data, unit="adu", mask=mask, uncertainty=ccd.uncertainty)
    methods += [
        (
            "ccdproc.cosmicray_median",
            lambda: ccdproc.cosmicray_median(masked, error_image=sigma, thresh=5),
            3,
        ),
        (
            "ccdproc.cosmicray_lacosmic",
            lambda: ccdproc.cosmicray_lacosmic(masked, gain_apply=False),
            3,
        ),
        ("scipy median_filter 3x3", lambda: ndimage.median_filter(data, 3), None),
        ("scipy median_filter 5x5", lambda: ndimage.median_filter(data, 5), 3),
        ("numpy copy", lambda: data.copy(), None),
    ]
    return methods


def speed_table(size, repeat):
    ccd, bpm = _frame(size)
    fix_pixels(ccd, bpm)  # compiles or loads the kernels
    frame_bytes = ccd.data.nbytes
    print(
        f"\n{size} x {size} float32 frame with an uncertainty plane and a map "
        f"(engine: {engine()})"
    )
    print(f"{'method':<38}{'time s':>9}{'ratio':>9}{'peak / frame':>14}")
    reference = None
    for name, function, runs in _anchors(ccd, bpm):
        if function is None:
            print(f"{name:<38}{'not installed':>32}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            seconds = _median_time(function, runs or repeat)
            peak = _peak_bytes(function) / frame_bytes
        reference = reference or seconds
        print(f"{name:<38}{seconds:>9.3f}{seconds / reference:>9.2f}{peak:>14.2f}")


def scaling_table(sizes, repeat):
    print("\nfix_pixels by frame size (linear cost: flat time per megapixel)")
    print(f"{'size':<14}{'time s':>9}{'s / Mpx':>10}{'peak / frame':>14}")
    for size in sizes:
        ccd, bpm = _frame(size)
        run = functools.partial(fix_pixels, ccd, bpm)
        run()
        seconds = _median_time(run, repeat)
        peak = _peak_bytes(run) / ccd.data.nbytes
        megapixels = size * size / 1e6
        print(
            f"{f'{size} x {size}':<14}{seconds:>9.3f}{seconds / megapixels:>10.4f}"
            f"{peak:>14.2f}"
        )


def map_table(size, n_darks, repeat):
    import ccdproc

    camera = SimulatedCamera((size, size), seed=3)
    darks = [camera.dark(300.0, seed=s) for s in range(n_darks)]
    frame_bytes = darks[0].data.nbytes
    make_bad_pixel_map(darks[:3])  # compiles or loads the kernels
    print(
        f"\nbad-pixel map from {n_darks} darks of {size} x {size} "
        f"({darks[0].data.dtype}); peak in units of one dark"
    )
    print(f"{'method':<38}{'time s':>9}{'ratio':>9}{'peak / dark':>13}")
    reference = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for name, function in (
            ("ccdpixfix.make_bad_pixel_map", lambda: make_bad_pixel_map(darks)),
            (
                "ccdproc.combine(method='median')",
                lambda: ccdproc.combine(darks, method="median"),
            ),
        ):
            seconds = _median_time(function, repeat)
            peak = _peak_bytes(function) / frame_bytes
            reference = reference or seconds
            print(f"{name:<38}{seconds:>9.3f}{seconds / reference:>9.2f}{peak:>13.2f}")
    print(f"(the stack of darks itself: {n_darks} darks)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--darks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    speed_table(args.size, args.repeat)
    scaling_table(args.sizes, max(1, args.repeat // 2))
    map_table(args.size, args.darks, max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
