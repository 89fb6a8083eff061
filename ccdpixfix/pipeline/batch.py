"""Many files at once: each read, fixed and written safely, failures isolated.

Every output goes through one set of rules (`ccdpixfix.io.OutputRules`):
nothing existing is replaced unless asked, no input of the run is ever
written, files appear whole or not at all, and a run removes only its own
temporaries. Every wait on another process or a cluster is bounded.
"""

import contextlib
import dataclasses
import errno
import os
import signal
import threading
import time
import warnings
from concurrent.futures import CancelledError, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..flags import PixelFlag
from ..io.fits import (
    OUTPUT_EXTENSIONS,
    OutputRules,
    check_compressed_stream,
    check_image_size,
    check_planes_belong,
    companion_uncertainty,
    fixed_hdulist,
    frame_from_hdu,
    image_hdu_index,
    open_checked,
    remove_active_temporaries,
    write_hdulist_atomic,
)
from ..io.images import (
    is_image_name,
    read_image,
    sidecar_path,
    write_image,
    write_sidecar,
)
from .core import fix_pixels
from .options import FixOptions

__all__ = [
    "Terminated",
    "fix_file",
    "fix_files",
    "flag_counts",
    "output_path",
    "outputs_of",
]

# The map of the worker processes, sent once per process, not once per file.
_WORKER_BPM = None
# A worker whose parent is gone notices it within this many seconds.
_PARENT_POLL_SECONDS = 0.5
# After SIGTERM, workers get this long to remove their temporaries.
_WORKER_GRACE_SECONDS = 10.0
# Cluster waits are cut into slices this long, to look at the cluster between.
_CLUSTER_POLL_SECONDS = 1.0
# Seconds between the cancel marker and the look at what was written: far
# longer than a worker takes from its look for the marker to its rename.
_MARKER_GRACE_SECONDS = 2.0
# A call to cancel tasks on a cluster that may be gone gets this long.
_CANCEL_SECONDS = 5.0
# Times the map is sent again when the workers that held it were all lost
# while the scheduler lives on (it then drops scattered data for good).
_MAP_RESENDS = 3
_DIED = (
    "the process fixing it died (killed, perhaps for lack of memory); it died "
    "again when run alone"
)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) received: unwind like Ctrl-C, removing temporaries."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def output_path(path, output_dir):
    """Where the fixed version of ``path`` goes: ``output_dir/<same name>``."""
    return Path(output_dir) / Path(path).name


def outputs_of(path, output_dir):
    """Every file the fixing of ``path`` writes: the frame, and a sidecar."""
    target = output_path(path, output_dir)
    return [target, sidecar_path(target)] if is_image_name(path) else [target]


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
    if isinstance(error, OSError) and error.strerror:
        # "permission denied: NAME", not "[Errno 13] Permission denied: 'NAME'"
        text = error.strerror[:1].lower() + error.strerror[1:]
        return f"{text}: {error.filename}" if error.filename else text
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


def check_options(options):
    """Raise at once for an option `fix_pixels` does not take or a bad value.

    Checked once before a batch, so that a misspelt option (a TypeError
    naming it and the closest option) or a value out of range (a
    ValueError) fails at once instead of failing every file. ``cfa`` and
    ``add_keyword``, arguments of `fix_pixels` rather than options of its
    steps, are checked with each frame.
    """
    arguments = ("cfa", "add_keyword")
    FixOptions.from_keywords(
        **{name: value for name, value in options.items() if name not in arguments}
    )


@dataclasses.dataclass(frozen=True)
class FileSettings:
    """How a file is read and written: which image, which planes, compressed."""

    hdu: int | str | None = None
    planes: tuple = OUTPUT_EXTENSIONS
    compress: bool = False

    def __post_init__(self):
        unknown = set(self.planes) - set(OUTPUT_EXTENSIONS)
        if unknown:
            raise ValueError(
                f"planes must be among {OUTPUT_EXTENSIONS}, got {sorted(unknown)}"
            )


