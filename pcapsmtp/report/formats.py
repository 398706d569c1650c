"""One table per command: each output format and the function that renders it.

The CLI looks a format up here instead of testing format strings itself; a new format is
a renderer and a line in its command's table. The renderers are named, not imported: a
command imports only the one it writes with (the HTML's jinja2 only for HTML), so start-up
stays short. Every renderer of a table takes the same arguments: ``(analysis, tz)``,
``(diff, tz)``, ``(report)`` (the report carries its zone); JSON and CSV are in UTC
whatever ``tz`` is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

ANALYSIS = {
    "text": "pcapsmtp.report.text:format_analysis",
    "json": "pcapsmtp.report.jsondoc:render_json",
    "md": "pcapsmtp.report.tables:render_markdown",
    "csv": "pcapsmtp.report.tables:render_csv",
    "zeek": "pcapsmtp.report.zeeklogs:render_zeek",
    "zeek-json": "pcapsmtp.report.zeeklogs:render_zeek_json",
}
"""``analyze``: (Analysis, tzinfo) -> text. The Zeek formats print smtp.log then conn.log;
with ``-o DIR`` the command writes them as files (pcapsmtp.report.zeeklogs.zeek_files)."""

DIFF = {
    "text": "pcapsmtp.report.difftext:format_diff",
    "md": "pcapsmtp.report.difftext:render_diff_markdown",
    "json": "pcapsmtp.report.diffdoc:render_diff_json",
}
"""``diff``: (Diff, tzinfo) -> text."""

REPORT = {
    "md": "pcapsmtp.report.markdown_report:render_report_markdown",
    "html": "pcapsmtp.report.html:render_report_html",
    "json": "pcapsmtp.report.markdown_report:render_report_json",
}
"""``report``: (report.model.Report) -> text."""


def renderer(table: dict[str, str], fmt: str) -> Callable[..., str]:
    """The function of ``table`` that writes ``fmt``, imported now."""
    module, name = table[fmt].split(":")
    return getattr(importlib.import_module(module), name)
