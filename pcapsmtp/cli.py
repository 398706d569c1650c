"""Command line: options -> analyze() -> render(). Reports unreadable inputs once; no logic."""

from __future__ import annotations

import os
import sys
from datetime import UTC

import click

from pcapsmtp import __version__
from pcapsmtp.analysis import Options, analyze


def _zone(_ctx, _param, value):
    from pcapsmtp.report.times import zone

    try:
        return zone(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _report_errors(analysis) -> int:
    for error in analysis.errors:
        click.echo(f"pcapsmtp: error: {error}", err=True)
    return 1 if analysis.errors else 0


def _quiet(ctx, _param, value) -> None:
    if value:
        ctx.meta["pcapsmtp.quiet"] = True


def _progress():
    """A progress line on stderr while captures are read: only on a terminal, not --quiet."""
    if click.get_current_context().meta.get("pcapsmtp.quiet") or not sys.stderr.isatty():
        return None
    from pcapsmtp.progress import Progress

    return Progress(sys.stderr)


def common_options(function):
    """--port, --tz and --quiet, shared by every command that reads captures."""
    function = click.option(
        "--quiet",
        "-q",
        is_flag=True,
        expose_value=False,
        callback=_quiet,
        help="No progress line on stderr (shown only on a terminal, for long reads).",
    )(function)
    function = click.option(
        "--tz", callback=_zone, metavar="ZONE", help="Show times in this IANA zone (default UTC)."
    )(function)
    return click.option(
        "--port",
        "ports",
        type=click.IntRange(1, 65535),
        multiple=True,
        metavar="N",
        help="Another port that carries SMTP (repeatable); 25, 465 and 587 always do.",
    )(function)


def keylog_option(function):
    """--keylog, for every command that analyses captures."""
    return click.option(
        "--keylog",
        type=click.Path(exists=True, dir_okay=False, readable=True),
        metavar="FILE",
        help="TLS key log (SSLKEYLOGFILE format) to decrypt STARTTLS and port-465 sessions "
        "with tshark; keys embedded in a pcapng are used without it.",
    )(function)


def maillog_option(function):
    """--maillog FILE (repeatable): mail-server logs linked to the sessions."""
    return click.option(
        "--maillog",
        "maillogs",
        multiple=True,
        metavar="FILE",
        help="A mail server's log (Postfix, Exim, Sendmail, qmail; plain or .gz) to link to "
        "the sessions by queue id, else by address and time (repeatable). Times without a "
        "zone are taken in --tz.",
    )(function)


def parallel_options(function):
    """--jobs and --scheduler, for the commands that read rotated capture sets."""
    function = click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="Run the per-file tasks on the Dask cluster whose scheduler is at ADDRESS "
        "(tcp://HOST:PORT); its workers need pcapsmtp and the files at the same paths.",
    )(function)
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(1, 1024),
        metavar="N",
        help="Worker processes for several files (default: one per core, on machines of more "
        "than two cores when the files are large enough to repay them); 1 reads everything "
        "in this process.",
    )(function)


def _options(ports, maillogs=(), tz=None, keylog=None, jobs=None, scheduler=None) -> Options:
    return Options(
        extra_ports=tuple(ports),
        maillogs=tuple(maillogs),
        log_zone=tz,
        progress=_progress(),
        keylog=keylog,
        jobs=jobs,
        scheduler=scheduler,
    )


def _report_warnings(analysis) -> None:
    for warning in analysis.warnings:
        click.echo(f"pcapsmtp: warning: {warning}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcapsmtp")
def main() -> None:
    """Why does this mail not get through? Reads pcap/pcapng captures (plain or
    compressed, or '-' for standard input) and explains the SMTP sessions in them."""


@main.command("analyze")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "md", "csv"]),
    default="text",
    show_default=True,
)
@common_options
@maillog_option
@keylog_option
@parallel_options
def analyze_command(captures, fmt, ports, tz, maillogs, keylog, jobs, scheduler) -> None:
    """Capture facts, one row per SMTP session, and findings.

    CAPTURE is a file, '-' for standard input, or a folder of captures. The files of a
    rotated capture (tcpdump -G or -C, a dumpcap ring buffer: names that differ only in
    their trailing counter or date) are read as one capture, in time order, sessions that
    cross from one file to the next included."""
    analysis = analyze(list(captures), _options(ports, maillogs, tz, keylog, jobs, scheduler))
    _report_warnings(analysis)
    if analysis.results and fmt == "json":
        from pcapsmtp.report.jsondoc import write_json

        write_json(analysis, sys.stdout)
    elif analysis.results:
        sys.stdout.write(_render(analysis, fmt, tz))
    sys.exit(_report_errors(analysis))


