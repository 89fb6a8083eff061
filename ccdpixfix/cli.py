"""The ``ccdpixfix`` command: subcommands parse their arguments and call the library.

Exit status: 0 when everything went well, 1 when some files failed, 2 for a
usage error (bad arguments, an unreadable map).
"""

import argparse
import glob
import json
import os
import sys
import time
import warnings
from pathlib import Path

from ._version import __version__

__all__ = ["main"]

_EXAMPLES = {
    "demo": """\
examples:
  ccdpixfix demo                      # simulate, find, fix, score (a few seconds)
  ccdpixfix demo --output demo-night  # also write the frames and the map as FITS
""",
    "bpm": """\
examples:
  ccdpixfix bpm darks/*.fits -o bpm.fits
  ccdpixfix bpm darks/ --flats flats/*.fits -o bpm.fits --overwrite
""",
    "fix": """\
examples:
  ccdpixfix fix night/*.fits --bpm bpm.fits -o fixed/
  ccdpixfix fix night/ --bpm bpm.fits -o fixed/ --jobs 2 --report report.json
  ccdpixfix fix raw.fits.fz --hdu SCI -o fixed/ --no-replace
  ccdpixfix fix /shared/night/ -o /shared/fixed/ --scheduler tcp://10.0.0.5:8786
""",
    "plot": """\
examples:
  ccdpixfix plot fixed/frame001.fits -o frame001.png
  ccdpixfix plot bpm.fits -o bpm.png
""",
    "info": """\
examples:
  ccdpixfix info bpm.fits
  ccdpixfix info fixed/frame001.fits
""",
}


