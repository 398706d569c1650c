"""``analyze --format json`` runs the session rules as the JSON writer reaches each session
(``Options.session_rules_in_writer``, pcapsmtp.diagnose.Diagnosis): the same document as when
the diagnosis runs first, and each spooled session read back once instead of twice."""

from __future__ import annotations

import io

import pytest

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.analysis import spool as spool_module
from pcapsmtp.analysis.spool import SessionSpool
from pcapsmtp.report.jsondoc import write_json
from tests.captures import LAB

CAPTURES = [
    LAB / "retry-storm.pcap",  # 240 sessions, soft-bounce over the capture naming each
    LAB / "greylisting.pcap",
    LAB / "dns-sender-domain.pcap",  # capture-wide findings beside session ones
    LAB / "dns-mx-mismatch.pcap",
    LAB / "auth-plain-clear.pcap",
]


def _written(path, in_writer: bool) -> tuple[str, object]:
    analysis = analyze([str(path)], Options(session_rules_in_writer=in_writer))
    stream = io.StringIO()
    write_json(analysis, stream)
    return stream.getvalue(), analysis


@pytest.mark.parametrize("path", [p for p in CAPTURES if p.exists()], ids=lambda p: p.name)
def test_the_same_document_and_findings(path, monkeypatch):
    monkeypatch.setattr(spool_module, "KEEP_IN_MEMORY", 0)  # every session spooled
    first, diagnosed = _written(path, in_writer=False)
    written, analysis = _written(path, in_writer=True)
    assert '"findings": [\n        {' in first  # some session shows findings
    assert written == first
    assert analysis.results[0].diagnosis is None
    assert [(f.code, f.session) for f in analysis.findings] == [
        (f.code, f.session) for f in diagnosed.findings
    ]


def test_each_spooled_session_read_back_once(monkeypatch):
    """Eager: the rules over the capture, the diagnosis and the writer read the sessions;
    in the writer: one reading fewer, exactly one per session."""
    monkeypatch.setattr(spool_module, "KEEP_IN_MEMORY", 0)
    path = CAPTURES[0]
    if not path.exists():
        pytest.skip("no lab captures")
    loads = []
    load = SessionSpool._load
    monkeypatch.setattr(SessionSpool, "_load", lambda self, n: loads.append(n) or load(self, n))
    _written(path, in_writer=False)
    eager, loads[:] = len(loads), []
    _document, analysis = _written(path, in_writer=True)
    sessions = len(analysis.results[0].sessions)
    assert sessions == 240
    assert len(loads) == eager - sessions
