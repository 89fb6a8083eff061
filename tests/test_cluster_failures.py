"""The command line against clusters that are not there, not Dask, or lost.

A real scheduler and real workers run as separate processes on loopback,
the workers in another directory than the command line, as on a cluster.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from ccdpixfix import make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.io import is_temporary_name

pytest.importorskip("distributed")  # the dask extra
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def command(*args):
    return [sys.executable, "-m", "ccdpixfix", *map(str, args)]


def wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class Cluster:
    """A scheduler and ``n`` workers, each a process of its own."""

    def __init__(self, root, workdir, n_workers=1):
        self.file = root / "scheduler.json"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                self.file,
            ],
            **quiet,
        )
        assert wait_for(lambda: self.file.exists() and self.file.stat().st_size, 60)
        time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = []
        for _ in range(n_workers):
            self.add_worker(workdir, death_timeout=10)

    def add_worker(self, workdir, death_timeout=None):
        """One more worker (as a cluster's manager starts one after a loss)."""
        waits = [] if death_timeout is None else ["--death-timeout", str(death_timeout)]
        self.workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    self.file,
                    "--no-nanny",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    *waits,
                ],
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def close(self):
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.kill()
            process.wait(30)


@pytest.fixture
def frames(tmp_path):
    """Twelve frames in ``client/in`` and a different file of the same name
    in ``decoy/in``, where the workers run."""
    camera = SimulatedCamera((256, 256), seed=31)
    client, decoy = tmp_path / "client", tmp_path / "decoy"
    for folder in (client / "in", decoy / "in"):
        folder.mkdir(parents=True)
    for index in range(12):
        camera.science(seed=index)[0].write(client / "in" / f"f{index}.fits")
    camera.science(seed=99)[0].write(decoy / "in" / "f0.fits")
    return client, decoy


@pytest.fixture
def cluster(tmp_path, frames):
    _, decoy = frames
    started = Cluster(tmp_path, decoy, n_workers=1)
    yield started
    started.close()


