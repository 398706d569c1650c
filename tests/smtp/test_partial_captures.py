"""Real lab captures made partial the way captures go wrong, compared with the lab's truth.

- one direction only (asymmetric routing, a one-way SPAN, ``tcpdump -Q out``): every command
  (or every reply) that is there is read; nothing is called delivered that only the missing
  side could confirm; the session says it is one-sided;
- started mid-session (the first N frames dropped at several points): the greeting is the
  first reply no command preceded, each later reply pairs with the command that drew it;
- holes of a byte in either direction (inside replies, commands, the message, its final dot):
  the dialogue resynchronises at the next line, the transaction keeps its sender, recipients,
  queue id and delivered outcome, and a pairing made by code only is marked uncertain.

The variants are built from the real captures with tests/capture_edits.py into tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcapsmtp.analysis import analyze
from pcapsmtp.diagnose.capture import NEEDS_BOTH_SIDES
from pcapsmtp.report.sessions import endpoint_name
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, GREETING
from tests.capture_edits import cut_payload, drop_frames, one_direction, payloads
from tests.captures import LAB, analysed

CLEAR = sorted(
    path
    for path in LAB.glob("*.truth.json")
    if any(s.get("dialogue") for s in json.loads(path.read_text())["sessions"])
    and not any(s.get("tls") for s in json.loads(path.read_text())["sessions"])
    and path.name != "capture-truncated.truth.json"
    and "capture" not in json.loads(path.read_text())
)
"""Lab cases with a clear-text SMTP dialogue (inside TLS nothing is readable one-sided),
captured whole (the partial ones, with a ``capture`` key, are tested as they are below).
capture-truncated is left out: dpkt's reader loses each record's original length, so a
rewritten copy no longer says the snap length cut it."""


def _truth(path: Path) -> dict:
    return json.loads(path.read_text())


def _capture(truth_path: Path) -> Path:
    return LAB / f"{_truth(truth_path)['scenario']}.pcap"


def _case_id(path: Path) -> str:
    return path.name.removesuffix(".truth.json")


def _verb(command) -> str:
    return "AUTH-RESPONSE" if command.verb == AUTH_RESPONSE else command.verb


def _sessions(analysis) -> dict[str, object]:
    return {endpoint_name(s.client): s for s in analysis.sessions}


def _server_port(truth: dict) -> int:
    return int(truth["sessions"][0]["server"].rsplit(":", 1)[1])


def _truth_commands(session: dict) -> list[str]:
    return [step["command"] for step in session["dialogue"] if step["command"] is not None]


def _truth_replies(session: dict) -> list[int]:
    return [step["reply"] for step in session["dialogue"] if step["reply"] is not None]


# -- one direction only --------------------------------------------------------------------


@pytest.mark.parametrize("truth_path", CLEAR, ids=_case_id)
def test_client_side_only_gives_every_command(truth_path, tmp_path):
    truth = _truth(truth_path)
    if truth["scenario"] == "bare-lf-dot":
        pytest.xfail(
            "known gap: an end of data written '\\n.\\n' (bare LF) is recognised only by the "
            "server's reply to it, which a client-only capture lacks"
        )
    edited = one_direction(
        _capture(truth_path), tmp_path / "client.pcap", _server_port(truth), False
    )
    analysis = analyze([str(edited)])
    ours = _sessions(analysis)
    for expected in truth["sessions"]:
        if not expected["dialogue"] or not _truth_commands(expected):
            continue
        session = ours[expected["client"]]
        commands = [_verb(c) for c in session.commands if c.verb != GREETING]
        assert commands == _truth_commands(expected), expected["client"]
        assert session.one_sided == "client"
        assert session.outcome != "delivered"
        assert all(c.reply is None for c in session.commands)
        mine = [f for f in analysis.findings if f.session == session.id]
        assert "capture-one-sided" in {f.code for f in mine}
        assert not {f.code for f in mine} & NEEDS_BOTH_SIDES
        for ours_t, theirs in zip(session.transactions, expected["transactions"], strict=False):
            assert ours_t.mail_from == theirs["mail_from"]
            assert [r.address for r in ours_t.rcpt_to] == [r["address"] for r in theirs["rcpt_to"]]
            assert ours_t.outcome != "delivered"


@pytest.mark.parametrize("truth_path", CLEAR, ids=_case_id)
def test_server_side_only_gives_every_reply(truth_path, tmp_path):
    truth = _truth(truth_path)
    edited = one_direction(
        _capture(truth_path), tmp_path / "server.pcap", _server_port(truth), True
    )
    analysis = analyze([str(edited)])
    ours = _sessions(analysis)
    for expected in truth["sessions"]:
        if not _truth_replies(expected) or expected["client"] not in ours:
            continue
        session = ours[expected["client"]]
        replies = [c.reply for c in session.commands if c.reply] + session.unsolicited
        if session.greeting is not None:
            replies.append(session.greeting)
        codes = [r.code for r in sorted(replies, key=lambda r: (r.frame, r.offset))]
        if 421 not in _truth_replies(expected):
            # A 421 sent after the client gave up is not in the client's transcript.
            codes = [c for c in codes if c != 421]
        assert codes == _truth_replies(expected), expected["client"]
        assert session.one_sided == "server"
        assert "capture-one-sided" in {f.code for f in analysis.findings if f.session == session.id}
        queued = [t.get("queue_id") for t in expected["transactions"] if t.get("code") == 250]
        delivered = [t for t in session.transactions if t.outcome == "delivered"]
        if expected["outcome"] == "delivered" and all(
            step["command"] != "BDAT" for step in expected["dialogue"]
        ):
            # The reply after a 354 answers the message: accepted, with its queue id.
            assert [t.queue_id for t in delivered] == queued
        assert (
            session.outcome in ("delivered", "incomplete") or session.outcome == expected["outcome"]
        )


def test_public_client_only_capture(public_capture):
    analysis = analyze([str(public_capture("zeek-smtp-one-side-only.pcap"))])
    (session,) = analysis.sessions
    assert [c.verb for c in session.commands] == [
        "EHLO", "MAIL", "RCPT", "DATA", END_OF_DATA, "MAIL", "RCPT", "DATA", END_OF_DATA, "QUIT",
    ]  # fmt: skip
    assert session.helo == "enzo.icir.org"
    assert [(t.mail_from, [r.address for r in t.rcpt_to]) for t in session.transactions] == [
        ("robin@icir.org", ["robin@icir.org"]),
        ("robin@icir.org", ["rsommer@lbl.gov"]),
    ]
    assert [t.message.subject for t in session.transactions] == ["Hello1!", "Hello2!"]
    assert [t.outcome for t in session.transactions] == ["incomplete", "incomplete"]
    assert session.outcome == "incomplete"
    (finding,) = [f for f in analysis.findings if f.code == "capture-one-sided"]
    assert finding.severity == "warning"
    assert "2 message(s) through to the end of data and then QUIT" in finding.detail
    assert finding.frames == [4, 5, 6, 7, 9, 10, 11, 12, 16, 17]
    assert finding.filter == "frame.number in {4..7, 9..12, 16, 17}"


# -- started mid-session -------------------------------------------------------------------

MID_SESSION = ["clean-delivery", "clean-delivery-exim", "pipelining", "auth-plain-clear"]


def _frames(capture: Path) -> list[tuple[int, int, int, bytes]]:
    return payloads(capture)


def _cut_points(capture: Path, server_port: int) -> dict[str, int]:
    """Frames to drop from the start: through the handshake, the greeting, the EHLO."""
    data = _frames(capture)
    greeting = next(f for f, sport, _d, _p in data if sport == server_port)
    ehlo = next(f for f, _s, dport, p in data if dport == server_port and p[:4].upper() == b"EHLO")
    return {"after-handshake": greeting - 1, "after-greeting": greeting, "after-ehlo": ehlo}


def _steps(session) -> list[tuple[str | None, int | None]]:
    steps = [(None, session.greeting.code)] if session.greeting else []
    steps += [
        (_verb(c), c.reply.code if c.reply else None)
        for c in session.commands
        if c.verb != GREETING
    ]
    return steps


@pytest.mark.parametrize("case", MID_SESSION)
@pytest.mark.parametrize("cut", ["after-handshake", "after-greeting", "after-ehlo"])
def test_capture_started_mid_session_pairs_by_the_protocol(case, cut, tmp_path):
    truth = _truth(LAB / f"{case}.truth.json")
    capture = LAB / f"{case}.pcap"
    first = _cut_points(capture, _server_port(truth))[cut]
    edited = drop_frames(capture, tmp_path / "late.pcap", set(range(1, first + 1)))
    analysis = analyze([str(edited)])
    expected = truth["sessions"][0]
    session = _sessions(analysis)[expected["client"]]
    dialogue = [(s["command"], s["reply"]) for s in expected["dialogue"]]
    skip = {"after-handshake": 0, "after-greeting": 1, "after-ehlo": 2}[cut]
    assert _steps(session) == dialogue[skip:]
    assert "handshake" in session.not_captured
    assert ("greeting" in session.not_captured) == (skip > 0)
    codes = {f.code for f in analysis.findings if f.session == session.id}
    assert "capture-started-late" in codes
    if cut == "after-ehlo":
        # The EHLO reply answers a command sent before the capture: shown, not paired.
        assert [r.code for r in session.unsolicited] == [dialogue[1][1]]
    assert [t.queue_id for t in session.transactions] == [
        t["queue_id"] for t in expected["transactions"]
    ]


@pytest.mark.parametrize("case", ["zero-window", "pmtud-working", "loss"])
def test_capture_started_inside_the_message(case, tmp_path):
    """The first frames are message bytes: they are skipped up to the final dot, which the
    server's 'queued as' answers; the transaction is delivered with its queue id."""
    truth = _truth(LAB / f"{case}.truth.json")
    capture = LAB / f"{case}.pcap"
    port = _server_port(truth)
    data = _frames(capture)
    reply_354 = next(f for f, sport, _d, p in data if sport == port and p.startswith(b"354"))
    body = [f for f, _s, dport, _p in data if dport == port and f > reply_354]
    edited = drop_frames(capture, tmp_path / "late.pcap", set(range(1, body[0] + 1)))
    analysis = analyze([str(edited)])
    expected = truth["sessions"][0]
    session = _sessions(analysis)[expected["client"]]
    first = session.transactions[0]
    assert first.queue_id == expected["transactions"][0]["queue_id"]
    assert first.outcome == "delivered"
    assert first.final.command.verb == END_OF_DATA
    assert first.message_complete is False


