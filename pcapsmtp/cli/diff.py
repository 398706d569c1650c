"""pcapsmtp diff: a working and a failing session side by side, or one session at two points."""

from __future__ import annotations

import click

from pcapsmtp.cli.common import (
    SESSION,
    Command,
    analysis_options,
    common_options,
    emit,
    format_option,
    keylog_option,
    output_option,
)


@click.command("diff", cls=Command)
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
    options = analysis_options(ports, keylog=keylog)
    run = compare_points if same_session else compare_captures
    diff = run(good, bad, options, good_session, bad_session)
    emit(_render_diff(diff, fmt, tz))


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
