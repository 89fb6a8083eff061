"""What each ``ccdpixfix`` subcommand does, once its arguments are parsed.

`ccdpixfix.cli` builds the parser and dispatches here; the handlers only
turn arguments into library calls and results into lines and exit codes.
"""

import glob
import json
import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from ._version import __version__
from .cfa import cfa_pattern

__all__ = ["UsageError", "bpm", "demo", "fix", "info", "plot"]


# The client's own timeout is given a few seconds more before we give up on it.
_CONNECT_MARGIN_SECONDS = 5.0


class UsageError(Exception):
    """A problem with the arguments: exit status 2."""


def _checked_pattern(cfa):
    """``--cfa`` as given, or a usage error for a pattern that does not exist."""
    try:
        cfa_pattern(None, cfa)
    except ValueError as error:
        raise UsageError(f"--cfa: {error}") from None
    return cfa


def _rules(overwrite, inputs):
    """The run's output rules: its inputs are never written over."""
    from .io import OutputRules

    return OutputRules(overwrite=overwrite).protecting(inputs)


def _check_output(path, rules, what="output"):
    """A usage error, before any work, for an output that cannot be written."""
    try:
        rules.check(path)
    except (ValueError, FileExistsError) as error:
        raise UsageError(f"{what}: {error}") from None
    parent = Path(path).parent
    if not parent.is_dir():
        raise UsageError(f"{what}: the directory {parent} does not exist")


def _expand(arguments, command):
    """Files named by the arguments: files, directories and glob patterns.

    Returns the files (each once, in order) and the number of arguments that
    matched nothing (reported on stderr).
    """
    from .images import is_image_name
    from .io import is_fits_name

    files, missing, seen = [], 0, set()
    for argument in arguments:
        if os.path.isdir(argument):
            # Hidden files are left out as a shell's * does: among them the
            # temporaries of a run that was killed.
            found = sorted(
                str(path)
                for path in Path(argument).iterdir()
                if path.is_file()
                and not path.name.startswith(".")
                and (is_fits_name(path) or is_image_name(path))
            )
        elif not os.path.exists(argument) and glob.has_magic(argument):
            found = sorted(glob.glob(argument))
        else:
            found = [argument]
        if not found:
            print(
                f"ccdpixfix {command}: error: {argument}: no file matches",
                file=sys.stderr,
            )
            missing += 1
        for path in found:
            key = os.path.realpath(path)
            if key in seen:
                print(
                    f"ccdpixfix {command}: warning: {path}: given twice, "
                    "processed once",
                    file=sys.stderr,
                )
                continue
            seen.add(key)
            files.append(path)
    return files, missing


def demo(args):
    from . import demo

    if args.size < 64:
        raise UsageError("--size must be at least 64")
    start = time.perf_counter()
    report = demo.run_demo(
        size=args.size, seed=args.seed, output=args.output, overwrite=args.overwrite
    )
    print(report)
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0


def bpm(args):
    from astropy.utils.exceptions import AstropyUserWarning
    from astropy.wcs import FITSFixedWarning

    from .badpixels import make_bad_pixel_map

    _check_engine(args)
    if args.cfa is not None:
        _checked_pattern(args.cfa)
    darks, missing_darks = _expand(args.darks, "bpm")
    flats, missing_flats = _expand(args.flats, "bpm")
    if missing_darks or missing_flats or not darks:
        raise UsageError("every DARK and --flats argument must name files")
    rules = _rules(args.overwrite, [*darks, *flats])
    # Checked before the map is computed: a bad output loses no work.
    _check_output(args.output, rules, "-o")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        # astropy's notes on mending a WCS (datfix...) say nothing of darks.
        warnings.simplefilter("ignore", FITSFixedWarning)
        bpm = make_bad_pixel_map(
            [_image_as_frame(path) for path in darks],
            [_image_as_frame(path) for path in flats] or None,
            hot_rate=args.hot_rate,
            gain=args.gain,
            cfa=args.cfa,
        )
    for warning in caught:
        print(f"ccdpixfix bpm: warning: {warning.message}", file=sys.stderr)
    bpm.write(args.output, overwrite=args.overwrite, rules=rules)
    print(bpm.summary())
    for note in bpm.meta.get("notes", []):
        print(f"note: {note}")
    print(f"written to {args.output}")
    return 0


def _image_as_frame(path):
    """A TIFF or PNG file read as a frame; a FITS path as it is."""
    from .images import is_image_name, read_image

    if not is_image_name(path):
        return path
    try:
        frame = read_image(path)
    except ImportError as error:
        raise UsageError(str(error)) from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: {error}") from None
    if frame.ndim != 2:
        raise UsageError(
            f"{path} is a colour image: a map is made from raw (grey or Bayer) "
            "darks and flats, not from debayered ones"
        )
    return frame


