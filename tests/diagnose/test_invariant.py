"""No false calm, over every capture the tests read (issue 17): each session that did not
deliver, or end with a QUIT answered 2xx and no mail left waiting, is explained by a finding
that names it, with evidence frames; and the text output says "No trouble found" only when
every session ended that well.

Sessions the SMTP parser cannot yet read whole (one direction only, a capture started
mid-session, holes in the capture, retransmissions that rewrite the stream) are expected to
be explained by the finding the parser's work on such captures adds: they are reported as
expected failures, by name, until it lands.
"""

from __future__ import annotations

import pytest

from pcapsmtp.diagnose.coverage import ended_well, explains, unexplained
from pcapsmtp.report.text import format_analysis
from pcapsmtp.smtp.model import Session
from tests.diagnose.helpers import analysis
from tests.diagnose.test_smoke import CAPTURES

NO_TROUBLE = "No trouble found"


def _partial(session: Session) -> str | None:
    """Why the parser cannot see this session whole, if it cannot."""
    flow = session.flow
    if not all(e.packets for e in flow.endpoints) or not all(
        e.bytes for e in flow.endpoints if e.packets
    ):
        return "one direction only"
    if flow.syn_time_ns is None and flow.synack_time_ns is None:
        return "started mid-session"
    if any(g.reason in ("not captured", "never filled") for g in session.gaps):
        return "holes in the capture"
    if any(e.retransmission_mismatches for e in flow.endpoints):
        return "retransmissions whose bytes differ from the first copy"
    return None


@pytest.mark.skipif(not CAPTURES, reason="no lab or public captures")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_session_that_did_not_end_well_is_explained(path):
    result = analysis(str(path))
    missing = unexplained(result.sessions, result.findings)
    partial = {s.id: why for s in missing if (why := _partial(s))}
    failures = [
        f"session {s.id} ({s.outcome}: {s.outcome_reason}): "
        + ", ".join(f.code for f in result.findings if f.session == s.id)
        for s in missing
        if s.id not in partial
    ]
    assert failures == []
    for session in result.sessions:
        for finding in result.findings:
            if explains(finding, session) and not ended_well(session):
                assert finding.frames, finding.code
    if partial:
        pytest.xfail(f"awaiting the parser's finding for partial captures: {partial}")


@pytest.mark.skipif(not CAPTURES, reason="no lab or public captures")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_no_trouble_only_when_every_session_ended_well(path):
    result = analysis(str(path))
    text = format_analysis(result)
    calm = all(ended_well(s) for s in result.sessions)
    troubled = any(f.severity in ("error", "warning") for f in result.findings)
    assert (NO_TROUBLE in text) == (calm and not troubled)
