"""The trace and reply fields MessageFacts keeps for Zeek's smtp.log (Reply-To, In-Reply-To,
User-Agent / X-Mailer / X-User-Agent, X-Originating-IP, Received): checked against tshark's
IMF dissector on every capture we have, as tables of hostile values, and the address
finding (pcapsmtp.smtp.header_addresses) against the rules of Zeek's extract_ip_addresses.

Deliberate differences from tshark: none in the values compared. tshark shows the line
breaks and tabs of folding as the characters \\r, \\n and \\t, and 8-bit bytes its own way
(those values are not compared); where it misreads a message, TSHARK_MISREADS says why.
"""

from __future__ import annotations

import time

import pytest

from pcapsmtp.smtp.header_addresses import (
    MAX_CANDIDATES,
    MAX_SEARCHED,
    ip_addresses,
    received_address,
)
from pcapsmtp.smtp.message import MessageScanner
from pcapsmtp.smtp.message_facts import HEADER_LIMIT, MAX_HOPS, MessageFacts
from tests.captures import all_captures, analysed, capture_id
from tests.tshark import answer, ask, needs_tshark

SEPARATOR = "\x1f"
IMF_FIELDS = [
    "frame.number",
    "imf.reply_to",
    "imf.in_reply_to",
    "imf.user_agent",
    "imf.ext.mailer",
    "imf.received",
]
ask(IMF_FIELDS, "imf")

TSHARK_MISREADS = {
    # capture: (the fields tshark does not show, why)
    "suricata-smtp-data-rejected_10.7.29.101_49898-178.63.41.150_25.pcap": (
        {"first_received", "second_received"},
        "the client pipelined RSET, MAIL, RCPT and DATA after a rejected message; tshark's "
        "IMF begins at RSET and reads 'DATA\\r\\nReceived' as an unknown field's name",
    ),
}


def scan(message: bytes) -> MessageFacts:
    scanner = MessageScanner(dot_stuffed=False)
    scanner.feed(message)
    return scanner.finish()


def shown(value: str | None) -> str | None:
    """A kept value as tshark shows it (folding as the characters \\r\\n and \\t)."""
    if value is None:
        return None
    return value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


# -- against tshark, on every capture ------------------------------------------------------


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_kept_fields_match_tshark(path):
    """Each message tshark's IMF dissector shows: the last Reply-To, In-Reply-To, User-Agent
    or X-Mailer field and the last two Received fields are the values kept."""
    rows = answer(path, IMF_FIELDS, "imf", ("-E", f"aggregator={SEPARATOR}")).rows
    if not rows:
        pytest.skip("tshark dissects no message here")
    facts = {
        t.message_frame: t.message
        for session in analysed(path).sessions
        for t in session.transactions
        if t.message is not None
    }
    misread, _why = TSHARK_MISREADS.get(path.name, (set(), ""))
    compared = found_where_tshark_misreads = 0
    for frame, reply_to, in_reply_to, user_agent, mailer, received in (
        [*row, *[""] * (len(IMF_FIELDS) - len(row))] for row in rows
    ):
        message = facts.get(int(frame))
        if message is None:
            continue  # a message tshark finds where pcapsmtp does not: other tests' business
        received_fields = received.split(SEPARATOR) if received else []
        expected = {
            "reply_to": reply_to.split(SEPARATOR)[-1] or None,
            "in_reply_to": in_reply_to.split(SEPARATOR)[-1] or None,
            "first_received": received_fields[-1] if received_fields else None,
            "second_received": received_fields[-2] if len(received_fields) > 1 else None,
        }
        agents = {"user-agent": user_agent, "x-mailer": mailer}
        if message.user_agent_field in agents:
            expected["user_agent"] = agents[message.user_agent_field].split(SEPARATOR)[-1]
        elif user_agent or mailer:
            expected["user_agent"] = "a User-Agent or X-Mailer tshark saw"
        for name, value in expected.items():
            ours = getattr(message, name)
            if ours is not None and not ours.isascii():
                continue
            if name in misread:
                assert value is None
                found_where_tshark_misreads += ours is not None
                continue
            assert (frame, name, shown(ours)) == (frame, name, value)
            compared += value is not None
    assert compared or not any(any(row[1:]) for row in rows)
    assert bool(found_where_tshark_misreads) == bool(misread)


