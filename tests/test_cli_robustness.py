"""The command line under bad conditions: odd files, failing disks, Ctrl-C."""

import gzip
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

from ccdpixfix.datasets import SimulatedCamera


def command(*args):
    return [sys.executable, "-m", "ccdpixfix", *map(str, args)]


def run(*args, **kwargs):
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=300, **kwargs
    )


def leftovers(directory):
    """Temporary files (".NAME.XXXX.tmp.fits") left in ``directory``."""
    return [name for name in os.listdir(directory) if ".tmp" in name]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    camera = SimulatedCamera((384, 384), seed=6)
    for index in range(8):
        camera.science(seed=index)[0].write(root / f"frame{index}.fits")
    return root


def test_odd_fits_files_get_one_line_each(tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "empty.fits").write_bytes(b"")
    fits.PrimaryHDU().writeto(odd / "header_only.fits")
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="E", array=np.ones(3))]
    )
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(odd / "table.fits")
    # five planes: neither an image nor a colour cube
    fits.PrimaryHDU(np.ones((5, 16, 16), np.float32)).writeto(odd / "cube.fits")
    # cut short, and a header card spoiled: astropy's own WARNING lines and
    # the warnings of a file that failed are not printed beside its error
    whole = fits.HDUList([fits.PrimaryHDU(np.ones((64, 64), np.float32))])
    whole.writeto(odd / "cut.fits")
    (odd / "cut.fits").write_bytes((odd / "cut.fits").read_bytes()[:-5000])
    spoiled = bytearray((odd / "table.fits").read_bytes())
    spoiled[100:180] = b"X" * 80
    (odd / "spoiled.fits").write_bytes(bytes(spoiled))
    # a name with a newline in it still makes one line, shown escaped
    (odd / "new\nline.fits").write_bytes(b"not FITS " * 400)
    result = run("fix", *sorted(odd.iterdir()), "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("cut.fits") == 1
    assert result.stderr.count("spoiled.fits") == 1
    assert "WARNING" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 7
    assert any("new\\nline.fits: " in line for line in lines)
    reasons = {
        "empty.fits": "",
        "header_only.fits": "no image",
        "table.fits": "no image",
        "cube.fits": "colour cube of three planes (NAXIS=3, data shape (5, 16, 16))",
    }
    for name, reason in reasons.items():
        assert any(name in line and reason in line for line in lines), name
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def _small_file_limit():
    # A full disk: writes beyond 100 kB fail (EFBIG) instead of killing us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def _run_on_a_full_disk(*args):
    """The command line where writes beyond 100 kB fail."""
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_small_file_limit,
    )