def fix_file(
    path,
    bpm,
    output_dir,
    *,
    overwrite=False,
    skip_existing=False,
    hdu=None,
    planes=OUTPUT_EXTENSIONS,
    compress=False,
    **options,
):
    """Fix one FITS, TIFF or PNG file and write it to ``output_dir``.

    Parameters
    ----------
    path : str or path-like
        The input file; it is only read, and never written over.
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
    planes : tuple of str, optional
        Extensions written beside a FITS image, among ``MASK``, ``UNCERT``
        and ``FLAGS`` (all by default; a TIFF or PNG sidecar has them all).
    compress : bool, optional
        Write the FITS image and planes tile-compressed, losslessly.
    **options
        Passed to `fix_pixels` (``transients``, ``replace``, ``threshold``...).

    Returns
    -------
    dict
        ``input``, ``output``, ``status`` (``"ok"``, ``"skipped"`` or
        ``"error"``), ``error`` (one line, or None), ``counts`` (pixels per
        flag), ``warnings`` and ``seconds``. Never raises for a bad input
        file.
    """
    check_options(options)
    rules = OutputRules(overwrite=overwrite).protecting([path])
    settings = FileSettings(hdu, tuple(planes), compress)
    return _fix_one(path, bpm, output_dir, rules, skip_existing, settings, options)


def _fix_one(path, bpm, output_dir, rules, skip_existing, settings, options):
    """`fix_file` under a run's rules."""
    start = time.perf_counter()
    target = output_path(path, output_dir)
    result = _failed_result(path, output_dir)
    if skip_existing and not rules.overwrite and os.path.lexists(target):
        if _complete(target):
            result["status"] = "skipped"
        else:
            result["error"] = (
                f"{target} exists but is not a whole output (an interrupted "
                "copy, or an image without its sidecar of flags?): not taken as "
                "done; remove it, or give --overwrite"
            )
        return result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result["counts"] = _fix_and_write(
                path, target, bpm, rules, settings, options
            )
            result["status"] = "ok"
        except MemoryError as error:
            # Checked from the header before reading, or met while fixing.
            result["error"] = str(error) or "not enough memory to fix this frame"
            result["status"] = "error"
        except OSError as error:
            result["error"] = os_error_line(error, target)
        except Exception as error:  # a bad file must not stop the batch
            result["error"] = _one_line(error)
    messages = sorted({_one_line(w.message) for w in caught})
    truncated = any("truncated" in text for text in messages)
    if result["error"] and truncated and "memory" not in result["error"]:
        result["error"] = f"truncated file ({result['error']})"
    else:
        result["warnings"] = messages
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _complete(path):
    """Whether an existing output is whole, to be taken as done.

    A FITS file of whole 2880-byte blocks that starts as one, that astropy
    opens without finding it cut short and that holds an image; a
    compressed one whose stream is whole (`check_compressed_stream`: a
    copy cut short had passed as done); a TIFF or PNG file not empty, with
    its sidecar of flags whole (without it the flags would be lost).
    """
    try:
        size = os.path.getsize(path)
        if is_image_name(path):
            return size > 0 and _complete(sidecar_path(path))
        compressed = str(path).endswith((".gz", ".bz2", ".zip", ".Z"))
        if not compressed:
            with open(path, "rb") as stream:
                if size % 2880 or stream.read(9) != b"SIMPLE  =":
                    return False
        check_compressed_stream(path)  # a compressed copy cut short fails here
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path) as hdulist:
                image_hdu_index(hdulist)
    except Exception:  # any failure to read it whole: not done
        return False
    # astropy notes a file cut short as a warning
    cut = any("truncated" in str(warning.message) for warning in caught)
    return size > 0 and not cut


def os_error_line(error, target):
    """One line for an error of the system, in words a user can act on."""
    full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if full or "requested and" in str(error):
        return f"cannot write {target}: no space left on the device (disk full?)"
    return _one_line(error)


