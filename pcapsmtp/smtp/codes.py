"""SMTP replies as a mail admin reads them: reply classes (RFC 5321 section 4.2), enhanced
status codes (RFC 3463, RFC 2034 and the IANA "SMTP Enhanced Status Codes" registry), what a
reply means in one line, and the queue id a server hands back after the end of data.

Every function takes the reply text without the three-digit code, lines joined with "\\n",
the enhanced code (when the server sends one) at the start of the first line. Pure functions:
no I/O, nothing raises on peer text.
"""

from __future__ import annotations

import re

# --- Reply classes, RFC 5321 section 4.2.1 (first digit) -------------------------------------

REPLY_CLASSES = {
    2: "positive",  # 2yz Positive Completion reply
    3: "intermediate",  # 3yz Positive Intermediate reply
    4: "transient",  # 4yz Transient Negative Completion reply
    5: "permanent",  # 5yz Permanent Negative Completion reply
}


def reply_class(code: int) -> str:
    """The class of a reply by its first digit; "invalid" outside 200-599."""
    if not 200 <= code <= 599:
        return "invalid"
    return REPLY_CLASSES[code // 100]


def is_positive(code: int) -> bool:
    return reply_class(code) == "positive"


def is_intermediate(code: int) -> bool:
    return reply_class(code) == "intermediate"


def is_transient(code: int) -> bool:
    return reply_class(code) == "transient"


def is_permanent(code: int) -> bool:
    return reply_class(code) == "permanent"


def _is_negative(code: int) -> bool:
    return is_transient(code) or is_permanent(code)


# --- Basic reply codes: RFC 5321 sections 4.2.2 and 4.2.3, and the extensions that added one --

BASIC_CODES = {
    211: "system status, or system help reply",
    214: "help message",
    220: "service ready",
    221: "service closing transmission channel",
    235: "authentication succeeded",  # RFC 4954 section 6
    250: "requested mail action okay, completed",
    251: "user not local; the server will forward the message",
    252: "cannot verify the user, but will accept the message and attempt delivery",
    334: "authentication challenge: the server waits for the client's next AUTH step",  # RFC 4954
    354: "start mail input; end with <CRLF>.<CRLF>",
    421: "service not available, closing the transmission channel",
    432: "a password transition is needed",  # RFC 4954 section 6
    450: "mailbox unavailable for now (busy, or temporarily blocked for policy reasons)",
    451: "requested action aborted: local error in processing on the server",
    452: "insufficient system storage on the server (or too many recipients)",
    454: "temporary authentication failure, or TLS not available now",  # RFC 4954, RFC 3207
    455: "the server cannot accommodate the MAIL FROM/RCPT TO parameters now",
    458: "unable to queue messages for the node",  # RFC 1985 (ETRN)
    459: "node not allowed",  # RFC 1985 (ETRN)
    500: "syntax error, command unrecognized (or command line too long)",
    501: "syntax error in parameters or arguments",
    502: "command not implemented",
    503: "bad sequence of commands",
    504: "command parameter not implemented",
    521: "this host does not accept mail",  # RFC 7504 section 3
    530: "authentication required, or STARTTLS must come first",  # RFC 4954, RFC 3207
    534: "authentication mechanism is too weak",  # RFC 4954 section 6
    535: "authentication credentials invalid",  # RFC 4954 section 6
    538: "encryption required for the requested authentication mechanism",  # RFC 4954
    550: "mailbox unavailable (not found, no access, or refused for policy reasons)",
    551: "user not local; the client should try the forward-path given",
    552: "exceeded storage allocation (message too big for the server or mailbox)",
    553: "mailbox name not allowed (e.g. address syntax incorrect)",
    554: "transaction failed (when opening the connection: no SMTP service here)",
    555: "MAIL FROM/RCPT TO parameters not recognized or not implemented",
    556: "the recipient's domain does not accept mail",  # RFC 7504 section 3
}

_CLASS_MEANINGS = {
    "positive": "positive completion",
    "intermediate": "positive intermediate: the server waits for more from the client",
    "transient": "temporary failure: the same command may succeed later",
    "permanent": "permanent failure: retrying unchanged will not succeed",
    "invalid": "not a valid SMTP reply code",
}
_CLASS_WORDS = {"transient": "temporary failure", "permanent": "permanent failure"}


# --- Enhanced status codes: RFC 3463 and the IANA registry -----------------------------------

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


# --- Provider and MTA knowledge: texts seen in real replies ------------------------------------
# Each rule: a pattern searched (case-insensitively) in "<code> <text on one line>" of a 4xx or
# 5xx reply, and the meaning; "{0}" takes the pattern's first group. Most specific first.

_GMAIL = r"(?=.*\b(?:gsmtp|gcdp)\b)"  # Gmail appends "- gsmtp" to every reply


_Rule = tuple[re.Pattern[str], str, "re.Pattern[str] | None"]


def _rules(*rows: tuple[str, str]) -> tuple[_Rule, ...]:
    """Compiled rules, each with its gate: see _lookahead_gate."""
    return tuple(
        (re.compile(pattern, re.I), text, _gate(_lookahead_gate(pattern))) for pattern, text in rows
    )


def _gate(lookahead: str | None) -> re.Pattern[str] | None:
    return re.compile(lookahead, re.I) if lookahead is not None else None


def _syntax(pattern: str) -> list[tuple[int, int]]:
    """(index, depth) of each "(", ")" and "|" of a pattern that is syntax: not escaped, not
    in a character class; depth counts the groups open before it."""
    found, depth, index, in_class = [], 0, 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1 if pattern[index + 1 : index + 2] in ("]", "^") else 0
        elif char in "(|)":
            depth -= char == ")"
            found.append((index, depth))
            depth += char == "("
        index += 1
    return found


def _lookahead_gate(pattern: str) -> str | None:
    """G when every alternative of the pattern starts with the lookahead "(?=.*G)", else None.

    Such a pattern cannot match a text in which G is not found, so _apply searches G once per
    text and skips the rule without scanning: the lookahead alone costs a scan of the rest of
    the text at every start position (most of the time of meaning() before it had gates)."""
    marks = _syntax(pattern)
    starts = [0] + [i + 1 for i, depth in marks if pattern[i] == "|" and depth == 0]
    gates = set()
    for start in starts:
        if not pattern.startswith("(?=.*", start):
            return None
        end = next(
            (i for i, depth in marks if i > start and depth == 0 and pattern[i] == ")"), None
        )
        if end is None:
            return None
        gates.add(pattern[start + 5 : end])
    return gates.pop() if len(gates) == 1 else None


PROVIDER_RULES = _rules(
    # Exchange Online / EOP, learn.microsoft.com "Email non-delivery reports and SMTP errors in
    # Exchange Online"; real text: "550 5.7.606 Access denied, banned sending IP [185.234.72.45].
    # To request removal from this list please visit https://sender.office.com/" (pastebin).
    (
        r"^5\d\d 5\.7\.6(?:0[6-9]|[1-4]\d)\b|banned sending IP",
        "the sending IP is on Microsoft's block list (delist at sender.office.com)",
    ),
    # "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP."
    (
        r"^5\d\d 5\.7\.708\b|traffic not accepted from this IP",
        "Microsoft will not send this tenant's mail from this IP (5.7.708, tenant reputation)",
    ),
    # "550 5.7.705 Access denied, tenant has exceeded threshold" (NDR 5.7.700-749).
    (
        r"^5\d\d 5\.7\.7[0-4]\d\b|tenant has exceeded threshold",
        "Microsoft blocks this Microsoft 365 tenant from sending (5.7.700-749: over threshold)",
    ),
    # NDR 5.7.750 "Client blocked from sending from unregistered domains".
    (
        r"^5\d\d 5\.7\.750\b",
        "Microsoft blocks this tenant from sending from unregistered domains (5.7.750)",
    ),
    # "451 4.7.500 Server busy. Please try again later from [134.119.1.64]. (S77719)" (gitlab
    # lightmeter #319); NDR 4.7.500-699 "Server busy, please try again later".
    (
        r"^4\d\d 4\.7\.[56]\d\d\b",
        "throttled by Microsoft (4.7.500-699): the sending IP's volume or reputation; retry later",
    ),
    # Outlook.com: "550 5.7.1 Unfortunately, messages from [88.198.83.90] weren't sent. ... our
    # block list (S3150)" / "(AS3140)"; older "550 SC-001 (SNT004-MC4F53) ..." (pastebin).
    (
        r"\(A?S3\d{3}\)|\b(?:SC|DY)-00\d\b",
        "the sending IP or its network is on Outlook.com's block list (ask Microsoft to delist)",
    ),
    # Exchange: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address
    # lookup" (5.1.10 here is not IANA's null MX).
    (
        r"RESOLVER\.ADR\.RecipientNotFound",
        "the recipient does not exist in the Exchange organisation",
    ),
    # Directory-Based Edge Blocking: "550 5.4.1 [x@y]: Recipient address rejected: Access
    # denied [CY1GCC01FT007.eop-gcc01.prod.protection.outlook.com]" (pastebin).
    (
        r"^5\d\d 5\.4\.1 .*Recipient address rejected: Access denied",
        "Exchange Online refused the recipient: not in the tenant's directory (edge blocking)",
    ),
    # Exchange back pressure: "452 4.3.1 Insufficient system resources" (Cisco ESA doc 117875).
    (
        r"^452 4\.3\.1 Insufficient system resources",
        "the Exchange server is short of disk or memory (back pressure) and refuses mail for now",
    ),
    # Gmail, Google Workspace Admin Help "Gmail SMTP errors and codes" (answer 3726730,
    # snapshot of 2026-02-12 in azumakuniyuki/feb-2024-no-auth-no-entry).
    (
        _GMAIL + r"^5\d\d 5\.7\.26\b",
        "rejected by Gmail: the message fails DMARC/SPF/DKIM authentication",
    ),
    (
        _GMAIL + r"^4\d\d 4\.7\.26\b",
        "deferred by Gmail: the message is unauthenticated (SPF/DKIM/DMARC did not pass)",
    ),
    (_GMAIL + r"^\d{3} [45]\.7\.27\b", "Gmail: SPF did not pass (required of bulk senders)"),
    (_GMAIL + r"^\d{3} [45]\.7\.30\b", "Gmail: DKIM did not pass (required of bulk senders)"),
    (
        _GMAIL + r"^\d{3} [45]\.7\.40\b.*DMARC",
        "Gmail: the sending domain has no DMARC record or policy (required of bulk senders)",
    ),
    (
        _GMAIL + r"^\d{3} [45]\.7\.32\b",
        "Gmail: the From: domain is not aligned with the SPF or DKIM domain (DMARC alignment)",
    ),
    (_GMAIL + r"^\d{3} [45]\.7\.29\b", "Gmail: the message was not sent over TLS"),
    # Also the older "421-4.7.0 [IP 15] Our system has detected an unusual rate of unsolicited
    # mail originating from your IP address" and "550-5.7.1 ..." (pastebin, gist 8530279).
    (
        _GMAIL + r"^\d{3} [45]\.7\.28\b|" + _GMAIL + r"unusual (?:rate|amount) of",
        "Gmail limits this sender: unusual rate of (unsolicited) mail from its IP or domain",
    ),
    (
        _GMAIL + r"IPv6 sending guidelines",
        "Gmail: mail over IPv6 needs a PTR record and SPF or DKIM authentication",
    ),
    (
        _GMAIL + r"PTR record|" + _GMAIL + r"^4\d\d 4\.7\.23\b|" + _GMAIL + r"^5\d\d 5\.7\.25\b",
        "Gmail: the sending IP has no PTR record, or it does not resolve back to the IP",
    ),
    (
        _GMAIL + r"^\d{3} [45]\.7\.24\b",
        "Gmail: the sending domain's SPF record has suspicious entries or failed to evaluate",
    ),
    (
        _GMAIL + r"TLS required for RCPT domain",
        "the recipient's Google Workspace domain requires TLS (STARTTLS)",
    ),
    (
        _GMAIL + r"IP not in whitelist for RCPT domain",
        "the recipient's Google Workspace domain accepts only allow-listed sending IPs",
    ),
    (
        _GMAIL + r"very low reputation of the sending (IP address|domain)",
        "blocked by Gmail: very low reputation of the sending {0}",
    ),
    (_GMAIL + r"likely unsolicited", "rejected by Gmail as likely spam"),
    (
        _GMAIL + r"receiving (?:e?mail )?(?:at a rate|too quickly)",
        "Gmail: the recipient is receiving mail too fast; retry later",
    ),
    (
        r"\bgcdp\b",
        "refused by a rule of the recipient's Google Workspace administrator (gcdp)",
    ),
    (
        _GMAIL + r"Application-specific password required",
        "Google: this account needs an app password (or OAuth) for SMTP AUTH",
    ),
    (
        _GMAIL + r"log in (?:through|via|with) your web browser",
        "Google refused the sign-in: the user must log in through a web browser first",
    ),
    (
        _GMAIL + r"sending limit exceeded|" + _GMAIL + r"relay limit exceeded",
        "Gmail: the sending account or relay exceeded its sending limit",
    ),
    # Yahoo, senders.yahooinc.com/smtp-error-codes; "553 5.7.2 [TSS09] All messages from X will
    # be permanently deferred; Retrying will NOT succeed" and "421 4.7.0 [TSS04] Messages from
    # X temporarily deferred due to unexpected volume or user complaints - 4.16.55.1".
    (
        r"\[TSS09\]",
        "Yahoo refuses all mail from this IP (TSS09): retrying will not succeed",
    ),
    (
        r"\[(TSS?\d\d)\]",
        "Yahoo defers mail from this IP ({0}): unexpected volume or user complaints",
    ),
    (r"(?=.*yahoo)\b(PH\d\d)\b", "Yahoo refused the content ({0}): policy, phishing or malware"),
    (r"doesn't have a yahoo\.com account", "the Yahoo recipient does not exist"),
    # iCloud, smtp.codes/icloud: "550 5.7.1 [CS01] Message rejected due to local policy.
    # Please visit https://support.apple.com/en-us/HT204137"; "421 4.7.1 Messages to
    # x@icloud.com deferred due to excessive volume. Try again later".
    (
        r"\[(CS\d\d)\] Message rejected due to local policy",
        "rejected by iCloud's local policy ({0}): sender reputation, authentication or content",
    ),
    (r"deferred due to excessive volume", "iCloud: this recipient gets too much mail; retry"),
    # GMX / WEB.DE (Nemesis): "554-gmx.net (mxgmx116) Nemesis ESMTP Service not available
    # 554-No SMTP service 554-Bad DNS PTR resource record." (pastebin D7Xa4RcU).
    (
        r"Nemesis ESMTP.*(?:PTR|rdns)",
        "GMX/WEB.DE refuses the connection: the sending IP has no valid PTR record",
    ),
    (
        r"Nemesis ESMTP Service not available",
        "GMX/WEB.DE refuses the connection from this IP (see their postmaster pages)",
    ),
    # Orange: "421 mwinf... ME Trop de connexions ... Too many connections, slow down.
    # OFR004_104 [104]" and "OFR_999" (postmastery.com, bentonow.com).
    (r"\bOFR00[45]_104\b", "Orange limits connections from this IP: use fewer parallel sessions"),
    (r"\b(OFR\d*_\d+)\b", "refused by Orange ({0}); see Orange's postmaster code list"),
    # Comcast, postmaster.comcast.net/mail-error-codes: ES000001/ES000010 dynamic space,
    # BL0000xx Comcast/Spamhaus/Cloudmark/SenderScore lists.
    (r"\b(ES0000(?:01|10))\b", "Comcast refuses mail from dynamic/residential IP space ({0})"),
    (r"\b(BL0\d{5})\b", "the sending IP is on a block list Comcast uses ({0})"),
    (
        r"Comcast requires that all mail servers must have a PTR",
        "Comcast requires a valid PTR (reverse DNS) record for the sending IP",
    ),
    # AOL, arkime-smtp-data-521.pcap frame 33: "521 5.2.1 MUST COMPLETE IMAGE PUZZLE BEFORE
    # SENDING. PLEASE GOTO http://challenge.aol.com/spam.html".
    (
        r"COMPLETE IMAGE PUZZLE",
        "AOL holds the sending account until its owner solves a CAPTCHA (suspected spam)",
    ),
    # Barracuda: "554 Service unavailable; Client host [x] blocked using Barracuda Reputation;
    # http://bbl.barracudacentral.com/q.cgi?ip=..." (nmap-service-probes, luxsci.com).
    (
        r"Barracuda Reputation|barracudacentral",
        "the sending IP is on the Barracuda Reputation block list (delist at barracudacentral.org)",
    ),
    # Proofpoint Dynamic Reputation, ipcheck.proofpoint.com (suped.com, Proofpoint's pages).
    (
        r"ipcheck\.proofpoint\.com|Proofpoint Dynamic Reputation",
        "blocked by Proofpoint reputation: check or delist the IP at ipcheck.proofpoint.com",
    ),
    (r"proofpoint", "refused by Proofpoint's filtering"),
    # Mimecast, "Mimecast SMTP Error Codes" (community.mimecast.com DOC-1369): "451 Internal
    # resource temporarily unavailable" is its greylisting (or a pending reputation check).
    (
        r"DOC-1369#451|^451 Internal resource (?:is )?temporarily unavailable",
        "greylisted by Mimecast (or its reputation check is pending): retry later",
    ),
    (r"mimecast", "refused by a Mimecast policy (see the Mimecast error-code page it links)"),
    # Cisco Secure Email (IronPort) default HAT reject (nmap-service-probes): "554 Your access to
    # this mail system has been rejected due to the sending MTA's poor reputation."
    (
        r"sending MTA's poor reputation",
        "Cisco Secure Email refuses the sending IP for poor reputation (Talos/SenderBase)",
    ),
    # Trend Micro (nmap-service-probes): "550 Service unavailable; Client host [x] blocked using
    # Trend Micro RBL+."
    (
        r"Trend Micro (?:RBL\+|Email Reputation)",
        "the sending IP is on Trend Micro's Email Reputation block list",
    ),
    # Spamhaus, whoever quotes it (Postfix reject_rbl_client, Exim dnslists, Yahoo's doc).
    (
        r"spamhaus",
        "the sending IP, or a domain in the message, is listed by Spamhaus (check.spamhaus.org)",
    ),
)

# --- MTA texts: the defaults of Postfix, Exim, Sendmail, qmail, and common filters -------------

# Greylisting: postgrey "450 4.2.0 <x>: Recipient address rejected: Greylisted, see
# http://postgrey.schweikert.ch/help/..."; milter-greylist "451 4.7.1 Greylisting in action,
# please come back later"; cPanel Exim "451 ... is not yet authorized to deliver mail from";
# Mimecast "451 Internal resource temporarily unavailable" (see above); Postfix postscreen
# "450 4.3.2 Service currently unavailable" (postscreen_state.c) makes a new client come back,
# which is greylisting in effect.
_GREYLISTING = re.compile(
    r"gr[ae]y[ -]?list|not yet authorized to deliver mail from|DOC-1369#451"
    r"|^Internal resource (?:is )?temporarily unavailable|^4\.3\.2 Service currently unavailable",
    re.I,
)

GENERIC_RULES = _rules(
    # Postfix default_rbl_reply (mail_params.h): "554 5.7.1 Service unavailable; Client host
    # [1.2.3.4] blocked using zen.spamhaus.org"; Exim: "rejected because 1.2.3.4 is in a black
    # list at zen.spamhaus.org"; Sendmail dnsbl: "Rejected: 1.2.3.4 listed at bl.example".
    (
        r"blocked using ([\w.-]+[\w])|in a black ?list at ([\w.-]+[\w])|listed at ([\w.-]+[\w])",
        "the sending IP is on the DNS block list {0}",
    ),
    # Postfix "<x>: Relay access denied" (smtpd_check.c), Exim "relay not permitted", Sendmail
    # "Relaying denied", qmail "sorry, that domain isn't in my list of allowed rcpthosts".
    (
        r"Relay access denied|relay(?:ing)? (?:not permitted|denied)|allowed rcpthosts"
        r"|unable to relay",
        "relaying denied: not this server's domain, and it does not relay for this client",
    ),
    # Postfix "Client host rejected: cannot find your (reverse )hostname, [IP]".
    (
        r"cannot find your (?:reverse )?hostname|reverse DNS|\bPTR\b",
        "the sending IP's reverse DNS (PTR) is missing or does not match its name",
    ),
    # Postfix "450 4.1.8 <x>: Sender address rejected: Domain not found"
    # (suricata-bug-5867-fp-drop-01_input.pcap frame 200); Sendmail "553 5.1.8 <x>... Domain of
    # sender address x does not exist" (suricata-smtp-data-rejected_*.pcap frame 10).
    (
        r"Sender address rejected: Domain not found|Domain of sender address \S+ does not",
        "the sender's domain does not resolve in DNS: use a sender address in a real domain",
    ),
    # Postfix reject_sender_login_mismatch: "553 5.7.1 <x>: Sender address rejected: not
    # logged in" (arkime-smtp-rcpt-553.pcap frame 13).
    (
        r"Sender address rejected: not (?:logged in|owned)",
        "the server wants the client to authenticate (AUTH) for this sender address",
    ),
    # Exim sender verification (acl.c "Sender verify failed").
    (
        r"Sender verify failed|sender verify callout",
        "the receiver could not verify the sender address (callout to the sender's MX failed)",
    ),
    # Exim "554 SMTP synchronization error" (smtp_in.c).
    (
        r"synchroni[sz]ation error",
        "the client talked before the server answered (pipelining without PIPELINING?)",
    ),
    # Postfix "User unknown in local recipient table", Exim "Unrouteable address".
    (
        r"User unknown|No such user|Unrouteable address|Recipient not found|user does not exist"
        r"|Invalid recipient",
        "the recipient address does not exist on this server",
    ),
    # "554 5.7.1 Message contains virus: rejected." (suricata-smtp-data-rejected_*.pcap 195).
    (r"\bvirus|malware", "rejected by a content scanner: the message carries a virus or malware"),
    # Exim daemon.c "421 Too many concurrent SMTP connections; please try again later."; Postfix
    # "421 4.7.0 host Error: too many connections from IP"; Comcast "Too many sessions opened".
    (
        r"too many (?:concurrent (?:SMTP )?)?(?:connections|sessions)|connection rate limit",
        "too many connections from this IP: the receiver limits parallel or new connections",
    ),
    (
        r"rate.?limit|throttl|too many messages|sending (?:rate|quota)",
        "rate-limited: the receiver throttles this sender; retry later, more slowly",
    ),
    # Postfix "452 4.5.3 Error: too many recipients".
    (r"too many recipients", "too many recipients: split the recipient list"),
    # Postfix "552 5.3.4 Message size exceeds fixed limit", Exim "552 Message size exceeds
    # maximum permitted", qmail "552 sorry, that message size exceeds my databytes limit".
    (
        r"size exceeds|message (?:is )?too (?:big|large)|exceeds .*size limit|databytes",
        "the message is larger than the receiver accepts",
    ),
    # Postfix "452 4.3.1 Insufficient system storage".
    (r"insufficient (?:system )?storage", "the receiving server is short of disk space"),
    (
        r"mailbox (?:is )?full|over quota|quota exceeded|out of storage space",
        "the recipient's mailbox is full",
    ),
    # Postfix "421 4.4.2 host Error: timeout exceeded" (arkime-smtp-data-250.pcap frame 27);
    # Exchange "451 4.7.0 Timeout waiting for client input" (zeek-smtp-multi-addr.pcap 18).
    (r"time ?out|timed out", "the server gave up waiting for the client (timeout)"),
    (
        r"Must issue a STARTTLS command first|TLS required|encryption required",
        "the server requires STARTTLS first",
    ),
    (r"Authentication required", "the server requires SMTP authentication (AUTH) first"),
    (
        r"Authentication (?:unsuccessful|failed|credentials invalid)|Username and Password not"
        r"|Invalid credentials",
        "authentication failed: wrong username or password, or the mechanism is not allowed",
    ),
    (r"\bspam\b|unsolicited", "refused as spam by the receiver's filter"),
)


def _flat(code: int, text: str) -> str:
    return f"{code} {' '.join(text.split())}"


def _apply(rules: tuple[_Rule, ...], subject: str) -> str | None:
    gates: dict[re.Pattern[str], bool] = {}
    for pattern, meaning_text, gate in rules:
        if gate is not None:
            found = gates.get(gate)
            if found is None:
                found = gates[gate] = gate.search(subject) is not None
            if not found:
                continue
        match = pattern.search(subject)
        if match:
            groups = [g for g in match.groups() if g]
            return meaning_text.format(*groups) if groups else meaning_text
    return None


def _basic_meaning(code: int) -> str:
    klass = reply_class(code)
    phrase = BASIC_CODES.get(code)
    if phrase is None:
        return f"{_CLASS_MEANINGS[klass]} ({code})"
    word = _CLASS_WORDS.get(klass)
    return f"{word}: {phrase} ({code})" if word else phrase


def meaning(code: int, enhanced: str | None, text: str) -> str:
    """One plain-English line: provider knowledge, then the enhanced code, then the basic code."""
    if _is_negative(code):
        subject = _flat(code, text)
        known = _apply(PROVIDER_RULES, subject)
        if known is None and is_greylisting(code, text):
            known = "greylisted: the server asks the sender to retry later"
        known = known or _apply(GENERIC_RULES, subject)
        if known:
            return known
        status = enhanced or _qmail_enhanced(text)
        phrase = _enhanced_phrase(status) if status else None
        if phrase:
            return f"{_CLASS_WORDS[reply_class(code)]}: {phrase} ({status})"
    return _basic_meaning(code)


def _qmail_enhanced(text: str) -> str | None:
    match = _ENHANCED_QMAIL.search(text.rstrip())
    return match.group(1) if match else None


# --- Classifications the diagnosis asks for -------------------------------------------------


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


# --- Queue ids in the reply to the end of data --------------------------------------------------
# (style, pattern): group 1 is the id. Searched line by line in this order.

_QUEUE_ID_STYLES = tuple(
    (style, re.compile(pattern, re.I | re.M))
    for style, pattern in (
        # amavisd-new relaying the downstream Postfix's answer: "250 2.0.0 from
        # MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as BEA13425049" (pastebin Y0MHx0aT).
        # The id is the downstream Postfix's, where the message now is.
        ("amavis", r"from MTA\([^)]*\):\s*250[ -].*?queued as ([0-9A-Za-z]+)"),
        # Exchange 2007+ and Exchange Online: "2.6.0 <msgid> [InternalId=3835405795330,
        # Hostname=...] ... Queued mail for delivery" (arkime-smtp-decrypted.pcap frame 33).
        ("exchange", r"\[InternalId=(\d+)"),
        # Exchange 2003 / IIS SMTP: "2.6.0 <FESFSEF> Queued mail for delivery" gives no queue
        # id; its Message-ID is what message tracking searches by, so that is returned.
        ("exchange", r"^(?:2\.6\.0 )?(<[^>\s]*>) Queued mail for delivery"),
        # Postfix smtpd.c: "2.0.0 Ok: queued as %s" and, after BDAT, "2.0.0 Ok: %ld bytes
        # queued as %s"; short (hex) and long (enable_long_queue_ids) ids alike. Exactly
        # Postfix's spelling: other servers' "ok: queued as" count as generic.
        ("postfix", r"^(?:2\.\d+\.\d+ )?(?-i:Ok: (?:\d+ bytes )?queued as) ([0-9A-Za-z]+)"),
        # Exim receive.c: "OK id=%s"; 6-6-2 ids, 6-11-4 since 4.97.
        ("exim", r"\bOK id=([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\b"),
        # qmail-smtpd: "ok <unix time> qp <pid>". The qp number (the pid of the qmail-queue
        # that took the message) is returned: qmail-send logs "info msg N: ... qp 26211".
        ("qmail", r"^ok \d+ qp (\d+)"),
        # Gmail: "2.0.0 OK  1566213545 c10si1234567wrp.123 - gsmtp": the session id before
        # "- gsmtp" is what Google support asks for.
        ("gmail", r"(\S+) - gsmtp\s*$"),
        # Cisco Secure Email (IronPort): "ok:  Message 64111812 accepted" (the MID).
        ("ironport", r"^ok:\s+Message (\d+) accepted"),
        # OpenSMTPD smtp_session.c: "250 %s %08x Message accepted for delivery".
        ("opensmtpd", r"^(?:2\.0\.0 )?([0-9a-f]{8}) Message accepted for delivery"),
        # Sendmail: "2.0.0 tA6IZTQc010322 Message accepted for delivery"
        # (arkime-smtp-moloch-bof.pcap frame 24).
        ("sendmail", r"^(?:2\.\d+\.\d+ )?([0-9A-Za-z][\w-]{7,}) Message accepted for delivery"),
        # Haraka connection.js: "Message Queued (<transaction uuid>)".
        ("haraka", r"Message Queued \(([0-9A-Fa-f-]+(?:\.\d+)?)\)"),
        # Anything else that says where it put the message.
        ("generic", r"\bqueued as:? <?([\w.@-]*\d[\w.@-]*)>?"),
        ("generic", r"\bid=<?([\w.@-]*\d[\w.@-]*)>?"),
        ("generic", r"^(?:2\.\d+\.\d+ )?ok[:.]? ([\w.-]*\d[\w.-]*)$"),
    )
)
# Replies to a non-final BDAT chunk ("2.0.0 Ok: 64 bytes", Exim "4404 byte chunk") carry none.
_CHUNK_ONLY = re.compile(r"^(?:2\.\d+\.\d+ )?Ok:? \d+ bytes?$", re.I)


def _queue_match(text: str) -> tuple[str, str] | None:
    if _CHUNK_ONLY.match(text.strip()):
        return None
    lines = "\n".join(line.strip() for line in text.splitlines())
    for style, pattern in _QUEUE_ID_STYLES:
        match = pattern.search(lines)
        if match:
            return style, match.group(1)
    return None


def queue_id(text: str) -> str | None:
    """The queue id in the reply to the end of data ("queued as 4ABC123DEF" -> "4ABC123DEF")."""
    found = _queue_match(text)
    return found[1] if found else None


def queue_id_mta(text: str) -> str | None:
    """Which reply style gave the queue id: "postfix", "exim", "qmail", "exchange", ..."""
    found = _queue_match(text)
    return found[0] if found else None
