"""Enhanced status codes: RFC 3463, RFC 2034 and the IANA "SMTP Enhanced Status Codes"
registry; where a reply carries one, what it is called, and what it means in plain words."""

from __future__ import annotations

import re

# RFC 3463 section 2: status-code = class "." subject "." detail; class = "2"/"4"/"5";
# subject and detail are 1*3digit. RFC 2034 section 4 puts it first in the reply text.
_ENHANCED_AT_START = re.compile(r"[ \t]*([245]\.\d{1,3}\.\d{1,3})(?=[ \t:;,]|$)", re.ASCII)
# qmail appends it instead: "553 sorry, that domain isn't in my list ... (#5.7.1)".
_ENHANCED_QMAIL = re.compile(r"\(#([245]\.\d{1,3}\.\d{1,3})\)\s*$", re.ASCII)

ENHANCED_CLASSES = {  # IANA "Class Sub-Codes"
    2: "Success",
    4: "Persistent Transient Failure",
    5: "Permanent Failure",
}
ENHANCED_SUBJECTS = {  # IANA "Subject Sub-Codes", RFC 3463 section 3
    0: "Other or Undefined Status",
    1: "Addressing Status",
    2: "Mailbox Status",
    3: "Mail System Status",
    4: "Network and Routing Status",
    5: "Mail Delivery Protocol Status",
    6: "Message Content or Media Status",
    7: "Security or Policy Status",
}
# IANA "Enumerated Status Codes", Sample Text column (registry updated 2024-12-06).
ENHANCED_CODES = {
    "X.0.0": "Other undefined Status",  # RFC 3463
    "X.1.0": "Other address status",  # RFC 3463
    "X.1.1": "Bad destination mailbox address",  # RFC 3463
    "X.1.2": "Bad destination system address",  # RFC 3463
    "X.1.3": "Bad destination mailbox address syntax",  # RFC 3463
    "X.1.4": "Destination mailbox address ambiguous",  # RFC 3463
    "X.1.5": "Destination address valid",  # RFC 3463
    "X.1.6": "Destination mailbox has moved, No forwarding address",  # RFC 3463
    "X.1.7": "Bad sender's mailbox address syntax",  # RFC 3463
    "X.1.8": "Bad sender's system address",  # RFC 3463
    "X.1.9": "Message relayed to non-compliant mailer",  # RFC 3886
    "X.1.10": "Recipient address has null MX",  # RFC 7505
    "X.2.0": "Other or undefined mailbox status",  # RFC 3463
    "X.2.1": "Mailbox disabled, not accepting messages",  # RFC 3463
    "X.2.2": "Mailbox full",  # RFC 3463
    "X.2.3": "Message length exceeds administrative limit",  # RFC 3463
    "X.2.4": "Mailing list expansion problem",  # RFC 3463
    "X.3.0": "Other or undefined mail system status",  # RFC 3463
    "X.3.1": "Mail system full",  # RFC 3463
    "X.3.2": "System not accepting network messages",  # RFC 3463
    "X.3.3": "System not capable of selected features",  # RFC 3463
    "X.3.4": "Message too big for system",  # RFC 3463
    "X.3.5": "System incorrectly configured",  # RFC 3463
    "X.3.6": "Requested priority was changed",  # RFC 6710
    "X.4.0": "Other or undefined network or routing status",  # RFC 3463
    "X.4.1": "No answer from host",  # RFC 3463
    "X.4.2": "Bad connection",  # RFC 3463
    "X.4.3": "Directory server failure",  # RFC 3463
    "X.4.4": "Unable to route",  # RFC 3463
    "X.4.5": "Mail system congestion",  # RFC 3463
    "X.4.6": "Routing loop detected",  # RFC 3463
    "X.4.7": "Delivery time expired",  # RFC 3463
    "X.5.0": "Other or undefined protocol status",  # RFC 3463
    "X.5.1": "Invalid command",  # RFC 3463
    "X.5.2": "Syntax error",  # RFC 3463
    "X.5.3": "Too many recipients",  # RFC 3463
    "X.5.4": "Invalid command arguments",  # RFC 3463
    "X.5.5": "Wrong protocol version",  # RFC 3463
    "X.5.6": "Authentication Exchange line is too long",  # RFC 4954
    "X.6.0": "Other or undefined media error",  # RFC 3463
    "X.6.1": "Media not supported",  # RFC 3463
    "X.6.2": "Conversion required and prohibited",  # RFC 3463
    "X.6.3": "Conversion required but not supported",  # RFC 3463
    "X.6.4": "Conversion with loss performed",  # RFC 3463
    "X.6.5": "Conversion Failed",  # RFC 3463
    "X.6.6": "Message content not available",  # RFC 4468
    "X.6.7": "Non-ASCII addresses not permitted for that sender/recipient",  # RFC 6531
    "X.6.8": "UTF-8 string reply is required, but not permitted by the SMTP client",  # RFC 6531
    "X.6.9": (  # RFC 6531
        "UTF-8 header message cannot be transferred to one or more recipients, "
        "so the message must be rejected"
    ),
    # Registered as a duplicate of X.6.8 and deprecated (RFC 6531 erratum); same text.
    "X.6.10": "UTF-8 string reply is required, but not permitted by the SMTP client",
    "X.7.0": "Other or undefined security status",  # RFC 3463
    "X.7.1": "Delivery not authorized, message refused",  # RFC 3463
    "X.7.2": "Mailing list expansion prohibited",  # RFC 3463
    "X.7.3": "Security conversion required but not possible",  # RFC 3463
    "X.7.4": "Security features not supported",  # RFC 3463
    "X.7.5": "Cryptographic failure",  # RFC 3463
    "X.7.6": "Cryptographic algorithm not supported",  # RFC 3463
    "X.7.7": "Message integrity failure",  # RFC 3463
    "X.7.8": "Authentication credentials invalid",  # RFC 4954
    "X.7.9": "Authentication mechanism is too weak",  # RFC 4954
    "X.7.10": "Encryption Needed",  # RFC 5248
    "X.7.11": "Encryption required for requested authentication mechanism",  # RFC 4954
    "X.7.12": "A password transition is needed",  # RFC 4954
    "X.7.13": "User Account Disabled",  # RFC 5248
    "X.7.14": "Trust relationship required",  # RFC 5248
    "X.7.15": "Priority Level is too low",  # RFC 6710
    "X.7.16": "Message is too big for the specified priority",  # RFC 6710
    "X.7.17": "Mailbox owner has changed",  # RFC 7293
    "X.7.18": "Domain owner has changed",  # RFC 7293
    "X.7.19": "RRVS test cannot be completed",  # RFC 7293
    "X.7.20": "No passing DKIM signature found",  # RFC 7372
    "X.7.21": "No acceptable DKIM signature found",  # RFC 7372
    "X.7.22": "No valid author-matched DKIM signature found",  # RFC 7372
    "X.7.23": "SPF validation failed",  # RFC 7372
    "X.7.24": "SPF validation error",  # RFC 7372
    "X.7.25": "Reverse DNS validation failed",  # RFC 7372
    "X.7.26": "Multiple authentication checks failed",  # RFC 7372
    "X.7.27": "Sender address has null MX",  # RFC 7505
    "X.7.28": "Mail flood detected",  # IANA registry
    "X.7.29": "ARC validation failure",  # RFC 8617
    "X.7.30": "REQUIRETLS support required",  # RFC 8689
}

