"""Many files at once: each read, fixed and written safely, failures isolated."""

import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from astropy.io import fits

from .flags import PixelFlag
from .images import is_image_name, read_image, sidecar_path, write_image, write_sidecar
from .io import fixed_hdulist, frame_from_hdu, image_hdu_index, write_hdulist_atomic
from .pipeline import fix_pixels

__all__ = ["fix_file", "fix_files", "flag_counts", "output_path"]

# The map of the worker processes, sent once per process, not once per file.
_WORKER_BPM = None


def output_path(path, output_dir):
    """Where the fixed version of ``path`` goes: ``output_dir/<same name>``."""
    return Path(output_dir) / Path(path).name


def flag_counts(flags):
    """Number of pixels carrying each `PixelFlag`, by name (zeros left out)."""
    flags = np.asarray(flags)
    counts = {}
    for flag in PixelFlag:
        count = int(np.count_nonzero(flags & np.uint16(flag)))
        if count:
            counts[flag.name] = count
    return counts


def _one_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _failed_result(path, output_dir, error=None):
    """The result of a file, as it stands until it is fixed."""
    return {
        "input": os.fspath(path),
        "output": os.fspath(output_path(path, output_dir)),
        "status": "error",
        "error": error,
        "counts": {},
        "warnings": [],
        "seconds": 0.0,
    }


