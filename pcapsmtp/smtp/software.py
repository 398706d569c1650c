"""Which software (or provider) answers on the server side, from what it says about itself:
the 220 banner, the EHLO reply, and the style of its other replies. Also the EHLO reply parsed
(RFC 5321 section 4.1.1.1) and the traces of a firewall's SMTP inspection.

A guess is made only on strong evidence; a wrong name is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pcapsmtp.smtp.queue_ids import queue_id_mta


@dataclass(slots=True, frozen=True)
class SoftwareGuess:
    """The server software or mail provider, and what gave it away."""

    name: str
    version: str | None
    evidence: str
    """The line or text that gave it away, shortened."""


MASKED = "masked (SMTP inspection)"

# --- Firewall SMTP inspection (FIELD-NOTES: Cisco ASA/PIX "inspect esmtp") ---------------------
# The ASA replaces the banner's characters with asterisks except some "2" and "0" characters
# ("220 ****************************2*0**0*2***"); nmap-service-probes: "Cisco PIX sanitized
# smtpd" = ^220 [\*\d\ ]{2,300}. EHLO keywords it does not allow become X's ending in a letter
# that counts up: suricata-smtp-extract-url-schemes_input.pcap frame 10 ("XXXA", "XXXXXXXB",
# ..., "XI" for Exchange 2003's TURN, CHUNKING, ..., OK).
_MASKED_KEYWORD = re.compile(r"X+[A-Z]")


def is_masked_banner(banner: str) -> bool:
    """A greeting rewritten to asterisks (and a few digits) by a firewall's SMTP inspection."""
    chars = "".join(banner.split())
    if len(chars) < 4 or chars.count("*") * 2 < len(chars):
        return False
    return all(c in "*0123456789" for c in chars)


def masked_ehlo_keywords(ehlo_lines: list[str]) -> list[str]:
    """The EHLO keywords an SMTP inspection rewrote to X's ("XXXXXXXA", "XXXA"), in order."""
    if not any("X" in line for line in ehlo_lines[1:]):
        return []  # no keyword can be one (smtp-inspection asks this of every session)
    keywords = (_strip_code(line).split()[:1] for line in ehlo_lines[1:])
    return [kw[0] for kw in keywords if kw and _MASKED_KEYWORD.fullmatch(kw[0])]


# --- EHLO reply, RFC 5321 section 4.1.1.1 ---------------------------------------------------

_REPLY_CODE = re.compile(r"^\d{3}[ -]")


def _strip_code(line: str) -> str:
    """Tolerate lines handed over with their "250-" still on."""
    return _REPLY_CODE.sub("", line, count=1)


def _keyword_and_params(line: str) -> tuple[str, list[str]] | None:
    tokens = _strip_code(line).split()
    if not tokens:
        return None
    keyword, params = tokens[0], tokens[1:]
    if "=" in keyword:  # the pre-RFC 2554 form "AUTH=LOGIN PLAIN" (Outlook Express era)
        keyword, first = keyword.split("=", 1)
        params = [first, *params] if first else params
    return keyword.upper(), params


def _size(params: list[str]) -> int | None:
    # RFC 1870 section 4: no value, or 0, means no fixed maximum.
    if params and params[0].isascii() and params[0].isdigit() and int(params[0]) > 0:
        return int(params[0])
    return None