# -- holes in the capture ------------------------------------------------------------------


def _hole(capture: Path, port: int, where: str) -> tuple[int, int]:
    """(frame, offset in its payload) of a one-byte hole at ``where``."""
    data = _frames(capture)
    server = [(f, p) for f, sport, _d, p in data if sport == port]
    client = [(f, p) for f, _s, dport, p in data if dport == port]

    def reply(prefix: bytes):
        return next((f, p) for f, p in server if p.startswith(prefix))

    def command(verb: bytes):
        return next((f, p) for f, p in client if p[:4].upper() == verb)

    if where == "greeting":
        return reply(b"220")[0], 10
    if where == "ehlo-reply":
        frame, payload = server[1]
        return frame, len(payload) // 2
    if where == "mail-reply":
        mail = command(b"MAIL")[0]
        return next(f for f, _p in server if f > mail), 5
    if where == "354":
        return reply(b"354")[0], 6
    if where == "rcpt-command":
        return command(b"RCPT")[0], 3
    if where == "quit-command":
        return command(b"QUIT")[0], 1
    body = next((f, p) for f, p in client if b"\r\n.\r\n" in p)
    if where == "message":
        return body[0], 20
    return body[0], body[1].rindex(b"\r\n.\r\n") + 2  # the final dot itself


