"""Aligning two dialogues step by step: a Needleman–Wunsch global alignment over step keys.

Each step is a token ``(key, argument)``: the greeting, a command verb, the message, TLS, a
reply nobody asked for, the end. The alignment pairs steps of the two sessions or leaves one
unpaired (a gap) so that the total cost is least:

- pairing two steps with the same key costs 0 when their arguments are equal, 1 when not
  (recipients and host names differ from one capture to another);
- pairing related keys costs a little more (EHLO with HELO: 2; DATA or the message with BDAT:
  3); pairing unrelated keys is not allowed;
- leaving a step unpaired costs what its absence means: cheap for the steps sessions differ by
  in ordinary life (an extra STARTTLS and its TLS, an extra RCPT, a missing QUIT, RSET, NOOP,
  one BDAT chunk more or less: 2), more for EHLO, AUTH and unsolicited replies (4), most for
  the mail itself (MAIL, DATA, the message -- the final dot or the last BDAT chunk: 6).
  The greeting and the end are anchors: every step list has exactly
  one of each, first and last, and they are always paired.

Because any unpaired step costs at least 2, two steps with the same key are always paired
rather than both left alone. On ties the trace-back leaves the later steps unpaired, so an
extra RCPT shows up after the common ones.
"""

from __future__ import annotations

from collections.abc import Sequence

Token = tuple[str, str]
"""(key, argument) of a step."""

ANCHOR_GAP = 1000
"""The greeting and the end are never left unpaired."""
GAP_COSTS = {
    "greeting": ANCHOR_GAP,
    "end": ANCHOR_GAP,
    "STARTTLS": 2,
    "tls": 2,
    "RCPT": 2,
    "QUIT": 2,
    "RSET": 2,
    "NOOP": 2,
    "HELP": 2,
    "VRFY": 2,
    "EXPN": 2,
    "auth-response": 2,
    "EHLO": 4,
    "HELO": 4,
    "AUTH": 4,
    "unsolicited": 4,
    "MAIL": 6,
    "DATA": 6,
    "BDAT": 2,
    "message": 6,
}
DEFAULT_GAP = 6
OTHER_ARGUMENT = 1
RELATED = {
    frozenset({"EHLO", "HELO"}): 2,
    frozenset({"DATA", "BDAT"}): 3,
    frozenset({"message", "BDAT"}): 3,
}
TOLERATED_GAPS = frozenset(
    {
        "STARTTLS",
        "tls",
        "RCPT",
        "QUIT",
        "RSET",
        "NOOP",
        "HELP",
        "VRFY",
        "EXPN",
        "auth-response",
        "BDAT",
    }
)
"""Steps whose absence on one side is an ordinary difference, not a departure."""


def gap_cost(token: Token) -> int:
    return GAP_COSTS.get(token[0], DEFAULT_GAP)


def pair_cost(a: Token, b: Token) -> int | None:
    """The cost of pairing two steps, None when they may not be paired."""
    if a[0] == b[0]:
        return 0 if a[1] == b[1] else OTHER_ARGUMENT
    return RELATED.get(frozenset({a[0], b[0]}))


def align(a: Sequence[Token], b: Sequence[Token]) -> list[tuple[int | None, int | None]]:
    """Index pairs in dialogue order: (i, j) paired, (i, None) only in a, (None, j) only in b."""
    cost = _costs(a, b)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(a), len(b)
    while i or j:
        here = cost[i][j]
        if i and here == cost[i - 1][j] + gap_cost(a[i - 1]):
            i -= 1
            pairs.append((i, None))
        elif j and here == cost[i][j - 1] + gap_cost(b[j - 1]):
            j -= 1
            pairs.append((None, j))
        else:
            i, j = i - 1, j - 1
            pairs.append((i, j))
    pairs.reverse()
    return pairs


def _costs(a: Sequence[Token], b: Sequence[Token]) -> list[list[int]]:
    """cost[i][j]: the least cost of aligning a[:i] with b[:j]."""
    cost = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for j, token in enumerate(b, start=1):
        cost[0][j] = cost[0][j - 1] + gap_cost(token)
    for i, ta in enumerate(a, start=1):
        row, above = cost[i], cost[i - 1]
        row[0] = above[0] + gap_cost(ta)
        gap_a = gap_cost(ta)
        for j, tb in enumerate(b, start=1):
            best = min(above[j] + gap_a, row[j - 1] + gap_cost(tb))
            paired = pair_cost(ta, tb)
            if paired is not None and above[j - 1] + paired < best:
                best = above[j - 1] + paired
            row[j] = best
    return cost