def fix_file(
    path,
    bpm,
    output_dir,
    *,
    overwrite=False,
    skip_existing=False,
    hdu=None,
    _clash=False,
    **options,
):
    """Fix one FITS file and write it to ``output_dir`` under the same name.

    Parameters
    ----------
    path : str or path-like
        The input file; it is only read.
    bpm : BadPixelMap or None
        The detector's map.
    output_dir : str or path-like
        Directory of the output (must exist).
    overwrite : bool, optional
        Replace an existing output.
    skip_existing : bool, optional
        Leave an existing output as it is and report the file as
        ``"skipped"`` (to resume an interrupted batch).
    hdu : int or str, optional
        Index or EXTNAME of the image; by default the first image.
    **options
        Passed to `fix_pixels` (``transients``, ``replace``, ``threshold``...).

    Returns
    -------
    dict
        ``input``, ``output``, ``status`` (``"ok"``, ``"skipped"`` or
        ``"error"``), ``error``
        (one line, or None), ``counts`` (pixels per flag), ``warnings`` and
        ``seconds``. Never raises for a bad input file.
    """
    start = time.perf_counter()
    target = output_path(path, output_dir)
    result = _failed_result(path, output_dir)
    if _clash:
        result["error"] = (
            f"another input is also named {target.name}; its output would be "
            "replaced: rename one of them"
        )
        return result
    if skip_existing and not overwrite and target.exists():
        result["status"] = "skipped"
        return result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result["counts"] = _fix_and_write(
                path, target, bpm, overwrite, hdu, options
            )
            result["status"] = "ok"
        except Exception as error:  # a bad file must not stop the batch
            result["error"] = _one_line(error)
    messages = sorted({_one_line(w.message) for w in caught})
    if result["error"] and any("truncated" in text for text in messages):
        result["error"] = f"truncated file ({result['error']})"
    else:
        result["warnings"] = messages
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _fix_and_write(path, target, bpm, overwrite, hdu, options):
    if not Path(path).is_file():
        raise ValueError("no such file")
    if target.resolve() == Path(path).resolve():
        raise ValueError(
            "the output would replace the input; choose another output directory"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    if is_image_name(path):
        return _fix_image(path, target, bpm, overwrite, options)
    with fits.open(path, memmap=False) as hdulist:
        index = image_hdu_index(hdulist, hdu)
        frame = frame_from_hdu(hdulist[index])
        fixed = fix_pixels(frame, bpm, **options)
        # Checksums only where the input had them (then they are updated):
        # every other card stays as it was.
        checksum = "CHECKSUM" in hdulist[index].header
        write_hdulist_atomic(
            fixed_hdulist(hdulist, index, fixed),
            target,
            overwrite=overwrite,
            checksum=checksum,
        )
    return flag_counts(fixed.flags)


def _fix_image(path, target, bpm, overwrite, options):
    """A TIFF or PNG file: the same format out, the flags in a FITS sidecar."""
    sidecar = sidecar_path(target)
    if sidecar.exists() and not overwrite:
        raise FileExistsError(f"{sidecar} exists; pass --overwrite to replace it")
    fixed = fix_pixels(read_image(path), bpm, **options)
    write_sidecar(fixed, sidecar, overwrite=overwrite)
    write_image(fixed, target, overwrite=overwrite)
    return flag_counts(fixed.flags)


def _start_worker(bpm):
    global _WORKER_BPM
    _WORKER_BPM = bpm


def _fix_in_worker(path, output_dir, options):
    return fix_file(path, _WORKER_BPM, output_dir, **options)


def fix_files(paths, bpm, output_dir, *, jobs=1, client=None, progress=None, **options):
    """Fix many files, locally or on a Dask cluster; one result per file.

    Parameters
    ----------
    paths : list of str or path-like
        Input files.
    bpm : BadPixelMap or None
        The detector's map, sent once to each process or worker.
    output_dir : str or path-like
        Created if missing. With a cluster, a directory that the workers see
        at the same path (a shared filesystem).
    jobs : int, optional
        Number of local processes (without ``client``); each holds one frame
        at a time.
    client : `distributed.Client`, optional
        Run one task per file on this cluster: workers read and write the
        files themselves; a task whose worker dies is run again elsewhere.
    progress : callable, optional
        Called with each result as it completes.
    **options
        As for `fix_file` (``overwrite``, ``skip_existing``, ``hdu`` and the
        options of `fix_pixels`).

    Returns
    -------
    list of dict
        The results of `fix_file`, in the order of ``paths``.

    Raises
    ------
    ValueError
        If ``jobs`` is less than 1.
    """
    if int(jobs) < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    results = [None] * len(paths)

    def done(position, result):
        results[position] = result
        if progress is not None:
            progress(result)

    # Two inputs with one name would write one output: the later ones fail.
    seen, unique = set(), []
    for position, path in enumerate(paths):
        name = Path(path).name
        if name in seen:
            result = fix_file(path, bpm, output_dir, **options, _clash=True)
            done(position, result)
        else:
            seen.add(name)
            unique.append(position)
    positions = unique
    paths_left = [paths[position] for position in positions]

    def done_left(index, result):
        done(positions[index], result)

    try:
        if client is not None:
            _run_on_cluster(client, paths_left, bpm, output_dir, options, done_left)
        elif int(jobs) == 1 or len(paths_left) <= 1:
            for index, path in enumerate(paths_left):
                done_left(index, fix_file(path, bpm, output_dir, **options))
        else:
            _run_in_processes(
                int(jobs), paths_left, bpm, output_dir, options, done_left
            )
    finally:
        _remove_stale_temporaries(paths_left, output_dir)
    return results


def _run_in_processes(jobs, paths, bpm, output_dir, options, done):
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_start_worker, initargs=(bpm,)
    ) as pool:
        futures = {
            pool.submit(_fix_in_worker, path, output_dir, options): position
            for position, path in enumerate(paths)
        }
        try:
            for future in as_completed(futures):
                done(futures[future], future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _fix_task(path, bpm, output_dir, options):
    """One file on a Dask worker (module level, so that it pickles by name)."""
    return fix_file(path, bpm, output_dir, **options)


def _run_on_cluster(client, paths, bpm, output_dir, options, done):
    """One task per file; the map scattered once to every worker.

    Outputs that exist before the batch are decided here, once: a task run
    again after its worker died may then replace what its first run wrote.
    """
    from distributed import as_completed as completed

    overwrite = options.get("overwrite", False)
    submitted = {}
    shared = client.scatter(bpm, broadcast=True) if bpm is not None else None
    task_options = {**options, "overwrite": True, "skip_existing": False}
    for position, path in enumerate(paths):
        if not overwrite and output_path(path, output_dir).exists():
            done(position, fix_file(path, bpm, output_dir, **options))
            continue
        future = client.submit(
            _fix_task,
            os.fspath(path),
            shared,
            os.fspath(output_dir),
            task_options,
            pure=False,
            retries=3,
            key=f"ccdpixfix-fix-{position}-{os.getpid()}-{time.time_ns()}",
        )
        submitted[future] = position
    for future in completed(list(submitted)):
        try:
            result = future.result()
        except Exception as error:  # a task that failed on every retry
            result = _failed_result(
                paths[submitted[future]], output_dir, _one_line(error)
            )
        done(submitted[future], result)


def _remove_stale_temporaries(paths, output_dir):
    """Delete temporary files a killed process of this batch left behind."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return
    for path in paths:
        for stale in directory.glob(f".{Path(path).name}.*.tmp*"):
            stale.unlink(missing_ok=True)
