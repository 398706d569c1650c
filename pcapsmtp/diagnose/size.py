"""Size: a message refused for being larger than the server accepts (RFC 1870).

The server announces its limit in the EHLO reply (SIZE n), the client may declare the
message's size on MAIL FROM (SIZE=n) so a too-big message is refused before it is sent, and
attachments grow by a third on the wire because base64 makes 4 bytes of every 3.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import host, quote
from pcapsmtp.diagnose.model import ERROR, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.replies import is_size_refusal, meaning
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.model import Outcome, Session, Transaction
from pcapsmtp.smtp.syntax import quoted

BASE64_GROWTH = 78 / 57
"""Base64 turns 57 bytes into a 76-character line plus CRLF (RFC 2045 6.8): x1.37."""


_SIZE_STEPS = [
    "Send the large file another way (a link to a file share), or compress it; remember "
    "that base64 makes every 3 bytes of an attachment 4 on the wire.",
    "Or ask the receiving administrator to raise the limit (Postfix message_size_limit, "
    "10240000 by default; Exim message_size_limit; Exchange MaxReceiveSize on the connector "
    "and the organization).",
]


@session_rule("size-exceeded")
def size_exceeded(session: Session, context) -> Iterator[Finding]:
    """A transaction refused for size: a reply that ``codes.is_size_rejection`` recognises
    (552, X.3.4, X.2.3, X.7.16, "message size exceeds"), or a failure without such a reply
    (reset, timeout) of a message whose declared SIZE= or actual size was above the limit the
    server announced in EHLO (RFC 1870). ERROR, WARNING when the refusal was a 4xx."""
    limit = session.extensions.get("size") if session.extensions else None
    for transaction in session.transactions:
        refusal = _size_reply(transaction)
        sizes = [n for n in (transaction.declared_size, transaction.size) if n]
        over = limit is not None and any(n > limit for n in sizes)
        silent_failure = transaction.outcome in (Outcome.RESET, Outcome.TIMEOUT) and over
        if refusal is None and not silent_failure:
            continue
        yield _size_finding(session, transaction, refusal, limit)


def _size_reply(transaction: Transaction) -> Reply | None:
    candidates = [transaction.final, transaction.mail_reply, transaction.data_reply]
    candidates += [r.reply for r in transaction.rcpt_to]
    return next((r for r in candidates if r is not None and is_size_refusal(r)), None)


def _size_finding(session, transaction: Transaction, refusal: Reply | None, limit) -> Finding:
    server = host(session.server)
    declared, actual = transaction.declared_size, transaction.size
    limit_text = f"the {limit}-byte limit it announced in EHLO" if limit else "its limit"
    measured = actual if actual is not None else declared
    if refusal is not None and refusal.command is not None and refusal.command.verb == "MAIL":
        summary = (
            f"{server} refused the mail at MAIL FROM for its size: SIZE={declared} declared, "
            f"above {limit_text} ({quote(refusal, 60)})"
            if declared
            else f"{server} refused the mail at MAIL FROM for its size ({quote(refusal, 80)})"
        )
    elif refusal is not None:
        summary = (
            f"{server} refused the message for its size: {measured} bytes against "
            f"{limit_text} ({quote(refusal, 60)})"
        )
    else:
        summary = (
            f"the {measured}-byte message is above {limit_text}, and the session ended "
            f"without a reply ({transaction.outcome})"
        )
    frames = [f for f in (transaction.first_frame, transaction.message_frame) if f]
    if refusal is not None:
        frames.append(refusal.frame)
    if session.ehlo is not None:
        frames.append(session.ehlo.frame)
    severity = WARNING if refusal is not None and codes.is_transient(refusal.code) else ERROR
    return Finding(
        code="size-exceeded",
        severity=severity,
        summary=summary,
        detail=_size_detail(session, transaction, refusal, limit),
        frames=sorted(set(frames)),
        next_steps=list(_SIZE_STEPS),
    )


def _size_detail(session, transaction: Transaction, refusal: Reply | None, limit) -> str:
    parts = []
    if limit:
        parts.append(
            f"The server announced SIZE {limit} in its EHLO reply (frame {session.ehlo.frame}): "
            f"it accepts messages of at most {limit} bytes (RFC 1870)."
        )
    else:
        parts.append("The server announced no SIZE limit in its EHLO reply.")
    declared, actual = transaction.declared_size, transaction.size
    if declared:
        verdict = "above" if limit and declared > limit else "within"
        parts.append(f"The client declared SIZE={declared} on MAIL FROM, {verdict} the limit.")
    if actual is not None:
        verdict = "above" if limit and actual > limit else "within"
        parts.append(f"The message as sent was {actual} bytes, {verdict} the limit.")
    elif refusal is not None and refusal.command is not None and refusal.command.verb == "MAIL":
        parts.append("No byte of the message was sent: the refusal came at MAIL FROM.")
    parts.append(_base64_note(transaction, limit))
    if refusal is not None:
        parts.append(
            f"The refusal, frame {refusal.frame}: {quoted(quote(refusal, 200))} "
            f"({meaning(refusal)})."
        )
    else:
        parts.append(
            "No reply explained the end of the session; a message above the "
            "announced limit is the likeliest reason."
        )
    return " ".join(p for p in parts if p)


def _base64_note(transaction: Transaction, limit) -> str:
    facts = transaction.message
    found = facts.attachments if facts is not None else []
    attachments = [a for a in found if a.transfer_encoding == "base64" and a.size]
    if not attachments:
        return ""
    decoded = sum(a.size for a in attachments)
    encoded = sum(a.encoded_size for a in attachments)
    names = ", ".join(repr(a.filename or a.content_type) for a in attachments[:3])
    note = (
        f"Its attachment(s) {names} hold {decoded} bytes, which base64 turned into {encoded} "
        f"on the wire (x{encoded / decoded:.2f}: 4 bytes for every 3, plus a line break every "
        "76 characters)."
    )
    if limit and transaction.size:
        room = limit - (transaction.size - encoded)
        fits = max(0, int(room / BASE64_GROWTH))
        note += f" To fit in {limit} bytes, the attachments could hold about {fits} bytes."
        if decoded <= limit < transaction.size:
            note += " The files themselves are under the limit: base64 pushed them over."
    return note
