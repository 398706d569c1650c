"""The lab's TLS captures with the client's key log: the decrypted dialogue is the client's own
transcript (captures/<case>.truth.json, steps with ``"encrypted": true`` included), and without
the key log the same sessions are "encrypted" from the STARTTLS frame on. What cannot be
decrypted is a warning, never a crash; credentials never reach any output.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.cli import main
from pcapsmtp.diagnose import ERROR, WARNING
from pcapsmtp.report.sessions import endpoint_name
from pcapsmtp.smtp.events import AUTH_RESPONSE, GREETING
from tests.captures import LAB
from tests.tshark import needs_tshark

TLS_CASES = ["starttls-25", "starttls-auth-587", "smtps-465"]
TRUTHS = {name: json.loads((LAB / f"{name}.truth.json").read_text()) for name in TLS_CASES}

pytestmark = needs_tshark


def _capture(name: str) -> str:
    return str(LAB / f"{name}.pcap")


def _keylog(name: str) -> str:
    return str(LAB / f"{name}.keylog")


@pytest.fixture(scope="module")
def decrypted():
    return {name: analyze([_capture(name)], Options(keylog=_keylog(name))) for name in TLS_CASES}


def _session(analysis, expected):
    by = {(endpoint_name(s.client), endpoint_name(s.server)): s for s in analysis.sessions}
    return by[(expected["client"], expected["server"])]


def _steps(session) -> list[tuple[str | None, int | None]]:
    steps = [(None, session.greeting.code)] if session.greeting is not None else []
    for command in session.commands:
        if command.verb != GREETING:
            verb = "AUTH-RESPONSE" if command.verb == AUTH_RESPONSE else command.verb
            steps.append((verb, command.reply.code if command.reply else None))
    return steps


@pytest.mark.parametrize("name", TLS_CASES)
def test_decrypted_dialogue_is_the_clients_transcript(decrypted, name):
    """Every step, the ones inside TLS included, with its reply code; the TLS version the
    lab asked for (1.2 on 25, 1.3 on 587 and 465); the outcome the client saw."""
    analysis, truth = decrypted[name], TRUTHS[name]
    assert analysis.captures[0].warnings == []
    assert len(analysis.sessions) == len(truth["sessions"])
    for expected in truth["sessions"]:
        session = _session(analysis, expected)
        assert _steps(session) == [(s["command"], s["reply"]) for s in expected["dialogue"]]
        replies = [c.reply for c in session.commands if c.verb != GREETING]
        texts = [r.text for r in [session.greeting, *replies]]
        assert texts == [s["reply_text"] for s in expected["dialogue"]]
        assert session.tls.mode == expected["tls"]
        assert session.tls.facts.version == expected["tls_version"]
        assert session.tls.decrypted
        assert session.helo == expected["helo"]
        assert session.last_reply.code == expected["last_reply"]
        assert (session.outcome, session.outcome_reason) == (
            expected["outcome"],
            "every message was accepted",
        )
        if "auth" in expected:
            [auth] = session.auth
            assert (auth.mechanism, auth.code) == (
                expected["auth"]["mechanism"],
                expected["auth"]["code"],
            )


@pytest.mark.parametrize("name", TLS_CASES)
def test_decrypted_transactions_match_the_truth(decrypted, name):
    analysis, truth = decrypted[name], TRUTHS[name]
    for expected in truth["sessions"]:
        session = _session(analysis, expected)
        got = [
            {
                "mail_from": t.mail_from,
                "rcpt_to": [{"address": r.address, "code": r.code} for r in t.rcpt_to],
                "subject": t.message.subject,
                "size": t.size,
                "code": t.final.code,
                "queue_id": t.queue_id,
            }
            for t in session.transactions
        ]
        assert got == expected["transactions"]


@pytest.mark.parametrize("name", TLS_CASES)
def test_findings_of_decrypted_sessions_match_the_truth(decrypted, name):
    """A clean TLS session stays clean once decrypted: no error, no warning, none of the
    codes its truth rules out."""
    truth, findings = TRUTHS[name], decrypted[name].findings
    codes = {f.code for f in findings}
    assert set(truth["expected_findings"]) <= codes
    assert not set(truth["absent_findings"]) & codes
    assert [f for f in findings if f.severity in (ERROR, WARNING)] == []


@pytest.mark.parametrize("name", TLS_CASES)
def test_entries_from_inside_tls_are_marked(decrypted, name):
    """What was decrypted is marked, what was clear is not: the line is the TLS start."""
    for session in decrypted[name].sessions:
        for entry in session.dialogue:
            assert entry.decrypted == (entry.frame > session.tls.frame), entry


@pytest.mark.parametrize("name", TLS_CASES)
def test_without_key_log_encrypted_from_the_tls_start(name):
    """The truth's outcome_without_keys; nothing said after the TLS start is known."""
    analysis = analyze([_capture(name)])
    for expected in TRUTHS[name]["sessions"]:
        session = _session(analysis, expected)
        assert session.outcome == expected["outcome_without_keys"] == "encrypted"
        clear = [(s["command"], s["reply"]) for s in expected["dialogue"] if not s.get("encrypted")]
        assert _steps(session) == clear
        assert session.dialogue[-1].kind == "tls"
        assert session.dialogue[-1].frame == session.tls.frame
        if expected["tls"] == "starttls":
            assert session.tls.frame > session.starttls.reply.frame
        assert not session.tls.decrypted and session.encrypted
    assert analysis.captures[0].warnings == []


