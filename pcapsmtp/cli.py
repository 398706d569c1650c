"""Command line: options -> analyze() -> render(). Shows every error once (pcapsmtp.errors:
caught by the commands' class, ``Command.invoke``); no logic."""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import UTC

import click

from pcapsmtp import __version__
from pcapsmtp.analysis import Options, analyze
from pcapsmtp.analysis.extras import CLUSTER, available, needs
from pcapsmtp.errors import CaptureError, PcapsmtpError


def _zone(_ctx, _param, value):
    from pcapsmtp.report.times import zone

    try:
        return zone(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _report_errors(errors: list[PcapsmtpError]) -> int:
    """One line per error on stderr; the exit status they call for."""
    for error in errors:
        click.echo(f"pcapsmtp: error: {error}", err=True)
    return 1 if errors else 0


class Command(click.Command):
    """Every command: the one place where a PcapsmtpError raised while it runs becomes what
    the user reads (pcapsmtp.errors): a usage error (exit 2) or one line (exit 1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PcapsmtpError as error:
            if error.usage:
                raise click.UsageError(str(error), ctx) from None
            sys.exit(_report_errors([error]))


class Group(click.Group):
    command_class = Command


def _quiet(ctx, _param, value) -> None:
    if value:
        ctx.meta["pcapsmtp.quiet"] = True


def _progress():
    """A progress line on stderr while captures are read: only on a terminal, not --quiet."""
    if click.get_current_context().meta.get("pcapsmtp.quiet") or not sys.stderr.isatty():
        return None
    from pcapsmtp.analysis.progress import Progress

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
        "--tz",
        callback=_zone,
        metavar="ZONE",
        help="Show times in this IANA zone, or 'local' (the TZ environment variable, else the "
        "system's zone, as tshark shows local time); default UTC with its offset.",
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
        "with tshark; keys embedded in a pcapng are used without it. Needs the tls extra.",
    )(function)


def maillog_option(function):
    """--maillog FILE (repeatable): mail-server logs linked to the sessions."""
    return click.option(
        "--maillog",
        "maillogs",
        multiple=True,
        metavar="FILE",
        help="A mail server's log (Postfix, Exim, Sendmail, qmail; plain or .gz) to link to "
        "the sessions by queue id, else by address and time (repeatable).",
    )(maillog_zone_option(function))


# -- conventions shared by every command: --format names, -o FILE, --maillog-tz -------------

FORMAT_ALIASES = {"markdown": "md"}


class FormatChoice(click.Choice):
    """--format: one vocabulary across commands (text, json, md, csv, html where each makes
    sense), ``markdown`` accepted for md."""

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            value = FORMAT_ALIASES.get(value.lower(), value.lower())
        return super().convert(value, param, ctx)


def format_option(*choices: str):
    return click.option(
        "--format",
        "fmt",
        type=FormatChoice(list(choices)),
        default="text",
        show_default=True,
        help="Output format ('markdown' is accepted for md).",
    )


def _remember(key: str):
    def callback(ctx, _param, value):
        ctx.meta[key] = value
        return value

    return callback


def output_option(function):
    """-o/--output FILE for the commands that print: the output goes to FILE ('-' standard
    output, the default)."""
    return click.option(
        "-o",
        "--output",
        "output",
        metavar="FILE",
        default="-",
        expose_value=False,
        callback=_remember("pcapsmtp.output"),
        help="Write the output to FILE instead of standard output ('-').",
    )(function)


def maillog_zone_option(function):
    """--maillog-tz: the zone of the log's times that carry none, apart from the display zone."""

    def callback(ctx, param, value):
        ctx.meta["pcapsmtp.maillog_tz"] = _zone(ctx, param, value) if value else None

    return click.option(
        "--maillog-tz",
        metavar="ZONE",
        expose_value=False,
        callback=callback,
        help="The zone of mail-log times that carry none (syslog's 'Nov 23 06:44:20'): an "
        "IANA name or 'local' (TZ, else the system's zone); default UTC. Not --tz, which "
        "only chooses how times are shown.",
    )(function)


@contextlib.contextmanager
def _output():
    """Where the command's output goes: standard output, or the -o file (opened only once
    there is something to write; an unwritable one is a one-line error, exit 1)."""
    ctx = click.get_current_context()
    target = ctx.meta.get("pcapsmtp.output") or "-"
    if target == "-":
        yield sys.stdout
        return
    if any(_same_file(target, source) for source in _inputs(ctx.params)):
        raise click.UsageError(f"-o {target} is one of the inputs: name another file")
    try:
        stream = open(target, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise PcapsmtpError(f"{target}: {e.strerror or e}") from None
    with stream:
        yield stream


def _inputs(params: dict) -> list[str]:
    found = list(params.get("captures") or ()) + list(params.get("maillogs") or ())
    found += [params[k] for k in ("capture", "good", "bad", "keylog") if params.get(k)]
    return found


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _emit(text: str) -> None:
    with _output() as stream:
        stream.write(text)


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
        "in this process. More than 1 needs the cluster extra (Dask).",
    )(function)


def _options(ports, maillogs=(), tz=None, keylog=None, jobs=None, scheduler=None) -> Options:
    if (scheduler or (jobs or 1) > 1) and not available(CLUSTER):
        option = "--scheduler" if scheduler else "--jobs"
        raise PcapsmtpError(needs(option, CLUSTER))
    return Options(
        extra_ports=tuple(ports),
        maillogs=tuple(maillogs),
        log_zone=click.get_current_context().meta.get("pcapsmtp.maillog_tz"),
        progress=_progress(),
        keylog=keylog,
        jobs=jobs,
        scheduler=scheduler,
    )


def _report_warnings(analysis, captures: bool = False) -> None:
    """The analysis's warnings on stderr; ``captures``: each capture's own too (a file cut
    short, a bound reached), for commands whose output has no capture section to hold them."""
    for warning in analysis.warnings:
        click.echo(f"pcapsmtp: warning: {warning}", err=True)
    for result in analysis.results if captures else []:
        for warning in result.info.warnings:
            click.echo(f"pcapsmtp: warning: {result.info.file}: {warning}", err=True)


class SessionParam(click.ParamType):
    """``--session N`` or ``--session CLIENT:PORT`` ([v6]:PORT): pcapsmtp.selection."""

    name = "session"

    def convert(self, value, param, ctx):
        from pcapsmtp.selection import Selector, parse_session

        if isinstance(value, Selector):
            return value
        try:
            return parse_session(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


SESSION = SessionParam()
SESSION_HELP = "The session: its id from 'analyze', or its client's ADDRESS:PORT ([v6]:PORT)."
STREAM_HELP = "The session by Wireshark's tcp.stream number instead."


def _one_selector(session, stream):
    """--session or --stream, exactly one of them, as a pcapsmtp.selection.Selector."""
    from pcapsmtp.selection import stream_selector

    if (session is None) == (stream is None):
        raise click.UsageError("give exactly one of --session and --stream")
    return session if stream is None else stream_selector(stream)


def _select(sessions, selector, where: str):
    """The session the selector names; a usage error naming the sessions there are if none
    (SelectionError)."""
    from pcapsmtp.selection import select

    return select(sessions, selector, where)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcapsmtp")
def main() -> None:
    """Why does this mail not get through? Reads pcap/pcapng captures (plain or
    compressed, or '-' for standard input) and explains the SMTP sessions in them."""


@main.command("analyze")
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
    analysis = analyze(list(captures), _options(ports, maillogs, tz, keylog, jobs, scheduler))
    _report_warnings(analysis)
    zeek_dir = fmt.startswith("zeek") and click.get_current_context().meta["pcapsmtp.output"]
    if analysis.results and zeek_dir and zeek_dir != "-":
        _write_zeek(analysis, zeek_dir, fmt == "zeek-json")
    elif analysis.results and fmt == "json":
        from pcapsmtp.report.jsondoc import write_json

        with _output() as stream:
            write_json(analysis, stream)
    elif analysis.results:
        _emit(_render(analysis, fmt, tz))
    sys.exit(_report_errors(analysis.errors))


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
    options = _options(ports, maillogs)
    options.progress = None
    with _output() as stream:

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
    sys.exit(_report_errors(analysis.errors))


def _write_zeek(analysis, folder: str, as_json: bool) -> None:
    """-o DIR with a Zeek format: DIR/smtp.log, conn.log, files.log (DIR made when missing)."""
    from pcapsmtp.report.zeeklogs import zeek_files

    files = zeek_files(analysis, as_json)
    paths = [os.path.join(folder, name) for name in files]
    inputs = _inputs(click.get_current_context().params)
    if any(_same_file(path, source) for path in paths for source in inputs):
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


@main.command("show")
@click.argument("capture", metavar="CAPTURE")
@click.option("--session", "session_id", type=SESSION, metavar="N|CLIENT:PORT", help=SESSION_HELP)
@click.option("--stream", type=click.IntRange(0), metavar="N", help=STREAM_HELP)
@format_option("text", "json", "md")
@output_option
@common_options
@maillog_option
@keylog_option
def show_command(capture, session_id, stream, fmt, ports, tz, maillogs, keylog) -> None:
    """One session's dialogue as a timeline, TCP events interleaved where they happened."""
    selector = _one_selector(session_id, stream)
    analysis = analyze([capture], _options(ports, maillogs, tz, keylog))
    if analysis.errors:
        sys.exit(_report_errors(analysis.errors))
    _report_warnings(analysis, captures=True)
    session = _select(analysis.sessions, selector, capture)
    if fmt == "json":
        import json

        from pcapsmtp.report.jsondoc import session_document
        from pcapsmtp.report.safe import json_text
        from pcapsmtp.report.schema import SCHEMA_VERSION

        document = {"schema_version": SCHEMA_VERSION} | session_document(analysis, session)
        _emit(json_text(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")
        return
    from pcapsmtp.report.text import format_show

    findings = analysis.findings_by_session().get(session.key, [])
    text = format_show(session, tz, None if fmt == "md" else findings)
    if analysis.maillog is not None:
        from pcapsmtp.report.maillog import format_session_log

        text += "\n" + format_session_log(analysis.maillog, session, tz)
    if fmt == "md":
        text = _show_markdown(capture, session, text, findings)
    _emit(text)


def _show_markdown(capture: str, session, timeline: str, findings: list) -> str:
    """show as Markdown: the timeline in a code block no wire line can close, then the
    session's findings as analyze --format md lists them."""
    from pcapsmtp.report.findings import findings_markdown
    from pcapsmtp.report.safe import markdown, markdown_block

    lines = [f"# Session {session.id} of {markdown(capture)}", ""]
    lines += markdown_block(timeline.rstrip("\n").split("\n"))
    lines += ["", findings_markdown(findings, sessions=[session])]
    return "\n".join(lines)


@main.command("export")
@click.argument("capture", metavar="CAPTURE")
@click.option("--session", "session_id", type=SESSION, metavar="N|CLIENT:PORT", help=SESSION_HELP)
@click.option("--stream", type=click.IntRange(0), metavar="N", help=STREAM_HELP)
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
    from pcapsmtp.export import annotation, export_capture, export_session

    whole = annotate and session_id is None and stream is None
    selector = None if whole else _one_selector(session_id, stream)
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
        sys.exit(_report_errors(analysis.errors))
    _report_warnings(analysis, captures=True)
    session = None if whole else _select(analysis.sessions, selector, capture)
    extra = annotation(analysis, capture, session) if annotate else {}
    overwrite = not keep_credentials
    if session is None:
        result = export_capture(
            capture, analysis.sessions, output, overwrite, tuple(ports), out, **extra
        )
    else:
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
        text = (
            f"wrote {target} ({result.format}): {result.frames} frames{icmp} of session "
            f"{session.id} (tcp.stream {session.flow.stream}; tcp.stream 0 in the export)"
        )
    if result.annotated and result.comments:
        text += (
            f"; {result.comments} comment(s) on {result.commented_frames} frame(s) for "
            f"{result.annotated_findings} finding(s)"
        )
    elif result.annotated:
        text += "; no comment: no finding has an evidence frame among them"
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
    help="The report to write: Markdown (.md), self-contained HTML (.html) or JSON (.json); "
    "'-' for standard output (with --format).",
)
@click.option(
    "--format",
    type=FormatChoice(["md", "html", "json"]),
    expose_value=False,
    callback=_remember("pcapsmtp.format"),
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
        list(captures), _options(ports, maillogs, tz, keylog, jobs, scheduler), options, baseline
    )
    if errors:
        sys.exit(_report_errors(errors))
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


@main.command("diff")
@click.argument("good", metavar="GOOD")
@click.argument("bad", metavar="BAD")
@click.option(
    "--good-session",
    type=SESSION,
    metavar="N|CLIENT:PORT",
    help="This session of GOOD (the first capture) instead of the one picked: its id from "
    "'analyze', or its client's ADDRESS:PORT.",
)
@click.option(
    "--bad-session",
    type=SESSION,
    metavar="N|CLIENT:PORT",
    help="This session of BAD (the second capture) instead of the one picked.",
)
@click.option(
    "--good-stream",
    type=click.IntRange(0),
    metavar="N",
    help="The session of GOOD by Wireshark's tcp.stream number.",
)
@click.option(
    "--bad-stream",
    type=click.IntRange(0),
    metavar="N",
    help="The session of BAD by Wireshark's tcp.stream number.",
)
@click.option(
    "--same-session",
    is_flag=True,
    help="GOOD and BAD are the client side and the server side of the same session: "
    "say what a box between the two points did.",
)
@format_option("text", "md", "json")
@output_option
@common_options
@keylog_option
def diff_command(
    good,
    bad,
    good_session,
    bad_session,
    good_stream,
    bad_stream,
    same_session,
    fmt,
    ports,
    tz,
    keylog,
) -> None:
    """Working vs failing session side by side (GOOD BAD), or one session seen at two
    points (CLIENT_SIDE SERVER_SIDE --same-session)."""
    from pcapsmtp.diff import compare_captures
    from pcapsmtp.diff import same_session as compare_points

    good_session = _at_most_one(good_session, good_stream, "good")
    bad_session = _at_most_one(bad_session, bad_stream, "bad")
    options = _options(ports, keylog=keylog)
    run = compare_points if same_session else compare_captures
    diff = run(good, bad, options, good_session, bad_session)
    _emit(_render_diff(diff, fmt, tz))


def _at_most_one(session, stream, role: str):
    if stream is None:
        return session
    if session is not None:
        raise click.UsageError(f"give one of --{role}-session and --{role}-stream")
    from pcapsmtp.selection import stream_selector

    return stream_selector(stream)


def _render_diff(diff, fmt: str, tz) -> str:
    from pcapsmtp.report.formats import DIFF, renderer

    return renderer(DIFF, fmt)(diff, tz)
