"""Sendmail log lines (sendmail, sm-mta): ``from=`` when a message arrives, ``to=`` with
``stat=`` for each delivery attempt, ``reject=`` from the rulesets, and the connection notes."""

from __future__ import annotations

import re

from pcapsmtp.maillog.model import (
    DELIVERY,
    DISCONNECT,
    INBOUND,
    MESSAGE,
    OUTBOUND,
    RECEIVED,
    REJECTED,
    LogLine,
)
from pcapsmtp.smtp import codes, queue_ids

PROGRAMS = ("sendmail", "sm-mta", "sm-msp-queue")
_QID = re.compile(r"([0-9A-Za-z]{8}\d{5,6}|[0-9A-Za-z]{14}|NOQUEUE): (.*)", re.S)
_RELAY = re.compile(r"relay=(?:([^\s,\[]+) )?\[(?:IPv6:)?([0-9A-Fa-f.:]+)\]")
_FIELD = re.compile(r"(\w+)=(<[^>]*>|[^,]*)")
_SMTP_MAILERS = ("esmtp", "smtp", "relay", "dsmtp", "smtp8")
_INPUT_ENDED = re.compile(
    r"lost input channel from|did not issue \S+ during connection|timeout waiting for input from"
    r"|collect: (?:premature EOM|I/O error|read timeout)"
)
_STAT_REPLY = re.compile(r"\((\d{3})[ -](.*)\)\s*$", re.S)
_DEFERRED_REPLY = re.compile(r"Deferred: (\d{3})[ -](.*)", re.S)


def _fields(text: str) -> dict[str, str]:
    return {key: value.strip() for key, value in _FIELD.findall(text)}


def _relay(line: LogLine, text: str) -> None:
    found = _RELAY.search(text)
    if found:
        name, ip = found.groups()
        line.peer, line.peer_name = ip, (name or "").rstrip(".") or None


def queue_id_of(message: str) -> str | None:
    match = _QID.match(message)
    return match.group(1) if match and match.group(1) != "NOQUEUE" else None


def parse(line: LogLine, message: str) -> None:
    found = _QID.match(message)
    if not found:
        return
    qid, rest = found.groups()
    line.queue_id = None if qid == "NOQUEUE" else qid
    fields = _fields(rest)
    if "reject" in fields:
        _reject(line, rest, fields)
    elif rest.startswith("from="):
        line.event, line.sender = RECEIVED, fields.get("from", "").strip("<>")
        line.queued = True
        _relay(line, rest)
        line.direction = INBOUND if line.peer else None
    elif rest.startswith("to=") and "stat=" in rest:
        _delivery(line, rest, fields)
    elif _INPUT_ENDED.search(rest):
        line.event, line.direction, line.detail = DISCONNECT, INBOUND, rest
        ip = re.search(r"\[(?:IPv6:)?([0-9A-Fa-f.:]+)\]", rest)
        line.peer = ip.group(1) if ip else None
    else:
        line.event = MESSAGE


def _reject(line: LogLine, rest: str, fields: dict[str, str]) -> None:
    line.event, line.direction = REJECTED, INBOUND
    _relay(line, rest)
    text = fields["reject"]
    code = text[:3]
    line.code = int(code) if code.isdigit() else None
    line.dsn = codes.parse_enhanced(text[4:]) if line.code else None
    line.status = "deferred" if code.startswith("4") else "rejected"
    line.detail = text
    line.recipient = fields.get("arg1", "").strip("<>") or None


def _delivery(line: LogLine, rest: str, fields: dict[str, str]) -> None:
    line.event = DELIVERY
    line.recipient = fields.get("to", "").split(",")[0].strip("<>") or None
    line.dsn = fields.get("dsn") or None
    stat = rest.split("stat=", 1)[1]
    line.detail = stat
    line.status = _status(stat, line.dsn)
    _relay(line, rest)
    if line.peer and fields.get("mailer") in _SMTP_MAILERS:
        line.direction = OUTBOUND
    reply = _STAT_REPLY.search(stat) or _DEFERRED_REPLY.match(stat)
    if reply:
        line.code = int(reply.group(1))
        if line.status == "sent":
            line.remote_id = queue_ids.queue_id(reply.group(2))
    elif line.status == "sent":  # "Sent (4ABC Message accepted for delivery)": no code
        inner = re.search(r"\((.*)\)\s*$", stat)
        line.remote_id = queue_ids.queue_id(inner.group(1)) if inner else None


def _status(stat: str, dsn: str | None) -> str:
    if stat.startswith("Sent"):
        return "sent"
    if stat.startswith("Deferred"):
        return "deferred"
    if dsn and dsn[:1] == "2":
        return "sent"
    if dsn and dsn[:1] == "4":
        return "deferred"
    return "bounced"
