"""Commands and reply codes per stream, in order, against tshark's smtp dissector.

Normalisations, each for a stated reason:
- tshark reports a ``smtp.response.code`` for each frame a reply has lines in (a multi-line
  reply split over two segments counts twice); we count replies as RFC 5321 4.2.1 defines
  them, so our side repeats each code once per frame that completed its lines.
- tshark 4.0 keeps four letters of a command (``STAR`` for STARTTLS); commands are
  compared on their first four letters.

Where tshark 4.0 and we disagree on purpose, ``unexplained()`` names each reason and checks it
mechanically, so the rules also hold on captures we have not seen:
- tshark 4.0 dissects SMTP by port only: on another port it shows nothing (we find SMTP by
  content, also behind SOCKS5 or HTTP CONNECT);
- tshark 4.0 loses commands pipelined behind others in one segment or behind the final dot
  (FIELD-NOTES: Zeek and Suricata needed the same fixes), and loses its footing after BDAT,
  after a refused DATA and after a message whose final dot the capture lacks (the snap
  length cut it): it keeps reading the client as message data;
- lines answering an AUTH challenge are credentials: tshark may show them as commands
  (when the 334 is missing or the line looks like a command), we redact them;
- lines the server answered with 500 (junk, or a body sent after DATA was refused) are
  commands to the server and to us; tshark skips what does not look like a command.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, GREETING
from pcapsmtp.smtp.syntax import KNOWN_VERBS
from tests.captures import all_captures, analysed, capture_id
from tests.tshark import answer, ask, needs_tshark

TSHARK_PORTS = (25, 587)
"""The ports tshark 4.0 dissects as SMTP by default (465 is TLS to it)."""


DIALOGUE = ["tcp.stream", "frame.number", "smtp.req.command", "smtp.response.code"]
ALL_OCCURRENCES = ("-E", "occurrence=a", "-E", "aggregator=\x1f")
ask(DIALOGUE, "smtp", ALL_OCCURRENCES)


def tshark_dialogue(path) -> dict[int, tuple[list[tuple[str, int]], list[int]]]:
    rows = answer(path, DIALOGUE, "smtp", ALL_OCCURRENCES).rows
    streams: dict[int, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
    for row in rows:
        stream, frame, commands, responses = [*row, "", "", ""][:4]
        commands_seen, codes = streams[int(stream)]
        commands_seen += [(c.upper()[:4], int(frame)) for c in commands.split("\x1f") if c]
        codes += [int(code) for code in responses.split("\x1f") if code]
    return streams


def our_dialogue(path):
    return {session.flow.stream: session for session in analysed(path).sessions}


def our_codes(session) -> list[int]:
    replies = [*(c.reply for c in session.commands if c.reply), *session.unsolicited]
    if session.greeting:
        replies.append(session.greeting)
    replies.sort(key=lambda r: (r.frame, r.offset))
    return [r.code for r in replies for _ in r.line_frames]


def unexplained(session, theirs) -> list[str]:
    """What differs between us and tshark on one stream and no stated reason covers."""
    their_commands, their_codes = theirs
    if session is None:
        return [f"tshark sees SMTP we do not: {theirs}"]
    ports = {session.flow.endpoints[0].port, session.flow.endpoints[1].port}
    if not their_commands and not their_codes and not ports & set(TSHARK_PORTS):
        return []
    credentials = {c.frame for c in session.commands if c.verb == AUTH_RESPONSE}
    commands = [c for c in session.commands if c.verb not in (GREETING, AUTH_RESPONSE)]
    problems = []
    position = 0
    for verb, frame in their_commands:
        if frame in credentials:
            continue
        while position < len(commands) and commands[position].verb[:4] != verb:
            position += 1
        if position == len(commands):
            problems.append(f"tshark's {verb} in frame {frame} is not among ours")
            break
        commands[position] = None
        position += 1
    per_frame = Counter(c.frame for c in session.commands if c.verb != GREETING)
    lost_footing = False
    for command in [c for c in session.commands if c.verb != GREETING]:
        extra = command in commands and command.verb != END_OF_DATA
        pipelined = per_frame[command.frame] > 1
        lost_footing = lost_footing or command.verb == "BDAT"
        if extra and not (pipelined or lost_footing or command.verb not in KNOWN_VERBS):
            problems.append(f"our {command.verb} in frame {command.frame} is not tshark's")
        refused_data = command.verb == "DATA" and command.reply and command.reply.code != 354
        cut_message = command.message is not None and not command.message.complete
        lost_footing = lost_footing or refused_data or cut_message
    if our_codes(session) != their_codes:
        problems.append(f"reply codes differ: ours {our_codes(session)}, tshark {their_codes}")
    return problems


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_commands_and_replies_equal_tsharks(path):
    theirs, ours = tshark_dialogue(path), our_dialogue(path)
    problems = {
        stream: unexplained(ours.get(stream), theirs.get(stream, ([], [])))
        for stream in sorted(set(theirs) | set(ours))
    }
    assert {s: p for s, p in problems.items() if p} == {}
