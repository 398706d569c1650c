"""Working vs failing, side by side: ``pcapsmtp diff GOOD BAD``.

``compare_captures`` picks the comparable session in each capture, aligns the two dialogues
step by step (``align``), puts the connection parameters side by side and says in one
paragraph where the failing session departs from the working one.

``same_session`` takes two captures of the same session taken at two points (the client side
and the server side), pairs the session across them despite NAT (``pairing``), re-reads both
captures for that one connection (``segments``), follows each side's segments to the other
side (``transit``) and says what a box between the two points did (``middlebox``): segments
that vanished, a RST only one side saw, rewritten options, masked banners and EHLO keywords.

Errors: ``CaptureError`` (an input cannot be read; exit 1) and ``DiffError`` (no session to
compare; a usage error, exit 2), both raised before anything is rendered.
"""

from __future__ import annotations

from pcapsmtp.analysis import CaptureResult, Options, analyze

from .compare import compare
from .model import COMPARE, SAME_SESSION, Diff, Side
from .parameters import capture_point
from .pick import DiffError, by_id, pick_comparable, pick_failing, session_findings

__all__ = [
    "COMPARE",
    "SAME_SESSION",
    "Diff",
    "DiffError",
    "compare_captures",
    "compare_results",
    "same_session",
]


def load(path: str, options: Options | None) -> CaptureResult:
    """One capture analysed on its own, so session ids are those ``analyze`` shows for it."""
    analysis = analyze([path], options)
    if analysis.errors:
        raise analysis.errors[0]
    return analysis.results[0]


def side(role: str, path: str, result: CaptureResult, session) -> Side:
    return Side(
        role=role,
        capture=path,
        session=session,
        findings=session_findings(result.findings, session),
        capture_point=capture_point(session),
        sessions_in_capture=len(result.sessions),
        copies=result.info.copy_frames,
    )


def compare_captures(
    good_path: str,
    bad_path: str,
    options: Options | None = None,
    good_session=None,
    bad_session=None,
) -> Diff:
    """Compare a working session of ``good_path`` with a failing one of ``bad_path``; the
    sessions are picked unless named (an id, or a pcapsmtp.selection.Selector)."""
    if good_path == bad_path == "-":
        raise DiffError("only one of the two captures can come from standard input")
    bad_result = load(bad_path, options)
    good_result = bad_result if good_path == bad_path else load(good_path, options)
    return compare_results(good_path, good_result, bad_path, bad_result, good_session, bad_session)


def compare_results(
    good_path: str,
    good_result: CaptureResult,
    bad_path: str,
    bad_result: CaptureResult,
    good_session=None,
    bad_session=None,
) -> Diff:
    """``compare_captures`` of two captures already analysed (each on its own, so the
    session ids are those ``analyze`` shows for it)."""
    bad_sessions, good_sessions = bad_result.sessions, good_result.sessions
    if bad_session is not None:
        bad = by_id(bad_sessions, bad_session, bad_path)
    else:
        bad = pick_failing(bad_sessions, bad_result.findings, bad_path)
    if good_session is not None:
        good = by_id(good_sessions, good_session, good_path)
    else:
        if not good_sessions:
            raise DiffError(f"{good_path} holds no SMTP session")
        good = pick_comparable(good_sessions, good_result.findings, bad, good_path)
    if good is bad:
        raise DiffError("the working and the failing session are the same session")
    return compare(
        side("good", good_path, good_result, good), side("bad", bad_path, bad_result, bad)
    )


def same_session(
    client_path: str,
    server_path: str,
    options: Options | None = None,
    client_session=None,
    server_session=None,
) -> Diff:
    """What happened between two capture points of one session. The sessions are named by
    id or by pcapsmtp.selection.Selector, as in ``compare_captures``."""
    from .points import compare_points

    if "-" in (client_path, server_path):
        raise DiffError("--same-session reads each capture twice: name files, not '-'")
    client_result = load(client_path, options)
    server_result = load(server_path, options)
    if client_session is not None:
        client_session = by_id(client_result.sessions, client_session, client_path).id
    if server_session is not None:
        server_session = by_id(server_result.sessions, server_session, server_path).id
    return compare_points(
        client_path, client_result, server_path, server_result, client_session, server_session
    )
