"""Every rule runs on every capture we have, lab and public, without failing: a rule that
raises becomes an analysis-error finding, and none may appear."""

from __future__ import annotations

import pytest

from tests.captures import CAPTURE_SUFFIXES as SUFFIXES
from tests.captures import LAB, PUBLIC, in_folder
from tests.diagnose.helpers import analysis

CAPTURE_SUFFIXES = (*SUFFIXES, ".cap")


def _captures(folder) -> list:
    return in_folder(folder, CAPTURE_SUFFIXES)


CAPTURES = _captures(LAB) + _captures(PUBLIC)


@pytest.mark.skipif(not CAPTURES, reason="no lab or public captures")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_no_rule_fails(path):
    result = analysis(str(path))
    failed = [f"{f.summary}: {f.detail}" for f in result.findings if f.code == "analysis-error"]
    assert failed == []
    for finding in result.findings:
        assert finding.summary and finding.detail and finding.next_steps, finding.code
        assert finding.filter, finding.code
        assert finding.frames or finding.session is None, finding.code
