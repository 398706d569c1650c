"""The lab's captures and their ground truth agree with each other (no pcapsmtp code involved).

Every ``captures/*.truth.json`` is well-formed and names files that exist; for clear-text
SMTP on ports 25 and 587, tshark's dissection of the capture shows the same commands and
reply codes as the client's own transcript in the truth.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from tests.ahead import ahead
from tests.captures import LAB, TRUTHS
from tests.tshark import answer, ask

OUTCOMES = {
    "delivered", "rejected", "deferred", "reset", "timeout", "tls-failed", "refused",
    "unreachable", "incomplete", "encrypted", "no-smtp",
}  # fmt: skip
TOP_KEYS = {
    "scenario", "description", "capture_point", "server_software", "fault", "credentials",
    "keylog", "maillog", "other_files", "sessions", "expected_findings", "absent_findings",
}  # fmt: skip
SESSION_KEYS = {
    "client", "server", "tls", "tls_version", "helo", "dialogue", "transactions", "reset_by",
    "outcome", "outcome_without_keys", "last_reply",
}  # fmt: skip
TRANSACTION_KEYS = {"mail_from", "rcpt_to", "subject", "size", "code", "queue_id"}
SEVERITIES = {"error", "warning", "info"}
# The optional "capture" key: how much of the sessions the main capture holds.
DIRECTIONS = {"both", "client-only", "server-only"}
STARTS = {"before-session", "after-handshake", "after-greeting", "after-ehlo"}
MAX_CAPTURE_BYTES = 5_000_000

# Dialogue entries tshark 4.0 does not report as a request command, and why:
# "." -- the end of data is part of the DATA payload, not a command line;
# AUTH-RESPONSE -- lines answering a 334 are shown as credentials, not commands;
# BDAT -- a BDAT command sent together with its chunk is shown as a "DATA fragment"
#         (FIELD-NOTES: TShark 4.0 loses pipelined BDAT commands).
NOT_COMMANDS = {None, ".", "AUTH-RESPONSE", "BDAT"}
# Scenarios where tshark legitimately sees something else than the client did.
TSHARK_BLIND = {
    "capture-truncated": "snaplen 96 cuts most SMTP lines",
}
# Captures that lost packets the network delivered (truth "capture.dropped_by_capture"): tshark
# sees a subsequence of the client's commands and of its replies (after a hole in the DATA
# payload it also takes the next command for message text).
# One-sided captures (truth "capture.direction") show only the commands or only the replies;
# a capture started late (truth "capture.first_step") shows the first session from that step.
# tshark 4.0 drops a QUIT that shares a segment with the final "." (FIELD-NOTES).
QUIT_LOST_AFTER_DOT = {"pipelining"}
# tshark 4.0 ends DATA only at CRLF.CRLF: after a bare-LF ".\n" that the server accepted (and
# answered 250) it takes the next command, QUIT, for message text. tshark is wrong there.
QUIT_LOST_AFTER_BARE_LF_DOT = {"bare-lf-dot"}
# tshark 4.0 shows MAIL, RCPT and "BDAT n LAST" pipelined in one segment as a single DATA
# fragment and loses the commands (FIELD-NOTES): there its commands need only be a
# subsequence of the client's; the replies still agree one for one.
COMMANDS_LOST_IN_BDAT = {"bdat-chunking"}


def is_subsequence(short: list, long: list) -> bool:
    it = iter(long)
    return all(item in it for item in short)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def ids(paths):
    return [p.name.removesuffix(".truth.json") for p in paths]


def test_captures_exist():
    if not LAB.is_dir():
        pytest.skip("no captures/ folder")
    assert TRUTHS, "captures/ holds no *.truth.json"
    assert (LAB / "clean-delivery.truth.json").exists()  # the README's quick start


def test_readme_lists_every_capture():
    readme = (LAB / "README.md").read_text(encoding="utf-8")
    assert "scripts/lab/run" in readme
    for path in TRUTHS:
        name = path.name.removesuffix(".truth.json")
        assert f"{name}.pcap" in readme, f"captures/README.md does not list {name}"


@pytest.mark.parametrize("path", TRUTHS, ids=ids(TRUTHS))
def test_truth_is_well_formed(path: Path):
    truth = load(path)
    name = path.name.removesuffix(".truth.json")
    assert truth.keys() >= TOP_KEYS, TOP_KEYS - truth.keys()
    assert truth["scenario"] == name
    assert truth["capture_point"] in ("client", "server", "router")
    assert isinstance(truth["description"], str) and truth["description"]
    expected, absent = truth["expected_findings"], truth["absent_findings"]
    assert all(isinstance(c, str) and c == c.lower() for c in expected + absent)
    assert not set(expected) & set(absent)
    if truth["credentials"] is not None:
        assert truth["credentials"]["username"] and truth["credentials"]["password"]
    assert truth["sessions"], "a capture without sessions"
    for session in truth["sessions"]:
        check_session(session)
    for code, severity in (truth.get("expected_severity") or {}).items():
        assert code in expected and severity in SEVERITIES, (code, severity)
    if truth.get("capture") is not None:
        check_capture(truth)


def check_capture(truth: dict) -> None:
    capture = truth["capture"]
    assert capture["direction"] in DIRECTIONS
    assert capture["started"] in STARTS
    if capture["started"] == "before-session":
        assert "first_step" not in capture
    else:
        assert capture["handshake_captured"] is False
        assert 0 <= capture["first_step"] < len(truth["sessions"][0]["dialogue"])
    # a partial capture comes with the complete one of the same interface
    assert (truth["other_files"] or {}).get("reference") == f"{truth['scenario']}.reference.pcap"
    assert capture["captured_tcp_frames"] < capture["reference_tcp_frames"]
    for dropped in capture.get("dropped_by_capture", []):
        assert dropped.keys() >= {"reference_frame", "from", "tcp_len", "flags"}
        assert dropped["from"] in ("client", "server")
        assert ("text" in dropped) == (dropped["tcp_len"] > 0)


def check_session(session: dict) -> None:
    assert session.keys() >= SESSION_KEYS, SESSION_KEYS - session.keys()
    assert session["outcome"] in OUTCOMES
    assert session["outcome_without_keys"] in (None, *OUTCOMES)
    assert session["tls"] in (None, "starttls", "implicit")
    assert session["reset_by"] in (None, "client", "server", "middlebox")
    if session["tls"] and session["outcome"] != "tls-failed":
        assert session["outcome_without_keys"] == "encrypted"
    for step in session["dialogue"]:
        assert step.keys() >= {"command", "reply"}
        assert step["reply"] is None or 100 <= step["reply"] <= 599
    replies = [s["reply"] for s in session["dialogue"] if s["reply"] is not None]
    assert session["last_reply"] == (replies[-1] if replies else None)
    for tx in session["transactions"]:
        assert tx.keys() >= TRANSACTION_KEYS
        for rcpt in tx["rcpt_to"]:
            assert rcpt.keys() == {"address", "code"}
        if "message_size" in tx:  # the client's socket failed before the whole message went
            assert tx["size"] < tx["message_size"] and tx["code"] is None
    if session["outcome"] == "delivered":
        assert any(tx["code"] == 250 for tx in session["transactions"])


@pytest.mark.parametrize("path", TRUTHS, ids=ids(TRUTHS))
def test_named_files_exist(path: Path):
    truth = load(path)
    name = truth["scenario"]
    files = [f"{name}.pcap"]
    files += [truth[k] for k in ("keylog", "maillog") if truth[k]]
    files += list((truth["other_files"] or {}).values())
    for file in files:
        assert (LAB / file).is_file(), f"{path.name} names {file}, which is missing"
        if file.endswith(".pcap"):
            assert (LAB / file).stat().st_size < MAX_CAPTURE_BYTES
    if truth["keylog"]:
        lines = (LAB / truth["keylog"]).read_text().splitlines()
        secrets = [line for line in lines if line and not line.startswith("#")]
        assert secrets and all(line.split(" ")[0].isupper() for line in secrets)


# -- tshark as the oracle ---------------------------------------------------------------------
# A retransmitted segment would be dissected twice; its first transmission is in the capture.
SMTP_FILTER = "smtp && !tcp.analysis.retransmission && !tcp.analysis.spurious_retransmission"
SMTP_FIELDS = ["tcp.stream", "tcp.srcport", "tcp.dstport", "smtp.req.command", "smtp.response.code"]
ALL_OCCURRENCES = ("-E", "occurrence=a", "-E", "aggregator=|")
ask(SMTP_FIELDS, SMTP_FILTER, ALL_OCCURRENCES)


@cache
def tshark_facts(pcap: Path) -> tuple[dict[int, list], dict[str, int]]:
    """tshark's SMTP dialogue in ``pcap`` and the frame count of each signature (one tshark
    pass with the other modules' questions, tests/tshark.py).

    The dialogue is {client port: [(commands, replies) per TCP stream, in order]}; the counts
    are {display filter: matching frames}.
    """
    filters = [f for _, checks in sorted(SIGNATURES.items()) for file, f, _ in checks
               if file == pcap.name]  # fmt: skip
    filters += [f for f in ABSENCE.values() if f not in filters]
    dialogue = answer(pcap, SMTP_FIELDS, SMTP_FILTER, ALL_OCCURRENCES)
    assert dialogue.status == 0, dialogue.stderr
    counts = {}
    for display_filter in filters:
        shown = answer(pcap, ["frame.number"], display_filter)
        assert shown.status == 0, shown.stderr
        counts[display_filter] = len(shown.rows)
    return parse_smtp_fields(["\t".join(row) for row in dialogue.rows]), counts


def parse_smtp_fields(lines: list[str]) -> dict[int, list]:
    streams: dict[int, dict] = {}
    for line in filter(None, lines):
        stream, sport, dport, commands, codes = (line.split("\t") + [""] * 5)[:5]
        entry = streams.setdefault(int(stream), {"ports": (int(sport), int(dport)),
                                                 "commands": [], "replies": []})  # fmt: skip
        entry["commands"] += [c.upper()[:4] for c in commands.split("|") if c and c != "BDAT"]
        entry["replies"] += [int(c) for c in codes.split("|") if c]
    by_port: dict[int, list] = defaultdict(list)
    for stream in sorted(streams):
        entry = streams[stream]
        by_port[max(entry["ports"])].append((entry["commands"], entry["replies"]))
    return by_port


@pytest.fixture(scope="module")
def tshark():
    """tshark's facts for every capture, gathered in parallel (each run is ~0.5 s); under
    pytest-xdist, for the captures a worker's tests read, when they do."""
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    pcaps = sorted(LAB.glob("*.pcap"))
    with ahead(4) as submit:
        for path in pcaps:
            submit(tshark_facts, path)
    return tshark_facts


