"""The server reply that decided a session's outcome, as the renderers quote it.

Apart from the session tracker (``session.py``): it reads a finished ``Session`` only, so
the report layer can use it without importing the tracker.
"""

from __future__ import annotations

from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.model import Outcome, Session


def deciding_reply(session: Session) -> Reply | None:
    """The server's reply that decided the session's outcome (decide_outcome's reason), or
    None when no reply did (a timeout, a reset, a refused connection). For a rejected or
    deferred session this is the refusal, not the ``221 Bye`` that may follow it."""
    outcome = session.outcome
    transactions = [t for t in session.transactions if t.outcome == outcome and t.final]
    if outcome in (Outcome.REJECTED, Outcome.DEFERRED, Outcome.DELIVERED) and transactions:
        return transactions[0].final if outcome != Outcome.DELIVERED else transactions[-1].final
    greeting = session.greeting
    if greeting is not None and not codes.is_positive(greeting.code):
        return greeting
    replies = [c.reply for c in session.commands if c.reply is not None]
    failed_auth = [a for a in session.auth if a.code is not None and not codes.is_positive(a.code)]
    if failed_auth and not session.transactions:
        attempt = failed_auth[-1]
        found = [r for r in replies if r.code == attempt.code and r.frame >= attempt.frame]
        if found:
            return found[0]
    closing = [r for r in session.unsolicited if r.code == 421]
    if closing and outcome in (Outcome.DEFERRED, Outcome.TIMEOUT):
        return closing[0]
    if outcome in (Outcome.REJECTED, Outcome.DEFERRED):
        refusals = [r for r in replies if not codes.is_positive(r.code)]
        return refusals[-1] if refusals else None
    return None