def _check_engine(args):
    """Refuse an unknown CCDPIXFIX_ENGINE; say when the kernels compile."""
    from .medians import needs_compiling

    try:
        compiling = needs_compiling()
    except ValueError as error:
        raise UsageError(str(error)) from None
    if compiling and not getattr(args, "quiet", False):
        print(
            f"ccdpixfix {args.command}: compiling the pixel kernels (once, a few "
            "seconds)...",
            file=sys.stderr,
        )


def _hdu_argument(value):
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _progress_bar(total, quiet):
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, file=sys.stderr, unit="frame", disable=disable)


def fix(args):
    from .badpixels import BadPixelMap
    from .batch import fix_files, outputs_of
    from .images import is_image_name
    from .io import is_fits_name

    _check_engine(args)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip-existing contradict each other")
    options = _step_options(args)
    planes = _planes(args.planes)
    bpm = None
    if args.bpm is not None:
        try:
            bpm = BadPixelMap.read(args.bpm)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot use --bpm {args.bpm}: {error}") from None
    frames, missing = _expand(args.frames, "fix")
    if not frames:
        raise UsageError("no frame to fix")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"-o {args.output} exists and is not a directory")
    protect = [args.bpm] if args.bpm is not None else []
    if args.report is not None:
        rules = _rules(args.overwrite, [*frames, *protect])
        planned = {
            os.path.abspath(target)
            for frame in frames
            for target in outputs_of(frame, args.output)
        }
        if os.path.abspath(args.report) in planned:
            raise UsageError(f"--report {args.report} is also a fixed frame's name")
        if is_fits_name(args.report) or is_image_name(args.report):
            # A JSON report never takes the place of an image, even with
            # --overwrite, which is for the fixed frames.
            raise UsageError(
                f"--report {args.report} is named like an image; the report is "
                "JSON: name it REPORT.json"
            )
        _check_output(args.report, rules, "--report")
    jobs = _capped_jobs(args.jobs, len(frames))
    _preflight(frames[0], bpm, args)
    bar = _progress_bar(len(frames), args.quiet)
    finished, started = [], time.time()

    def report(result):
        finished.append(result)
        bar.update(1)
        if result["status"] == "error":
            bar.write(
                f"ccdpixfix fix: error: {result['input']}: {result['error']}",
                file=sys.stderr,
            )
        for text in result["warnings"]:
            bar.write(
                f"ccdpixfix fix: warning: {result['input']}: {text}", file=sys.stderr
            )

    client = _connect(args.scheduler, args.cluster_timeout) if args.scheduler else None
    try:
        results = fix_files(
            frames,
            bpm,
            args.output,
            jobs=jobs,
            client=client,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            hdu=_hdu_argument(args.hdu),
            progress=report,
            protect=protect,
            cluster_timeout=args.cluster_timeout,
            compress=args.compress,
            planes=planes,
            **options,
        )
    except KeyboardInterrupt:
        bar.close()
        if args.report is not None:
            # What finished is recorded; the rest was not written.
            results = _with_unfinished(frames, finished, args.output, started)
            _write_report(args.report, results, options, rules)
        raise
    finally:
        bar.close()
        if client is not None:
            _close_client(client)
    failed = sum(result["status"] == "error" for result in results) + missing
    skipped = sum(result["status"] == "skipped" for result in results)
    if args.report is not None and not _write_report(
        args.report, results, options, rules
    ):
        failed += 1
    if not args.quiet:
        fixed = len(results) - failed + missing - skipped
        kept = f", {skipped} already there" if skipped else ""
        print(
            f"{fixed} of {len(results) + missing} frames fixed{kept}, written to "
            f"{args.output}"
        )
    return 1 if failed else 0


