"""Reply classes, enhanced status codes, meanings, classifications and queue ids.

Every table row names its source: an RFC section, a provider's documentation, or a public
capture and frame (../shared/captures/public, read with tshark -Y smtp.response). Texts from
captures are the reply text after the three-digit code, lines joined with "\\n".
"""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapsmtp.smtp.codes import (
    enhanced_meaning,
    is_greylisting,
    is_intermediate,
    is_permanent,
    is_positive,
    is_rate_limited,
    is_size_rejection,
    is_transient,
    meaning,
    parse_enhanced,
    reply_class,
)
from pcapsmtp.smtp.codes import meanings as codes
from pcapsmtp.smtp.codes.enhanced import ENHANCED_CODES
from pcapsmtp.smtp.queue_ids import queue_id, queue_id_mta
from tests.captures import all_captures, capture_id
from tests.tshark import ask, fields, needs_tshark

# --- Reply classes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (220, "positive"),  # RFC 5321 4.2.1: 2yz Positive Completion
        (250, "positive"),
        (225, "positive"),  # arkime-wireshark-bdat.pcap frame 19 "225 OK": unknown, still 2yz
        (334, "intermediate"),  # RFC 4954: AUTH challenge, 3yz Positive Intermediate
        (354, "intermediate"),  # RFC 5321 4.2.1: 3yz
        (421, "transient"),  # RFC 5321 4.2.1: 4yz Transient Negative Completion
        (472, "transient"),  # suricata-smtp-errors_smtperr.pcap frame 137, CommuniGate Pro
        (550, "permanent"),  # RFC 5321 4.2.1: 5yz Permanent Negative Completion
        (599, "permanent"),
        (199, "invalid"),  # RFC 5321 4.2: the first digit is 2 to 5 (no 1yz in SMTP)
        (600, "invalid"),
        (0, "invalid"),
        (-250, "invalid"),
    ],
)
def test_reply_class(code, expected):
    assert reply_class(code) == expected


@pytest.mark.parametrize(
    ("code", "flags"),
    [
        # (positive, intermediate, transient, permanent), RFC 5321 4.2.1
        (250, (True, False, False, False)),
        (354, (False, True, False, False)),
        (451, (False, False, True, False)),
        (554, (False, False, False, True)),
        (700, (False, False, False, False)),
    ],
)
def test_class_predicates(code, flags):
    assert (is_positive(code), is_intermediate(code), is_transient(code), is_permanent(code)) == (
        flags
    )


# --- Enhanced status codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Postfix, RFC 3463 2 "class.subject.detail" at the start (RFC 2034 4)
        ("5.1.1 <x@example.com>: Recipient address rejected: User unknown", "5.1.1"),
        ("2.0.0 Ok: queued as 1D2BFE000094", "2.0.0"),  # arkime-smtp-data-250.pcap frame 25
        ("4.1.8 <admin@opn.opn>: Sender address rejected: Domain not found", "4.1.8"),
        # suricata-bug-5867-fp-drop-01_input.pcap frame 200
        ("2.1.5  9VU@vo85.com", "2.1.5"),  # suricata-issue-4220-01-ids_1flowB.pcap frame 16
        ("4.7.500 Server busy. Please try again later", "4.7.500"),  # 1*3digit detail
        ("5.7.26 Unauthenticated email", "5.7.26"),  # Gmail, RFC 7372
        ("5.5.4 Syntax: BDAT count [LAST]", "5.5.4"),  # zeek-smtp-bdat-cmd-invalid frame 17
        ("5.7.1: Relay access denied", "5.7.1"),  # a colon ends it as well as a space
        ("2.0.0", "2.0.0"),  # the code alone
        (" 2.0.0 Ok", "2.0.0"),  # an extra space after the reply code
        ("5.1", None),  # RFC 3463 2: three parts
        ("512.1.1 x", None),  # class is one digit
        ("3.0.0 go ahead", None),  # class is 2, 4 or 5
        ("5.7.1000 x", None),  # detail is at most three digits
        ("5.1.1.1 x", None),  # an IP address, not a status code
        ("4.4.4.4 blocked", None),
        ("5.1.1x", None),
        ("5.\u0661.1 x", None),  # RFC 3463 digits are ASCII (an Arabic-Indic one here)
        ("Ok: queued as 555A012C342", None),  # arkime-smtp-originating.pcap frame 19
        ("ok, go ahead (#2.0.0)", None),  # qmail puts it last: suricata-smtp-long-DATA-line 13
        ("", None),
    ],
)
def test_parse_enhanced(text, expected):
    assert parse_enhanced(text) == expected