HOLES = ["greeting", "ehlo-reply", "mail-reply", "354", "rcpt-command", "message", "dot"]


def _aligned(session, expected: dict) -> list[tuple[object, int]]:
    """Each of our commands with the truth's reply code for it (ours are a subsequence)."""
    steps = [(s["command"], s["reply"]) for s in expected["dialogue"] if s["command"]]
    pairs, position = [], 0
    for command in session.commands:
        if command.verb == GREETING:
            continue
        while position < len(steps) and steps[position][0] != _verb(command):
            position += 1
        assert position < len(steps), f"{command.verb} in frame {command.frame} not in truth"
        pairs.append((command, steps[position][1]))
        position += 1
    return pairs


@pytest.mark.parametrize("case", ["clean-delivery", "clean-delivery-exim", "auth-plain-clear"])
@pytest.mark.parametrize("where", HOLES)
def test_one_byte_hole_keeps_the_transaction(case, where, tmp_path):
    truth = _truth(LAB / f"{case}.truth.json")
    capture = LAB / f"{case}.pcap"
    frame, offset = _hole(capture, _server_port(truth), where)
    edited = cut_payload(capture, tmp_path / "hole.pcap", frame, offset, 1)
    analysis = analyze([str(edited)])
    expected = truth["sessions"][0]
    session = _sessions(analysis)[expected["client"]]
    assert session.gaps, "the hole is seen as a gap"
    theirs = expected["transactions"][0]
    ours = session.transactions[0]
    assert ours.mail_from == theirs["mail_from"]
    addresses = [r.address for r in ours.rcpt_to]
    if where == "rcpt-command":
        assert addresses == []  # the damaged RCPT line cannot be read; its reply is shown
    else:
        assert addresses == [r["address"] for r in theirs["rcpt_to"]]
    assert ours.queue_id == theirs["queue_id"]
    assert ours.outcome == "delivered"
    assert session.outcome == "delivered"
    for command, code in _aligned(session, expected):
        if command.reply is not None and not command.reply.uncertain:
            assert command.reply.code == code, (command.verb, command.frame)
    verbs = [_verb(c) for c in session.commands if c.verb != GREETING]
    lost = {"rcpt-command": "RCPT", "dot": "."}.get(where)
    assert verbs == [c for c in _truth_commands(expected) if c != lost] or lost == "."


