"""The dialogue alignment on tricky cases: each row is two step lists and the expected
pairing, written as 'key' (paired), '+key' (only in the first) and '-key' (only in the
second)."""

from __future__ import annotations

import pytest

from pcapsmtp.diff.align import ANCHOR_GAP, GAP_COSTS, align, gap_cost, pair_cost


def _tokens(text: str) -> list[tuple[str, str]]:
    """'greeting EHLO RCPT:bob end' -> [(key, argument)]."""
    out = []
    for word in text.split():
        key, _, argument = word.partition(":")
        out.append((key, argument))
    return out


def _show(a, b, pairs) -> str:
    words = []
    for i, j in pairs:
        if i is not None and j is not None:
            words.append(a[i][0] if a[i][0] == b[j][0] else f"{a[i][0]}/{b[j][0]}")
        elif i is not None:
            words.append("+" + a[i][0])
        else:
            words.append("-" + b[j][0])
    return " ".join(words)


CASES = [
    # (first dialogue, second dialogue, expected alignment)
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message QUIT end",
    ),
    # An extra STARTTLS (and the TLS that follows) is two cheap gaps.
    (
        "greeting EHLO STARTTLS tls EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO +STARTTLS +tls +EHLO MAIL RCPT DATA message QUIT end",
    ),
    # An extra RCPT: the common recipient pairs with its twin, the extra one is a gap.
    (
        "greeting EHLO MAIL RCPT:bob DATA message QUIT end",
        "greeting EHLO MAIL RCPT:alice RCPT:bob DATA message QUIT end",
        "greeting EHLO MAIL -RCPT RCPT DATA message QUIT end",
    ),
    # With no argument in common, the extra RCPT shows up after the first.
    (
        "greeting EHLO MAIL RCPT:a DATA end",
        "greeting EHLO MAIL RCPT:b RCPT:c DATA end",
        "greeting EHLO MAIL RCPT -RCPT DATA end",
    ),
    # A missing QUIT: the ends still pair.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message end",
        "greeting EHLO MAIL RCPT DATA message +QUIT end",
    ),
    # HELO against EHLO, BDAT chunks against DATA: related keys pair; the last chunk, like
    # the final dot, is the message; one chunk more is a cheap gap.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting HELO MAIL RCPT BDAT message QUIT end",
        "greeting EHLO/HELO MAIL RCPT DATA/BDAT message QUIT end",
    ),
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT BDAT BDAT BDAT message QUIT end",
        "greeting EHLO MAIL RCPT DATA/BDAT -BDAT -BDAT message QUIT end",
    ),
    # A rejected RCPT: no DATA, no message in the second.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT QUIT end",
        "greeting EHLO MAIL RCPT +DATA +message QUIT end",
    ),
    # A reply nobody asked for (421 on timeout) and no QUIT in the failing session.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message unsolicited end",
        "greeting EHLO MAIL RCPT DATA message -unsolicited +QUIT end",
    ),
    # A connection refused: nothing but the greeting that never came and the end.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting end",
        "greeting +EHLO +MAIL +RCPT +DATA +message +QUIT end",
    ),
    # Two transactions against one: the first pairs, the second is extra.
    (
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message -MAIL -RCPT -DATA -message QUIT end",
    ),
    # A transaction abandoned with RSET: on a tie the later steps are the unpaired ones.
    (
        "greeting EHLO MAIL RCPT RSET MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT DATA message QUIT end",
        "greeting EHLO MAIL RCPT +RSET +MAIL +RCPT DATA message QUIT end",
    ),
    # ... unless the arguments say which is which.
    (
        "greeting EHLO MAIL:x RCPT:x RSET MAIL:y RCPT:y DATA message QUIT end",
        "greeting EHLO MAIL:y RCPT:y DATA message QUIT end",
        "greeting EHLO +MAIL +RCPT +RSET MAIL RCPT DATA message QUIT end",
    ),
    # Empty against empty.
    ("", "", ""),
]


@pytest.mark.parametrize(("first", "second", "expected"), CASES)
def test_alignment(first, second, expected):
    a, b = _tokens(first), _tokens(second)
    assert _show(a, b, align(a, b)) == expected


@pytest.mark.parametrize(("first", "second", "expected"), CASES)
def test_alignment_is_symmetric_up_to_sides(first, second, expected):
    """Swapping the two dialogues swaps '+' and '-' and pairs the same keys."""
    a, b = _tokens(first), _tokens(second)
    swapped = _show(b, a, align(b, a))
    paired = [w for w in expected.split() if w[0] not in "+-"]
    assert [w for w in swapped.split() if w[0] not in "+-"] == [
        "/".join(reversed(w.split("/"))) for w in paired
    ]


def test_every_step_appears_once_in_order():
    a = _tokens("greeting EHLO STARTTLS tls EHLO AUTH MAIL RCPT RCPT DATA message QUIT end")
    b = _tokens("greeting HELO MAIL RCPT BDAT BDAT unsolicited end")
    pairs = align(a, b)
    assert [i for i, _ in pairs if i is not None] == list(range(len(a)))
    assert [j for _, j in pairs if j is not None] == list(range(len(b)))


def test_costs_say_what_is_ordinary():
    """Steps sessions often differ by are cheaper to leave out than the mail itself; the
    anchors are never left out; unrelated steps never pair."""
    for cheap in ("STARTTLS", "RCPT", "QUIT"):
        assert gap_cost((cheap, "")) < gap_cost(("MAIL", "")) == gap_cost(("message", ""))
    assert GAP_COSTS["greeting"] == GAP_COSTS["end"] == ANCHOR_GAP
    assert pair_cost(("MAIL", "a"), ("RCPT", "a")) is None
    assert pair_cost(("RCPT", "a"), ("RCPT", "b")) < 2 * gap_cost(("RCPT", ""))
