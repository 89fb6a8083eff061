"""The header every benchmark prints first: what code, when, on what.

A table pasted into docs/benchmarks.rst carries the commit it was run at
(``git describe --always --dirty``: ``-dirty`` when the working tree had
uncommitted changes, which the figures then reflect), or the package
version when the code does not run from a git clone, with the date and the
versions of what the figures depend on.
"""

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# The packages whose version can move a benchmark's figures.
_PACKAGES = ("numpy", "scipy", "numba", "astropy", "ccdproc")


def code_version():
    """``git describe --always --dirty`` of the ccdpixfix being run, or
    ``ccdpixfix <version>`` outside a git clone."""
    import ccdpixfix

    source = Path(ccdpixfix.__file__).resolve().parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    version = f"ccdpixfix {ccdpixfix.__version__}"
    return f"commit {described} ({version})" if described else version


def stamp(script):
    """Two lines: the script, the code's commit and the date; the machine
    and the versions."""
    now = datetime.datetime.now(datetime.timezone.utc)
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    engine = os.environ.get("CCDPIXFIX_ENGINE", "").strip() or "default"
    return (
        f"{Path(script).name} at {code_version()}, "
        f"{now:%Y-%m-%d %H:%M} UTC, argv {' '.join(sys.argv[1:]) or '(defaults)'}\n"
        f"Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        f"engine {engine}; {', '.join(versions)}"
    )
