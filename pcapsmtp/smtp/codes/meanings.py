"""What a reply means in one line, as a mail admin reads it: the texts seen in real replies
of providers and MTAs (rules, each with the lookahead gate that lets a text skip it), then
the enhanced code's plain words, then the basic code's."""

from __future__ import annotations

import functools
import re

from pcapsmtp.smtp.codes.classes import _CLASS_WORDS, _basic_meaning, _is_negative, reply_class
from pcapsmtp.smtp.codes.enhanced import _enhanced_phrase, _qmail_enhanced
from pcapsmtp.smtp.codes.refusals import is_greylisting

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


_PROVIDER_ROWS = (
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

_GENERIC_ROWS = (
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


@functools.cache
def _provider_rules() -> tuple[_Rule, ...]:
    """PROVIDER_RULES, compiled at the first refusal a capture holds, not at start-up (91
    patterns with the generic ones: 6-7 ms of every run, most of which never read one)."""
    return _rules(*_PROVIDER_ROWS)


@functools.cache
def _generic_rules() -> tuple[_Rule, ...]:
    """GENERIC_RULES, compiled at first use (see _provider_rules)."""
    return _rules(*_GENERIC_ROWS)


_COMPILED_AT_FIRST_USE = {"PROVIDER_RULES": _provider_rules, "GENERIC_RULES": _generic_rules}


def __getattr__(name: str):
    """PROVIDER_RULES and GENERIC_RULES, the compiled rules (see _provider_rules)."""
    if name in _COMPILED_AT_FIRST_USE:
        return _COMPILED_AT_FIRST_USE[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def meaning(code: int, enhanced: str | None, text: str) -> str:
    """One plain-English line: provider knowledge, then the enhanced code, then the basic code."""
    if _is_negative(code):
        subject = _flat(code, text)
        known = _apply(_provider_rules(), subject)
        if known is None and is_greylisting(code, text):
            known = "greylisted: the server asks the sender to retry later"
        known = known or _apply(_generic_rules(), subject)
        if known:
            return known
        status = enhanced or _qmail_enhanced(text)
        phrase = _enhanced_phrase(status) if status else None
        if phrase:
            return f"{_CLASS_WORDS[reply_class(code)]}: {phrase} ({status})"
    return _basic_meaning(code)
