"""Every rule runs on every capture we have, lab and public, without failing: a rule that
raises becomes an analysis-error finding, and none may appear."""

from __future__ import annotations

import pytest

from tests.conftest import LAB_CAPTURES, PUBLIC_CAPTURES
from tests.diagnose.helpers import analysis

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".cap")


def _captures(folder) -> list:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))


CAPTURES = _captures(LAB_CAPTURES) + _captures(PUBLIC_CAPTURES)


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
