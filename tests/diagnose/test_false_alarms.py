"""The rules issue 17 added or changed raise no false alarm on any capture we have: every lab
capture point of a clean scenario (nothing expected, every session delivered) has no error or
warning, an error or warning from these
rules appears in a lab capture only where the truth expects its code, and over the public
captures they raise exactly the alarms reviewed below."""

from __future__ import annotations

import json

import pytest

from pcapsmtp.diagnose import ERROR, WARNING
from tests.captures import LAB, PUBLIC, TRUTHS
from tests.diagnose.helpers import analysis
from tests.diagnose.test_smoke import _captures

CHANGED = {
    "server-closed",
    "client-closed",
    "encrypted-dialogue",
    "reset",
    "middlebox-reset",
    "zero-window",
    "ip-fragmentation",
    "icmp-frag-needed",
    "auth-failed",
    "incomplete-session",
}
"""Codes whose rules issue 17 added or changed."""

PUBLIC_ALARMS = {
    # Exim answers AUTH with 503 "AUTH command used when not advertised"; the session fails.
    "arkime-socks5-smtp-503.pcap": {"auth-failed"},
    # Yahoo ends the session after the message with a reply that lacks its code
    # ("4.7.0 [IPTS04] ... deferred") and a FIN: the mail was not accepted.
    "suricata-smtp-errors_smtperr.pcap": {"server-closed"},
}
"""Public captures where these rules raise an error or warning, each reviewed by hand."""


def _alarms(path) -> set[str]:
    return {
        f.code
        for f in analysis(str(path)).findings
        if f.severity in (ERROR, WARNING) and f.code in CHANGED
    }


def _files(truth: dict) -> list:
    names = [f"{truth['scenario']}.pcap", *(truth.get("other_files") or {}).values()]
    return [LAB / name for name in names if (LAB / name).is_file()]


@pytest.mark.skipif(not TRUTHS, reason="no lab captures")
@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_lab_capture_points_raise_only_expected_alarms(truth_path):
    truth = json.loads(truth_path.read_text())
    expected = set(truth["expected_findings"])
    # Clean: nothing expected and every session delivered (a one-sided capture expects no
    # finding its missing side would show, while its complete reference shows it).
    clean = not expected and all(s["outcome"] == "delivered" for s in truth["sessions"])
    for path in _files(truth):
        troubles = [
            f"{f.code}: {f.summary}"
            for f in analysis(str(path)).findings
            if f.severity in (ERROR, WARNING)
        ]
        if clean:
            assert troubles == [], path.name
        assert _alarms(path) <= expected, path.name


PUBLIC_FILES = _captures(PUBLIC)


@pytest.mark.skipif(not PUBLIC_FILES, reason="no public captures")
@pytest.mark.parametrize("path", PUBLIC_FILES, ids=lambda p: p.name)
def test_public_alarms_are_the_reviewed_ones(path):
    assert _alarms(path) == PUBLIC_ALARMS.get(path.name, set())