def parse_ehlo(ehlo_lines: list[str]) -> dict:
    """Domain, greeting, keywords in order, SIZE, AUTH mechanisms and the common flags."""
    first = _strip_code(ehlo_lines[0]) if ehlo_lines else ""
    domain, _, greeting = first.partition(" ") if first[:1].strip() else ("", "", first)
    extensions: list[str] = []
    auth: list[str] = []
    size = None
    for line in ehlo_lines[1:]:
        parsed = _keyword_and_params(line)
        if parsed is None:
            continue
        keyword, params = parsed
        if keyword not in extensions:
            extensions.append(keyword)
        if keyword == "SIZE" and size is None:
            size = _size(params)
        if keyword == "AUTH":
            auth += [m.upper() for m in params if m.upper() not in auth]
    return {
        "domain": domain or None,
        "greeting": greeting.strip() or None,
        "extensions": extensions,
        "size": size,
        "auth": auth,
        "pipelining": "PIPELINING" in extensions,  # RFC 2920
        "starttls": "STARTTLS" in extensions,  # RFC 3207
        "chunking": "CHUNKING" in extensions,  # RFC 3030
        "smtputf8": "SMTPUTF8" in extensions,  # RFC 6531
        "8bitmime": "8BITMIME" in extensions,  # RFC 6152
        "dsn": "DSN" in extensions,  # RFC 3461
        "enhancedstatuscodes": "ENHANCEDSTATUSCODES" in extensions,  # RFC 2034
    }


# --- Banners -----------------------------------------------------------------------------------
# (pattern, name): group 1, when there is one, is the version. Mostly nmap-service-probes
# (nmap/nmap) "match smtp" lines, and banners of the public captures.

_BANNERS = tuple(
    (re.compile(pattern, re.I), name)
    for pattern, name in (
        # "ESMTP Postfix (Ubuntu)", "ESMTP Postfix (Debian/GNU)": the parenthesis is the distro.
        (r"\bESMTP Postfix\b(?: \((\d[\w.-]*)\))?", "Postfix"),
        (r"\bESMTP Exim (\d[\w.]*)", "Exim"),  # "ESMTP Exim 4.94.2 Mon, 27 Mar 2023 ..."
        (r"\bE?SMTP Sendmail (?:AIX[\d.]+/)?(\d[^;/ ]*)", "Sendmail"),  # "8.14.4/8.14.4;"
        (r"\bESMTP \S+ - gsmtp\b", "Gmail"),  # "mx.google.com ESMTP s4si9696358qcc.63 - gsmtp"
        (r"\bYSmtp", "Yahoo"),  # "mta1125.mail.ir2.yahoo.com ESMTP YSmtpProxy service ready"
        (r"\bCommuniGate Pro(?: (\d[\w.-]*))?", "CommuniGate Pro"),
        (r"\bESMTP OpenSMTPD\b", "OpenSMTPD"),
        (r"\bESMTP Haraka[/ ](\d[\w.-]*)", "Haraka"),  # connection.js "ESMTP Haraka/3.0.3 ready"
        (r"\bhMailServer(?: (\d[\w.-]*))?", "hMailServer"),
        (r"\bMDaemon (\d[\w.-]*)", "MDaemon"),
        (r"\bKerio (?:Connect|MailServer) (\d[\w.-]*)", "Kerio Connect"),
        (r"\bIceWarp (\d[\w.]*)|\bMerak\b", "IceWarp"),
        (r"\bZimbra\b", "Zimbra"),
        (r"\bAxigen ESMTP\b", "Axigen"),
        (r"\bMailEnable Service, Version: (\d[\w.-]*)", "MailEnable"),
        (r"\bamavisd-new\b", "amavisd-new"),
        (r"\bESMTP qpsmtpd (\d\S*)", "qpsmtpd"),
        (r"\bSubEthaSMTP\b", "SubEthaSMTP"),  # zeek-smtp.pcap frame 66
        (r"\bE-MailRelay V(\d[\w.]*)", "E-MailRelay"),  # suricata-smtp-attachment-md5 frame 4
        (r"\bNemesis ESMTP\b|\bGMX Mailservices\b|\bESMTP WEB\.DE\b", "GMX/WEB.DE"),
        (r"^\S+ ESMTP \([0-9a-f]{32}\)$", "Barracuda"),  # "Barracuda Networks Spam Firewall"
        (r"\bAsyncOS\b", "Cisco Secure Email (IronPort)"),
        (r"\bInterScan\b|\bTrend Micro\b", "Trend Micro"),
        (r"\bSymantec Messaging Gateway\b", "Symantec/Broadcom Email Security"),
        # Exchange 2007 and later; Exchange Online says the same (told apart by host name).
        (r"\bMicrosoft ESMTP MAIL Service ready at\b", "Microsoft Exchange"),
        # IIS SMTP (Windows 2000/2003), which Exchange 2003 builds on: see _refine().
        (r"\bMicrosoft ESMTP MAIL Service, Version: (\d[\w.]*)", "Microsoft IIS SMTP"),
        (r"\bMicrosoft Exchange Internet Mail Service (\d[\w.]*)", "Microsoft Exchange"),
    )
)

