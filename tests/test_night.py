"""A night's folder of mixed raw frames, sorted by their headers (issue 17)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ccdpixfix import BadPixelMap, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.night import frame_kind, sort_night
from ccdpixfix.pipeline.night import summary_lines


def command(*args):
    return [sys.executable, "-m", "ccdpixfix", *map(str, args)]


def run(*args):
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=300)


# What several capture programs write in IMAGETYP.
SPELLINGS = {
    "dark": ["Dark Frame", "DARK", "dark"],  # MaxIm/SBIG, N.I.N.A., IRAF
    "flat": ["Flat Field", "FLAT", "Flat Frame"],  # SBIG, N.I.N.A., MaxIm
    "light": ["Light Frame", "LIGHT", "object"],  # MaxIm, N.I.N.A., IRAF
    "bias": ["Bias Frame", "zero"],  # MaxIm, IRAF
}


@pytest.mark.parametrize(
    ("kind", "spelling"),
    [(kind, spelling) for kind, names in SPELLINGS.items() for spelling in names]
    + [("dark flat", "DARKFLAT"), ("light", "Light"), ("bias", "BIAS")],
)
def test_frame_kind_reads_every_spelling(kind, spelling):
    assert frame_kind({"IMAGETYP": spelling}) == kind


def test_frame_kind_falls_back_to_obstype_and_names_unknown_kinds():
    assert frame_kind({"OBSTYPE": "OBJECT"}) == "light"
    assert frame_kind({"IMAGETYP": "  ", "OBSTYPE": "ARC"}) == "arc"
    assert frame_kind({"EXPTIME": 3}) is None


def _write(ccd, path, **cards):
    header = fits.Header(ccd.meta)
    for key, value in cards.items():
        header[key.replace("_", "-")] = value
    fits.PrimaryHDU(ccd.data, header).writeto(path)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A raw night: darks of two exposure times (and one at another
    temperature), a stray bias among them, flats, lights, a focus frame,
    a text file and a broken file."""
    root = tmp_path_factory.mktemp("night") / "raw"
    root.mkdir()
    camera = SimulatedCamera((128, 128), seed=51)
    for index, (exptime, spelling) in enumerate(
        [(300.0, "Dark Frame"), (300.0, "DARK"), (60.0, "dark"), (60.0, "DARK")]
    ):
        _write(
            camera.dark(exptime, seed=index),
            root / f"dark_{index}.fits",
            IMAGETYP=spelling,
            CCD_TEMP=-10.0 + 0.1 * index,
        )
    _write(
        camera.dark(300.0, seed=9),
        root / "dark_warm.fit",
        IMAGETYP="dark",
        CCD_TEMP=5.0,
    )
    bias = camera.dark(300.0, seed=10)
    _write(bias, root / "dark_9.fits", IMAGETYP="Bias Frame", EXPTIME=0.0)
    for index, spelling in enumerate(SPELLINGS["flat"]):
        _write(
            camera.flat(seed=20 + index), root / f"flat_{index}.fits", IMAGETYP=spelling
        )
    for index, spelling in enumerate(SPELLINGS["light"]):
        _write(
            camera.science(seed=30 + index)[0],
            root / f"light_{index}.fits",
            IMAGETYP=spelling,
            CCD_TEMP=-10.0,
        )
    _write(camera.science(seed=40)[0], root / "focus.fits", IMAGETYP="focus")
    (root / "notes.txt").write_text("seeing 2 arcsec")
    (root / "broken.fits").write_text("not FITS")
    return root