# -- kept as Zeek keeps them ---------------------------------------------------------------

TRACE = (
    b"Received: from relay.example (relay.example [192.0.2.7])\r\n"
    b"\tby mx.example with ESMTP; Thu, 4 Mar 2021 01:39:13 -0800\r\n"
    b"Received: from client.example (unknown [198.51.100.9]) by relay.example\r\n"
    b"Received: by client.example (Postfix, from userid 0)\r\n"
    b"Reply-To: first@example.org\r\n"
    b"Reply-To: Second <second@example.org>\r\n"
    b"In-Reply-To: <1@example.org>\r\n"
    b"X-Mailer: Mailer 1\r\n"
    b"User-Agent: SquirrelMail/1.4.22\r\n"
    b"X-Originating-IP: [203.0.113.5]\r\n"
    b"X-Originating-IP: unknown\r\n"
    b"Subject: s\r\n"
    b"\r\nbody\r\n"
)


def test_the_fields_zeek_keeps():
    facts = scan(TRACE)
    assert facts.first_received == "by client.example (Postfix, from userid 0)"
    assert facts.second_received == (
        "from client.example (unknown [198.51.100.9]) by relay.example"
    )
    assert facts.received_path == ("192.0.2.7", "198.51.100.9")
    assert facts.received == 3
    assert facts.reply_to == "Second <second@example.org>"  # the last field counts
    assert facts.in_reply_to == "<1@example.org>"
    assert (facts.user_agent, facts.user_agent_field) == ("SquirrelMail/1.4.22", "user-agent")
    assert facts.x_originating_ip == "203.0.113.5"  # a later field without one keeps it


def test_a_message_without_them_keeps_nothing():
    facts = scan(b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n")
    kept = ("reply_to", "in_reply_to", "user_agent", "user_agent_field", "x_originating_ip")
    assert [getattr(facts, name) for name in kept] == [None] * len(kept)
    assert (facts.first_received, facts.second_received, facts.received_path) == (None, None, ())
    assert not hasattr(facts, "__dict__")


def test_only_the_message_header_counts_not_an_attached_message():
    message = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Received: from inner (inner [192.0.2.99])\r\nReply-To: inner@example.org\r\n"
        b"User-Agent: inner\r\n\r\ninner body\r\n--b--\r\n"
    )
    facts = scan(message)
    assert (facts.first_received, facts.reply_to, facts.user_agent) == (None, None, None)
    assert facts.received_path == ()


@pytest.mark.parametrize(
    ("field", "kept"),
    [
        # control bytes, kept as they are: the writers escape them
        (b"Reply-To: a\tb \x1b[2J \x07 <x@example.org>", "a\tb \x1b[2J \x07 <x@example.org>"),
        # a byte that is not UTF-8: \xNN, as subject_raw
        (b"In-Reply-To: <\xff\xfe@example.org>", "<\\xff\\xfe@example.org>"),
        # RFC 2047 encoded words are not decoded (Zeek logs them as on the wire)
        (b"User-Agent: =?utf-8?q?Evil=0A=1B?= 1.0", "=?utf-8?q?Evil=0A=1B?= 1.0"),
        # raw UTF-8 stays text, folding stays until smtp.log unfolds it
        (b"User-Agent: Mail\xc3\xa9r\r\n 2.0", "Mailér\r\n 2.0"),
    ],
)
def test_hostile_values_are_kept_raw(field, kept):
    facts = scan(field + b"\r\nSubject: s\r\n\r\nbody\r\n")
    name = field.split(b":")[0].decode().lower().replace("-", "_")
    assert getattr(facts, name) == kept


def test_an_overlong_field_is_bounded_by_the_header_limit():
    """A User-Agent longer than the header block that is kept: cut there, and the message
    says so (headers_truncated), as for every other header field."""
    value = b"x" * (HEADER_LIMIT + 1000)
    facts = scan(b"Subject: s\r\nUser-Agent: " + value + b"\r\n\r\nbody\r\n")
    assert facts.headers_truncated
    assert facts.user_agent is None or len(facts.user_agent) <= HEADER_LIMIT


