"""Replies: what the server refused, for good (5xx) or for now (4xx), and why.

RFC 5321 4.2.1: a 5yz reply is permanent, the sender must not repeat the request as is and
returns the mail to its author (a hard bounce); a 4yz reply is transient, the sender keeps the
mail and tries again later (4.5.4.1: at least 30 minutes apart, for 4-5 days). A refusal for
the message's size (size.py) and an AUTH that failed (auth.py) have findings of their own,
so each refusal is explained once; the helpers they share live here.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence

from pcapsmtp.diagnose.digest import Digest, digests
from pcapsmtp.diagnose.evidence import host, quote, seconds
from pcapsmtp.diagnose.model import ERROR, WARNING, Finding
from pcapsmtp.diagnose.registry import capture_rule, session_rule
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import END_OF_DATA, Reply
from pcapsmtp.smtp.model import Outcome, Recipient, Session, Transaction
from pcapsmtp.smtp.outcome import is_timeout_notice
from pcapsmtp.smtp.syntax import quoted


def enhanced(reply: Reply) -> str | None:
    return codes.parse_enhanced(reply.text)


def meaning(reply: Reply) -> str:
    return codes.meaning(reply.code, enhanced(reply), reply.text)


def is_size_refusal(reply: Reply | None) -> bool:
    if reply is None or not (codes.is_permanent(reply.code) or codes.is_transient(reply.code)):
        return False  # what is_size_rejection answers first, before the text is joined and read
    return codes.is_size_rejection(reply.code, enhanced(reply), reply.text)


_ASKS_FOR_AUTH = re.compile(
    r"authentication required|authenticate first|must authenticate|not logged in|log ?in first",
    re.I,
)


def _auth_never_succeeded(session: Session) -> bool:
    """An AUTH was refused and none succeeded: auth-failed explains what followed."""
    done = [a.code for a in session.auth if a.code is not None]
    return bool(done) and not any(codes.is_positive(code) for code in done)


def _explained_by_auth(session: Session, reply: Reply) -> bool:
    asks = reply.code == 530 or bool(_ASKS_FOR_AUTH.search(reply.text))
    return asks and _auth_never_succeeded(session)


def _address_list(recipients: list[Recipient], limit: int = 5) -> str:
    shown = ", ".join(f"<{r.address}>" for r in recipients[:limit])
    return shown + (f" and {len(recipients) - limit} more" if len(recipients) > limit else "")


# --- what to do, by the enhanced code's subject (RFC 3463 section 3) --------------------------

_STEPS_BY_SUBJECT = {
    "1": "The address is the problem (RFC 3463 X.1.x): check its spelling and that the mailbox "
    "or domain exists; for the sender (X.1.7, X.1.8), use an address in a domain that "
    "resolves in DNS.",
    "2": "The mailbox is the problem (X.2.x: disabled, full, or over a quota): the recipient's "
    "administrator has to act.",
    "3": "The receiving system refused for its own reasons (X.3.x): ask its administrator.",
    "4": "Routing failed (X.4.x): check the MX records and the relay configuration.",
    "5": "The server did not understand the dialogue (X.5.x): the client sent a command out "
    "of order or with bad syntax; look at the client software.",
    "6": "The content was refused (X.6.x): check the message's encoding and format.",
    "7": "A policy refused the mail (X.7.x): sender reputation, SPF/DKIM/DMARC, a blocklist "
    "or content filter. The reply text usually names the reason or a web page; check the "
    "sending IP against public blocklists and the domain's SPF/DKIM/DMARC records.",
}


def _steps(reply: Reply, server: str) -> list[str]:
    steps = []
    parts = (enhanced(reply) or "").split(".")
    if len(parts) == 3 and parts[1] in _STEPS_BY_SUBJECT:
        steps.append(_STEPS_BY_SUBJECT[parts[1]])
    steps.append(
        f"Read the server's own words: {quoted(quote(reply, 200))}. Its administrator finds the "
        f"decision in the log of {server} at this time."
    )
    return steps


# --- hard bounces ------------------------------------------------------------------------------


@session_rule("hard-bounce", "protocol-error")
def hard_bounce(session: Session, context) -> Iterator[Finding]:
    """A 5xx that refused mail: the greeting (the whole connection), MAIL, every RCPT, DATA or
    the end of data (the transaction), or some of the recipients (WARNING when the others
    got the message). Size and AUTH refusals are left to size-exceeded and auth-failed.
    Skipped: RCPT/DATA pipelined after a refused MAIL (they repeat that refusal), a 503 to
    RCPT/DATA sent without any MAIL (a client out of sequence: no mail was attempted), and a
    '.' answered 500 (the server was reading commands: no message was refused). A refusal
    that is a protocol error of the client (``is_protocol_error``) is a protocol-error, not
    a bounce: nothing was judged about the sender, the recipients or the message."""
    greeting = session.greeting
    if greeting is not None and codes.is_permanent(greeting.code):
        yield _refused_connection(session, greeting)
    mail_refused = False
    for transaction in session.transactions:
        no_mail = transaction.mail_reply is None
        echo = no_mail and mail_refused
        if not no_mail:
            mail_refused = not codes.is_positive(transaction.mail_reply.code)
        final = transaction.final
        if echo or (no_mail and final is not None and final.code == 503):
            continue  # the MAIL refusal said it already; or no mail was attempted at all
        if _stray_dot(final):
            continue
        refused_at_end = (
            transaction.outcome == Outcome.REJECTED
            and final is not None
            and codes.is_permanent(final.code)
        )
        if refused_at_end:
            if is_protocol_error(final):
                yield _protocol_error(session, transaction, final)
            elif not is_size_refusal(final) and not _explained_by_auth(session, final):
                yield _refused_transaction(session, transaction, final)
            continue
        refused = [r for r in transaction.rcpt_to if r.code and codes.is_permanent(r.code)]
        broken = [r for r in refused if is_protocol_error(r.reply)]
        if broken:
            yield _protocol_error(session, transaction, broken[0].reply)
        refused = [r for r in refused if r not in broken]
        if refused and not any(_explained_by_auth(session, r.reply) for r in refused if r.reply):
            yield _refused_some(session, transaction, refused)


PROTOCOL_BASIC = (500, 501, 502, 503, 504)
"""RFC 5321 4.2.2's syntax and sequence errors: unrecognized, bad arguments, not implemented,
bad sequence, parameter not implemented."""


def is_protocol_error(reply: Reply | None) -> bool:
    """A 5xx that says the client broke the protocol, not that the mail was refused: an
    enhanced code X.5.x (RFC 3463 3.6: protocol status, e.g. 5.5.1 invalid command, 5.5.2
    syntax, 5.5.4 invalid arguments), or without one a 500-504."""
    if reply is None or not codes.is_permanent(reply.code):
        return False
    status = enhanced(reply)
    if status is not None:
        return status.split(".")[1:2] == ["5"]
    return reply.code in PROTOCOL_BASIC


def _protocol_error(session: Session, transaction: Transaction, reply: Reply) -> Finding:
    server = host(session.server)
    command = reply.command
    verb = command.verb if command is not None else "a command"
    shown = "the end of data" if verb == END_OF_DATA else verb
    frames = sorted({reply.frame, *([command.frame] if command is not None else [])})
    delivered = transaction.outcome == Outcome.DELIVERED
    return Finding(
        code="protocol-error",
        severity=WARNING if delivered else ERROR,
        summary=(
            f"{server} did not accept the client's {shown}: {quote(reply, 100)} "
            f"({meaning(reply)}): a protocol error of the client, not a refusal of the mail"
        ),
        detail=(
            f"In frame {reply.frame} the server answered {shown}"
            + (f" (frame {command.frame})" if command is not None else "")
            + f" with {quoted(quote(reply, 300))}. Its code ({enhanced(reply) or reply.code}) is a "
            "protocol status (RFC 3463 X.5.x; RFC 5321's 500-504): the server could not follow "
            "what the client sent (a command out of sequence, a malformed argument, a feature "
            "the server did not announce, too many recipients at once). It judged neither "
            "the sender, nor the recipients, nor the message: this is not a bounce about an "
            "address, and the same mail from a client that speaks SMTP correctly may pass. "
            + (
                "The mail still went to the recipients the server accepted."
                if delivered
                else "As a 5xx it is permanent: the sending MTA returns the mail to its author."
            )
        ),
        frames=frames,
        next_steps=[
            f"Compare the client's {shown} in frame {frames[0]} with RFC 5321 and with the "
            "EHLO keywords the server announced (a BDAT without CHUNKING, a nested MAIL, an "
            "unsupported parameter, more recipients than the server takes at once).",
            "Fix or update the client software (its SMTP library or MTA); a firewall or proxy "
            "that rewrites SMTP commands (see smtp-inspection) causes the same.",
        ],
    )


def _stray_dot(reply: Reply | None) -> bool:
    """A '.' answered 500 "command unrecognized": the server was reading commands, not a
    message, so no message was refused (a client, or a capture, out of step)."""
    command = reply.command if reply is not None else None
    return command is not None and command.verb == END_OF_DATA and reply.code == 500


def _refused_connection(session: Session, greeting: Reply) -> Finding:
    server = host(session.server)
    return Finding(
        code="hard-bounce",
        severity=ERROR,
        summary=f"{server} refused the connection in its greeting: {quote(greeting, 100)} "
        f"({meaning(greeting)})",
        detail=(
            f"The server's first words (frame {greeting.frame}) were a permanent refusal: "
            f"{quoted(quote(greeting, 300))}. RFC 5321 3.1 lets a server answer 554 instead of 220 "
            "when it will take no mail from this client; the client can only close. This is "
            "usually about the client's IP address (a blocklist, no reverse DNS, a country or "
            "network block), not about any message."
        ),
        frames=[greeting.frame],
        next_steps=[
            *_steps(greeting, server),
            f"Check {host(session.client)} against public blocklists and its reverse DNS.",
        ],
    )


def _what_was_refused(transaction: Transaction, final: Reply) -> tuple[str, list[int]]:
    """('the sender <a@b>', evidence frames) for the command the refusal answered."""
    command = final.command
    verb = command.verb if command is not None else ""
    frames = [command.frame] if command is not None and command.frame else []
    if verb == "MAIL":
        return f"the sender <{transaction.mail_from or ''}>", frames
    if verb == "RCPT":
        refused = [r for r in transaction.rcpt_to if r.code and not codes.is_positive(r.code)]
        many = len(refused) > 1
        what = f"all {len(refused)} recipients" if many else "the recipient"
        return f"{what} {_address_list(refused)}", [r.frame for r in refused][:10]
    if verb == END_OF_DATA and transaction.size is None:
        return "the end-of-data line '.' (no message had been sent before it)", frames
    if verb == "BDAT" and transaction.size is None:
        return "the BDAT command (before its chunk was taken)", frames
    if verb in (END_OF_DATA, "BDAT"):
        facts = transaction.message
        subject = facts.subject if facts is not None else None
        about = f"{transaction.size} bytes" if transaction.size is not None else "the message"
        about += f", subject {quoted(subject)}" if subject else ""
        frames = [transaction.message_frame] if transaction.message_frame else frames
        return f"the message ({about}) after receiving it", frames
    if verb == "DATA":
        return "the DATA command (before any of the message was sent)", frames
    return f"the {verb or 'mail'} command", frames


def _refused_transaction(session: Session, transaction: Transaction, final: Reply) -> Finding:
    what, frames = _what_was_refused(transaction, final)
    server = host(session.server)
    sender = transaction.mail_from
    envelope = f"from <{sender}>" if sender is not None else "without a MAIL command"
    rcpts = [r for r in transaction.rcpt_to if r.code and codes.is_positive(r.code)]
    accepted = f" after accepting {_address_list(rcpts)}" if rcpts else ""
    return Finding(
        code="hard-bounce",
        severity=ERROR,
        summary=f"{server} refused {what}: {quote(final, 100)} ({meaning(final)})",
        detail=(
            f"The mail {envelope} was refused for good in frame {final.frame}{accepted}: "
            f"{quoted(quote(final, 300))}. The enhanced status code is "
            f"{enhanced(final) or 'absent'}; in plain words: {meaning(final)}. A 5xx reply is "
            "permanent (RFC 5321 4.2.1): the sending MTA does not retry and returns the mail "
            "to its author with this text, so the fix lies with the refusal's reason, not "
            "with the network."
        ),
        frames=sorted({*frames, final.frame}),
        next_steps=_steps(final, server),
    )


def _refused_some(session: Session, transaction: Transaction, refused: list[Recipient]) -> Finding:
    server = host(session.server)
    first = refused[0].reply
    delivered = transaction.outcome == Outcome.DELIVERED
    codes_seen = sorted({f"{r.code} {r.enhanced or ''}".strip() for r in refused})
    frames = [f for r in refused for f in (r.frame, r.reply.frame if r.reply else r.frame)]
    others = "the message went to the other recipients" if delivered else "nothing was delivered"
    return Finding(
        code="hard-bounce",
        severity=WARNING if delivered else ERROR,
        summary=(
            f"{server} refused {len(refused)} of {len(transaction.rcpt_to)} recipients "
            f"({_address_list(refused)}): {', '.join(codes_seen)}"
            + (f" ({meaning(first)})" if first else "")
        ),
        detail=(
            f"In the mail from <{transaction.mail_from or ''}>, RCPT TO was refused for good "
            f"for {_address_list(refused, 10)}"
            + (f", first in frame {first.frame}: {quoted(quote(first, 300))}" if first else "")
            + f"; {others}. The sending MTA returns the mail to its author for the refused "
            "addresses only."
        ),
        frames=sorted(set(frames))[:20],
        next_steps=_steps(first, server) if first else ["Check the refused addresses."],
    )


# --- soft bounces ------------------------------------------------------------------------------

_TRANSIENT_VERBS = {"EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", END_OF_DATA}
_RETRY_IN = re.compile(
    r"(?:try again|retry|come back)\D{0,20}?(\d+)\s*(seconds?|secs?|s\b|minutes?|mins?|m\b)", re.I
)
POSTGREY_DELAY_S = 300
"""postgrey's default --delay: the first retry must wait this long (postgrey(8))."""