def _render(analysis, fmt: str, tz) -> str:
    if fmt == "json":
        from pcapsmtp.report.jsondoc import render_json

        return render_json(analysis)
    if fmt == "md":
        from pcapsmtp.report.tables import render_markdown

        return render_markdown(analysis, tz)
    if fmt == "csv":
        from pcapsmtp.report.tables import render_csv

        return render_csv(analysis)
    from pcapsmtp.report.text import format_analysis

    return format_analysis(analysis, tz)


@main.command("show")
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--session", "session_id", type=int, metavar="N", help="The session id from 'analyze'."
)
@click.option("--stream", type=int, metavar="N", help="The Wireshark tcp.stream number instead.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@common_options
@maillog_option
@keylog_option
def show_command(capture, session_id, stream, fmt, ports, tz, maillogs, keylog) -> None:
    """One session's dialogue as a timeline, TCP events interleaved where they happened."""
    if (session_id is None) == (stream is None):
        raise click.UsageError("give exactly one of --session N or --stream N")
    analysis = analyze([capture], _options(ports, maillogs, tz, keylog))
    if analysis.errors:
        sys.exit(_report_errors(analysis))
    _report_warnings(analysis)
    sessions = analysis.sessions
    chosen = [
        s for s in sessions if (s.id == session_id if stream is None else s.flow.stream == stream)
    ]
    if not chosen:
        ids = ", ".join(f"{s.id} (tcp.stream {s.flow.stream})" for s in sessions) or "none"
        what = f"session {session_id}" if stream is None else f"tcp.stream {stream}"
        raise click.UsageError(f"{capture} has no SMTP {what}; its sessions: {ids}")
    if fmt == "json":
        import json

        from pcapsmtp.report.sessions import session_dict

        document = session_dict(chosen[0])
        if analysis.maillog is not None:
            from pcapsmtp.report.maillog import session_links

            document["maillog"] = session_links(analysis.maillog, chosen[0].id)
        from pcapsmtp.report.safe import json_text

        sys.stdout.write(json_text(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
    else:
        from pcapsmtp.report.text import format_show

        sys.stdout.write(format_show(chosen[0], tz))
        if analysis.maillog is not None:
            from pcapsmtp.report.maillog import format_session_log

            sys.stdout.write("\n" + format_session_log(analysis.maillog, chosen[0], tz))


@main.command("export")
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--session", "session_id", type=int, required=True, metavar="N", help="The session id."
)
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUT.pcap",
    help="The file to write: pcap, or pcapng when the name ends in .pcapng.",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Overwrite the AUTH credentials in the frames (same length, checksums updated).",
)
@common_options
def export_command(capture, session_id, output, redact, ports, tz) -> None:
    """A trimmed capture: one session's frames and the ICMP errors about it, with their
    original timestamps, to attach to a ticket or open in Wireshark."""
    from pcapsmtp.export import ExportError, export_session

    if capture == "-":
        raise click.UsageError("export reads the capture twice: give a file, not '-'")
    analysis = analyze([capture], Options(extra_ports=tuple(ports)))
    if analysis.errors:
        sys.exit(_report_errors(analysis))
    session = next((s for s in analysis.sessions if s.id == session_id), None)
    if session is None:
        ids = ", ".join(str(s.id) for s in analysis.sessions) or "none"
        raise click.UsageError(f"{capture} has no SMTP session {session_id}; its sessions: {ids}")
    try:
        result = export_session(capture, session, output, redact=redact, ports=tuple(ports))
    except ExportError as error:
        click.echo(f"pcapsmtp: error: {error}", err=True)
        sys.exit(1)
    for warning in result.warnings:
        click.echo(f"pcapsmtp: warning: {warning}", err=True)
    click.echo(_export_summary(result, session))


def _export_summary(result, session) -> str:
    icmp = f" and {result.icmp_frames} ICMP" if result.icmp_frames else ""
    text = (
        f"wrote {result.path} ({result.format}): {result.frames} frames{icmp} of session "
        f"{session.id} (tcp.stream {session.flow.stream}; tcp.stream 0 in the export)"
    )
    if result.redacted_lines:
        frames = ", ".join(map(str, result.redacted_frames))
        text += f"; {result.redacted_lines} AUTH line(s) overwritten in frame(s) {frames}"
    if result.encrypted_secrets:
        text += f"; {result.encrypted_secrets} AUTH line(s) were inside TLS (left encrypted)"
    return text


REPORT_FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".json": "json"}