@pytest.mark.parametrize(
    ("enhanced", "expected"),
    [
        ("5.1.1", "Bad destination mailbox address"),  # IANA registry, RFC 3463 3.2
        ("4.2.2", "Mailbox full"),  # RFC 3463 3.3
        ("5.3.4", "Message too big for system"),  # RFC 3463 3.4
        ("4.4.7", "Delivery time expired"),  # RFC 3463 3.5
        ("5.5.6", "Authentication Exchange line is too long"),  # RFC 4954
        ("5.7.8", "Authentication credentials invalid"),  # RFC 4954
        ("5.7.26", "Multiple authentication checks failed"),  # RFC 7372
        ("5.7.27", "Sender address has null MX"),  # RFC 7505
        ("5.1.10", "Recipient address has null MX"),  # RFC 7505
        ("5.7.29", "ARC validation failure"),  # RFC 8617
        ("5.7.30", "REQUIRETLS support required"),  # RFC 8689
        ("4.7.28", "Mail flood detected"),  # IANA registry
        ("2.6.0", "Other or undefined media error"),  # RFC 3463 3.7
        ("2.0.0", "Other undefined Status"),  # RFC 3463 3.1
        # Not registered: fall back to the subject (IANA Subject Sub-Codes)
        ("5.7.606", "Security or Policy Status"),  # Microsoft's banned-IP range
        ("4.7.500", "Security or Policy Status"),  # Microsoft's throttling range
        ("5.1.99", "Addressing Status"),
        ("5.9.1", None),  # no subject 9
        ("3.1.1", None),  # no class 3
        ("5.1", None),
        ("nonsense", None),
        ("5.\u00b2.1", None),  # "²" is a digit to str.isdigit(), not to RFC 3463
    ],
)
def test_enhanced_meaning(enhanced, expected):
    assert enhanced_meaning(enhanced) == expected


def test_every_registered_code_is_known():
    # IANA "Enumerated Status Codes" (updated 2024-12-06), code numbers only.
    registered = (
        ["X.0.0"]
        + [f"X.1.{d}" for d in range(11)]
        + [f"X.2.{d}" for d in range(5)]
        + [f"X.3.{d}" for d in range(7)]
        + [f"X.4.{d}" for d in range(8)]
        + [f"X.5.{d}" for d in range(7)]
        + [f"X.6.{d}" for d in range(11)]
        + [f"X.7.{d}" for d in range(31)]
    )
    assert sorted(ENHANCED_CODES) == sorted(registered)


# --- Meaning -----------------------------------------------------------------------------------

# Exact one-liners for the provider texts the diagnosis relies on.
MEANINGS_EXACT = [
    # Gmail, Google Workspace "Gmail SMTP errors and codes" (support.google.com/a/answer/3726730)
    (
        550,
        "5.7.26 Unauthenticated email from example.com is not accepted due to\n"
        "5.7.26 domain's DMARC policy. Please contact the administrator of example.com\n"
        "5.7.26 domain if this was a legitimate mail. d2e1a72fcca58-7b-si.123 - gsmtp",
        "rejected by Gmail: the message fails DMARC/SPF/DKIM authentication",
    ),
    (
        550,
        "5.7.26 This email has been blocked because the sender is unauthenticated.\n"
        "5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM. - gsmtp",
        "rejected by Gmail: the message fails DMARC/SPF/DKIM authentication",
    ),
    # Exchange Online NDR 5.7.606-649; pastebin EH1TUb0X (dkarausch-eu.mail.protection...)
    (
        550,
        "5.7.606 Access denied, banned sending IP [185.234.72.45]. To request removal from this"
        " list please visit https://sender.office.com/ and follow the directions. For more"
        " information please go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430)",
        "the sending IP is on Microsoft's block list (delist at sender.office.com)",
    ),
    # postgrey's reply (find_string corpus: Postfix logs quoting it)
    (
        450,
        "4.2.0 <schaefer@alphanet.ch>: Recipient address rejected: Greylisted, see"
        " http://postgrey.schweikert.ch/help/alphanet.ch.html",
        "greylisted: the server asks the sender to retry later",
    ),
    # milter-greylist's default reply (milter-greylist source, smfi_setreply)
    (
        451,
        "4.7.1 Greylisting in action, please come back later",
        "greylisted: the server asks the sender to retry later",
    ),
    # cPanel Exim greylisting (pastebin 6G7q8H39)
    (
        451,
        "216.194.173.80 is not yet authorized to deliver mail from\n"
        "<chris@gocleanse.net> to <docs@inmotionhosting.com>. Please try later.",
        "greylisted: the server asks the sender to retry later",
    ),
]


@pytest.mark.parametrize(("code", "text", "expected"), MEANINGS_EXACT)
def test_meaning_exact(code, text, expected):
    assert meaning(code, parse_enhanced(text), text) == expected


