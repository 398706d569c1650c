"""The kinds of refusal the diagnosis asks about: greylisting, rate limiting, a policy
refusal of the client, a message refused for its size. Each takes a reply's code, its
enhanced code and its text."""

from __future__ import annotations

import re

from pcapsmtp.smtp.codes.classes import _is_negative, is_transient
from pcapsmtp.smtp.codes.enhanced import _split_enhanced

# Greylisting: postgrey "450 4.2.0 <x>: Recipient address rejected: Greylisted, see
# http://postgrey.schweikert.ch/help/..."; milter-greylist "451 4.7.1 Greylisting in action,
# please come back later"; cPanel Exim "451 ... is not yet authorized to deliver mail from";
# Mimecast "451 Internal resource temporarily unavailable" (its rule in meanings.py); Postfix
# postscreen "450 4.3.2 Service currently unavailable" (postscreen_state.c) makes a new client
# come back, which is greylisting in effect.
_GREYLISTING = re.compile(
    r"gr[ae]y[ -]?list|not yet authorized to deliver mail from|DOC-1369#451"
    r"|^Internal resource (?:is )?temporarily unavailable|^4\.3\.2 Service currently unavailable",
    re.I,
)


def is_greylisting(code: int, text: str) -> bool:
    """A 4xx that asks a first-time sender to come back later (postgrey, milter-greylist, ...)."""
    return is_transient(code) and bool(_GREYLISTING.search(text.lstrip()))


_RATE_LIMITED = re.compile(
    r"too many (?:concurrent (?:SMTP )?)?(?:connections|sessions)|connection rate"
    r"|rate.?limit|throttl|receiving (?:e?mail )?(?:at a rate|too quickly)|unusual rate"
    r"|(?:unexpected|excessive) volume|server busy|too many messages|sending limit"
    r"|\[TSS?\d\d\]|\bOFR00[45]_104\b",
    re.I,
)
# Gmail 4.7.28 ("Mail flood detected"), Microsoft's 4.7.500-699 ("Server busy").
_RATE_LIMITED_ENHANCED = re.compile(r"4\.7\.(?:28|[56]\d\d)$")


def is_rate_limited(code: int, enhanced: str | None, text: str) -> bool:
    """A 4xx that throttles the sender: connection or message rate, provider volume limits."""
    if not is_transient(code) or is_greylisting(code, text):
        return False
    if _RATE_LIMITED.search(text) or _RATE_LIMITED_ENHANCED.match(enhanced or ""):
        return True
    # A bare "421 ... try again later" is how many large providers slow a sender down.
    generic = enhanced is None or enhanced.startswith("4.7.")
    return code == 421 and generic and bool(re.search(r"try again later", text, re.I))


_POLICY = re.compile(
    r"client host rejected|helo command rejected|relay access denied|access denied"
    r"|\bblock(?:ed|listed)\b|blocklist|blacklist|\blisted (?:at|on|in|by)\b|spamhaus"
    r"|\b(?:RBL|DNSBL)\b|reputation",
    re.I,
)
"""Postfix's words for an access restriction that matched (smtpd_client_restrictions and
friends: 'Client host rejected', 'Helo command rejected', 'Relay access denied'), and the
words of blocklist and reputation refusals."""


def is_policy_refusal(code: int, enhanced: str | None, text: str) -> bool:
    """A refusal of this client (its address, name or reputation) by the server's policy:
    even as a 4xx, waiting and retrying meet the same policy until its reason is fixed.
    Greylisting and rate limiting, which a later retry does pass, are not."""
    if not _is_negative(code) or is_greylisting(code, text):
        return False
    if is_rate_limited(code, enhanced, text):
        return False
    return bool(_POLICY.search(text)) or (enhanced or "").split(".")[1:2] == ["7"]


_SIZE_TEXT = re.compile(
    r"size exceeds|message (?:is )?too (?:big|large)|exceeds .*size limit|databytes"
    r"|message length exceeds|message size limit",
    re.I,
)
_SIZE_ENHANCED = ("3.4", "2.3", "7.16")  # X.3.4, X.2.3 (RFC 3463), X.7.16 (RFC 6710)


def is_size_rejection(code: int, enhanced: str | None, text: str) -> bool:
    """The message was refused for its size (RFC 1870 552, X.3.4, X.2.3, "size exceeds")."""
    if not _is_negative(code):
        return False
    if _SIZE_TEXT.search(text):
        return True
    parts = _split_enhanced(enhanced or "")
    if parts is not None:
        return f"{parts[1]}.{parts[2]}" in _SIZE_ENHANCED
    # RFC 1870 section 6.1: "552 message size exceeds fixed maximum message size".
    return code == 552
