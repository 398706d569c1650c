"""A frame whose time the output format cannot hold is written clamped, with a warning."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_times_beyond_the_format_are_clamped_with_a_warning(tmp_path, suffix):
    out = tmp_path / f"e{suffix}"
    capture = CORPUS / "export-time-beyond-u32.pcapng"
    result = CliRunner().invoke(main, ["export", "--session", "1", str(capture), "-o", str(out)])
    assert result.exit_code == 0, result.output
    fmt = suffix[1:]
    assert f"have a time {fmt} cannot hold (first: frame 1)" in result.stderr
    data = out.read_bytes()
    if suffix == ".pcap":
        seconds = struct.unpack_from("<I", data, 24)[0]
        assert seconds == 0xFFFFFFFF, "the last second pcap can hold"
    assert CliRunner().invoke(main, ["analyze", str(out)]).exit_code == 0, "readable again"
