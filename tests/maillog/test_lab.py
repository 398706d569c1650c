"""The lab's logs (Postfix's maillog_file, Exim's mainlog) linked to the lab's captures: every
session whose reply carried a queue id finds its log lines, every other session that reached
an MTA finds them by address and time, and log and wire agree."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.maillog.compare import AGREES, DIFFERS, LATER, NOTE
from pcapsmtp.maillog.link import ADDRESS_TIME, QUEUE_ID
from tests.captures import LAB, TRUTHS

WITH_LOGS = [t for t in TRUTHS if json.loads(t.read_text())["maillog"]]
pytestmark = pytest.mark.skipif(not WITH_LOGS, reason="no lab captures")
NO_MTA = {"connect-refused", "connect-timeout", "no-eod-reply", "zero-window", "zero-window-brief"}
"""Scenarios whose sessions never reached an MTA that logs (nothing listens, a firewall drops
the SYNs, the lab's own small servers)."""


def _linked(name: str, *logs: str, **options):
    paths = tuple(str(LAB / log) for log in logs) or (str(LAB / f"{name}.maillog"),)
    analysis = analyze([str(LAB / f"{name}.pcap")], Options(maillogs=paths, **options))
    return analysis, analysis.maillog


def _endpoint(endpoint) -> str:
    from pcapsmtp.capture.addresses import endpoint_name

    return endpoint_name(endpoint)


@pytest.mark.parametrize("truth_path", WITH_LOGS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_every_session_with_a_queue_id_finds_its_lines(truth_path):
    truth = json.loads(truth_path.read_text())
    analysis, links = _linked(truth["scenario"], truth["maillog"])
    sessions = {_endpoint(s.client): s for s in analysis.sessions}
    for expected in truth["sessions"]:
        ids = [t["queue_id"] for t in expected["transactions"] if t["queue_id"]]
        if not ids:
            continue
        session = sessions[expected["client"]]
        lines = [line for link in links.links.get(session.key, []) for line in link.lines]
        for qid in ids:
            assert any(line.queue_id == qid for line in lines), (session.key, qid)
        wire_ids = {t.queue_id for t in session.transactions if t.queue_id}
        methods = {link.method for link in links.links[session.key]}
        assert methods == ({QUEUE_ID} if wire_ids else {ADDRESS_TIME})  # encrypted: no id


def test_all_lab_captures_and_logs_at_once():
    captures = [str(p) for p in sorted(LAB.glob("*.pcap"))]
    logs = tuple(str(p) for p in sorted(LAB.glob("*.maillog")))
    analysis = analyze(captures, Options(maillogs=logs))
    links = analysis.maillog
    by_id = {s.key: s for s in analysis.sessions}
    unlinked = {Path(by_id[i].capture).name.split(".")[0] for i in links.unlinked}
    assert unlinked == NO_MTA
    linked = [by_id[i] for i in links.links]
    assert all(Path(s.capture).name.split(".")[0] not in NO_MTA for s in linked)
    assert links.methods() == {QUEUE_ID: 49, "client address and port": 0, ADDRESS_TIME: 265}
    assert links.orphans == [] and links.offset_ns == 0
    notes = [n for ls in links.links.values() for link in ls for n in link.notes]
    assert [n.text for n in notes if n.verdict == DIFFERS] == []
    assert sum(f.lines for f in links.files) == sum(f.used for f in links.files)


def test_a_queue_id_cut_by_the_snap_length_still_links():
    analysis, links = _linked("capture-truncated")
    (link,) = links.links[analysis.sessions[0].key]
    assert link.method == QUEUE_ID and link.why.startswith(
        "queue id 8BCCA2102E6 (8BCCA2 on the wire: the snap length cut the reply)"
    )
    assert link.notes[0].verdict == AGREES and "8BCCA2102E6" in link.notes[0].text


def test_greylisting_first_by_time_then_by_queue_id():
    analysis, links = _linked("greylisting")
    first, second = analysis.sessions
    (grey,) = links.links[first.key]
    assert grey.method == ADDRESS_TIME and "within 2 s" in grey.why
    assert [n.verdict for n in grey.notes] == [AGREES]
    assert "451 4.7.1" in grey.notes[0].text
    (delivered,) = links.links[second.key]
    assert delivered.method == QUEUE_ID and "3F09C20E401" in delivered.why
    assert [n.verdict for n in delivered.notes] == [AGREES, LATER]
    assert [line.number for line in delivered.lines] == [5, 6, 7, 8, 9, 10, 11]


def test_retry_storm_pairs_240_connections_one_to_one():
    analysis, links = _linked("retry-storm")
    assert links.methods()[ADDRESS_TIME] == 240 and not links.unlinked
    numbers = [links.links[s.key][0].lines[0].number for s in analysis.sessions]
    assert numbers == list(range(2, 722, 3))  # each session its own 'connect from', in order
    for session in analysis.sessions:
        (link,) = links.links[session.key]
        assert [n.verdict for n in link.notes] == [AGREES]


def test_exim_queued_then_deferred_afterwards():
    analysis, links = _linked("clean-delivery-exim")
    (link,) = links.links[analysis.sessions[0].key]
    assert link.method == QUEUE_ID and link.unit.peer_port == 33494
    verdicts = [(n.verdict, n.text) for n in link.notes]
    assert verdicts[0][0] == AGREES and "1xVNsJ-00036b-3A" in verdicts[0][1]
    assert verdicts[1][0] == LATER and "deferred: Tainted" in verdicts[1][1]


def test_a_proxy_between_shows_as_another_client_address():
    analysis, links = _linked("smtp-inspection")
    (link,) = links.links[analysis.sessions[0].key]
    assert link.method == QUEUE_ID
    assert link.notes[0].verdict == NOTE
    assert "names the client 10.77.3.1 where the capture shows 10.77.1.2" in link.notes[0].text


def test_timeouts_and_resets_say_what_the_server_logged():
    analysis, links = _linked("mtu-blackhole")
    (link,) = links.links[analysis.sessions[1].key]
    texts = [n.text for n in link.notes]
    assert any("opened 2639720E436 but never queued it" in t for t in texts)
    assert any("timeout after DATA (0 bytes)" in t for t in texts)


def test_a_log_entry_without_a_session_is_said(tmp_path):
    extra = tmp_path / "extra.log"
    extra.write_text(
        "Nov 23 06:45:20 server postfix/smtpd[1]: connect from unknown[10.77.1.9]\n"
        "Nov 23 06:45:20 server postfix/smtpd[1]: disconnect from unknown[10.77.1.9]\n"
    )
    analysis = analyze(
        [str(LAB / "greylisting.pcap")],
        Options(maillogs=(str(LAB / "greylisting.maillog"), str(extra))),
    )
    (orphan,) = analysis.maillog.orphans
    assert orphan.peer == "10.77.1.9" and orphan.lines[0].source == str(extra)


def test_connect_timeout_has_no_log_line():
    analysis, links = _linked("connect-timeout")
    assert links.unlinked == [analysis.sessions[0].key] and links.links == {}


def _shifted(tmp_path: Path, hours: int, compress: bool) -> Path:
    """clean-delivery.maillog as a server in another zone would have written it."""
    from datetime import datetime, timedelta

    out = []
    for line in (LAB / "clean-delivery.maillog").read_text().splitlines():
        stamp = datetime.strptime("2026 " + line[:15], "%Y %b %d %H:%M:%S") + timedelta(hours=hours)
        out.append(stamp.strftime("%b %d %H:%M:%S") + line[15:])
    data = ("\n".join(out) + "\n").encode()
    path = tmp_path / ("tokyo.log.gz" if compress else "tokyo.log")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_a_log_in_local_time_needs_its_zone(tmp_path, compress):
    log = _shifted(tmp_path, 9, compress)
    capture = [str(LAB / "clean-delivery.pcap")]
    right = analyze(capture, Options(maillogs=(str(log),), log_zone=ZoneInfo("Asia/Tokyo")))
    assert right.maillog.methods()[QUEUE_ID] == 1 and right.maillog.offset_ns == 0
    assert (
        len(right.maillog.links[right.sessions[0].key][0].lines) == 7 and not right.maillog.warnings
    )
    wrong = analyze(capture, Options(maillogs=(str(log),)))
    # The queue id still finds the message's lines; the clocks disagree by the zone's 9 hours.
    assert wrong.maillog.methods()[QUEUE_ID] == 1
    assert wrong.maillog.warnings == [
        "the log's times are 9.0 h ahead of the capture's for the same sessions: is "
        "--maillog-tz the log's zone?"
    ]


def test_a_client_only_capture_learns_the_outcome_from_the_log():
    """one-side-client.pcap holds no server packet: the two queued messages and the 550 are
    known from the log alone, said so, and not called a disagreement with the wire."""
    analysis, links = _linked("one-side-client")
    notes = [n for s in analysis.sessions for link in links.links[s.key] for n in link.notes]
    assert [n for n in notes if n.verdict == DIFFERS] == []
    told = [n.text for n in notes if n.verdict == NOTE and "only the client's packets" in n.text]
    assert sum("queued" in t for t in told) == 2
    assert sum("refusal" in t and "550" in t for t in told) == 1