def _fix_and_write(path, target, bpm, rules, settings, options):
    if not Path(path).is_file():
        # A FIFO or a device named like a frame would block the reader.
        exists = os.path.exists(path)
        raise ValueError("not a regular file" if exists else "no such file")
    if target.resolve() == Path(path).resolve():
        raise ValueError(
            "the output would replace the input; choose another output directory"
        )
    if is_image_name(path):
        return _fix_image(path, target, bpm, rules, options)
    rules.check(target)
    # A damaged byte in a compressed frame gives wrong pixels without a word
    # from astropy, which stops before the stream's checksum: the stream is
    # read whole first, and what it holds is what astropy reads.
    with open_checked(path, memmap=False) as hdulist:
        index = image_hdu_index(hdulist, settings.hdu)
        check_planes_belong(hdulist, index)  # before the work, not after
        check_image_size(hdulist[index])
        frame = frame_from_hdu(hdulist[index])
        companion = companion_uncertainty(hdulist, index)
        if companion is not None:
            frame.uncertainty, uncertainty_at = companion
            name = hdulist[uncertainty_at].name
            frame.meta.add_history(f"ccdpixfix: uncertainty from extension {name}")
        fixed = fix_pixels(frame, bpm, **options)
        # Checksums only where the input had them (then they are updated):
        # every other card stays as it was.
        write_hdulist_atomic(
            fixed_hdulist(
                hdulist,
                index,
                fixed,
                planes=settings.planes,
                compress=settings.compress,
                uncertainty_at=None if companion is None else uncertainty_at,
            ),
            target,
            checksum=_has_checksum(hdulist[index]),
            rules=rules,
        )
    return flag_counts(fixed.flags)


def _has_checksum(hdu):
    """Whether an image HDU carried CHECKSUM (a compressed one, in its table)."""
    if "CHECKSUM" in hdu.header:
        return True
    # astropy shows a compressed image's header without the cards of the
    # table that holds it, where CHECKSUM lives; it has no public handle.
    table = getattr(hdu, "_bintable", None)
    return table is not None and "CHECKSUM" in table.header


def _fix_image(path, target, bpm, rules, options):
    """A TIFF or PNG file: the same format out, the flags in a FITS sidecar."""
    sidecar = sidecar_path(target)
    rules.check(target)
    rules.check(sidecar)
    fixed = fix_pixels(read_image(path), bpm, **options)
    write_sidecar(fixed, sidecar, rules=rules)
    write_image(fixed, target, rules=rules)
    return flag_counts(fixed.flags)


def fix_files(
    paths,
    bpm,
    output_dir,
    *,
    jobs=1,
    client=None,
    progress=None,
    overwrite=False,
    skip_existing=False,
    hdu=None,
    planes=OUTPUT_EXTENSIONS,
    compress=False,
    protect=(),
    cluster_timeout=60.0,
    **options,
):
    """Fix many files, locally or on a Dask cluster; one result per file.

    Parameters
    ----------
    paths : list of str or path-like
        Input files; none of them is ever written over.
    bpm : BadPixelMap or None
        The detector's map, sent once to each process or worker.
    output_dir : str or path-like
        Created if missing. With a cluster, a directory that the workers see
        at the same path (a shared filesystem); paths are made absolute here.
    jobs : int, optional
        Number of local processes (without ``client``); each holds one frame
        at a time. A file whose process dies (killed, out of memory) is run
        again alone, and reported if it dies again.
    client : `distributed.Client`, optional
        Run one task per file on this cluster: workers read and write the
        files themselves; a task whose worker dies is run again elsewhere.
    progress : callable, optional
        Called with each result as it completes.
    overwrite, skip_existing, hdu, planes, compress
        As for `fix_file`.
    protect : list of path-like, optional
        Other files never to write over (the map's file, say).
    cluster_timeout : float, optional
        Seconds the batch waits for a cluster with no worker, or one it
        lost, before the files left are reported as failed.
    **options
        Options of `fix_pixels`; an unknown name raises at once.

    Returns
    -------
    list of dict
        The results of `fix_file`, in the order of ``paths``.

    Raises
    ------
    ValueError
        If ``jobs`` is less than 1, or an option is out of range.
    TypeError
        If an option is not one of `fix_pixels`.
    """
    if int(jobs) < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    check_options(options)
    given = [os.fspath(path) for path in paths]
    # Workers may run elsewhere and in another directory: absolute paths only.
    absolute = [os.path.abspath(path) for path in given]
    output_dir = os.path.abspath(os.fspath(output_dir))
    rules = OutputRules(overwrite=overwrite).protecting([*absolute, *protect])
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    results = [None] * len(paths)

    def done(position, result):
        result["input"] = given[position]
        results[position] = result
        if progress is not None:
            progress(result)

    positions = _unclashed(absolute, output_dir, done)
    work = {
        "paths": [absolute[position] for position in positions],
        "bpm": bpm,
        "output_dir": output_dir,
        "rules": rules,
        "skip_existing": skip_existing,
        "settings": FileSettings(hdu, tuple(planes), compress),
        "options": options,
    }

    def done_left(index, result):
        done(positions[index], result)

    try:
        if client is not None:
            _run_on_cluster(client, work, done_left, cluster_timeout)
        elif int(jobs) == 1 or len(positions) <= 1:
            for index, path in enumerate(work["paths"]):
                done_left(index, _run_work(work, path, bpm))
        else:
            _run_in_processes(min(int(jobs), len(positions)), work, done_left)
    finally:
        rules.remove_temporaries(
            target for path in work["paths"] for target in outputs_of(path, output_dir)
        )
    return results