# -- keys that do not fit ----------------------------------------------------------------


def test_another_sessions_key_log_is_a_warning():
    analysis = analyze([_capture("starttls-auth-587")], Options(keylog=_keylog("smtps-465")))
    [session] = analysis.sessions
    assert session.outcome == "encrypted"
    assert not session.tls.decrypted
    assert analysis.captures[0].warnings == [
        "TLS decryption: 1 of 1 TLS session(s) not decrypted; tcp.stream 0: the key log "
        f"{_keylog('smtps-465')} has no secrets for its client random"
    ]


def test_damaged_secrets_are_a_warning(tmp_path):
    """The session's line is there, its secret is not the one used: tshark's decryption
    fails its integrity checks and gives nothing."""
    damaged = tmp_path / "damaged.keylog"
    lines = []
    for line in Path(_keylog("starttls-25")).read_text().splitlines():
        if line.startswith("CLIENT_RANDOM"):
            label, random, secret = line.split()
            line = f"{label} {random} {'0' * len(secret)}"
        lines.append(line)
    damaged.write_text("\n".join(lines) + "\n")
    analysis = analyze([_capture("starttls-25")], Options(keylog=str(damaged)))
    assert analysis.sessions[0].outcome == "encrypted"
    [warning] = analysis.captures[0].warnings
    assert f"the secrets for it in the key log {damaged} did not decrypt it" in warning


def test_damaged_lines_are_a_warning(tmp_path):
    """A key log cut and garbled in places: the lines that are intact still decrypt."""
    damaged = tmp_path / "cut.keylog"
    text = Path(_keylog("starttls-auth-587")).read_bytes()
    damaged.write_bytes(b"\x00\x13garbage\nCLIENT_RANDOM 1234\n" + text)
    analysis = analyze([_capture("starttls-auth-587")], Options(keylog=str(damaged)))
    assert analysis.sessions[0].outcome == "delivered"
    assert analysis.captures[0].warnings == [
        f"TLS decryption: 2 of 7 lines in the key log {damaged} are not key log lines "
        "(damaged?) and were ignored"
    ]


def test_not_a_key_log_is_a_warning(tmp_path):
    junk = tmp_path / "junk.keylog"
    junk.write_bytes(bytes(range(256)) * 4)
    analysis = analyze([_capture("smtps-465")], Options(keylog=str(junk)))
    assert analysis.sessions[0].outcome == "encrypted"
    [warning] = analysis.captures[0].warnings
    assert warning.startswith(f"TLS decryption: {junk} is not a TLS key log")


