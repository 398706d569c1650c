"""auth-failed: mechanism, code, meaning, likely cause; never the credentials."""

from __future__ import annotations

import base64

from pcapsmtp.diagnose import ERROR
from tests.diagnose.helpers import analysis, findings, lab, session_of, text_of, truth


def test_wrong_password_535():
    path = lab("auth-plain-clear")
    [finding] = findings(path, "auth-failed")
    expected = truth("auth-plain-clear")["sessions"][2]["auth"]
    auth = next(c for c in session_of(path, 3).commands if c.verb == "AUTH")
    assert (expected["mechanism"], expected["code"]) == ("PLAIN", 535)
    assert finding.severity == ERROR and finding.session == 3
    assert finding.summary.endswith(
        "refused AUTH PLAIN: 535 5.7.8 Error: authentication failed: authentication failure"
    )
    assert "wrong user name or password, a locked or disabled account" in finding.detail
    assert "in clear text" in finding.detail
    assert finding.frames == [auth.frame, auth.reply.frame]
    assert any("locked or disabled" in step for step in finding.next_steps)


def test_successful_auth_is_no_finding():
    assert {f.session for f in findings(lab("auth-plain-clear"), "auth-failed")} == {3}


def test_no_credentials_in_any_finding():
    """The lab's password, the refused one and the user name, plain and in base64 (as AUTH
    PLAIN and LOGIN carry them), appear in no finding of the capture."""
    credentials = truth("auth-plain-clear")["credentials"]
    secrets = [credentials["password"], credentials["failed_password"]]
    plain = [f"\0{credentials['username']}\0{p}".encode() for p in secrets]
    encoded = [base64.b64encode(s).decode() for s in plain]
    encoded += [base64.b64encode(p.encode()).decode() for p in secrets]
    everything = " ".join(text_of(f) for f in analysis(lab("auth-plain-clear")).findings)
    for secret in secrets + encoded:
        assert secret not in everything


def test_auth_not_advertised_503_through_socks(public_capture):
    """Exim answers AUTH LOGIN with 503 when its EHLO reply announced no AUTH."""
    path = public_capture("arkime-socks5-smtp-503.pcap")
    [finding] = findings(path, "auth-failed")
    assert finding.summary.endswith("refused AUTH LOGIN: 503 AUTH command used when not advertised")
    assert "announced no AUTH in its EHLO reply" in finding.detail
    assert finding.frames == [17, 19]
    # the client's RST right after the refusal is not a second finding
    assert not findings(path, "reset")