def _unclashed(paths, output_dir, done):
    """Positions of the files whose outputs no earlier file writes.

    Two inputs that would write one output (same name in two folders; or a
    TIFF and a PNG with one sidecar, or a FITS file named like a sidecar)
    would replace each other's work: the later ones fail, named.
    """
    claimed, positions = {}, []
    for position, path in enumerate(paths):
        clash = next(
            (claimed[t] for t in outputs_of(path, output_dir) if t in claimed), None
        )
        if clash is None:
            claimed.update({t: path for t in outputs_of(path, output_dir)})
            positions.append(position)
            continue
        result = _failed_result(path, output_dir)
        result["error"] = (
            f"its output would replace that of {clash}, also in this batch: rename "
            "one of them"
        )
        done(position, result)
    return positions


def _run_work(work, path, bpm):
    """One file of a batch, with the batch's settings."""
    return _fix_one(
        path,
        bpm,
        work["output_dir"],
        work["rules"],
        work["skip_existing"],
        work["settings"],
        work["options"],
    )


def _run_in_processes(jobs, work, done):
    light = {**work, "bpm": None}  # the map goes once to each process
    started = time.time()
    unfinished = _pool_round(jobs, light, work["bpm"], range(len(work["paths"])), done)
    # A process that dies (killed, out of memory) breaks the pool and every
    # file in it: each is run again alone, so that only a file that kills
    # its process even alone is reported, and the others are fixed. A file
    # its process wrote before dying, unreported, is not written twice.
    for index in unfinished:
        path = work["paths"][index]
        if _written_since(path, work["output_dir"], started):
            note = "written by a process that died before reporting; counts unknown"
            done(
                index,
                {
                    **_failed_result(path, work["output_dir"]),
                    "status": "ok",
                    "error": None,
                    "warnings": [note],
                },
            )
        elif _pool_round(1, light, work["bpm"], [index], done):
            done(index, _failed_result(path, work["output_dir"], _DIED))


def _written_since(path, output_dir, started):
    """Whether every output of ``path`` was written since ``started``."""
    targets = outputs_of(path, output_dir)
    return all(os.path.exists(t) and os.path.getmtime(t) >= started for t in targets)


def _pool_round(jobs, work, bpm, indices, done):
    """Fix ``indices`` in a pool of ``jobs`` processes; return those left undone."""
    unfinished = []
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_start_worker, initargs=(bpm, os.getpid())
    ) as pool:
        futures = {
            pool.submit(_work_in_process, work, work["paths"][index]): index
            for index in indices
        }
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    unfinished.append(futures[future])
                    continue
                done(futures[future], result)
        except BaseException:
            _stop_workers(pool)
            raise
    return sorted(unfinished)