# Key words the one line must contain.
MEANINGS = [
    # Microsoft
    (
        550,  # learn.microsoft.com NDR 5.7.700-749; pastebin 98tNBPeg
        "5.7.705 Access denied, tenant has exceeded threshold. For more information please go"
        " to http://go.microsoft.com/fwlink/?LinkId=524931 AS831",
        "tenant",
    ),
    (
        550,  # NDR 5.7.708; Exchange Online bounce quoted in public code
        "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more"
        " information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(8561)",
        "5.7.708",
    ),
    (
        451,  # gitlab.com lightmeter/controlcenter #319, NDR 4.7.500-699
        "4.7.500 Server busy. Please try again later from [134.119.1.64]. (S77719)"
        " [FR2DEU01FT008.eop-deu01.prod.protection.outlook.com]",
        "throttled by Microsoft",
    ),
    (
        550,  # pastebin ExQUnA6B, Outlook.com block list
        "5.7.1 Unfortunately, messages from [88.198.83.90] weren't sent. Please contact your"
        " Internet service provider since part of their network is on our block list (S3150)."
        " You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
        "Outlook.com's block list",
    ),
    (
        550,  # pastebin dDQSj00E, older Outlook.com/Hotmail
        "SC-001 (SNT004-MC10F17) Unfortunately, messages from 88.198.217.110 weren't sent.",
        "Outlook.com's block list",
    ),
    (
        550,  # Exchange recipient lookup (5.1.10 here is not IANA's null MX)
        "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "does not exist",
    ),
    (
        550,  # pastebin 32NXKByX, Directory-Based Edge Blocking
        "5.4.1 [trinik.lemon@dhs.ga.gov]: Recipient address rejected: Access denied"
        " [CY1GCC01FT007.eop-gcc01.prod.protection.outlook.com]",
        "edge blocking",
    ),
    (452, "4.3.1 Insufficient system resources", "back pressure"),  # Cisco ESA doc 117875
    # Gmail (Google Workspace "Gmail SMTP errors and codes", 2026-02-12)
    (
        421,
        "4.7.26 This email has been rate limited because it is unauthenticated. - gsmtp",
        "unauthenticated",
    ),
    (
        421,
        "4.7.28 Gmail has detected an unusual rate of unsolicited email originating from your"
        " IP address 192.0.2.1. To protect our users from spam, email sent from your IP address"
        " has been temporarily rate limited. a1si1.2 - gsmtp",
        "unusual rate",
    ),
    (
        421,  # gist 8530279, before 4.7.28 existed
        "4.7.0 [209.85.214.171 15] Our system has detected an unusual rate of\n"
        "4.7.0 unsolicited mail originating from your IP address. f6si15562665obr.98 - gsmtp",
        "unusual rate",
    ),
    (
        550,  # pastebin Rj7iXShc
        "5.7.1 [74.208.41.59] The IP address sending this message does not have a PTR\n"
        "5.7.1 record setup. As a policy, Gmail does not accept messages from IPs\n"
        "5.7.1 with missing PTR records. p1si12051002jaj.114 - gsmtp",
        "PTR",
    ),
    (
        550,  # pastebin BzGjZquj
        "5.7.1 [2a01:4f8:212:27c8::2] Our system has detected that this message does\n"
        "5.7.1 not meet IPv6 sending guidelines regarding PTR records and\n"
        "5.7.1 authentication. v1si55415385wja.21 - gsmtp",
        "IPv6",
    ),
    (550, "5.7.30 This message was blocked because it didn't pass DKIM - gsmtp", "DKIM"),
    (550, "5.7.27 This message was blocked because it didn't pass SPF - gsmtp", "SPF"),
    (421, "4.7.0 TLS required for RCPT domain, closing connection. x - gsmtp", "TLS"),
    (
        550,  # Google's example of an admin rule
        "5.7.1 This message violates example.com email policy. - gcdp <sessionid> - gsmtp",
        "gcdp",
    ),
    (534, "5.7.9 Application-specific password required. x - gsmtp", "app password"),
    (552, "5.2.2 The recipient's inbox is out of storage space. x - gsmtp", "mailbox is full"),
    # Yahoo, senders.yahooinc.com/smtp-error-codes and cPanel's exim_mainlog example
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or"
        " user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        "TSS04",
    ),
    (
        553,  # suped.com quoting Email Geeks
        "5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will"
        " NOT succeed. See https://postmaster.yahooinc.com/error-codes",
        "will not succeed",
    ),
    (
        554,  # Yahoo's own sample failure notice
        "delivery error: dd This user doesn't have a yahoo.com account (testing123@yahoo.com)"
        " [-5] - mta123.mail.mud.yahoo.com",
        "does not exist",
    ),
    # iCloud, smtp.codes/icloud
    (
        550,
        "5.7.1 [CS01] Message rejected due to local policy. Please visit"
        " https://support.apple.com/en-us/HT204137",
        "iCloud",
    ),
    # GMX (pastebin D7Xa4RcU, Postfix log of a 554 greeting)
    (
        554,
        "gmx.net (mxgmx116) Nemesis ESMTP Service not available\nNo SMTP service\n"
        "Bad DNS PTR resource record.\nFor explanation visit"
        " http://postmaster.gmx.com/en/error-messages?ip=89.163.209.190&c=rdns",
        "PTR",
    ),
    # Orange (bentonow.com/smtp-errors/orange, postmastery.com)
    (
        421,
        "mwinf5c12 ME Trop de connexions, veuillez verifier votre configuration. Too many"
        " connections, slow down. OFR005_104 [104]",
        "Orange limits connections",
    ),
    (421, "mwinf5d34 ME Service refuse. Veuillez essayer plus tard. OFR_999 [999]", "OFR_999"),
    # Comcast, postmaster.comcast.net/mail-error-codes
    (
        554,
        "resimta-po-25v.sys.comcast.net comcast 192.0.2.1 found on one or more RBLs"
        " (BL000001). Refer to http://postmaster.comcast.net/smtp-error-codes.php#BL000001",
        "BL000001",
    ),
    (
        554,  # pastebin 6TeyBieB
        "imta28.emeryville.ca.mail.comcast.net comcast 184.107.157.210 Comcast requires that all"
        " mail servers must have a PTR record with a valid Reverse DNS entry.",
        "PTR",
    ),
    # AOL, arkime-smtp-data-521.pcap frame 33
    (
        521,
        "5.2.1 MUST COMPLETE IMAGE PUZZLE BEFORE SENDING. PLEASE GOTO"
        " http://challenge.aol.com/spam.html",
        "CAPTCHA",
    ),
    # Filtering services
    (
        554,  # luxsci.com, nmap-service-probes
        "Service unavailable; Client host [server1.mail.com] blocked using Barracuda"
        " Reputation; http://bbl.barracudacentral.com/q.cgi?ip=192.168.1.1",
        "Barracuda",
    ),
    (
        554,  # suped.com: "554 5.7.0 Blocked" with Proofpoint's lookup link
        "5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1",
        "ipcheck.proofpoint.com",
    ),
    (
        451,  # dwlistore.dwli.org quoting a Mimecast RCPT reply
        "Internal resource is temporarily unavailable -\n"
        "https://community.mimecast.com/docs/DOC-1369#451\n[Aj3QXapeMpqZYaeFwWhjzw.us32]",
        "greylisted by Mimecast",
    ),
    (
        550,  # Mimecast SMTP Error Codes
        "Administrative prohibition - envelope blocked -"
        " https://community.mimecast.com/docs/DOC-1369#550",
        "Mimecast",
    ),
    (
        554,  # nmap-service-probes, IronPort HAT reject
        "Your access to this mail system has been rejected due to the sending MTA's poor"
        " reputation. If you believe that this failure is in error, please contact the intended"
        " recipient via alternate means.",
        "Cisco",
    ),
    (
        550,  # nmap-service-probes
        "Service unavailable; Client host [192.0.2.1] blocked using Trend Micro RBL+.Please see"
        " http://www.mail-abuse.com/cgi-bin/lookup?ip_address=192.0.2.1",
        "Trend Micro",
    ),
    (
        554,  # Postfix default_rbl_reply (mail_params.h) with Spamhaus
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org;"
        " https://www.spamhaus.org/query/ip/192.0.2.1",
        "Spamhaus",
    ),
    # MTA defaults
    (
        554,  # Postfix default_rbl_reply, smtpd_check.ref
        "5.7.1 Service unavailable; Client host [127.0.0.2] blocked using dnsbltest.porcupine.org",
        "dnsbltest.porcupine.org",
    ),
    (550, "rejected because 192.0.2.1 is in a black list at bl.example.net", "bl.example.net"),
    (554, "5.7.1 <user@example.com>: Relay access denied", "relaying denied"),  # Postfix
    (
        553,  # qmail-smtpd
        "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
        "relaying denied",
    ),
    (
        450,  # Postfix smtpd_check.c
        "4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
        "PTR",
    ),
    (
        450,  # suricata-bug-5867-fp-drop-01_input.pcap frame 200
        "4.1.8 <admin@opn.opn>: Sender address rejected: Domain not found",
        "sender's domain",
    ),
    (
        553,  # suricata-smtp-data-rejected_10.7.29.101_49898-178.63.41.150_25.pcap frame 10
        "5.1.8 <splotchiestzg0@gezydb01.apis.dhl.com>... Domain of sender address"
        " splotchiestzg0@gezydb01.apis.dhl.com does not exist",
        "sender's domain",
    ),
    (
        553,  # arkime-smtp-rcpt-553.pcap frame 13
        "5.7.1 <12345678@aol.com>: Sender address rejected: not logged in",
        "authenticate",
    ),
    (554, "SMTP synchronization error", "talked before"),  # Exim smtp_in.c
    (
        550,  # Postfix smtpd_addr_valid.ref
        "5.1.1 <foo@example.com>: Recipient address rejected: User unknown in local recipient"
        " table",
        "does not exist",
    ),
    (550, "Unrouteable address", "does not exist"),  # Exim route.c
    (
        554,  # suricata-smtp-data-rejected_*.pcap frame 195
        "5.7.1 Message contains virus: rejected.",
        "virus",
    ),
    (
        421,  # Exim daemon.c
        "Too many concurrent SMTP connections from this IP address; please try again later.",
        "too many connections",
    ),
    (
        421,  # Postfix smtpd.c
        "4.7.0 mail.example.com Error: too many connections from 192.0.2.1",
        "too many connections",
    ),
    (452, "4.5.3 Error: too many recipients", "too many recipients"),  # Postfix smtpd.c
    (552, "5.3.4 Message size exceeds fixed limit", "larger"),  # Postfix smtpd_check.c
    (552, "Message size exceeds maximum permitted", "larger"),  # Exim receive.c
    (
        552,  # qmail-smtpd
        "sorry, that message size exceeds my databytes limit (#5.3.4)",
        "larger",
    ),
    (452, "4.3.1 Insufficient system storage", "disk"),  # Postfix smtpd_check.c
    (
        421,  # arkime-smtp-data-250.pcap frame 27 (AOL's Postfix)
        "4.4.2 mtaout-ma02.r1000.mx.aol.com Error: timeout exceeded",
        "timeout",
    ),
    (451, "4.7.0 Timeout waiting for client input", "timeout"),  # zeek-smtp-multi-addr frame 18
    (530, "5.7.0 Must issue a STARTTLS command first", "STARTTLS"),  # RFC 3207 example
    (535, "5.7.8 Authentication credentials invalid", "authentication failed"),  # RFC 4954
    # Enhanced codes, then basic codes
    (503, "5.5.1 Error: nested MAIL command", "(5.5.1)"),  # suricata-ruletype-firewall-132 12
    (503, "5.5.1 Error: need MAIL command", "permanent failure"),  # ...firewall-133 frame 10
    (521, "5.5.4 Syntax: BDAT count [LAST]", "invalid command arguments"),  # zeek bdat frame 17
    (451, "qq temporary problem (#4.3.0)", "temporary failure"),  # qmail: code at the end
    (451, "qq temporary problem (#4.3.0)", "(4.3.0)"),
    (501, "5.0.0 HELO requires domain address", "syntax error in parameters"),  # nospaces 16
    (503, "AUTH command used when not advertised", "bad sequence"),  # arkime-socks5 frame 19
    (500, "unrecognized command", "command unrecognized"),  # zeek-smtp-mail-transactions 31
    (472, "unusualz@prg-dc.dhl.com DNS A-record is empty", "temporary failure"),  # smtperr 137
    (556, "5.1.10 Recipient address has null MX", "null MX"),  # RFC 7505 3, RFC 7504
    (550, "5.7.29 ARC validation failure", "permanent failure: ARC validation failure (5.7.29)"),
    (550, "5.6.7 Non-ASCII addresses not permitted", "non-ASCII addresses"),  # RFC 6531
    (521, "mail.example.com does not accept mail", "does not accept mail"),  # RFC 7504 3
    (250, "2.0.0 Ok: queued as BCB022014FB060", "okay, completed"),  # suricata-smtp-pipelining 13
    (354, 'Enter mail, end with "." on a line by itself', "start mail input"),  # nospaces 16
    (220, "mail.example.com ESMTP Postfix", "service ready"),
    (225, "OK", "positive completion"),  # arkime-wireshark-bdat.pcap frame 19
    (999, "what", "not a valid SMTP reply code"),
]


