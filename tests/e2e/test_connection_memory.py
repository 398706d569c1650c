"""What one open connection costs: a flood of connections (scripts/bench/hostile.py
``flows``: a handshake and a 220 greeting each, none closed) is held in the flow table and
the SMTP tracker until the capture ends, so each connection's state, multiplied by up to
100,000 (tcp/flows.py MAX_FLOWS), is the run's memory (docs/performance.md, "Hostile
captures"). Traced memory, not RSS: the same on every machine with this Python."""

from __future__ import annotations

import importlib.util
import tracemalloc

from pcapsmtp.capture import open_capture, packets
from pcapsmtp.smtp.tracker import SMTP_PORTS, SmtpTracker
from pcapsmtp.tcp import FlowTracker
from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("hostile", REPO_ROOT / "scripts/bench/hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

CONNECTIONS = 1_000
BYTES_PER_CONNECTION = 6_000
"""Python heap only (tracemalloc): measured 5,459 bytes on CPython 3.11 once the flow table
moved into the core (session 7; its Rust state per flow is not traced here: 4,035 bytes of
RSS per open flow, docs/performance.md "The flow table in Rust"), 4.4 KB just before (the
open session's empty lists shared; 5.7 KB before that; 8.6 KB in session 6), 20.0 KB before
the per-flow state was compacted (peak traced while the flows are open, the finished
sessions kept, as ``analyze`` keeps them)."""


def test_an_open_smtp_connection_costs_less_than_6_kb_of_python_heap(tmp_path) -> None:
    path = hostile.write_case("flows", tmp_path, CONNECTIONS / 200_000)
    sessions = []
    with open_capture(str(path)) as capture:
        found = list(packets(capture))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        flows = FlowTracker(SMTP_PORTS)
        smtp = SmtpTracker(str(path))
        for event in flows.events(found):
            session = smtp.add(event)
            if session is not None:
                sessions.append(session)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert len(sessions) == CONNECTIONS
    assert all(s.greeting is not None and s.greeting.code == 220 for s in sessions)
    per_connection = peak / CONNECTIONS
    assert per_connection < BYTES_PER_CONNECTION, f"{per_connection:,.0f} bytes per connection"
