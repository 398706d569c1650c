"""Exim main log lines (spec chapter "Log files"): arrivals ``<=``, deliveries ``=>`` / ``->``,
deferrals ``==``, bounces ``**``, and the connection lines (``SMTP connection from``, ACL
rejections with ``H=``)."""

from __future__ import annotations

import re

from pcapsmtp.maillog.model import (
    CONNECT,
    CONNECT_FAILED,
    DELIVERY,
    DISCONNECT,
    INBOUND,
    MESSAGE,
    OUTBOUND,
    RECEIVED,
    REJECTED,
    LogLine,
)
from pcapsmtp.smtp import queue_ids

# 6-6-2 ids; 6-11-4 since Exim 4.97.
_ID = r"[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{11}-[0-9A-Za-z]{4}|[0-9A-Za-z]{6}-[0-9A-Za-z]{2})"
_ID_ONLY = re.compile(rf"({_ID}) ")
_MESSAGE = re.compile(rf"({_ID}) (?:(<=|=>|->|\*>|\*\*|==) )?(.*)", re.S)
# The stamp Exim puts on lines it sends to syslog (syslog_timestamp), and its pid selector.
_OWN_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: [+-]\d{4})? (?:\[\d+\] )?")
_HOST = re.compile(r"\[([0-9A-Fa-f.:]+)\](?::(\d+))?")
_H_FIELD = re.compile(r"\bH=(\S*)(?: \([^)]*\))? \[([0-9A-Fa-f.:]+)\](?::(\d+))?")
_CONFIRMATION = re.compile(r'\bC="((?:[^"\\]|\\.)*)"')
_REMOTE_ERROR = re.compile(r"SMTP error from remote mail server after .*?: (\d{3})[ -]")
# Older Exims: "** x R=dnslookup T=remote_smtp: host mx.example [192.0.2.25]: 550 No such user".
_HOST_SAID = re.compile(r"\bhost (\S+) \[([0-9A-Fa-f.:]+)\](?::(\d+))?: (\d{3})[ -]")
_CONNECT_TROUBLE = re.compile(
    r"Connection refused|Connection timed out|No route to host|Network is unreachable"
    r"|Connection reset by peer|timed out",
    re.I,
)
STATUSES = {"<=": None, "=>": "sent", "->": "sent", "*>": "sent", "**": "bounced", "==": "deferred"}


def queue_id_of(message: str) -> str | None:
    message = _OWN_STAMP.sub("", message, count=1) if message[:1].isdigit() else message
    match = _ID_ONLY.match(message)
    return match.group(1) if match else None


def parse(line: LogLine, message: str) -> None:
    """Fill ``line`` from an Exim log message (its own time stamp already removed)."""
    message = _OWN_STAMP.sub("", message, count=1) if message[:1].isdigit() else message
    found = _MESSAGE.match(message)
    if found:
        line.queue_id = found.group(1)
        _about_message(line, found.group(2), found.group(3))
    else:
        _about_connection(line, message)


def _peer(line: LogLine, text: str) -> bool:
    found = _H_FIELD.search(text) or _HOST_SAID.search(text)
    if found:
        name, ip, port = found.groups()[:3]
        name = None if not name or name.startswith("(") else name
        line.peer, line.peer_port, line.peer_name = ip, int(port) if port else None, name
    return found is not None


def _about_message(line: LogLine, flag: str | None, rest: str) -> None:
    if flag is None:
        _message_note(line, rest)
        return
    address = rest.split(" ", 1)[0]
    if flag == "<=":
        line.event, line.sender = RECEIVED, address if address != "<>" else ""
        line.queued = True
        line.direction = INBOUND if _peer(line, rest) else None
        return
    line.event, line.status, line.recipient = DELIVERY, STATUSES[flag], address
    if _peer(line, rest):
        line.direction = OUTBOUND
    confirmation = _CONFIRMATION.search(rest)
    if confirmation:
        reply = confirmation.group(1)
        line.code = int(reply[:3]) if reply[:3].isdigit() else None
        line.remote_id = queue_ids.queue_id(reply[4:]) if line.code == 250 else None
    error = _REMOTE_ERROR.search(rest) or _HOST_SAID.search(rest)
    if error:
        line.code = int(error.groups()[-1])
    line.detail = rest.split(": ", 1)[1] if flag in ("==", "**") and ": " in rest else None


def _message_note(line: LogLine, rest: str) -> None:
    """'Completed', 'H=... rejected after DATA', 'mx [1.2.3.4] Connection refused'."""
    line.event = MESSAGE
    if rest.startswith("H=") and "rejected" in rest:
        _reject(line, rest)
        return
    host = _HOST.search(rest)
    if host and _CONNECT_TROUBLE.search(rest):
        line.event, line.direction = CONNECT_FAILED, OUTBOUND
        line.peer = host.group(1)
        line.peer_port = int(host.group(2)) if host.group(2) else None
        line.detail = rest


def _reject(line: LogLine, rest: str) -> None:
    line.event, line.direction = REJECTED, INBOUND
    _peer(line, rest)
    line.status = "deferred" if "temporarily rejected" in rest else "rejected"
    line.detail = rest[rest.index("rejected") :] if "rejected" in rest else rest


def _about_connection(line: LogLine, message: str) -> None:
    if message.startswith("H=") and "rejected" in message:
        _reject(line, message)
        return
    if "connection from" not in message:
        return
    host = _HOST.search(message)
    if host is None:
        return
    line.peer = host.group(1)
    line.peer_port = int(host.group(2)) if host.group(2) else None
    line.direction = INBOUND
    opened = message.startswith("SMTP connection from") and "connection count" in message
    line.event = CONNECT if opened else DISCONNECT
    line.detail = None if opened else message
