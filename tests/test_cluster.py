"""Batches on a real Dask cluster (LocalCluster on loopback)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ccdpixfix import make_bad_pixel_map
from ccdpixfix.batch import fix_files
from ccdpixfix.datasets import SimulatedCamera

distributed = pytest.importorskip("distributed")  # the dask extra
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: runs side by side never clash
            silence_logs=50,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_night")
    camera = SimulatedCamera((256, 256), seed=12)
    bpm = make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)])
    for index in range(8):
        camera.science(seed=40 + index)[0].write(root / f"frame{index}.fits")
    bpm.write(root / "bpm.fits")
    return root, bpm, sorted(root.glob("frame*.fits"))


def same_files(first, second):
    for path in Path(first).iterdir():
        with fits.open(path) as a, fits.open(Path(second) / path.name) as b:
            assert [h.name for h in a] == [h.name for h in b]
            for hdu_a, hdu_b in zip(a, b, strict=True):
                assert hdu_a.header == hdu_b.header
                assert np.array_equal(hdu_a.data, hdu_b.data)
                assert hdu_a.data.tobytes() == hdu_b.data.tobytes()


def test_cluster_batch_equals_the_local_one(cluster, night, tmp_path):
    _, client = cluster
    _, bpm, frames = night
    local = fix_files(frames, bpm, tmp_path / "local")
    remote = fix_files(frames, bpm, tmp_path / "remote", client=client)
    assert [r["status"] for r in remote] == ["ok"] * len(frames)
    assert [r["counts"] for r in remote] == [r["counts"] for r in local]
    same_files(tmp_path / "local", tmp_path / "remote")


def test_a_bad_file_is_reported_and_the_rest_finish(cluster, night, tmp_path):
    _, client = cluster
    _, bpm, frames = night
    broken = tmp_path / "broken.fits"
    broken.write_text("not FITS")
    results = fix_files(
        [frames[0], broken, frames[1]], bpm, tmp_path / "out", client=client
    )
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert "SIMPLE" in results[1]["error"]
    assert sorted(os.listdir(tmp_path / "out")) == ["frame0.fits", "frame1.fits"]


def test_command_line_with_a_scheduler(cluster, night, tmp_path):
    local_cluster, _ = cluster
    root, _, _ = night
    base = [
        sys.executable,
        "-m",
        "ccdpixfix",
        "fix",
        str(root / "frame*.fits"),
        "--bpm",
        str(root / "bpm.fits"),
    ]
    here = subprocess.run(
        [*base, "-o", str(tmp_path / "here")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    there = subprocess.run(
        [
            *base,
            "-o",
            str(tmp_path / "there"),
            "--scheduler",
            local_cluster.scheduler_address,
            "--report",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert here.returncode == there.returncode == 0, there.stderr
    assert "8 of 8 frames fixed" in there.stdout
    same_files(tmp_path / "here", tmp_path / "there")
    unreachable = subprocess.run(
        [*base, "-o", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unreachable.returncode == 2
    assert "cannot reach the scheduler" in unreachable.stderr


def test_a_worker_killed_mid_batch(cluster, night, tmp_path):
    _, client = cluster
    _, bpm, frames = night
    pids = list(client.run(os.getpid).values())
    victim = pids[0]
    started = threading.Event()

    def kill_after_first(_result):
        if not started.is_set():
            started.set()
            os.kill(victim, signal.SIGKILL)

    begin = time.monotonic()
    results = fix_files(
        frames, bpm, tmp_path / "out", client=client, progress=kill_after_first
    )
    assert started.is_set()
    assert [r["status"] for r in results] == ["ok"] * len(frames), results
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]
    local = fix_files(frames, bpm, tmp_path / "local")
    assert [r["counts"] for r in results] == [r["counts"] for r in local]
    same_files(tmp_path / "local", tmp_path / "out")
    client.wait_for_workers(2, timeout=60)
    assert time.monotonic() - begin < 120
