"""The ``ccdpixfix`` command: subcommands parse their arguments and call the library.

Exit status: 0 when everything went well, 1 when some files failed, 2 for a
usage error (bad arguments, an unreadable map).
"""

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from . import _commands as handlers
from ._commands import UsageError
from ._version import __version__
from .io import OUTPUT_EXTENSIONS

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
        type=Path,
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
        help="gain in e-/ADU, overriding the GAIN keyword of the darks",
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
        type=Path,
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
    plot.add_argument("file", type=Path, metavar="FILE")
    plot.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.png")
    plot.add_argument("--overwrite", action="store_true", help="replace FILE.png")
    plot.add_argument(
        "--hdu",
        metavar="NAME_OR_INDEX",
        help="image to draw (default: the first image)",
    )
    plot.add_argument(
        "--original",
        type=Path,
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
    info.add_argument("file", type=Path, metavar="FILE")
    info.set_defaults(handler=handlers.info)
    return parser


def _stop_on_signals():
    """Make SIGTERM and SIGHUP unwind like Ctrl-C: temporaries are removed.

    Returns the handlers that were there before.
    """
    from .batch import Terminated

    def terminate(signum, frame):
        raise Terminated(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                previous[signum] = signal.signal(signum, terminate)
    return previous


def _hot_rate_argument(parser):
    parser.add_argument(
        "--hot-rate",
        type=float,
        default=0.5,
        metavar="E_PER_S",
        help="dark current (e-/s above the typical pixel) from which a "
        "pixel is HOT (default: 0.5)",
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
    fix.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="SIGMA",
        help="detection threshold in units of the pixel noise (default: 5)",
    )
    _step_options(fix)
    fix.add_argument(
        "--grow",
        type=int,
        default=0,
        metavar="PIXELS",
        help="rings of pixels added around every cosmic ray and hot pixel found "
        "(default: 0)",
    )
    _detector_arguments(fix)
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
    fix.add_argument(
        "--cluster-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --scheduler: how long to wait to connect, and for a cluster "
        "left with no worker or no scheduler, before the files left are "
        "reported as failed (default: 60)",
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


def _detector_arguments(fix):
    """--detector and --detector-model: the engine of the transient search."""
    from .learned import DETECTORS

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
    """Options of `fix_pixels` a user tunes, with its defaults."""
    import inspect

    from .pipeline import fix_pixels

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(fix_pixels).parameters.items()
    }
    fix.add_argument(
        "--contrast",
        type=float,
        default=defaults["contrast"],
        metavar="RATIO",
        help="how much sharper than a star a transient must be: its excess "
        "over its neighbours divided by theirs over the background (default: "
        f"{defaults['contrast']:g}; a centred star of FWHM 1.5 px reaches 3; "
        "raise it for undersampled frames)",
    )
    fix.add_argument(
        "--method",
        choices=("median", "mean"),
        default=defaults["method"],
        help="estimate of a replaced pixel from its good neighbours "
        f"(default: {defaults['method']})",
    )
    state = fix.add_mutually_exclusive_group()
    state.add_argument(
        "--raw",
        dest="raw",
        action="store_const",
        const=True,
        default=None,
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
        "--warm-is-bad",
        action="store_true",
        help="mask and replace the map's WARM pixels too (for frames that are "
        "not dark-subtracted)",
    )
    fix.add_argument(
        "--saturation",
        type=float,
        metavar="ADU",
        help="level at which a pixel is saturated (default: SATURATE in the "
        "header, else the largest value of an integer type)",
    )
    fix.add_argument(
        "--gain",
        type=float,
        metavar="E_PER_ADU",
        help="gain in e-/ADU, overriding the header (EGAIN, GAIN)",
    )
    fix.add_argument(
        "--read-noise",
        type=float,
        metavar="ELECTRONS",
        help="read noise in e-, overriding the header (RDNOISE)",
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
    except (OSError, ValueError, TypeError) as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