# Host names of the big providers and the filtering services (the banner's or EHLO's domain).
_HOSTS = tuple(
    (re.compile(pattern, re.I), name)
    for pattern, name in (
        (r"\.olc\.protection\.outlook\.com$|\.hotmail\.com$", "Outlook.com"),
        (
            r"\.(?:mail\.)?protection\.outlook\.com$|\.outlook\.com$|\.office365\.com$",
            "Exchange Online",
        ),
        (r"(?:^|\.)google\.com$|(?:^|\.)gmail\.com$", "Gmail"),
        (r"\.yahoo\.com$|\.yahoodns\.net$", "Yahoo"),
        (r"\.aol\.com$", "AOL"),
        (r"\.icloud\.com$|\.me\.com$|\.mac\.com$", "iCloud"),
        (r"(?:^|\.)gmx\.(?:net|com|de)$|(?:^|\.)web\.de$", "GMX/WEB.DE"),
        (r"\.orange\.fr$|\.wanadoo\.fr$", "Orange"),
        (r"\.comcast\.net$", "Comcast"),
        (r"\.pphosted\.com$|\.ppe-hosted\.com$", "Proofpoint"),
        (r"\.mimecast\.com$", "Mimecast"),
        (r"\.barracudanetworks\.com$", "Barracuda"),
        (r"\.iphmx\.com$", "Cisco Secure Email (IronPort)"),
        (r"\.trendmicro\.(?:com|eu)$", "Trend Micro"),
        (r"\.messagelabs\.com$", "Symantec/Broadcom Email Security"),
        (r"\.sophos\.com$", "Sophos"),
    )
)

# EHLO keywords only one family of servers sends (captures: arkime-smtp-decrypted.pcap frame 7,
# zeek-smtp-multi-addr.pcap frame 7, suricata-smtp-file-data-01_input.pcap frame 8;
# zeek-smtp-bdat-pipeline-8bitmime.pcap frame 7 for Exim's PIPE_CONNECT, Exim 4.93+).
_EXCHANGE_KEYWORDS = ("X-EXPS", "XEXCH50", "X-ANONYMOUSTLS", "XRDST", "XSHADOW", "X-LINK2STATE")
_EXIM_KEYWORDS = ("PIPE_CONNECT", "X_PIPE_CONNECT")

# Texts in any reply that name who answers (see codes.meanings.PROVIDER_RULES for the sources).
_REPLY_TEXTS = tuple(
    (re.compile(pattern, re.I), name)
    for pattern, name in (
        # Outlook.com first: its block-list replies also name the EOP host that sent them.
        (r"\(A?S3\d{3}\)|\b(?:SC|DY)-00\d\b|\bhotmail\b|olc\.protection", "Outlook.com"),
        (r"protection\.outlook\.com|\bRESOLVER\.ADR\.", "Exchange Online"),
        (r"\bgsmtp\b", "Gmail"),
        (r"\[TSS?\d\d\]|yahooinc\.com|\bdirdel\b", "Yahoo"),
        (r"support\.apple\.com|\[CS\d\d\] Message rejected", "iCloud"),
        (r"\bNemesis ESMTP\b", "GMX/WEB.DE"),
        (r"\bOFR\d*_\d+\b", "Orange"),
        (r"\b(?:ES|BL)0\d{5}\b|comcast\.net", "Comcast"),
        (r"ipcheck\.proofpoint\.com", "Proofpoint"),
        (r"mimecast\.com", "Mimecast"),
        (r"Barracuda Reputation|barracudacentral", "Barracuda"),
        (r"sending MTA's poor reputation", "Cisco Secure Email (IronPort)"),
        (r"Trend Micro (?:RBL\+|Email Reputation)", "Trend Micro"),
        (r"^SMTP synchronization error", "Exim"),  # smtp_in.c; nmap-service-probes
    )
)