def _step_options(args):
    """The options of `fix_pixels` the command line gives, checked."""
    from ._ccdutils import check_positive

    options = {
        "transients": not args.no_transients,
        "replace": not args.no_replace,
        "threshold": args.threshold,
        "contrast": args.contrast,
        "method": args.method,
        "warm_is_bad": args.warm_is_bad,
    }
    for name in ("saturation", "gain", "read_noise"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.cfa is not None:
        options["cfa"] = _checked_pattern(args.cfa)
    numbers = {
        name: options[name]
        for name in ("threshold", "contrast", "saturation", "gain", "read_noise")
        if name in options
    }
    numbers["cluster_timeout"] = args.cluster_timeout
    try:
        check_positive(**numbers)
    except ValueError as error:
        name = str(error).split()[0]
        raise UsageError(
            str(error).replace(name, "--" + name.replace("_", "-"), 1)
        ) from None
    return options


def _planes(text):
    """``--planes`` as a tuple of extension names, or a usage error."""
    from .io import OUTPUT_EXTENSIONS

    if text.strip().lower() == "none":
        return ()
    planes = tuple(name.strip().upper() for name in text.split(",") if name.strip())
    unknown = sorted(set(planes) - set(OUTPUT_EXTENSIONS))
    if unknown:
        raise UsageError(
            f"--planes: unknown {', '.join(unknown)}; choose from "
            f"{','.join(OUTPUT_EXTENSIONS)} or 'none'"
        )
    return planes


def _preflight(first, bpm, args):
    """Problems that would fail every frame, found on the first: usage errors.

    A wrong --hdu, a map of another detector, or an output directory that is
    the input's would give one identical line per file and write nothing.
    """
    from astropy.io import fits

    from .images import is_image_name
    from .io import image_hdu_index

    if os.path.realpath(args.output) == os.path.realpath(os.path.dirname(first)):
        raise UsageError(
            f"-o {args.output} is the frames' own directory: every output would "
            "replace its input; choose another directory"
        )
    if is_image_name(first):
        return
    try:
        with fits.open(first) as hdulist:
            index = image_hdu_index(hdulist, _hdu_argument(args.hdu))
            shape = hdulist[index].shape
    except (OSError, ValueError) as error:
        if args.hdu is not None and "HDU" in str(error):
            raise UsageError(f"--hdu {args.hdu}: {first} {error}") from None
        return  # a bad first file is that file's problem, reported with it
    if bpm is not None and shape[-2:] != bpm.shape:
        raise UsageError(
            f"--bpm {args.bpm} is a map of {bpm.shape[1]} x {bpm.shape[0]} px; "
            f"the frames (first: {first}) are {shape[-1]} x {shape[-2]} px"
        )


def _capped_jobs(jobs, n_files):
    """``--jobs`` no larger than the batch; a warning above the cores."""
    cores = os.cpu_count() or 1
    if jobs > cores:
        print(
            f"ccdpixfix fix: warning: --jobs {jobs} is more than the {cores} "
            "cores of this machine: frames will be fixed slower, with more memory",
            file=sys.stderr,
        )
    return max(1, min(jobs, n_files))


def _with_unfinished(frames, finished, output_dir, started):
    """The results so far, and an entry for each file not reported back.

    A worker may have written its file just before it was stopped, without
    telling us: an output made since the start of the run is recorded as
    written, the others as "interrupted".
    """
    from .batch import outputs_of

    done = {result["input"] for result in finished}
    left = []
    for frame in frames:
        if frame in done:
            continue
        targets = outputs_of(frame, output_dir)
        if all(os.path.exists(t) and os.path.getmtime(t) >= started for t in targets):
            note = "written as the run was interrupted; counts not recorded"
            left.append({"input": frame, "status": "ok", "warnings": [note]})
        else:
            error = "not fixed: interrupted"
            left.append({"input": frame, "status": "interrupted", "error": error})
    return [*finished, *left]


def _connect(address, timeout):
    """A Dask client on a running scheduler, or a usage error saying why not.

    The connection gets ``timeout`` seconds, whatever listens at the address:
    something that is not Dask (a web server, a silent socket) would make
    the client wait forever.
    """
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask: pip install 'ccdpixfix[dask]'"
        ) from None
    # Dask's own log (reconnection attempts with tracebacks) is not for the
    # user of a command line: what goes wrong is told in our words.
    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    outcome = {}

    def connect():
        try:
            outcome["client"] = Client(address, timeout=f"{timeout}s")
        except Exception as error:
            outcome["error"] = error

    # A daemon thread: one left hanging does not keep the command alive.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + _CONNECT_MARGIN_SECONDS)
    if "client" in outcome:
        return outcome["client"]
    reason = outcome.get("error") or (
        f"no Dask scheduler answered within {timeout:g} s (is it a Dask "
        "scheduler's address?)"
    )
    raise UsageError(f"cannot reach the scheduler {address}: {reason}")


def _close_client(client):
    """Close the client without waiting on a scheduler that may be gone."""
    thread = threading.Thread(target=client.close, daemon=True)
    thread.start()
    thread.join(_CONNECT_MARGIN_SECONDS)


def _write_report(path, results, options, rules):
    """The JSON report, written atomically like every output."""
    document = {"ccdpixfix_version": __version__, "options": options, "files": results}
    try:
        with rules.path(path) as temporary:
            Path(temporary).write_text(json.dumps(document, indent=2))
    except OSError as error:
        reason = error.strerror or str(error)
        print(
            f"ccdpixfix fix: error: cannot write the report {path}: {reason}",
            file=sys.stderr,
        )
        return False
    return True


