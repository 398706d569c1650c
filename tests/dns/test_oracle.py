"""The DNS messages we read against tshark's, on every lab and public capture: which frames
hold a DNS message on UDP port 53, and for each its id, direction, question, response code,
the query a response answers (``dns.response_to``) and how long it took (``dns.time``).

Left out on purpose: DNS over TCP (not read), DNS quoted inside ICMP errors, and DNS inside
a tunnel (VXLAN, Geneve, IP in IP: a second IP or UDP header), which the decoder does not
open."""

from __future__ import annotations

import pytest

from tests import tshark
from tests.captures import all_captures, analysed, capture_id

FIELDS = [
    "frame.number",
    "dns.id",
    "dns.flags.response",
    "dns.flags.rcode",
    "dns.qry.name",
    "dns.qry.type",
    "dns.response_to",
    "dns.time",
    "_ws.malformed",
]
UDP_DNS = (
    "dns && udp.port == 53 && !icmp && !icmpv6 && count(udp.srcport) == 1"
    " && !(count(ip.src) > 1) && !(count(ipv6.src) > 1) && !(ip && ipv6)"
)
tshark.ask(FIELDS, UDP_DNS)


def _ours(path) -> dict[int, tuple]:
    """frame -> (message, lookup) for every DNS message our analysis read."""
    found = {}
    for result in analysed(path).results:
        for lookup in result.dns:
            for message in [*lookup.queries, lookup.response]:
                if message is not None:
                    found[message.frame] = (message, lookup)
    return found


@tshark.needs_tshark
@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_dns_messages_match_tshark(path):
    ours = _ours(path)
    rows = tshark.fields(path, FIELDS, UDP_DNS)
    theirs = {int(row[0]): row for row in rows if not row[8]}
    assert set(ours) == set(theirs)
    for frame, (_number, dns_id, response, rcode, name, qtype, to, took, _bad) in theirs.items():
        message, lookup = ours[frame]
        assert message.id == int(dns_id, 16), frame
        assert message.response == (response in ("1", "True")), frame
        assert message.name == name.lower().rstrip("."), frame
        assert message.qtype == int(qtype), frame
        if not message.response:
            continue
        assert message.rcode == int(rcode), frame
        if to:
            asked = next(q for q in lookup.queries if q.frame == int(to))
            assert abs((message.time_ns - asked.time_ns) / 1e9 - float(took)) < 1e-6, frame


LAB_DNS = [p for p in all_captures() if p.parent.name == "captures" and p.name.startswith("dns-")]


@tshark.needs_tshark
@pytest.mark.parametrize("path", LAB_DNS, ids=capture_id)
def test_every_response_is_matched_to_the_query_tshark_names(path):
    """In the lab's DNS captures every response answers a query the capture holds."""
    ours = _ours(path)
    rows = tshark.fields(path, FIELDS, UDP_DNS + " && dns.flags.response == 1")
    assert rows
    for row in rows:
        _message, lookup = ours[int(row[0])]
        assert int(row[6]) in [q.frame for q in lookup.queries]