def test_relative_paths_are_the_clients_not_the_workers(cluster, frames):
    client, decoy = frames
    result = subprocess.run(
        command("fix", "in/f0.fits", "-o", "outrel", "--scheduler", cluster.address),
        cwd=client,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert os.listdir(client / "outrel") == ["f0.fits"]
    assert not (decoy / "outrel").exists()


def _silent_listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, f"tcp://127.0.0.1:{server.getsockname()[1]}"


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("kind", ["http", "silent"])
def test_a_scheduler_address_where_no_dask_listens(frames, tmp_path, kind):
    client, _ = frames
    if kind == "http":
        server = HTTPServer(("127.0.0.1", 0), _Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
    else:
        server, address = _silent_listener()
    start = time.monotonic()
    try:
        result = subprocess.run(
            command(
                "fix",
                client / "in" / "f0.fits",
                "-o",
                tmp_path / "out",
                "--scheduler",
                address,
                "--cluster-timeout",
                "3",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if kind == "http":
            server.shutdown()
            server.server_close()
        else:
            server.close()
    assert time.monotonic() - start < 60
    assert result.returncode == 2
    assert f"cannot reach the scheduler {address}" in result.stderr
    assert "Traceback" not in result.stderr


def _start_batch(client, cluster, tmp_path, *more):
    return subprocess.Popen(
        command(
            "fix",
            client / "in",
            "-o",
            tmp_path / "out",
            "--scheduler",
            cluster.address,
            "--cluster-timeout",
            "5",
            "--report",
            tmp_path / "report.json",
            *more,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_all_workers_lost(cluster, frames, tmp_path):
    client, _ = frames
    process = _start_batch(client, cluster, tmp_path)
    out = tmp_path / "out"
    assert wait_for(
        lambda: out.exists() and any(not n.startswith(".") for n in os.listdir(out))
    )
    for worker in cluster.workers:
        worker.kill()
    start = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert time.monotonic() - start < 60
    assert process.returncode == 1, stderr
    assert "no Dask worker is left on the cluster for 5 s" in stderr
    files = json.loads((tmp_path / "report.json").read_text())["files"]
    written = {n for n in os.listdir(out) if not n.startswith(".")}
    assert 1 <= len(written) < 12
    assert {Path(f["input"]).name for f in files if f["status"] == "ok"} == written


def _mapped_batch_under_way(client, cluster, tmp_path):
    """A batch with a map (scattered to the workers), once its first frame
    is written: the process and the output directory."""
    camera = SimulatedCamera((256, 256), seed=31)
    bpm_path = tmp_path / "bpm.fits"
    make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)]).write(bpm_path)
    process = _start_batch(client, cluster, tmp_path, "--bpm", bpm_path)
    out = tmp_path / "out"
    assert wait_for(
        lambda: out.exists() and any(not n.startswith(".") for n in os.listdir(out))
    )
    return process, out


def test_a_new_worker_gets_the_map_again(cluster, frames, tmp_path):
    # The map is scattered to the workers; when the only one holding it
    # dies the scheduler drops it for good. A worker that joins within
    # --cluster-timeout gets it again and the rest of the batch is fixed
    # (before: every remaining file "not fixed: the scheduler was lost").
    client, decoy = frames
    process, out = _mapped_batch_under_way(client, cluster, tmp_path)
    for worker in cluster.workers:
        worker.kill()
        worker.wait(30)
    cluster.add_worker(decoy)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    files = json.loads((tmp_path / "report.json").read_text())["files"]
    assert [f["status"] for f in files] == ["ok"] * 12
    written = {n for n in os.listdir(out) if not n.startswith(".")}
    assert written == {f"f{index}.fits" for index in range(12)}


def test_the_map_lost_with_no_worker_to_take_it(cluster, frames, tmp_path):
    client, _ = frames
    process, out = _mapped_batch_under_way(client, cluster, tmp_path)
    for worker in cluster.workers:
        worker.kill()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "no worker" in stderr and "for 5 s" in stderr
    files = json.loads((tmp_path / "report.json").read_text())["files"]
    written = {n for n in os.listdir(out) if not n.startswith(".")}
    assert {Path(f["input"]).name for f in files if f["status"] == "ok"} == written


def test_scheduler_lost(cluster, frames, tmp_path):
    client, _ = frames
    process = _start_batch(client, cluster, tmp_path)
    out = tmp_path / "out"
    assert wait_for(
        lambda: out.exists() and any(not n.startswith(".") for n in os.listdir(out))
    )
    cluster.scheduler.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    files = json.loads((tmp_path / "report.json").read_text())["files"]
    # the worker outlives the scheduler; what it still writes is dropped
    for worker in cluster.workers:
        worker.wait(60)
    written = {n for n in os.listdir(out) if not n.startswith(".")}
    ok = {Path(f["input"]).name for f in files if f["status"] == "ok"}
    assert ok == written, files
    assert not any(is_temporary_name(n) for n in os.listdir(out))
    lost = [f for f in files if f["status"] == "error"]
    assert lost and all("nothing written" in f["error"] for f in lost)


def test_a_cluster_without_any_worker(frames, tmp_path):
    client, decoy = frames
    empty = Cluster(tmp_path, decoy, n_workers=0)
    bpm = tmp_path / "bpm.fits"
    camera = SimulatedCamera((256, 256), seed=31)
    make_bad_pixel_map([camera.dark(300.0, seed=s) for s in range(3)]).write(bpm)
    try:
        start = time.monotonic()
        result = subprocess.run(
            command(
                "fix",
                client / "in",
                "--bpm",
                bpm,
                "-o",
                tmp_path / "out",
                "--scheduler",
                empty.address,
                "--cluster-timeout",
                "3",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        empty.close()
    assert time.monotonic() - start < 60
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("not fixed, nothing written") == 12
    assert not any(not name.startswith(".") for name in os.listdir(tmp_path / "out"))
