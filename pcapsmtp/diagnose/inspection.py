"""SMTP inspection: a firewall between the hosts that rewrites the dialogue.

Cisco ASA/PIX `inspect esmtp` with its default policy (_default_esmtp_map: mask-banner,
no allow-tls, `match ehlo-reply-parameter others mask`) replaces the banner with asterisks,
the EHLO keywords it does not know with X's of the same length ending in a letter that counts
up (STARTTLS becomes XXXXXXXA or XXXXXXXB), and removes STARTTLS so mail stays inspectable;
it also drops connections with more than 100 RCPT or command lines over 512 bytes. Cisco's
own mail-gateway notes (documents 117797 and 117801) blame it for intermittent and aborted
sessions and advise disabling it for mail servers (FIELD-NOTES, "Middleboxes"). A box that
answers 220 to STARTTLS and keeps the connection in clear (Arkime #2348) shows the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import host
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.smtp.model import Outcome, Session
from pcapsmtp.smtp.software import is_masked_banner, masked_ehlo_keywords

BROKEN_OUTCOMES = (Outcome.RESET, Outcome.TIMEOUT, Outcome.TLS_FAILED)
"""How an inspecting firewall breaks a session (it does not write SMTP refusals)."""
ASA_MAX_RCPT = 100
"""_default_esmtp_map: `match cmd RCPT count gt 100 drop-connection`."""


@session_rule("smtp-inspection")
def smtp_inspection(session: Session, context) -> Iterator[Finding]:
    """Signs of a box rewriting SMTP: a banner of asterisks (``is_masked_banner``), EHLO
    keywords masked with X's (``masked_ehlo_keywords``), STARTTLS missing beside them, or the
    ``starttls_not_started`` anomaly (clear text after a 220 to STARTTLS). INFO for a masked
    banner alone (no harm done); WARNING when the EHLO reply or STARTTLS was tampered with
    and mail still passed; ERROR when the session then broke (reset, timeout, TLS failure),
    the way inspection breaks sessions."""
    signs, frames = _signs(session)
    if not signs:
        return
    banner_only = len(signs) == 1 and signs[0].startswith("the banner")
    broken = session.outcome in BROKEN_OUTCOMES
    severity = ERROR if broken else INFO if banner_only else WARNING
    yield Finding(
        code="smtp-inspection",
        severity=severity,
        summary=(
            f"a firewall between {host(session.client)} and {host(session.server)} rewrites "
            f"the SMTP dialogue: {'; '.join(signs)}"
        ),
        detail=_detail(session, signs, broken),
        frames=sorted(set(frames)),
        next_steps=[
            "On a Cisco ASA/FTD: turn ESMTP inspection off for the mail servers (`policy-map "
            "global_policy` / `class inspection_default` / `no inspect esmtp`), or at least "
            "allow TLS and stop masking (`policy-map type inspect esmtp ...` / `parameters` "
            "/ `allow-tls`, no `mask-banner`); Cisco's documents 117797 and 117801 advise "
            "exactly that for mail gateways.",
            "Other firewalls and UTMs call it SMTP proxy, SMTP application control or email "
            "protection: look for it on every box between the two hosts; a capture taken at "
            "the server at the same time shows the unaltered dialogue.",
        ],
    )


def _signs(session: Session) -> tuple[list[str], list[int]]:
    signs, frames = [], []
    greeting = session.greeting
    if greeting is not None and is_masked_banner(greeting.text):
        signs.append(f"the banner is masked ({greeting.code} {greeting.text.strip()[:40]})")
        frames.append(greeting.frame)
    masked = masked_ehlo_keywords(session.ehlo.lines) if session.ehlo is not None else []
    if masked:
        signs.append(f"EHLO keywords are masked ({' '.join(masked[:8])})")
        frames.append(session.ehlo.frame)
        if not session.extensions.get("starttls"):
            signs.append("STARTTLS is not offered")
    not_started = [a for a in session.anomalies if a.code == "starttls_not_started"]
    if not_started:
        signs.append("STARTTLS was answered 220 but the connection stayed in clear text")
        frames.append(not_started[0].frame)
        if session.starttls is not None:
            frames.append(session.starttls.frame)
    return signs, frames


def _detail(session: Session, signs: list[str], broken: bool) -> str:
    text = f"What the client received shows a rewriting box: {'; '.join(signs)}. "
    masked = masked_ehlo_keywords(session.ehlo.lines) if session.ehlo is not None else []
    if masked:
        eight = [k for k in masked if len(k) == len("STARTTLS")]
        text += "The masks keep the length of the keyword they hide"
        if eight:
            shown = "/".join(sorted(set(eight)))
            text += (
                f"; {len(eight)} of them ({shown}) have 8 characters, as STARTTLS, CHUNKING "
                "and SMTPUTF8 do"
            )
        text += ". "
        if not session.extensions.get("starttls"):
            text += (
                "With STARTTLS hidden, the client cannot encrypt: the mail, and any AUTH, "
                "crosses the network in clear text, and a sender that requires TLS "
                "(Postfix smtp_tls_security_level = encrypt, MTA-STS, DANE) will not deliver. "
            )
    if any(s.startswith("STARTTLS was answered") for s in signs):
        text += (
            "After the 220 to STARTTLS the client kept talking in clear text: a box on the "
            "path answered STARTTLS itself and holds the connection open in clear (or the "
            "capture was written by a tool that stored the decrypted traffic). "
        )
    rcpts = max((len(t.rcpt_to) for t in session.transactions), default=0)
    if broken:
        text += (
            f"The session then ended badly ({session.outcome}: {session.outcome_reason}); "
            "inspecting firewalls drop sessions they dislike (Cisco's default policy: more "
            f"than {ASA_MAX_RCPT} recipients, command lines over 512 bytes, header lines "
            "over 998 bytes)"
            + (f", and this session had {rcpts} recipients" if rcpts > ASA_MAX_RCPT else "")
            + "."
        )
    else:
        text += f"The mail itself was not stopped here ({session.outcome})."
    return text.strip()