@pytest.mark.parametrize(("code", "text", "expected"), MEANINGS)
def test_meaning(code, text, expected):
    assert expected in meaning(code, parse_enhanced(text), text)


@given(st.integers(min_value=-1000, max_value=1000), st.text(max_size=300))
def test_meaning_never_empty_never_raises(code, text):
    line = meaning(code, parse_enhanced(text), text)
    assert line and "\n" not in line


# --- Classifications ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        # postgrey (Postfix logs quoting it)
        (450, "4.2.0 <a@b.example>: Recipient address rejected: Greylisted, see http://x", True),
        (451, "4.7.1 Greylisting in action, please come back in 00:02:00", True),  # milter-gr.
        (451, "192.0.2.1 is not yet authorized to deliver mail from\n<a@b> to <c@d>.", True),
        (
            451,
            "Internal resource temporarily unavailable - https://community.mimecast.com/docs/"
            "DOC-1369#451",
            True,
        ),  # Mimecast: its greylisting
        (450, "4.3.2 Service currently unavailable", True),  # Postfix postscreen_state.c
        (550, "5.7.1 Greylisted", False),  # a 5xx is never greylisting
        # Not greylisting: rate limits and temporary errors
        (421, "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred", False),
        (451, "4.3.0 Mail server temporarily rejected message. - gsmtp", False),
        (421, "4.4.2 mtaout-ma02.r1000.mx.aol.com Error: timeout exceeded", False),
    ],
)
def test_is_greylisting(code, text, expected):
    assert is_greylisting(code, text) is expected


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (421, "4.7.0 mail.example.com Error: too many connections from 192.0.2.1", True),
        (421, "Too many concurrent SMTP connections; please try again later.", True),  # Exim
        (421, "4.3.2 Connection rate limit exceeded.", True),  # Sendmail (nmap-service-probes)
        (
            421,
            "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected"
            " volume or user complaints",
            True,
        ),  # Yahoo
        (421, "4.7.28 Gmail has detected an unusual rate of email. - gsmtp", True),  # Google
        (
            450,
            "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents"
            " additional messages from being delivered. - gsmtp",
            True,
        ),  # Google
        (451, "4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)", True),
        (
            451,
            "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP"
            " reputation.",
            True,
        ),  # Exchange Online 4.7.500-699
        (421, "4.4.5 Server busy, try again later. - gsmtp", True),  # Google
        (421, "mwinf5c12 ME Trop de connexions ... OFR005_104 [104]", True),  # Orange
        (421, "4.7.0 Try again later, closing connection. (EHLO) - gsmtp", True),  # Google
        (421, "4.7.1 Messages to x@icloud.com deferred due to excessive volume.", True),  # iCloud
        # Not rate limiting
        (451, "4.7.1 Greylisting in action, please come back later", False),  # greylisting
        (421, "4.3.0 Temporary System Problem. Try again later. - gsmtp", False),  # 4.3.x
        (451, "Temporary local problem - please try later", False),  # Exim smtp_in.c
        (452, "4.5.3 Error: too many recipients", False),  # per message, not a rate
        (550, "5.4.5 Daily user sending limit exceeded. - gsmtp", False),  # a 5xx
        (250, "2.0.0 Ok: queued as ABC", False),
    ],
)
def test_is_rate_limited(code, text, expected):
    assert is_rate_limited(code, parse_enhanced(text), text) is expected


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (552, "5.3.4 Message size exceeds fixed limit", True),  # Postfix smtpd_check.c
        (552, "Message size exceeds maximum permitted", True),  # Exim receive.c
        (552, "5.2.3 Message size exceeds maximum value", True),  # X.2.3, RFC 3463
        (552, "5.3.4 Your message exceeded Google's message size limits. - gsmtp", True),
        (552, "sorry, that message size exceeds my databytes limit (#5.3.4)", True),  # qmail
        (552, "Requested mail action aborted: exceeded storage allocation", True),  # RFC 1870 6.1
        (554, "5.3.4 Message too big for system", True),  # IANA X.3.4 sample text
        (552, "5.7.16 Message is too big for the specified priority", True),  # RFC 6710
        (452, "4.3.4 Message size exceeds fixed limit", True),  # temporary, still size
        # Not size
        (552, "5.2.2 The recipient's inbox is out of storage space. - gsmtp", False),  # quota
        (452, "4.3.1 Insufficient system storage", False),  # server disk
        (
            552,
            "5.7.0 This message was blocked because its content presents a potential security"
            " issue. - gsmtp",
            False,
        ),
        (250, "2.0.0 Ok: queued as ABC", False),
    ],
)
def test_is_size_rejection(code, text, expected):
    assert is_size_rejection(code, parse_enhanced(text), text) is expected