def test_received_path_is_bounded():
    hops = b"".join(
        b"Received: from h%d (h [10.%d.%d.1])\r\n" % (i, i // 256, i % 256)
        for i in range(MAX_HOPS * 3)
    )
    facts = scan(hops + b"Subject: s\r\n\r\nbody\r\n")
    assert facts.received == MAX_HOPS * 3
    assert len(facts.received_path) == MAX_HOPS
    assert facts.received_path[0] == "10.0.0.1"
    assert facts.first_received == f"from h{MAX_HOPS * 3 - 1} (h [10.1.43.1])"


# -- finding addresses as Zeek does --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wrapped", "found"),
    [
        ("[192.0.2.1]", False, ["192.0.2.1"]),
        ("192.0.2.1", True, ["192.0.2.1"]),  # the whole text counts as wrapped
        ("from a (a [192.0.2.1]) by b", True, ["192.0.2.1"]),
        ("from a ([192.0.2.1] helo=x) by b (198.51.100.2)", True, ["192.0.2.1", "198.51.100.2"]),
        ("id 192.0.2.1; Thu", True, []),  # ';' does not wrap
        ("id 192.0.2.1; Thu", False, ["192.0.2.1"]),
        ("x(192.0.2.1]", True, []),  # the two sides must be a pair
        ("{192.0.2.1} 10.0.0.1 ", True, ["192.0.2.1", "10.0.0.1"]),
        ("1.2.3.45", False, ["1.2.3.45"]),  # the longest match, not the first alternative
        ("999.1.1.1", False, ["99.1.1.1"]),  # Zeek's pattern finds the address inside
        ("999.1.1.1", True, []),
        ("01.2.3.4", True, []),  # a leading zero is no address (inet_pton)
        ("[IPv6:2607:f8b0:4864:20::42f]", True, []),  # 'IPv6:' is not a wrapper
        ("(2001:DB8::1)", True, ["2001:db8::1"]),  # written as Zeek writes an addr
        ("[::ffff:192.0.2.1]", True, ["192.0.2.1"]),  # v4-mapped, written as IPv4
        ("[1:2:3:4:5:6:192.0.2.1]", True, ["1:2:3:4:5:6:c000:201"]),
        ("no address here: a.b.c.d 1.2.3", False, []),
        ("x :: y", True, ["::"]),  # as Zeek: '::' is an address
    ],
)
def test_addresses_found_as_zeek_finds_them(text, wrapped, found):
    assert ip_addresses(text, wrapped=wrapped) == found


def test_received_address_is_the_second_of_several():
    assert received_address("from a (b [192.0.2.1]) by c (198.51.100.2) with x") == ("198.51.100.2")
    assert received_address("from a (b [192.0.2.1]) by c") == "192.0.2.1"
    assert received_address("by c (Postfix, from userid 0)") is None


@pytest.mark.parametrize(
    ("text", "wrapped"),
    [
        ("1a:" * 80_000, False),
        ("9a." * 80_000, False),
        ("999.999.999.999 " * 15_000, False),
        ("999.1.1.1 " * 24_000, True),
        ("(1:1:1:1:1:1:1:1:1) " * 12_000, True),
        ("1.1.1.1 " * 30_000, True),
    ],
)
def test_a_hostile_field_costs_little(text, wrapped):
    """Fields of 240 000 address-like characters: before MAX_CANDIDATES and MAX_SEARCHED
    each took 0.5 to 19 s; now a few milliseconds (the bound leaves room for a busy
    machine)."""
    start = time.process_time()
    found = ip_addresses(text, wrapped=wrapped)
    assert time.process_time() - start < 1.0
    assert len(found) <= MAX_CANDIDATES
    if not wrapped:
        assert ip_addresses(text[MAX_SEARCHED:], wrapped) == ip_addresses(
            text[MAX_SEARCHED:][:MAX_SEARCHED], wrapped
        )
