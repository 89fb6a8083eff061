"""What each ``ccdpixfix`` subcommand does, once its arguments are parsed.

`ccdpixfix.cli` builds the parser and dispatches here; the handlers only
turn arguments into library calls and results into lines and exit codes.
"""

import contextlib
import dataclasses
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

from .._version import __version__
from ..colour.cfa import cfa_pattern

__all__ = ["UsageError", "bpm", "demo", "fix", "info", "night", "plot"]


# The client's own timeout is given a few seconds more before we give up on it.
_CONNECT_MARGIN_SECONDS = 5.0
# A map that masks more than this share of the pixels is no map of this
# camera's defects (real detectors: well under 1 %): another camera's, or
# made from lights. Its frames would come out masked and unrepaired, as
# most bad pixels would have no good neighbour, with exit status 0.
_MAP_MOST_BAD = 0.5
# What a plot may be named (matplotlib writes it in the format its name
# says); a map is named as a FITS file (FITS_SUFFIXES).
_PLOT_SUFFIXES = (".png", ".pdf", ".svg")


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
    from ..io.fits import OutputRules

    return OutputRules(overwrite=overwrite).protecting(inputs)


def _check_output(path, rules, what="output", created=None):
    """A usage error, before any work, for an output that cannot be written.

    ``created``: a directory the run creates (``-o``), which may hold it.
    """
    if os.path.isdir(path):
        raise UsageError(f"{what}: {path} is a directory; name a file")
    try:
        rules.check(path)
    except (ValueError, FileExistsError) as error:
        raise UsageError(f"{what}: {error}") from None
    parent = Path(path).parent
    made = created is not None and os.path.abspath(parent) == os.path.abspath(created)
    if not parent.is_dir() and not made:
        raise UsageError(f"{what}: the directory {parent} does not exist")
    _check_writable(parent, what)


def _check_suffix(path, suffixes, what, kind):
    """A usage error for an output not named like what it will hold: a map
    named ``.png``, or a plot named ``.fits`` that a later run would take
    for a frame."""
    if not str(path).lower().endswith(suffixes):
        raise UsageError(
            f"{what} {path}: {kind}; name it with one of {', '.join(suffixes)}"
        )