def _stop_workers(pool):
    """Stop the pool's processes now: queued files are dropped, none written.

    SIGTERM lets a worker remove its temporary; one that does not stop within
    the grace time is killed (its temporary is removed by `fix_files`).
    """
    # The executor gives no public handle on its processes.
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _WORKER_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _start_worker(bpm, parent):
    global _WORKER_BPM
    _WORKER_BPM = bpm
    # Ctrl-C reaches the whole process group: the parent alone decides, and
    # stops its workers with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_terminated)
    signal.signal(signal.SIGHUP, _worker_terminated)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _worker_terminated(signum, frame):
    # Leave at once, the temporary being written removed: an exception raised
    # in the middle of a library (numba compiling, astropy writing) could be
    # caught and printed there instead of unwinding.
    remove_active_temporaries()
    os._exit(128 + signum)


def _watch_parent(parent):
    """End this worker when its parent is gone (killed, even by SIGKILL).

    From this thread, not by a signal to itself: Python runs a handler only
    in the main thread and only between two steps of its own, so a worker
    inside a long compiled call or a write outlived its parent by seconds.
    """
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    _worker_terminated(signal.SIGTERM, None)


def _work_in_process(work, path):
    return _run_work(work, path, _WORKER_BPM)


def _cluster_task(work, path, bpm):
    """One file on a Dask worker (module level, so that it pickles by name)."""
    return _run_work(work, path, bpm)


def _run_on_cluster(client, work, done, timeout):
    """One task per file; the map scattered once to every worker.

    Outputs that exist before the batch are decided here, once: a task run
    again after its worker died may then replace what its first run wrote.
    If the cluster is lost, a marker file tells workers that outlive it to
    drop what they were writing.
    """
    rules = work["rules"]
    marker = os.path.join(work["output_dir"], f".ccdpixfix-{rules.run_id}.cancelled")
    task_work = {
        **work,
        "bpm": None,
        "rules": dataclasses.replace(rules, overwrite=True, cancel_marker=marker),
        "skip_existing": False,
    }
    submitted, started, reported = {}, time.time(), set()

    def report(index, result):
        reported.add(index)
        done(index, result)

    try:
        _submit(client, work, task_work, submitted, report, timeout)
        for resend in range(1, _MAP_RESENDS + 2):
            try:
                _collect(client, submitted, report, timeout, work)
                break
            except _MapLost as lost:
                if resend > _MAP_RESENDS:
                    raise _ClusterLost(str(lost)) from None
                # A worker that joins within the timeout gets the map again,
                # and the files not yet done are submitted again.
                _cancel_tasks(client, submitted)
                _wait_for_a_worker(client, timeout, lost)
                submitted.clear()
                _submit(
                    client,
                    work,
                    task_work,
                    submitted,
                    report,
                    timeout,
                    done=reported,
                    resend=resend,
                )
    except _ClusterLost as lost:
        _cancel_run(client, submitted, marker)
        # A worker that looked for the marker just before it appeared is
        # renaming its file now: the outputs are judged after that.
        time.sleep(_MARKER_GRACE_SECONDS)
        for index, path in enumerate(work["paths"]):
            if index not in reported:
                report(index, _lost_result(path, work, lost, started))
    except BaseException:
        _cancel_run(client, submitted, marker)
        raise


def _submit(client, work, task_work, submitted, report, timeout, done=(), resend=0):
    """One task per file whose output is not decided already.

    The outputs are decided on the first submission; a ``resend`` submits
    the files not ``done`` again, whatever their tasks wrote before.
    """
    rules, shared = work["rules"], None
    for index, path in enumerate(work["paths"]):
        if index in done:
            continue
        targets = outputs_of(path, work["output_dir"])
        existing = any(os.path.lexists(t) for t in targets)
        if not resend and not rules.overwrite and existing:
            report(index, _run_work(work, path, None))  # skipped, or refused
            continue
        if shared is None and work["bpm"] is not None:
            shared = _scatter(client, work["bpm"], timeout)
        future = client.submit(
            _cluster_task,
            task_work,
            path,
            shared,
            pure=False,
            retries=3,
            key=f"ccdpixfix-fix-{index}-{rules.run_id}-{resend}",
        )
        submitted[future] = index


