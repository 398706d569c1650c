"""Command line: options -> analyze() -> render(). Reports unreadable inputs once; no logic."""

from __future__ import annotations

import sys

import click

from pcapsmtp import __version__
from pcapsmtp.analysis import Options, analyze

FORMATS = ["text", "json"]


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcapsmtp")
def main() -> None:
    """Why does this mail not get through? Reads pcap/pcapng captures (plain or
    gzip-compressed, or '-' for standard input) and explains the SMTP sessions in them."""


@main.command("analyze")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Another port that carries SMTP (repeatable).",
)
@click.option(
    "--tz", callback=_zone, metavar="ZONE", help="Show times in this IANA zone (default UTC)."
)
def analyze_command(captures, fmt, ports, tz) -> None:
    """Sessions and findings of one or more captures."""
    analysis = analyze(list(captures), Options(extra_ports=tuple(ports)))
    if analysis.captures:
        if fmt == "json":
            from pcapsmtp.report.jsondoc import render_json

            sys.stdout.write(render_json(analysis))
        else:
            from pcapsmtp.report.text import format_analysis

            sys.stdout.write(format_analysis(analysis, tz))
    sys.exit(_report_errors(analysis))