# --- Queue ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "mta"),
    [
        # Postfix
        ("2.0.0 Ok: queued as 1D2BFE000094", "1D2BFE000094", "postfix"),  # arkime-data-250 25
        ("Ok: queued as 555A012C342", "555A012C342", "postfix"),  # arkime-originating 19
        ("2.0.0 Ok: 11 bytes queued as 9FE18201AAA610", "9FE18201AAA610", "postfix"),
        # suricata-smtp-rset_input.pcap frame 19 (BDAT LAST)
        ("2.0.0 Ok: queued as 4XyQ2k6R0Vz9sLm", "4XyQ2k6R0Vz9sLm", "postfix"),  # long ids
        ("ok: queued as 12345", "12345", "generic"),  # suricata-detect-email-received frame 60
        ("2.0.0 Ok: 64 bytes", None, None),  # non-final BDAT chunk, suricata bdat frame 14
        # amavisd-new in front of Postfix (pastebin Y0MHx0aT)
        (
            "2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as BEA13425049",
            "BEA13425049",
            "amavis",
        ),
        # Sendmail
        ("2.0.0 tA6IZTQc010322 Message accepted for delivery", "tA6IZTQc010322", "sendmail"),
        # arkime-smtp-moloch-bof.pcap frame 24
        ("2.0.0 x7ULAbcd012345 Message accepted for delivery", "x7ULAbcd012345", "sendmail"),
        # Exim
        ("OK id=1Mugho-0003Dg-Un", "1Mugho-0003Dg-Un", "exim"),  # zeek-smtp.pcap frame 52
        (
            " 4404 byte chunk, total 4404\nOK id=1lHkUh-008hPw-NY",  # suricata-bug-7126 14
            "1lHkUh-008hPw-NY",
            "exim",
        ),
        ("OK id=10HmaX-000000005vi-0000", "10HmaX-000000005vi-0000", "exim"),  # Exim 4.97+
        # qmail: the qp number (pid of qmail-queue, logged by qmail-send)
        ("ok 1184401929 qp 26211", "26211", "qmail"),  # suricata-smtp-long-DATA-line frame 41
        ("ok 1182675387 qp 77793", "77793", "qmail"),  # suricata-mime-quoted-printable 71
        # Exchange / Exchange Online: the InternalId
        (
            "2.6.0 <964329.815327318-sendEmail@intra-mx2> [InternalId=3835405795330, Hostname="
            "PCIAT-MX.shewa.intradef.gouv.fr] 17802 bytes in 0.102, 170,277 KB/sec Queued mail"
            " for delivery",  # arkime-smtp-decrypted.pcap frame 33
            "3835405795330",
            "exchange",
        ),
        (
            "2.6.0 <201512082130.tB8LU0vs014629@gras-os-desk.cern.ch> [InternalId=97779625]"
            " Queued mail for delivery",  # zeek-smtp-multi-addr.pcap frame 16
            "97779625",
            "exchange",
        ),
        # Exchange 2003: only the Message-ID (suricata-smtp-file-data-01_input.pcap frame 90)
        ("2.6.0 <FESFSEF> Queued mail for delivery", "<FESFSEF>", "exchange"),
        # Gmail (pastebin Y0MHx0aT and the brief's example)
        (
            "2.0.0 OK 1452005382 o123si5764107wmd.53 - gsmtp",
            "o123si5764107wmd.53",
            "gmail",
        ),
        ("2.0.0 OK  1566213545 c10si1234567wrp.123 - gsmtp", "c10si1234567wrp.123", "gmail"),
        # OpenSMTPD smtp_session.c
        ("2.0.0 4fbc3d2a Message accepted for delivery", "4fbc3d2a", "opensmtpd"),
        # Haraka connection.js
        (
            "Message Queued (5F2C8D3A-3D2B-4B1C-9E4E-1B2C3D4E5F60.1)",
            "5F2C8D3A-3D2B-4B1C-9E4E-1B2C3D4E5F60.1",
            "haraka",
        ),
        # Cisco Secure Email (IronPort): Amazon SES delivery notifications quote it
        ("ok:  Message 64111812 accepted", "64111812", "ironport"),
        # Generic forms
        ("2.0.0 Message queued as 0A1B2C3D", "0A1B2C3D", "generic"),
        ("OK id=abc123", "abc123", "generic"),
        ("Ok. 4F4A2C3B.000012AB", "4F4A2C3B.000012AB", "generic"),
        # No id at all
        ("ok dirdel", None, None),  # Yahoo, suricata-bug-1045 frame 14
        ("OK", None, None),  # suricata-mime-dec-* frame 14
        ("OK: message accepted", None, None),  # zeek-mime-header-size-limit frame 36
        ("+OK message queued for delivery.", None, None),  # suricata-smtp-url-base64 51
        ("queued", None, None),  # suricata-smtp-pipelined-rset-data-replies frame 12
        ("Mail accepted", None, None),  # ndpi-smtp.pcap frame 89
        ("", None, None),
    ],
)
def test_queue_id(text, expected, mta):
    assert queue_id(text) == expected
    assert queue_id_mta(text) == mta