def plot(args):
    from . import plotting
    from .badpixels import BadPixelMap

    try:
        import matplotlib  # noqa: F401  (the figures need it)
    except ImportError:
        error = "plots need matplotlib: pip install 'ccdpixfix[plot]'"
        print(f"ccdpixfix plot: error: {error}", file=sys.stderr)
        return 1
    rules = _rules(args.overwrite, [args.file])
    _check_output(args.output, rules, "-o")
    try:
        if _is_map(args.file):
            figure = plotting.plot_bad_pixel_map(BadPixelMap.read(args.file))
        else:
            original = None
            if args.original is not None:
                original = _plain_frame(args.original, args.hdu)
            figure = plotting.plot_frame(
                _fixed_frame(args.file, args.hdu), original=original
            )
    except (OSError, ValueError) as error:
        print(f"ccdpixfix plot: error: {args.file}: {error}", file=sys.stderr)
        return 1
    with rules.path(args.output) as temporary:
        figure.savefig(temporary, format="png")
    print(f"written to {args.output}")
    return 0


def _is_map(path):
    from astropy.io import fits

    with fits.open(path) as hdulist:
        return "CPFBPM" in hdulist[0].header


def _fixed_frame(path, hdu):
    """The frame of a file with its FLAGS plane, as `plot_frame` draws it."""
    from astropy.io import fits

    from .flags import as_flags
    from .io import frame_from_hdu, image_hdu_index

    with fits.open(path) as hdulist:
        frame = frame_from_hdu(hdulist[image_hdu_index(hdulist, _hdu_argument(hdu))])
        if "FLAGS" not in hdulist:
            raise ValueError(
                "it has no FLAGS extension: it was not fixed by ccdpixfix (run "
                "'ccdpixfix fix' on it first, and plot the fixed file)"
            )
        flags = hdulist["FLAGS"].data
        if flags is None or np.shape(flags) != np.shape(frame.data):
            raise ValueError("its FLAGS extension holds no flags of the image's shape")
        frame.flags = as_flags(flags, "FLAGS")
    return frame


def _plain_frame(path, hdu):
    """The image of a file, to draw beside its fixed version."""
    from astropy.io import fits

    from .io import frame_from_hdu, image_hdu_index

    try:
        with fits.open(path) as hdulist:
            return frame_from_hdu(hdulist[image_hdu_index(hdulist, _hdu_argument(hdu))])
    except (OSError, ValueError) as error:
        raise ValueError(f"--original {path}: {error}") from None


def info(args):
    from astropy.io import fits

    from ._provenance import join_history
    from .badpixels import BadPixelMap
    from .batch import flag_counts

    try:
        with fits.open(args.file) as hdulist:
            is_map = "CPFBPM" in hdulist[0].header
            has_flags = "FLAGS" in hdulist
            if not is_map and has_flags:
                if hdulist["FLAGS"].data is None:
                    raise OSError("its FLAGS extension holds no data")
                counts = flag_counts(hdulist["FLAGS"].data)
                history = [
                    record
                    for hdu in hdulist
                    for record in join_history(hdu.header.get("HISTORY", []))
                ]
    except OSError as error:
        print(f"ccdpixfix info: error: {args.file}: {error}", file=sys.stderr)
        return 1
    if is_map:
        try:
            bpm = BadPixelMap.read(args.file)
        except ValueError as error:
            print(f"ccdpixfix info: error: {error}", file=sys.stderr)
            return 1
        print(bpm.summary())
        meta = bpm.meta
        print(
            f"made by ccdpixfix {meta.get('ccdpixfix_version')} on "
            f"{meta.get('created')}"
        )
        print(
            f"darks: {len(meta.get('darks', []))}, flats: "
            f"{len(meta.get('flats', []))}, gain {meta.get('gain')} e-/ADU "
            f"({meta.get('gain_source')})"
        )
        print(f"parameters: {meta.get('parameters')}")
        for note in meta.get("notes", []):
            print(f"note: {note}")
        return 0
    if not has_flags:
        print(
            f"ccdpixfix info: error: {args.file} is neither a ccdpixfix map nor a "
            "fixed frame (no FLAGS extension)",
            file=sys.stderr,
        )
        return 1
    print(f"{args.file}: pixels per flag")
    for name, count in counts.items():
        print(f"  {name:<16}{count:>10d}")
    if not counts:
        print("  (no flagged pixel)")
    for line in history:
        print(f"history: {line}")
    return 0