class _UsageError(Exception):
    """A problem with the arguments: exit status 2."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="ccdpixfix",
        description="Find and repair bad pixels in CCD and CMOS images.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text, description):
        sub = commands.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=_EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    demo = command(
        "demo",
        "simulate a night, build the map, fix the frames, score against the truth",
        "Simulate a small night with known defects (darks, flats, three star "
        "fields), build the bad-pixel map, fix the frames and print what was found "
        "against the truth.",
    )
    demo.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="write the simulated and fixed frames and the map here",
    )
    demo.add_argument(
        "--size",
        type=int,
        default=512,
        metavar="N",
        help="frame size in pixels (default: 512)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--overwrite", action="store_true", help="replace files that exist in --output"
    )
    demo.set_defaults(handler=_demo)

    bpm = command(
        "bpm",
        "build a bad-pixel map from darks (and flats)",
        "Build the bad-pixel map of a detector from its darks (raw or calibrated; "
        "several exposure times welcome) and, optionally, flats; write it as FITS "
        "and print what it holds.",
    )
    bpm.add_argument(
        "darks",
        nargs="+",
        metavar="DARK",
        help="dark frames: files, directories or glob patterns",
    )
    bpm.add_argument(
        "--flats",
        nargs="+",
        metavar="FLAT",
        default=[],
        help="flat fields: files, directories or glob patterns",
    )
    bpm.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="BPM.fits",
        help="the map to write",
    )
    bpm.add_argument("--overwrite", action="store_true", help="replace BPM.fits")
    bpm.add_argument(
        "--hot-rate",
        type=float,
        default=0.5,
        metavar="E_PER_S",
        help="dark current (e-/s above the typical pixel) from which a "
        "pixel is HOT (default: 0.5)",
    )
    bpm.add_argument(
        "--gain",
        type=float,
        metavar="E_PER_ADU",
        help="gain in e-/ADU, overriding the GAIN keyword of the darks",
    )
    bpm.set_defaults(handler=_bpm)

    fix = command(
        "fix",
        "flag and repair the bad pixels of FITS frames",
        "Flag and repair the bad pixels of each frame and write it, with MASK, "
        "UNCERT and FLAGS extensions, to OUTDIR under the same name. Inputs are "
        "never modified; a file that fails is reported and the others go on.",
    )
    fix.add_argument(
        "frames",
        nargs="+",
        metavar="FRAME",
        help="frames: files, directories or glob patterns",
    )
    fix.add_argument(
        "--bpm",
        type=Path,
        metavar="BPM.fits",
        help="bad-pixel map from 'ccdpixfix bpm'",
    )
    fix.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="directory for the fixed frames (created if missing)",
    )
    fix.add_argument(
        "--overwrite",
        action="store_true",
        help="replace fixed frames that already exist",
    )
    fix.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave fixed frames that already exist as they are (to resume a batch)",
    )
    fix.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="frames processed at once, one process each (default: 1)",
    )
    fix.add_argument(
        "--no-transients",
        action="store_true",
        help="do not look for cosmic rays and one-exposure hot pixels",
    )
    fix.add_argument(
        "--no-replace",
        action="store_true",
        help="flag only; leave the pixel values as they are",
    )
    fix.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="SIGMA",
        help="detection threshold in units of the pixel noise (default: 5)",
    )
    fix.add_argument(
        "--hdu",
        metavar="NAME_OR_INDEX",
        help="image to process (default: the first image)",
    )
    fix.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on this Dask cluster (tcp://HOST:PORT); the workers "
        "must see the files at the same paths",
    )
    fix.add_argument(
        "--report",
        type=Path,
        metavar="REPORT.json",
        help="write a JSON summary per file",
    )
    fix.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no per-file lines, errors only",
    )
    fix.set_defaults(handler=_fix)

    plot = command(
        "plot",
        "draw what a fixed frame or a bad-pixel map holds (PNG)",
        "Draw a fixed frame with its flagged pixels marked by kind, zooms on the "
        "worst regions and the histogram of the residuals; or a bad-pixel map with "
        "its counts per kind and dark-current distribution. Needs matplotlib "
        "(pip install 'ccdpixfix[plot]').",
    )
    plot.add_argument("file", type=Path, metavar="FILE")
    plot.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.png")
    plot.add_argument("--overwrite", action="store_true", help="replace FILE.png")
    plot.add_argument(
        "--hdu",
        metavar="NAME_OR_INDEX",
        help="image to draw (default: the first image)",
    )
    plot.set_defaults(handler=_plot)

    info = command(
        "info",
        "show what a bad-pixel map or a fixed frame holds",
        "Show the counts per flag of a bad-pixel map or a fixed frame, and how it "
        "was made.",
    )
    info.add_argument("file", type=Path, metavar="FILE")
    info.set_defaults(handler=_info)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit status.

    0 when everything went well, 1 when some work failed, 2 for a usage
    error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except _UsageError as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"ccdpixfix {args.command}: interrupted; no partial file was left",
            file=sys.stderr,
        )
        return 130
    except (OSError, ValueError, TypeError) as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 1


def _expand(arguments, command):
    """Files named by the arguments: files, directories and glob patterns.

    Returns the files (each once, in order) and the number of arguments that
    matched nothing (reported on stderr).
    """
    from .io import is_fits_name

    files, missing, seen = [], 0, set()
    for argument in arguments:
        if os.path.isdir(argument):
            found = sorted(
                str(path)
                for path in Path(argument).iterdir()
                if path.is_file() and is_fits_name(path)
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


def _demo(args):
    from . import demo

    if args.size < 64:
        raise _UsageError("--size must be at least 64")
    start = time.perf_counter()
    report = demo.run_demo(
        size=args.size, seed=args.seed, output=args.output, overwrite=args.overwrite
    )
    print(report)
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0


def _bpm(args):
    from astropy.utils.exceptions import AstropyUserWarning

    from .badpixels import make_bad_pixel_map

    if args.output.exists() and not args.overwrite:
        print(
            f"ccdpixfix bpm: error: {args.output} exists; pass --overwrite to "
            "replace it",
            file=sys.stderr,
        )
        return 1
    darks, missing_darks = _expand(args.darks, "bpm")
    flats, missing_flats = _expand(args.flats, "bpm")
    if missing_darks or missing_flats or not darks:
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        bpm = make_bad_pixel_map(
            darks, flats or None, hot_rate=args.hot_rate, gain=args.gain
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


def _fix(args):
    from .badpixels import BadPixelMap
    from .batch import fix_files

    if args.jobs < 1:
        raise _UsageError("--jobs must be at least 1")
    if args.threshold <= 0:
        raise _UsageError("--threshold must be a positive number of sigma")
    bpm = None
    if args.bpm is not None:
        try:
            bpm = BadPixelMap.read(args.bpm)
        except (OSError, ValueError) as error:
            raise _UsageError(f"cannot use --bpm {args.bpm}: {error}") from None
    frames, missing = _expand(args.frames, "fix")
    options = {
        "transients": not args.no_transients,
        "replace": not args.no_replace,
        "threshold": args.threshold,
    }
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
        raise _UsageError(
            "--scheduler needs Dask: pip install 'ccdpixfix[dask]'"
        ) from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise _UsageError(f"cannot reach the scheduler {address}: {error}") from None


def _write_report(path, results, options):
    """The JSON report, written atomically like every output."""
    from .io import atomic_path

    document = {"ccdpixfix_version": __version__, "options": options, "files": results}
    with atomic_path(path, overwrite=True) as temporary:
        Path(temporary).write_text(json.dumps(document, indent=2))


def _plot(args):
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
    if args.output.exists() and not args.overwrite:
        print(
            f"ccdpixfix plot: error: {args.output} exists; pass --overwrite to "
            "replace it",
            file=sys.stderr,
        )
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


def _info(args):
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