@given(st.text(max_size=300))
def test_text_functions_never_raise(text):
    parse_enhanced(text)
    enhanced_meaning(text)
    queue_id(text)
    is_greylisting(451, text)
    is_rate_limited(421, parse_enhanced(text), text)
    is_size_rejection(552, parse_enhanced(text), text)


# --- Every reply of the public captures ---------------------------------------------------------

_REPLY_LINE = re.compile(r"^(\d{3})([ -])(.*)$")
# Ports the public captures use for SMTP besides 25/587 (see their SOURCES.md).
SMTP_ON_OTHER_PORTS = (
    "-d",
    "tcp.port==2525,smtp",
    "-d",
    "tcp.port==1224,smtp",
    "-d",
    "tcp.port==225,smtp",
)
REPLY_FIELDS = ["tcp.stream", "tcp.srcport", "smtp.response.code", "tcp.payload"]
ask(REPLY_FIELDS, "tcp.len > 0", SMTP_ON_OTHER_PORTS)


@functools.cache
def server_replies(path) -> dict[int, list[tuple[int, str]]]:
    """Per tcp.stream, the server's replies as (code, text): the bytes of the side that sent
    an SMTP response, cut into lines and grouped at the "ddd " last line (RFC 5321 4.2.1)."""
    rows = fields(path, REPLY_FIELDS, "tcp.len > 0", SMTP_ON_OTHER_PORTS)
    server_port = {row[0]: row[1] for row in rows if row[2]}
    data: dict[int, bytes] = {}
    for stream, port, _, payload in rows:
        if server_port.get(stream) == port:
            data[int(stream)] = data.get(int(stream), b"") + bytes.fromhex(payload)
    replies: dict[int, list[tuple[int, str]]] = {}
    for stream, raw in data.items():
        lines: list[str] = []
        for line in raw.decode("latin-1").split("\n"):  # some servers end lines with LF
            match = _REPLY_LINE.match(line.rstrip("\r"))
            if not match:
                continue
            lines.append(match.group(3))
            if match.group(2) == " ":
                replies.setdefault(stream, []).append((int(match.group(1)), "\n".join(lines)))
                lines = []
    return replies


