"""The ``diff`` command: exit codes, the JSON contract, and wire text made harmless."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.diff.rewrite import Box, rewrite
from tests.diff.test_compare import lab


def run(*args: str):
    return CliRunner().invoke(main, ["diff", *args])


def test_json_contract_of_a_comparison():
    result = run(lab("mtu-healthy"), lab("mtu-blackhole"), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    for key in ("good", "bad", "steps", "parameters", "first_divergence", "findings_only_in_bad"):
        assert key in doc
    assert doc["mode"] == "compare"
    assert "mtu-blackhole" in doc["findings_only_in_bad"]
    assert all(isinstance(code, str) for code in doc["findings_only_in_bad"])
    assert doc["parameters"]["max_acked_segment"]["differs"] is True
    assert doc["first_divergence"]["name"] == "the message transfer"
    step = doc["steps"][0]
    assert step["step"] == "greeting" and step["good"]["reply"]["code"] == 220


def test_json_contract_of_same_session():
    server = lab("rst-in-data").replace(".pcap", ".server.pcap")
    result = run(lab("rst-in-data"), server, "--same-session", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["mode"] == "same-session" and doc["pairing"] == "isn"
    assert {"client_side", "server_side", "steps", "parameters", "transit", "middlebox"} <= set(doc)
    assert doc["findings"] == ["middlebox-reset"]
    forged = next(m for m in doc["middlebox"] if m["code"] == "rst-forged")
    assert forged["frames"]["client_side"] and not forged["frames"]["server_side"]


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_human_formats_name_the_essentials(fmt):
    result = run(lab("mtu-healthy"), lab("mtu-blackhole"), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "mtu-blackhole" in result.output and "Verdict" in result.output
    assert "largest segment acknowledged" in result.output


def test_exit_codes(tmp_path):
    missing = run(str(tmp_path / "nope.pcap"), lab("mtu-blackhole"))
    assert missing.exit_code == 1
    assert missing.output.strip().startswith("pcapsmtp: error:")
    alone = run(lab("clean-delivery"), lab("clean-delivery"))
    assert alone.exit_code == 2 and "no other SMTP session" in alone.output
    unrelated = run(lab("clean-delivery"), lab("unknown-user"), "--same-session")
    assert unrelated.exit_code == 2
    wrong = run(lab("clean-delivery"), lab("unknown-user"), "--good-session", "4")
    assert wrong.exit_code == 2 and "no SMTP session 4" in wrong.output


EVIL = b"\x1b[31mRED\x1b[0m |a|*b*<i>`x`\x07"
BANNER = b"server.lab.test ESMTP Postfix (lab)"


@pytest.fixture
def evil_banner(tmp_path) -> str:
    """clean-delivery with a banner full of terminal escapes and Markdown (same length)."""
    payload = EVIL + b"#" * (len(BANNER) - len(EVIL))
    box = Box(payloads={BANNER: payload})
    return str(rewrite(Path(lab("clean-delivery")), tmp_path / "evil.pcap", box))


def test_wire_text_is_escaped_in_every_format(evil_banner):
    text = run(lab("clean-delivery"), evil_banner).output
    assert "\x1b" not in text and "\x07" not in text and "\\x1b" in text
    md = run(lab("clean-delivery"), evil_banner, "--format", "md").output
    assert "\x1b" not in md and "|a|" not in md and "\\|a\\|" in md and "<i>" not in md
    doc = json.loads(run(lab("clean-delivery"), evil_banner, "--format", "json").output)
    assert doc["steps"][0]["bad"]["reply"]["text"].startswith("\x1b[31mRED")
    same = run(lab("clean-delivery"), evil_banner, "--same-session").output
    assert "banner-changed" in same and "\x1b" not in same


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_no_credential_leaves_in_any_format(fmt):
    """The failed AUTH PLAIN against the working one: neither password nor its base64."""
    truth = json.loads((Path(lab("auth-plain-clear")).with_suffix(".truth.json")).read_text())
    credentials = truth["credentials"]
    result = run(lab("auth-plain-clear"), lab("auth-plain-clear"), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "AUTH PLAIN" in result.output and "redacted" in result.output
    for password in (credentials["password"], credentials["failed_password"]):
        plain = f"\0{credentials['username']}\0{password}".encode()
        for secret in (password, base64.b64encode(plain).decode()):
            assert secret not in result.output
