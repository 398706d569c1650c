"""pcapsmtp report: the document for a vendor ticket."""

from __future__ import annotations

import os
import sys
from datetime import UTC

import click

from pcapsmtp.cli.common import (
    SESSION,
    Command,
    FormatChoice,
    analysis_options,
    common_options,
    keylog_option,
    maillog_option,
    parallel_options,
    remember,
    report_errors,
)
from pcapsmtp.errors import PcapsmtpError

REPORT_FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".json": "json"}


@click.command("report", cls=Command)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    help="The report to write: Markdown (.md), self-contained HTML (.html) or JSON (.json); "
    "'-' for standard output (with --format).",
)
@click.option(
    "--format",
    type=FormatChoice(["md", "html", "json"]),
    expose_value=False,
    callback=remember("pcapsmtp.format"),
    help="md, html or json (default: from the name given to -o; 'markdown' is accepted).",
)
@click.option(
    "--baseline", metavar="GOOD", help="A capture of mail that went through, to compare with."
)
@click.option(
    "--session",
    "session_ids",
    type=SESSION,
    multiple=True,
    metavar="N|CLIENT:PORT",
    help="Show this session in detail (repeatable): its id from 'analyze', or its client's "
    "ADDRESS:PORT; default: the sessions that matter.",
)
@click.option(
    "--stream",
    "streams",
    type=click.IntRange(0),
    multiple=True,
    metavar="N",
    help="Show the session of this Wireshark tcp.stream in detail (repeatable).",
)
@click.option(
    "--redact-addresses",
    is_flag=True,
    help="Replace IP addresses, email addresses and mail domains with stable pseudonyms.",
)
@common_options
@maillog_option
@keylog_option
@parallel_options
def report_command(
    captures,
    output,
    baseline,
    session_ids,
    streams,
    redact_addresses,
    ports,
    tz,
    maillogs,
    keylog,
    jobs,
    scheduler,
) -> None:
    """The document for a vendor ticket: capture facts, parties, findings with evidence,
    session timeline, dialogues and diagrams. Never contains AUTH credentials.

    CAPTURE is one capture file, or the files (or folder) of one rotated capture set."""
    from pcapsmtp.selection import stream_selector
    from pcapsmtp.ticket import ReportOptions, make_report

    fmt = click.get_current_context().meta.get("pcapsmtp.format") or REPORT_FORMATS.get(
        os.path.splitext(output)[1].lower()
    )
    if fmt is None:
        raise click.UsageError(
            f"{output}: name the report .md, .html or .json, or give --format md|html|json"
        )
    if "-" in (*captures, baseline):
        raise click.UsageError("report reads its captures twice: give files, not '-'")
    options = ReportOptions(
        tz=tz or UTC,
        command_line=_command_line(click.get_current_context()),
        selectors=(*session_ids, *map(stream_selector, streams)),
        redact_addresses=redact_addresses,
    )
    report, errors = make_report(
        list(captures),
        analysis_options(ports, maillogs, tz, keylog, jobs, scheduler),
        options,
        baseline,
    )
    if errors:
        sys.exit(report_errors(errors))
    text = _render_report(report, fmt)
    if output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as e:
        raise PcapsmtpError(f"{output}: {e.strerror or e}") from None
    verdict = report["verdict"]
    click.echo(
        f"wrote {output}: {_count(verdict['sessions'], 'session')}; findings: "
        f"{_count(verdict['errors'], 'error')}, {_count(verdict['warnings'], 'warning')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _command_line(ctx: click.Context) -> list[str]:
    """The command as it took effect (options in a fixed order), for the report's colophon."""
    params = ctx.params
    words = ["pcapsmtp", "report", *params["captures"], "-o", params["output"]]
    if params["baseline"]:
        words += ["--baseline", params["baseline"]]
    for selector in params["session_ids"]:
        words += ["--session", selector.text]
    for stream in params["streams"]:
        words += ["--stream", str(stream)]
    if params["redact_addresses"]:
        words.append("--redact-addresses")
    for port in params["ports"]:
        words += ["--port", str(port)]
    if params["tz"] is not None and str(params["tz"]) != "UTC":
        words += ["--tz", str(params["tz"])]
    return words


def _render_report(report: dict, fmt: str) -> str:
    from pcapsmtp.report.formats import REPORT, renderer

    return renderer(REPORT, fmt)(report)
