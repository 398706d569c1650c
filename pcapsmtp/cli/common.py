"""What every command shares: the options they have in common, where output goes, how
errors and warnings are shown (pcapsmtp.errors: caught by the commands' class,
``Command.invoke``), and which session the user means."""

from __future__ import annotations

import contextlib
import gc
import os
import sys

import click

from pcapsmtp.analysis import Options
from pcapsmtp.analysis.extras import CLUSTER, available, needs
from pcapsmtp.errors import PcapsmtpError


def parse_zone(_ctx, _param, value):
    from pcapsmtp.report.times import zone

    try:
        return zone(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def report_errors(errors: list[PcapsmtpError]) -> int:
    """One line per error on stderr; the exit status they call for."""
    for error in errors:
        click.echo(f"pcapsmtp: error: {error}", err=True)
    return 1 if errors else 0


YOUNG_THRESHOLD = 5000
"""Allocations of container objects (net of those freed) between two collections of the
cyclic collector's youngest generation while a command runs; CPython's default is 700.

A pass keeps every open connection's objects for a while: at 700 a young collection found
most of them alive and moved them on, and full collections walked them again (0.53 s of
collector CPU on the generated 1 GB capture, 0.22 s at 5,000). With fewer objects promoted,
CPython's rule for a full collection (a quarter more long-lived objects than at the last
one) seldom fires during a long pass, so no garbage may wait for one: a finished session's
reply <-> command cycles are broken as it is spooled (pcapsmtp.analysis.spool.dump_session),
and a full collection runs every COLLECT_EVERY ended flows (pcapsmtp.analysis.one_pass):
session 10 tried this threshold alone, and the sessions' cycles in the oldest generation
grew with the capture (docs/performance-log.md, "The cyclic collector during a pass")."""


class Command(click.Command):
    """Every command: the one place where a PcapsmtpError raised while it runs becomes what
    the user reads (pcapsmtp.errors): a usage error (exit 2) or one line (exit 1)."""

    def invoke(self, ctx: click.Context):
        # The objects of the modules imported so far are left out of the collector's work
        # while the command runs: a full collection during a pass walked them all (about
        # 25 ms of a 1 GB capture of other traffic, docs/performance-log.md); the youngest
        # generation is collected every YOUNG_THRESHOLD allocations (see there).
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
        try:
            return super().invoke(ctx)
        except PcapsmtpError as error:
            if error.usage:
                raise click.UsageError(str(error), ctx) from None
            sys.exit(report_errors([error]))
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()


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
        callback=parse_zone,
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


def remember(key: str):
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
        callback=remember("pcapsmtp.output"),
        help="Write the output to FILE instead of standard output ('-').",
    )(function)


def maillog_zone_option(function):
    """--maillog-tz: the zone of the log's times that carry none, apart from the display zone."""

    def callback(ctx, param, value):
        ctx.meta["pcapsmtp.maillog_tz"] = parse_zone(ctx, param, value) if value else None

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
def output_stream():
    """Where the command's output goes: standard output, or the -o file (opened only once
    there is something to write; an unwritable one is a one-line error, exit 1)."""
    ctx = click.get_current_context()
    target = ctx.meta.get("pcapsmtp.output") or "-"
    if target == "-":
        yield sys.stdout
        return
    if any(same_file(target, source) for source in input_paths(ctx.params)):
        raise click.UsageError(f"-o {target} is one of the inputs: name another file")
    try:
        stream = open(target, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise PcapsmtpError(f"{target}: {e.strerror or e}") from None
    with stream:
        yield stream


def input_paths(params: dict) -> list[str]:
    found = list(params.get("captures") or ()) + list(params.get("maillogs") or ())
    found += [params[k] for k in ("capture", "good", "bad", "keylog") if params.get(k)]
    return found


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def emit(text: str) -> None:
    with output_stream() as stream:
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
        help="Worker processes, each reading the capture (one file or several) and following "
        "its share of the connections (default: one per core for several files, on machines of "
        "more than two cores when they are large enough to repay them; one process for a "
        "single file); 1 reads everything in this process, as does standard input always.",
    )(function)


def analysis_options(
    ports, maillogs=(), tz=None, keylog=None, jobs=None, scheduler=None
) -> Options:
    if scheduler and not available(CLUSTER):
        raise PcapsmtpError(needs("--scheduler", CLUSTER))
    return Options(
        extra_ports=tuple(ports),
        maillogs=tuple(maillogs),
        log_zone=click.get_current_context().meta.get("pcapsmtp.maillog_tz"),
        progress=_progress(),
        keylog=keylog,
        jobs=jobs,
        scheduler=scheduler,
    )


def report_warnings(analysis, captures: bool = False) -> None:
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


def one_selector(session, stream):
    """--session or --stream, exactly one of them, as a pcapsmtp.selection.Selector."""
    from pcapsmtp.selection import stream_selector

    if (session is None) == (stream is None):
        raise click.UsageError("give exactly one of --session and --stream")
    return session if stream is None else stream_selector(stream)


def select_session(sessions, selector, where: str):
    """The session the selector names; a usage error naming the sessions there are if none
    (SelectionError)."""
    from pcapsmtp.selection import select

    return select(sessions, selector, where)


def session_selector(function):
    """--session N|CLIENT:PORT and --stream N: the one session a command works on
    (``select_session``)."""
    function = click.option("--stream", type=click.IntRange(0), metavar="N", help=STREAM_HELP)(
        function
    )
    return click.option(
        "--session", "session_id", type=SESSION, metavar="N|CLIENT:PORT", help=SESSION_HELP
    )(function)
