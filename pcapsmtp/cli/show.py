"""pcapsmtp show: one session's dialogue as a timeline."""

from __future__ import annotations

import sys

import click

from pcapsmtp.analysis import analyze
from pcapsmtp.cli.common import (
    Command,
    analysis_options,
    common_options,
    emit,
    format_option,
    keylog_option,
    maillog_option,
    one_selector,
    output_option,
    report_errors,
    report_warnings,
    select_session,
    session_selector,
)


@click.command("show", cls=Command)
@click.argument("capture", metavar="CAPTURE")
@session_selector
@format_option("text", "json", "md")
@output_option
@common_options
@maillog_option
@keylog_option
def show_command(capture, session_id, stream, fmt, ports, tz, maillogs, keylog) -> None:
    """One session's dialogue as a timeline, TCP events interleaved where they happened."""
    selector = one_selector(session_id, stream)
    analysis = analyze([capture], analysis_options(ports, maillogs, tz, keylog))
    if analysis.errors:
        sys.exit(report_errors(analysis.errors))
    report_warnings(analysis, captures=True)
    session = select_session(analysis.sessions, selector, capture)
    if fmt == "json":
        import json

        from pcapsmtp.report.jsondoc import session_document
        from pcapsmtp.report.safe import json_text
        from pcapsmtp.report.schema import SCHEMA_VERSION

        document = {"schema_version": SCHEMA_VERSION} | session_document(analysis, session)
        emit(json_text(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
        return
    from pcapsmtp.report.text import format_show

    findings = analysis.findings_by_session().get(session.key, [])
    text = format_show(session, tz, None if fmt == "md" else findings)
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import format_session_log

        text += "\n" + format_session_log(analysis.maillog, session, tz)
    if fmt == "md":
        text = _show_markdown(capture, session, text, findings)
    emit(text)


def _show_markdown(capture: str, session, timeline: str, findings: list) -> str:
    """show as Markdown: the timeline in a code block no wire line can close, then the
    session's findings as analyze --format md lists them."""
    from pcapsmtp.report.findings import findings_markdown
    from pcapsmtp.report.safe import markdown, markdown_block

    lines = [f"# Session {session.id} of {markdown(capture)}", ""]
    lines += markdown_block(timeline.rstrip("\n").split("\n"))
    lines += ["", findings_markdown(findings, sessions=[session])]
    return "\n".join(lines)
