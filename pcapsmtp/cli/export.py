"""pcapsmtp export: a trimmed (or annotated) capture to attach to a ticket."""

from __future__ import annotations

import os
import sys

import click

from pcapsmtp.analysis import Options, analyze
from pcapsmtp.cli.common import (
    Command,
    common_options,
    one_selector,
    report_errors,
    report_warnings,
    select_session,
    session_selector,
)
from pcapsmtp.errors import CaptureError


@click.command("export", cls=Command)
@click.argument("capture", metavar="CAPTURE")
@session_selector
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUT.pcap",
    help="The file to write: pcap, or pcapng when the name ends in .pcapng; '-' writes pcap "
    "(pcapng with --annotate) to standard output.",
)
@click.option(
    "--annotate",
    is_flag=True,
    help="Write pcapng whose evidence frames carry the findings as packet comments "
    "('pcapsmtp CODE: summary'; Wireshark: Expert Info, frame.comment contains \"pcapsmtp\"). "
    "Without --session or --stream: the whole capture, frame numbers unchanged.",
)
@click.option(
    "--keep-credentials",
    is_flag=True,
    help="Leave the AUTH credentials in the frames (by default they are overwritten with X, "
    "lengths and checksums kept); the export then must not be shared.",
)
@click.option("--redact", is_flag=True, hidden=True, help="The default; accepted as before.")
@common_options
def export_command(
    capture, session_id, stream, output, keep_credentials, redact, annotate, ports, tz
) -> None:
    """A trimmed capture: one session's frames and the ICMP errors about it, with their
    original timestamps, to attach to a ticket or open in Wireshark. AUTH credentials sent
    in clear are overwritten unless --keep-credentials is given. With --annotate, the
    findings ride along as packet comments on their evidence frames."""
    from pcapsmtp.export import export_capture, export_session
    from pcapsmtp.export.comments import annotation
    from pcapsmtp.export.dns import cited_lookups

    whole = annotate and session_id is None and stream is None
    selector = None if whole else one_selector(session_id, stream)
    if annotate and output != "-" and not output.lower().endswith(".pcapng"):
        raise click.UsageError(
            "--annotate writes pcapng (pcap has no packet comments): name the output .pcapng"
        )
    if redact and keep_credentials:
        raise click.UsageError("--redact and --keep-credentials contradict each other")
    if capture == "-":
        raise click.UsageError("export reads the capture twice: give a file, not '-'")
    if os.path.isdir(capture):
        raise CaptureError(capture, "is a folder; export reads one capture file")
    out = None
    if output == "-":
        out = click.get_binary_stream("stdout")
        if out.isatty():
            raise click.UsageError("-o -: standard output is a terminal; redirect it to a file")
    analysis = analyze([capture], Options(extra_ports=tuple(ports)))
    if analysis.errors:
        sys.exit(report_errors(analysis.errors))
    report_warnings(analysis, captures=True)
    session = None if whole else select_session(analysis.sessions, selector, capture)
    extra = annotation(analysis, capture, session) if annotate else {}
    overwrite = not keep_credentials
    if session is None:
        result = export_capture(
            capture, analysis.sessions, output, overwrite, tuple(ports), out, **extra
        )
    else:
        dns = analysis.results[0].dns
        extra["lookups"] = cited_lookups(session, analysis.findings, dns)
        result = export_session(capture, session, output, overwrite, tuple(ports), out, **extra)
    for warning in result.warnings:
        click.echo(f"pcapsmtp: warning: {warning}", err=True)
    if keep_credentials:
        click.echo(f"pcapsmtp: warning: {_kept_warning(result, session)}", err=True)
    click.echo(_export_summary(result, session), err=True)


def _kept_warning(result, session) -> str:
    if result.kept_lines:
        return (
            f"--keep-credentials: {result.kept_lines} AUTH line(s) are in the export in clear "
            "(base64 is not encryption); do not share it"
        )
    if session is None:
        return "--keep-credentials: no session sent AUTH credentials in clear; nothing kept"
    return "--keep-credentials: this session sent no AUTH credentials in clear; nothing kept"


def _export_summary(result, session) -> str:
    icmp = f" and {result.icmp_frames} ICMP" if result.icmp_frames else ""
    target = "standard output" if result.path == "-" else result.path
    if session is None:
        text = f"wrote {target} ({result.format}): all {result.frames} frames"
    else:
        dns = f" and {result.dns_frames} DNS" if result.dns_frames else ""
        text = (
            f"wrote {target} ({result.format}): {result.frames} frames{icmp}{dns} of session "
            f"{session.id} (tcp.stream {session.flow.stream}; tcp.stream 0 in the export)"
        )
        if result.dns_frames:
            text += "; the DNS frames are the lookups its DNS findings rest on"
    if result.annotated and result.comments:
        text += (
            f"; {result.comments} comment(s) on {result.commented_frames} frame(s) for "
            f"{result.annotated_findings} finding(s)"
        )
    elif result.annotated:
        text += "; no comment: no finding has an evidence frame among them"
    if result.redacted_lines:
        frames = ", ".join(map(str, result.redacted_frames))
        echoes = (
            f" and {result.redacted_echoes} repeat(s) of them in later lines"
            if result.redacted_echoes
            else ""
        )
        text += f"; {result.redacted_lines} AUTH line(s){echoes} overwritten in frame(s) {frames}"
    if result.encrypted_secrets:
        text += f"; {result.encrypted_secrets} AUTH line(s) were inside TLS (left encrypted)"
    return text