def test_sort_night_takes_and_leaves_out_with_reasons(night):
    files = {os.path.basename(f.path): f for f in sort_night(night)}
    uses = {name: f.use for name, f in files.items()}
    assert [n for n, use in sorted(uses.items()) if use == "dark"] == [
        "dark_0.fits",
        "dark_1.fits",
        "dark_2.fits",
        "dark_3.fits",
    ]
    assert sorted(n for n, use in uses.items() if use == "flat") == [
        "flat_0.fits",
        "flat_1.fits",
        "flat_2.fits",
    ]
    assert sorted(n for n, use in uses.items() if use == "light") == [
        "light_0.fits",
        "light_1.fits",
        "light_2.fits",
    ]
    assert "bias" in files["dark_9.fits"].reason
    assert "taken at 5 C" in files["dark_warm.fit"].reason
    assert "'focus'" in files["focus.fits"].reason
    assert files["broken.fits"].reason.startswith("unreadable")
    assert "notes.txt" not in files


def _small_night(tmp_path, lights):
    """A folder of three 64 x 64 darks and lights of the given names."""
    camera = SimulatedCamera((64, 64), seed=3)
    night = tmp_path / "night"
    night.mkdir()
    for seed in range(3):
        _write(camera.dark(300.0, seed=seed), night / f"d{seed}.fits", IMAGETYP="Dark")
    for seed, name in enumerate(lights):
        _write(camera.science(seed=seed)[0], night / name, IMAGETYP="Light")
    return night


def test_a_card_that_cannot_be_parsed_does_not_stop_the_night(tmp_path):
    # ccdproc's collection of the folder's headers fails whole on one such
    # card (an unquoted DATE-OBS); each file's own header is read instead.
    night = _small_night(tmp_path, ["l0.fits", "l1.fits"])
    spoiled = bytearray((night / "l1.fits").read_bytes())
    at = spoiled.find(b"IMAGETYP=")
    card = b"DATE-OBS= 2024-03-15T20:00:00".ljust(80)
    spoiled[at + 80 : at + 160] = card  # the card after IMAGETYP
    (night / "l1.fits").write_bytes(bytes(spoiled))
    uses = {Path(f.path).name: f.use for f in sort_night(night)}
    assert uses == {"d0.fits": "dark", "d1.fits": "dark", "d2.fits": "dark",
                    "l0.fits": "light", "l1.fits": "light"}  # fmt: skip
    result = run("night", night, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "l1.fits").is_file()


