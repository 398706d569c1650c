"""Dask and pyshark are extras (pcapsmtp[cluster], pcapsmtp[tls]): without them the tool says
which extra to install, in one line, and does everything else. The import failing is
simulated with sys.modules entries of None, which make ``import`` raise ImportError."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from pcapsmtp.analysis import run as analysis
from pcapsmtp.analysis.extras import CLUSTER, TLS, available
from pcapsmtp.cli import main
from tests.captures import LAB

pytestmark = pytest.mark.skipif(not (LAB / "starttls-25.pcap").exists(), reason="no lab captures")
TWO = [str(LAB / "clean-delivery.pcap"), str(LAB / "unknown-user.pcap")]


@pytest.fixture
def without_dask(monkeypatch):
    for name in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    assert not available(CLUSTER)


@pytest.fixture
def without_pyshark(monkeypatch):
    for name in ("pyshark", "pyshark.tshark", "pyshark.tshark.tshark"):
        monkeypatch.setitem(sys.modules, name, None)
    assert not available(TLS)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.parametrize("command", ["analyze", "report"])
def test_jobs_needs_no_dask(without_dask, command, tmp_path):
    """--jobs N forks its workers from the command: no Dask, and --jobs 1's answer."""
    output = ["-o", tmp_path / "r.md"] if command == "report" else ["--format", "json"]
    captures = TWO if command == "analyze" else TWO[:1]
    result = run(command, *captures, *output, "--jobs", "2")
    assert result.exit_code == 0 and result.stderr == ""
    if command == "analyze":
        assert result.stdout == run(command, *captures, *output, "--jobs", "1").stdout


def test_scheduler_without_dask_names_the_extra(without_dask):
    result = run("analyze", *TWO, "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 1
    assert result.stderr == (
        "pcapsmtp: error: --scheduler needs the cluster extra: pip install 'pcapsmtp[cluster]'\n"
    )


def test_one_job_needs_no_dask(without_dask):
    result = run("analyze", *TWO, "--jobs", "1")
    assert result.exit_code == 0 and result.stderr == ""


def test_without_dask_the_automatic_choice_still_forks(without_dask, monkeypatch):
    """Many cores and large files choose worker processes, which need no Dask."""
    monkeypatch.setattr(analysis.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(analysis, "PARALLEL_MIN_BYTES", 0)
    assert analysis._parallel(analysis.group_files(TWO), analysis.Options())
    result = run("analyze", *TWO, "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    assert len(json.loads(result.stdout)["captures"]) == 2


def test_keylog_without_pyshark_warns_and_goes_on(without_pyshark):
    capture = LAB / "starttls-25.pcap"
    result = run("analyze", capture, "--keylog", LAB / "starttls-25.keylog", "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["captures"][0]["warnings"] == [
        "TLS decryption: it needs the tls extra: pip install 'pcapsmtp[tls]'; the TLS sessions "
        "stay encrypted"
    ]
    assert [s["outcome"] for s in document["sessions"]] == ["encrypted"]