def test_half_a_key_log_decrypts_one_side(tmp_path):
    """TLS 1.3 keys per direction: without the server's traffic secret only the client's
    commands come out, and the warning says so."""
    half = tmp_path / "half.keylog"
    text = Path(_keylog("smtps-465")).read_text().splitlines()
    half.write_text("\n".join(x for x in text if not x.startswith("SERVER_TRAFFIC")) + "\n")
    analysis = analyze([_capture("smtps-465")], Options(keylog=str(half)))
    [warning] = analysis.captures[0].warnings
    assert "tcp.stream 0: only the client's side was decrypted" in warning
    assert [c.verb for c in analysis.sessions[0].commands][:2] == ["EHLO", "MAIL"]


def test_no_tshark_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pyshark also looks for a config.ini in the current folder
    monkeypatch.setenv("PATH", str(tmp_path))
    analysis = analyze([_capture("starttls-25")], Options(keylog=_keylog("starttls-25")))
    assert analysis.sessions[0].outcome == "encrypted"
    [warning] = analysis.captures[0].warnings
    assert warning.startswith("TLS decryption: it needs tshark")


# -- keys inside the capture, standard input -----------------------------------------------


@pytest.fixture(scope="module")
def with_secrets(tmp_path_factory) -> Path:
    """starttls-auth-587 as pcapng with its key log in a Decryption Secrets Block."""
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap is not installed")
    out = tmp_path_factory.mktemp("dsb") / "with-secrets.pcapng"
    keylog = _keylog("starttls-auth-587")
    subprocess.run(
        [editcap, "--inject-secrets", f"tls,{keylog}", _capture("starttls-auth-587"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_embedded_secrets_decrypt_without_key_log(with_secrets):
    analysis = analyze([str(with_secrets)])
    [session] = analysis.sessions
    assert analysis.captures[0].warnings == []
    assert session.outcome == "delivered" and session.tls.decrypted
    assert [t.queue_id for t in session.transactions] == ["E08BE20E7BA"]


@pytest.mark.parametrize("compression", ["gzip", "bz2", "xz"])
def test_compressed_capture_is_decrypted(tmp_path, compression):
    """tshark reads gzip itself; bzip2 and xz are decompressed for it first."""
    import bz2
    import gzip
    import lzma

    module = {"gzip": gzip, "bz2": bz2, "xz": lzma}[compression]
    packed = tmp_path / f"starttls-25.pcap.{compression}"
    packed.write_bytes(module.compress(Path(_capture("starttls-25")).read_bytes()))
    analysis = analyze([str(packed)], Options(keylog=_keylog("starttls-25")))
    assert analysis.captures[0].warnings == []
    assert analysis.sessions[0].outcome == "delivered"


def test_cut_capture_is_decrypted_as_far_as_it_goes(tmp_path):
    """A file cut inside a frame: tshark complains about it as our reader does; decryption
    still gives what the frames before the cut hold, and only the cut is warned about."""
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(_capture("smtps-465")).read_bytes()[:4000])
    analysis = analyze([str(cut)], Options(keylog=_keylog("smtps-465")))
    [warning] = analysis.captures[0].warnings
    assert warning.startswith("the file is cut short")
    [session] = analysis.sessions
    assert session.tls.decrypted
    assert [c.verb for c in session.commands] == ["EHLO", "MAIL", "RCPT", "DATA"]


def test_standard_input_with_key_log_is_decrypted():
    data = Path(_capture("smtps-465")).read_bytes()
    result = CliRunner().invoke(
        main, ["analyze", "-", "--keylog", _keylog("smtps-465"), "--format", "json"], input=data
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["captures"][0]["file"] == "-"
    assert document["captures"][0]["warnings"] == []
    [session] = document["sessions"]
    assert session["capture"] == "-"
    assert session["outcome"] == "delivered"
    assert session["smtp"]["tls"]["decrypted"] is True


def test_standard_input_with_embedded_secrets_is_a_warning(with_secrets):
    result = CliRunner().invoke(
        main, ["analyze", "-", "--format", "json"], input=with_secrets.read_bytes()
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["sessions"][0]["outcome"] == "encrypted"
    [warning] = document["captures"][0]["warnings"]
    assert "came from standard input" in warning


def test_standard_input_that_is_no_capture_names_standard_input():
    result = CliRunner().invoke(
        main, ["analyze", "-", "--keylog", _keylog("smtps-465")], input=b"hello"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("pcapsmtp: error: -: not a pcap or pcapng capture")


def test_missing_key_log_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        main, ["analyze", _capture("smtps-465"), "--keylog", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--keylog'" in result.stderr
    assert "does not exist" in result.stderr


# -- no credential in any output -----------------------------------------------------------


def _secrets(credentials: dict) -> list[str]:
    """The password in clear and every way AUTH carries it: PLAIN's authzid\\0user\\0pass
    (with and without an authorization identity), LOGIN's user and password, base64."""
    user = credentials["username"]
    found = []
    for password in (credentials["password"], credentials.get("failed_password")):
        if password is None:
            continue
        found += [password, f"{user}\0{password}", f"{user} {password}"]
        for clear in (f"\0{user}\0{password}", f"{user}\0{user}\0{password}", password, user):
            encoded = base64.b64encode(clear.encode()).decode()
            found += [encoded, encoded.rstrip("=")]
    return found


OUTPUTS = [
    ["analyze", "{capture}", "--format", "text"],
    ["analyze", "{capture}", "--format", "json"],
    ["analyze", "{capture}", "--format", "md"],
    ["analyze", "{capture}", "--format", "csv"],
    ["show", "{capture}", "--session", "{id}"],
    ["show", "{capture}", "--session", "{id}", "--format", "json"],
    ["diff", "{clean}", "{capture}", "--bad-session", "{id}"],
    ["diff", "{capture}", "{clean}", "--good-session", "{id}", "--format", "md"],
    ["diff", "{clean}", "{capture}", "--bad-session", "{id}", "--format", "json"],
]
"""Every output that shows a session; diff against a clean session of another capture."""


@pytest.mark.parametrize("name", ["starttls-auth-587", "auth-plain-clear"])
def test_credentials_appear_in_no_output(name, tmp_path):
    """Every output of every session, decrypted (with the key log) or clear, is scanned for
    the lab's credentials and their base64 forms: analyze, show, diff and the report."""
    truth = json.loads((LAB / f"{name}.truth.json").read_text())
    keylog = LAB / f"{name}.keylog"
    extra = ["--keylog", str(keylog)] if keylog.exists() else []
    secrets = _secrets(truth["credentials"])
    runner = CliRunner()
    for session_id in range(1, len(truth["sessions"]) + 1):
        for args in OUTPUTS:
            argv = [
                a.format(id=session_id, capture=_capture(name), clean=_capture("clean-delivery"))
                for a in args
            ]
            result = runner.invoke(main, [*argv, *extra])
            assert result.exit_code == 0, result.output
            assert "AUTH" in result.stdout or argv[0] == "analyze"
            for secret in secrets:
                assert secret not in result.stdout, (argv, secret)
                assert secret not in result.stderr, (argv, secret)
    for suffix in (".md", ".html", ".json"):
        report = tmp_path / f"report{suffix}"
        result = runner.invoke(main, ["report", _capture(name), "-o", str(report), *extra])
        assert result.exit_code == 0, result.output
        text = report.read_text()
        assert "AUTH" in text
        for secret in secrets:
            assert secret not in text, (suffix, secret)
    if extra:
        analysis = analyze([_capture(name)], Options(keylog=str(keylog)))
        assert all(s.tls.decrypted for s in analysis.sessions)
