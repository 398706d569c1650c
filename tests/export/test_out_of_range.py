"""A frame whose time pcap cannot hold is written clamped, with a warning; pcapng keeps the
timestamp as the input stored it (same counter, same resolution), so nothing is clamped."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.tshark import fields, needs_tshark

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


CAPTURE = CORPUS / "export-time-beyond-u32.pcapng"


def test_times_beyond_pcap_are_clamped_with_a_warning(tmp_path):
    out = tmp_path / "e.pcap"
    result = CliRunner().invoke(main, ["export", "--session", "1", str(CAPTURE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "have a time pcap cannot hold (first: frame 1)" in result.stderr
    seconds = struct.unpack_from("<I", out.read_bytes(), 24)[0]
    assert seconds == 0xFFFFFFFF, "the last second pcap can hold"
    assert CliRunner().invoke(main, ["analyze", str(out)]).exit_code == 0, "readable again"


@needs_tshark
@pytest.mark.oracle
def test_pcapng_keeps_the_stored_time(tmp_path):
    out = tmp_path / "e.pcapng"
    result = CliRunner().invoke(main, ["export", "--session", "1", str(CAPTURE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "cannot hold" not in result.stderr
    times = ["frame.number", "frame.time_epoch", "frame.len", "frame.cap_len"]
    assert fields(out, times) == fields(CAPTURE, times)
    assert fields(out, times)[0][1] == "9223372039002.259455000", "beyond 2^63 ns, kept"
    assert CliRunner().invoke(main, ["analyze", str(out)]).exit_code == 0, "readable again"