# What the common codes mean in practice, for the one-line meaning; the rest use IANA's text.
_ENHANCED_PLAIN = {
    "X.1.1": "the recipient address does not exist",
    "X.1.2": "the recipient's domain does not exist or accepts no mail",
    "X.1.3": "the recipient address is malformed",
    "X.1.6": "the mailbox has moved and there is no forwarding address",
    "X.1.7": "the sender address is malformed",
    "X.1.8": "the sender's domain does not exist or cannot receive replies",
    "X.1.10": "the recipient's domain publishes a null MX: it accepts no mail",
    "X.2.1": "the mailbox is disabled and not accepting messages",
    "X.2.2": "the recipient's mailbox is full",
    "X.2.3": "the message is larger than this mailbox accepts",
    "X.3.1": "the receiving mail system is out of storage",
    "X.3.2": "the receiving system is not accepting messages now",
    "X.3.4": "the message is larger than the receiving system accepts",
    "X.4.1": "no answer from the next host",
    "X.4.2": "bad connection: the session timed out or broke",
    "X.4.3": "a directory (DNS) lookup failed on the receiving side",
    "X.4.4": "unable to route: no usable MX or address for the domain",
    "X.4.5": "the receiving mail system is congested",
    "X.4.6": "routing loop detected",
    "X.4.7": "delivery time expired",
    "X.5.1": "invalid command (out of sequence or not supported)",
    "X.5.3": "too many recipients for one message",
    "X.7.1": "delivery not authorized: refused by the receiver's policy",
    "X.7.8": "authentication failed: invalid credentials",
    "X.7.13": "the sending user account is disabled",
    "X.7.23": "SPF validation failed for the sender's domain",
    "X.7.25": "reverse DNS validation of the sending IP failed",
    "X.7.26": "the message failed more than one authentication check (SPF/DKIM/DMARC)",
    "X.7.27": "the sender's domain has a null MX, so it cannot receive bounces",
}
_SUBJECT_PLAIN = {  # for X.Y.0, "other or undefined" within a subject
    1: "an address problem",
    2: "a mailbox problem",
    3: "a problem of the receiving mail system",
    4: "a network or routing problem",
    5: "a protocol problem",
    6: "a message content or media problem",
    7: "a security or policy reason",
}


def parse_enhanced(text: str) -> str | None:
    """The RFC 3463 code at the start of a reply line's text, e.g. "5.1.1", else None."""
    match = _ENHANCED_AT_START.match(text)
    return match.group(1) if match else None


def _split_enhanced(enhanced: str) -> tuple[int, int, int] | None:
    parts = enhanced.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and 1 <= len(p) <= 3 for p in parts):
        return None
    klass, subject, detail = (int(p) for p in parts)
    return (klass, subject, detail) if klass in ENHANCED_CLASSES else None


def enhanced_meaning(enhanced: str) -> str | None:
    """IANA's text for class.subject.detail, else the subject's ("Security or Policy Status")."""
    parts = _split_enhanced(enhanced)
    if parts is None or parts[1] not in ENHANCED_SUBJECTS:
        return None
    _, subject, detail = parts
    return ENHANCED_CODES.get(f"X.{subject}.{detail}", ENHANCED_SUBJECTS[subject])


def _enhanced_phrase(enhanced: str) -> str | None:
    parts = _split_enhanced(enhanced)
    if parts is None or parts[1] not in ENHANCED_SUBJECTS or parts[1:] == (0, 0):
        return None
    _, subject, detail = parts
    key = f"X.{subject}.{detail}"
    if key in _ENHANCED_PLAIN:
        return _ENHANCED_PLAIN[key]
    if detail == 0:
        return _SUBJECT_PLAIN[subject]
    title = enhanced_meaning(enhanced) or ""
    return title[:1].lower() + title[1:] if title[1:2].islower() else title  # "ARC ..." stays


def _qmail_enhanced(text: str) -> str | None:
    match = _ENHANCED_QMAIL.search(text.rstrip())
    return match.group(1) if match else None
