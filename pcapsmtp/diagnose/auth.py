"""Authentication: an AUTH the server refused (RFC 4954), and the likely reason.

Credentials never appear here: the dialogue parser redacted them before any rule runs, and
only the mechanism and the server's reply are quoted.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import host, quote
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.replies import meaning
from pcapsmtp.smtp import codes
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.model import Outcome, Session
from pcapsmtp.smtp.syntax import quoted

_AUTH_CAUSES = {
    # RFC 4954 section 6, and the codes servers commonly use.
    535: "the credentials were rejected (RFC 4954: 535 5.7.8 authentication credentials "
    "invalid): a wrong user name or password, a locked or disabled account, or a provider "
    "that wants an app password or OAuth instead of the account password",
    534: "the mechanism is too weak for this server (534 5.7.9): use a stronger one",
    538: "this mechanism needs an encrypted connection (538 5.7.11): start TLS first",
    530: "the server wants something first (530 5.7.0): usually STARTTLS",
    504: "the server does not support this mechanism (504 5.5.4)",
    501: "the server could not decode the credentials (501 5.5.2): a client bug, or a "
    "user name or password with characters the client encodes badly",
    454: "a temporary failure on the server's side (454 4.7.0): its authentication backend "
    "(saslauthd, Dovecot auth, LDAP) did not answer; retry later and tell its administrator",
    432: "the account needs a password change first (432 4.7.12)",
}


_USUAL = {None, "5.7.8", "5.7.9", "5.7.11", "5.7.0", "5.5.4", "5.5.2", "4.7.0", "4.7.12"}
"""The enhanced codes RFC 4954 pairs with the basic ones above: nothing more to say."""


@session_rule("auth-failed")
def auth_failed(session: Session, context) -> Iterator[Finding]:
    """Every AUTH whose final reply (after the 334 challenges) is not 2xx: 535, 534, 538,
    530, 504, 503, 501, 454... ERROR; INFO when a later AUTH in the session succeeded;
    WARNING when the session delivered its mail all the same (no effect this time, but the
    credentials fail and will where relaying needs them). Credentials never appear: the
    dialogue parser redacted them, and only the mechanism and the server's reply are quoted."""
    for attempt in session.auth:
        if attempt.code is None or codes.is_positive(attempt.code):
            continue
        reply = _auth_reply(session, attempt)
        recovered = any(
            a.code is not None and codes.is_positive(a.code)
            for a in session.auth
            if a.frame > attempt.frame
        )
        yield _auth_finding(session, attempt, reply, recovered)


def _auth_reply(session: Session, attempt) -> Reply | None:
    for command in session.commands:
        reply = command.reply
        if command.frame >= attempt.frame and reply is not None and reply.code == attempt.code:
            return reply
    return None


def _auth_cause(session: Session, attempt, reply: Reply | None) -> str:
    code = attempt.code
    offered = session.extensions.get("auth", []) if session.extensions else []
    if code == 503 and not offered:
        cause = "the server announced no AUTH in its EHLO reply, so AUTH is out of sequence (503)"
        if session.extensions.get("starttls") and session.tls is None:
            cause += (
                "; it offers STARTTLS, and many servers offer AUTH only inside TLS (Postfix "
                "smtpd_tls_auth_only = yes; Exim when auth_advertise_hosts is limited to TLS)"
            )
        return cause
    cause = _AUTH_CAUSES.get(code)
    if reply is not None and (cause is None or codes.parse_enhanced(reply.text) not in _USUAL):
        words = meaning(reply)  # a provider's own code says more than RFC 4954's
        cause = f"{cause}; the server's reply means: {words}" if cause else words
    return cause or f"the server refused it ({code})"


def _auth_finding(session: Session, attempt, reply: Reply | None, recovered: bool) -> Finding:
    server = host(session.server)
    offered = session.extensions.get("auth", []) if session.extensions else []
    reply_text = quote(reply, 100) if reply is not None else str(attempt.code)
    notes = []
    if offered and attempt.mechanism not in offered:
        notes.append(
            f"The client used {attempt.mechanism}, which the server did not announce (it "
            f"announced {' '.join(offered)})."
        )
    if session.tls is None:
        notes.append(
            "AUTH went over the connection unencrypted: the credentials crossed the network "
            "in clear text (they are redacted in this analysis)."
        )
    if recovered:
        notes.append("A later AUTH in the same session succeeded.")
    elif session.outcome == Outcome.DELIVERED:
        notes.append("The server took the mail all the same, without authentication.")
    frames = [attempt.frame] + ([reply.frame] if reply is not None else [])
    return Finding(
        code="auth-failed",
        severity=INFO if recovered else WARNING if session.outcome == Outcome.DELIVERED else ERROR,
        summary=f"{server} refused AUTH {attempt.mechanism}: {reply_text}",
        detail=(
            f"The client authenticated with {attempt.mechanism} (frame {attempt.frame}) and "
            f"the server answered {quoted(reply_text)}"
            + (f" in frame {reply.frame}" if reply is not None else "")
            + f": {_auth_cause(session, attempt, reply)}. "
            + " ".join(notes)
        ).strip(),
        frames=sorted(set(frames)),
        next_steps=_auth_steps(session, attempt, offered),
    )


SEQUENCE_CODES = (503, 530, 538, 504)
"""Refusals about how AUTH was attempted (out of sequence, before TLS, mechanism), not about
the credentials: the steps about TLS and mechanisms come first."""


def _auth_steps(session: Session, attempt, offered: list[str]) -> list[str]:
    server = host(session.server)
    credentials = [
        "Check the user name and password configured in the sending client or MTA "
        "(Postfix smtp_sasl_password_maps), and try them interactively with "
        f"`swaks --server {server} --port {session.server.port} --auth "
        f"{attempt.mechanism}{_swaks_tls(session)}`.",
        "If they are right, ask the server's administrator whether the account is locked "
        "or disabled (too many failures, fail2ban), and whether it needs an app password "
        "or OAuth2 (Gmail, Microsoft 365 with basic authentication turned off).",
    ]
    manner = [
        f"Use a mechanism the server announces ({' '.join(offered) or 'none announced'}) "
        "and authenticate only inside TLS (STARTTLS or port 465): many servers refuse or "
        "do not even offer AUTH in clear text (530/538/503)."
    ]
    if attempt.code in SEQUENCE_CODES:
        return manner + credentials
    return credentials + manner


def _swaks_tls(session: Session) -> str:
    if session.tls is not None and session.tls.mode == "implicit":
        return " --tlsc"
    return " --tls" if session.extensions.get("starttls") else ""
