"""Findings as packet comments (``--annotate``): one comment per finding on each of its
evidence frames, and the capture's comment with the verdict in counts."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from pcapsmtp import __version__
from pcapsmtp.analysis import Analysis
from pcapsmtp.capture import pcapng_copy
from pcapsmtp.diagnose.model import Finding
from pcapsmtp.report.safe import terminal
from pcapsmtp.smtp.model import Session

MAX_COMMENT_BYTES = 4000
"""A comment is one line in Wireshark's packet list and Expert Info: a summary is a line,
and a hostile one stays far below the option's 65535-byte bound."""


def finding_comment(finding: Finding) -> str:
    """``pcapsmtp <code>: <summary>``: the summary with its wire text made inert (control
    characters and bidi overrides shown as escapes, bytes that were not UTF-8 as \\xNN), so
    the comment is valid UTF-8 with no control byte; cut at a character boundary."""
    text = terminal(f"pcapsmtp {finding.code}: {finding.summary}")
    data = text.encode("utf-8", "backslashreplace")
    if len(data) > MAX_COMMENT_BYTES:
        data = data[: MAX_COMMENT_BYTES - 3] + b"..."
    return data.decode("utf-8", "ignore")


def _comments(findings: Sequence[Finding]) -> dict[int, list[str]]:
    """Frame -> one comment per finding that names it as evidence, in the findings' order."""
    by_frame: dict[int, list[str]] = {}
    for finding in findings:
        comment = finding_comment(finding)
        for frame in dict.fromkeys(finding.frames):
            by_frame.setdefault(frame, []).append(comment)
    return by_frame


def section_comment(source: str, findings: Sequence[Finding], sessions: int, scope: str) -> str:
    """The capture's comment: the tool, what was exported, and the verdict in counts."""
    counts = {severity: 0 for severity in ("error", "warning", "info")}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    codes = ", ".join(dict.fromkeys(f.code for f in findings if f.severity == "error"))
    verdict = (
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f" (errors: {codes})" if codes else "")
    )
    name = terminal(os.path.basename(source))
    return (
        f"pcapsmtp {__version__}: {scope} of {name}; {sessions} SMTP session(s); findings: "
        f"{verdict}. Each evidence frame carries one comment per finding "
        '(display filter: frame.comment contains "pcapsmtp").'
    )


def annotation(analysis: Analysis, capture: str, session: Session | None) -> dict:
    """What ``--annotate`` comments on: every finding of the capture, or a session's own and
    the capture-wide ones; and the capture's comment. Keyword arguments of the exports."""
    findings = [
        f
        for f in analysis.findings
        if session is None or f.session is None or (f.capture, f.session) == session.key
    ]
    if session is None:
        scope = "annotated copy"
    else:
        scope = f"session {session.id} (tcp.stream {session.flow.stream})"
    note = section_comment(capture, findings, len(analysis.sessions), scope)
    return {"annotate": findings, "note": note}


EARLIER = re.compile(rb"pcapsmtp [a-z0-9-]+: ")
"""How a comment this export wrote begins: an annotated copy annotated again gets the new
analysis's comments, not both."""


def _earlier_annotation(code: int, value: bytes) -> bool:
    return code == pcapng_copy.OPT_COMMENT and EARLIER.match(value) is not None