@capture_rule("soft-bounce")
def soft_bounce(sessions: list[Session], context) -> Iterator[Finding]:
    """A 4xx to the greeting, EHLO, MAIL, RCPT, DATA or the end of data, or an unsolicited
    421 that is not an idle timeout (server-timeout says that): the sender must retry
    (WARNING). Greylisting (``codes.is_greylisting``) and rate limiting are named, with the
    retry the server asks for, and with the retry itself when a later session of this
    capture from the same client carried the same envelope. A capture rule so it can look
    for that retry; each finding still names its session."""
    kept = digests(sessions)
    retries = _Retries(kept)
    for position, digest in enumerate(kept):
        if not digest.soft_bounce:
            continue
        session = sessions[position]
        for finding, transaction in _soft_bounces(session):
            if transaction is not None:
                retry = retries.after(position, digest.client_ip, transaction)
                if retry is not None:
                    other = sessions[retry[0]]
                    retry = (other, other.transactions[retry[1]])
                _note_retry(finding, session, retry)
            finding.session, finding.tcp_stream = session.id, session.flow.stream
            yield finding


def has_soft_bounce(session: Session) -> bool:
    """``soft_bounce`` has a finding about this session (what its digest keeps)."""
    return next(_soft_bounces(session), None) is not None


def _transient(reply: Reply | None) -> bool:
    return reply is not None and codes.is_transient(reply.code) and not is_size_refusal(reply)


