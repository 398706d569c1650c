"""The connection parameters of two sessions side by side.

Values are plain (numbers, strings, booleans, lists, ``{"client": .., "server": ..}``) so
every renderer can show them; wire text (TLS cipher names are not, EHLO keywords are) is
escaped by the renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Set

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.diagnose.vantage import capture_point, hops, usual_ttl
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.outcome import outlived
from pcapsmtp.tcp.model import TH_RST, Endpoint, Flag

from .model import Parameter, Value


def _roles(session: Session, value: Callable[[Endpoint], Value]) -> dict:
    return {"client": value(session.client), "server": value(session.server)}


def _handshake(attr: str) -> Callable[[Session], dict]:
    def get(session: Session) -> dict:
        return _roles(session, lambda e: getattr(e.handshake, attr) if e.handshake else None)

    return get


def _df(endpoint: Endpoint) -> bool | None:
    if not endpoint.packets:
        return None
    return endpoint.df[True] > 0 and endpoint.df[False] == 0


def _resets(session: Session) -> list[dict]:
    """Who sent each RST, its TTL, and ``ignored`` for one the connection outlived."""
    flow = session.flow
    out = []
    for note in flow.notes:
        if note.tcp_flags & TH_RST:
            reset = {"from": "client" if note.direction == flow.client else "server"}
            reset["ttl"] = note.ttl
            if outlived(flow, note):
                reset["ignored"] = True
            out.append(reset)
    return out


def _retransmissions(session: Session, copies: Set[int]) -> dict:
    """Wireshark's retransmission counts less the frames that are copies of a packet
    captured just before (a SPAN port seeing packets twice): one packet, sent once."""
    counts = _roles(session, lambda e: e.counts["retransmission"])
    if not copies:
        return counts
    flow = session.flow
    for note in flow.notes:
        if note.frame in copies and note.analysis & Flag.ANY_RETRANSMISSION:
            counts["client" if note.direction == flow.client else "server"] -= 1
    return counts


def _icmp(session: Session) -> list[dict]:
    return [{"type": e.type, "code": e.code, "mtu": e.mtu} for e in session.flow.icmp]


def _tls(attr: str) -> Callable[[Session], Value]:
    def get(session: Session) -> Value:
        facts = session.tls.facts if session.tls else None
        return getattr(facts, attr) if facts is not None else None

    return get


def extensions(session: Session) -> list[str]:
    """The EHLO keywords the server announced (first word of each EHLO line)."""
    keywords = (line.split()[:1] for line in session.extensions.get("extensions", []))
    return [kw[0].upper() for kw in keywords if kw]


def _rtt_ms(session: Session) -> float | None:
    rtt = session.flow.rtt_ns
    return None if rtt is None else round(rtt / 1e6, 3)


def _duration_ms(session: Session) -> float:
    flow = session.flow
    return round((flow.last_time_ns - flow.first_time_ns) / 1e6, 3)


def _same(a: Value, b: Value) -> bool:
    return a == b


def _same_set(a: list, b: list) -> bool:
    return set(a) == set(b)


def _similar_time(a: float | None, b: float | None) -> bool:
    """Times are alike when within a factor of two or 5 ms of each other."""
    if a is None or b is None:
        return a == b
    return abs(a - b) <= 5 or max(a, b) <= 2 * min(a, b)


ROWS: list[tuple[str, str, Callable[[Session], object], Callable[[object, object], bool]]] = [
    ("capture_point", "capture taken at", capture_point, _same),
    ("client", "client address", lambda s: endpoint_name(s.client), _same),
    ("server", "server address", lambda s: endpoint_name(s.server), _same),
    ("ttl", "TTL seen (client / server)", lambda s: _roles(s, usual_ttl), _same),
    (
        "hops",
        "hops to the capture point (client / server)",
        lambda s: _roles(s, lambda e: hops(usual_ttl(e))),
        _same,
    ),
    ("mss", "MSS announced (client / server)", _handshake("mss"), _same),
    ("wscale", "window scale (client / server)", _handshake("wscale"), _same),
    ("sack", "SACK permitted (client / server)", _handshake("sack_permitted"), _same),
    ("timestamps", "timestamps (client / server)", _handshake("timestamps"), _same),
    ("df", "Don't Fragment (client / server)", lambda s: _roles(s, _df), _same),
    ("rtt_ms", "handshake RTT, ms", _rtt_ms, _similar_time),
    (
        "max_segment",
        "largest segment sent, bytes (client / server)",
        lambda s: _roles(s, lambda e: e.max_segment),
        _same,
    ),
    (
        "max_acked_segment",
        "largest segment acknowledged, bytes (client / server)",
        lambda s: _roles(s, lambda e: e.max_acked_segment),
        _same,
    ),
    ("retransmissions", "retransmissions (client / server)", _retransmissions, _same),
    ("resets", "resets", _resets, _same),
    (
        "fragments",
        "IP fragments (client / server)",
        lambda s: _roles(s, lambda e: e.fragmented),
        _same,
    ),
    ("icmp", "ICMP errors", _icmp, _same),
    ("tls_version", "TLS version", _tls("version"), _same),
    ("tls_cipher", "TLS cipher", _tls("cipher"), _same),
    ("extensions", "EHLO keywords", extensions, _same_set),
    ("message_size", "message sizes, bytes", lambda s: [t.size for t in s.transactions], _same),
    ("duration_ms", "duration, ms", _duration_ms, _similar_time),
    ("outcome", "outcome", lambda s: s.outcome, _same),
]


WITH_COPIES = {"retransmissions"}
"""Rows whose value leaves out the frames that are copies (their function takes them)."""


def parameters(
    a: Session, b: Session, copies: tuple[Set[int], Set[int]] = (frozenset(), frozenset())
) -> list[Parameter]:
    """The rows for two sessions; ``copies``: each capture's copy frames."""
    out = []
    for name, label, value, alike in ROWS:
        if name in WITH_COPIES:
            va, vb = value(a, copies[0]), value(b, copies[1])
        else:
            va, vb = value(a), value(b)
        out.append(Parameter(name, label, va, vb, not alike(va, vb)))
    return out
