"""docs/findings.md lists exactly the codes the rules can produce (plus analysis-error, which
diagnose() makes itself), each with the parts a reader needs."""

from __future__ import annotations

import re

from pcapsmtp.diagnose import all_codes
from tests.captures import REPO_ROOT

CATALOGUE = REPO_ROOT / "docs" / "findings.md"
HEADING = re.compile(r"^## `([a-z0-9-]+)`$", re.M)
PARTS = ("**Means.**", "**Detected**", "**Severity.**", "**Next.**", "**Shown by.**")


def _sections() -> dict[str, str]:
    text = CATALOGUE.read_text()
    starts = list(HEADING.finditer(text))
    return {
        match.group(1): text[match.end() : starts[i + 1].start() if i + 1 < len(starts) else None]
        for i, match in enumerate(starts)
    }


def test_every_code_is_catalogued_and_nothing_else():
    assert set(_sections()) == {*all_codes(), "analysis-error"}


def test_no_code_twice():
    codes = HEADING.findall(CATALOGUE.read_text())
    assert len(codes) == len(set(codes))


def test_each_entry_says_what_how_severity_next_and_where():
    for code, body in _sections().items():
        missing = [part for part in PARTS if part not in body]
        assert not missing, (code, missing)


def test_design_codes_all_have_rules():
    """The codes DESIGN.md promises (the contract) are all implemented."""
    promised = {
        "mtu-blackhole", "icmp-frag-needed", "ip-fragmentation", "middlebox-reset", "reset",
        "connect-failed", "connect-refused", "retransmissions", "zero-window", "capture-loss",
        "capture-truncated", "tls-handshake-failed", "hard-bounce", "soft-bounce",
        "size-exceeded", "auth-failed", "slow-server", "server-timeout", "client-timeout",
        "smtp-inspection", "incomplete-session",
    }  # fmt: skip
    assert promised <= set(all_codes())
