"""Command line: options -> analyze() -> render(); one module per command, what they share
in ``common``. Shows every error once (pcapsmtp.errors: caught by the commands' class,
``Command.invoke``); no logic."""

from __future__ import annotations

import click

from pcapsmtp import __version__
from pcapsmtp.cli.analyze import analyze_command
from pcapsmtp.cli.common import Group
from pcapsmtp.cli.diff import diff_command
from pcapsmtp.cli.export import export_command
from pcapsmtp.cli.report import report_command
from pcapsmtp.cli.show import show_command


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcapsmtp")
def main() -> None:
    """Why does this mail not get through? Reads pcap/pcapng captures (plain or
    compressed, or '-' for standard input) and explains the SMTP sessions in them."""


main.add_command(analyze_command)
main.add_command(show_command)
main.add_command(export_command)
main.add_command(report_command)
main.add_command(diff_command)

__all__ = ["main"]
