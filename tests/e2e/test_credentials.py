"""No AUTH credential in any output or export, whatever the wire does with it: every output
of every command (analyze in each format and with --follow, Zeek logs, show, report alone and
with a baseline, diff, export pcap/pcapng/annotated, and what each writes on standard error)
of captures whose server echoes the credentials it was sent (``credentials.py``), searched
for the credentials in clear, base64, hex and ``\\xNN`` escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.e2e.credentials import (
    NAMES,
    PASSWORD,
    PLAIN,
    USER,
    b64,
    secret_forms,
    write_scenario,
)
from tests.tlsconv import CLIENT as TLS_CLIENT
from tests.tlsconv import SERVER as TLS_SERVER
from tests.tlsconv import Conversation as TlsConversation
from tests.tlsconv import make_pki
from tests.tshark import needs_tshark


def _run(args: list[str]) -> tuple[bytes, bytes]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code in (0, 1), (args, result.stdout, result.stderr)
    return result.stdout_bytes, result.stderr_bytes


def every_output(capture: Path, folder: Path) -> dict[str, bytes]:
    """What each command writes about ``capture`` (files, standard output and error)."""
    path = str(capture)
    runs: dict[str, list[str]] = {}
    sessions = ["--good-session", "1", "--bad-session", "1"]
    other = folder / "other.pcap"
    other.write_bytes(capture.read_bytes())
    for fmt in ("text", "json", "md", "csv", "zeek", "zeek-json"):
        runs[f"analyze {fmt}"] = ["analyze", "--format", fmt, path]
    for fmt in ("text", "json"):
        runs[f"analyze --follow {fmt}"] = ["analyze", "--follow", "--format", fmt, path]
    for fmt in ("text", "json", "md"):
        runs[f"show {fmt}"] = ["show", "--session", "1", "--format", fmt, path]
        runs[f"diff {fmt}"] = ["diff", "--format", fmt, *sessions, path, str(other)]
    files: dict[str, Path] = {}
    for fmt in ("md", "html", "json"):
        for extra in ([], ["--baseline", path]):
            out = folder / f"report{len(extra)}.{fmt}"
            runs[f"report {fmt} {extra[:1]}"] = ["report", path, "-o", str(out), *extra]
            files[f"report {fmt} {extra[:1]}"] = out
    zeek = folder / "zeek"
    runs["analyze zeek -o"] = ["analyze", "--format", "zeek", "-o", str(zeek), path]
    for suffix, extra in (("pcap", []), ("pcapng", []), ("pcapng", ["--annotate"])):
        out = folder / f"export{len(extra)}.{suffix}"
        runs[f"export {suffix} {extra}"] = [
            "export",
            path,
            "--session",
            "1",
            "-o",
            str(out),
            *extra,
        ]
        files[f"export {suffix} {extra}"] = out
    out = folder / "whole.pcapng"
    runs["export whole --annotate"] = ["export", path, "--annotate", "-o", str(out)]
    files["export whole --annotate"] = out
    outputs = {}
    for name, args in runs.items():
        stdout, stderr = _run(args)
        outputs[name], outputs[f"{name} (stderr)"] = stdout, stderr
    for name, out in files.items():
        outputs[f"{name} (file)"] = out.read_bytes()
    outputs["zeek logs"] = b"".join(p.read_bytes() for p in sorted(zeek.rglob("*")) if p.is_file())
    return outputs


@pytest.mark.parametrize("scenario", NAMES)
def test_no_credential_in_any_output(tmp_path, scenario):
    capture = write_scenario(scenario, tmp_path)
    forms = secret_forms()
    assert any(form in capture.read_bytes() for form in forms), "the capture holds them"
    outputs = every_output(capture, tmp_path)
    leaks = [(name, form) for name, data in outputs.items() for form in forms if form in data]
    assert leaks == []
    assert b"[redacted]" in outputs["show text"]


def test_the_echoes_are_overwritten_in_the_export_and_told(tmp_path):
    """The export overwrites the server's echo byte for byte (lengths unchanged) and its
    summary counts the repeats; ``--keep-credentials`` leaves them."""
    capture = write_scenario("echo-later", tmp_path)
    redacted, kept = tmp_path / "redacted.pcap", tmp_path / "kept.pcap"
    _, told = _run(["export", str(capture), "--session", "1", "-o", str(redacted)])
    _run(["export", str(capture), "--session", "1", "-o", str(kept), "--keep-credentials"])
    data = redacted.read_bytes()
    assert len(data) == len(kept.read_bytes())
    assert PASSWORD.encode() in kept.read_bytes() and PLAIN.encode() in kept.read_bytes()
    assert PASSWORD.encode() not in data and PLAIN.encode() not in data
    assert b"555 5.5.4 unknown parameter " + b"X" * len(PASSWORD) + b"\r\n" in data
    assert b"last login " + b"X" * len(PLAIN) + b"\r\n" in data
    assert b"MAIL FROM:<bob@example.net> " + b"X" * len(PASSWORD) + b"\r\n" in data
    assert b"repeat(s) of them in later lines overwritten" in told


@needs_tshark
def test_no_credential_echoed_inside_tls_in_any_decrypted_output(tmp_path):
    """AUTH after STARTTLS, read with the key log: the server's echo inside TLS is redacted
    like a clear one in every output that takes --keylog."""
    (tmp_path / "pki").mkdir()
    c = TlsConversation(make_pki(tmp_path / "pki"), tmp_path / "echo.keylog")
    c.starttls()
    for sender, data in (
        (TLS_CLIENT, b"EHLO client.example\r\n"),
        (TLS_SERVER, b"250-mx.example.jp\r\n250 AUTH PLAIN LOGIN\r\n"),
        (TLS_CLIENT, f"AUTH PLAIN {PLAIN}\r\n".encode()),
        (TLS_SERVER, f"535 5.7.8 bad credentials {PLAIN} ({PASSWORD})\r\n".encode()),
        (TLS_CLIENT, b"AUTH LOGIN\r\n"),
        (TLS_SERVER, b"334 VXNlcm5hbWU6\r\n"),
        (TLS_CLIENT, f"{b64(USER)}\r\n".encode()),
        (TLS_SERVER, f"334 {b64(USER)}\r\n".encode()),
        (TLS_CLIENT, f"{b64(PASSWORD)}\r\n".encode()),
        (TLS_SERVER, f"235 2.7.0 welcome {USER}\r\n".encode()),
        (TLS_CLIENT, b"QUIT\r\n"),
        (TLS_SERVER, f"221 2.0.0 Bye {PASSWORD}\r\n".encode()),
    ):
        c.send(sender, data)
    c.close()
    capture = str(c.write(tmp_path / "echo.pcap"))
    keylog = ["--keylog", str(c.keylog)]
    outputs = {}
    for fmt in ("text", "json", "md", "zeek"):
        outputs[f"analyze {fmt}"] = _run(["analyze", "--format", fmt, *keylog, capture])
    for fmt in ("text", "json", "md"):
        outputs[f"show {fmt}"] = _run(["show", "--session", "1", "--format", fmt, *keylog, capture])
    for fmt in ("md", "html", "json"):
        out = tmp_path / f"report.{fmt}"
        _run(["report", capture, "-o", str(out), *keylog])
        outputs[f"report {fmt}"] = (out.read_bytes(), b"")
    assert b"[redacted]" in outputs["show text"][0]
    assert b"535 5.7.8 bad credentials [redacted]" in outputs["show text"][0], "decrypted"
    forms = secret_forms()
    leaks = [
        (name, form)
        for name, pair in outputs.items()
        for data in pair
        for form in forms
        if form in data
    ]
    assert leaks == []