def _check_writable(directory, what):
    """A usage error, before any work, for a directory nothing can be written
    in (read-only, or without permission): not after every frame is made.
    One still to be made is judged by the nearest directory above it that
    exists, where it would be made."""
    made = Path(os.path.abspath(directory))
    while not made.exists() and made.parent != made:
        made = made.parent
    if made.exists() and not made.is_dir():
        raise UsageError(f"{what}: cannot make {directory}: {made} is not a directory")
    if made.is_dir() and not os.access(made, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: cannot write in {made} (read-only or no permission)")


def _expand(arguments, command, take=("any",), quiet=False):
    """Files named by the arguments: files, directories and glob patterns.

    A directory is sorted by the frames' headers (`ccdpixfix.pipeline.night`): only
    the kinds in ``take`` are taken from it, and a table says what was taken
    and what was left out, and why. Files and patterns are taken as given.

    Returns the files (each once, in order), the number of arguments that
    matched nothing (reported on stderr), and what each file was taken as
    (``"dark"``, ``"flat"``, ``"light"``, or ``"any"`` where nothing says).
    """
    files, missing, seen, uses = [], 0, set(), {}
    for argument in arguments:
        if os.path.isdir(argument):
            taken = _from_directory(argument, command, take, quiet)
            uses.update(taken)
            found = list(taken)
        elif not os.path.exists(argument) and glob.has_magic(argument):
            found = sorted(glob.glob(argument))
        else:
            found = [argument]
        if not found:
            # A folder of frames none of which this command takes (its table
            # says what they are) holds files: it matches, but nothing here.
            what = (
                f"no {' or '.join(take)} frame among its files"
                if os.path.isdir(argument) and any(Path(argument).iterdir())
                else "no file matches"
            )
            print(f"ccdpixfix {command}: error: {argument}: {what}", file=sys.stderr)
            missing += 1
        for path in found:
            if os.path.exists(path) and not os.path.isfile(path):
                # A FIFO, a device or a socket: reading it would block. Left
                # to fail with its reason (fix), or out (bpm).
                uses[path] = "unreadable"
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
    return files, missing, uses


def _from_directory(directory, command, take, quiet):
    """The files of a directory that ``command`` takes, with its table."""
    from ..io.images import is_image_name
    from ..pipeline.night import sort_night, summary_lines

    # Hidden files are left out as a shell's * does: among them the
    # temporaries of a run that was killed. TIFF and PNG files have no
    # header to tell their kind: they are taken.
    images = sorted(
        str(path)
        for path in Path(directory).iterdir()
        if path.is_file() and not path.name.startswith(".") and is_image_name(path)
    )
    night = sort_night(directory)
    uses = {f.path: f.use for f in night if f.use in take or f.use == "any"}
    # Taken, to be reported as failed like any bad file (bpm leaves it out).
    uses.update(
        {f.path: "unreadable" for f in night if f.reason.startswith("unreadable")}
    )
    if not quiet and any(f.use != "any" for f in night):
        print(f"{directory}: frames sorted by IMAGETYP")
        print("\n".join(summary_lines(night, take)))
    return {**dict(sorted(uses.items())), **dict.fromkeys(images, "any")}


# Smallest simulated frame of the demo: the noise is fitted on rows far
# enough apart, and each defect kind needs room for a few pixels.
_DEMO_MIN_SIZE = 64


def demo(args):
    from ..datasets import demo

    if args.size < _DEMO_MIN_SIZE:
        raise UsageError(f"--size must be at least {_DEMO_MIN_SIZE}")
    if args.seed < 0:
        # numpy's generators take no negative seed (an error of exit 1)
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.output is not None:
        _check_output_directory(args.output, "--output")
        _check_writable(args.output, "--output")
    start = time.perf_counter()
    report = demo.run_demo(
        size=args.size, seed=args.seed, output=args.output, overwrite=args.overwrite
    )
    print(report)
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0


def _check_map_options(args):
    """--hot-rate and --gain checked before any work, named as given."""
    from ..badpixels.options import MapOptions

    try:
        MapOptions.from_keywords(hot_rate=args.hot_rate, gain=args.gain)
    except ValueError as error:
        raise _as_flag_error(error) from None


def _as_flag_error(error):
    """An option's ValueError as a usage error naming the option's flag."""
    name = str(error).split()[0]
    return UsageError(str(error).replace(name, "--" + name.replace("_", "-"), 1))


def bpm(args):
    from ..io.fits import FITS_SUFFIXES

    _check_engine(args)
    _check_map_options(args)
    if args.cfa is not None:
        _checked_pattern(args.cfa)
    for argument in [*args.darks, *(args.flats or [])]:
        # A typo in a name: the map would be made without those frames.
        if not os.path.lexists(argument) and not glob.has_magic(argument):
            raise UsageError(f"{argument}: no such file or directory")
    darks, missing_darks, uses = _expand(args.darks, "bpm", take=("dark", "flat"))
    if args.flats:
        flats, missing_flats, flat_uses = _expand(args.flats, "bpm", take=("flat",))
        uses.update(flat_uses)
        flats = _readable(flats, uses)
    else:
        # A night's folder given as DARK: its flats go to the map as flats.
        flats, missing_flats = [p for p in darks if uses.get(p) == "flat"], 0
    darks = [path for path in darks if uses.get(path) not in ("flat", "unreadable")]
    darks, flats = _by_their_headers(darks, flats, uses)
    unreadable = [path for path, use in uses.items() if use == "unreadable"]
    for path in unreadable:
        print(f"ccdpixfix bpm: error: {path}: unreadable, left out", file=sys.stderr)
    if missing_darks or missing_flats:
        raise UsageError("every DARK and --flats argument must name files")
    if not darks:
        raise UsageError("no dark among the files given")
    rules = _rules(args.overwrite, [*darks, *flats])
    # Checked before the map is computed: a bad output loses no work.
    _check_output(args.output, rules, "-o")
    _check_suffix(args.output, FITS_SUFFIXES, "-o", "a map is a FITS file")
    bpm, left_out = _make_map(darks, flats, args, "bpm")
    _write_map(bpm, args.output, args.overwrite, rules)
    print(bpm.summary())
    print(f"written to {args.output}")
    return 1 if unreadable or left_out else 0


def _by_their_headers(darks, flats, uses):
    """Darks and flats, with the files named one by one judged by IMAGETYP.

    A folder's files are sorted by their headers (`_from_directory`); a file
    named as a dark whose header calls it a flat is used as one, and one it
    calls a light is left out, each with one line, as in a folder (a shell's
    ``night/*`` gave another map than ``night/``); one that cannot be read
    is marked unreadable in ``uses``, to be left out and named. Biases
    stay: the map takes them for the bias level only.
    """
    from ..pipeline.night import frame_kind

    kept = []
    for path in darks:
        named = uses.get(path, "any") == "any"  # not sorted from a folder
        header = _header_of(path) if named else {}
        if header is None:
            uses[path] = "unreadable"  # left out with its line, as in a folder
            continue
        kind = frame_kind(header)
        if kind == "flat":
            print(f"ccdpixfix bpm: note: {path}: a flat (IMAGETYP), used as one")
            flats = [*flats, path]
        elif kind in ("light", "dark flat"):
            print(
                f"ccdpixfix bpm: warning: {path}: a {kind} frame (IMAGETYP), "
                "left out of the darks",
                file=sys.stderr,
            )
        else:
            kept.append(path)
    return kept, flats


def _readable(paths, uses):
    """The ``paths`` that can be read; the others marked unreadable in
    ``uses`` (a FIFO, a corrupt file), to be left out and named."""
    kept = []
    for path in paths:
        if uses.get(path) == "unreadable" or _header_of(path) is None:
            uses[path] = "unreadable"
        else:
            kept.append(path)
    return kept


def _header_of(path):
    """The cards of a FITS file's image header over its primary's: {} for a
    TIFF or PNG file, None for a file that cannot be read as an image."""
    from astropy.io import fits

    from ..io.fits import image_hdu_index
    from ..io.images import is_image_name

    if is_image_name(path):
        return {}
    if not os.path.isfile(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdulist:
                index = image_hdu_index(hdulist)
                return {**hdulist[0].header, **hdulist[index].header}
    except (OSError, ValueError, IndexError, TypeError):
        return None


def _image_as_frame(path):
    """A TIFF or PNG file read as a frame; a FITS path as it is."""
    from ..io.images import is_image_name, read_image

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
    from ..kernels import needs_compiling

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
    from ..badpixels.core import BadPixelMap

    options, planes = _batch_settings(args)
    bpm = None
    if args.bpm is not None:
        if not os.path.isfile(args.bpm):
            # A FIFO would block the reader for ever; a directory says
            # "[Errno 21]".
            raise UsageError(f"cannot use --bpm {args.bpm}: {_why_no_file(args.bpm)}")
        try:
            bpm = BadPixelMap.read(args.bpm)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot use --bpm {args.bpm}: {error}") from None
    frames, missing, _ = _expand(args.frames, "fix", ("light",), args.quiet)
    return _run_batch(frames, missing, bpm, args.bpm, args, options, planes)


def _batch_settings(args):
    """The checked options of a batch: those of `fix_pixels`, and the planes."""
    _check_engine(args)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip-existing contradict each other")
    if args.grow < 0:
        raise UsageError("--grow must be a whole number of pixels >= 0")
    if args.scheduler is not None and not args.scheduler.strip():
        # An empty variable in a script: not a request to run here.
        raise UsageError("--scheduler is empty: give the scheduler's address")
    return _step_options(args), _planes(args.planes)


def _check_output_directory(output, what="-o"):
    """An output that names a directory (-o of fix and night, --output of
    demo): not a file, and not named like a frame or a report (a directory
    ``fixed.fits`` was made for ``-o fixed.fits``, where a file was meant)."""
    from ..io.fits import is_fits_name
    from ..io.images import is_image_name

    if Path(output).exists() and not Path(output).is_dir():
        raise UsageError(f"{what} {output} exists and is not a directory")
    # (a report's name too: -o given where --report was meant)
    named_like_a_file = (
        is_fits_name(output)
        or is_image_name(output)
        or str(output).lower().endswith(".json")
    )
    if not Path(output).exists() and named_like_a_file:
        raise UsageError(
            f"{what} {output} is named like a file, but {what} names a "
            "directory: the frames keep their names in it"
        )


def _run_batch(frames, missing, bpm, bpm_path, args, options, planes):
    """Fix ``frames`` into ``args.output``: checks, progress, report, summary."""
    from ..pipeline.batch import fix_files

    if not frames:
        raise UsageError("no frame to fix")
    _check_output_directory(args.output)
    _check_writable(args.output, "-o")
    protect = [bpm_path] if bpm_path is not None else []
    rules = _rules(args.overwrite, [*frames, *protect])
    report_rules = _report_rules(args, frames, rules)
    jobs = _capped_jobs(args.jobs, len(frames))
    if bpm is not None:
        _check_map_credible(bpm, bpm_path)
    _preflight(frames, bpm, bpm_path, args)
    _note_leftovers(args.output, args.command)
    made_here = not os.path.exists(args.output)
    bar = _progress_bar(len(frames), args.quiet)
    finished, started = [], time.time()
    report = _progress_lines(args.command, bar, finished)
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
            _write_report(args.report, results, options, report_rules)
        raise
    finally:
        bar.close()
        if client is not None:
            _close_client(client)
    failed = sum(result["status"] == "error" for result in results) + missing
    skipped = sum(result["status"] == "skipped" for result in results)
    # A report that cannot be written fails the run, not a frame (its own
    # line says so).
    reported = args.report is None or _write_report(
        args.report, results, options, report_rules
    )
    if made_here:
        # The directory this run made, where nothing was written: not left
        # behind empty (rmdir removes only an empty one).
        with contextlib.suppress(OSError):
            os.rmdir(args.output)
    if not args.quiet:
        fixed = len(results) - failed + missing - skipped
        kept = f", {skipped} already there" if skipped else ""
        written = fixed or skipped
        where = f", written to {args.output}" if written else ""
        print(f"{fixed} of {len(results) + missing} frames fixed{kept}{where}")
    return 1 if failed or not reported else 0


def _report_rules(args, frames, rules):
    """The rules the --report is written by, checked before any work.

    A run resumed with --skip-existing replaces its own report (the
    interrupted run wrote one): it lists every frame again.
    """
    if args.report is None:
        return rules
    if args.skip_existing and _is_a_report(args.report):
        rules = dataclasses.replace(rules, overwrite=True)
    _check_report(args.report, frames, rules, args.output)
    return rules


def _progress_lines(command, bar, finished):
    """What is said as each frame ends: one line for a bad file (its
    warnings are in the report), one per warning of a good one."""

    def report(result):
        finished.append(result)
        bar.update(1)
        name = _printable(result["input"])
        if result["status"] == "error":
            bar.write(
                f"ccdpixfix {command}: error: {name}: {_printable(result['error'])}",
                file=sys.stderr,
            )
            return
        for text in result["warnings"]:
            bar.write(
                f"ccdpixfix {command}: warning: {name}: {_printable(text)}",
                file=sys.stderr,
            )

    return report


def _printable(name):
    """``name`` (a file name, a message naming one) on one line: a newline
    or another control character shown escaped (``\\n``), so that each bad
    file stays one line."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(name))


def _note_leftovers(output, command):
    """Say so where a killed run left its temporaries in the output directory.

    They are not removed: another run may be writing there now.
    """
    from ..io.fits import is_temporary_name

    try:
        names = os.listdir(output)
    except OSError:
        return  # no directory yet, or one that cannot be listed: said later
    leftovers = sorted(name for name in names if is_temporary_name(name))
    if leftovers:
        print(
            f"ccdpixfix {command}: note: {output} holds {len(leftovers)} "
            f"temporary file(s) of an interrupted run ({leftovers[0]}...): "
            "remove them once no run writes there",
            file=sys.stderr,
        )


def _check_report(path, frames, rules, output):
    """A usage error for a --report that would take another file's place."""
    from ..io.fits import is_fits_name
    from ..io.images import is_image_name
    from ..pipeline.batch import outputs_of

    planned = {
        os.path.abspath(target)
        for frame in frames
        for target in outputs_of(frame, output)
    }
    if os.path.abspath(path) in planned:
        raise UsageError(f"--report {path} is also a fixed frame's name")
    if is_fits_name(path) or is_image_name(path):
        # A JSON report never takes the place of an image, even with
        # --overwrite, which is for the fixed frames.
        raise UsageError(
            f"--report {path} is named like an image; the report is JSON: name it "
            "REPORT.json"
        )
    _check_output(path, rules, "--report", created=output)


def night(args):
    from ..pipeline.night import sort_night, summary_lines

    options, planes = _batch_settings(args)
    _check_map_options(args)
    if not os.path.isdir(args.night):
        raise UsageError(f"{args.night} is not a directory")
    files = sort_night(args.night)
    if not any(f.kind for f in files):
        raise UsageError(
            f"no file of {args.night} names its kind (IMAGETYP): give the darks to "
            "'ccdpixfix bpm' and the frames to 'ccdpixfix fix'"
        )
    if not args.quiet:
        print(f"{args.night}: frames sorted by IMAGETYP")
        print("\n".join(summary_lines(files, ("dark", "flat", "light"))))
    darks = [f.path for f in files if f.use == "dark"]
    flats = [f.path for f in files if f.use == "flat"]
    lights = [f.path for f in files if f.use == "light"]
    lights += [f.path for f in files if f.reason.startswith("unreadable")]
    if not darks:
        raise UsageError(f"{args.night} holds no usable dark: the map needs darks")
    if not lights:
        # Checked before the map is made and written: the run would fail
        # after it, leaving a map nobody asked for alone.
        raise UsageError(
            f"{args.night} holds no frame to fix (IMAGETYP light or object): "
            "for a map alone, use 'ccdpixfix bpm'"
        )
    if os.path.realpath(args.output) == os.path.realpath(args.night):
        # Checked before the map is made: nothing is written among the raw
        # frames.
        raise UsageError(
            f"-o {args.output} is the night's own directory: the map and the "
            "fixed frames would be written among the raw ones; choose another "
            "directory"
        )
    _check_output_directory(args.output)
    map_path = Path(args.output) / "bpm.fits"
    _check_map_name_free(lights, map_path, args.output)
    made_here = not os.path.exists(args.output)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    try:
        bpm, left_out = _night_map(map_path, darks, flats, args)
    except BaseException:
        if made_here:  # no map: the directory made for it is not left empty
            with contextlib.suppress(OSError):
                os.rmdir(args.output)
        raise
    status = _run_batch(lights, 0, bpm, map_path, args, options, planes)
    return max(status, 1 if left_out else 0)


def _check_map_name_free(lights, map_path, output):
    """A usage error, before the map is made, for a light whose fixed frame
    would take the map's name (a light named bpm.fits failed after the map
    was written, and a rerun with --skip-existing took it for done)."""
    from ..pipeline.batch import outputs_of

    for light in lights:
        if any(
            os.path.abspath(target) == os.path.abspath(map_path)
            for target in outputs_of(light, output)
        ):
            raise UsageError(
                f"{light} would be fixed into {map_path}, the name of the night's "
                "map: rename it, or use 'ccdpixfix bpm' and 'ccdpixfix fix'"
            )


def _night_map(path, darks, flats, args):
    """The night's map, made and written or read again with --skip-existing,
    and how many of its darks and flats were left out."""
    from ..badpixels.core import BadPixelMap

    if args.skip_existing and path.exists():
        print(f"{path}: already there, used as the map")
        return BadPixelMap.read(path), 0
    rules = _rules(args.overwrite, [*darks, *flats])
    _check_output(path, rules, "the map")
    bpm, left_out = _make_map(darks, flats, args, "night")
    _write_map(bpm, path, args.overwrite, rules)
    if not args.quiet:
        print(bpm.summary())
        print(f"map written to {path}")
    return bpm, left_out


def _write_map(bpm, path, overwrite, rules):
    """Write the map; an error of the system names the map's path (a full
    disk: astropy's message names neither the file nor the cause)."""
    from ..pipeline.batch import os_error_line

    try:
        bpm.write(path, overwrite=overwrite, rules=rules)
    except OSError as error:
        line = os_error_line(error, path)
        if not line.startswith("cannot write"):
            line = f"cannot write {path}: {line}"
        raise OSError(line) from None


def _make_map(darks, flats, args, command):
    """make_bad_pixel_map on the files, its warnings as command-line lines.

    Returns the map and how many files were left out (`_usable_frames`).
    """
    from astropy.utils.exceptions import AstropyUserWarning
    from astropy.wcs import FITSFixedWarning

    from ..badpixels.core import make_bad_pixel_map

    darks, left_darks = _usable_frames(darks, "dark", command)
    flats, left_flats = _usable_frames(flats, "flat", command)
    if not darks:
        raise UsageError("no dark can be used: the map needs darks")
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
        print(f"ccdpixfix {command}: warning: {warning.message}", file=sys.stderr)
    warned = {str(warning.message) for warning in caught}
    for note in bpm.meta.get("notes", []):
        if note not in warned:  # said once
            print(f"note: {note}")
    return bpm, left_darks + left_flats


def _usable_frames(paths, kind, command):
    """The darks or flats whose image can be read whole, holds a finite
    pixel, and has the shape most of them have; each other one named in one
    line and left out (a truncated dark aborted the whole map, and in a
    night every frame with it). Returns them and how many were left out.
    """
    from collections import Counter

    from ..io.images import is_image_name

    shapes, reasons = {}, {}
    for path in paths:
        if is_image_name(path):
            continue  # a TIFF or PNG file: read, and judged, as a frame later
        try:
            shapes[path] = _checked_image_shape(path)
        except (OSError, ValueError, TypeError) as error:
            reasons[path] = str(error).strip().splitlines()[0]
    common = Counter(shapes.values()).most_common(1)
    for path, shape in shapes.items():
        if shape != common[0][0]:
            reasons[path] = (
                f"{shape[-1]} x {shape[-2]} px, where the other {kind}s are "
                f"{common[0][0][-1]} x {common[0][0][-2]} px"
            )
    for path, reason in reasons.items():
        print(
            f"ccdpixfix {command}: error: {path}: {reason}; {kind} left out",
            file=sys.stderr,
        )
    return [path for path in paths if path not in reasons], len(reasons)


def _checked_image_shape(path):
    """The shape of a FITS file's image: raises for a truncated file (astropy
    says so on opening it), a compressed one that is damaged (astropy stops
    before the checksum: its wrong pixels went into the map without a
    word), or one without a finite pixel. Integer pixels are not read here:
    the map reads them once."""
    from ..io.fits import image_hdu_index, open_checked

    with _damage_named(), open_checked(path) as hdulist:
        data = hdulist[image_hdu_index(hdulist)].data
        if data is None or data.ndim < 2:
            raise ValueError("no image")
        if data.dtype.kind == "f" and not np.isfinite(data).any():
            raise ValueError("no finite pixel")
        return data.shape


def _step_options(args):
    """The options of `fix_pixels` the command line gives, checked."""
    from ..pipeline.options import FixOptions
    from ..utils.ccd import check_positive

    options = {
        "transients": not args.no_transients,
        "replace": not args.no_replace,
        "threshold": args.threshold,
        "contrast": args.contrast,
        "method": args.method,
        "max_radius": args.max_radius,
        "warm_is_bad": args.warm_is_bad,
        "grow": args.grow,
        "raw": args.raw,
    }
    for name in ("saturation", "gain", "read_noise"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.detector != "classical" or args.detector_model is not None:
        options.update(_detector_options(args))
    try:
        FixOptions.from_keywords(**options)
        check_positive(cluster_timeout=args.cluster_timeout)
    except ValueError as error:
        raise _as_flag_error(error) from None
    if args.cfa is not None:
        options["cfa"] = _checked_pattern(args.cfa)
    return options


def _detector_options(args):
    """--detector and --detector-model as options, checked (extra installed)."""
    from ..transients.learned import check_detector, require

    if args.detector == "classical":
        raise UsageError(
            "--detector-model needs a learned --detector (deepcr, cosmic-conn)"
        )
    given = {} if args.detector_model is None else {"model": args.detector_model}
    try:
        check_detector(args.detector, given)
        require(args.detector)
    except (ValueError, ImportError) as error:
        raise UsageError(f"--detector {args.detector}: {error}") from None
    return {"detector": args.detector, "detector_options": given or None}


def _planes(text):
    """``--planes`` as a tuple of extension names, or a usage error."""
    from ..io.fits import OUTPUT_EXTENSIONS

    if text.strip().lower() == "none":
        return ()
    planes = tuple(name.strip().upper() for name in text.split(",") if name.strip())
    if not planes:
        # An unset variable in a script, not a wish for no planes ('none').
        raise UsageError(
            f"--planes is empty: choose from {','.join(OUTPUT_EXTENSIONS)} or 'none'"
        )
    unknown = sorted(set(planes) - set(OUTPUT_EXTENSIONS))
    if unknown:
        raise UsageError(
            f"--planes: unknown {', '.join(unknown)}; choose from "
            f"{','.join(OUTPUT_EXTENSIONS)} or 'none'"
        )
    return planes


def _preflight(frames, bpm, bpm_path, args):
    """Problems that would fail every frame: usage errors.

    A wrong --hdu, a map of another detector, or an output directory that is
    the input's would give one identical line per file and write nothing.
    A problem that some frames only have is theirs, reported with them: the
    first frame alone does not decide (a stray small file listed first
    stopped the whole batch).
    """
    first = frames[0]
    if os.path.realpath(args.output) == os.path.realpath(os.path.dirname(first)):
        raise UsageError(
            f"-o {args.output} is the frames' own directory: every output would "
            "replace its input; choose another directory"
        )
    first_problem = ""
    for frame in frames:
        problem = _frame_problem(frame, bpm, bpm_path, args)
        if problem is None:
            return
        first_problem = first_problem or problem
    # Not one frame can be fixed so: the first such problem is the run's.
    if first_problem:
        raise UsageError(first_problem)


def _frame_problem(path, bpm, bpm_path, args):
    """Why ``path`` cannot be fixed with this --hdu and --bpm: a line, "" for
    a problem of the file itself (reported with it), None for none."""
    from astropy.io import fits

    from ..io.fits import image_hdu_index
    from ..io.images import is_image_name

    if is_image_name(path) or not os.path.isfile(path):
        return ""
    try:
        # A damaged file's warnings are said with its error, not here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdulist:
                index = image_hdu_index(hdulist, _hdu_argument(args.hdu))
                shape = hdulist[index].shape
    except (OSError, ValueError) as error:
        if args.hdu is not None and "HDU" in str(error):
            return f"--hdu {args.hdu}: {path} {error}"
        return ""
    if bpm is not None and shape[-2:] != bpm.shape:
        return (
            f"{'--bpm' if args.command == 'fix' else 'the map'} {bpm_path} is a map "
            f"of {bpm.shape[1]} x {bpm.shape[0]} px; "
            f"{path} is {shape[-1]} x {shape[-2]} px, and no frame fits it"
        )
    return None


def _check_map_credible(bpm, bpm_path):
    """A usage error for a map that masks most pixels (`_MAP_MOST_BAD`)."""
    masked = int(np.count_nonzero(bpm.mask))
    if masked > _MAP_MOST_BAD * bpm.mask.size:
        raise UsageError(
            f"the map {bpm_path} masks {masked / bpm.mask.size:.0%} of the pixels "
            f"({masked} of {bpm.mask.size}): no camera has so many bad pixels, "
            "and most could not be repaired from good neighbours; is it the "
            "map of another camera, or made from the wrong frames? (make it "
            "again with 'ccdpixfix bpm')"
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
    from ..pipeline.batch import outputs_of

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


def _is_a_report(path):
    """Whether ``path`` holds a report of ccdpixfix fix (JSON, its version
    and files named)."""
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"ccdpixfix_version", "files"} <= set(
        document
    )


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
    from .. import visualization as plotting
    from ..badpixels.core import BadPixelMap

    try:
        import matplotlib  # noqa: F401  (the figures need it)
    except ImportError:
        error = "plots need matplotlib: pip install 'ccdpixfix[plot]'"
        print(f"ccdpixfix plot: error: {error}", file=sys.stderr)
        return 1
    inputs = [args.file] + ([args.original] if args.original is not None else [])
    for path in inputs:
        if not os.path.isfile(path):
            print(
                f"ccdpixfix plot: error: {path}: {_why_no_file(path)}", file=sys.stderr
            )
            return 1
    rules = _rules(args.overwrite, inputs)
    _check_output(args.output, rules, "-o")
    _check_suffix(
        args.output, _PLOT_SUFFIXES, "-o", "a plot is written as PNG, PDF or SVG"
    )
    try:
        with _damage_named():
            is_map = _is_map(args.file)
        if is_map:
            figure = plotting.plot_bad_pixel_map(BadPixelMap.read(args.file))
        else:
            original = None
            if args.original is not None:
                original = _plain_frame(args.original, args.hdu)
            with _damage_named():
                frame = _fixed_frame(args.file, args.hdu)
            if original is not None:
                _note_other_original(frame, original, args.original)
            figure = plotting.plot_frame(frame, original=original)
    except (OSError, ValueError) as error:
        print(f"ccdpixfix plot: error: {args.file}: {error}", file=sys.stderr)
        return 1
    from ..pipeline.batch import os_error_line

    try:
        with rules.path(args.output) as temporary:
            figure.savefig(temporary, format=Path(args.output).suffix[1:].lower())
    except OSError as error:  # a full disk: said with the plot's name
        line = os_error_line(error, args.output)
        if not line.startswith("cannot write"):
            line = f"cannot write {args.output}: {line}"
        print(f"ccdpixfix plot: error: {line}", file=sys.stderr)
        return 1
    print(f"written to {args.output}")
    return 0


def _is_map(path):
    from astropy.io import fits

    with fits.open(path) as hdulist:
        return "CPFBPM" in hdulist[0].header


def _fixed_frame(path, hdu):
    """The frame of a file with its FLAGS plane, as `plot_frame` draws it."""
    from ..io.fits import open_checked

    with open_checked(path) as hdulist:
        frame = _image_of(hdulist, hdu)
        if "FLAGS" not in hdulist:
            raise ValueError(
                "it has no FLAGS extension: it was not fixed by ccdpixfix (run "
                "'ccdpixfix fix' on it first, and plot the fixed file)"
            )
        frame.flags = _flags_of(hdulist, np.shape(frame.data))
    return frame


def _note_other_original(frame, original, path):
    """Say so when ``original`` is not the frame ``frame`` was fixed from.

    A fix leaves every pixel it did not replace exactly as it was; a plot
    beside another frame of the same shape (another exposure, or the frame
    before calibration) would show differences that the fix did not make.
    """
    from ..flags import PixelFlag

    fixed, before = np.asarray(frame.data), np.asarray(original.data)
    if fixed.shape != before.shape:
        return  # plot_frame names the shapes
    kept = (frame.flags & np.uint16(PixelFlag.REPLACED)) == 0
    with np.errstate(invalid="ignore"):
        changed = kept & (fixed.astype(np.float64) != before.astype(np.float64))
    changed &= np.isfinite(fixed) | np.isfinite(before)
    if changed.any():
        print(
            f"ccdpixfix plot: note: --original {path} differs from the fixed "
            f"frame in {np.count_nonzero(changed)} pixels the fix did not "
            "replace: is it the frame this one was fixed from?",
            file=sys.stderr,
        )


def _plain_frame(path, hdu):
    """The image of a file, to draw beside its fixed version."""
    from ..io.fits import open_checked

    try:
        with _damage_named(), open_checked(path) as hdulist:
            return _image_of(hdulist, hdu)
    except (OSError, ValueError) as error:
        raise ValueError(f"--original {path}: {error}") from None


def _image_of(hdulist, hdu):
    """The image ``--hdu`` names (else the first) of an open file, as a frame."""
    from ..io.fits import frame_from_hdu, image_hdu_index

    return frame_from_hdu(hdulist[image_hdu_index(hdulist, _hdu_argument(hdu))])


@contextlib.contextmanager
def _damage_named():
    """Read a file inside this block: a truncated or damaged one is one error.

    astropy notes a truncated file as a warning (printed as a WARNING line
    of its own), or not at all where only the last image ends early, and
    fails later with numpy's TypeError, which names neither the file nor
    the cause ("buffer is too small"); here either way it becomes a
    ValueError that says so. Other warnings pass on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        failure = None
        try:
            yield
        except (OSError, ValueError, TypeError) as error:
            failure = error
    damage = [
        str(w.message).strip().splitlines()[0]
        for w in caught
        if any(word in str(w.message) for word in ("truncated", "corrupt"))
    ]
    if isinstance(failure, TypeError) and "buffer is too small" in str(failure):
        # numpy's words for an image whose data end early.
        damage.append(str(failure))
    if damage:
        raise ValueError(f"truncated or damaged file ({damage[0]})") from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if failure is not None:
        raise failure


def _why_no_file(path):
    """Why ``path``, which is no regular file, is not read: a FIFO or a
    device would block the reader."""
    return "not a regular file" if os.path.exists(path) else "no such file"


def _flags_of(hdulist, shape):
    """The FLAGS plane of a fixed file whose image has ``shape``, checked:
    an image of whole numbers from 0 to 65535 (`plot` and `info`)."""
    from ..flags import as_flags

    flags = hdulist["FLAGS"]
    if not flags.is_image or flags.data is None:
        raise ValueError("its FLAGS extension holds no image of flags")
    if flags.data.shape != tuple(shape):
        raise ValueError(
            f"its FLAGS extension ({flags.data.shape}) is not of the image's "
            f"shape ({tuple(shape)})"
        )
    return as_flags(flags.data, "FLAGS")


def info(args):

    from ..badpixels.core import BadPixelMap
    from ..io.fits import image_hdu_index, open_checked
    from ..pipeline.batch import flag_counts
    from ..utils.provenance import join_history

    if not os.path.isfile(args.file):
        print(
            f"ccdpixfix info: error: {args.file}: {_why_no_file(args.file)}",
            file=sys.stderr,
        )
        return 1
    try:
        with _damage_named(), open_checked(args.file) as hdulist:
            is_map = "CPFBPM" in hdulist[0].header
            has_flags = "FLAGS" in hdulist
            if not is_map and has_flags:
                image = hdulist[image_hdu_index(hdulist)]
                counts = flag_counts(_flags_of(hdulist, image.shape))
                history = [
                    record
                    for hdu in hdulist
                    for record in join_history(hdu.header.get("HISTORY", []))
                ]
    except (OSError, ValueError) as error:
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
