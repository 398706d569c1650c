"""zeek-smtp-mail-transactions-invalid cut in half: a delivered message, then a client out of
step (RCPT and DATA with no MAIL, answered 503; a text line and a lone '.', answered 500),
then a MAIL accepted when the capture ends. The stray '.' answered 500 refused no message
(hard-bounce skips it): it must not make the session 'rejected', which no finding explained."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.coverage import unexplained
from pcapsmtp.smtp.model import Outcome

INVALID = Path("/work/shared/captures/public/zeek-smtp-mail-transactions-invalid.pcap")


@pytest.mark.skipif(not INVALID.exists(), reason="public captures absent")
def test_a_stray_dot_answered_500_is_no_rejection(tmp_path):
    with open(INVALID, "rb") as fh:
        reader = dpkt.pcap.UniversalReader(fh)
        linktype = reader.datalink()
        records = [(ts, bytes(buf)) for ts, buf in reader]
    half = tmp_path / "half.pcap"
    with open(half, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=linktype)
        for ts, buf in records[: len(records) // 2]:
            writer.writepkt(buf, ts)
    result = analyze([str(half)])
    [session] = list(result.sessions)
    assert session.outcome != Outcome.REJECTED
    assert not unexplained(list(result.sessions), list(result.findings))