@pytest.mark.parametrize("where", ["mail-reply", "354", "rcpt-command", "message"])
def test_hole_in_a_pipelined_session(where, tmp_path):
    """Pipelined MAIL/RCPT/RCPT/RCPT/DATA in one segment, the replies in one: after a hole,
    the 354 and 'queued as' replies put the pairing back in step."""
    truth = _truth(LAB / "pipelining.truth.json")
    capture = LAB / "pipelining.pcap"
    port = _server_port(truth)
    data = _frames(capture)
    server = [(f, p) for f, sport, _d, p in data if sport == port]
    client = [(f, p) for f, _s, dport, p in data if dport == port]
    batch = next((f, p) for f, p in server if p.startswith(b"250 2.1.0"))
    frame, offset = {
        "mail-reply": (batch[0], 4),
        "354": (batch[0], batch[1].index(b"354") + 4),
        "rcpt-command": (next(f for f, p in client if p.startswith(b"MAIL")), 60),
        "message": (next(f for f, p in client if p.startswith(b"Content-Type")), 30),
    }[where]
    edited = cut_payload(capture, tmp_path / "hole.pcap", frame, offset, 1)
    analysis = analyze([str(edited)])
    expected = truth["sessions"][0]
    session = _sessions(analysis)[expected["client"]]
    assert [t.queue_id for t in session.transactions] == [
        t["queue_id"] for t in expected["transactions"]
    ]
    assert [t.mail_from for t in session.transactions] == [
        t["mail_from"] for t in expected["transactions"]
    ]
    assert all(t.outcome == "delivered" for t in session.transactions)
    for command, code in _aligned(session, expected):
        if command.reply is not None and not command.reply.uncertain:
            assert command.reply.code == code, (command.verb, command.frame)
    codes = {f.code for f in analysis.findings if f.session == session.id}
    if session.uncertain or any(u.reason == "not captured" for u in session.unanswered):
        assert "pairing-uncertain" in codes


