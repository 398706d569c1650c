"""What a session's ladder diagram draws, row by row.

The dialogue entries (``report.dialogue``) in their order, with what a picture needs and a
table does not: how long a run of TCP events lasted (six retransmissions spread over 13 s
are one row), a message that never reached its end moved to where it began and marked
unfinished, and the silences (``report.series``: no packet in either direction for a
second or more) as rows of their own, so a 45 s wait before a 421 is seen, not read.
"""

from __future__ import annotations

import bisect

from pcapsmtp.smtp.model import Session

TOLERANCE_MS = 0.002
"""Times are rounded to the microsecond: a silence starts at a row's time within this."""
KEYS = ("frame", "last_frame", "count", "offset_ms", "latency_ms", "from", "to", "kind", "label",
        "code")  # fmt: skip


def _unfinished(session: Session, graphs: dict | None) -> dict[int, tuple[int, float]]:
    """Frame of each message entry that never reached its end -> (frame, ms) where its
    first byte went out: the client's first data segment after the reply to DATA (that
    reply's frame and time when no byte of it is in the capture, or there are no graph
    points)."""
    moved = {}
    client = next((d for d in (graphs or {}).get("directions", []) if d["from"] == "client"), None)
    for transaction in session.transactions:
        if transaction.message_complete or transaction.final is not None:
            continue
        if transaction.message_frame is None or transaction.data_reply is None:
            continue
        after = transaction.data_reply.frame
        first = min((p for p in (client or {}).get("data", []) if p[4] > after), default=None,
                    key=lambda p: p[4])  # fmt: skip
        at = round((transaction.data_reply.time_ns - session.flow.first_time_ns) / 1e6, 3)
        moved[transaction.message_frame] = (first[4], first[0]) if first else (after, at)
    return moved


def _span(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.1f} ms"


def ladder_rows(session: Session, entries: list[dict], graphs: dict | None) -> list[dict]:
    """The rows of the ladder: entries with ``end_ms`` (the time of a run's last frame) and
    ``unfinished``, and ``silence`` rows between them."""
    flow = session.flow
    at = {note.frame: round((note.time_ns - flow.first_time_ns) / 1e6, 3) for note in flow.notes}
    at.update({e.frame: round((e.time_ns - flow.first_time_ns) / 1e6, 3) for e in flow.icmp})
    moved = _unfinished(session, graphs)
    rows = []
    for entry in entries:
        row = {key: entry.get(key) for key in KEYS} | {"unfinished": False}
        row["end_ms"] = at.get(entry["last_frame"], entry["offset_ms"])
        lasted = row["end_ms"] - entry["offset_ms"]
        if entry["count"] > 1 and lasted >= 1 and row["label"].endswith(")"):
            row["label"] = row["label"][:-1] + f", over {_span(lasted)})"
        if entry["kind"] == "message" and entry["frame"] in moved:
            frame, ms = moved[entry["frame"]]
            text = entry["label"].replace(" (incomplete in the capture)", "")
            row |= {"frame": frame, "last_frame": frame, "unfinished": True,
                    "label": f"{text}: never completed"}  # fmt: skip
            row["offset_ms"] = row["end_ms"] = ms
        rows.append(row)
    rows.sort(key=lambda row: (row["frame"], row["unfinished"]))
    return _with_silences(rows, (graphs or {}).get("silences", []))


def _with_silences(rows: list[dict], silences: list[list[float]]) -> list[dict]:
    """The rows with a ``silence`` row wherever a silence lies between the end of everything
    drawn so far and the next row."""
    out: list[dict] = []
    starts = [s[0] for s in silences]
    since: float | None = None
    for row in rows:
        if since is not None:
            until = row["offset_ms"] + TOLERANCE_MS
            i = bisect.bisect_left(starts, since - TOLERANCE_MS)
            quiet = []
            while i < len(silences) and silences[i][1] <= until:
                quiet.append(silences[i])
                i += 1
            out += [{"kind": "silence", "offset_ms": a, "end_ms": b, "ms": round(b - a, 3),
                     "from": None, "frame": None} for a, b in quiet]  # fmt: skip
        out.append(row)
        since = row["end_ms"] if since is None else max(since, row["end_ms"])
    return out
