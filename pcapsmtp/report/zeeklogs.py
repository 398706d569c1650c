"""smtp.log, conn.log and files.log as Zeek writes them, so zeek-cut and the SIEM parsers
built for Zeek read what pcapsmtp found (``analyze --format zeek`` and ``--format
zeek-json``).

Learnt from Zeek's own scripts (zeek/zeek: base/protocols/smtp/main.zeek, files.zeek and
entities.zeek, base/protocols/conn/main.zeek, base/frameworks/files/main.zeek), none of it
copied: the field names, types and order of the logs, which MIME entity is a file and how
deep, and when Zeek writes an smtp.log row: one per mail transaction as its script draws the
line (a row starts with the connection's first SMTP line, at the reply to a message, or at a
MAIL after client activity; a row with no MAIL, RCPT or STARTTLS is not written). The TCP
facts are the analysis's own: conn_state and history come from pcapsmtp.tcp.state, computed
once while reading. The layout and the escaping of wire text: pcapsmtp.report.zeekwriter.

``local_orig``/``local_resp`` are Zeek's defaults: with no ``Site::local_nets`` of its own,
Zeek counts its private address space as local (``Site::private_address_space_is_local``).
docs/zeek-logs.md lists every difference and why.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from hashlib import sha256

from pcapsmtp.analysis.model import Analysis
from pcapsmtp.capture.addresses import address
from pcapsmtp.report.zeekwriter import ZeekLog, json_lines, tsv, zeek_time
from pcapsmtp.smtp.events import AUTH_RESPONSE, GREETING, Command, Reply
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TcpFlow

SMTP_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
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

CONN_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
)
"""Zeek's Conn::Info."""

