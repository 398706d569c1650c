"""Command line: options -> analyze() -> render(). Reports unreadable inputs once; no logic."""

from __future__ import annotations

import sys

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
def analyze_command(captures, fmt, ports, tz) -> None:
    """Capture facts, one row per SMTP session, and findings."""
    analysis = analyze(list(captures), Options(extra_ports=tuple(ports), progress=_progress()))
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
def show_command(capture, session_id, stream, fmt, ports, tz) -> None:
    """One session's dialogue as a timeline, TCP events interleaved where they happened."""
    if (session_id is None) == (stream is None):
        raise click.UsageError("give exactly one of --session N or --stream N")
    analysis = analyze([capture], Options(extra_ports=tuple(ports), progress=_progress()))
    if analysis.errors:
        sys.exit(_report_errors(analysis))
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

        sys.stdout.write(json.dumps(session_dict(chosen[0]), indent=2, ensure_ascii=False) + "\n")
    else:
        from pcapsmtp.report.text import format_show

        sys.stdout.write(format_show(chosen[0], tz))
