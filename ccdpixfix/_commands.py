"""What each ``ccdpixfix`` subcommand does, once its arguments are parsed.

`ccdpixfix.cli` builds the parser and dispatches here; the handlers only
turn arguments into library calls and results into lines and exit codes.
"""

import glob
import json
import os
import sys
import time
import warnings
from pathlib import Path

from ._version import __version__
from .cfa import cfa_pattern

__all__ = ["UsageError", "bpm", "demo", "fix", "info", "plot"]


class UsageError(Exception):
    """A problem with the arguments: exit status 2."""


def _checked_pattern(cfa):
    """``--cfa`` as given, or a usage error for a pattern that does not exist."""
    try:
        cfa_pattern(None, cfa)
    except ValueError as error:
        raise UsageError(f"--cfa: {error}") from None
    return cfa


def _refuse_existing(path, overwrite, command):
    """Say so and return True when ``path`` exists and may not be replaced."""
    if path.exists() and not overwrite:
        print(
            f"ccdpixfix {command}: error: {path} exists; pass --overwrite to "
            "replace it",
            file=sys.stderr,
        )
        return True
    return False


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
            found = sorted(
                str(path)
                for path in Path(argument).iterdir()
                if path.is_file() and (is_fits_name(path) or is_image_name(path))
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

    from .badpixels import make_bad_pixel_map

    if _refuse_existing(args.output, args.overwrite, "bpm"):
        return 1
    if args.cfa is not None:
        _checked_pattern(args.cfa)
    darks, missing_darks = _expand(args.darks, "bpm")
    flats, missing_flats = _expand(args.flats, "bpm")
    if missing_darks or missing_flats or not darks:
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        bpm = make_bad_pixel_map(
            darks, flats or None, hot_rate=args.hot_rate, gain=args.gain, cfa=args.cfa
        )
    for warning in caught:
        print(f"ccdpixfix bpm: warning: {warning.message}", file=sys.stderr)
    bpm.write(args.output, overwrite=args.overwrite)
    print(bpm.summary())
    for note in bpm.meta.get("notes", []):
        print(f"note: {note}")
    print(f"written to {args.output}")
    return 0


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
    from .batch import fix_files

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.threshold <= 0:
        raise UsageError("--threshold must be a positive number of sigma")
    if args.grow < 0:
        raise UsageError("--grow must be a whole number of pixels >= 0")
    bpm = None
    if args.bpm is not None:
        try:
            bpm = BadPixelMap.read(args.bpm)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot use --bpm {args.bpm}: {error}") from None
    frames, missing = _expand(args.frames, "fix")
    options = {
        "transients": not args.no_transients,
        "replace": not args.no_replace,
        "threshold": args.threshold,
        "grow": args.grow,
    }
    if args.cfa is not None:
        options["cfa"] = _checked_pattern(args.cfa)
    bar = _progress_bar(len(frames), args.quiet)

    def report(result):
        bar.update(1)
        if result["status"] != "ok":
            bar.write(
                f"ccdpixfix fix: error: {result['input']}: {result['error']}",
                file=sys.stderr,
            )
        for text in result["warnings"]:
            bar.write(
                f"ccdpixfix fix: warning: {result['input']}: {text}", file=sys.stderr
            )

    client = _connect(args.scheduler) if args.scheduler else None
    try:
        results = fix_files(
            frames,
            bpm,
            args.output,
            jobs=args.jobs,
            client=client,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            hdu=_hdu_argument(args.hdu),
            progress=report,
            **options,
        )
    finally:
        bar.close()
        if client is not None:
            client.close()
    failed = sum(result["status"] == "error" for result in results) + missing
    skipped = sum(result["status"] == "skipped" for result in results)
    if args.report is not None:
        _write_report(args.report, results, options)
    if not args.quiet:
        fixed = len(results) - failed + missing - skipped
        kept = f", {skipped} already there" if skipped else ""
        print(
            f"{fixed} of {len(results) + missing} frames fixed{kept}, written to "
            f"{args.output}"
        )
    return 1 if failed else 0


def _connect(address):
    """A Dask client on a running scheduler, or a usage error saying why not."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask: pip install 'ccdpixfix[dask]'"
        ) from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise UsageError(f"cannot reach the scheduler {address}: {error}") from None


def _write_report(path, results, options):
    """The JSON report, written atomically like every output."""
    from .io import atomic_path

    document = {"ccdpixfix_version": __version__, "options": options, "files": results}
    with atomic_path(path, overwrite=True) as temporary:
        Path(temporary).write_text(json.dumps(document, indent=2))


def plot(args):
    from astropy.io import fits

    from . import plotting
    from .badpixels import BadPixelMap
    from .io import atomic_path, frame_from_hdu, image_hdu_index

    try:
        import matplotlib  # noqa: F401  (the figures need it)
    except ImportError:
        error = "plots need matplotlib: pip install 'ccdpixfix[plot]'"
        print(f"ccdpixfix plot: error: {error}", file=sys.stderr)
        return 1
    if _refuse_existing(args.output, args.overwrite, "plot"):
        return 1
    with fits.open(args.file) as hdulist:
        if "CPFBPM" in hdulist[0].header:
            figure = plotting.plot_bad_pixel_map(BadPixelMap.read(args.file))
        else:
            frame = frame_from_hdu(
                hdulist[image_hdu_index(hdulist, _hdu_argument(args.hdu))]
            )
            if "FLAGS" in hdulist:
                frame.flags = hdulist["FLAGS"].data.astype("uint16")
            figure = plotting.plot_frame(frame)
    with atomic_path(args.output, overwrite=True) as temporary:
        figure.savefig(temporary, format="png")
    print(f"written to {args.output}")
    return 0


def info(args):
    from astropy.io import fits

    from .badpixels import BadPixelMap
    from .batch import flag_counts

    try:
        with fits.open(args.file) as hdulist:
            is_map = "CPFBPM" in hdulist[0].header
            has_flags = "FLAGS" in hdulist
            if not is_map and has_flags:
                counts = flag_counts(hdulist["FLAGS"].data)
                history = [
                    str(line)
                    for hdu in hdulist
                    for line in hdu.header.get("HISTORY", [])
                    if "ccdpixfix" in str(line)
                ]
    except OSError as error:
        print(f"ccdpixfix info: error: {args.file}: {error}", file=sys.stderr)
        return 1
    if is_map:
        bpm = BadPixelMap.read(args.file)
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
