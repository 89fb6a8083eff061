"""The ``ccdpixfix`` command: subcommands parse their arguments and call the library."""

import argparse
import sys
import time
from pathlib import Path

from ._version import __version__

__all__ = ["main"]

_DEMO_EPILOG = """\
examples:
  ccdpixfix demo                      # simulate, find, fix, score (about 20 s)
  ccdpixfix demo --output demo-night  # also write the frames and the map as FITS
"""


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="ccdpixfix",
        description="Find and repair bad pixels in CCD and CMOS images.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="simulate a night, build the map, fix the frames, score against the truth",
        description="Simulate a small night with known defects (darks, flats, three "
        "star fields), build the bad-pixel map, fix the frames and print what was "
        "found against the truth.",
        epilog=_DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit status.

    0 when everything went well, 1 when some work failed, 2 for a usage
    error.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (OSError, ValueError, TypeError) as error:
        print(f"ccdpixfix {args.command}: error: {error}", file=sys.stderr)
        return 1


def _demo(args):
    from . import demo

    if args.size < 64:
        print("ccdpixfix demo: error: --size must be at least 64", file=sys.stderr)
        return 2
    start = time.perf_counter()
    report = demo.run_demo(
        size=args.size, seed=args.seed, output=args.output, overwrite=args.overwrite
    )
    print(report)
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