FILES_FIELDS = (
    ("ts", "time"),
    ("fuid", "string"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
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

MAX_PATH = 1000
"""Zeek's SMTP::max_path_length."""

WEBMAIL_USER_AGENTS = re.compile(
    r"^iPlanet Messenger|^Sun Java\(tm\) System Messenger Express|\(IMP\)|^SquirrelMail"
    r"|^NeoMail|ZimbraWebClient"
)
"""Zeek's SMTP::webmail_user_agents (policy/protocols/smtp/software.zeek): a User-Agent
field (not X-Mailer) that matches marks the row ``is_webmail``."""

PRIVATE_ADDRESS_SPACE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "2002::/24", "10.0.0.0/8", "2002:a00::/24", "100.64.0.0/10",
        "2002:6440::/26", "127.0.0.0/8", "2002:7f00::/24", "169.254.0.0/16", "2002:a9fe::/32",
        "172.16.0.0/12", "2002:ac10::/28", "192.0.0.0/24", "2002:c000::/40", "192.0.2.0/24",
        "2002:c000:200::/40", "192.168.0.0/16", "2002:c0a8::/32", "198.18.0.0/15",
        "2002:c612::/31", "198.51.100.0/24", "2002:c633:6400::/40", "203.0.113.0/24",
        "2002:cb00:7100::/40", "224.0.0.0/24", "2002:e000::/40", "239.0.0.0/8",
        "2002:ef00::/24", "240.0.0.0/4", "2002:f000::/20", "255.255.255.255/32",
        "2002:ffff:ffff::/48", "::/128", "::1/128", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:2::/48", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    )
)  # fmt: skip
"""Zeek's Site::private_address_space (base/utils/site.zeek), which its default
Site::private_address_space_is_local makes the local networks."""

TUNNEL_SERVICES = {"http-connect": "http", "socks5": "socks"}
"""The service Zeek names for the proxy an SMTP session was tunnelled through."""


def zeek_logs(analysis: Analysis) -> list[ZeekLog]:
    """smtp.log, conn.log and files.log of the analysis's sessions, in the order of their
    first frames (Zeek writes a row when it is done with it; the order of rows carries
    nothing)."""
    times = [t for c in analysis.captures for t in (c.first_time_ns, c.last_time_ns) if t]
    span = (min(times), max(times)) if times else (None, None)
    smtp = ZeekLog("smtp", SMTP_FIELDS, [], *span)
    conn = ZeekLog("conn", CONN_FIELDS, [], *span)
    files = ZeekLog("files", FILES_FIELDS, [], *span)
    for session in analysis.sessions:
        conn.rows.append(conn_row(session))
        found = message_files(session)
        smtp.rows.extend(smtp_rows(session, found))
        files.rows.extend(row for rows in found.values() for row in rows)
    smtp.rows.sort(key=lambda row: row["ts"])
    files.rows.sort(key=lambda row: row["ts"])
    return [smtp, conn, files]


def render_zeek(analysis: Analysis, tz=None) -> str:
    """The logs in Zeek's TSV layout, smtp.log, conn.log then files.log, each with its own
    headers: zeek-cut reads them one after the other (it starts again at each
    ``#fields``)."""
    return "".join(tsv(log) for log in zeek_logs(analysis))


def render_zeek_json(analysis: Analysis, tz=None) -> str:
    """The logs as JSON lines, smtp.log's, conn.log's then files.log's; each line carries
    ``_path`` (as Zeek's JSON streaming logs do) to tell them apart."""
    return "".join(json_lines(log, with_path=True) for log in zeek_logs(analysis))


def zeek_files(analysis: Analysis, as_json: bool = False) -> dict[str, str]:
    """File name -> contents for ``-o DIR``: smtp.log, conn.log and files.log (JSON lines
    with ``as_json``, named .log as Zeek names them with LogAscii::use_json)."""
    if as_json:
        return {f"{log.path}.log": json_lines(log) for log in zeek_logs(analysis)}
    return {f"{log.path}.log": tsv(log) for log in zeek_logs(analysis)}


# -- the uid -------------------------------------------------------------------------------

_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base62(value: int) -> str:
    """Least significant digit first, as Zeek's uitoa_n writes a UID."""
    digits = _BASE62[value % 62]
    value //= 62
    while value:
        digits += _BASE62[value % 62]
        value //= 62
    return digits


def _zeek_id(letter: str, key: bytes) -> str:
    digest = sha256(key).digest()
    return letter + _base62(int.from_bytes(digest[:8])) + _base62(int.from_bytes(digest[8:12]))


def uid(flow: TcpFlow) -> str:
    """A Zeek-style connection uid ('C' and 96 bits in base 62) that is the same whenever
    the same connection is read: a hash of its addresses, ports, first frame and time, not
    Zeek's random one (the two never match)."""
    client, server = flow.endpoints[flow.client], flow.endpoints[flow.server]
    key = b"|".join(
        [
            client.ip,
            server.ip,
            b"%d|%d|%d|%d" % (client.port, server.port, flow.first_frame, flow.first_time_ns),
        ]
    )
    return _zeek_id("C", key)


def fuid(connection: str, message: int, entity: int) -> str:
    """A Zeek-style file id ('F' and 96 bits in base 62) for a MIME entity: a hash of the
    connection's uid, the message's number in it and the entity's depth, the same whenever
    the same capture is read (Zeek's are random)."""
    return _zeek_id("F", b"%s|%d|%d" % (connection.encode(), message, entity))


# -- conn.log ------------------------------------------------------------------------------


def _ids(session: Session) -> dict[str, object]:
    client, server = session.client, session.server
    return {
        "uid": uid(session.flow),
        "id.orig_h": address(client.ip),
        "id.orig_p": client.port,
        "id.resp_h": address(server.ip),
        "id.resp_p": server.port,
    }


def _services(session: Session) -> str | None:
    """What Zeek's analyzers would confirm: smtp once the client sent a command, ssl once a
    TLS handshake was seen, the proxy's protocol for a tunnelled session."""
    found = set()
    if any(c.verb not in (GREETING, AUTH_RESPONSE) for c in session.commands):
        found.add("smtp")
        if session.tunnel in TUNNEL_SERVICES:
            found.add(TUNNEL_SERVICES[session.tunnel])
    if session.tls is not None and session.tls.facts is not None:
        found.add("ssl")
    return ",".join(sorted(found)) or None


def _end_ns(flow: TcpFlow) -> int:
    """The time Zeek's duration ends: the last packet, or, once both sides sent a FIN or RST,
    the packet with which the second did (later packets do not move it)."""
    closing = {}
    for note in flow.notes:
        if note.tcp_flags & (TH_FIN | TH_RST) and note.direction not in closing:
            closing[note.direction] = note.time_ns
    if len(closing) == 2 and all(e.closed_frame is not None for e in flow.endpoints):
        return max(closing.values())
    return flow.last_time_ns


def is_local(ip: bytes) -> bool:
    """Zeek's Site::is_local_addr with its default local networks."""
    found = ipaddress.ip_address(ip)
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    return any(found in net for net in PRIVATE_ADDRESS_SPACE)


def conn_row(session: Session) -> dict[str, object]:
    flow = session.flow
    client, server = session.client, session.server
    duration = zeek_time(_end_ns(flow)) - zeek_time(flow.first_time_ns)
    row: dict[str, object] = {"ts": zeek_time(flow.first_time_ns), **_ids(session)}
    row["proto"] = "tcp"
    row["service"] = _services(session)
    row["duration"] = duration if duration > 0 else None
    row["orig_bytes"] = client.stream_bytes + client.gap_bytes if duration > 0 else None
    row["resp_bytes"] = server.stream_bytes + server.gap_bytes if duration > 0 else None
    row["conn_state"] = str(flow.state)
    row["local_orig"] = is_local(client.ip)
    row["local_resp"] = is_local(server.ip)
    row["missed_bytes"] = client.gap_bytes + server.gap_bytes
    row["history"] = flow.history or None
    row["orig_pkts"] = client.packets
    row["orig_ip_bytes"] = client.ip_bytes
    row["resp_pkts"] = server.packets
    row["resp_ip_bytes"] = server.ip_bytes
    row["tunnel_parents"] = None
    row["ip_proto"] = 6
    return row


# -- files.log -----------------------------------------------------------------------------


def message_files(session: Session) -> dict[int, list[dict[str, object]]]:
    """The files.log rows of each message of the session (keyed by the id of the command
    that carried it): one for each leaf MIME part with a body, as Zeek's files framework
    gets one from its MIME analyzer. ``depth`` counts the MIME entities the connection
    began (Zeek's SMTP::State mime_depth): every header block of every message so far."""
    ids = _ids(session)
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


# -- smtp.log ------------------------------------------------------------------------------

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
    ids = _ids(session)
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
