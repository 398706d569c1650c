"""Reading DNS messages: real datagrams from the lab's captures, the same bytes damaged the
ways captures damage them, and random bytes. Bad DNS is a capture warning, never a traceback;
lookups gather a client's retries and match each response to its query."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis import analyze
from pcapsmtp.capture import DnsDatagram, open_capture, packets
from pcapsmtp.capture.model import CaptureInfo
from pcapsmtp.dns import match_lookups, parse_datagram, read_dns
from pcapsmtp.dns.model import NXDOMAIN, TYPE_MX
from tests.captures import LAB
from tests.diagnose.helpers import lab, truth


def _datagrams(name: str) -> list[DnsDatagram]:
    found: list[DnsDatagram] = []
    with open_capture(lab(name)) as capture:
        for _ in packets(capture, found):
            pass
    return found


def test_the_lab_lookups_read_as_dig_reported_them():
    """Every lookup dig made in dns-lookup-failed, with its id and status, is in the capture."""
    lookups = read_dns(_datagrams("dns-lookup-failed"), CaptureInfo("x"))
    seen = {(lk.first.id, lk.name, lk.rcode) for lk in lookups}
    codes = {"NOERROR": 0, "NXDOMAIN": 3, "SERVFAIL": 2, "REFUSED": 5}
    for asked in truth("dns-lookup-failed")["dns"]:
        assert (asked["id"], asked["name"], codes[asked["status"]]) in seen


def test_a_retry_joins_its_lookup_and_the_answer_ends_it():
    """dig's two tries for silent.test (same question, new source port) are one lookup with
    no answer; the later lookup of server.lab.test is answered."""
    lookups = read_dns(_datagrams("dns-timeout"), CaptureInfo("x"))
    silent = [lk for lk in lookups if lk.name == "silent.test"]
    assert len(silent) == 1 and len(silent[0].queries) == 2 and silent[0].response is None
    tries = truth("dns-timeout")["dns"][0]
    assert tries["status"] == "timeout"
    answered = [lk for lk in lookups if lk.name == "server.lab.test" and lk.qtype == TYPE_MX]
    assert answered[0].response is not None and answered[0].duration_ns > 0


def test_a_null_mx_reads_as_an_empty_host_of_preference_0():
    lookups = read_dns(_datagrams("dns-no-mx"), CaptureInfo("x"))
    null = next(lk for lk in lookups if lk.name == "nullmx.lab.test")
    [record] = null.records(TYPE_MX)
    assert (record.preference, record.value) == (0, "")


def test_a_response_without_its_query_is_a_lookup_of_its_own():
    messages = [parse_datagram(d) for d in _datagrams("dns-lookup-failed") if d.sport == 53]
    lookups = match_lookups(messages)
    assert len(lookups) == len(messages)
    assert all(lk.queries == [] and lk.duration_ns is None for lk in lookups)
    assert any(lk.rcode == NXDOMAIN for lk in lookups)


DAMAGE = [
    ("cut in the header", lambda p: p[:7]),
    ("cut in the question", lambda p: p[:20]),
    ("a compression pointer forward", lambda p: p[:12] + b"\xc0\xff" + p[14:]),
    ("a label length beyond the message", lambda p: p[:12] + b"\x3f" + p[13:]),
    ("a label of bytes that are not UTF-8", lambda p: p[:13] + b"\xff\xfe" + p[15:]),
    ("an answer count with no answers", lambda p: p[:6] + b"\x00\x09" + p[8:]),
]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_messages_give_a_reason(damage):
    _, damaged = damage
    for datagram in _datagrams("dns-lookup-failed"):
        payload = damaged(datagram.payload)
        bad = dataclasses.replace(datagram, payload=payload, length=len(payload))
        result = parse_datagram(bad)
        assert isinstance(result, str) or result.id == datagram_id(payload)


def datagram_id(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


def test_a_datagram_cut_by_the_snap_length_is_not_read():
    datagram = _datagrams("dns-lookup-failed")[0]
    cut = dataclasses.replace(datagram, payload=datagram.payload[:-3])
    assert parse_datagram(cut) == "cut by the snap length"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(payload):
    datagram = DnsDatagram(1, 0, 4, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 5353, 53,
                           payload, len(payload))  # fmt: skip
    result = parse_datagram(datagram)
    assert isinstance(result, str) or result.frame == 1


def test_records_of_types_dpkt_does_not_decode_keep_the_message():
    """dpkt refuses a whole message holding an RRSIG or HTTPS record; we keep the message."""
    message = dpkt.dns.DNS(id=7, op=0x8180)
    message.qd = [dpkt.dns.DNS.Q(name="example.org", type=TYPE_MX)]
    rrsig = dpkt.dns.DNS.RR(name="example.org", type=46, ttl=60, rdata=b"\x00" * 20)
    mx = dpkt.dns.DNS.RR(name="example.org", type=TYPE_MX, ttl=60)
    mx.preference, mx.mxname = 10, "mx.example.org"
    message.an = [mx, rrsig]
    payload = bytes(message)
    with pytest.raises(dpkt.UnpackError):
        dpkt.dns.DNS(payload)
    datagram = DnsDatagram(1, 0, 4, b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01", 53, 40000,
                           payload, len(payload))  # fmt: skip
    read = parse_datagram(datagram)
    assert [(r.type, r.value) for r in read.answers] == [(TYPE_MX, "mx.example.org"), (46, "")]


def test_a_capture_with_damaged_dns_analyses_with_one_warning(tmp_path: Path):
    """The lab capture with every DNS payload's question cut short: the sessions are
    analysed as before, the DNS messages become one warning, no finding names them."""
    source = LAB / "dns-lookup-failed.pcap"
    if not source.is_file():
        pytest.skip("lab capture absent")
    target = tmp_path / "damaged.pcap"
    with open(source, "rb") as handle, open(target, "wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB, snaplen=65535)
        for ts, buf in dpkt.pcap.Reader(handle):
            eth = dpkt.ethernet.Ethernet(buf)
            udp = getattr(eth.data, "data", None)
            if isinstance(udp, dpkt.udp.UDP) and 53 in (udp.sport, udp.dport):
                udp.data = bytes(udp.data)[:14]
                udp.ulen = 8 + len(udp.data)
                eth.data.len = 20 + udp.ulen
                eth.data.sum = udp.sum = 0
            writer.writepkt(bytes(eth), ts)
    result = analyze([str(target)]).results[0]
    assert result.dns == []
    warnings = [w for w in result.info.warnings if "DNS message" in w]
    assert len(warnings) == 1 and warnings[0].startswith("10 DNS message(s) could not be read")
    assert not [f for f in result.findings if f.code.startswith("dns-")]
    assert [s.outcome for s in result.sessions] == ["delivered"]
