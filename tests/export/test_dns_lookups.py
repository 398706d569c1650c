"""An exported session keeps the DNS lookups its findings rest on. The export used to hold
only the session's TCP frames and ICMP errors, so dns-mx-mismatch (the MX lookup and the MX
host's address before the connection), dns-lookup-failed (the server's lookups of the sender
domain during the session) and dns-slow-greeting (the server's PTR lookup before its
greeting) were gone when the export was analysed again. tshark reads each export and finds
the lookups in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.analysis import analyze
from pcapsmtp.cli import main
from tests.captures import LAB
from tests.tshark import fields, needs_tshark

CASES = {
    "dns-mx-mismatch": "dns-mx-mismatch",
    "dns-sender-domain": "dns-lookup-failed",
    "dns-slow-ptr": "dns-slow-greeting",
}


def _verdict(path: Path) -> list[tuple]:
    analysis = analyze([str(path)])
    [session] = analysis.sessions
    findings = sorted((f.code, f.severity) for f in analysis.findings if f.session == session.id)
    return [session.outcome, findings]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_the_export_analysed_again_has_the_sessions_dns_findings(tmp_path, name, suffix):
    capture = LAB / f"{name}.pcap"
    if not capture.is_file():
        pytest.skip(f"lab capture {name} absent")
    out = tmp_path / f"session{suffix}"
    result = CliRunner().invoke(main, ["export", str(capture), "--session", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert CASES[name] in {code for code, _severity in _verdict(capture)[1]}
    assert _verdict(out) == _verdict(capture)
    assert " DNS of session 1 " in result.stderr
    assert "the lookups its DNS findings rest on" in result.stderr


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CASES))
def test_tshark_reads_the_lookups_in_the_export(tmp_path, name):
    capture = LAB / f"{name}.pcap"
    if not capture.is_file():
        pytest.skip(f"lab capture {name} absent")
    out = tmp_path / "session.pcap"
    CliRunner().invoke(main, ["export", str(capture), "--session", "1", "-o", str(out)])
    names = ["frame.time_epoch", "dns.id", "dns.qry.name", "dns.flags.response"]
    exported = fields(out, names, "dns")
    assert exported
    assert all(row in fields(capture, names, "dns") for row in exported)
    assert fields(out, ["tcp.stream"], "tcp") and not fields(out, ["frame.number"], "_ws.malformed")


def test_a_session_without_dns_findings_exports_no_dns(tmp_path):
    """dns-timeout and dns-no-mx are about the capture, not a session: its export stays the
    session's TCP frames."""
    capture = LAB / "dns-timeout.pcap"
    if not capture.is_file():
        pytest.skip("lab capture dns-timeout absent")
    out = tmp_path / "session.pcap"
    result = CliRunner().invoke(main, ["export", str(capture), "--session", "1", "-o", str(out)])
    assert result.exit_code == 0 and " DNS " not in result.stderr
    assert analyze([str(out)]).results[0].dns == []
