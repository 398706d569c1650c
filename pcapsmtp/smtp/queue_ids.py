"""The queue id a server hands back in its reply to the end of data, and which server's
style of reply gave it."""

from __future__ import annotations

import re

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
