"""pcapsmtp analyze: capture facts, sessions and findings, or live lines with --follow."""

from __future__ import annotations

import gc
import os
import sys

import click

from pcapsmtp.analysis import analyze
from pcapsmtp.cli.common import (
    Command,
    analysis_options,
    common_options,
    emit,
    format_option,
    input_paths,
    keylog_option,
    maillog_option,
    output_option,
    output_stream,
    parallel_options,
    report_errors,
    report_warnings,
    same_file,
)
from pcapsmtp.errors import PcapsmtpError


@click.command("analyze", cls=Command)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@format_option("text", "json", "md", "csv", "zeek", "zeek-json")
@output_option
@common_options
@maillog_option
@keylog_option
@parallel_options
@click.option(
    "--follow",
    is_flag=True,
    help="Live: read one capture ('-' from 'tcpdump -U -w -', or a file to its end) as it "
    "arrives; a line per session as it ends and per finding as it is known (--format "
    "json: JSON lines), the summary at the end of input or on Ctrl-C (docs/live.md).",
)
def analyze_command(captures, fmt, ports, tz, maillogs, keylog, jobs, scheduler, follow) -> None:
    """Capture facts, one row per SMTP session, and findings.

    CAPTURE is a file, '-' for standard input, or a folder of captures. The files of a
    rotated capture (tcpdump -G or -C, a dumpcap ring buffer: names that differ only in
    their trailing counter or date) are read as one capture, in time order, sessions that
    cross from one file to the next included.

    --format zeek (zeek-json: the same as JSON lines) prints Zeek's smtp.log, conn.log and
    files.log one after the other, each with its own header lines; with -o DIR they are
    written as DIR/smtp.log, DIR/conn.log and DIR/files.log (docs/zeek-logs.md)."""
    if follow:
        _follow(captures, fmt, tz, ports, maillogs, bool(keylog or scheduler or (jobs or 1) > 1))
        return
    options = analysis_options(ports, maillogs, tz, keylog, jobs, scheduler)
    options.session_rules_in_writer = fmt == "json"  # write_json runs them (jsondoc)
    analysis = analyze(list(captures), options)
    report_warnings(analysis)
    # What the analysis holds lives until its output is written: out of the collector's
    # sight meanwhile (gc.freeze), the collections while it is written walk only what the
    # writing makes, not the sessions held in memory (a full collection is about 0.05 s
    # on the 200 MB capture); unfrozen after, for callers that go on (the tests).
    gc.freeze()
    try:
        _output(analysis, fmt, tz)
    finally:
        gc.unfreeze()
    sys.exit(report_errors(analysis.errors))


def _output(analysis, fmt: str, tz) -> None:
    zeek_dir = fmt.startswith("zeek") and click.get_current_context().meta["pcapsmtp.output"]
    if analysis.results and zeek_dir and zeek_dir != "-":
        _write_zeek(analysis, zeek_dir, fmt == "zeek-json")
    elif analysis.results and fmt == "json":
        from pcapsmtp.report.jsondoc import write_json

        with output_stream() as stream:
            write_json(analysis, stream)
    elif analysis.results:
        emit(_render(analysis, fmt, tz))


def _follow(captures, fmt: str, tz, ports, maillogs, elsewhere: bool) -> None:
    """analyze --follow: lines as they come, flushed one by one (pcapsmtp.analysis.follow);
    exit 0 at the end of input and on Ctrl-C alike, since Ctrl-C reaches tcpdump too and
    either may end the input first; 130 on a second Ctrl-C, which stops at once."""
    from pcapsmtp.analysis.follow import follow
    from pcapsmtp.report import lines

    if len(captures) != 1 or fmt not in ("text", "json"):
        raise click.UsageError("--follow reads one capture ('-' or a file) as text or json")
    if elsewhere:
        raise click.UsageError(
            "--follow decrypts no TLS and reads in this process: no --keylog, --jobs or --scheduler"
        )
    options = analysis_options(ports, maillogs)
    options.progress = None
    with output_stream() as stream:

        def show(event) -> None:
            stream.write(lines.json_line(event) if fmt == "json" else lines.text_line(event, tz))
            stream.write("\n")
            stream.flush()

        try:
            analysis, interrupted = follow(captures[0], options, show)
            summary = (
                lines.json_summary(analysis, interrupted) + "\n"
                if fmt == "json"
                else lines.text_summary(analysis, interrupted, tz)
            )
            stream.write(summary)
            stream.flush()
        except KeyboardInterrupt:
            click.echo("pcapsmtp: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
    sys.exit(report_errors(analysis.errors))


def _write_zeek(analysis, folder: str, as_json: bool) -> None:
    """-o DIR with a Zeek format: DIR/smtp.log, conn.log, files.log (DIR made when missing)."""
    from pcapsmtp.report.zeeklogs import zeek_files

    files = zeek_files(analysis, as_json)
    paths = [os.path.join(folder, name) for name in files]
    inputs = input_paths(click.get_current_context().params)
    if any(same_file(path, source) for path in paths for source in inputs):
        raise click.UsageError(f"-o {folder}: its .log files would overwrite an input")
    try:
        os.makedirs(folder, exist_ok=True)
        for path, text in zip(paths, files.values(), strict=True):
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
    except OSError as e:
        raise PcapsmtpError(f"{folder}: {e.strerror or e}") from None


def _render(analysis, fmt: str, tz) -> str:
    from pcapsmtp.report.formats import ANALYSIS, renderer

    return renderer(ANALYSIS, fmt)(analysis, tz)
