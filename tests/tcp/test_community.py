"""Community IDs checked against two references: Zeek's baseline for its own test capture,
and tshark's communityid dissector (Wireshark 4.0) for every session of every lab and public
capture (measured once by hand as well: 131 sessions of the 120 public captures, none
differing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis import analyze
from pcapsmtp.tcp.community import community_id
from tests.captures import LAB, all_captures, analysed, capture_id
from tests.tshark import ask, fields, needs_tshark

# zeek/zeek a13de64fbbdb, testing/btest/Baseline/bifs.community_id.run-pcaps/ipv6.pcap.out:
# the Community ID Zeek computes for testing/btest/Traces/communityid/ipv6.pcap (the public
# capture zeek-communityid-ipv6.pcap, byte for byte).
ZEEK_IPV6 = "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="
COMMUNITY_ID = ("--enable-protocol", "communityid")
ask(["tcp.stream", "communityid"], "tcp", COMMUNITY_ID)


def test_zeek_reference_value(public_capture):
    analysis = analyze([str(public_capture("zeek-communityid-ipv6.pcap"))])
    assert [community_id(s.flow) for s in analysis.sessions] == [ZEEK_IPV6]


def test_same_either_way_round(public_capture):
    analysis = analyze([str(public_capture("zeek-communityid-ipv6.pcap"))])
    flow = analysis.sessions[0].flow
    flow.endpoints = flow.endpoints[::-1]
    assert community_id(flow) == ZEEK_IPV6


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_matches_tshark(path):
    """tshark's communityid protocol is off by default; its value for the first frame of each
    tcp.stream is the stream's (asked in the shared pass, which enables it:
    tests/tshark.py)."""
    rows = fields(path, ["tcp.stream", "communityid"], "tcp", COMMUNITY_ID)
    theirs: dict[int, str] = {}
    for stream, value in rows:
        theirs.setdefault(int(stream), value)
    sessions = analysed(path).sessions
    assert sessions or path.parent != LAB, "every lab capture has SMTP sessions"
    ours = {s.flow.stream: community_id(s.flow) for s in sessions}
    assert ours == {stream: theirs[stream] for stream in ours}
    assert all(value.startswith("1:") and len(value) == 30 for value in ours.values())


_ADDRESSES = st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16)
_PORTS = st.integers(min_value=0, max_value=65535)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_same_as_the_packages_calc(data):
    """The tuple handed to the package in network order with the lesser end first, as its
    own in_nbo and in_order make it: the value calc gives, equal ends and ports included."""
    import communityid

    first = data.draw(_ADDRESSES)
    second = data.draw(st.just(first) | st.binary(min_size=len(first), max_size=len(first)))
    ports = data.draw(st.tuples(_PORTS, _PORTS) | _PORTS.map(lambda port: (port, port)))
    flow = SimpleNamespace(
        endpoints=(
            SimpleNamespace(ip=first, port=ports[0]),
            SimpleNamespace(ip=second, port=ports[1]),
        )
    )
    calc = communityid.CommunityID(seed=0, use_base64=True).calc
    assert community_id(flow) == calc(communityid.FlowTuple.make_tcp(first, second, *ports))
