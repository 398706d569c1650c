"""files.log as Zeek writes it: a row for each leaf MIME part with a body, as Zeek's files
framework gets one from its MIME analyzer (pcapsmtp.report.zeeklogs)."""

from __future__ import annotations

from pcapsmtp.report.zeekconn import CONN_ID_FIELDS, conn_ids, fuid, is_local
from pcapsmtp.report.zeekwriter import zeek_time
from pcapsmtp.smtp.model import Session

FILES_FIELDS = (
    ("ts", "time"),
    ("fuid", "string"),
    ("uid", "string"),
    *CONN_ID_FIELDS,
    ("source", "string"),
    ("depth", "count"),
    ("analyzers", "set[string]"),
    ("mime_type", "string"),
    ("filename", "string"),
    ("duration", "interval"),
    ("local_orig", "bool"),
    ("is_orig", "bool"),
    ("seen_bytes", "count"),
    ("total_bytes", "count"),
    ("missing_bytes", "count"),
    ("overflow_bytes", "count"),
    ("timedout", "bool"),
    ("parent_fuid", "string"),
)
"""Zeek's Files::Info as its base scripts log it."""


def message_files(session: Session) -> dict[int, list[dict[str, object]]]:
    """The files.log rows of each message of the session (keyed by the id of the command
    that carried it): one for each leaf MIME part with a body, as Zeek's files framework
    gets one from its MIME analyzer. ``depth`` counts the MIME entities the connection
    began (Zeek's SMTP::State mime_depth): every header block of every message so far."""
    ids = conn_ids(session)
    local = is_local(session.client.ip)
    found: dict[int, list[dict[str, object]]] = {}
    entities = 0
    number = 0
    for command in session.commands:
        end = command.message
        if end is None or end.facts is None:
            continue
        number += 1
        rows = found[id(command)] = []
        for leaf in end.facts.leaves:
            if leaf.size == 0:
                continue
            depth = entities + leaf.entity
            rows.append(
                {
                    "ts": zeek_time(command.time_ns),
                    "fuid": fuid(str(ids["uid"]), number, depth),
                    **ids,
                    "source": "SMTP",
                    "depth": depth,
                    "analyzers": [],
                    "mime_type": leaf.content_type,
                    "filename": leaf.filename,
                    "duration": None,
                    "local_orig": local,
                    "is_orig": True,
                    "seen_bytes": leaf.size,
                    "total_bytes": None,
                    "missing_bytes": 0 if end.complete else None,
                    "overflow_bytes": 0,
                    "timedout": False,
                    "parent_fuid": None,
                }
            )
        entities += end.facts.entities
    return found
