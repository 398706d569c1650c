"""Each side's packets and IP bytes (conn.log's orig_pkts / orig_ip_bytes, resp_pkts /
resp_ip_bytes in ``analyze --format zeek``) against tshark: per tcp.stream and sender, the
number of TCP segments and the sum of their IP total lengths (IPv6: payload length + 40).

Left out where the two count differently on purpose: a connection that arrived in IP
fragments (tshark shows the TCP fields on the reassembling frame with that fragment's
length, we count the datagram), and a tcp.stream that holds several of our sessions (a
port reused with the same initial sequence number)."""

from __future__ import annotations

from collections import Counter

import pytest

from pcapsmtp.capture.addresses import address
from tests import tshark
from tests.captures import all_captures, analysed, capture_id

FIELDS = ["tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "ip.len", "ipv6.plen"]
SEGMENTS = "tcp and not icmp and not icmpv6"
tshark.ask(FIELDS, SEGMENTS)


@tshark.needs_tshark
@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_packets_and_ip_bytes_per_side_match_tshark(path):
    packets: Counter = Counter()
    ip_bytes: Counter = Counter()
    for stream, src4, src6, port, len4, plen6 in tshark.fields(path, FIELDS, SEGMENTS):
        key = (int(stream), src4 or src6, int(port))
        packets[key] += 1
        ip_bytes[key] += int(len4) if len4 else int(plen6) + 40
    sessions = analysed(path).sessions
    per_stream = Counter(session.flow.stream for session in sessions)
    for session in sessions:
        flow = session.flow
        if per_stream[flow.stream] > 1 or any(e.fragmented for e in flow.endpoints):
            continue
        for endpoint in flow.endpoints:
            key = (flow.stream, address(endpoint.ip), endpoint.port)
            assert (endpoint.packets, endpoint.ip_bytes) == (packets[key], ip_bytes[key]), key
