"""Naming a session: ids per capture, the client's address and port, tcp.stream."""

from __future__ import annotations

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.selection import (
    CLIENT,
    ID,
    SelectionError,
    parse_session,
    select,
    stream_selector,
)
from tests.captures import LAB

pytestmark = pytest.mark.skipif(not (LAB / "auth-plain-clear.pcap").exists(), reason="no lab")


@pytest.mark.parametrize(
    "text,kind,value",
    [
        ("3", ID, 3),
        (" 12 ", ID, 12),
        ("10.0.0.5:40312", CLIENT, (bytes([10, 0, 0, 5]), 40312)),
        ("[2001:db8::5]:25", CLIENT, (bytes.fromhex("20010db8" + "00" * 10 + "0005"), 25)),
    ],
)
def test_what_a_session_selector_may_be(text, kind, value):
    selector = parse_session(text)
    assert (selector.kind, selector.value) == (kind, value)


@pytest.mark.parametrize(
    "text", ["", "x", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "2001:db8::5:25", "host:25", "-1"]
)
def test_what_it_may_not(text):
    with pytest.raises(ValueError, match="is not a session"):
        parse_session(text)


def test_ids_count_per_capture_whatever_else_is_analysed():
    a, b = str(LAB / "auth-plain-clear.pcap"), str(LAB / "greylisting.pcap")
    alone = [(s.flow.stream, s.id) for s in analyze([b]).sessions]
    together = analyze([a, b])
    assert [(s.flow.stream, s.id) for s in together.sessions if s.capture == b] == alone
    assert [s.id for s in together.sessions] == [1, 2, 3, 1, 2]
    assert len({s.key for s in together.sessions}) == 5


def test_the_three_ways_name_the_same_session():
    sessions = analyze([str(LAB / "auth-plain-clear.pcap")]).sessions
    second = sessions[1]
    client = f"10.77.1.2:{second.client.port}"
    assert select(sessions, parse_session("2"), "x") is second
    assert select(sessions, parse_session(client), "x") is second
    assert select(sessions, stream_selector(second.flow.stream), "x") is second


def test_a_selector_that_matches_nothing_lists_what_there_is():
    sessions = analyze([str(LAB / "auth-plain-clear.pcap")]).sessions
    with pytest.raises(SelectionError) as raised:
        select(sessions, parse_session("10.77.1.2:1"), "a.pcap")
    message = str(raised.value)
    assert message.startswith("a.pcap has no SMTP session from 10.77.1.2:1; its sessions: 1 (")
    assert message.count("tcp.stream") == 3


def test_the_same_id_in_several_captures_is_ambiguous():
    sessions = analyze([str(LAB / "clean-delivery.pcap"), str(LAB / "greylisting.pcap")]).sessions
    with pytest.raises(SelectionError, match="is in several captures"):
        select(sessions, parse_session("1"), "both")
    assert select(sessions, parse_session("2"), "both").capture.endswith("greylisting.pcap")


def test_a_retry_storm_is_summed_up_in_the_message():
    sessions = analyze([str(LAB / "retry-storm.pcap")]).sessions
    with pytest.raises(SelectionError) as raised:
        select(sessions, stream_selector(100_000), "storm.pcap")
    assert f"({len(sessions)} in all)" in str(raised.value)
