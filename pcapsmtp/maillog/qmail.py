"""qmail-send log lines (``new msg``, ``info msg N: ... qp P``, ``starting delivery D: msg N``,
``delivery D: success|deferral|failure: ...``) and tcpserver's connection lines in front of
qmail-smtpd (``tcpserver: ok PID local:ip:port :remoteip::port``).

qmail-smtpd answers the end of data with ``ok <time> qp <P>``: P is the pid of the qmail-queue
that took the message, and qmail-send logs it in ``info msg N: ... qp P``; so P is the id the
wire shows and N the one the log uses."""

from __future__ import annotations

import re

from pcapsmtp.maillog.model import (
    CONNECT,
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

PROGRAMS = ("qmail", "qmail-send", "qmail-smtpd", "tcpserver", "splogger")
_SPLOGGER_STAMP = re.compile(r"\d{9,10}\.\d{1,9} ")
_INFO = re.compile(r"info msg (\d+): bytes \d+ from <([^>]*)> qp (\d+)")
_NEW_END = re.compile(r"(?:new|end) msg (\d+)")
_STARTING = re.compile(r"starting delivery (\d+): msg (\d+) to (local|remote) (\S+)")
_DELIVERY = re.compile(r"delivery (\d+): (success|deferral|failure): (.*)", re.S)
_TCPSERVER = re.compile(r"tcpserver: (ok|end|deny) (\d+) ?(.*)", re.S)
# "1.2.3.4_accepted_message./...", "Connected_to_1.2.3.4_but_greeting_failed./...", and with
# some patches the recipient first: "(bob@example.net)_1.2.3.4_accepted_message./...".
_REMOTE_IP = re.compile(r"^(?:\([^)]*\)_)?(?:Connected_to_)?(\d{1,3}(?:\.\d{1,3}){3})[_ ]")
_SAID = re.compile(r"Remote_host_said:_(\d{3})_(.*?)/?$", re.S)
STATUSES = {"success": "sent", "deferral": "deferred", "failure": "bounced"}


class QmailParser:
    """qmail-send's delivery numbers name the message only in the 'starting delivery' line:
    this remembers which message each open delivery number belongs to."""

    def __init__(self) -> None:
        self.deliveries: dict[str, str] = {}

    def parse(self, line: LogLine, message: str) -> None:
        message = _SPLOGGER_STAMP.sub("", message, count=1)
        if message.startswith("tcpserver: "):
            _tcpserver(line, message)
            return
        for handler in (self._info, self._starting, self._delivery, self._new_end):
            if handler(line, message):
                return

    def _info(self, line: LogLine, message: str) -> bool:
        found = _INFO.match(message)
        if found:
            line.event, line.queue_id = RECEIVED, found.group(1)
            line.sender, line.aliases = found.group(2), (found.group(3),)
            line.queued = True
        return found is not None

    def _new_end(self, line: LogLine, message: str) -> bool:
        found = _NEW_END.match(message)
        if found:
            line.event, line.queue_id = MESSAGE, found.group(1)
        return found is not None

    def _starting(self, line: LogLine, message: str) -> bool:
        found = _STARTING.match(message)
        if found:
            number, qid, _where, recipient = found.groups()
            self.deliveries[number] = qid
            line.event, line.queue_id, line.delivery = MESSAGE, qid, number
            line.recipient = recipient
        return found is not None

    def _delivery(self, line: LogLine, message: str) -> bool:
        found = _DELIVERY.match(message)
        if not found:
            return False
        number, outcome, text = found.groups()
        line.event, line.delivery = DELIVERY, number
        line.queue_id = self.deliveries.pop(number, None)
        line.status, line.detail = STATUSES[outcome], text.replace("_", " ").rstrip("/ ")
        ip = _REMOTE_IP.match(text)
        if ip:
            line.peer, line.direction = ip.group(1), OUTBOUND
        said = _SAID.search(text)
        if said:
            line.code = int(said.group(1))
            if outcome == "success":
                line.remote_id = queue_ids.queue_id(said.group(2).replace("_", " "))
        return True


def _tcpserver(line: LogLine, message: str) -> None:
    found = _TCPSERVER.match(message)
    if not found:
        return
    kind, pid, rest = found.groups()
    line.pid = int(pid)
    line.direction = INBOUND
    line.event = {"ok": CONNECT, "end": DISCONNECT, "deny": REJECTED}[kind]
    if kind == "end":
        return
    # "local:ip:port remotehost:remoteip:remoteinfo:remoteport"
    parts = rest.split(" ")
    remote = parts[1].split(":") if len(parts) > 1 else []
    if len(remote) >= 4:
        line.peer = remote[1] or None
        line.peer_port = int(remote[-1]) if remote[-1].isdigit() else None
    if kind == "deny":
        line.status = "rejected"