class _ClusterLost(Exception):
    """The scheduler or every worker was lost for longer than the timeout."""


class _MapLost(Exception):
    """The workers that held the scattered map were all lost; the scheduler
    lives on."""


def _lost(client, mapped):
    """What cancelled a task: the scheduler, or (where a map was scattered)
    the map with its workers."""
    if mapped and client.status == "running":
        return _MapLost("the workers holding the map were lost")
    return _ClusterLost("the scheduler was lost")


def _wait_for_a_worker(client, timeout, lost):
    """Return once the cluster has a worker; _ClusterLost after ``timeout``."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        raise _ClusterLost(f"{lost}, and no worker joined for {timeout:g} s") from None


def _cancel_tasks(client, submitted):
    """Cancel the run's tasks, giving a scheduler that does not answer a few
    seconds."""

    def cancel():
        with contextlib.suppress(Exception):  # no scheduler: nothing to cancel
            client.cancel(list(submitted), force=True)

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    thread.join(_CANCEL_SECONDS)


def _scatter(client, bpm, timeout):
    try:
        return client.scatter(bpm, broadcast=True, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise _ClusterLost(
            f"the map could not be sent to the workers: {error}"
        ) from None


def _collect(client, submitted, done, timeout, work):
    """Hand each finished task's result to ``done``; watch the cluster meanwhile."""
    from distributed import wait

    pending, unhealthy_since = set(submitted), None
    mapped = work["bpm"] is not None
    while pending:
        try:
            finished = wait(
                list(pending),
                timeout=_CLUSTER_POLL_SECONDS,
                return_when="FIRST_COMPLETED",
            ).done
        except TimeoutError:
            finished = set()
        except CancelledError:
            raise _lost(client, mapped) from None
        for future in finished:
            if future.status == "cancelled":
                raise _lost(client, mapped)
            index = submitted[future]
            try:
                result = _task_result(
                    future, work["paths"][index], work["output_dir"], mapped
                )
            except TimeoutError:
                continue  # its worker died: the result is being made again
            pending.discard(future)
            done(index, result)
        trouble = _cluster_trouble(client)
        if trouble is None:
            unhealthy_since = None
        elif unhealthy_since is None:
            unhealthy_since = time.monotonic()
        elif time.monotonic() - unhealthy_since > timeout:
            raise _ClusterLost(f"{trouble} for {timeout:g} s")


def _task_result(future, path, output_dir, mapped):
    """The result of a finished task; TimeoutError if it cannot be fetched now."""
    try:
        return future.result(timeout=_CLUSTER_POLL_SECONDS)
    except TimeoutError:
        raise
    except CancelledError:
        # The scheduler (or the map) went while the result was fetched: the
        # file may be written; the batch's end tells by looking.
        raise _lost(future.client, mapped) from None
    except Exception as error:  # a task that failed on every retry
        if future.status != "error" or future.client.status != "running":
            # Not the task's own failure: its result was lost on the way.
            raise _ClusterLost("the scheduler was lost") from None
        return _failed_result(path, output_dir, _one_line(error))


def _cluster_trouble(client):
    """What is wrong with the cluster, in words, or None."""
    if client.status != "running":
        return "the scheduler is not answering"
    if not client.scheduler_info().get("workers"):
        return "no Dask worker is left on the cluster"
    return None


def _cancel_run(client, submitted, marker):
    """Tell workers that outlive the cluster to drop their writes; cancel tasks."""
    Path(marker).touch()
    # A lost scheduler can leave the call waiting: it gets a few seconds (the
    # marker does the rest).
    _cancel_tasks(client, submitted)


def _lost_result(path, work, lost, started):
    """The result of a file whose task was not seen to finish."""
    result = _failed_result(path, work["output_dir"])
    if _written_since(path, work["output_dir"], started):
        # A worker renamed it just before the marker appeared.
        result.update(
            status="ok",
            error=None,
            warnings=[f"written as the cluster was lost ({lost})"],
        )
        return result
    result["error"] = f"not fixed, nothing written: {lost}"
    return result