@main.command("report")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    help="The report to write: Markdown (.md), self-contained HTML (.html) or JSON (.json).",
)
@click.option(
    "--baseline", metavar="GOOD", help="A capture of mail that went through, to compare with."
)
@click.option(
    "--session",
    "session_ids",
    type=int,
    multiple=True,
    metavar="N",
    help="Show this session in detail (repeatable); default: the sessions that matter.",
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
    from pcapsmtp.report.document import ReportOptions, UnknownSession, make_report

    fmt = REPORT_FORMATS.get(os.path.splitext(output)[1].lower())
    if fmt is None:
        raise click.UsageError(f"{output}: name the report .md, .html or .json (the format)")
    if "-" in (*captures, baseline):
        raise click.UsageError("report reads its captures twice: give files, not '-'")
    options = ReportOptions(
        tz=tz or UTC,
        command_line=_command_line(click.get_current_context()),
        sessions=tuple(session_ids),
        redact_addresses=redact_addresses,
    )
    try:
        report, errors = make_report(
            list(captures),
            _options(ports, maillogs, tz, keylog, jobs, scheduler),
            options,
            baseline,
        )
    except UnknownSession as error:
        raise click.UsageError(str(error)) from None
    if errors:
        for error in errors:
            click.echo(f"pcapsmtp: error: {error}", err=True)
        sys.exit(1)
    text = _render_report(report, fmt)
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as e:
        click.echo(f"pcapsmtp: error: {output}: {e.strerror or e}", err=True)
        sys.exit(1)
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
    for session_id in params["session_ids"]:
        words += ["--session", str(session_id)]
    if params["redact_addresses"]:
        words.append("--redact-addresses")
    for port in params["ports"]:
        words += ["--port", str(port)]
    if params["tz"] is not None and str(params["tz"]) != "UTC":
        words += ["--tz", str(params["tz"])]
    return words


def _render_report(report: dict, fmt: str) -> str:
    if fmt == "json":
        from pcapsmtp.report.markdown_report import render_report_json

        return render_report_json(report)
    if fmt == "md":
        from pcapsmtp.report.markdown_report import render_report_markdown

        return render_report_markdown(report)
    from pcapsmtp.report.html import render_report_html

    return render_report_html(report)


@main.command("diff")
@click.argument("good", metavar="GOOD")
@click.argument("bad", metavar="BAD")
@click.option(
    "--good-session",
    type=int,
    metavar="N",
    help="Session N of GOOD (the first capture) instead of the one picked.",
)
@click.option(
    "--bad-session",
    type=int,
    metavar="N",
    help="Session N of BAD (the second capture) instead of the one picked.",
)
@click.option(
    "--same-session",
    is_flag=True,
    help="GOOD and BAD are the client side and the server side of the same session: "
    "say what a box between the two points did.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True
)
@common_options
@keylog_option
def diff_command(
    good, bad, good_session, bad_session, same_session, fmt, ports, tz, keylog
) -> None:
    """Working vs failing session side by side (GOOD BAD), or one session seen at two
    points (CLIENT_SIDE SERVER_SIDE --same-session)."""
    from pcapsmtp.diff import DiffError, compare_captures
    from pcapsmtp.diff import same_session as compare_points
    from pcapsmtp.errors import CaptureError

    options = _options(ports, keylog=keylog)
    run = compare_points if same_session else compare_captures
    try:
        diff = run(good, bad, options, good_session, bad_session)
    except CaptureError as error:
        click.echo(f"pcapsmtp: error: {error}", err=True)
        sys.exit(1)
    except DiffError as error:
        raise click.UsageError(str(error)) from None
    sys.stdout.write(_render_diff(diff, fmt, tz))


def _render_diff(diff, fmt: str, tz) -> str:
    if fmt == "json":
        from pcapsmtp.report.diffdoc import render_diff_json

        return render_diff_json(diff)
    from pcapsmtp.report.difftext import format_diff, render_diff_markdown

    return render_diff_markdown(diff, tz) if fmt == "md" else format_diff(diff, tz)