def _soft_bounces(session: Session) -> Iterator[tuple[Finding, Transaction | None]]:
    greeting = session.greeting
    if _transient(greeting):
        yield _deferred(session, greeting, "the connection in its greeting"), None
    for command in session.commands:
        if command.verb in ("EHLO", "HELO", "LHLO") and _transient(command.reply):
            yield _deferred(session, command.reply, f"{command.verb}"), None
    for reply in session.unsolicited:
        if reply.code == 421 and not is_timeout_notice(reply):
            yield _deferred(session, reply, "the session (unsolicited 421, then it closed)"), None
    for transaction in session.transactions:
        final = transaction.final
        if transaction.outcome == Outcome.DEFERRED and _transient(final):
            what, _frames = _what_was_refused(transaction, final)
            yield _deferred(session, final, what), transaction
            continue
        refused = [r for r in transaction.rcpt_to if r.reply is not None and _transient(r.reply)]
        if refused:
            count = f"{len(refused)} of {len(transaction.rcpt_to)} recipients"
            yield (
                _deferred(session, refused[0].reply, f"{count} {_address_list(refused)}"),
                (transaction),
            )


def _retry_hint(reply: Reply) -> str:
    match = _RETRY_IN.search(reply.text)
    if match:
        return f"the server says to retry in {match.group(1)} {match.group(2)}"
    return f"postgrey, the most common greylisting daemon, waits {POSTGREY_DELAY_S} s by default"


