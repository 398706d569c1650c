"""The cyclic collector's thresholds while a command runs (cli/common.py YOUNG_THRESHOLD):
the youngest generation's raised for the pass, the collector left on, and the caller's own
thresholds back afterwards, also when the command fails."""

from __future__ import annotations

import gc

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import analyze as analyze_cli
from pcapsmtp.cli import main
from pcapsmtp.cli.common import YOUNG_THRESHOLD
from tests.captures import LAB

CLEAN = LAB / "clean-delivery.pcap"


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 9, 11)
    yield (700, 9, 11)
    gc.set_threshold(*before)


@pytest.mark.skipif(not CLEAN.exists(), reason="no lab captures")
def test_the_pass_runs_with_the_young_threshold_raised(monkeypatch, thresholds):
    seen = []
    real = analyze_cli.analyze

    def spy(*args, **kwargs):
        seen.append((gc.isenabled(), gc.get_threshold()))
        return real(*args, **kwargs)

    monkeypatch.setattr(analyze_cli, "analyze", spy)
    result = CliRunner().invoke(main, ["analyze", "--format", "json", str(CLEAN)])
    assert result.exit_code == 0, result.output
    assert seen == [(True, (YOUNG_THRESHOLD, 9, 11))]
    assert gc.get_threshold() == thresholds


def test_the_thresholds_come_back_after_an_error(tmp_path, thresholds):
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "missing.pcap")])
    assert result.exit_code != 0
    assert gc.get_threshold() == thresholds
