"""The documentation's structure, checked without building it: pages linked
from the index, a reference page per part of the package, the flow diagram,
the benchmarks' stamp. (tests/test_docs.py builds the pages and checks that
every exported name is in them.)"""

import datetime
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"

# The parts of the package, as docs/how_it_works.rst draws them and
# docs/reference/ names its pages.
PARTS = (
    "flags",
    "kernels",
    "noise",
    "badpixels",
    "transients",
    "replace",
    "colour",
    "pipeline",
    "io",
    "cli",
    "datasets",
    "visualization",
    "utils",
)


def toctree_entries(page):
    """The documents a page's toctrees list."""
    entries, inside = [], False
    for line in (DOCS / page).read_text().splitlines():
        if line.startswith(".. toctree::"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and line.strip() and not line.strip().startswith(":"):
            entries.append(line.strip())
    return entries


def test_index_links_every_page():
    entries = toctree_entries("index.rst")
    for page in ("install", "contributing", "citation", "api", "benchmarks"):
        assert page in entries
    pages = {path.stem for path in DOCS.glob("*.rst")}
    assert pages - {"index"} == set(entries)


def test_reference_has_a_page_per_part():
    entries = toctree_entries("api.rst")
    assert entries == [f"reference/{part}" for part in PARTS]
    for part in PARTS:
        text = (DOCS / "reference" / f"{part}.rst").read_text()
        assert ".. automodule:: ccdpixfix." in text


def test_how_it_works_opens_with_the_flow():
    text = (DOCS / "how_it_works.rst").read_text()
    diagram = text[: text.index("What it finds")]
    steps = [
        "raw FITS",
        "io/",
        "fix_pixels",
        "badpixels/",
        "noise/",
        "kernels/",
        "transients/",
        "replace/",
        "io/",
        "MASK",
        "fixed FITS",
    ]
    positions = [diagram.index(steps[0])]
    for step in steps[1:]:
        positions.append(diagram.index(step, positions[-1] + 1))
    for around in ("cli/", "Dask"):
        assert around in diagram


def test_citation_file_names_the_version():
    import ccdpixfix

    text = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", text, re.M)
    assert re.search(rf"^version: {re.escape(ccdpixfix.__version__)}$", text, re.M)


def test_benchmark_stamp_names_commit_and_date():
    script = (
        "import sys; sys.path.insert(0, 'benchmarks'); "
        "from _stamp import stamp; print(stamp('benchmarks/bench_quality.py'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    first = result.stdout.splitlines()[0]
    assert first.startswith("bench_quality.py at ")
    assert "commit " in first or "ccdpixfix " in first
    today = datetime.datetime.now(datetime.timezone.utc).date()
    dates = {str(today), str(today - datetime.timedelta(days=1))}
    assert any(date in first for date in dates), first
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        assert "print(stamp(__file__)" in script.read_text(), script.name