def _kind(reply: Reply) -> tuple[str, str]:
    """(summary words, detail sentence) for the kind of deferral."""
    if codes.is_greylisting(reply.code, reply.text):
        return "greylisting", (
            "This is greylisting: the server turns away the first attempt of an unknown "
            "(client IP, sender, recipient) triplet and accepts the same triplet when it comes "
            f"back after a delay ({_retry_hint(reply)}). A real MTA retries by itself and gets "
            "through; a script or an application that does not retry loses the mail, and a "
            "sender that retries from another IP address (a pool of outbound servers) starts "
            "again from zero."
        )
    if codes.is_rate_limited(reply.code, enhanced(reply), reply.text):
        return "rate limiting", (
            "The server throttles this sender (too many connections or messages in a short "
            "time). Retrying at once makes it worse; the sending MTA must slow down."
        )
    if codes.is_policy_refusal(reply.code, enhanced(reply), reply.text):
        return "a policy refusal of this client", (
            "The words name a policy of the server that refused this client (its address, "
            "its host name or reverse DNS, a blocklist, an access table). The code is 4xx, so "
            "the sending MTA keeps the mail and retries, but every retry meets the same "
            "policy: waiting does not fix this, changing what the policy looks at does."
        )
    return "a temporary refusal", (
        "A 4xx reply is transient (RFC 5321 4.2.1): the sending MTA keeps the mail and "
        "retries (4.5.4.1: at least 30 minutes apart, giving up after 4-5 days)."
    )


