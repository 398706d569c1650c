"""The parallel path end to end: the CLI with its own local cluster, and a Dask cluster
started by hand (``dask scheduler``, ``dask worker``) on loopback, one worker of which is
killed in the middle of the run. The input is the benchmark's generated capture: 8 MB, 204
interleaved sessions, 166 of which cross a file boundary (147 two of them); the size does not
matter to the parallel path (``--jobs 2`` and a scheduler use it whatever the size), the
sessions that span files do, and test_many_sessions_cross_the_boundaries checks them."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options, analyze
from tests.captures import REPO_ROOT
from tests.rotated.split import comparable, pcap_records, split_pcap

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rotated-generated-set")]

PIECES = 8


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """8 MB of interleaved SMTP (the benchmark's generator, seed 7)."""
    spec = importlib.util.spec_from_file_location(
        "gencapture", REPO_ROOT / "scripts" / "bench" / "gencapture.py"
    )
    gencapture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gencapture)
    path = tmp_path_factory.mktemp("gen") / "busy.pcap"
    with open(path, "wb") as out:
        gencapture.generate(out, 8 * 1024 * 1024, seed=7, concurrency=300)
    return path


@pytest.fixture(scope="module")
def pieces(generated, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("set")
    n = len(pcap_records(generated)[1])
    split_pcap(generated, [n * k // PIECES for k in range(1, PIECES)], folder)
    return folder


@pytest.fixture(scope="module")
def expected(generated) -> dict:
    return comparable(analyze([str(generated)], Options(jobs=1)), str(generated))


def label(folder: Path) -> str:
    return str(folder / "gw1-*.pcap")


def test_many_sessions_cross_the_boundaries(expected, pieces) -> None:
    """The test means something: sessions that span files, in numbers."""
    bounds = []
    total = 0
    for path in sorted(pieces.iterdir()):
        total += len(pcap_records(path)[1])
        bounds.append(total)
    spanning = [
        s
        for s in expected["sessions"]
        if any(s["first_frame"] <= b < s["last_frame"] for b in bounds[:-1])
    ]
    assert len(spanning) > 100
    assert any(
        sum(s["first_frame"] <= b < s["last_frame"] for b in bounds) >= 2 for s in spanning
    ), "a session over three files"


def test_cli_jobs_two_equals_one_pass(pieces, expected) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pcapsmtp", "analyze", str(pieces), "--jobs", "2", "-q",
         "--format", "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout.replace(json.dumps(label(pieces))[1:-1], "CAPTURE"))
    for capture in doc["captures"]:
        for key in ("files", "warnings", "compression"):
            capture.pop(key, None)
    assert doc == expected


class _KillOnFirstPiece:
    """Progress stand-in: kills a worker when the first file's task is done."""

    def __init__(self, victim: subprocess.Popen) -> None:
        self.victim = victim
        self.killed_at: int | None = None

    def tasks(self, what: str, done: int, total: int) -> None:
        if what != "scan" and self.killed_at is None:
            os.kill(self.victim.pid, signal.SIGKILL)
            self.killed_at = done

    def update(self, *args) -> None:
        pass

    def done(self) -> None:
        pass


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def test_a_dask_cluster_that_loses_a_worker(pieces, expected, tmp_path) -> None:
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    from dask.distributed import Client

    info = tmp_path / "scheduler.json"
    started = [_start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                       "--no-dashboard", "--scheduler-file", str(info)])]  # fmt: skip
    try:
        for _ in range(600):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.05)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--host", "127.0.0.1", "--memory-limit", "1GiB"]  # fmt: skip
        workers = [_start(worker), _start(worker)]
        started += workers
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        killer = _KillOnFirstPiece(workers[0])
        analysis = analyze([str(pieces)], Options(scheduler=address, progress=killer))
        assert not analysis.errors
        assert killer.killed_at is not None and killer.killed_at < PIECES
        assert workers[0].wait(timeout=10) == -signal.SIGKILL
        assert workers[1].poll() is None, "the other worker did the rest"
        assert comparable(analysis, label(pieces)) == expected
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_no_scheduler_at_the_address_is_one_clear_error(pieces) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pcapsmtp", "analyze", str(pieces), "-q",
         "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("pcapsmtp: error: tcp://127.0.0.1:9: cannot start or reach it")
