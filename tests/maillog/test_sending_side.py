"""The log of the session's client (a sending Postfix) against generated captures: linked by
the id the server gave ('queued as X' in status=sent), by the server's address and time for
attempts that got no id, and told apart when log and wire disagree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.maillog.compare import AGREES, DIFFERS
from pcapsmtp.maillog.link import ADDRESS_TIME, QUEUE_ID
from pcapsmtp.maillog.units import CLIENT_SIDE
from tests.health.traffic import T0, Conversation, attempts, delivery, write_capture

MX = "mx.example.net[198.51.100.25]:25"


def _stamp(offset_s: float) -> str:
    return datetime.fromtimestamp(T0 / 1e9 + offset_s, UTC).strftime("%b %d %H:%M:%S")


def _run(tmp_path: Path, conversations, log_lines: list[str]):
    capture = write_capture(tmp_path / "out.pcap", conversations)
    log = tmp_path / "relay.log"
    log.write_text("\n".join(log_lines) + "\n")
    analysis = analyze([str(capture)], Options(maillogs=(str(log),)))
    return analysis, analysis.maillog


def _sent(at: float, local: str, remote: str) -> str:
    return (
        f"{_stamp(at)} relay postfix/smtp[900]: {local}: to=<b@example.net>, relay={MX}, "
        "delay=3601, delays=3600/0/0/0.1, dsn=2.0.0, "
        f"status=sent (250 2.0.0 Ok: queued as {remote})"
    )


def test_linked_by_the_id_the_server_gave(tmp_path):
    remote = ["4AAA000001", "4AAA000002", "4AAA000003"]
    conversations = [
        Conversation(T0 + i * 20 * 10**9, 40000 + i, delivery(qid)) for i, qid in enumerate(remote)
    ]
    lines = []
    for i in range(3):  # queued an hour before the capture: the history is kept all the same
        lines.append(
            f"{_stamp(-3600 + i)} relay postfix/qmgr[800]: 3E7A1B20E{i}0: from=<a@example.org>, "
            "size=300, nrcpt=1 (queue active)"
        )
    lines.append(
        f"{_stamp(-3000)} relay postfix/qmgr[800]: 9F9F9F9F90: from=<x@example.org>, size=1"
    )
    for i, qid in enumerate(remote):
        lines.append(_sent(i * 20, f"3E7A1B20E{i}0", qid))
        lines.append(f"{_stamp(i * 20)} relay postfix/qmgr[800]: 3E7A1B20E{i}0: removed")
    analysis, links = _run(tmp_path, conversations, lines)
    assert links.methods()[QUEUE_ID] == 3 and not links.unlinked and not links.orphans
    for i, session in enumerate(analysis.sessions):
        (link,) = links.links[session.key]
        assert link.side == CLIENT_SIDE and link.why.startswith(f"queue id {remote[i]} ")
        assert [line.number for line in link.lines] == [i + 1, 5 + 2 * i, 6 + 2 * i]
        assert [n.verdict for n in link.notes] == [AGREES]
        assert "status=sent dsn=2.0.0" in link.notes[0].text
    (stats,) = links.files
    assert (stats.lines, stats.used, stats.outside) == (10, 9, 1)


def test_refused_attempts_by_address_and_time(tmp_path):
    lines = []
    for i in range(3):
        lines.append(
            f"{_stamp(i * 60)} relay postfix/smtp[901]: connect to {MX}: Connection refused"
        )
        lines.append(
            f"{_stamp(i * 60)} relay postfix/smtp[901]: 4C1D2E3F40: to=<b@example.net>, "
            f"relay=none, delay={i * 60}, dsn=4.4.1, "
            f"status=deferred (connect to {MX}: Connection refused)"
        )
    analysis, links = _run(tmp_path, attempts(3, 60.0, "refused"), lines)
    assert links.methods()[ADDRESS_TIME] == 3
    for session in analysis.sessions:
        (link,) = links.links[session.key]
        assert link.side == CLIENT_SIDE and len(link.unit.lines) == 2
        # The message's history: its three deferrals, one per attempt.
        assert [line.number for line in link.lines if line.status] == [2, 4, 6]
        assert [n.verdict for n in link.notes] == [AGREES, AGREES]
        assert "Connection refused; the wire shows refused" in link.notes[0].text


def test_log_and_wire_disagree(tmp_path):
    lines = [
        f"{_stamp(0)} relay postfix/smtp[902]: 5D1E2F3A50: to=<b@example.net>, relay={MX}, "
        "delay=1, dsn=4.7.1, status=deferred (host mx.example.net[198.51.100.25] said: "
        "451 4.7.1 Try later (in reply to RCPT TO command))",
        # An attempt to another server while the capture ran: not in the capture.
        f"{_stamp(1)} relay postfix/smtp[903]: connect to mx2.example.net[198.51.100.99]:25: "
        "Connection timed out",
    ]
    analysis, links = _run(tmp_path, attempts(1, 1.0, delivery()), lines)
    (link,) = links.links[analysis.sessions[0].key]
    (note,) = link.notes
    assert note.verdict == DIFFERS and "quoting a 451 reply the wire does not show" in note.text
    (orphan,) = links.orphans
    assert orphan.peer == "198.51.100.99" and orphan.side == CLIENT_SIDE