def comparable(session: dict) -> bool:
    port = int(session["server"].rsplit(":", 1)[1])
    return port in (25, 587) and session["tls"] != "implicit" and bool(session["dialogue"])


@pytest.mark.oracle
@pytest.mark.parametrize("path", TRUTHS, ids=ids(TRUTHS))
def test_tshark_sees_the_same_dialogue(path: Path, tshark):
    truth = load(path)
    if truth["scenario"] in TSHARK_BLIND:
        pytest.skip(TSHARK_BLIND[truth["scenario"]])
    sessions = [s for s in truth["sessions"] if comparable(s)]
    if not sessions:
        pytest.skip("no clear-text session on port 25/587")
    seen, _ = tshark(LAB / f"{truth['scenario']}.pcap")
    seen = {port: list(streams) for port, streams in seen.items()}
    capture = truth.get("capture") or {}
    for index, session in enumerate(sessions):
        # Ephemeral client ports are above 25/587, so the larger port is the client's.
        port = int(session["client"].rsplit(":", 1)[1])
        assert seen.get(port), f"tshark shows no SMTP for client port {port}"
        commands, replies = seen[port].pop(0)
        # Only what was sent in clear: tshark has no keys for the steps after STARTTLS.
        clear = [s for s in session["dialogue"] if not s.get("encrypted")]
        if index == 0:
            clear = clear[capture.get("first_step", 0) :]
        want_commands = [
            s["command"].upper()[:4] for s in clear if s["command"] not in NOT_COMMANDS
        ]
        quit_lost = QUIT_LOST_AFTER_DOT | QUIT_LOST_AFTER_BARE_LF_DOT
        if truth["scenario"] in quit_lost and want_commands[-1:] == ["QUIT"]:
            want_commands.pop()
        want_replies = [s["reply"] for s in clear if s["reply"] is not None]
        # Replies that reached the capture after the client had given up (never read by it).
        want_replies += session.get("late_replies", [])
        direction = capture.get("direction", "both")
        if direction == "server-only":
            want_commands = []
        elif direction == "client-only":
            want_replies = []
        if capture.get("dropped_by_capture"):
            assert is_subsequence(commands, want_commands), session["client"]
            assert is_subsequence(replies, want_replies), session["client"]
            continue
        if truth["scenario"] in COMMANDS_LOST_IN_BDAT:
            assert is_subsequence(commands, want_commands), session["client"]
        else:
            assert commands == want_commands, session["client"]
        assert replies == want_replies, session["client"]


