"""Command line: options -> analyze() -> render(); one module per command, what they share
in ``common``. Shows every error once (pcapsmtp.errors: caught by the commands' class,
``Command.invoke``); no logic.

A command's module is imported when that command runs (or ``--help`` lists them all): the
start-up of ``pcapsmtp analyze`` does not pay for what ``diff``, ``export``, ``report`` and
``show`` import.
"""

from __future__ import annotations

import importlib

import click

from pcapsmtp import __version__
from pcapsmtp.cli.common import Group

COMMANDS = {
    "analyze": "pcapsmtp.cli.analyze:analyze_command",
    "show": "pcapsmtp.cli.show:show_command",
    "export": "pcapsmtp.cli.export:export_command",
    "report": "pcapsmtp.cli.report:report_command",
    "diff": "pcapsmtp.cli.diff:diff_command",
}
"""Command name -> where it is defined (module:attribute)."""


class _Commands(dict):
    """Command name -> command: a command of COMMANDS is imported on its first lookup, so
    ``main.commands["analyze"]`` works as on a plain click group."""

    def __missing__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        module, attribute = COMMANDS[name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        self[name] = command
        return command


class LazyGroup(Group):
    """The commands of COMMANDS, each imported when it is asked for."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            self.commands[cmd_name]
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as error:
            # Click suggests from the commands loaded; offer them all ("Did you mean").
            raise click.exceptions.NoSuchCommand(
                error.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcapsmtp")
def main() -> None:
    """Why does this mail not get through? Reads pcap/pcapng captures (plain or
    compressed, or '-' for standard input) and explains the SMTP sessions in them."""


__all__ = ["main"]