SMTP_CAPTURES = [p for p in all_captures() if "smtp" in p.name or "emotet" in p.name]


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", SMTP_CAPTURES, ids=capture_id)
def test_every_captured_reply(path):
    """Real replies: one line of meaning each, an enhanced code only where the text starts
    with it, queue ids only on positive replies' text that carries one."""
    for replies in server_replies(path).values():
        for code, text in replies:
            enhanced = parse_enhanced(text)
            line = meaning(code, enhanced, text)
            assert line and "\n" not in line
            assert enhanced is None or text.lstrip().startswith(enhanced)
            assert not (is_greylisting(code, text) and is_permanent(code))
            found = queue_id(text)
            assert found is None or found in text


# --- Rule gates: meaning() skips a rule whose lookahead cannot match -------------------------


def _plain_apply(rules, subject):
    """codes._apply without gates: every rule's pattern searched in order."""
    for pattern, meaning_text, _ in rules:
        match = pattern.search(subject)
        if match:
            groups = [g for g in match.groups() if g]
            return meaning_text.format(*groups) if groups else meaning_text
    return None


def _assert_gated_as_plain(code, text):
    subject = codes._flat(code, text)
    for rules in (codes.PROVIDER_RULES, codes.GENERIC_RULES):
        assert codes._apply(rules, subject) == _plain_apply(rules, subject)