def _deferred(session: Session, reply: Reply, what: str) -> Finding:
    server = host(session.server)
    kind, explanation = _kind(reply)
    command = reply.command
    frames = [reply.frame] + ([command.frame] if command is not None and command.frame else [])
    label = kind if kind != "a temporary refusal" else meaning(reply)
    if kind == "a policy refusal of this client":
        label += ": retrying will not help"
    return Finding(
        code="soft-bounce",
        severity=WARNING,
        summary=f"{server} deferred {what}: {quote(reply, 100)} ({label})",
        detail=(
            f"In frame {reply.frame} the server answered {quoted(quote(reply, 300))} "
            f"(enhanced code {enhanced(reply) or 'absent'}: {meaning(reply)}). "
            f"{explanation}"
        ),
        frames=sorted(set(frames)),
        next_steps=_soft_steps(kind, session)
        + ([] if kind != "a temporary refusal" else _steps(reply, server)[:1]),
    )


def _soft_steps(kind: str, session: Session) -> list[str]:
    client = host(session.client)
    if kind == "greylisting":
        return [
            f"Let the sending MTA retry from the same address ({client}); check its queue "
            "(`postqueue -p`, `exim -bp`) that the mail is still there and retried.",
            "If the sender is an application that does not retry, send through a real MTA, "
            "or ask the receiving admin to whitelist the sending IP.",
        ]
    if kind == "rate limiting":
        return [
            "Lower the sending rate and concurrency towards this destination (Postfix: "
            "a transport with default_destination_concurrency_limit / _rate_delay).",
            f"Check that {client} does not also send unwanted mail (a compromised account).",
        ]
    if kind == "a policy refusal of this client":
        return [
            f"Retrying will not help: find which policy matched {client}. The reply text "
            "names it; the server's log at this time says which restriction (Postfix: "
            "smtpd_client_restrictions, e.g. reject_unknown_client_hostname answers 450 "
            "'Client host rejected: cannot find your hostname').",
            f"Check {client}'s reverse DNS (`host {client}`; its name must resolve back to "
            "it) and public blocklists; if the refusal is deliberate, send through a relay "
            "the server accepts, or ask its administrator to allow the client.",
        ]
    return [
        "Nothing to do at once: the sender retries. If it keeps failing, ask the "
        "receiving admin, giving this time and the reply text."
    ]


class _Retries:
    """Transactions of the capture by (client IP, sender, recipient), in capture order, so
    each deferral finds its retry without scanning every later session; from the digests
    (pcapsmtp.diagnose.digest), which keep each session's envelopes."""

    def __init__(self, kept: Sequence[Digest]) -> None:
        self._by_key: dict[tuple, list[tuple[int, int, int]]] = {}
        for position, digest in enumerate(kept):
            for number, sender, recipients, first_frame in digest.envelopes:
                for recipient in recipients:
                    key = (digest.client_ip, sender, recipient)
                    self._by_key.setdefault(key, []).append((position, number, first_frame))

    def after(self, position: int, client_ip: bytes, transaction: Transaction):
        """(position, transaction index) of the first later attempt at any of this
        envelope."""
        found = []
        for recipient in transaction.rcpt_to:
            entries = self._by_key.get((client_ip, transaction.mail_from, recipient.address))
            if entries:
                at = bisect.bisect_right(entries, position, key=lambda entry: entry[0])
                if at < len(entries):
                    found.append(entries[at])
        first = min(found, key=lambda entry: (entry[0], entry[2]), default=None)
        return first[:2] if first is not None else None


def _note_retry(finding: Finding, session: Session, retry) -> None:
    """Say when the client tried the same envelope again, and how that went."""
    if retry is None:
        finding.detail += " No retry of this envelope appears later in the capture."
        return
    other, transaction = retry
    waited = seconds(transaction.start_ns - session.flow.first_time_ns)
    finding.detail += (
        f" The client retried {waited} later in session {other.id} "
        f"(frame {transaction.first_frame}), which was {transaction.outcome}."
    )
    if transaction.outcome == Outcome.DELIVERED:
        finding.summary += f"; the retry in session {other.id} was delivered"
