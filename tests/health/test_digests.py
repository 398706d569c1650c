"""The per-peer summary and the capture-wide rules work from each session's digest
(pcapsmtp.diagnose.digest) so the sessions themselves can be spooled: what they find must be
what the full sessions give. The references below are the rules as they were written over
full sessions, before the digests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.capture.addresses import address, endpoint_name
from pcapsmtp.diagnose.health import (
    FAILED_OUTCOMES,
    NegativeReply,
    PeerHealth,
    server_replies,
    summarize,
)
from pcapsmtp.diagnose.storms import _limited_finding, _rate, _storm_finding, _throttling
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.model import Outcome, Session
from tests.captures import LAB
from tests.health.traffic import DELIVERY, attempts, greeted, write_capture


def _old_add(peer: PeerHealth, session: Session, other: str) -> None:
    peer.sessions.append(session.key)
    peer.peers.add(other)
    peer.outcomes[session.outcome] += 1
    peer.messages.update(t.outcome for t in session.transactions)
    if peer.first_ns is None or session.flow.first_time_ns < peer.first_ns:
        peer.first_ns = session.flow.first_time_ns
    if peer.last_ns is None or session.flow.last_time_ns > peer.last_ns:
        peer.last_ns = session.flow.last_time_ns
    for reply in server_replies(session):
        peer.replies[reply.code] += 1
        if not (codes.is_transient(reply.code) or codes.is_permanent(reply.code)):
            continue
        enhanced = codes.parse_enhanced(reply.lines[0]) if reply.lines else None
        key = (reply.code, enhanced)
        if key in peer.negative:
            peer.negative[key].count += 1
        else:
            text = " ".join(reply.text.split())
            peer.negative[key] = NegativeReply(
                reply.code, enhanced, 1, text, reply.frame, session.capture
            )


def _old_summarize(sessions: Sequence[Session]) -> tuple[list, list]:
    destinations: dict[str, PeerHealth] = {}
    clients: dict[str, PeerHealth] = {}
    for session in sorted(sessions, key=lambda s: (s.flow.first_time_ns, s.id)):
        server, client = endpoint_name(session.server), address(session.client.ip)
        _old_add(
            destinations.setdefault(server, PeerHealth("destination", server)), session, client
        )
        _old_add(clients.setdefault(client, PeerHealth("client", client)), session, server)
    return list(destinations.values()), list(clients.values())


def _old_storms(sessions: Sequence[Session]) -> list:
    pairs: dict[tuple, list[Session]] = {}
    for session in sorted(sessions, key=lambda s: s.flow.first_time_ns):
        key = (session.client.ip, session.server.ip, session.server.port)
        pairs.setdefault(key, []).append(session)
    found = []
    for tried in pairs.values():
        failed = [
            s
            for s in tried
            if s.outcome in FAILED_OUTCOMES
            and not any(t.outcome == Outcome.DELIVERED for t in s.transactions)
        ]
        if len(failed) < 20:
            continue
        span = (failed[-1].flow.first_time_ns - failed[0].flow.first_time_ns) / 1e9
        rate = (len(failed) - 1) * 60 / span if span > 0 else float("inf")
        assert (span, rate) == _rate([s.flow for s in failed])
        delivered = any(t.outcome == Outcome.DELIVERED for s in tried for t in s.transactions)
        found.append(_storm_finding(len(tried), delivered, failed, span, rate))
    return found


def _old_limited(sessions: Sequence[Session]) -> list:
    places: dict[tuple, list[Session]] = {}
    for session in sorted(sessions, key=lambda s: s.flow.first_time_ns):
        places.setdefault((session.server.ip, session.server.port), []).append(session)
    found = []
    for tried in places.values():
        hits = [(s, reply, enhanced) for s in tried for reply, enhanced in _throttling(s)]
        if hits:
            found.append(_limited_finding(endpoint_name(tried[0].server), len(tried), hits))
    return found


def _captures(tmp_path) -> list[str]:
    throttle = greeted(b"421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred")
    mixed = (
        attempts(40, 1.0, greeted(b"421 4.3.2 Service currently unavailable"))
        + attempts(5, 10.0, DELIVERY, first_port=30000)
        + attempts(3, 60.0, throttle, first_port=20000)
    )
    made = [str(write_capture(tmp_path / "mixed.pcap", mixed))]
    return made + [str(LAB / n) for n in ("retry-storm.pcap", "greylisting.pcap")]


@pytest.mark.skipif(not LAB.exists(), reason="no lab captures")
def test_summary_and_capture_wide_findings_from_digests_equal_those_from_sessions(tmp_path):
    for path in _captures(tmp_path):
        analysis = analyze([path])
        sessions = list(analysis.sessions)
        health = summarize(analysis.sessions)
        destinations, clients = _old_summarize(sessions)
        assert list(health.destinations) == destinations and destinations
        assert list(health.clients) == clients and clients
        codes_found = {f.code for f in analysis.findings}
        storms = [f for f in analysis.findings if f.code == "retry-storm"]
        limited = [f for f in analysis.findings if f.code == "rate-limited"]
        for finding in storms + limited:
            finding.capture = ""
        assert storms == _old_storms(sessions)
        assert limited == _old_limited(sessions)
        if path.endswith("mixed.pcap"):
            assert {"retry-storm", "rate-limited"} <= codes_found
        if path.endswith("greylisting.pcap"):
            (bounce,) = [f for f in analysis.findings if f.code == "soft-bounce"]
            assert "The client retried" in bounce.detail and "was delivered" in bounce.detail
