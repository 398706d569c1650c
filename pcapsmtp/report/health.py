"""The per-destination and per-client view (pcapsmtp.diagnose.health) as text, Markdown and plain
structures; the report document calls the same functions."""

from __future__ import annotations

from datetime import UTC, tzinfo
from functools import partial

from pcapsmtp.capture.timestamps import local, raw
from pcapsmtp.diagnose.digest import digests
from pcapsmtp.diagnose.health import Health, PeerHealth, summarize
from pcapsmtp.report.fastjson import LazyList
from pcapsmtp.report.safe import markdown, terminal, wire
from pcapsmtp.report.times import iso
from pcapsmtp.selection import session_ref

COLUMNS = [
    "attempts",
    "delivered",
    "deferred",
    "rejected",
    "conn. failed",
    "timeout",
    "other",
    "first",
    "last",
    "4xx/5xx replies",
]
TITLES = {
    "destination": ("Destinations (per server address and port)", "server"),
    "client": ("Clients (per address)", "client"),
}


def _short(time_ns: int | None, tz: tzinfo) -> str:
    if time_ns is None:
        return "-"
    moment = local(time_ns, tz)
    if moment is None:
        return raw(time_ns)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def negative_summary(peer: PeerHealth, kinds: int = 3) -> str:
    """'421 4.3.2 ×240, 451 4.7.1 ×1' (most frequent first)."""
    replies = peer.negative_replies()
    shown = [f"{n.label} ×{n.count}" for n in replies[:kinds]]
    if len(replies) > kinds:
        shown.append(f"+{len(replies) - kinds} more")
    return ", ".join(shown) or "-"


def peer_row(peer: PeerHealth, tz: tzinfo) -> list[str]:
    counts = [
        peer.attempts,
        peer.outcomes["delivered"],
        peer.outcomes["deferred"],
        peer.outcomes["rejected"],
        peer.connect_failures,
        peer.outcomes["timeout"],
        peer.other,
    ]
    return [
        peer.name,
        *map(str, counts),
        _short(peer.first_ns, tz),
        _short(peer.last_ns, tz),
        negative_summary(peer),
    ]


def _tables(health: Health):
    return [("destination", health.destinations), ("client", health.clients)]


def format_health(health: Health, tz: tzinfo = UTC) -> str:
    """Both tables for a terminal; '' when there is no session."""
    from tabulate import tabulate  # here: a JSON document never needs it (start-up)

    parts = []
    for role, peers in _tables(health):
        if not peers:
            continue
        title, first = TITLES[role]
        rows = [[terminal(cell) for cell in peer_row(p, tz)] for p in peers]
        table = tabulate(rows, headers=[first, *COLUMNS], tablefmt="simple", disable_numparse=True)
        parts.append(f"{title}\n{table}")
    if parts:
        parts[-1] += (
            "\n(sessions by outcome; conn. failed = refused or unanswered; "
            "other = reset, TLS failure, incomplete, encrypted)"
        )
    return "\n\n".join(parts)


def health_markdown(health: Health, tz: tzinfo = UTC, level: int = 2) -> str:
    from tabulate import tabulate

    out = []
    for role, peers in _tables(health):
        if not peers:
            continue
        title, first = TITLES[role]
        rows = [[markdown(cell) for cell in peer_row(p, tz)] for p in peers]
        table = tabulate(rows, headers=[first, *COLUMNS], tablefmt="github", disable_numparse=True)
        out += [f"{'#' * level} {title}", "", table, ""]
    return "\n".join(out)


def peer_dict(peer: PeerHealth, several: bool = False) -> dict:
    own, others = ("server", "clients") if peer.role == "destination" else ("client", "servers")
    return {
        own: peer.name,
        others: sorted(peer.peers),
        "attempts": peer.attempts,
        "sessions": [session_ref(key, several) for key in peer.sessions],
        "outcomes": dict(sorted(peer.outcomes.items())),
        "delivered": peer.outcomes["delivered"],
        "deferred": peer.outcomes["deferred"],
        "rejected": peer.outcomes["rejected"],
        "refused": peer.outcomes["refused"],
        "unreachable": peer.outcomes["unreachable"],
        "timeouts": peer.outcomes["timeout"],
        "messages": dict(sorted(peer.messages.items())),
        "first_time": iso(peer.first_ns),
        "last_time": iso(peer.last_ns),
        "replies": {str(code): n for code, n in sorted(peer.replies.items())},
        "negative_replies": [
            {
                "code": n.code,
                "enhanced": n.enhanced,
                "count": n.count,
                "text": wire(n.text),
                "meaning": n.meaning,
                "first_frame": n.frame,
                "capture": n.capture,
            }
            for n in peer.negative_replies()
        ],
    }


def health_document(sessions, lazy: bool = False) -> dict:
    """``{"destinations": [...], "clients": [...]}`` for the JSON document; ``lazy``: each
    peer's dict made as the writer reaches it (pcapsmtp.report.fastjson.LazyList)."""
    health = summarize(sessions)
    several = len({d.capture for d in digests(sessions)}) > 1
    make = partial(peer_dict, several=several)
    if lazy:
        return {
            "destinations": LazyList(health.destinations, make),
            "clients": LazyList(health.clients, make),
        }
    return {
        "destinations": [make(p) for p in health.destinations],
        "clients": [make(p) for p in health.clients],
    }
