"""The render tables (pcapsmtp/report/formats.py): each command offers exactly the formats
its table renders, and every entry names a function that exists."""

from __future__ import annotations

import pytest

from pcapsmtp.cli import main
from pcapsmtp.report import formats


def offered(command: str) -> set[str]:
    (option,) = [p for p in main.commands[command].params if "--format" in p.opts]
    return set(option.type.choices)


@pytest.mark.parametrize(
    ("command", "table"),
    [("analyze", formats.ANALYSIS), ("diff", formats.DIFF), ("report", formats.REPORT)],
)
def test_each_offered_format_has_its_renderer(command, table):
    assert offered(command) == set(table)
    for fmt in table:
        assert callable(formats.renderer(table, fmt)), (command, fmt)


def test_an_unknown_format_is_no_renderer():
    with pytest.raises(KeyError):
        formats.renderer(formats.REPORT, "csv")
