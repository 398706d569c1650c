"""Which connection of one capture is which of another, when both saw the same traffic.

NAT changes addresses and ports; some firewalls (Cisco ASA's sequence number randomization)
change the initial sequence numbers too. So connections are paired, in this order, by:

1. ``isn``: the same initial sequence number of the client or of the server (plain NAT
   leaves them alone, and a 32-bit random number seldom repeats);
2. ``payload``: the same first kilobyte from the client (EHLO, MAIL, RCPT, the start of
   the message with its Message-ID), else from the server; connections with the same bytes
   pair in order of time, which needs no synchronised clocks;
3. ``ports``: the same client port (many NATs keep it), nearest in time;
4. ``time``: the nearest start within ``MAX_SKEW_NS``, once the clock offset between the
   captures has been estimated from the pairs found so far.

The last two are guesses: a caller-supplied ``compatible(i, j)`` (the two dialogues say the
same things) must accept them.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import median

from .segments import FlowView

MAX_SKEW_NS = 60 * 1_000_000_000
"""Two connections further apart than this (after the clock offset) are never paired on
time alone."""


def pair_views(
    a: list[FlowView], b: list[FlowView], compatible: Callable[[int, int], bool] = lambda i, j: True
) -> dict[int, tuple[int, str]]:
    """Index in ``a`` -> (index in ``b``, how they were paired)."""
    pairs: dict[int, tuple[int, str]] = {}
    _by_isn(a, b, pairs)
    _by_payload(a, b, pairs)
    offset = _clock_offset(a, b, pairs)
    _by_time(a, b, pairs, offset, compatible, same_port=True)
    _by_time(a, b, pairs, offset, compatible, same_port=False)
    return dict(sorted(pairs.items()))


def _taken(pairs: dict[int, tuple[int, str]]) -> set[int]:
    return {j for j, _ in pairs.values()}


def _by_isn(a: list[FlowView], b: list[FlowView], pairs: dict) -> None:
    index: dict[tuple[str, int], int] = {}
    for j, view in enumerate(b):
        for sender, isn in view.isn.items():
            index.setdefault((sender, isn), j)
    taken = _taken(pairs)
    for i, view in enumerate(a):
        for sender, isn in view.isn.items():
            j = index.get((sender, isn))
            if j is not None and j not in taken:
                pairs[i] = (j, "isn")
                taken.add(j)
                break


def _signature(view: FlowView) -> bytes | None:
    return view.first_bytes.get("client") or view.first_bytes.get("server")


def _by_payload(a: list[FlowView], b: list[FlowView], pairs: dict) -> None:
    taken = _taken(pairs)
    groups_b: dict[bytes, list[int]] = {}
    for j, view in enumerate(b):
        signature = _signature(view)
        if signature and j not in taken:
            groups_b.setdefault(signature, []).append(j)
    groups_a: dict[bytes, list[int]] = {}
    for i, view in enumerate(a):
        signature = _signature(view)
        if signature and i not in pairs:
            groups_a.setdefault(signature, []).append(i)
    for signature, members in groups_a.items():
        for i, j in zip(members, groups_b.get(signature, []), strict=False):
            pairs[i] = (j, "payload")


def _start(view: FlowView) -> int:
    return view.flow.first_time_ns


def _clock_offset(a: list[FlowView], b: list[FlowView], pairs: dict) -> int:
    """How far b's clock is ahead of a's, from the pairs found so far (0 without any)."""
    if not pairs:
        return 0
    return int(median(_start(b[j]) - _start(a[i]) for i, (j, _) in pairs.items()))


def _by_time(a, b, pairs: dict, offset: int, compatible, same_port: bool) -> None:
    taken = _taken(pairs)
    for i, view in enumerate(a):
        if i in pairs:
            continue
        port = view.flow.endpoints[view.flow.client].port
        best = None
        for j, other in enumerate(b):
            if j in taken:
                continue
            if same_port and other.flow.endpoints[other.flow.client].port != port:
                continue
            skew = abs(_start(other) - _start(view) - offset)
            if skew <= MAX_SKEW_NS and (best is None or skew < best[0]) and compatible(i, j):
                best = (skew, j)
        if best is not None:
            pairs[i] = (best[1], "ports" if same_port else "time")
            taken.add(best[1])
