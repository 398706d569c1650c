"""smtp.log as Zeek writes it: one row per mail transaction as Zeek's SMTP script draws the
line (pcapsmtp.report.zeeklogs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pcapsmtp.report.zeekconn import CONN_ID_FIELDS, conn_ids
from pcapsmtp.report.zeekfiles import message_files
from pcapsmtp.report.zeekwriter import zeek_time
from pcapsmtp.smtp.events import AUTH_RESPONSE, GREETING, Command, Reply
from pcapsmtp.smtp.model import Session

SMTP_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    *CONN_ID_FIELDS,
    ("trans_depth", "count"),
    ("helo", "string"),
    ("mailfrom", "string"),
    ("rcptto", "set[string]"),
    ("date", "string"),
    ("from", "string"),
    ("to", "set[string]"),
    ("cc", "set[string]"),
    ("reply_to", "string"),
    ("msg_id", "string"),
    ("in_reply_to", "string"),
    ("subject", "string"),
    ("x_originating_ip", "addr"),
    ("first_received", "string"),
    ("second_received", "string"),
    ("last_reply", "string"),
    ("path", "vector[addr]"),
    ("user_agent", "string"),
    ("tls", "bool"),
    ("fuids", "vector[string]"),
    ("is_webmail", "bool"),
)
"""Zeek's SMTP::Info as logged with its base scripts, plus ``is_webmail``, which the
policy script protocols/smtp/software adds (site/local.zeek loads it)."""

MAX_PATH = 1000
"""Zeek's SMTP::max_path_length."""

WEBMAIL_USER_AGENTS = re.compile(
    r"^iPlanet Messenger|^Sun Java\(tm\) System Messenger Express|\(IMP\)|^SquirrelMail"
    r"|^NeoMail|ZimbraWebClient"
)
"""Zeek's SMTP::webmail_user_agents (policy/protocols/smtp/software.zeek): a User-Agent
field (not X-Mailer) that matches marks the row ``is_webmail``."""

_EMAIL = re.compile(r"(?:^|[<,:\t ])[^<,:\t @]+@[^>,;\t ]+(?:[>,;\t ]|$)")
"""base/utils/email.zeek's address pattern ([:blank:] is space and tab)."""
_EMAIL_STRIP = re.compile(r"[<>,:;\t ]")
_MIME_ADDRESS = re.compile(r'(?:"[^"]*")?[^,]+@[^,]+')
"""split_mime_email_addresses: an address as the header gives it, display name included."""
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def email_addresses(text: str) -> list[str]:
    """The addresses in a command argument or a header element, as Zeek's
    extract_email_addrs_vec finds them."""
    return [_EMAIL_STRIP.sub("", found) for found in _EMAIL.findall(text)]


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))