def test_gmail_and_yahoo_rules_have_gates():
    gated = [rule for rule in codes.PROVIDER_RULES if rule[2] is not None]
    assert {gate.pattern for _, _, gate in gated} == {r"\b(?:gsmtp|gcdp)\b", "yahoo"}
    assert len(gated) == sum(codes._GMAIL in p.pattern for p, _, _ in codes.PROVIDER_RULES) + 1


@pytest.mark.parametrize(
    ("pattern", "gate"),
    [
        (r"(?=.*x)a", "x"),
        (r"(?=.*\b(?:x|y)\b)a|(?=.*\b(?:x|y)\b)^b(c|d)", r"\b(?:x|y)\b"),
        (r"(?=.*x)a|b", None),  # "b" alone can match without x
        (r"a|(?=.*x)b", None),
        (r"(?=.*x)a|(?=.*y)b", None),  # two different gates
        (r"(?=.*x)a[|]b", "x"),  # "|" in a class does not split
        (r"(?=.*x)a\|b", "x"),  # nor an escaped one
        (r"(?=x)a", None),  # a lookahead at the start position only
        (r"(?=.*x", None),  # unbalanced: no gate
        (r"plain", None),
    ],
)
def test_lookahead_gate(pattern, gate):
    assert codes._lookahead_gate(pattern) == gate


@pytest.mark.parametrize(("code", "text", "expected"), MEANINGS)
def test_gated_rules_as_plain_on_known_texts(code, text, expected):
    _assert_gated_as_plain(code, text)


_RULE_WORDS = [
    "gsmtp",
    "- gsmtp",
    "gcdp",
    "xgsmtp",
    "yahoo",
    "PH01",
    "5.7.26",
    "4.7.28",
    "5.7.25",
    "PTR record",
    "TLS required for RCPT domain",
    "unusual rate of",
    "very low reputation of the sending domain",
    "sending limit exceeded",
    "User unknown",
    "[TSS04]",
    "\n",
    " ",
]


@given(
    st.integers(min_value=400, max_value=599),
    st.lists(st.sampled_from(_RULE_WORDS) | st.text(max_size=8), max_size=12),
)
def test_gated_rules_as_plain_on_generated_texts(code, parts):
    _assert_gated_as_plain(code, " ".join(parts))
    _assert_gated_as_plain(code, "".join(parts))


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", SMTP_CAPTURES, ids=capture_id)
def test_gated_rules_as_plain_on_captured_replies(path):
    for replies in server_replies(path).values():
        for code, text in replies:
            _assert_gated_as_plain(code, text)