# -- the lab's own partial captures (truth files with a ``capture`` key) ----------------------

PARTIAL = sorted(p for p in LAB.glob("*.truth.json") if "capture" in _truth(p))


def _findings(analysis, session) -> set[str]:
    return {f.code for f in analysis.findings if f.session == session.id}


@pytest.mark.parametrize("truth_path", PARTIAL, ids=_case_id)
def test_lab_partial_capture_against_its_truth(truth_path):
    truth = _truth(truth_path)
    facts = truth["capture"]
    analysis = analysed(_capture(truth_path))
    ours = _sessions(analysis)
    everything = {f.code for f in analysis.findings}
    assert not everything & set(truth["absent_findings"])
    assert set(truth["expected_findings"]) <= everything
    for number, expected in enumerate(truth["sessions"]):
        session = ours[expected["client"]]
        direction = facts["direction"]
        if direction == "client-only":
            assert session.one_sided == "client"
            assert [_verb(c) for c in session.commands] == _truth_commands(expected)
            assert session.outcome == "incomplete"
            assert [t.mail_from for t in session.transactions] == [
                t["mail_from"] for t in expected["transactions"]
            ]
            assert [[r.address for r in t.rcpt_to] for t in session.transactions] == [
                [r["address"] for r in t["rcpt_to"]] for t in expected["transactions"]
            ]
            assert "capture-one-sided" in _findings(analysis, session)
        elif direction == "server-only":
            assert session.one_sided == "server"
            replies = sorted(
                [c.reply for c in session.commands if c.reply] + session.unsolicited,
                key=lambda r: r.frame,
            )
            codes = ([session.greeting.code] if session.greeting else []) + [
                r.code for r in replies
            ]
            assert codes == _truth_replies(expected)
            assert session.outcome == expected["outcome"]  # the replies say it
            assert [t.queue_id for t in session.transactions] == [
                t["queue_id"] for t in expected["transactions"]
            ]
            assert "capture-one-sided" in _findings(analysis, session)
        elif facts["started"] != "before-session" and number == 0:
            first = facts["first_step"]
            steps = [(s["command"], s["reply"]) for s in expected["dialogue"]]
            assert _steps(session) == steps[first:]
            assert "handshake" in session.not_captured
            assert ("greeting" in session.not_captured) == (first > 0)
            assert "capture-started-late" in _findings(analysis, session)
        else:
            # Holes: the readable envelope, the queue id and the outcome are the truth's.
            assert session.outcome == expected["outcome"]
            for ours_t, theirs in zip(session.transactions, expected["transactions"], strict=True):
                assert ours_t.queue_id == theirs["queue_id"]
                assert ours_t.mail_from in (theirs["mail_from"], None)
                assert {r.address for r in ours_t.rcpt_to} <= {
                    r["address"] for r in theirs["rcpt_to"]
                }
            for command, code in _aligned(session, expected):
                if command.reply is not None and not command.reply.uncertain:
                    assert command.reply.code == code, (command.verb, command.frame)


def test_credentials_stay_redacted_without_the_servers_334(tmp_path):
    """Client-only: no 334 challenge is captured, yet the lines after AUTH are credentials
    (the choke point in smtp/dialogue.py), in every output."""
    import base64

    from click.testing import CliRunner

    from pcapsmtp.cli import main

    truth = _truth(LAB / "auth-plain-clear.truth.json")
    edited = one_direction(LAB / "auth-plain-clear.pcap", tmp_path / "c.pcap", 587, False)
    secrets = [truth["credentials"]["password"], truth["credentials"]["failed_password"]]
    for fmt in ("json", "text", "md"):
        output = CliRunner().invoke(main, ["analyze", "--format", fmt, str(edited)]).output
        assert "AUTH" in output or fmt != "json"
        for secret in secrets:
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                assert form not in output
    session = _sessions(analyze([str(edited)]))[truth["sessions"][1]["client"]]
    assert [c.verb for c in session.commands][:3] == ["EHLO", "AUTH", AUTH_RESPONSE]