def _mime_addresses(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return _unique(part.strip() for part in _MIME_ADDRESS.findall(text))


@dataclass(slots=True)
class _Row:
    """An smtp.log row being filled, as Zeek's SMTP::Info."""

    ts: int
    depth: int
    helo: str | None
    tls: bool
    mailfrom: str | None = None
    rcptto: list[str] = field(default_factory=list)
    headers: dict[str, object] = field(default_factory=dict)
    fuids: list[str] = field(default_factory=list)
    last_reply: str | None = None
    activity: bool = False
    """A MAIL, RCPT or STARTTLS was seen: Zeek writes only such rows."""


def _events(session: Session) -> list[tuple[int, int, Command | Reply]]:
    """The session's commands and replies in the order they crossed the wire."""
    found: dict[int, tuple[int, int, Command | Reply]] = {}
    order = 0
    replies = [session.greeting, *session.unsolicited]
    for command in session.commands:
        if command.verb not in (GREETING, AUTH_RESPONSE) and command.frame:
            found[id(command)] = (command.frame, order, command)
            order += 1
        replies.append(command.reply)
    for reply in replies:
        if reply is not None and reply.frame and id(reply) not in found:
            found[id(reply)] = (reply.frame, order, reply)
            order += 1
    return sorted(found.values(), key=lambda event: (event[0], event[1]))


def _headers(command: Command) -> dict[str, object]:
    """The message's top-level header fields as smtp.log names them."""
    facts = command.message.facts if command.message is not None else None
    if facts is None:
        return {}
    return {
        "date": _unfold(facts.date),
        "from": _unfold(facts.from_),
        "to": _mime_addresses(_unfold(facts.to)),
        "cc": _mime_addresses(_unfold(facts.cc)),
        "reply_to": _unfold(facts.reply_to),
        "msg_id": _unfold(facts.message_id),
        "in_reply_to": _unfold(facts.in_reply_to),
        "subject": _unfold(facts.subject_raw),
        "x_originating_ip": facts.x_originating_ip,
        "first_received": _unfold(facts.first_received),
        "second_received": _unfold(facts.second_received),
        "received_path": facts.received_path,
        "user_agent": _unfold(facts.user_agent),
        "is_webmail": facts.user_agent_field == "user-agent"
        and bool(WEBMAIL_USER_AGENTS.search(_unfold(facts.user_agent) or "")),
    }


def _unfold(value: str | None) -> str | None:
    """A header value as Zeek's MIME analyzer gives it: the line breaks of folding removed,
    the whitespace that followed them kept."""
    return None if value is None else _FOLD.sub("", value).strip()


def smtp_rows(
    session: Session, files: dict[int, list[dict[str, object]]] | None = None
) -> list[dict[str, object]]:
    """The smtp.log rows of one session, drawn where Zeek's SMTP script draws them;
    ``fuids`` from ``files`` (message_files), so that they join files.log."""
    files = message_files(session) if files is None else files
    rows: list[_Row] = []
    current: _Row | None = None
    helo: str | None = None
    transferred = 0
    tls = session.tls is not None and session.tls.mode == "implicit"

    def start(time_ns: int) -> _Row:
        return _Row(ts=time_ns, depth=transferred + 1, helo=helo, tls=tls)

    def flush(row: _Row, time_ns: int) -> _Row:
        """Zeek's smtp_message: a row with client activity is written and a new one begun."""
        if not row.activity:
            return row
        rows.append(row)
        return start(time_ns)

    for _frame, _order, event in _events(session):
        if current is None:
            current = start(event.time_ns)
        if isinstance(event, Reply):
            text = event.lines[-1] if event.lines else ""
            current.last_reply = f"{event.code} {text}"
            command = event.command
            if command is not None and command.verb == "STARTTLS" and event.code == 220:
                tls = current.tls = current.activity = True
            if command is not None and command.message is not None:
                transferred += 1
                if current.activity:
                    rows.append(current)
                current = start(event.time_ns)
            continue
        verb, argument = event.verb.upper(), event.argument
        if verb in ("HELO", "EHLO"):
            helo = current.helo = argument
        elif verb == "RCPT" and argument[:3].upper() == "TO:":
            for found in email_addresses(argument):
                current.rcptto.append(
                    found.replace("ORCPT=rfc822;", "").replace("ORCPT=rfc822", "")
                )
            current.activity = True
        elif verb == "MAIL" and argument[:5].upper() == "FROM:":
            current = flush(current, event.time_ns)
            addresses = email_addresses(argument)
            if addresses and addresses[0]:
                current.mailfrom = addresses[0]
            current.activity = True
        if event.message is not None:
            current.headers.update(_headers(event))
            current.fuids += [str(row["fuid"]) for row in files.get(id(event), ())]
    if current is not None and current.activity:
        rows.append(current)
    return [_smtp_dict(session, row) for row in rows]


def _path(ids: dict[str, object], hops: tuple[str, ...]) -> list[object]:
    """The server, the client, then each Received field's address that differs from the
    one before (Zeek's ``path``, at most MAX_PATH long)."""
    path = [ids["id.resp_h"], ids["id.orig_h"]]
    for hop in hops:
        if hop != path[-1] and len(path) < MAX_PATH:
            path.append(hop)
    return path


def _smtp_dict(session: Session, row: _Row) -> dict[str, object]:
    ids = conn_ids(session)
    headers = row.headers
    return {
        "ts": zeek_time(row.ts),
        **ids,
        "trans_depth": row.depth,
        "helo": row.helo,
        "mailfrom": row.mailfrom,
        "rcptto": _unique(row.rcptto) or None,
        "date": headers.get("date"),
        "from": headers.get("from"),
        "to": headers.get("to") or None,
        "cc": headers.get("cc") or None,
        "reply_to": headers.get("reply_to"),
        "msg_id": headers.get("msg_id"),
        "in_reply_to": headers.get("in_reply_to"),
        "subject": headers.get("subject"),
        "x_originating_ip": headers.get("x_originating_ip"),
        "first_received": headers.get("first_received"),
        "second_received": headers.get("second_received"),
        "last_reply": row.last_reply,
        "path": _path(ids, headers.get("received_path", ())),
        "user_agent": headers.get("user_agent"),
        "tls": row.tls,
        "fuids": row.fuids,
        "is_webmail": headers.get("is_webmail", False),
    }
