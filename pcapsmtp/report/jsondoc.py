"""The JSON document of DESIGN.md's contract."""

from __future__ import annotations

import json
from datetime import UTC, tzinfo
from typing import TextIO

from pcapsmtp import __version__
from pcapsmtp.analysis import Analysis
from pcapsmtp.report.captures import capture_dict
from pcapsmtp.report.fastjson import LazyList, encode, encode_items
from pcapsmtp.report.findings import finding_dict
from pcapsmtp.report.safe import json_text
from pcapsmtp.report.schema import SCHEMA_VERSION
from pcapsmtp.report.sessions import session_dict


class _Sessions(list):
    """The sessions' dicts, made one at a time as the encoder reaches them: a capture of
    200,000 sessions never holds 200,000 session dicts at once (json's pure-Python encoder,
    used with ``indent``, iterates a list; ``len`` answers for the empty check)."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis

    def __len__(self) -> int:
        return len(self.analysis.sessions)

    def __bool__(self) -> bool:
        return bool(self.analysis.sessions)

    def __iter__(self):
        for session, found in self.analysis.sessions_and_findings():
            document = session_dict(session)
            if found:  # in place of session_dict's empty list, without copying the dict
                document["findings"] = [finding_dict(f) for f in found]
            yield document


class _Findings(list):
    """The findings' dicts, made one at a time as the encoder reaches them (as _Sessions:
    a flood of 200,000 connections has 200,000 findings); read from the analysis then,
    after the sessions (``Analysis.sessions_and_findings``)."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis
        self._findings: list | None = None

    @property
    def findings(self) -> list:
        if self._findings is None:
            self._findings = self.analysis.findings
        return self._findings

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __iter__(self):
        return map(finding_dict, self.findings)


def analysis_document(analysis: Analysis, lazy: bool = False) -> dict:
    """The JSON document; ``lazy``: its sessions made while it is encoded (write_json). The
    findings are read after the sessions, whose writing may run the session rules
    (``Analysis.sessions_and_findings``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pcapsmtp", "version": __version__},
        "captures": [
            capture_dict(result.info)
            | {"other_connections": result.other_connections, "smtp_sessions": len(result.sessions)}
            for result in analysis.results
        ],
        "errors": [{"file": e.source, "reason": e.reason} for e in analysis.errors],
        "sessions": _Sessions(analysis) if lazy else list(_Sessions(analysis)),
        "findings": _Findings(analysis) if lazy else [finding_dict(f) for f in analysis.findings],
    } | _capture_wide(analysis, lazy)


def session_document(analysis: Analysis, session) -> dict:
    """One session for ``show --format json``: its dict with its findings (and its mail-log
    links when logs were given)."""
    findings = analysis.findings_by_session().get(session.key, [])
    document = session_dict(session) | {"findings": [finding_dict(f) for f in findings]}
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import session_links

        document["maillog"] = session_links(analysis.maillog, session)
    return document


def _capture_wide(analysis: Analysis, lazy: bool) -> dict:
    """Keys added after the contract's: per destination and client; the mail log."""
    from pcapsmtp.report.overview import overview_document

    return overview_document(analysis, lazy)


def render_json(analysis: Analysis, tz: tzinfo = UTC) -> str:
    """The analysis document; its times are UTC whatever ``tz`` is (DESIGN.md)."""
    return json_text(json.dumps(analysis_document(analysis), indent=2, ensure_ascii=False)) + "\n"


def write_json(analysis: Analysis, stream: TextIO) -> None:
    """``render_json``, written session by session: the document of a large capture (about
    5 KB a session) is never whole in memory, nor are its sessions' dicts.

    The values are encoded by orjson (pcapsmtp.report.fastjson): the same bytes as the
    standard library's encoder at a tenth of its time."""
    document = analysis_document(analysis, lazy=True)
    stream.write("{")
    for number, (key, value) in enumerate(document.items()):
        stream.write(("," if number else "") + "\n  " + encode(key) + ": ")
        if isinstance(value, _Sessions | _Findings | LazyList):
            _write_list(value, stream)
        else:
            stream.write(json_text(encode(value, depth=1)))
    stream.write("\n}\n")


def _write_list(items: _Sessions | _Findings | LazyList, stream: TextIO) -> None:
    if not items:
        stream.write("[]")
        return
    separator = "[\n    "
    for text in encode_items(items, depth=2):
        stream.write(separator + json_text(text))
        separator = ",\n    "
    stream.write("\n  ]")
