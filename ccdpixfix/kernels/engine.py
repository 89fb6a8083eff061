"""The engine switch: compiled (numba) kernels, or their numpy twins.

`engine` says which runs; the helpers here prepare arrays for the compiled
kernels (``_compiled``) and run them over blocks of rows in threads. Only
the modules of `ccdpixfix.kernels` use them.
"""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

try:
    from . import _compiled
except ImportError:  # numba is missing or broken: the numpy engine does it all
    _compiled = None

__all__ = [
    "COMPILED_TYPES",
    "by_point_blocks",
    "by_row_blocks",
    "compiled_input",
    "compiled_mask",
    "engine",
    "float_type",
    "needs_compiling",
]

# Data types the compiled kernels read directly; others are cast first.
COMPILED_TYPES = {np.dtype(t) for t in ("u1", "u2", "i2", "i4", "f4", "f8")}
# Below this many pixels a frame is done in one thread.
_PARALLEL_PIXELS = 1 << 18
# The fewest points a thread takes in `by_point_blocks`.
_BLOCK_POINTS = 4096


def engine():
    """Name of the engine that runs the kernels: "numba" or "numpy".

    numba when it is installed (a dependency of ccdpixfix), unless the
    environment variable ``CCDPIXFIX_ENGINE`` is ``numpy``. Both engines give
    identical results; numba is 10 to 50 times faster and needs no
    temporary neighbour stacks.

    Examples
    --------
    >>> from ccdpixfix.kernels import engine
    >>> engine() in ("numba", "numpy")
    True
    """
    chosen = os.environ.get("CCDPIXFIX_ENGINE", "").strip().lower()
    if chosen not in ("", "numba", "numpy"):
        raise ValueError(f"CCDPIXFIX_ENGINE must be 'numba' or 'numpy', not {chosen!r}")
    if _compiled is None or chosen == "numpy":
        return "numpy"
    return "numba"


def needs_compiling():
    """Whether the compiled kernels have no cache yet (the first call compiles).

    numba caches them beside the package (``__pycache__``); where that is
    not writable it compiles them again in every new process.
    """
    if engine() != "numba":
        return False
    cache = Path(_compiled.__file__).parent / "__pycache__"
    return not any(cache.glob("_compiled*.nbi"))


def float_type(data):
    """Working float type: float64 for float64 data (range, precision), else float32."""
    dtype = np.asarray(data).dtype
    wide = dtype.kind == "f" and dtype.itemsize == 8  # either byte order
    return np.dtype(np.float64 if wide else np.float32)


def compiled_input(data):
    """``data`` as the compiled kernels read it: native, C-ordered, common type."""
    data = np.asarray(data)
    if data.dtype not in COMPILED_TYPES:
        data = data.astype(float_type(data))
    return np.ascontiguousarray(data)


def compiled_mask(bad, shape):
    """``bad`` as the compiled kernels read it: C-ordered bool, all False for None."""
    if bad is None:
        return np.zeros(shape, dtype=bool)
    return np.ascontiguousarray(bad, dtype=bool)


_POOL = None


def _threads():
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 16))
    except AttributeError:  # not Linux
        return max(1, min(os.cpu_count() or 1, 16))


def _forget_pool():
    global _POOL
    _POOL = None


# A process forked from one that used the pool inherits it without its
# threads: the first kernel it hands a block to would wait for ever (a
# night's map made in the command line's process, then its frames fixed in
# forked workers). The child makes its own.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(n_blocks):
    """The threads that run blocks of a kernel, at least ``n_blocks`` of them."""
    global _POOL
    if _POOL is None or _POOL._max_workers < n_blocks:
        _POOL = ThreadPoolExecutor(max_workers=n_blocks)
    return _POOL


def by_row_blocks(kernel, shape, *arguments):
    """Run ``kernel(*arguments, y0, y1)`` over blocks of rows in threads.

    The kernels release the GIL and write disjoint rows of their outputs.
    """
    ny, nx = shape
    n_blocks = min(_threads(), ny) if ny * nx >= _PARALLEL_PIXELS else 1
    if n_blocks <= 1:
        kernel(*arguments, 0, ny)
        return
    edges = np.linspace(0, ny, n_blocks + 1).astype(int)
    futures = [
        _pool(n_blocks).submit(kernel, *arguments, int(y0), int(y1))
        for y0, y1 in itertools.pairwise(edges)
    ]
    for future in futures:
        future.result()


def by_point_blocks(kernel, *arguments, per_point):
    """Run ``kernel(*arguments)`` over blocks of points in threads.

    ``per_point``: those of the ``arguments`` (the arrays themselves) that
    hold one entry per point, inputs and outputs alike; each block gets its
    slice of them. The kernels release the GIL and write only their own
    points' outputs. Below 4096 points per thread one call does all:
    handing a block to a thread costs about as much as 1000 points.

    Returns
    -------
    list
        What the kernel returned for each block, in order.
    """
    n_points = len(per_point[0])
    n_blocks = min(_threads(), n_points // _BLOCK_POINTS)
    if n_blocks <= 1:
        return [kernel(*arguments)]
    edges = np.linspace(0, n_points, n_blocks + 1).astype(int)

    def block(start, stop):
        return [
            argument[start:stop]
            if any(argument is points for points in per_point)
            else argument
            for argument in arguments
        ]

    futures = [
        _pool(n_blocks).submit(kernel, *block(start, stop))
        for start, stop in itertools.pairwise(edges)
    ]
    return [future.result() for future in futures]
