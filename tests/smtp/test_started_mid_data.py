"""A capture started in the middle of a message: no handshake, no greeting, the client's
body segments, then the server's FIN and RSTs (server-killed-in-data: its smtpd killed during
DATA). The server did not refuse a connection it had greeted before the capture began: no
connect-refused ('RST to the SYN' named a data segment as the connection request)."""

from __future__ import annotations

from pathlib import Path

from pcapsmtp.analysis import analyze
from pcapsmtp.smtp.model import Outcome
from tests.capture_edits import _records, _write, payloads
from tests.diagnose.helpers import lab


def test_a_capture_started_mid_data_is_no_refused_connection(tmp_path):
    source = Path(lab("server-killed-in-data"))
    client_data = [n for n, sport, _dport, _data in payloads(source) if sport != 25]
    body = [n for n in client_data if n > 10]
    start = body[len(body) // 2]
    path = _write(tmp_path / "mid-data.pcap", _records(source)[start - 1 :])
    result = analyze([str(path)])
    [session] = list(result.sessions)
    assert session.outcome != Outcome.REFUSED
    assert "connect-refused" not in {f.code for f in result.findings}