def test_a_failing_write_leaves_nothing_behind(frames, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = _run_on_a_full_disk(
        "fix", frames / "frame0.fits", frames / "frame1.fits", "-o", out
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count(": error: ") == 2
    assert os.listdir(out) == []


def test_a_run_that_writes_nothing_leaves_no_empty_directory(tmp_path):
    out = tmp_path / "out"
    result = run("fix", tmp_path / "missing.fits", "-o", out)
    assert result.returncode == 1
    assert "missing.fits: no such file" in result.stderr
    assert not out.exists()
    assert "0 of 1 frames fixed" in result.stdout and "written to" not in result.stdout
    out.mkdir()
    result = run("fix", tmp_path / "missing.fits", "-o", out)
    assert "written to" not in result.stdout
    # a night whose only dark cannot be read: no map, no directory for it
    night = tmp_path / "night"
    night.mkdir()
    camera = SimulatedCamera((64, 64), seed=6)
    dark = camera.dark(300.0, seed=1)
    dark.meta["IMAGETYP"] = "Dark"
    dark.write(night / "dark.fits")
    whole = (night / "dark.fits").read_bytes()
    (night / "dark.fits").write_bytes(whole[: len(whole) - 5000])
    light = camera.science(seed=1)[0]
    light.meta["IMAGETYP"] = "Light"
    light.write(night / "light.fits")
    result = run("night", night, "-o", tmp_path / "reduced")
    assert result.returncode == 2 and "no dark can be used" in result.stderr
    assert not (tmp_path / "reduced").exists()


def test_a_plot_that_fills_the_disk_names_itself(frames, tmp_path):
    pytest.importorskip("matplotlib")
    fixed = run("fix", frames / "frame0.fits", "-o", tmp_path / "fixed")
    assert fixed.returncode == 0, fixed.stderr
    target = tmp_path / "plots" / "frame0.png"
    target.parent.mkdir()
    result = _run_on_a_full_disk(
        "plot", tmp_path / "fixed" / "frame0.fits", "-o", target
    )
    assert result.returncode == 1
    assert f"cannot write {target}: no space left on the device" in result.stderr
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(target.parent) == []


def test_ctrl_c_leaves_whole_files_and_a_rerun_continues(frames, tmp_path, foreground):
    # 32 frames: the batch lasts long enough to be interrupted mid-way even
    # on a busy machine
    batch = tmp_path / "batch"
    batch.mkdir()
    for copy in range(4):
        for index in range(8):
            shutil.copy(frames / f"frame{index}.fits", batch / f"f{copy}{index}.fits")
    out = tmp_path / "out"
    process = subprocess.Popen(
        command("fix", batch, "-o", out, "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # a finished output, not the temporary being written
        if out.exists() and any(
            n.endswith(".fits") and ".tmp" not in n for n in os.listdir(out)
        ):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert leftovers(out) == []
    written = sorted(os.listdir(out))
    assert 1 <= len(written) < 32
    for name in written:
        with fits.open(out / name) as hdulist:  # whole, readable files
            assert hdulist["FLAGS"].data.shape == (384, 384)
    rerun = run("fix", batch, "-o", out, "--skip-existing", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert len(os.listdir(out)) == 32
    summary = run("fix", batch, "-o", out, "--skip-existing")
    assert "32 already there" in summary.stdout


def test_darks_without_exptime_or_gain(tmp_path):
    camera = SimulatedCamera((96, 96), seed=2)
    for index in range(3):
        dark = camera.dark(300.0, seed=index)
        for key in ("EXPTIME", "EXPOSURE", "GAIN"):
            del dark.meta[key]
        dark.write(tmp_path / f"dark{index}.fits")
    result = run("bpm", tmp_path / "dark*.fits", "-o", tmp_path / "bpm.fits")
    assert result.returncode == 0, result.stderr
    assert "warning: no usable GAIN" in result.stderr
    assert "note: no EXPTIME" in result.stdout


def test_same_file_twice_and_an_unusable_output_directory(frames, tmp_path):
    first = frames / "frame0.fits"
    twice = run("fix", first, str(first), frames / "frame0*.fits", "-o", tmp_path / "a")
    assert twice.returncode == 0, twice.stderr
    assert "given twice, processed once" in twice.stderr
    assert os.listdir(tmp_path / "a") == ["frame0.fits"]
    blocked = tmp_path / "not_a_directory"
    blocked.write_text("a file where the output directory should be")
    result = run("fix", first, "-o", blocked)
    assert result.returncode == 2
    assert "not_a_directory" in result.stderr and "Traceback" not in result.stderr
    assert blocked.read_text().startswith("a file")


def test_a_demo_too_large_for_memory_says_so_in_one_line(tmp_path):
    # 1e6 x 1e6 pixels: terabytes for any frame, on any machine
    result = run("demo", "--size", "1000000", cwd=tmp_path)
    assert result.returncode == 1
    assert "not enough memory" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags, reason",
    [
        (np.full((20, 30), np.nan, np.float32), "whole numbers from 0 to 65535"),
        (np.full((20, 30), -5, np.int32), "found -5"),
        (np.zeros((5, 5), np.uint16), "not of the image's shape"),
    ],
)
def test_info_names_a_file_whose_flags_are_not_flags(tmp_path, flags, reason):
    path = tmp_path / "odd.fits"
    image = fits.PrimaryHDU(np.zeros((20, 30), np.float32))
    fits.HDUList([image, fits.ImageHDU(flags, name="FLAGS")]).writeto(path)
    result = run("info", path)
    assert result.returncode == 1
    assert f"{path}: " in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command_name", ["info", "plot"])
@pytest.mark.parametrize("cut", ["half", "last block"])
def test_a_truncated_file_is_named_as_such_in_one_line(
    frames, tmp_path, cut, command_name
):
    pytest.importorskip("matplotlib")
    fixed = tmp_path / "fixed"
    assert run("fix", frames / "frame0.fits", "-o", fixed).returncode == 0
    whole = (fixed / "frame0.fits").read_bytes()
    # Cut in the first image's data, or in the last extension's only.
    end = len(whole) // 2 if cut == "half" else len(whole) - 2880
    broken = tmp_path / "broken.fits"
    broken.write_bytes(whole[:end])
    before = broken.read_bytes()
    extra = ["-o", tmp_path / "broken.png"] if command_name == "plot" else []
    result = run(command_name, broken, *extra)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # One line, ours, naming the file and the cause: no astropy WARNING line,
    # no "buffer is too small" alone.
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ccdpixfix {command_name}: error: {broken}: ")
    assert "truncated or damaged file" in lines[0]
    assert broken.read_bytes() == before
    assert not (tmp_path / "broken.png").exists()
    if command_name == "plot":
        # The same file as --original beside a good fixed frame.
        result = run(
            "plot",
            fixed / "frame0.fits",
            "--original",
            broken,
            "-o",
            tmp_path / "b.png",
        )
        assert result.returncode == 1
        assert f"--original {broken}: truncated or damaged file" in result.stderr
        assert "WARNING" not in result.stderr


@pytest.mark.parametrize("bad_share, refused", [(1.0, True), (0.6, True), (0.1, False)])
def test_a_map_that_masks_most_pixels_is_refused(frames, tmp_path, bad_share, refused):
    from ccdpixfix import BadPixelMap, PixelFlag

    shape = fits.getdata(frames / "frame0.fits").shape
    flags = np.zeros(shape, np.uint16)
    flags[:, : round(bad_share * shape[1])] = PixelFlag.HOT
    BadPixelMap(flags, {}).write(tmp_path / "map.fits")
    out = tmp_path / "out"
    result = run(
        "fix", frames / "frame0.fits", "--bpm", tmp_path / "map.fits", "-o", out
    )
    if refused:
        assert result.returncode == 2
        assert f"the map {tmp_path / 'map.fits'} masks {bad_share:.0%}" in result.stderr
        assert "Traceback" not in result.stderr
        assert not out.exists() or not os.listdir(out)
    else:
        assert result.returncode == 0, result.stderr
        assert (out / "frame0.fits").exists()


def _three_darks(tmp_path, size):
    """A folder of three simulated 300 s darks of ``size`` x ``size`` px."""
    darks = tmp_path / "darks"
    darks.mkdir()
    camera = SimulatedCamera((size, size), seed=6)
    for seed in range(3):
        camera.dark(300.0, seed=seed).write(darks / f"d{seed}.fits")
    return darks


def test_a_map_that_fills_the_disk_names_itself(tmp_path):
    darks = _three_darks(tmp_path, 384)
    target = tmp_path / "bpm.fits"
    result = _run_on_a_full_disk("bpm", darks, "-o", target)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot write {target}: no space left on the device" in result.stderr
    assert os.listdir(tmp_path) == ["darks"]


def test_a_dark_or_flat_named_with_a_typo_is_a_usage_error(tmp_path):
    # The map would have been made without those frames.
    darks = _three_darks(tmp_path, 64)
    for extra in (["--flats", str(tmp_path / "flast")], [str(tmp_path / "nope.fits")]):
        result = run("bpm", darks, *extra, "-o", tmp_path / "bpm.fits")
        assert result.returncode == 2
        assert "no such file or directory" in result.stderr
    assert not (tmp_path / "bpm.fits").exists()


def test_a_bad_dark_named_by_hand_is_left_out_and_the_map_made(tmp_path):
    darks = _three_darks(tmp_path, 128)
    (darks / "bad.fits").write_bytes(b"")
    (darks / "text.fits").write_text("not FITS")
    named = sorted(darks.iterdir())
    result = run("bpm", *named, "-o", tmp_path / "bpm.fits")
    assert result.returncode == 1
    assert "bad.fits: unreadable, left out" in result.stderr
    assert "text.fits: unreadable, left out" in result.stderr
    assert (tmp_path / "bpm.fits").is_file()


@pytest.mark.parametrize("command", ["bpm", "night"])
def test_a_truncated_or_empty_dark_is_left_out_and_the_rest_goes_on(tmp_path, command):
    # Both aborted the whole map, and in a night every frame with it.
    darks = _three_darks(tmp_path, 128)
    whole = (darks / "d0.fits").read_bytes()
    (darks / "cut.fits").write_bytes(whole[: len(whole) - 5000])
    header = fits.getheader(darks / "d0.fits")
    fits.PrimaryHDU(np.full((128, 128), np.nan, np.float32), header).writeto(
        darks / "blank.fits"
    )
    # a damaged byte in a compressed dark: astropy reads wrong pixels
    packed = bytearray(gzip.compress(whole))
    packed[len(packed) // 2] ^= 0xFF
    (darks / "damaged.fits.gz").write_bytes(bytes(packed))
    if command == "night":
        light = SimulatedCamera((128, 128), seed=6).science(seed=1)[0]
        light.meta["IMAGETYP"] = "Light"
        light.write(darks / "light.fits")
        result = run("night", darks, "-o", tmp_path / "out")
    else:
        result = run("bpm", darks, "-o", tmp_path / "out.fits")
    assert result.returncode == 1, result.stderr
    assert "cut.fits: truncated or damaged file" in result.stderr
    assert "blank.fits: no finite pixel; dark left out" in result.stderr
    assert "damaged.fits.gz: damaged compressed file" in result.stderr
    assert "Traceback" not in result.stderr
    if command == "night":
        assert (tmp_path / "out" / "bpm.fits").is_file()
        assert (tmp_path / "out" / "light.fits").is_file()
    else:
        assert (tmp_path / "out.fits").is_file()


def test_outputs_and_map_options_are_checked_before_any_work(frames, tmp_path):
    darks = _three_darks(tmp_path, 64)
    # a directory as the map's name, even with --overwrite
    (tmp_path / "taken").mkdir()
    result = run("bpm", darks, "-o", tmp_path / "taken", "--overwrite")
    assert result.returncode == 2 and "is a directory; name a file" in result.stderr
    # the map's options, by the names they were given
    for option, value in (("--hot-rate", "-1"), ("--gain", "0")):
        result = run("bpm", darks, "-o", tmp_path / "m.fits", option, value)
        assert result.returncode == 2, result.stderr
        assert f"{option} must be a positive number" in result.stderr
    assert not (tmp_path / "m.fits").exists()
    # -o of fix names a directory: not empty, not named like a frame
    for output in ("", " ", str(tmp_path / "fixed.fits"), str(tmp_path / "r.json")):
        result = run("fix", frames / "frame0.fits", "-o", output)
        assert result.returncode == 2, result.stderr
        assert "empty path" in result.stderr or "named like a file" in result.stderr
    assert not (tmp_path / "fixed.fits").exists()
    assert not (tmp_path / "r.json").exists()
    # a growth that would flag the frame whole
    result = run("fix", frames / "frame0.fits", "-o", tmp_path / "g", "--grow", "1000")
    assert result.returncode == 2 and "--grow must be at most 10" in result.stderr
    assert not (tmp_path / "g").exists()
    # a map named like an image, a plot named like a frame
    result = run("bpm", darks, "-o", tmp_path / "map.png")
    assert result.returncode == 2 and "a map is a FITS file" in result.stderr
    result = run("plot", darks / "d0.fits", "-o", tmp_path / "plot.fits")
    assert result.returncode == 2 and "a plot is written as PNG" in result.stderr
    assert not (tmp_path / "map.png").exists()
    assert not (tmp_path / "plot.fits").exists()
    # the report may go into the output directory the run creates
    out = tmp_path / "new"
    result = run("fix", frames / "frame0.fits", "-o", out, "--report", out / "r.json")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["frame0.fits", "r.json"]


def test_skip_existing_does_not_take_a_broken_output_for_done(frames, tmp_path):
    out = tmp_path / "out"
    first = run("fix", frames / "frame0.fits", "-o", out)
    assert first.returncode == 0, first.stderr
    (out / "frame1.fits").write_bytes(b"")  # an interrupted copy
    (out / "frame2.fits").write_bytes(b"SIMPLE  = junk")
    # a copy cut after its first block (its header), and a compressed one
    # cut short
    whole = (out / "frame0.fits").read_bytes()
    (out / "frame3.fits").write_bytes(whole[:2880])
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "frame4.fits.gz").write_bytes(
        gzip.compress((frames / "frame4.fits").read_bytes())
    )
    fixed = run("fix", tmp_path / "gz" / "frame4.fits.gz", "-o", tmp_path / "gzout")
    assert fixed.returncode == 0, fixed.stderr
    packed = (tmp_path / "gzout" / "frame4.fits.gz").read_bytes()
    (out / "frame4.fits.gz").write_bytes(packed[: len(packed) // 2])
    inputs = [frames / f"frame{index}.fits" for index in range(4)]
    result = run(
        "fix", *inputs, tmp_path / "gz" / "frame4.fits.gz", "-o", out, "--skip-existing"
    )
    assert result.returncode == 1
    assert "1 already there" in result.stdout
    for name in ("frame1.fits", "frame2.fits", "frame3.fits", "frame4.fits.gz"):
        assert f"{name} exists but is not a whole output" in result.stderr
    assert (out / "frame1.fits").read_bytes() == b""  # never overwritten unasked


def test_a_damaged_compressed_frame_is_an_error_not_wrong_pixels(frames, tmp_path):
    # astropy stops before the gzip checksum: a damaged byte gave wrong
    # pixels, written as fixed without a word
    packed = bytearray(gzip.compress((frames / "frame0.fits").read_bytes()))
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "frame0.fits.gz").write_bytes(bytes(packed))
    result = run("fix", tmp_path / "in" / "frame0.fits.gz", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "frame0.fits.gz: damaged compressed file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_info_and_plot_of_a_damaged_compressed_output_say_so(frames, tmp_path):
    fixed = run("fix", frames / "frame0.fits", "-o", tmp_path / "out")
    assert fixed.returncode == 0, fixed.stderr
    packed = bytearray(gzip.compress((tmp_path / "out" / "frame0.fits").read_bytes()))
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "bad.fits.gz").write_bytes(bytes(packed))
    for command in [("info",), ("plot", "-o", tmp_path / "bad.png")]:
        result = run(command[0], tmp_path / "bad.fits.gz", *command[1:])
        assert result.returncode == 1
        assert "bad.fits.gz: damaged compressed file" in result.stderr, command
    assert not (tmp_path / "bad.png").exists()


def test_an_empty_scheduler_and_leftover_temporaries_are_named(frames, tmp_path):
    out = tmp_path / "out"
    result = run("fix", frames / "frame0.fits", "-o", out, "--scheduler", "")
    assert result.returncode == 2 and "--scheduler is empty" in result.stderr
    out.mkdir()
    leftover = out / ".frame1.fits.cpf-0123456789ab-abcdefgh.tmp.fits"
    leftover.write_bytes(b"half a frame")
    result = run("fix", frames / "frame0.fits", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "1 temporary file(s) of an interrupted run" in result.stderr
    assert leftover.exists()  # another run may be writing it


@pytest.mark.skipif(not os.path.isdir("/proc/sys"), reason="Linux's /proc/sys")
def test_a_directory_nothing_can_be_written_in_is_refused_before_work(frames, tmp_path):
    # /proc/sys takes no new file, even from root: the refusal comes before
    # any frame or map is computed, and names the directory, not a temporary
    for output in ("/proc/sys", "/proc/sys/new/folder"):
        result = run("fix", frames / "frame0.fits", "-o", output)
        assert result.returncode == 2, result.stderr
        assert "cannot write in /proc/sys" in result.stderr
        assert ".tmp" not in result.stderr and "Errno" not in result.stderr
    result = run("fix", frames / "frame0.fits", "-o", frames / "frame0.fits" / "sub")
    assert result.returncode == 2
    assert "frame0.fits is not a directory" in result.stderr
    darks = _three_darks(tmp_path, 64)
    result = run("bpm", darks, "-o", "/proc/sys/bpm.fits")
    assert result.returncode == 2 and "cannot write in /proc/sys" in result.stderr
