"""conn.log as Zeek writes it, and the ids its rows share with smtp.log and files.log: the
connection's ``uid``, a file's ``fuid``, the 4-tuple (pcapsmtp.report.zeeklogs says what is
learnt from Zeek and what differs).

``local_orig``/``local_resp`` are Zeek's defaults: with no ``Site::local_nets`` of its own,
Zeek counts its private address space as local (``Site::private_address_space_is_local``).
"""

from __future__ import annotations

import ipaddress
from hashlib import sha256

from pcapsmtp.capture.addresses import address
from pcapsmtp.report.zeekwriter import zeek_time
from pcapsmtp.smtp.events import AUTH_RESPONSE, GREETING
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TcpFlow

CONN_ID_FIELDS = (
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
)
"""Zeek's conn_id record as every log flattens it, after the connection's ``uid``."""

CONN_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    *CONN_ID_FIELDS,
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
)
"""Zeek's Conn::Info."""

PRIVATE_ADDRESS_SPACE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "2002::/24", "10.0.0.0/8", "2002:a00::/24", "100.64.0.0/10",
        "2002:6440::/26", "127.0.0.0/8", "2002:7f00::/24", "169.254.0.0/16", "2002:a9fe::/32",
        "172.16.0.0/12", "2002:ac10::/28", "192.0.0.0/24", "2002:c000::/40", "192.0.2.0/24",
        "2002:c000:200::/40", "192.168.0.0/16", "2002:c0a8::/32", "198.18.0.0/15",
        "2002:c612::/31", "198.51.100.0/24", "2002:c633:6400::/40", "203.0.113.0/24",
        "2002:cb00:7100::/40", "224.0.0.0/24", "2002:e000::/40", "239.0.0.0/8",
        "2002:ef00::/24", "240.0.0.0/4", "2002:f000::/20", "255.255.255.255/32",
        "2002:ffff:ffff::/48", "::/128", "::1/128", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:2::/48", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    )
)  # fmt: skip
"""Zeek's Site::private_address_space (base/utils/site.zeek), which its default
Site::private_address_space_is_local makes the local networks."""

TUNNEL_SERVICES = {"http-connect": "http", "socks5": "socks"}
"""The service Zeek names for the proxy an SMTP session was tunnelled through."""


# -- the uid -------------------------------------------------------------------------------

_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base62(value: int) -> str:
    """Least significant digit first, as Zeek's uitoa_n writes a UID."""
    digits = _BASE62[value % 62]
    value //= 62
    while value:
        digits += _BASE62[value % 62]
        value //= 62
    return digits


def _zeek_id(letter: str, key: bytes) -> str:
    digest = sha256(key).digest()
    return letter + _base62(int.from_bytes(digest[:8])) + _base62(int.from_bytes(digest[8:12]))


def uid(flow: TcpFlow) -> str:
    """A Zeek-style connection uid ('C' and 96 bits in base 62) that is the same whenever
    the same connection is read: a hash of its addresses, ports, first frame and time, not
    Zeek's random one (the two never match)."""
    client, server = flow.endpoints[flow.client], flow.endpoints[flow.server]
    key = b"|".join(
        [
            client.ip,
            server.ip,
            b"%d|%d|%d|%d" % (client.port, server.port, flow.first_frame, flow.first_time_ns),
        ]
    )
    return _zeek_id("C", key)


def fuid(connection: str, message: int, entity: int) -> str:
    """A Zeek-style file id ('F' and 96 bits in base 62) for a MIME entity: a hash of the
    connection's uid, the message's number in it and the entity's depth, the same whenever
    the same capture is read (Zeek's are random)."""
    return _zeek_id("F", b"%s|%d|%d" % (connection.encode(), message, entity))


# -- conn.log ------------------------------------------------------------------------------


def conn_ids(session: Session) -> dict[str, object]:
    client, server = session.client, session.server
    return {
        "uid": uid(session.flow),
        "id.orig_h": address(client.ip),
        "id.orig_p": client.port,
        "id.resp_h": address(server.ip),
        "id.resp_p": server.port,
    }


def _services(session: Session) -> str | None:
    """What Zeek's analyzers would confirm: smtp once the client sent a command, ssl once a
    TLS handshake was seen, the proxy's protocol for a tunnelled session."""
    found = set()
    if any(c.verb not in (GREETING, AUTH_RESPONSE) for c in session.commands):
        found.add("smtp")
        if session.tunnel in TUNNEL_SERVICES:
            found.add(TUNNEL_SERVICES[session.tunnel])
    if session.tls is not None and session.tls.facts is not None:
        found.add("ssl")
    return ",".join(sorted(found)) or None


def _end_ns(flow: TcpFlow) -> int:
    """The time Zeek's duration ends: the last packet, or, once both sides sent a FIN or RST,
    the packet with which the second did (later packets do not move it)."""
    closing = {}
    for note in flow.notes:
        if note.tcp_flags & (TH_FIN | TH_RST) and note.direction not in closing:
            closing[note.direction] = note.time_ns
    if len(closing) == 2 and all(e.closed_frame is not None for e in flow.endpoints):
        return max(closing.values())
    return flow.last_time_ns


def is_local(ip: bytes) -> bool:
    """Zeek's Site::is_local_addr with its default local networks."""
    found = ipaddress.ip_address(ip)
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    return any(found in net for net in PRIVATE_ADDRESS_SPACE)


def conn_row(session: Session) -> dict[str, object]:
    flow = session.flow
    client, server = session.client, session.server
    duration = zeek_time(_end_ns(flow)) - zeek_time(flow.first_time_ns)
    row: dict[str, object] = {"ts": zeek_time(flow.first_time_ns), **conn_ids(session)}
    row["proto"] = "tcp"
    row["service"] = _services(session)
    row["duration"] = duration if duration > 0 else None
    row["orig_bytes"] = client.stream_bytes + client.gap_bytes if duration > 0 else None
    row["resp_bytes"] = server.stream_bytes + server.gap_bytes if duration > 0 else None
    row["conn_state"] = str(flow.state)
    row["local_orig"] = is_local(client.ip)
    row["local_resp"] = is_local(server.ip)
    row["missed_bytes"] = client.gap_bytes + server.gap_bytes
    row["history"] = flow.history or None
    row["orig_pkts"] = client.packets
    row["orig_ip_bytes"] = client.ip_bytes
    row["resp_pkts"] = server.packets
    row["resp_ip_bytes"] = server.ip_bytes
    row["tunnel_parents"] = None
    row["ip_proto"] = 6
    return row
