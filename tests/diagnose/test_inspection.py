"""smtp-inspection: masked banner, masked EHLO keywords, STARTTLS stripped or answered and
not started."""

from __future__ import annotations

import pytest

from pcapsmtp.diagnose import WARNING
from pcapsmtp.smtp.software import masked_ehlo_keywords
from tests.diagnose.helpers import findings, lab, session_of, truth


def test_lab_firewall_masks_banner_and_keywords_and_hides_starttls():
    path = lab("smtp-inspection")
    [finding] = findings(path, "smtp-inspection")
    session = session_of(path, 1)
    ehlo = truth("smtp-inspection")["sessions"][0]["dialogue"][1]["reply_text"].split("\n")
    assert finding.severity == WARNING  # mail delivered, but in clear text
    assert "the banner is masked (220 ****" in finding.summary
    masked = [k for k in ehlo if k.startswith("XXX")]
    assert masked == masked_ehlo_keywords(session.ehlo.lines)
    assert f"EHLO keywords are masked ({' '.join(masked)})" in finding.summary
    assert "XXXXXXXA" in finding.summary
    assert "STARTTLS is not offered" in finding.summary
    assert "8 characters, as STARTTLS" in finding.detail
    assert finding.frames == [session.greeting.frame, session.ehlo.frame]
    assert "no inspect esmtp" in finding.next_steps[0]
    assert "117797" in finding.next_steps[0]


def test_real_cisco_asa_in_front_of_exchange(public_capture):
    path = public_capture("suricata-smtp-extract-url-schemes_input.pcap")
    [finding] = findings(path, "smtp-inspection")
    assert finding.severity == WARNING
    assert "EHLO keywords are masked (XXXA XXXXXXXB XXXC" in finding.summary
    assert "STARTTLS is not offered" in finding.summary
    assert "banner" not in finding.summary  # this ASA left the banner alone


def test_starttls_answered_but_not_started(public_capture):
    path = public_capture("arkime-smtp-decrypted.pcap")
    found = findings(path, "smtp-inspection", session=2)
    [finding] = found
    session = session_of(path, 2)
    assert "STARTTLS was answered 220 but the connection stayed in clear text" in finding.summary
    assert session.starttls.frame in finding.frames
    assert finding.severity == WARNING


@pytest.mark.parametrize("name", ["clean-delivery", "starttls-25", "tarpit", "unknown-user"])
def test_no_inspection_on_unaltered_dialogues(name):
    assert not findings(lab(name), "smtp-inspection")
