"""Sendmail, qmail and Exim logs against generated captures whose replies carry their ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.maillog.compare import AGREES
from pcapsmtp.maillog.link import ADDRESS_PORT, QUEUE_ID
from pcapsmtp.maillog.units import CLIENT_SIDE, SERVER_SIDE
from tests.health.traffic import DELIVERY, T0, Conversation, write_capture


def _session_with_reply(tmp_path: Path, final: bytes):
    """One delivery whose reply to the end of data is ``final``."""
    script = [(side, final if data.startswith(b"250 2.0.0 Ok: queued") else data)
              for side, data in DELIVERY]  # fmt: skip
    return write_capture(tmp_path / "one.pcap", [Conversation(T0, 40000, script)])


def _analyze(capture: Path, log: Path, text: str):
    log.write_text(text)
    analysis = analyze([str(capture)], Options(maillogs=(str(log),)))
    return analysis.sessions[0], analysis.maillog


def _stamp() -> str:
    return datetime.fromtimestamp(T0 / 1e9, UTC).strftime("%b %d %H:%M:%S")


def test_sendmail_receiving(tmp_path):
    capture = _session_with_reply(
        tmp_path, b"250 2.0.0 4AIBQeXn040000 Message accepted for delivery\r\n"
    )
    session, links = _analyze(
        capture,
        tmp_path / "maillog",
        f"{_stamp()} mx sm-mta[4000]: 4AIBQeXn040000: from=<a@example.org>, size=40, class=0, "
        "nrcpts=1, msgid=<1@example.org>, proto=ESMTP, daemon=MTA, relay=relay.example.org "
        "[192.0.2.10]\n"
        f"{_stamp()} mx sm-mta[4001]: 4AIBQeXn040000: to=<b@example.net>, delay=00:00:00, "
        "xdelay=00:00:00, mailer=local, pri=30440, dsn=2.0.0, stat=Sent\n",
    )
    (link,) = links.links[session.key]
    assert (link.side, link.method) == (SERVER_SIDE, QUEUE_ID)
    assert [n.verdict for n in link.notes] == [AGREES, "later"]


def test_qmail_receiving_by_qp_and_by_tcpserver_port(tmp_path):
    capture = _session_with_reply(tmp_path, b"250 ok 1795000000 qp 10394\r\n")
    tai = f"@{2**62 + 10 + T0 // 10**9:016x}{0:08x}"
    session, links = _analyze(
        capture,
        tmp_path / "current",
        f"{tai} tcpserver: ok 17310 mx.example.net:198.51.100.25:25 :192.0.2.10::40000\n"
        f"{tai} new msg 3890\n"
        f"{tai} info msg 3890: bytes 372 from <a@example.org> qp 10394 uid 0\n"
        f"{tai} starting delivery 9: msg 3890 to local b@example.net\n"
        f"{tai} delivery 9: success: did_0+0+1/\n"
        f"{tai} end msg 3890\n"
        f"{tai} tcpserver: end 17310 status 0\n",
    )
    history, connection = links.links[session.key]
    assert (history.method, connection.method) == (QUEUE_ID, ADDRESS_PORT)
    assert [line.number for line in history.lines] == [2, 3, 4, 5, 6]
    assert history.notes[0].verdict == AGREES and "queued 3890" in history.notes[0].text
    assert [line.number for line in connection.lines] == [1, 7]


def test_exim_sending(tmp_path):
    capture = _session_with_reply(tmp_path, b"250 2.0.0 Ok: queued as 8512E1767A67\r\n")
    stamp = datetime.fromtimestamp(T0 / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    session, links = _analyze(
        capture,
        tmp_path / "mainlog",
        f"{stamp} 1RwtJY-0009RI-E4 => b@example.net R=dnslookup T=remote_smtp "
        'H=mx.example.net [198.51.100.25] C="250 2.0.0 Ok: queued as 8512E1767A67"\n'
        f"{stamp} 1RwtJY-0009RI-E4 Completed\n",
    )
    (link,) = links.links[session.key]
    assert (link.side, link.method) == (CLIENT_SIDE, QUEUE_ID)
    assert "8512E1767A67" in link.why and [line.number for line in link.lines] == [1, 2]
    assert [n.verdict for n in link.notes] == [AGREES]
