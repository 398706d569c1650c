"""Postfix log lines (smtpd, cleanup, qmgr, the delivery agents, postscreen), as its daemons
write them (smtpd.c, qmgr, global/log_adhoc.c for ``to=..., relay=..., status=``)."""

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

_QUEUE_ID = r"([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}|NOQUEUE)"
# Short ids are hex; long ids (enable_long_queue_ids) use a base-51 alphabet without vowels.
_QID_PREFIX = re.compile(_QUEUE_ID + r": (.*)", re.S)
# "unknown[10.0.0.5]", "mx.example.com[2001:db8::25]:25", "[10.0.0.5]:40000" (postscreen).
_HOST = r"([^\s\[\]]*)\[([0-9A-Fa-f.:]+|[^\]\s]+)\](?::(\d+))?"
_CONNECT_FROM = re.compile(r"connect from " + _HOST)
_DISCONNECT_FROM = re.compile(
    r"(?:disconnect from|lost connection after \S+(?: \([^)]*\))? from"
    r"|timeout after \S+(?: \([^)]*\))? from|too many errors after \S+ from) " + _HOST
)
_POSTSCREEN_CONNECT = re.compile(r"CONNECT from \[([0-9A-Fa-f.:]+)\]:(\d+) to")
_CLIENT = re.compile(r"client=" + _HOST)
_REJECT = re.compile(
    r"(?:milter-)?(?:reject|defer|discard|hold|filter|redirect)\S*: (\S+) from " + _HOST + r": "
    r"(\d{3}) (?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)",
    re.S,
)
_REJECT_FIELDS = re.compile(r"; (?=(?:from|to|proto|helo)=)")
_FIELD = re.compile(r"(\w+)=(<[^>]*>|[^,\s]*)")
_STATUS = re.compile(r"status=(\w+)(?: \((.*)\))?\s*$", re.S)
_RELAY = re.compile(r"relay=" + _HOST)
_CONNECT_TO = re.compile(
    r"connect to " + _HOST + r": (.*)",
    re.S,
)
_SAID = re.compile(r"host " + _HOST + r" (?:said|refused to talk to me): (\d{3})[ -](.*)", re.S)
_LOST_WITH = re.compile(r"(?:lost connection with|conversation with) " + _HOST + r" (.*)", re.S)
_INBOUND_DAEMONS = ("smtpd", "postscreen", "submission", "smtps")