def test_a_light_named_like_the_map_is_refused_before_the_map(tmp_path):
    night = _small_night(tmp_path, ["bpm.fits"])
    result = run("night", night, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "the name of the night's map" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_temperature_in_kelvin_is_read_as_one(tmp_path):
    # Some cameras write kelvin (ccdproc's raw frame: CCD-TEMP = 180.2); a
    # dark at 263.2 K is a dark at -10 C.
    camera = SimulatedCamera((32, 32), seed=3)
    for seed, temperature in enumerate((-10.0, -10.0, 263.2)):
        dark = camera.dark(300.0, seed=seed)
        _write(dark, tmp_path / f"d{seed}.fits", IMAGETYP="Dark", CCD_TEMP=temperature)
    files = sort_night(tmp_path)
    assert [f.use for f in files] == ["dark", "dark", "dark"]
    assert abs(files[2].temperature - (-9.95)) < 1e-9


def test_darks_far_from_the_lights_temperature_are_named(tmp_path):
    camera = SimulatedCamera((32, 32), seed=3)
    for seed in range(2):
        dark = camera.dark(300.0, seed=seed)
        _write(dark, tmp_path / f"d{seed}.fits", IMAGETYP="Dark", CCD_TEMP=-10.0)
    light = camera.science(seed=0)[0]
    _write(light, tmp_path / "l0.fits", IMAGETYP="Light", CCD_TEMP=140.0)
    lines = summary_lines(sort_night(tmp_path), ("dark", "light"))
    assert "note: the darks used are at -10 C, the lights at 140 C" in lines[-1]
    # near the lights' temperature (within 5 C) or for the map alone: no note
    _write(light, tmp_path / "l1.fits", IMAGETYP="Light", CCD_TEMP=-12.0)
    _write(light, tmp_path / "l2.fits", IMAGETYP="Light", CCD_TEMP=-12.0)
    assert not any(
        "note" in line
        for line in summary_lines(sort_night(tmp_path), ("dark", "light"))
    )
    (tmp_path / "l1.fits").unlink()
    (tmp_path / "l2.fits").unlink()
    assert not any(
        "note" in line for line in summary_lines(sort_night(tmp_path), ("dark",))
    )


def test_bpm_of_a_night_folder_uses_its_darks_and_flats(night, tmp_path):
    result = run("bpm", night, "-o", tmp_path / "bpm.fits")
    assert result.returncode == 1  # the broken file is named and counted
    assert "broken.fits: unreadable, left out" in result.stderr
    for text in (
        "dark_9.fits: a bias",
        "dark_warm.fit: taken at 5 C",
        "3 light frame(s), not for this command",
    ):
        assert text in result.stdout
    bpm = BadPixelMap.read(tmp_path / "bpm.fits")
    assert sorted(os.path.basename(p) for p in bpm.meta["darks"]) == [
        "dark_0.fits",
        "dark_1.fits",
        "dark_2.fits",
        "dark_3.fits",
    ]
    assert len(bpm.meta["flats"]) == 3
    # the same map as from the right files given by hand
    by_hand = make_bad_pixel_map(
        [str(night / f"dark_{i}.fits") for i in range(4)],
        [str(night / f"flat_{i}.fits") for i in range(3)],
    )
    assert (bpm.flags == by_hand.flags).all()


def test_bpm_of_files_named_one_by_one_reads_their_kinds(night, tmp_path):
    # A shell's night/* names the flats and lights as darks: their headers
    # say what they are, as in a folder (the flats made the map lose its bad
    # columns, the lights gave star cores as hot pixels).
    names = [f"dark_{i}.fits" for i in range(4)]
    names += [f"flat_{i}.fits" for i in range(3)] + [
        f"light_{i}.fits" for i in range(3)
    ]
    result = run("bpm", *(night / name for name in names), "-o", tmp_path / "b.fits")
    assert result.returncode == 0, result.stderr
    assert "flat_0.fits: a flat (IMAGETYP), used as one" in result.stdout
    assert "light_0.fits: a light frame (IMAGETYP), left out" in result.stderr
    bpm = BadPixelMap.read(tmp_path / "b.fits")
    assert len(bpm.meta["darks"]) == 4 and len(bpm.meta["flats"]) == 3
    by_hand = make_bad_pixel_map(
        [str(night / f"dark_{i}.fits") for i in range(4)],
        [str(night / f"flat_{i}.fits") for i in range(3)],
    )
    assert (bpm.flags == by_hand.flags).all()


def test_fix_of_a_night_folder_takes_its_lights(night, tmp_path):
    out = tmp_path / "out"
    result = run("fix", night, "-o", out)
    assert result.returncode == 1  # broken.fits is reported as failed
    assert "broken.fits" in result.stderr
    assert "broken.fits" not in result.stdout  # not "left out" in the table too
    assert sorted(os.listdir(out)) == ["light_0.fits", "light_1.fits", "light_2.fits"]
    assert "4 dark, 3 flat frame(s), not for this command" in result.stdout


def test_fix_of_a_folder_of_darks_says_it_holds_no_light(tmp_path):
    darks = tmp_path / "darks"
    darks.mkdir()
    camera = SimulatedCamera((64, 64), seed=3)
    for seed in range(2):
        _write(camera.dark(300.0, seed=seed), darks / f"d{seed}.fits", IMAGETYP="Dark")
    result = run("fix", darks, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert f"{darks}: no light frame among its files" in result.stderr
    assert "no file matches" not in result.stderr


def test_night_does_both_in_one_go_and_resumes(night, tmp_path):
    out = tmp_path / "reduced"
    result = run("night", night, "-o", out, "--report", tmp_path / "report.json")
    assert result.returncode == 1, result.stderr  # broken.fits
    assert sorted(os.listdir(out)) == [
        "bpm.fits",
        "light_0.fits",
        "light_1.fits",
        "light_2.fits",
    ]
    files = json.loads((tmp_path / "report.json").read_text())["files"]
    assert sorted(f["status"] for f in files) == ["error", "ok", "ok", "ok"]
    with fits.open(out / "light_0.fits") as hdulist:
        assert (hdulist["FLAGS"].data & 2048).any()  # HOT, from the night's map
    again = run("night", night, "-o", out, "--skip-existing")
    assert "already there, used as the map" in again.stdout
    assert "3 already there" in again.stdout
    refused = run("night", night, "-o", out)
    assert refused.returncode == 2 and "bpm.fits exists" in refused.stderr
    # resumed beside another camera's map: named as the night's map
    BadPixelMap(np.zeros((32, 32), np.uint16), {}).write(
        out / "bpm.fits", overwrite=True
    )
    other = run("night", night, "-o", out, "--skip-existing")
    assert other.returncode == 2
    assert f"the map {out / 'bpm.fits'} is a map of 32 x 32 px" in other.stderr
    assert "--bpm" not in other.stderr
    # into the night's own folder: refused before the map is made
    before = sorted(os.listdir(night))
    refused = run("night", night, "-o", night)
    assert refused.returncode == 2 and "the night's own directory" in refused.stderr
    assert sorted(os.listdir(night)) == before


def test_night_needs_kinds_and_darks(tmp_path):
    camera = SimulatedCamera((64, 64), seed=3)
    plain = tmp_path / "plain"
    plain.mkdir()
    frame = camera.science(seed=1)[0]
    header = fits.Header(frame.meta)
    del header["IMAGETYP"]  # nothing names its kind
    fits.PrimaryHDU(frame.data, header).writeto(plain / "a.fits")
    result = run("night", plain, "-o", tmp_path / "o")
    assert result.returncode == 2 and "names its kind (IMAGETYP)" in result.stderr
    lights = tmp_path / "lights"
    lights.mkdir()
    _write(camera.science(seed=2)[0], lights / "l.fits", IMAGETYP="Light Frame")
    result = run("night", lights, "-o", tmp_path / "o")
    assert result.returncode == 2 and "no usable dark" in result.stderr
    assert not (tmp_path / "o").exists()
    # darks and no light: refused before a map is made and written
    darks = tmp_path / "darks"
    darks.mkdir()
    for seed in range(3):
        _write(camera.dark(300.0, seed=seed), darks / f"d{seed}.fits", IMAGETYP="Dark")
    result = run("night", darks, "-o", tmp_path / "o")
    assert result.returncode == 2 and "holds no frame to fix" in result.stderr
    assert not (tmp_path / "o").exists()


def test_night_with_workers_after_a_full_size_map(tmp_path):
    """The map of 512 x 512 darks is made in the command's own process with
    its kernel threads; the frames are then fixed in forked workers, which
    must start threads of their own (before, the first threaded kernel in a
    worker waited for ever on threads it did not have)."""
    root = tmp_path / "raw"
    root.mkdir()
    camera = SimulatedCamera((512, 512), seed=61)
    for index in range(3):
        dark = camera.dark(300.0, seed=index)
        _write(dark, root / f"dark_{index}.fits", IMAGETYP="DARK")
    for index in range(2):
        science = camera.science(seed=70 + index)[0]
        _write(science, root / f"light_{index}.fits", IMAGETYP="LIGHT")
    out = tmp_path / "reduced"
    process = subprocess.Popen(
        command("night", root, "-o", out, "--jobs", 2),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()
        pytest.fail("the night's workers hung")
    assert process.returncode == 0, stderr
    assert sorted(os.listdir(out)) == ["bpm.fits", "light_0.fits", "light_1.fits"]
