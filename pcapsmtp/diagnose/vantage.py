"""Where the capture was taken, judged from TTLs, and how to name the other end.

A host's own packets leave it with an initial TTL (Linux and macOS 64, Windows 128, network
gear 255); every router on the way takes one off. So at the capture point the local side's
packets carry an initial TTL and the far side's a decremented one. Advice such as "compare
with a capture at the other end" must name the end the capture was not taken at.
"""

from __future__ import annotations

from pcapsmtp.capture.addresses import address
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import Endpoint

INITIAL_TTLS = (32, 64, 128, 255)
"""The TTLs operating systems start with: Linux and macOS 64, Windows 128, network gear 255."""


def usual_ttl(endpoint: Endpoint) -> int | None:
    """The TTL most of this side's packets carry at the capture point."""
    return endpoint.ttls.most_common(1)[0][0] if endpoint.ttls else None


def hops(ttl: int | None) -> int | None:
    """Routers between the sender and the capture point, assuming a usual initial TTL."""
    if ttl is None:
        return None
    return min(t for t in INITIAL_TTLS if t >= ttl) - ttl


def capture_point(session: Session) -> str:
    """'client' when the client's packets carry an initial TTL and the server's do not,
    'server' the other way round, 'path' when neither does, 'unknown' otherwise."""
    client, server = hops(usual_ttl(session.client)), hops(usual_ttl(session.server))
    if client is None or server is None:
        return "unknown"
    if client == 0 and server > 0:
        return "client"
    if server == 0 and client > 0:
        return "server"
    if client > 0 and server > 0:
        return "path"
    return "unknown"


def capture_elsewhere(session: Session) -> str:
    """'a capture at the server 10.0.0.2' (the end this capture was not taken at), or
    'captures at both ends' when the capture point is the path or unknown."""
    point = capture_point(session)
    if point == "client":
        return f"a capture at the server {address(session.server.ip)}"
    if point == "server":
        return f"a capture at the client {address(session.client.ip)}"
    return "captures taken at both ends at once"


def captured_at(session: Session, side: str) -> bool:
    """Whether the capture was (judged from TTLs) taken at this side ('client'/'server')."""
    return capture_point(session) == side