# queue_ids.queue_id_mta() styles that name the software.
_QUEUE_STYLES = {
    "postfix": "Postfix",
    "amavis": "Postfix",
    "exim": "Exim",
    "qmail": "qmail",
    "gmail": "Gmail",
    "exchange": "Microsoft Exchange",
    "sendmail": "Sendmail",
    "opensmtpd": "OpenSMTPD",
    "haraka": "Haraka",
    "ironport": "Cisco Secure Email (IronPort)",
}


def _short(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _from_banner(banner: str) -> SoftwareGuess | None:
    for line in banner.splitlines():
        for pattern, name in _BANNERS:
            match = pattern.search(line.strip())
            if match:
                version = next((g for g in match.groups() if g), None)
                return SoftwareGuess(name, version, f'banner "{_short(line)}"')
    return None


def _host_name(host: str) -> str | None:
    return next((name for pattern, name in _HOSTS if pattern.search(host.rstrip("."))), None)


def _from_host(host: str, where: str) -> SoftwareGuess | None:
    name = _host_name(host)
    return SoftwareGuess(name, None, f"{where} host name {host}") if name else None


def _banner_hosts(banner: str) -> list[str]:
    """The names before "ESMTP"/"SMTP": "opmta1mto02nd1 smtp.orange.fr ESMTP server ready"."""
    words = banner.split()
    end = next((i for i, w in enumerate(words) if w.upper() in ("ESMTP", "SMTP")), 1)
    return words[: max(end, 1)]


def _from_banner_host(banner: str) -> SoftwareGuess | None:
    return next(filter(None, (_from_host(h, "banner") for h in _banner_hosts(banner))), None)


def _from_ehlo(ehlo_lines: list[str]) -> SoftwareGuess | None:
    ehlo = parse_ehlo(ehlo_lines)
    greeting, domain = ehlo["greeting"] or "", ehlo["domain"] or ""
    # "mx.google.com at your service, [10.0.0.1]" (arkime-smtp-starttls.pcap frame 8)
    if "at your service" in greeting and _host_name(domain) == "Gmail":
        return SoftwareGuess("Gmail", None, f'EHLO "{_short(ehlo_lines[0])}"')
    for keyword in ehlo["extensions"]:
        if keyword in _EXCHANGE_KEYWORDS:
            return SoftwareGuess("Microsoft Exchange", None, f"EHLO keyword {keyword}")
        if keyword in _EXIM_KEYWORDS:
            return SoftwareGuess("Exim", None, f"EHLO keyword {keyword}")
    return None


def _from_replies(replies: list[str]) -> SoftwareGuess | None:
    for text in replies:
        style = queue_id_mta(text)
        if style in _QUEUE_STYLES:
            return SoftwareGuess(_QUEUE_STYLES[style], None, f'reply "{_short(text)}"')
    for text in replies:
        for pattern, name in _REPLY_TEXTS:
            if pattern.search(text):
                return SoftwareGuess(name, None, f'reply "{_short(text)}"')
    return None


def _refine(guess: SoftwareGuess, banner: str, ehlo_lines: list[str]) -> SoftwareGuess:
    """Combine the banner's software with what the host name and EHLO add."""
    online = _from_banner_host(banner)
    cloud = online is not None and online.name in ("Exchange Online", "Outlook.com")
    if guess.name == "Microsoft Exchange" and cloud:
        return SoftwareGuess(online.name, None, f"{guess.evidence}, {online.evidence}")
    if guess.name == "Microsoft IIS SMTP":
        ehlo = _from_ehlo(ehlo_lines)
        if ehlo is not None and ehlo.name == "Microsoft Exchange":
            evidence = f"{guess.evidence}, {ehlo.evidence}"
            return SoftwareGuess("Microsoft Exchange", guess.version, evidence)
    return guess


MAX_EHLO_REMEMBERED = 256
_EHLO_REMEMBERED: dict[tuple[str, ...], dict] = {}


def shared_ehlo(ehlo_lines: list[str]) -> dict:
    """``parse_ehlo`` of an EHLO reply, one dict for every session given the same reply (a
    server says the same in each): a session held open keeps about 1 KB less of its own.
    Its holders only read it (a session's ``extensions``). Remembered for up to
    MAX_EHLO_REMEMBERED replies of at most REMEMBERED_TEXT characters, started over when
    full."""
    key = tuple(ehlo_lines)
    found = _EHLO_REMEMBERED.get(key)
    if found is None:
        found = parse_ehlo(ehlo_lines)
        if sum(map(len, key)) <= REMEMBERED_TEXT:
            if len(_EHLO_REMEMBERED) >= MAX_EHLO_REMEMBERED:
                _EHLO_REMEMBERED.clear()
            _EHLO_REMEMBERED[key] = found
    return found


MAX_REMEMBERED = 1_024
REMEMBERED_TEXT = 2_048
"""``server_software`` remembers its answer for up to MAX_REMEMBERED inputs of at most
REMEMBERED_TEXT characters in all (under 3 MB however many sessions), and starts over when
full."""
_REMEMBERED: dict[tuple, SoftwareGuess | None] = {}


def server_software(
    banner: str | None, ehlo_lines: list[str], other_replies: list[str]
) -> SoftwareGuess | None:
    """The software (or provider) behind the server, or None when the evidence is weak.

    A function of its texts, remembered: the sessions with one server repeat the same banner
    and EHLO reply, and the 40-odd searches of a guess cost more than the rest of finishing
    a session. (A SoftwareGuess is frozen: sessions can share one.)"""
    if len(ehlo_lines) + len(other_replies) > 32:
        return _guess(banner, ehlo_lines, other_replies)
    key = (banner, *ehlo_lines, None, *other_replies)
    if key in _REMEMBERED:
        return _REMEMBERED[key]
    guess = _guess(banner, ehlo_lines, other_replies)
    if len(banner or "") + sum(map(len, ehlo_lines)) + sum(map(len, other_replies)) <= (
        REMEMBERED_TEXT
    ):
        if len(_REMEMBERED) >= MAX_REMEMBERED:
            _REMEMBERED.clear()
        _REMEMBERED[key] = guess
    return guess


def _guess(
    banner: str | None, ehlo_lines: list[str], other_replies: list[str]
) -> SoftwareGuess | None:
    banner = banner or ""
    if banner.strip() and is_masked_banner(banner):
        return SoftwareGuess(MASKED, None, f'banner "{_short(banner)}"')
    guess = _from_banner(banner)
    if guess is not None:
        return _refine(guess, banner, ehlo_lines)
    guess = (
        _from_banner_host(banner)
        or _from_ehlo(ehlo_lines)
        or (_from_host(parse_ehlo(ehlo_lines)["domain"] or "", "EHLO") if ehlo_lines else None)
        or _from_replies(([banner] if banner else []) + list(other_replies))
    )
    if guess is None and masked_ehlo_keywords(ehlo_lines):
        keywords = " ".join(masked_ehlo_keywords(ehlo_lines)[:3])
        return SoftwareGuess(MASKED, None, f"EHLO keywords rewritten to X's: {keywords}")
    return guess
