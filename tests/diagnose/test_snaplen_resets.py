"""A capture cut by a short snap length (tcpdump -s 68) holds two bytes of each payload:
the client's "QUIT" reads "QU", the server's replies are cut whole. The reset rule must not
blame a side for closing "during the QU command" or for resetting what its peer sent, when
what it closed after may have been QUIT and what it reset may have been the 221 or 421 that
ended the session; capture-truncated says why nothing can be read. And a capture whose
writer cut the packets but recorded them whole (caplen = origlen, the IP length says more)
is still a truncated capture."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose import ERROR, WARNING
from tests.capture_edits import _records, _write
from tests.diagnose.helpers import lab
from tests.smtp.test_snaplen_start import snapped

BUG_7126 = Path("/work/shared/captures/public/suricata-bug-7126_input.pcap")


def _snapped_any(source: Path, target: Path, snaplen: int) -> Path:
    """Any capture dpkt reads (pcapng too), written as tcpdump -s ``snaplen`` would: each
    record cut, its original length kept."""
    with open(source, "rb") as handle:
        reader = dpkt.pcap.UniversalReader(handle)
        linktype = reader.datalink()
        records = [(ts, bytes(buf)) for ts, buf in reader]
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for ts, buf in records:
        sec, usec = int(ts), round((ts - int(ts)) * 1e6)
        kept = buf[:snaplen]
        out.append(struct.pack("<IIII", sec, usec, len(kept), len(buf)) + kept)
    target.write_bytes(b"".join(out))
    return target


def _codes(result) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in result.findings:
        found.setdefault(finding.code, []).append(finding.severity)
    return found


@pytest.mark.skipif(not BUG_7126.exists(), reason="public captures absent")
def test_a_quit_cut_to_qu_is_no_abortive_close(tmp_path):
    """suricata-bug-7126: QUIT (cut to "QU"), the client's FIN, the server's 221 and FIN
    (cut), the client's RST. Whole, it is a delivery with no trouble."""
    path = _snapped_any(BUG_7126, tmp_path / "7126-s68.pcap", 68)
    codes = _codes(analyze([str(path)]))
    assert "reset" not in codes
    assert codes["capture-truncated"] == [WARNING]


def test_a_close_after_unreadable_replies_is_no_abortive_close(tmp_path):
    """starttls-auth-587: STARTTLS cut to "ST", the TLS records read as commands, none of
    the server's replies readable; the client's FIN and RST end a session that whole is
    'encrypted' with no trouble."""
    path = snapped(lab("starttls-auth-587"), tmp_path / "587-s68.pcap", 68)
    codes = _codes(analyze([str(path)]))
    assert ERROR not in codes.get("reset", [])
    assert codes["capture-truncated"] == [WARNING]


def test_a_reset_after_a_cut_reply_is_not_blamed_outright(tmp_path):
    """mtu-blackhole session 2: the server's 421 timeout (cut by the snap length) then the
    client's RST. The reset is not an ERROR of its own: the cut data may have ended the
    session; the black hole is still the ERROR."""
    path = snapped(lab("mtu-blackhole"), tmp_path / "mtu-s68.pcap", 68)
    result = analyze([str(path)])
    codes = _codes(result)
    assert codes["mtu-blackhole"] == [ERROR]
    [reset] = [f for f in result.findings if f.code == "reset"]
    assert reset.severity == WARNING
    assert "snap length" in reset.detail
    assert len(reset.frames) == 2


def test_packets_cut_but_recorded_whole_are_a_truncated_capture(tmp_path):
    """dpkt's writer (and others) store a cut packet with its cut length as the original:
    the file says nothing was cut, the IP headers say otherwise."""
    records = _records(Path(lab("clean-delivery")))
    path = _write(tmp_path / "cut96.pcap", [(ts, buf[:96]) for ts, buf in records])
    result = analyze([str(path)])
    [capture] = result.captures
    assert capture.truncated == 0
    [truncated] = [f for f in result.findings if f.code == "capture-truncated"]
    assert truncated.severity == WARNING
    assert "without saying so" in truncated.detail
