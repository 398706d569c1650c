"""What an open SMTP connection holds before it says much: a flood of connections that
each got a greeting (scripts/bench/hostile.py ``flows``) is held until the capture ends,
so each one's SMTP state, times up to 100,000 open at once, is the run's memory
(docs/limits.md). Lists most sessions never fill, and a framer for a side that has not
spoken, are made when first needed."""

from __future__ import annotations

import importlib.util
import tracemalloc

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.dialogue import DEFAULT_LIMITS
from pcapsmtp.smtp.session import UNFILLED
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowTracker
from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("hostile", REPO_ROOT / "scripts/bench/hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

CONNECTIONS = 500
SMTP_BYTES = 2_000
"""The SMTP side of an open connection that carried a greeting, traced on CPython 3.11:
1,702 bytes here (the tracker fed ready-made events); 2,941 before the open session's
lists and dicts were shared empty ones until used and the greeting's virtual command was
one for all (session 7); 3,179 in
docs/performance.md's measure of session 6 (the events made while traced), 4,011 there
before the rare lists and framers were made lazily."""


def _open(tmp_path) -> tuple[SmtpTracker, int]:
    """Every connection of the flood fed, none ended; the SMTP side's traced bytes."""
    path = hostile.write_case("flows", tmp_path, CONNECTIONS / 200_000)
    with open_capture(str(path)) as capture:
        found = list(packets(capture))
    flows = FlowTracker(SMTP_PORTS)
    smtp = SmtpTracker(str(path))
    events = []
    for packet in found:
        flows.add(packet)
        events += flows.take()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            assert smtp.add(event) is None
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return smtp, held


def test_a_greeted_connection_holds_only_what_it_used(tmp_path) -> None:
    smtp, held = _open(tmp_path)
    connections = list(smtp._connections.values())
    assert len(connections) == CONNECTIONS
    for connection in connections:
        builder, dialogue = connection.builder, connection.dialogue
        assert builder.session.greeting is not None and builder.session.greeting.code == 220
        assert builder._gaps is builder._anomalies is builder._unsolicited is None
        assert builder._unanswered is None
        assert dialogue._lines.client is None and dialogue._lines.server is not None
        assert dialogue.limits is DEFAULT_LIMITS
        assert connection.starts is None
    per_connection = held / CONNECTIONS
    assert per_connection < SMTP_BYTES, f"{per_connection:,.0f} bytes per connection"


def test_an_open_session_shares_its_empty_lists_and_a_finished_one_has_its_own(tmp_path):
    smtp, _held = _open(tmp_path)
    sessions = [c.builder.session for c in smtp._connections.values()]
    for session in sessions:
        assert session.commands == session.gaps == session.auth == ()
        assert session.left_out is session.extensions is UNFILLED
        assert len(session.dialogue) == 1
        assert connection_state_is_lean(smtp._connections[session.flow.stream])
    first, second = (c.builder.finish() for c in list(smtp._connections.values())[:2])
    for name in ("commands", "gaps", "auth", "transactions", "uncertain"):
        assert getattr(first, name) == [] and getattr(first, name) is not getattr(second, name)
    assert first.left_out == first.extensions == {} and first.left_out is not second.left_out


def connection_state_is_lean(connection) -> bool:
    """Between replies the dialogue holds no reply buffer and no held bytes of its own."""
    dialogue, builder = connection.dialogue, connection.builder
    return (
        dialogue._reply_lines == dialogue._reply_frames == dialogue._held == ()
        and builder._commands is None
        and builder._other_replies == builder._unattached == ()
    )