# -- the fault each capture claims is really in it -----------------------------------------------
C, S = "10.77.1.2", "10.77.2.2"
# (file, display filter, expected number of matching frames: "0" or ">0")
SIGNATURES = {
    "mtu-blackhole": [
        # full-size segments from the client, retransmitted, never acknowledged ...
        ("mtu-blackhole.pcap", f"ip.src=={C} && tcp.analysis.retransmission && ip.len>1400", ">0"),
        # ... while no ICMP fragmentation-needed ever comes back ...
        ("mtu-blackhole.pcap", "icmp.type==3 && icmp.code==4", "0"),
        # ... and the server never sees one of them.
        ("mtu-blackhole.server.pcap", f"ip.src=={C} && ip.len>1400", "0"),
        ("mtu-blackhole.server.pcap", f"ip.src=={C} && tcp.len>0 && ip.len<=1400", ">0"),
    ],
    "mtu-healthy": [("mtu-healthy.pcap", f"ip.src=={C} && ip.len==1500", ">0")],
    "pmtud-working": [
        ("pmtud-working.pcap", "icmp.type==3 && icmp.code==4 && icmp.mtu==1400", ">0"),
        ("pmtud-working.pcap", f"ip.src=={C} && ip.len==1400 && tcp.len>0", ">0"),
    ],
    "ip-fragmentation": [
        ("ip-fragmentation.pcap", f"ip.src=={C} && ip.flags.mf==1", ">0"),
        ("ip-fragmentation.client.pcap", f"ip.src=={C} && ip.flags.df==0 && ip.len==1500", ">0"),
    ],
    "rst-in-data": [
        # the forged RST: the server's address, the router's TTL
        ("rst-in-data.pcap", f"ip.src=={S} && tcp.flags.reset==1 && ip.ttl==64", ">0"),
        ("rst-in-data.pcap", f"ip.src=={S} && ip.ttl!=62 && !tcp.flags.reset==1", "0"),
        ("rst-in-data.server.pcap", f"ip.src=={S} && tcp.flags.reset==1", "0"),
    ],
    "loss": [("loss.pcap", "tcp.analysis.retransmission", ">0")],
    "zero-window": [("zero-window.pcap", f"ip.src=={S} && tcp.analysis.zero_window", ">0")],
    "connect-refused": [("connect-refused.pcap", f"ip.src=={S} && tcp.flags.reset==1", ">0")],
    "connect-timeout": [
        ("connect-timeout.pcap", "tcp.flags.syn==1 && tcp.analysis.retransmission", ">0"),
        ("connect-timeout.pcap", f"ip.src=={S}", "0"),
    ],
    "capture-truncated": [("capture-truncated.pcap", "frame.cap_len < frame.len", ">0")],
    "tls-version-mismatch": [("tls-version-mismatch.pcap", "tls.alert_message.desc==70", ">0")],
    "starttls-25": [
        ("starttls-25.pcap", "tls.handshake.type==2 && tls.handshake.version==0x0303", ">0")
    ],
    "smtp-inspection": [("smtp-inspection.pcap", 'smtp && frame contains "XXXXXXXA"', ">0")],
    "tarpit": [("tarpit.pcap", "smtp.response.code==220 && tcp.time_relative>=14", ">0")],
    "bare-lf-dot": [
        # the end of data is LF . LF, and no CRLF . CRLF is anywhere in the capture ...
        ("bare-lf-dot.pcap", f"ip.src=={C} && tcp.payload contains 0a:2e:0a", ">0"),
        ("bare-lf-dot.pcap", "tcp.payload contains 0d:0a:2e:0d:0a", "0"),
        # ... yet the server queued the message
        (
            "bare-lf-dot.pcap",
            'smtp.response.code==250 && smtp.rsp.parameter contains "queued"',
            ">0",
        ),
    ],
}


