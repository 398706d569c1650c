"""The hostile captures of scripts/bench/hostile.py, made small, each end with a warning
(or an anomaly) saying which limit was reached, and what could be read. Their cost at full
size is measured by that script (docs/performance.md), not asserted here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pcapsmtp.analysis import Options, analyze
from tests.captures import REPO_ROOT

_spec = importlib.util.spec_from_file_location("hostile", REPO_ROOT / "scripts/bench/hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def _analyze(folder: Path, case: str, scale: float):
    path = hostile.write_case(case, folder, scale)
    return analyze([str(path)], Options())


def test_two_thousand_recipients_keep_a_thousand_and_count_the_rest(tmp_path):
    analysis = _analyze(tmp_path, "rcpts", 0.002)
    transaction = analysis.sessions[0].transactions[0]
    assert len(transaction.rcpt_to) == 1000
    assert transaction.recipients == 2000
    expected = "transaction 1: +1,000 more recipients, all 250 (the first 1,000 kept)"
    assert analysis.sessions[0].limits() == [expected]
    assert any(expected in warning for warning in analysis.warnings)


def test_commands_past_the_cap_keep_the_end_of_the_session(tmp_path, monkeypatch):
    from pcapsmtp.smtp import session as session_module

    monkeypatch.setattr(session_module, "MAX_COMMANDS", 500)
    analysis = _analyze(tmp_path, "rcpts", 0.002)
    session = analysis.sessions[0]
    assert len(session.commands) == 500 + session_module.TAIL
    assert session.commands[-1].verb == "QUIT", "the end of the session is kept"
    assert session.left_out["commands"].count == 2003 - 500 - session_module.TAIL


def test_a_line_without_crlf_is_cut_at_the_line_limit(tmp_path):
    analysis = _analyze(tmp_path, "line", 0.01)
    codes = [anomaly.code for anomaly in analysis.sessions[0].anomalies]
    assert "line_too_long" in codes


def test_deep_mime_nesting_stops_at_the_depth_limit(tmp_path):
    analysis = _analyze(tmp_path, "mime", 0.01)
    message = analysis.sessions[0].transactions[0].message
    assert "multipart_too_deep" in message.anomalies


def test_a_large_message_is_measured_whole(tmp_path):
    analysis = _analyze(tmp_path, "message", 0.002)
    transaction = analysis.sessions[0].transactions[0]
    assert transaction.size > 1_000_000 and transaction.outcome == "delivered"


def test_a_gzip_bomb_stops_with_a_warning(tmp_path, monkeypatch):
    from pcapsmtp.capture import files

    monkeypatch.setattr(files, "MIN_INFLATED", 1 << 20)
    analysis = _analyze(tmp_path, "gzip", 0.0005)  # 5 MiB of zeros from a few KB
    warnings = analysis.results[0].info.warnings
    assert any("decompression bomb" in w for w in warnings), warnings
    assert len(analysis.sessions) == 1, "what came before is read"


def test_too_many_open_flows_end_the_oldest_with_a_warning(tmp_path, monkeypatch):
    from pcapsmtp.tcp import limits

    monkeypatch.setattr(limits, "MAX_FLOWS", 200)
    analysis = _analyze(tmp_path, "flows", 0.002)  # 400 connections, none closed
    assert len(analysis.sessions) == 400, "every connection is still shown"
    warnings = analysis.results[0].info.warnings
    assert any("ended early: more than 200 were open at once" in w for w in warnings), warnings


@pytest.mark.parametrize("case", ["holes"])
def test_permanent_holes_end(tmp_path, case):
    """Out-of-order segments after holes that never fill (the reassembly memcap and its
    warning are tcp/reassembly.py's, issue 19's other half): reading ends, the session is
    shown."""
    analysis = _analyze(tmp_path, case, 0.002)
    assert len(analysis.sessions) == 1


def test_a_message_bound_reached_is_shown_in_the_session_limits(tmp_path):
    """The message's own bounds (docs/limits.md "One message") reach the output: before, the
    nesting bound was an anomaly of the message's facts that no format wrote."""
    from pcapsmtp.report.sessions import session_dict

    analysis = _analyze(tmp_path, "mime", 0.01)
    session = analysis.sessions[0]
    expected = (
        "transaction 1: message: MIME parts nested deeper than 20 levels: each deeper "
        "multipart read as one part"
    )
    assert session.limits() == [expected]
    assert session_dict(session)["limits"] == [expected]
    assert any(expected in warning for warning in analysis.warnings)
