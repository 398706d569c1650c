"""The Community ID of a connection (v1, https://github.com/corelight/community-id-spec),
the flow hash Zeek, Suricata, Arkime and Wireshark log, so our sessions join with their records.

Seed 0 and the base64 form (``1:...``) are every tool's default. Computed here from the spec
(a SHA-1 over the ordered 5-tuple) rather than by Corelight's ``communityid`` package: its
``calc`` formats the flow tuple for a log message on every call and validates and converts
each address several times, 110 µs a flow against 2 µs here, 7 % of ``analyze --format json``
on an SMTP-heavy capture. The package stays the tests' reference (tests/tcp/test_community.py
compares the two on random tuples), beside Zeek's and tshark's values.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from struct import Struct

from pcapsmtp.tcp.model import TcpFlow

_SEED_0 = b"\x00\x00"
"""The seed, 16 bits in network byte order."""
_TCP_AND_PADDING = b"\x06\x00"
"""The IP protocol number (6, TCP) and a zero byte of padding."""
_PORTS = Struct("!HH")


def community_id(flow: TcpFlow) -> str:
    """``1:<base64 SHA-1>`` of the flow's 5-tuple; the same whichever side is named first."""
    a, b = flow.endpoints
    return tcp_community_id(a.ip, a.port, b.ip, b.port)


def tcp_community_id(ip_a: bytes, port_a: int, ip_b: bytes, port_b: int) -> str:
    """The spec's ordering: the side with the smaller address (then port, both compared in
    network byte order) is hashed first; addresses are 4 or 16 bytes as on the wire."""
    if (ip_b, port_b) < (ip_a, port_a):
        ip_a, port_a, ip_b, port_b = ip_b, port_b, ip_a, port_a
    digest = hashlib.sha1(
        _SEED_0 + ip_a + ip_b + _TCP_AND_PADDING + _PORTS.pack(port_a, port_b)
    ).digest()
    return "1:" + b64encode(digest).decode("ascii")