def _daemon(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def _address(host: str, ip: str, port: str | None) -> tuple[str | None, int | None, str | None]:
    """(ip, port, name) of a Postfix 'name[ip]:port', ip None when it is not an address."""
    usable = ip if ip and (ip.count(".") == 3 or ":" in ip) else None
    if usable and usable.lower().startswith("ipv6:"):
        usable = usable[5:]
    return usable, int(port) if port else None, host or None


def queue_id_of(message: str) -> str | None:
    """The queue id a message starts with, without parsing the rest."""
    match = _QID_PREFIX.match(message)
    return match.group(1) if match and match.group(1) != "NOQUEUE" else None


def parse(line: LogLine, message: str) -> None:
    """Fill ``line`` from a Postfix message (the text after 'postfix/daemon[pid]: ')."""
    daemon = _daemon(line.program)
    match = _QID_PREFIX.match(message)
    if match:
        qid, rest = match.groups()
        if qid != "NOQUEUE":
            line.queue_id = qid
        _with_queue_id(line, daemon, rest)
        return
    _without_queue_id(line, daemon, message)


def _without_queue_id(line: LogLine, daemon: str, message: str) -> None:
    if daemon == "postscreen":
        found = _POSTSCREEN_CONNECT.match(message)
        if found:
            line.event, line.direction = CONNECT, INBOUND
            line.peer, line.peer_port = found.group(1), int(found.group(2))
        return
    if daemon in _INBOUND_DAEMONS or daemon.endswith("smtpd"):
        for pattern, event in ((_CONNECT_FROM, CONNECT), (_DISCONNECT_FROM, DISCONNECT)):
            found = pattern.match(message)
            if found:
                line.event, line.direction = event, INBOUND
                line.peer, line.peer_port, line.peer_name = _address(*found.groups())
                line.detail = message if event == DISCONNECT else None
                return
        return
    found = _CONNECT_TO.match(message)
    if found and daemon in ("smtp", "lmtp"):
        line.event, line.direction = CONNECT_FAILED, OUTBOUND
        line.peer, line.peer_port, line.peer_name = _address(*found.groups()[:3])
        line.detail = found.group(4)


def _with_queue_id(line: LogLine, daemon: str, rest: str) -> None:
    reject = _REJECT.match(rest)
    if reject:
        _reject(line, reject)
        return
    if rest.startswith("client="):
        found = _CLIENT.match(rest)
        line.event, line.direction = RECEIVED, INBOUND
        if found:
            line.peer, line.peer_port, line.peer_name = _address(*found.groups())
        return
    if "status=" in rest and "to=" in rest:
        _delivery(line, daemon, rest)
        return
    if daemon in ("smtp", "lmtp"):
        _client_trouble(line, rest)
        return
    line.event = MESSAGE
    if rest.startswith("from=") and daemon in ("qmgr", "oqmgr"):
        line.sender = _fields(rest).get("from", "").strip("<>")
        line.queued = True


def _fields(text: str) -> dict[str, str]:
    return {key: value for key, value in _FIELD.findall(text)}


def _reject(line: LogLine, found: re.Match) -> None:
    stage, host, ip, port, code, enhanced, text = found.groups()
    line.event, line.direction = REJECTED, INBOUND
    line.peer, line.peer_port, line.peer_name = _address(host, ip, port)
    line.code, line.dsn = int(code), enhanced
    line.status = "deferred" if code.startswith("4") else "rejected"
    reason, *tail = _REJECT_FIELDS.split(text, maxsplit=1)
    line.detail = f"{stage}: {code} {enhanced + ' ' if enhanced else ''}{reason}"
    fields = _fields(tail[0]) if tail else {}
    line.sender = fields.get("from", "").strip("<>") or None
    line.recipient = fields.get("to", "").strip("<>") or None


def _delivery(line: LogLine, daemon: str, rest: str) -> None:
    fields = _fields(rest)
    line.event = DELIVERY
    line.recipient = fields.get("to", "").strip("<>") or None
    line.dsn = fields.get("dsn") or None
    status = _STATUS.search(rest)
    if status:
        line.status, line.detail = status.group(1), status.group(2)
    relay = _RELAY.search(rest)
    if relay:
        line.peer, line.peer_port, line.peer_name = _address(*relay.groups())
    elif fields.get("relay") not in (None, "none"):
        line.peer_name = fields["relay"]  # a local transport: virtual, local, dovecot
    elif line.detail:  # relay=none: "connect to mx[ip]:25: Connection refused"
        found = _CONNECT_TO.search(line.detail)
        if found:
            line.peer, line.peer_port, line.peer_name = _address(*found.groups()[:3])
    if line.peer and daemon in ("smtp", "lmtp"):
        line.direction = OUTBOUND
    _remote_reply(line)


def _remote_reply(line: LogLine) -> None:
    """The next hop's reply quoted in the status: its code and the id it gave."""
    detail = line.detail or ""
    said = _SAID.search(detail)
    if said:
        line.code = int(said.group(4))
        return
    reply = re.match(r"(\d{3})[ -](.*)", detail, re.S)
    if reply:
        line.code = int(reply.group(1))
        if line.code // 100 == 2:
            line.remote_id = queue_ids.queue_id(reply.group(2))


def _client_trouble(line: LogLine, rest: str) -> None:
    """smtp(8) lines about one attempt: the server said no, or the connection failed."""
    said = _SAID.match(rest)
    lost = _LOST_WITH.match(rest)
    found = said or lost
    if not found:
        line.event = MESSAGE
        return
    line.event, line.direction = DELIVERY, OUTBOUND
    line.peer, line.peer_port, line.peer_name = _address(*found.groups()[:3])
    # The status=deferred or bounced line that follows carries the status.
    line.detail = f"{said.group(4)} {said.group(5)}" if said else rest
    line.code = int(said.group(4)) if said else None