# What tshark's expert analysis shows whenever these findings would be right. A capture whose
# truth says the finding is absent must not show it at all on the mail ports (scan-port-reuse's
# scanner shares its capture: refused on 1100 other ports, its reused SYNs look like
# retransmissions). No commas inside a filter: io,stat separates its filters with them.
MAIL_PORTS = "(tcp.port==25 || tcp.port==465 || tcp.port==587)"
ABSENCE = {
    "retransmissions": f"(tcp.analysis.retransmission || tcp.analysis.fast_retransmission) && "
    f"{MAIL_PORTS}",
    "zero-window": f"tcp.analysis.zero_window && {MAIL_PORTS}",
    "ip-fragmentation": "ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fragment",
    "capture-truncated": "frame.cap_len < frame.len",
    "capture-loss": f"tcp.analysis.ack_lost_segment && {MAIL_PORTS}",
    "connect-refused": "tcp.flags.syn==0 && tcp.flags.reset==1 && tcp.seq==1 && tcp.ack==1 && "
    f"{MAIL_PORTS}",
}
for _filter in [f for checks in SIGNATURES.values() for _, f, _ in checks] + [*ABSENCE.values()]:
    ask(["frame.number"], _filter)


@pytest.mark.oracle
@pytest.mark.parametrize("path", TRUTHS, ids=ids(TRUTHS))
def test_absent_findings_have_no_evidence(path: Path, tshark):
    truth = load(path)
    files = [f"{truth['scenario']}.pcap", *(truth["other_files"] or {}).values()]
    for code in set(truth["absent_findings"]) & ABSENCE.keys():
        for file in files:
            count = tshark(LAB / file)[1][ABSENCE[code]]
            assert count == 0, f"{file} shows {code} ({ABSENCE[code]}) but the truth says absent"


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_fault_signature_is_in_the_capture(name: str, tshark):
    if not (LAB / f"{name}.truth.json").exists():
        pytest.skip(f"{name} not generated")
    for file, display_filter, want in SIGNATURES[name]:
        count = tshark(LAB / file)[1][display_filter]
        assert (count > 0) if want == ">0" else (count == 0), f"{file}: {display_filter}"
