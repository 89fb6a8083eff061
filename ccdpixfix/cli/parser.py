"""The ``ccdpixfix`` command: subcommands parse their arguments and call the library.

Exit status: 0 when everything went well, 1 when some files failed, 2 for a
usage error (bad arguments, an unreadable map).
"""

import argparse
import inspect
import os
import signal
import sys
import threading
from pathlib import Path

from .._version import __version__
from ..io.fits import OUTPUT_EXTENSIONS
from . import commands as handlers
from .commands import UsageError

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
  ccdpixfix bpm night/ -o bpm.fits      # darks and flats told by IMAGETYP
""",
    "fix": """\
examples:
  ccdpixfix fix night/*.fits --bpm bpm.fits -o fixed/
  ccdpixfix fix night/ --bpm bpm.fits -o fixed/ --jobs 2 --report report.json
  ccdpixfix fix raw.fits.fz --hdu SCI -o fixed/ --no-replace
  ccdpixfix fix /shared/night/ -o /shared/fixed/ --scheduler tcp://10.0.0.5:8786
""",
    "night": """\
examples:
  ccdpixfix night raw/2026-11-29/ -o reduced/2026-11-29/
  ccdpixfix night raw/ -o out/ --jobs 2 --report out/report.json --warm-is-bad
""",
    "plot": """\
examples:
  ccdpixfix plot fixed/frame001.fits -o frame001.png
  ccdpixfix plot bpm.fits -o bpm.png
  ccdpixfix plot fixed/frame001.fits --original raw/frame001.fits -o zoom.png
""",
    "info": """\
examples:
  ccdpixfix info bpm.fits
  ccdpixfix info fixed/frame001.fits
""",
}


def _path(text):
    """A path argument; an empty one (an unset variable in a script) would
    be taken for the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names nothing")
    return Path(text)


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
        type=_path,
        metavar="DIR",
        help="write the simulated and fixed frames and the map here",
    )
    from ..datasets.demo import run_demo

    size, seed = _default(run_demo, "size"), _default(run_demo, "seed")
    demo.add_argument(
        "--size",
        type=int,
        default=size,
        metavar="N",
        help=f"frame size in pixels (default: {size})",
    )
    demo.add_argument(
        "--seed", type=int, default=seed, help=f"random seed (default: {seed})"
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="replace files that exist in --output"
    )
    demo.set_defaults(handler=handlers.demo)

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
        type=_path,
        metavar="BPM.fits",
        help="the map to write",
    )
    bpm.add_argument("--overwrite", action="store_true", help="replace BPM.fits")
    bpm.add_argument(
        "--cfa",
        metavar="PATTERN",
        help="Bayer pattern of a colour camera's raw frames (RGGB, BGGR, GRBG, "
        "GBRG): each colour is handled with same-colour neighbours only; by "
        "default from the BAYERPAT keyword; 'none' treats the data as grey",
    )
    _hot_rate_argument(bpm)
    bpm.add_argument(
        "--gain",
        type=float,
        metavar="E_PER_ADU",
        help=_map_help("gain"),
    )
    bpm.set_defaults(handler=handlers.bpm)

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
        help="frames: files, directories or glob patterns (a directory's "
        "frames are sorted by IMAGETYP: its light frames are taken)",
    )
    fix.add_argument(
        "--bpm",
        type=_path,
        metavar="BPM.fits",
        help="bad-pixel map from 'ccdpixfix bpm'",
    )
    fix.add_argument(
        "-o",
        "--output",
        required=True,
        type=_path,
        metavar="OUTDIR",
        help="directory for the fixed frames (created if missing)",
    )
    _batch_arguments(fix)
    fix.set_defaults(handler=handlers.fix)

    night = command(
        "night",
        "sort a night's folder of raw frames, build the map, fix the lights",
        "Sort a folder of raw frames by their headers (IMAGETYP, EXPTIME, "
        "temperature), build the bad-pixel map from its darks and flats, write "
        "it to OUTDIR/bpm.fits, and fix its light frames into OUTDIR. Tables say "
        "what was taken and what was left out, and why.",
    )
    night.add_argument("night", metavar="NIGHT", help="the folder of raw frames")
    night.add_argument(
        "-o",
        "--output",
        required=True,
        type=_path,
        metavar="OUTDIR",
        help="directory for the map and the fixed frames (created if missing)",
    )
    _hot_rate_argument(night)
    _batch_arguments(night)
    night.set_defaults(handler=handlers.night)

    plot = command(
        "plot",
        "draw what a fixed frame or a bad-pixel map holds (PNG)",
        "Draw a fixed frame with its flagged pixels marked by kind, zooms on the "
        "worst regions and the histogram of the residuals; or a bad-pixel map with "
        "its counts per kind and dark-current distribution. Needs matplotlib "
        "(pip install 'ccdpixfix[plot]').",
    )
    plot.add_argument("file", type=_path, metavar="FILE")
    plot.add_argument(
        "-o",
        "--output",
        required=True,
        type=_path,
        metavar="FILE.png",
        help="the plot to write: PNG, or PDF or SVG by the name's ending",
    )
    plot.add_argument("--overwrite", action="store_true", help="replace FILE.png")
    plot.add_argument(
        "--hdu",
        metavar="NAME_OR_INDEX",
        help="image to draw (default: the first image)",
    )
    plot.add_argument(
        "--original",
        type=_path,
        metavar="RAW.fits",
        help="the frame before it was fixed: the zooms show it beside the fixed one",
    )
    plot.set_defaults(handler=handlers.plot)

    info = command(
        "info",
        "show what a bad-pixel map or a fixed frame holds",
        "Show the counts per flag of a bad-pixel map or a fixed frame, and how it "
        "was made.",
    )
    info.add_argument("file", type=_path, metavar="FILE")
    info.set_defaults(handler=handlers.info)
    return parser


def _stop_on_signals():
    """Make SIGTERM and SIGHUP unwind like Ctrl-C: temporaries are removed.

    Returns the handlers that were there before.
    """
    from ..pipeline.batch import Terminated

    def terminate(signum, frame):
        raise Terminated(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                previous[signum] = signal.signal(signum, terminate)
    return previous


def _default(function, name):
    """The default of ``function``'s keyword ``name``: written once, there."""
    return inspect.signature(function).parameters[name].default


def _map_help(name):
    from ..badpixels.options import MapOptions

    return MapOptions.help(name)


def _hot_rate_argument(parser):
    from ..badpixels.options import MapOptions

    parser.add_argument(
        "--hot-rate",
        type=float,
        default=MapOptions.default("hot_rate"),
        metavar="E_PER_S",
        help=f"{MapOptions.help('hot_rate')} "
        f"(default: {MapOptions.default('hot_rate'):g})",
    )


def _batch_arguments(fix):
    """Options of a batch of frames: outputs, processes, the step's options."""
    fix.add_argument(
        "--overwrite",
        action="store_true",
        help="replace fixed frames that already exist",
    )
    fix.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave fixed frames that already exist as they are (to resume a "
        "batch; its --report is written anew)",
    )
    from ..pipeline.batch import fix_files

    jobs = _default(fix_files, "jobs")
    fix.add_argument(
        "--jobs",
        type=int,
        default=jobs,
        metavar="N",
        help=f"frames processed at once, one process each (default: {jobs})",
    )
    fix.add_argument(
        "--cfa",
        metavar="PATTERN",
        help="Bayer pattern of a colour camera's raw frames (RGGB, BGGR, GRBG, "
        "GBRG): each colour is handled with same-colour neighbours only; by "
        "default from the BAYERPAT keyword; 'none' treats the data as grey",
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
    _step_options(fix)
    _detector_arguments(fix)
    _output_arguments(fix)


def _output_arguments(fix):
    """Options of a batch's files and run: which image, what is written, where."""
    fix.add_argument(
        "--hdu",
        metavar="NAME_OR_INDEX",
        help="image to process (default: the first image)",
    )
    fix.add_argument(
        "--compress",
        action="store_true",
        help="write the fixed frames tile-compressed, losslessly (GZIP_2): "
        "about half the size for float32 frames",
    )
    fix.add_argument(
        "--planes",
        default=",".join(OUTPUT_EXTENSIONS),
        metavar="LIST",
        help="extensions to write beside the image, comma-separated, from "
        f"{','.join(OUTPUT_EXTENSIONS)} (default: all); 'none' for none",
    )
    fix.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on this Dask cluster (tcp://HOST:PORT); the workers "
        "must see the files at the same paths",
    )
    from ..pipeline.batch import fix_files

    timeout = _default(fix_files, "cluster_timeout")
    fix.add_argument(
        "--cluster-timeout",
        type=float,
        default=timeout,
        metavar="SECONDS",
        help="with --scheduler: how long to wait to connect, and for a cluster "
        "left with no worker or no scheduler, before the files left are "
        f"reported as failed (default: {timeout:g})",
    )
    fix.add_argument(
        "--report",
        type=_path,
        metavar="REPORT.json",
        help="write a JSON summary per file",
    )
    fix.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no per-file lines, errors only",
    )


def _detector_arguments(fix):
    """--detector and --detector-model: the engine of the transient search."""
    from ..transients.learned import DETECTORS

    fix.add_argument(
        "--detector",
        choices=DETECTORS,
        default=DETECTORS[0],
        help="engine proposing cosmic rays: classical (default), or a trained "
        'network from an extra: deepcr (pip install "ccdpixfix[deepcr]"), '
        'cosmic-conn (pip install "ccdpixfix[cosmic-conn]"); ccdpixfix '
        "confirms and grows what it proposes",
    )
    fix.add_argument(
        "--detector-model",
        metavar="NAME",
        help="model of the learned detector (deepcr: ACS-WFC, WFC3-UVIS, decam; "
        "cosmic-conn: ground_imaging, NRES, HST_ACS_WFC; or a .pth file)",
    )


def _step_options(fix):
    """Options of `fix_pixels` a user tunes: defaults and help from `FixOptions`."""
    from ..pipeline.options import FixOptions

    def add(name, metavar, **keywords):
        default = FixOptions.default(name)
        shown = f"{default:g}" if isinstance(default, float) else default
        fix.add_argument(
            "--" + name.replace("_", "-"),
            default=default,
            metavar=metavar,
            help=f"{FixOptions.help(name)} (default: {shown})",
            **keywords,
        )

    add("threshold", "SIGMA", type=float)
    add("contrast", "RATIO", type=float)
    add("grow", "PIXELS", type=int)
    add("method", None, choices=("median", "mean"))
    add("max_radius", "PIXELS", type=int)
    state = fix.add_mutually_exclusive_group()
    state.add_argument(
        "--raw",
        dest="raw",
        action="store_const",
        const=True,
        default=FixOptions.default("raw"),
        help="the frames are raw (bias and dark current still in): each pixel is "
        "predicted from the map's dark rate and response (default: decided "
        "from each frame's header and data type)",
    )
    state.add_argument(
        "--calibrated",
        dest="raw",
        action="store_const",
        const=False,
        help="the frames are dark-subtracted and flat-fielded: searched as they are",
    )
    fix.add_argument(
        "--warm-is-bad", action="store_true", help=FixOptions.help("warm_is_bad")
    )
    for name, metavar in (
        ("saturation", "ADU"),
        ("gain", "E_PER_ADU"),
        ("read_noise", "ELECTRONS"),
    ):
        fix.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            metavar=metavar,
            help=FixOptions.help(name),
        )


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
    previous = _stop_on_signals()
    try:
        return args.handler(args)
    except BrokenPipeError:
        # The reader (head, less) has gone: nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except UsageError as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        print(
            f"ccdpixfix {args.command}: interrupted ({signal.Signals(signum).name}); "
            "no partial file was left",
            file=sys.stderr,
        )
        return 128 + signum
    except MemoryError as error:
        # numpy names the array it could not allocate; the rest of its
        # message is for programmers.
        detail = str(error).split(" for an array")[0] or "not enough memory"
        print(
            f"ccdpixfix {args.command}: error: not enough memory ({detail})",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError, TypeError) as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
