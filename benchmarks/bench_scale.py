"""Batches on a Dask LocalCluster: frames per second by number of workers.

A batch of simulated 2048 x 2048 frames is fixed with ``fix_files`` locally
(one process) and on clusters of 1, 2 and 4 single-threaded workers; the
table gives frames per second, the speed-up over one worker and the peak
memory numpy allocated per worker (tracemalloc).

Run with::

    python benchmarks/bench_scale.py [--frames 8] [--size 2048]
"""

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import distributed
from _stamp import stamp

from ccdpixfix import fix_files, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera


def _start_tracing():
    tracemalloc.start()


def _peak_traced_mib():
    """Peak memory numpy and Python allocated since tracing began."""
    return tracemalloc.get_traced_memory()[1] / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        camera = SimulatedCamera((args.size, args.size), seed=1)
        bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
        paths = []
        for index in range(args.frames):
            path = work / f"frame{index}.fits"
            camera.science(seed=100 + index)[0].write(path)
            paths.append(path)
        _start_tracing()
        start = time.perf_counter()
        fix_files(paths, bpm, work / "local")
        local = time.perf_counter() - start
        local_peak = _peak_traced_mib()
        tracemalloc.stop()
        print(f"{'run':<22}{'frames/s':>10}{'speed-up':>10}{'peak MiB/worker':>17}")
        print(
            f"{'local, 1 process':<22}{args.frames / local:>10.2f}{'-':>10}"
            f"{local_peak:>17.0f}"
        )
        first = None
        for workers in args.workers:
            with (
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=50,
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(_start_tracing)
                start = time.perf_counter()
                results = fix_files(
                    paths, bpm, work / f"cluster{workers}", client=client
                )
                seconds = time.perf_counter() - start
                assert all(r["status"] == "ok" for r in results)
                peak = max(client.run(_peak_traced_mib).values())
            rate = args.frames / seconds
            first = first or rate
            print(
                f"{f'cluster, {workers} worker(s)':<22}{rate:>10.2f}"
                f"{rate / first:>10.2f}{peak:>17.0f}"
            )
    print(f"{args.frames} frames of {args.size} x {args.size}")


if __name__ == "__main__":
    main()
