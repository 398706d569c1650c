"""What a linked log says against what the wire shows, in plain sentences.

The log of the session's server says whether it queued each message (what its 250 after the
data promised) and which commands it refused; the log of the session's client says how it
judged the attempt (sent, deferred, bounced). Both are compared with the replies on the wire.
What the server did with a message afterwards (the next hop, the mailbox) is not this
session's doing; it is reported as 'later'.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.health import server_replies
from pcapsmtp.maillog.model import CONNECT_FAILED, DELIVERY, DISCONNECT, REJECTED, LogLine
from pcapsmtp.maillog.units import SERVER_SIDE
from pcapsmtp.smtp.events import CLIENT
from pcapsmtp.smtp.model import Outcome, Session

AGREES = "agrees"
DIFFERS = "differs"
LATER = "later"
NOTE = "note"
FORMATS_TRIED = (
    "Postfix, Exim, Sendmail and qmail lines, with RFC 3164 syslog, RFC 3339 / ISO 8601, "
    "RFC 5424, Exim mainlog and TAI64N (multilog) time stamps"
)
"""What a log line is read as (pcapsmtp.maillog.stamps and one module per MTA), to name
when none fitted."""
WIRE_FAILED = (
    Outcome.DEFERRED,
    Outcome.REJECTED,
    Outcome.RESET,
    Outcome.TIMEOUT,
    Outcome.REFUSED,
    Outcome.UNREACHABLE,
    Outcome.TLS_FAILED,
)


@dataclass(slots=True, frozen=True)
class Note:
    verdict: str
    """AGREES, DIFFERS, LATER (what became of the message afterwards) or NOTE."""
    text: str
    line: LogLine | None = None

    def where(self) -> str:
        return f"line {self.line.number}" if self.line else ""


def _ref(line: LogLine) -> str:
    return f"(log line {line.number})"


def compare(session: Session, link) -> list:
    notes = _server_log(session, link) if link.side == SERVER_SIDE else _client_log(session, link)
    other = _other_address(session, link)
    return [other, *notes] if other else notes


def _wire_codes(session: Session) -> set[int]:
    return {reply.code for reply in server_replies(session)}


def _server_log(session: Session, link) -> list[Note]:
    notes: list[Note] = []
    delivered = {t.queue_id: t for t in session.transactions if t.outcome == Outcome.DELIVERED}
    for qid, history in link.messages.items():
        queued = next((line for line in history if line.queued), None)
        names = {qid, *(alias for line in history for alias in line.aliases)}
        on_wire = any(_same_id(name, wire, session) for name in names for wire in delivered)
        if queued and on_wire:
            notes.append(
                Note(
                    AGREES,
                    f"the server queued {qid} {_ref(queued)}, as its reply to the end of data says",
                    queued,
                )
            )
        elif queued and not on_wire:
            notes.append(_queued_unseen(session, qid, queued))
        elif on_wire:
            notes.append(
                Note(
                    DIFFERS,
                    f"the wire shows {qid} accepted, but this log never "
                    "shows it queued (a log line missing, or the log cut)",
                )
            )
        else:
            notes.append(
                Note(
                    AGREES,
                    f"the server opened {qid} but never queued it: the "
                    f"message was not accepted, as the wire shows ({session.outcome})",
                )
            )
        notes += [_later(line) for line in history if line.event == DELIVERY and line.status]
    codes = _wire_codes(session)
    for line in link.unit.lines if link.unit else []:
        if line.event == REJECTED:
            notes.append(_rejection(session, line, codes))
        elif line.event == DISCONNECT and _abnormal_end(line):
            notes.append(
                Note(
                    NOTE,
                    f"the server logged '{line.detail}' {_ref(line)}; the wire "
                    f"shows the session {session.outcome}",
                    line,
                )
            )
    return notes


def _same_id(logged: str, wire: str | None, session: Session) -> bool:
    """The ids agree; a reply cut by the snap length may carry only the id's beginning."""
    if not wire:
        return False
    cut = any(t.queue_id == wire and t.final and t.final.truncated for t in session.transactions)
    return logged == wire or (cut and logged.startswith(wire))


def _abnormal_end(line: LogLine) -> bool:
    """'lost connection after DATA', 'timeout after EHLO', not the ordinary goodbye."""
    detail = line.detail or ""
    return bool(detail) and not (detail.startswith("disconnect from") or "closed by QUIT" in detail)


