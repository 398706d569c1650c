"""Golden outputs of `analyze` (text and JSON) and `show`, where the output is the product.

Each ``tests/golden/analyze/<name>.args`` holds one command line (relative to the repository);
its outputs are ``<name>.out.golden``. The tool's version is scrubbed. To regenerate after a
deliberate change: ``PCAPSMTP_REGENERATE=1 python3 -m pytest tests/e2e/test_golden.py``,
then read the diff before committing it.
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

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "analyze"
CASES = sorted(GOLDEN.glob("*.args"))
HEADER = (
    "# Golden output of `pcapsmtp {args}`: do not edit, regenerate with "
    "`PCAPSMTP_REGENERATE=1 python3 -m pytest tests/e2e/test_golden.py`\n"
)


def _run(args: list[str]) -> str:
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        result = CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return re.sub(
        rf'"version": "{re.escape(__version__)}"', '"version": "<version>"', result.output
    )


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_output_equals_its_golden_file(case: Path):
    args = shlex.split(case.read_text().strip())
    missing = [a for a in args if a.startswith("captures/") and not (REPO / a).exists()]
    if missing:
        pytest.skip(f"{missing[0]} is absent")
    expected_path = case.with_suffix(".out.golden")
    output = HEADER.format(args=" ".join(args)) + _run(args)
    if os.environ.get("PCAPSMTP_REGENERATE"):
        expected_path.write_text(output)
    assert output == expected_path.read_text()
