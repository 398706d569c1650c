"""No report holds AUTH credentials, in clear or in base64, in any format; with
--redact-addresses no IP address, email address or mail domain of the capture survives, and
each is replaced by the same pseudonym everywhere."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re

import pytest

from pcapsmtp.report.pseudonyms import ADDRESSES, redact_addresses
from tests.report.helpers import FORMATS, LAB, plain, report, secret_forms, truth

AUTH_CAPTURES = [
    name for name in ("auth-plain-clear", "starttls-auth-587") if truth(name).get("credentials")
]


@pytest.mark.parametrize("baseline", [False, True], ids=["alone", "with-baseline"])
@pytest.mark.parametrize("redact", [False, True], ids=["addresses", "pseudonyms"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", AUTH_CAPTURES)
def test_no_credential_in_any_report(tmp_path, name, fmt, redact, baseline):
    """With a baseline, the failed AUTH session is compared with a successful one."""
    credentials = truth(name)["credentials"]
    args = ["--redact-addresses"] if redact else []
    if baseline:
        args += ["--baseline", str(LAB / f"{name}.pcap")]
    text = report(tmp_path, LAB / f"{name}.pcap", fmt, *args)
    for seen in (text, plain(text, fmt)):
        assert [form for form in secret_forms(credentials) if form in seen] == []
    if redact:
        assert credentials["username"] not in plain(text, fmt), "a local part is pseudonymised"


def test_the_lab_credentials_are_in_the_capture():
    """The test above could pass on a capture without them; this one cannot."""
    data = (LAB / "auth-plain-clear.pcap").read_bytes()
    found = [
        f for f in secret_forms(truth("auth-plain-clear")["credentials"]) if f.encode() in data
    ]
    assert len(found) >= 3


# -- pseudonyms ---------------------------------------------------------------------------------


def originals(document: dict) -> set[str]:
    """Every IP address, email address and mail domain in a report."""
    text = json.dumps(document, ensure_ascii=False)
    found = set()
    for match in ADDRESSES.finditer(text):
        value = match.group().rstrip(":")
        if "@" in value:
            found.update((value, value.rpartition("@")[2]))
            continue
        with contextlib.suppress(ValueError):  # a candidate such as 06:44:49 is no address
            found.add(str(ipaddress.ip_address(value)))
    return found


@pytest.mark.parametrize("name", ["auth-plain-clear", "pmtud-working", "ipv6", "mtu-blackhole"])
def test_no_address_survives_in_any_format(tmp_path, name):
    capture = LAB / f"{name}.pcap"
    document = json.loads(report(tmp_path, capture, "json"))
    addresses = originals(document)
    assert any("@" in a for a in addresses) and any(":" in a or a[0].isdigit() for a in addresses)
    baseline = ["--baseline", str(LAB / "clean-delivery.pcap")]
    addresses |= originals(json.loads(report(tmp_path, capture, "json", *baseline)))
    for fmt in FORMATS:
        seen = plain(report(tmp_path, capture, fmt, "--redact-addresses", *baseline), fmt)
        survivors = [
            a for a in addresses if re.search(rf"(?<![\w.-]){re.escape(a)}(?![\w-])", seen)
        ]
        assert survivors == [], fmt


def test_pseudonyms_are_stable_across_the_report(tmp_path):
    document = json.loads(
        report(tmp_path, LAB / "auth-plain-clear.pcap", "json", "--redact-addresses")
    )
    clients = {row["client"].rsplit(":", 1)[0] for row in document["timeline"]}
    servers = {row["server"].rsplit(":", 1)[0] for row in document["timeline"]}
    assert clients == {"192.0.2.2"} and servers == {"192.0.2.1"}
    assert [p["address"] for p in document["parties"]] == ["192.0.2.1", "192.0.2.2"]
    senders = {row["mail_from"] for row in document["timeline"] if row["mail_from"]}
    assert senders == {"user-1@domain-1.example"}
    banner = document["sessions"][0]["smtp"]["banner"]
    assert banner == "host-1.example ESMTP Postfix (lab)"
    assert document["produced"]["addresses"] == "pseudonyms"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 192.0.2.1 is in the document, so no pseudonym may be it.
        ("from 10.0.0.5:25 to [2001:db8::5]:25", "from 192.0.2.2:25 to [2001:db8::2]:25"),
        (
            "ip.addr == 10.0.0.5 && ipv6.addr == fd00::1",
            "ip.addr == 192.0.2.2 && ipv6.addr == 2001:db8::1",
        ),
        ("told fd00::1: shrink", "told 2001:db8::1: shrink"),
        # Local parts are case-sensitive (RFC 5321 2.4), domains are not.
        ("MAIL FROM:<Alice@Example.COM>", "MAIL FROM:<user-2@domain-1.example>"),
        (
            "250 mx.example.com greets relay.example.com",
            "250 host-1.example greets relay.domain-1.example",
        ),
        ("at 2026-11-23 06:44:49.130284 +00:00", "at 2026-11-23 06:44:49.130284 +00:00"),
        ("2026-11-23T06:44:49.130284000+00:00", "2026-11-23T06:44:49.130284000+00:00"),
        ("5.7.1 Postfix 3.7.10; std::string", "5.7.1 Postfix 3.7.10; std::string"),
        ("10.0.0.5 and 192.0.2.1", "192.0.2.2 and 192.0.2.3"),
    ],
)
def test_pseudonyms_in_text(text, expected):
    document = {
        "parties": [{"names": ["mx.example.com"]}],
        "first": "10.0.0.5 fd00::1 alice@example.com relay.example.com 192.0.2.1 2001:db8::5",
        "text": text,
    }
    assert redact_addresses(document)["text"] == expected


def test_pseudonyms_leave_no_community_id(tmp_path):
    """A Community ID hashes the real addresses and ports: with pseudonyms it is null
    everywhere (sessions, timeline, the baseline and its diff), and present without them."""
    capture = LAB / "mtu-blackhole.pcap"
    args = ["--baseline", str(LAB / "clean-delivery.pcap")]
    plain_doc = json.loads(report(tmp_path, capture, "json", *args))
    hidden = json.loads(report(tmp_path, capture, "json", *args, "--redact-addresses"))

    def ids(document) -> list:
        found = []

        def walk(value):
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "community_id":
                        found.append(item)
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(document)
        return found

    assert len(ids(plain_doc)) >= 5 and all(i and i.startswith("1:") for i in ids(plain_doc))
    assert ids(hidden) and set(ids(hidden)) == {None}