def _other_address(session: Session, link) -> Note | None:
    """The log names another peer than the capture: NAT, a proxy or a load balancer between."""
    unit = link.unit
    if unit is None or not unit.peer:
        return None
    wire = address((session.client if link.side == SERVER_SIDE else session.server).ip)
    if unit.peer == wire:
        return None
    role = "client" if link.side == SERVER_SIDE else "server"
    return Note(
        NOTE,
        f"the log names the {role} {unit.peer} where the capture shows {wire}: "
        "address translation, a proxy or a load balancer sits between the capture "
        "point and the log's host",
        unit.lines[0],
    )


def _queued_unseen(session: Session, qid: str, line: LogLine) -> Note:
    if session.one_sided == CLIENT:
        return Note(
            NOTE,
            f"the server queued {qid} {_ref(line)}: the capture holds only the client's "
            "packets, so this log line is the evidence that the message was accepted",
            line,
        )
    if session.encrypted or any(t.outcome == Outcome.DELIVERED for t in session.transactions):
        return Note(
            AGREES,
            f"the server queued {qid} {_ref(line)}; the wire shows a message "
            "accepted (its id is not readable there)",
            line,
        )
    return Note(
        DIFFERS,
        f"the server queued {qid} {_ref(line)}, but the wire shows no message "
        f"accepted in this session ({session.outcome})",
        line,
    )


def _rejection(session: Session, line: LogLine, codes: set[int]) -> Note:
    if session.one_sided == CLIENT:
        return Note(
            NOTE,
            f"the server logged a refusal {_ref(line)}: {line.detail} (the capture holds only "
            "the client's packets: the reply is known from the log alone)",
            line,
        )
    if line.code is None or line.code in codes:
        return Note(AGREES, f"the server logged the refusal {_ref(line)}: {line.detail}", line)
    return Note(
        DIFFERS,
        f"the server logged a {line.code} refusal {_ref(line)} that the wire "
        "does not show: the reply was lost, or this is another session",
        line,
    )


def _later(line: LogLine) -> Note:
    how = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced"}.get(
        line.status or "", line.status
    )
    to = f" to {line.recipient}" if line.recipient else ""
    via = f" via {line.peer_name or line.peer}" if line.peer_name or line.peer else ""
    dsn = f", dsn={line.dsn}" if line.dsn else ""
    why = f": {line.detail}" if line.detail else ""
    warning = " (the sender gets a bounce message)" if line.status == "bounced" else ""
    return Note(LATER, f"{line.queue_id}{to}{via}: {how}{dsn}{why}{warning} {_ref(line)}", line)


def _client_log(session: Session, link) -> list[Note]:
    notes = []
    delivered = {t.queue_id for t in session.transactions if t.outcome == Outcome.DELIVERED}
    failed_on_wire = session.outcome in WIRE_FAILED
    codes = _wire_codes(session)
    for line in link.unit.lines if link.unit else []:
        if line.event == CONNECT_FAILED:
            verdict = (
                AGREES
                if session.outcome in (Outcome.REFUSED, Outcome.UNREACHABLE, Outcome.TIMEOUT)
                else DIFFERS
            )
            notes.append(
                Note(
                    verdict,
                    f"the client logged a failed connection {_ref(line)}: "
                    f"{line.detail}; the wire shows {session.outcome}",
                    line,
                )
            )
        elif line.event == DELIVERY and line.status:
            notes.append(_judged(session, line, delivered, failed_on_wire, codes))
    return notes


def _judged(session, line: LogLine, delivered, failed_on_wire: bool, codes) -> Note:
    said = f"the client logged status={line.status}" + (f" dsn={line.dsn}" if line.dsn else "")
    said += f" {_ref(line)}"
    if line.status == "sent":
        ok = line.remote_id in delivered if line.remote_id else bool(delivered)
        if ok:
            return Note(AGREES, f"{said}, as the wire shows", line)
        return Note(
            DIFFERS, f"{said}, but the wire shows no accepted message ({session.outcome})", line
        )
    if line.code is not None and line.code not in codes:
        return Note(DIFFERS, f"{said} quoting a {line.code} reply the wire does not show", line)
    if failed_on_wire or not delivered:
        return Note(AGREES, f"{said}; the wire shows {session.outcome}", line)
    return Note(
        DIFFERS,
        f"{said}, but the wire shows the message accepted: the client did "
        "not see or trust the reply (it may send the message twice)",
        line,
    )
