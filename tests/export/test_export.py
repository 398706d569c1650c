"""``pcapsmtp export``: tshark (the oracle) finds in every export the stream it found in the
original, frame for frame, with the same TCP analysis; redacted exports hold no credential,
in clear or in base64, and their checksums are as valid as the original's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.analysis import analyze
from pcapsmtp.cli import main
from pcapsmtp.export import export_session
from pcapsmtp.export.model import ExportError
from tests.captures import LAB, all_captures, analysed, capture_id
from tests.conversation import Conversation
from tests.report.helpers import secret_forms
from tests.tshark import fields, needs_tshark

ANALYSIS_FLAGS = [
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_lost_segment",
    "tcp.analysis.duplicate_ack",
    "tcp.analysis.zero_window",
    "tcp.analysis.zero_window_probe",
    "tcp.analysis.keep_alive",
    "tcp.analysis.window_update",
    "tcp.analysis.window_full",
]
FRAME_FIELDS = [
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq",
    "tcp.ack",
    "tcp.len",
    "tcp.flags",
    "tcp.checksum.status",
    "icmp.type",
    "icmpv6.type",
    *ANALYSIS_FLAGS,
]
CHECKSUMS = ("-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE")
MAX_SESSIONS_PER_CAPTURE = 4
"""retry-storm holds 240 sessions; the first, last and two between stand for the rest."""


def _sessions_to_export(path: Path) -> list[int]:
    """Up to four sessions of a lab capture, the first of a public one."""
    ids = [s.id for s in analysed(path).sessions]
    if path.parent != LAB:
        return ids[:1]
    if len(ids) > MAX_SESSIONS_PER_CAPTURE:
        step = (len(ids) - 1) / (MAX_SESSIONS_PER_CAPTURE - 1)
        return sorted({ids[round(i * step)] for i in range(MAX_SESSIONS_PER_CAPTURE)})
    return ids


def _rows(path: Path, display_filter: str | None = None) -> list[list[str]]:
    return fields(path, FRAME_FIELDS, display_filter, CHECKSUMS)


def _streams(path: Path) -> dict[str, list[list[str]]]:
    """tcp.stream -> rows of every frame of it (ICMP errors by the stream they quote)."""
    streams: dict[str, list[list[str]]] = {}
    for row in fields(path, ["tcp.stream", *FRAME_FIELDS], "tcp", CHECKSUMS):
        streams.setdefault(row[0], []).append(row[1:])
    return streams


def _export(capture: Path, session: int, out: Path, *options: str):
    """``pcapsmtp export``, which redacts unless told otherwise; it says what it wrote on
    standard error and nothing on standard output."""
    args = ["export", str(capture), "--session", str(session), "-o", str(out), *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith(f"wrote {out} (")
    assert result.stdout == ""
    return result


@needs_tshark
@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("capture", all_captures(), ids=capture_id)
def test_export_is_the_same_stream_to_tshark(tmp_path, capture):
    """Every session picked from the capture (one tshark run over the original for all)."""
    original_streams = _streams(capture)
    for session in _sessions_to_export(capture):
        stream = analysed(capture).sessions[session - 1].flow.stream
        out = tmp_path / f"session-{session}.pcap"
        _export(capture, session, out)
        original = original_streams[str(stream)]
        exported = _streams(out)
        assert list(exported) == ["0"], f"session {session}: one stream only"
        assert exported["0"] == original, f"session {session}"
        for flag in ANALYSIS_FLAGS:  # the counts the issue asks for (implied by the rows)
            column = FRAME_FIELDS.index(flag)
            assert sum(bool(r[column]) for r in exported["0"]) == sum(
                bool(r[column]) for r in original
            ), f"session {session}: {flag}"


@needs_tshark
@pytest.mark.oracle
def test_icmp_errors_tied_to_the_session_come_along(tmp_path):
    capture = LAB / "pmtud-working.pcap"
    out = tmp_path / "pmtud.pcap"
    _export(capture, 1, out)
    icmp = fields(capture, ["frame.time_epoch", "icmp.mtu"], "icmp.type == 3")
    assert icmp, "the lab capture has ICMP fragmentation-needed errors"
    assert fields(out, ["frame.time_epoch", "icmp.mtu"], "icmp.type == 3") == icmp


@needs_tshark
@pytest.mark.oracle
def test_pcapng_output(tmp_path):
    capture = LAB / "auth-plain-clear.pcap"
    out = tmp_path / "session.pcapng"
    _export(capture, 2, out)
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    stream = analysed(capture).sessions[1].flow.stream
    assert _rows(out, "tcp.stream eq 0") == _rows(capture, f"tcp.stream eq {stream}")


# -- redaction ----------------------------------------------------------------------------------


def lab_secrets() -> list[bytes]:
    truth = json.loads((LAB / "auth-plain-clear.truth.json").read_text())
    return [form.encode() for form in secret_forms(truth["credentials"])]


@pytest.mark.parametrize("session", [1, 2, 3])
def test_redacted_export_holds_no_credential(tmp_path, session):
    capture = LAB / "auth-plain-clear.pcap"
    forms = lab_secrets()
    raw = tmp_path / "raw.pcap"
    redacted = tmp_path / "redacted.pcap"
    kept = _export(capture, session, raw, "--keep-credentials")
    _export(capture, session, redacted)
    assert any(form in raw.read_bytes() for form in forms), "the unredacted export has them"
    assert kept.stderr.startswith("pcapsmtp: warning: --keep-credentials: ")
    assert "AUTH line(s) are in the export in clear" in kept.stderr
    data = redacted.read_bytes()
    assert [form for form in forms if form in data] == []
    assert len(data) == len(raw.read_bytes())
    assert b"XXXXXXXX" in data


@needs_tshark
@pytest.mark.oracle
def test_redacted_lines_keep_their_shape_and_checksums(tmp_path):
    capture = LAB / "auth-plain-clear.pcap"
    out = tmp_path / "login.pcap"
    _export(capture, 2, out)  # AUTH LOGIN: two lines answering 334
    lines = fields(
        out,
        ["tcp.checksum.status", "smtp.auth.username", "smtp.auth.password"],
        "smtp.auth.username || smtp.auth.password",
        CHECKSUMS,
    )
    assert lines == [["1", "XXXXXXXX", ""], ["1", "", "XXXXXXXXXXXXXXXXXXXX"]]


def _auth_conversation(path: Path, auth_line: bytes = b"AUTH PLAIN ", icmp: bool = True) -> Path:
    conversation = Conversation(dport=587)
    conversation.handshake()
    conversation.say(
        ("S", b"220 mx.example ESMTP\r\n"),
        ("C", b"EHLO client.example\r\n"),
        ("S", b"250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n"),
    )
    auth = conversation.send("C", auth_line + b"AGFsaWNlAGxhYi1TZWNyZXQtNDI=\r\n")
    if icmp:
        conversation.icmp_too_big(auth)
    conversation.say(("S", b"235 2.7.0 ok\r\n"), ("C", b"QUIT\r\n"), ("S", b"221 bye\r\n"))
    conversation.close()
    return conversation.write(path)


@needs_tshark
@pytest.mark.oracle
def test_credentials_quoted_by_an_icmp_error_are_overwritten_too(tmp_path):
    capture = _auth_conversation(tmp_path / "icmp.pcap")
    assert b"AGFsaWNlAGxhYi1TZWNyZXQtNDI=" in capture.read_bytes()
    out = tmp_path / "out.pcap"
    _export(capture, 1, out)
    data = out.read_bytes()
    assert b"AGFsaWNlAGxhYi1TZWNyZXQtNDI=" not in data
    assert data.count(b"AUTH PLAIN XXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n") == 2
    checksums = ["tcp.checksum.status", "icmp.checksum.status"]
    status = fields(out, checksums, None, CHECKSUMS)
    assert status == fields(capture, checksums, None, CHECKSUMS)
    assert ["1", "1"] in status, "the ICMP error and the TCP segment it quotes, both valid"


@pytest.mark.parametrize("line", [b"AUTH\tPLAIN ", b"AUTH PLAIN\t", b"auth  plain\t "])
def test_credentials_after_a_tab_are_overwritten(tmp_path, line):
    """A tab between the AUTH line's words (servers accept any blank) hides no credential
    from the export."""
    blob = b"AGFsaWNlAGxhYi1TZWNyZXQtNDI="
    capture = _auth_conversation(tmp_path / "tab.pcap", line, icmp=False)
    out = tmp_path / "out.pcap"
    _export(capture, 1, out)
    data = out.read_bytes()
    assert blob not in data and blob[:12] not in data
    assert b"X" * len(blob) + b"\r\n" in data


def test_credentials_in_ip_fragments_refuse_the_export(tmp_path):
    """Redacting inside fragments is not supported: the export says so and writes nothing;
    without --redact the fragments are exported like any frame."""
    conversation = Conversation(dport=587)
    conversation.handshake()
    conversation.say(("S", b"220 mx.example ESMTP\r\n"), ("C", b"EHLO client.example\r\n"))
    conversation.say(("S", b"250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n"))
    conversation.send_fragmented("C", b"AUTH PLAIN AGFsaWNlAGxhYi1TZWNyZXQtNDI=\r\n")
    conversation.say(("S", b"235 2.7.0 ok\r\n"), ("C", b"QUIT\r\n"), ("S", b"221 bye\r\n"))
    conversation.close()
    capture = conversation.write(tmp_path / "fragments.pcap")
    session = analyze([str(capture)]).sessions[0]
    assert session.commands[-2].secret, "the parser saw the reassembled AUTH line"
    out = tmp_path / "out.pcap"
    with pytest.raises(ExportError, match="fragment"):
        export_session(str(capture), session, str(out), redact=True)
    assert not out.exists()
    result = export_session(str(capture), session, str(out), redact=False)
    assert result.frames == len(conversation.packets)


# -- the command line ---------------------------------------------------------------------------


def test_unknown_session_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        main,
        ["export", str(LAB / "auth-plain-clear.pcap"), "--session", "9", "-o", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert (
        "no SMTP session 9; its sessions: 1 (10.77.1.2:34824, tcp.stream 0), 2 (" in result.output
    )


def test_stdin_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["export", "-", "--session", "1", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2


def test_unreadable_input_is_one_line(tmp_path):
    result = CliRunner().invoke(
        main,
        ["export", str(tmp_path / "missing.pcap"), "--session", "1", "-o", str(tmp_path / "x")],
    )
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_never_overwrites_its_input(tmp_path):
    capture = tmp_path / "in.pcap"
    capture.write_bytes((LAB / "auth-plain-clear.pcap").read_bytes())
    result = CliRunner().invoke(
        main, ["export", str(capture), "--session", "1", "-o", str(capture)]
    )
    assert result.exit_code == 1
    assert "is the capture being read" in result.output
    assert capture.read_bytes() == (LAB / "auth-plain-clear.pcap").read_bytes()


def test_credentials_are_overwritten_by_default_and_redact_is_still_accepted(tmp_path):
    capture = LAB / "auth-plain-clear.pcap"
    default, redacted = tmp_path / "default.pcap", tmp_path / "redacted.pcap"
    result = _export(capture, 1, default)
    assert "AUTH line(s) overwritten in frame(s)" in result.stderr
    assert "warning" not in result.stderr
    _export(capture, 1, redacted, "--redact")
    assert default.read_bytes() == redacted.read_bytes()
    assert [form for form in lab_secrets() if form in default.read_bytes()] == []


def test_keep_credentials_warns_even_when_there_are_none(tmp_path):
    result = _export(LAB / "clean-delivery.pcap", 1, tmp_path / "x.pcap", "--keep-credentials")
    assert result.stderr.startswith("pcapsmtp: warning: --keep-credentials: this session sent no")


def test_dash_writes_the_capture_to_standard_output(tmp_path):
    capture = LAB / "auth-plain-clear.pcap"
    _export(capture, 2, tmp_path / "file.pcap")
    result = CliRunner().invoke(main, ["export", str(capture), "--session", "2", "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == (tmp_path / "file.pcap").read_bytes()
    assert result.stderr.startswith("wrote standard output (pcap): ")
    assert not (Path.cwd() / "-").exists()


def test_a_folder_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        main, ["export", str(LAB), "--session", "1", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert result.stderr == f"pcapsmtp: error: {LAB}: is a folder; export reads one capture file\n"
    assert not (tmp_path / "x").exists()


def test_a_session_by_client_address_and_port_or_by_stream(tmp_path):
    capture = LAB / "auth-plain-clear.pcap"
    session = analysed(capture).sessions[1]
    by_id = _export(capture, 2, tmp_path / "id.pcap")
    for how in (["--session", "10.77.1.2:40587"], ["--stream", str(session.flow.stream)]):
        out = tmp_path / "other.pcap"
        result = CliRunner().invoke(main, ["export", str(capture), *how, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == (tmp_path / "id.pcap").read_bytes()
    assert "of session 2 (tcp.stream 1;" in by_id.stderr


@pytest.mark.parametrize(
    "how",
    [[], ["--session", "1", "--stream", "0"], ["--session", "10.77.1.2"], ["--stream", "9"]],
    ids=["none", "both", "no-port", "no-such-stream"],
)
def test_session_selectors_that_name_nothing_are_usage_errors(tmp_path, how):
    capture = LAB / "auth-plain-clear.pcap"
    result = CliRunner().invoke(main, ["export", str(capture), *how, "-o", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("suffix", ["pcap", "pcapng"])
def test_the_export_keeps_the_capture_snap_length(tmp_path, suffix):
    """A capture cut at 96 bytes says so in its export too: the pcap header's snap length
    was 262144 whatever the capture's (the pcapng interface kept it)."""
    capture = LAB / "capture-truncated.pcap"
    out = tmp_path / f"out.{suffix}"
    _export(capture, 1, out)
    [info] = analyze([str(out)]).captures
    assert info.snaplen == analyze([str(capture)]).captures[0].snaplen == 96


def test_credentials_repeated_past_the_cap_refuse_the_export(tmp_path, monkeypatch):
    """A server repeating the credentials more often than the session keeps track of: what
    is past the cap could not be overwritten, so nothing is written."""
    from pcapsmtp.smtp import session as session_module
    from tests.e2e.credentials import write_scenario

    capture = write_scenario("echo-later", tmp_path)
    out = tmp_path / "out.pcap"
    [session] = analyze([str(capture)]).sessions
    assert export_session(str(capture), session, str(out)).redacted_echoes == 7
    monkeypatch.setattr(session_module, "MAX_LISTED", 2)
    [session] = analyze([str(capture)]).sessions
    assert len(session.auth[0].echoes) == 2 and session.auth[0].echoes_left_out == 5
    out.unlink()
    with pytest.raises(ExportError, match="repeats its AUTH credentials"):
        export_session(str(capture), session, str(out))
    assert not out.exists()
