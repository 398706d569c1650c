"""SMTP on a port that is not an SMTP port is recognised by content: a 220 greeting and an
EHLO/HELO/LHLO. When the capture lost bytes where one of the two lies, the session is still
SMTP if the server's first reply after the greeting is 250 (the reply to a hello; FTP, which
greets with 220 too, answers USER with 331): "0 SMTP sessions ... No trouble found" on a
capture of a failing session would be false calm."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.model import Outcome
from pcapsmtp.smtp.tracker import _Sniffer
from pcapsmtp.tcp.model import StreamData, StreamGap
from tests.capture_edits import _records, _write, payloads
from tests.diagnose.helpers import lab

BUG_5867 = Path("/work/shared/captures/public/suricata-bug-5867-fp-drop-01_input.pcap")


def _moved_to_port(source: Path, target: Path, port: int, drop: set[int]) -> Path:
    """The capture with the server's port 25 changed to ``port``, without the frames
    ``drop``."""
    kept = []
    for number, (ts, buf) in enumerate(_records(source), 1):
        if number in drop:
            continue
        eth = dpkt.ethernet.Ethernet(buf)
        tcp = getattr(eth.data, "data", None)
        if isinstance(tcp, dpkt.tcp.TCP):
            tcp.sport = port if tcp.sport == 25 else tcp.sport
            tcp.dport = port if tcp.dport == 25 else tcp.dport
            tcp.sum = 0
            eth.data.sum = 0
            buf = bytes(eth)
        kept.append((ts, buf))
    return _write(target, kept)


def test_a_lost_ehlo_on_another_port_is_still_smtp(tmp_path):
    source = Path(lab("clean-delivery"))
    [ehlo] = [
        n for n, _s, dport, data in payloads(source) if dport == 25 and data[:4].upper() == b"EHLO"
    ]
    whole = _moved_to_port(source, tmp_path / "whole.pcap", 2626, set())
    assert [s.outcome for s in analyze([str(whole)]).sessions] == [Outcome.DELIVERED]
    lost = _moved_to_port(source, tmp_path / "lost-ehlo.pcap", 2626, {ehlo})
    result = analyze([str(lost)])
    [session] = list(result.sessions)
    assert session.outcome != Outcome.NO_SMTP
    assert "capture-loss" in {f.code for f in result.findings}


@pytest.mark.skipif(not BUG_5867.exists(), reason="public captures absent")
def test_a_hello_typed_by_hand_missing_a_byte_is_still_smtp(tmp_path):
    """suricata-bug-5867 (port 225): the client types "helo 1" a byte per segment; without
    the frame of its "l" the hello reads "heo 1"."""
    lost = _write(
        tmp_path / "5867-lost-l.pcap", [r for n, r in enumerate(_records(BUG_5867), 1) if n != 14]
    )
    result = analyze([str(lost)])
    assert len(list(result.sessions)) == 1
    assert "capture-loss" in {f.code for f in result.findings}


def _sniff(server_lines: list[bytes]) -> object:
    sniffer = _Sniffer()
    sniffer.add(StreamData(None, 1, 0, server_lines[0], 4, 0))
    sniffer.gap(StreamGap(None, 0, 0, 6, 6, 0, "not captured"))
    sniffer.add(StreamData(None, 0, 6, b"\r\n", 7, 0))
    sniffer.add(StreamData(None, 1, len(server_lines[0]), server_lines[1], 8, 0))
    return sniffer.decide(final=True)


def test_a_gap_where_the_hello_was_needs_a_250_after_the_greeting():
    decided = _sniff([b"220 mail.example ESMTP\r\n", b"250 mail.example\r\n"])
    assert decided and decided[0] == 1
    assert not _sniff([b"220 ftp.example FTP server ready\r\n", b"331 Password required\r\n"])
