"""Lookups: queries matched to their responses, retries gathered, from a capture's DNS."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from pcapsmtp.capture import CaptureInfo, DnsDatagram
from pcapsmtp.dns.model import DnsMessage, Lookup
from pcapsmtp.dns.parse import parse_datagram

RETRY_WINDOW_NS = 30 * 10**9
"""A query for a question still unanswered after an earlier try within this long is a retry
of it (glibc tries each server for 5 s, twice by default; Postfix's own resolver calls
likewise; resolv.conf(5))."""


COPY_WINDOW_NS = 5 * 10**6
"""A datagram repeating one of the few before it within this long is one packet captured
twice (a SPAN port mirroring both ports, a bridge and its member), as the core's copy check
says of TCP segments: a client's own retry of the same query comes a timeout later (1 s or
more; resolv.conf(5))."""
COPY_LOOKBACK = 4


def _copy(datagram: DnsDatagram, recent: deque[tuple[tuple, int]]) -> bool:
    """The datagram repeats one of the ``recent`` ones (addresses, ports, bytes) captured at
    most COPY_WINDOW_NS before it; it is remembered otherwise."""
    key = (datagram.src, datagram.sport, datagram.dst, datagram.dport, datagram.payload)
    if any(k == key and 0 <= datagram.time_ns - t <= COPY_WINDOW_NS for k, t in recent):
        return True
    recent.append((key, datagram.time_ns))
    return False


def read_dns(datagrams: Iterable[DnsDatagram], info: CaptureInfo) -> list[Lookup]:
    """The capture's DNS datagrams as lookups, in the order of their first frame; the
    messages that cannot be read become one warning on the capture. A capture's copies of
    a datagram are left out (they are not the client's retries)."""
    messages: list[DnsMessage] = []
    bad: list[tuple[int, str]] = []
    recent: deque[tuple[tuple, int]] = deque(maxlen=COPY_LOOKBACK)
    for datagram in datagrams:
        if _copy(datagram, recent):
            continue
        message = parse_datagram(datagram)
        if isinstance(message, str):
            bad.append((datagram.frame, message))
        else:
            messages.append(message)
    if bad:
        shown = ", ".join(str(frame) for frame, _ in bad[:10])
        more = " ..." if len(bad) > 10 else ""
        info.warnings.append(
            f"{len(bad)} DNS message(s) could not be read ({bad[0][1]}: frames {shown}{more}); "
            "the DNS checks left them out"
        )
    return match_lookups(messages)


def match_lookups(messages: Iterable[DnsMessage]) -> list[Lookup]:
    """Responses matched to queries by client address and port, server address, id and
    question (RFC 5452 4: what a resolver itself checks); a query for a question already
    pending from the same client within RETRY_WINDOW_NS is a retry of that lookup. A response
    with no query in the capture is a lookup of its own."""
    lookups: list[Lookup] = []
    by_try: dict[tuple, Lookup] = {}
    pending: dict[tuple, Lookup] = {}
    for message in messages:
        question = (message.client[0], message.name, message.qtype)
        key = (message.client, message.server[0], message.id, message.name, message.qtype)
        if message.response:
            lookup = by_try.pop(key, None)
            if lookup is None or lookup.response is not None:
                lookup = Lookup(message.client[0], message.server[0], message.name, message.qtype)
                lookups.append(lookup)
            lookup.response = message
            if pending.get(question) is lookup:
                del pending[question]
            continue
        lookup = pending.get(question)
        if lookup is None or message.time_ns - lookup.queries[-1].time_ns > RETRY_WINDOW_NS:
            lookup = Lookup(message.client[0], message.server[0], message.name, message.qtype)
            lookups.append(lookup)
            pending[question] = lookup
        lookup.queries.append(message)
        by_try[key] = lookup
    return lookups
