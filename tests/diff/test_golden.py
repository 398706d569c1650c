"""Golden outputs of ``pcapsmtp diff``, discovered from tests/golden/diff/.

Each ``<case>.args`` holds the command's arguments (paths relative to the repository); the
expected output of each format is ``<case>.<format>.golden``, whose first line says not to
edit it. Add a case by adding an ``.args`` file and regenerating:

    PCAPSMTP_REGENERATE=1 python3 -m pytest tests/diff/test_golden.py

Regenerate too after the lab captures are regenerated (their timings and ports change) or
after a deliberate change of the output; review the difference with ``git diff``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp import __version__
from pcapsmtp.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "diff"
CASES = sorted(GOLDEN.glob("*.args"))
FORMATS = ("text", "md", "json")
REGENERATE = os.environ.get("PCAPSMTP_REGENERATE") == "1"
HEADER = (
    "# Golden output of `pcapsmtp diff {args} --format {fmt}`: do not edit, regenerate with "
    "`PCAPSMTP_REGENERATE=1 python3 -m pytest tests/diff/test_golden.py`\n"
)


def scrub(output: str) -> str:
    """Volatile fields out: the tool's version and this checkout's absolute path."""
    output = output.replace(f'"version": "{__version__}"', '"version": "<version>"')
    return re.sub(re.escape(str(ROOT)) + r"/?", "", output)


def render(args: list[str], fmt: str, monkeypatch) -> str:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["diff", *args, "--format", fmt])
    assert result.exit_code == 0, result.output
    return scrub(result.output)


@pytest.mark.skipif(not CASES, reason="no golden cases")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path, fmt: str, monkeypatch):
    args = shlex.split(case.read_text())
    for arg in args:
        if not arg.startswith("-") and not (ROOT / arg).is_file():
            pytest.skip(f"{arg} absent")
    output = render(args, fmt, monkeypatch)
    golden = GOLDEN / f"{case.stem}.{fmt}.golden"
    header = HEADER.format(args=" ".join(args), fmt=fmt)
    if REGENERATE or not golden.exists():
        golden.write_text(header + output, encoding="utf-8")
        if not REGENERATE:
            pytest.fail(f"{golden.name} was missing and has been written: review and commit it")
    expected = golden.read_text(encoding="utf-8")
    assert expected.startswith(header), f"{golden.name}: header changed; regenerate"
    assert output == expected[len(header) :]
