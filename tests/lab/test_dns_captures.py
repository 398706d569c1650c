"""The DNS captures hold the lookups their truth records, as tshark 4.0 reads them: each
lookup dig made (its id, name, type) is in the capture with the status dig reported (no
response where dig timed out), and the slow reverse zone's answer took as long as the lab
made it. Facts about the packets only; no pcapsmtp code is involved."""

from __future__ import annotations

import json

import pytest

from tests import tshark
from tests.captures import LAB, TRUTHS

from .tsharkframes import truth_or_skip

FIELDS = ["frame.number", "dns.id", "dns.qry.name", "dns.qry.type", "dns.flags.response",
          "dns.flags.rcode", "dns.time"]  # fmt: skip
TYPES = {"A": 1, "MX": 15, "PTR": 12, "AAAA": 28}
RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}
DIG_SCENARIOS = [
    t.name.removesuffix(".truth.json")
    for t in TRUTHS
    if t.name.startswith("dns-") and json.loads(t.read_text()).get("dns")
]
"""The DNS scenarios whose client resolved with dig (the server-side ones have no ``dns``)."""


def _messages(name: str) -> list[list[str]]:
    return tshark.fields(LAB / f"{name}.pcap", FIELDS, "dns && udp.port == 53")


@pytest.mark.oracle
@tshark.needs_tshark
@pytest.mark.parametrize("name", DIG_SCENARIOS)
def test_every_lookup_dig_made_is_in_the_capture_as_dig_saw_it(name):
    truth = truth_or_skip(name)
    rows = _messages(name)
    for asked in truth["dns"]:
        mine = [r for r in rows if r[2] == asked["name"] and int(r[3]) == TYPES[asked["type"]]]
        queries = [r for r in mine if r[4] in ("0", "False")]
        responses = [r for r in mine if r[4] in ("1", "True")]
        assert queries, asked
        if asked["status"] == "timeout":
            assert responses == [] and len(queries) >= 2, asked  # dig's two tries
            continue
        assert int(queries[0][1], 16) == asked["id"]
        assert [int(r[5]) for r in responses] == [RCODES[asked["status"]]], asked


@pytest.mark.oracle
@tshark.needs_tshark
def test_the_slow_reverse_zone_delays_the_ptr_answer_and_the_greeting():
    truth = truth_or_skip("dns-slow-ptr")
    rows = _messages("dns-slow-ptr")
    [answer] = [r for r in rows if r[3] == "12" and r[4] in ("1", "True")]
    assert answer[2] == "2.1.77.10.in-addr.arpa" and answer[5] == "0"
    assert truth["slow_ptr_delay_s"] <= float(answer[6]) < truth["slow_ptr_delay_s"] + 0.5
    [[greeting]] = tshark.fields(
        LAB / "dns-slow-ptr.pcap", ["frame.number"], "smtp.response.code == 220"
    )
    assert int(greeting) > int(answer[0])
    assert truth["sessions"][0]["outcome"] == "delivered"
