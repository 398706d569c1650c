"""Server software from banner, EHLO and reply styles; EHLO parsing; SMTP inspection traces.

Rows name their source: a public capture and frame (../shared/captures/public), a line of
nmap-service-probes (nmap/nmap), a provider's page, or the MTA's source file.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcapsmtp.smtp.software import (
    MASKED,
    SoftwareGuess,
    is_masked_banner,
    masked_ehlo_keywords,
    parse_ehlo,
    server_software,
)
from tests.captures import PUBLIC
from tests.smtp.test_codes import SMTP_CAPTURES, server_replies
from tests.tshark import needs_tshark

# suricata-smtp-extract-url-schemes_input.pcap frame 10: Exchange 2003 behind a Cisco ASA with
# "inspect esmtp"; the keywords it does not allow became X's (TURN, CHUNKING, VRFY, ...).
MASKED_EHLO = [
    "kRih0.XELPI7RJSy1.com Hello [10.223.193.35]",
    "XXXA",
    "SIZE",
    "ETRN",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "8bitmime",
    "BINARYMIME",
    "XXXXXXXB",
    "XXXC",
    "XXXXXXXXXXXXXXXXXXXXXXXD",
    "XXXXXXXXXXXE",
    "AUTH GSSAPI NTLM LOGIN",
    "XXXXXXXXXF",
    "XXXXXXXXXXXG",
    "XXXXXXH",
    "XI",
]
# arkime-smtp-decrypted.pcap frame 7: Exchange 2016+ before STARTTLS.
EXCHANGE_EHLO = [
    "PCIAT-MX.shewa.intradef.gouv.fr Hello [185.25.10.15]",
    "SIZE 37748736",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH NTLM",
    "X-EXPS GSSAPI NTLM",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "XRDST",
]
# suricata-smtp-file-data-01_input.pcap frame 8: Exchange 2003 (IIS SMTP), no domain given.
EXCHANGE_2003_EHLO = [
    " Hello ",
    "TURN",
    "SIZE",
    "ETRN",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "BINARYMIME",
    "CHUNKING",
    "VRFY",
    "TLS",
    "STARTTLS",
    "X-EXPS GSSAPI NTLM LOGIN",
    "X-EXPS=LOGIN",
    "AUTH GSSAPI NTLM LOGIN",
    "AUTH=LOGIN",
    "X-LINK2STATE",
    "XEXCH50",
    "OK",
]
# arkime-smtp-data-250.pcap frame 8: AOL's submission server, both AUTH forms.
AOL_EHLO = [
    "mtaout-ma02.r1000.mx.aol.com",
    "PIPELINING",
    "SIZE 36700160",
    "ETRN",
    "STARTTLS",
    "AUTH PLAIN XAOL-UAS-MB LOGIN",
    "AUTH=PLAIN XAOL-UAS-MB LOGIN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
]
# zeek-smtp-bdat-pipeline-8bitmime.pcap frame 7: Exim 4.94.
EXIM_EHLO = [
    "scoot-81.wizint.net Hello vger.kernel.org [23.128.96.18]",
    "SIZE 52428800",
    "8BITMIME",
    "PIPELINING",
    "PIPE_CONNECT",
    "CHUNKING",
    "STARTTLS",
    "PRDR",
    "SMTPUTF8",
    "HELP",
]
# zeek-communityid-ipv6.pcap frame 16: Gmail.
GMAIL_EHLO = [
    "mx.google.com at your service, [2001:470:e5bf:dead:4957:2174:e82c:4887]",
    "SIZE 35882577",
    "8BITMIME",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "PIPELINING",
    "CHUNKING",
    "SMTPUTF8",
]
# arkime-smtp-subject-encoded-empty.pcap frame 8: Sendmail, "SIZE" with no number.
SENDMAIL_EHLO = [
    "xxxxxxxxxxx.xxx.com Hello xxxxxxxxxxxxxxxxxxxxxx.xxx.com [10.000.000.01], pleased to meet you",
    "ENHANCEDSTATUSCODES",
    "PIPELINING",
    "8BITMIME",
    "SIZE",
    "DSN",
    "ETRN",
    "DELIVERBY",
    "HELP",
]


# --- SMTP inspection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("banner", "expected"),
    [
        ("****************************2*0**0*2***", True),  # FIELD-NOTES, Cisco ASA
        ("*****************************************0*0*0***", True),  # PIX: nmap [\*\d\ ]
        ("**** **** ****", True),
        ("***\n***2*0**", True),  # a multi-line greeting, every line masked
        ("mail.example.com ESMTP Postfix", False),
        ("**** mail.example.com ****", False),  # letters survive: not the ASA's rewrite
        ("2020", False),  # digits alone
        ("**", False),  # too short to tell
        ("", False),
    ],
)
def test_is_masked_banner(banner, expected):
    assert is_masked_banner(banner) is expected


def test_masked_ehlo_keywords():
    assert masked_ehlo_keywords(MASKED_EHLO) == [
        "XXXA",
        "XXXXXXXB",
        "XXXC",
        "XXXXXXXXXXXXXXXXXXXXXXXD",
        "XXXXXXXXXXXE",
        "XXXXXXXXXF",
        "XXXXXXXXXXXG",
        "XXXXXXH",
        "XI",
    ]


@pytest.mark.parametrize(
    "lines",
    [EXCHANGE_EHLO, EXCHANGE_2003_EHLO, EXIM_EHLO, GMAIL_EHLO, AOL_EHLO, SENDMAIL_EHLO, []],
)
def test_nothing_masked_in_plain_ehlo(lines):
    # XEXCH50, X-EXPS, XRDST are X-keywords of Exchange, not an inspection's rewrite.
    assert masked_ehlo_keywords(lines) == []


# --- EHLO ----------------------------------------------------------------------------------------


def test_parse_ehlo_exchange():
    ehlo = parse_ehlo(EXCHANGE_EHLO)
    assert ehlo["domain"] == "PCIAT-MX.shewa.intradef.gouv.fr"
    assert ehlo["greeting"] == "Hello [185.25.10.15]"
    assert ehlo["extensions"] == [
        "SIZE",
        "PIPELINING",
        "DSN",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "X-ANONYMOUSTLS",
        "AUTH",
        "X-EXPS",
        "8BITMIME",
        "BINARYMIME",
        "CHUNKING",
        "XRDST",
    ]
    assert ehlo["size"] == 37748736
    assert ehlo["auth"] == ["NTLM"]
    flags = ("pipelining", "starttls", "chunking", "8bitmime", "dsn", "enhancedstatuscodes")
    assert all(ehlo[flag] for flag in flags)
    assert ehlo["smtputf8"] is False


@pytest.mark.parametrize(
    ("lines", "key", "expected"),
    [
        # RFC 4954 "AUTH PLAIN LOGIN" and the old "AUTH=PLAIN LOGIN" name the same mechanisms.
        (AOL_EHLO, "auth", ["PLAIN", "XAOL-UAS-MB", "LOGIN"]),
        (
            AOL_EHLO,
            "extensions",
            [
                "PIPELINING",
                "SIZE",
                "ETRN",
                "STARTTLS",
                "AUTH",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "DSN",
            ],
        ),
        (AOL_EHLO, "greeting", None),  # the domain alone (RFC 5321 4.1.1.1: greet is optional)
        (AOL_EHLO, "size", 36700160),
        (EXCHANGE_2003_EHLO, "auth", ["GSSAPI", "NTLM", "LOGIN"]),
        (EXCHANGE_2003_EHLO, "domain", None),  # " Hello ": no domain
        (EXCHANGE_2003_EHLO, "greeting", "Hello"),
        (EXCHANGE_2003_EHLO, "size", None),  # RFC 1870 4: "SIZE" alone, no fixed limit
        (EXCHANGE_2003_EHLO, "chunking", True),
        (SENDMAIL_EHLO, "size", None),
        (SENDMAIL_EHLO, "dsn", True),
        (EXIM_EHLO, "smtputf8", True),
        (EXIM_EHLO, "starttls", True),
        (GMAIL_EHLO, "domain", "mx.google.com"),
        (MASKED_EHLO, "8bitmime", True),  # "8bitmime": keywords are case-insensitive
        (MASKED_EHLO, "chunking", False),  # masked to XXXXXXXB by the ASA
        (["mail.example.com", "SIZE 0"], "size", None),  # RFC 1870 4: 0 means no limit
        (["mail.example.com", "SIZE \u00b2"], "size", None),  # not a number to RFC 1870
        (["mail.example.com", "SIZE 10240000"], "size", 10240000),  # Postfix default
        (["250-mail.example.com", "250 STARTTLS"], "starttls", True),  # lines with the code
        (["mail.example.com", "", "PIPELINING"], "pipelining", True),
        ([], "domain", None),
        ([], "extensions", []),
    ],
)
def test_parse_ehlo(lines, key, expected):
    assert parse_ehlo(lines)[key] == expected


# --- Server software ------------------------------------------------------------------------------

SOFTWARE = [
    # banner, EHLO lines, other replies -> name, version
    # Postfix
    ("jw-vm08-int-dns.webernetz.net ESMTP Postfix (Ubuntu)", [], [], "Postfix", None),
    # ndpi-smtp-starttls.pcap frame 40
    ("example.com ESMTP Postfix (Debian/GNU)", [], [], "Postfix", None),  # zeek-rfc3030 4
    ("mail.example.com ESMTP Postfix (2.11.3)", [], [], "Postfix", "2.11.3"),  # nmap v/$2/
    # Exim
    (
        "xc90.websitewelcome.com ESMTP Exim 4.69 #1 Mon, 05 Oct 2009 01:05:54 -0500 \nWe do not"
        " authorize the use of this system to transport unsolicited, \nand/or bulk e-mail.",
        [],
        [],
        "Exim",
        "4.69",
    ),  # zeek-smtp.pcap frame 6
    (
        "scoot-81.wizint.net ESMTP Exim 4.94.115 Thu, 04 Mar 2021 09:42:07 +0000\n"
        "Spam disliked here",
        EXIM_EHLO,
        [],
        "Exim",
        "4.94.115",
    ),  # suricata-bug-7126_input.pcap frame 4
    ("ubuntu ESMTP Exim 4.82 Ubuntu Fri, 30 Jan 2015 12:31:43 +0100", [], [], "Exim", "4.82"),
    # wireshark-notes-smtp-ssl.pcapng frame 4
    ("mail.example.com ESMTP", EXIM_EHLO, [], "Exim", None),  # PIPE_CONNECT
    (
        "mail.example.com ESMTP",
        [],
        [" 4404 byte chunk, total 4404\nOK id=1lHkUh-008hPw-NY"],
        "Exim",
        None,
    ),  # suricata-bug-7126_input.pcap frame 14
    # Sendmail
    (
        "localhost.localdomain ESMTP Sendmail 8.14.4/8.14.4; Fri, 6 Nov 2015 13:35:29 -0500",
        [],
        [],
        "Sendmail",
        "8.14.4",
    ),  # arkime-smtp-moloch-bof.pcap frame 6
    (
        "pigeon.eyrie.af.mil ESMTP Sendmail 8.8.7/8.8.7; Sat, 7 Aug 1999 08:20:11 -0400",
        [],
        [],
        "Sendmail",
        "8.8.7",
    ),  # ndpi-smtp.pcap frame 4
    ("mail ESMTP", [], ["2.0.0 tA6IZTQc010322 Message accepted for delivery"], "Sendmail", None),
    # qmail: only its replies tell (suricata-smtp-long-DATA-line_input.pcap frames 4, 6, 41)
    (
        "smtp001.mail.xxx.xxxxx.com ESMTP",
        ["smtp001.mail.xxx.xxxxx.com", "AUTH LOGIN PLAIN XYMCOOKIE", "PIPELINING", "8BITMIME"],
        ["ok, go ahead (#2.0.0)", "ok", "ok", "go ahead", "ok 1184401929 qp 26211"],
        "qmail",
        None,
    ),
    # Microsoft
    (
        "PCIAT-MX.shewa.intradef.gouv.fr Microsoft ESMTP MAIL Service ready at Thu, 5 Dec 2024"
        " 08:52:31 +0000",
        EXCHANGE_EHLO,
        [],
        "Microsoft Exchange",
        None,
    ),  # arkime-smtp-decrypted.pcap frame 4
    (
        "cernmxlb4.cern.ch Microsoft ESMTP MAIL Service ready at Tue, 8 Dec 2015 22:31:02 +0100",
        [],
        [],
        "Microsoft Exchange",
        None,
    ),  # zeek-smtp-multi-addr.pcap frame 4
    (
        "BN8NAM12FT066.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready at Mon, 22"
        " May 2023 11:57:51 +0000",
        [],
        [],
        "Exchange Online",
        None,
    ),  # EOP front end names (pastebin ExQUnA6B)
    (
        "server-102e9f9.example.int Microsoft ESMTP MAIL Service, Version: 6.0.3790.1830",
        EXCHANGE_2003_EHLO,
        [],
        "Microsoft Exchange",
        "6.0.3790.1830",
    ),  # suricata-smtp-file-data-01_input.pcap frames 4, 8: IIS SMTP + XEXCH50
    (
        "10.15.2.203 Microsoft ESMTP MAIL Service, Version: 6.0.3790.1830 ready at Fri Jul 17"
        " 03:15:59 2020",
        [],
        [],
        "Microsoft IIS SMTP",
        "6.0.3790.1830",
    ),  # suricata-issue-4220-01-ids_1flowB.pcap frame 4: nothing shows Exchange
    (
        "TiS1FHJM.qDtGLyY.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at  Sun,"
        " 01 Jan 2010 13:01:43 +1000",
        MASKED_EHLO,
        [],
        "Microsoft IIS SMTP",
        "6.0.3790.3959",
    ),  # suricata-smtp-extract-url-schemes frames 4, 10: XEXCH50 masked away by the ASA
    ("mail.example.com", EXCHANGE_EHLO, [], "Microsoft Exchange", None),  # X-EXPS, XRDST
    (
        "mail.example.com ESMTP",
        [],
        [
            "2.6.0 <201512082130.tB8LU0vs014629@gras-os-desk.cern.ch> [InternalId=97779625]"
            " Queued mail for delivery"
        ],
        "Microsoft Exchange",
        None,
    ),  # zeek-smtp-multi-addr.pcap frame 16
    # Gmail
    ("mx.google.com ESMTP s4si9696358qcc.63 - gsmtp", [], [], "Gmail", None),
    # arkime-smtp-starttls.pcap frame 4
    ("", GMAIL_EHLO, [], "Gmail", None),  # zeek-communityid-ipv6.pcap frame 16
    ("mx ESMTP", [], ["2.0.0 OK 1452005382 o123si5764107wmd.53 - gsmtp"], "Gmail", None),
    # Yahoo
    ("mta1125.mail.ir2.yahoo.com ESMTP YSmtpProxy service ready", [], [], "Yahoo", None),
    # suricata-bug-1045_smtpsuricataflowbitsFN.pcap frame 4
    ("mta4265.mail.ne1.yahoo.com ESMTP ready", [], [], "Yahoo", None),  # smtperr frame 16
    # Providers known by host name
    ("opmta1mto02nd1 smtp.orange.fr ESMTP server ready", [], [], "Orange", None),
    # ndpi-emotet.pcap frame 4
    (
        "mtaout-ma02.r1000.mx.aol.com ESMTP MUA/Third Party Client Interface\nAOL and its"
        " affiliated companies do not",
        AOL_EHLO,
        ["2.0.0 Ok: queued as 1D2BFE000094"],
        "AOL",
        None,
    ),  # arkime-smtp-data-250.pcap frames 4, 8, 25
    ("mx0a-001b2d01.pphosted.com ESMTP", [], [], "Proofpoint", None),
    ("eu-smtp-inbound-1.mimecast.com ESMTP", [], [], "Mimecast", None),
    ("mx1.hc1234-56.iphmx.com ESMTP", [], [], "Cisco Secure Email (IronPort)", None),
    ("server-19.tower-30.messagelabs.com ESMTP", [], [], "Symantec/Broadcom Email Security", None),
    ("mx01.mail.icloud.com ESMTP", [], [], "iCloud", None),
    # Other software, banners as nmap-service-probes matches them
    ("mx01.ingw.orange.tn ESMTP CommuniGate Pro 6.1.16", [], [], "CommuniGate Pro", "6.1.16"),
    # suricata-smtp-errors_smtperr.pcap frame 131 (not Orange: orange.tn is not a rule)
    ("mail.example.org ESMTP OpenSMTPD", [], [], "OpenSMTPD", None),  # smtp_session.c
    ("mx.example.org ESMTP Haraka/3.0.3 ready", [], [], "Haraka", "3.0.3"),  # connection.js
    ("mx.example.org ESMTP Haraka 2.8.25 ready", [], [], "Haraka", "2.8.25"),  # nmap
    ("mail.example.org ESMTP hMailServer 5.6.8-B2574", [], [], "hMailServer", "5.6.8-B2574"),
    ("mail.example.org ESMTP MDaemon 21.0.2; Mon, 01 Jan 2024", [], [], "MDaemon", "21.0.2"),
    ("mail.example.org Kerio Connect 9.2.1 ESMTP ready", [], [], "Kerio Connect", "9.2.1"),
    ("mail.example.org ESMTP IceWarp 12.0.3; Mon, 01 Jan 2024", [], [], "IceWarp", "12.0.3"),
    ("uprise ESMTP SubEthaSMTP null", [], [], "SubEthaSMTP", None),  # zeek-smtp.pcap frame 66
    ("linuxbox -- E-MailRelay V2.1a -- Service ready", [], [], "E-MailRelay", "2.1a"),
    # suricata-smtp-attachment-md5_input.pcap frame 4
    ("gmx.net (mxgmx017) Nemesis ESMTP Service ready", [], [], "GMX/WEB.DE", None),
    (
        "xxxxxxxxxxxxxxxx.xxx.com ESMTP (8c53e47a0e267dc8fa5a3d95a20c7a75)",
        [],
        [],
        "Barracuda",
        None,
    ),  # arkime-smtp-subject-8859-multi.pcap frame 4; nmap: Barracuda Spam Firewall
    (
        "mail.example.org ESMTP Symantec Messaging Gateway",
        [],
        [],
        "Symantec/Broadcom Email Security",
        None,
    ),
    ("mail.example.org Trend Micro ESMTP 8.0 ready.", [], [], "Trend Micro", None),
    # Reply styles
    ("mail.example.com ESMTP", [], ["2.0.0 Ok: queued as ABCDEF"], "Postfix", None),
    # suricata-smtp-bdat-bad-tail-reply-queue_input.pcap frames 4, 15
    (
        "mail.example.com ESMTP",
        [],
        ["2.0.0 4fbc3d2a Message accepted for delivery"],
        "OpenSMTPD",
        None,
    ),
    (
        "mail.example.com ESMTP",
        [],
        ["ok:  Message 64111812 accepted"],
        "Cisco Secure Email (IronPort)",
        None,
    ),
    ("mail.example.com ESMTP", [], ["sender <rmkml@yahoo.fr> ok", "ok dirdel"], "Yahoo", None),
    (
        "",
        [],
        [
            "5.7.1 Unfortunately, messages from [88.198.83.90] weren't sent. Please contact your"
            " Internet service provider since part of their network is on our block list (S3150)."
            " You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx"
            "#errors. [BN8NAM12FT066.eop-nam12.prod.protection.outlook.com 2023-05-22T11:57:51Z]"
        ],
        "Outlook.com",
        None,
    ),  # pastebin ExQUnA6B
    (
        "",
        [],
        [
            "5.4.1 Recipient address rejected: Access denied."
            " [CY1GCC01FT007.eop-gcc01.prod.protection.outlook.com]"
        ],
        "Exchange Online",
        None,
    ),  # pastebin 32NXKByX
    # SMTP inspection
    ("****************************2*0**0*2***", EXCHANGE_EHLO, [], MASKED, None),
    (None, MASKED_EHLO[:1] + MASKED_EHLO[9:], [], MASKED, None),
    # Not enough to name anything: None is better than a wrong name
    ("mail.target.example ESMTP ready", [], ["OK", "OK: message accepted"], None, None),
    # zeek-mime-header-size-limit.pcap frames 4, 36
    (
        "server.domain.com MX SMTP server ready",
        [],
        ["+OK message queued for delivery."],
        None,
        None,
    ),  # suricata-smtp-url-base64_smtp-url-b64.pcap frames 5, 51
    ("linuxbox SMTP ready", [], ["OK"], None, None),  # suricata-mime-dec-* frame 4
    ("smtpblah.mailserver.xxx.com ESMTP", [], ["ok: queued as 12345"], None, None),
    # suricata-detect-email-received_input.pcap frame 60: not Postfix's spelling
    (
        "mail.example.com ESMTP",
        [
            "mail.example.com",
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
        ],
        [],
        None,
        None,
    ),
    # Postfix's usual keywords, but no strong evidence (ETRN+VRFY+DSN is weak)
    (None, [], [], None, None),
]


@pytest.mark.parametrize(("banner", "ehlo", "others", "name", "version"), SOFTWARE)
def test_server_software(banner, ehlo, others, name, version):
    guess = server_software(banner, ehlo, others)
    if name is None:
        assert guess is None
    else:
        assert isinstance(guess, SoftwareGuess)
        assert (guess.name, guess.version) == (name, version)
        assert guess.evidence and len(guess.evidence) <= 200


@given(
    st.one_of(st.none(), st.text(max_size=120)),
    st.lists(st.text(max_size=60), max_size=8),
    st.lists(st.text(max_size=80), max_size=4),
)
def test_never_raises(banner, ehlo, others):
    guess = server_software(banner, ehlo, others)
    assert guess is None or isinstance(guess, SoftwareGuess)
    parse_ehlo(ehlo)
    masked_ehlo_keywords(ehlo)


# --- Whole captures ------------------------------------------------------------------------------

# (capture, tcp.stream) -> name, version. Banner = the stream's first reply, EHLO = the first
# 250 after it, the rest are other replies.
CAPTURE_SOFTWARE = {
    ("arkime-smtp-decrypted.pcap", 0): ("Microsoft Exchange", None),
    ("arkime-smtp-moloch-bof.pcap", 0): ("Sendmail", "8.14.4"),
    ("arkime-smtp-starttls.pcap", 0): ("Gmail", None),
    ("arkime-smtp-subject-8859-multi.pcap", 0): ("Barracuda", None),
    ("ndpi-emotet.pcap", 0): ("Orange", None),
    ("ndpi-smtp-starttls.pcap", 1): ("Postfix", None),
    ("ndpi-smtp.pcap", 0): ("Sendmail", "8.8.7"),
    ("suricata-bug-1045_smtpsuricataflowbitsFN.pcap", 0): ("Yahoo", None),
    ("suricata-bug-7126_input.pcap", 0): ("Exim", "4.94.115"),
    ("suricata-issue-4220-01-ids_1flowB.pcap", 0): ("Microsoft IIS SMTP", "6.0.3790.1830"),
    ("suricata-mime-quoted-printable_input.pcap", 0): ("qmail", None),
    ("suricata-smtp-attachment-md5_input.pcap", 0): ("E-MailRelay", "2.1a"),
    ("suricata-smtp-extract-url-schemes_input.pcap", 0): ("Microsoft IIS SMTP", "6.0.3790.3959"),
    ("suricata-smtp-file-data-01_input.pcap", 0): ("Microsoft Exchange", "6.0.3790.1830"),
    ("suricata-smtp-long-DATA-line_input.pcap", 0): ("qmail", None),
    ("zeek-smtp-multi-addr.pcap", 0): ("Microsoft Exchange", None),
    ("zeek-smtp.pcap", 0): ("Exim", "4.69"),
    ("zeek-communityid-ipv6.pcap", 0): ("Gmail", None),
    ("zeek-mime-header-size-limit.pcap", 0): (None, None),
    ("suricata-smtp-url-base64_smtp-url-b64.pcap", 0): (None, None),
}


def _session(replies: list[tuple[int, str]]) -> tuple[str | None, list[str], list[str]]:
    banner = replies[0][1] if replies and replies[0][0] == 220 else None
    rest = replies[1:] if banner is not None else replies
    ehlo = next((text for code, text in rest if code == 250), None)
    others = [text for code, text in rest if text is not ehlo]
    return banner, (ehlo.split("\n") if ehlo is not None else []), others


@needs_tshark
@pytest.mark.parametrize(("capture", "stream"), sorted(CAPTURE_SOFTWARE))
def test_capture_software(capture, stream):
    path = PUBLIC / capture
    if not path.exists():
        pytest.skip("public captures are not here")
    guess = server_software(*_session(server_replies(path)[stream]))
    assert ((guess.name, guess.version) if guess else (None, None)) == CAPTURE_SOFTWARE[
        (capture, stream)
    ]


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("path", SMTP_CAPTURES, ids=lambda p: p.name)
def test_every_captured_session(path):
    for replies in server_replies(path).values():
        banner, ehlo, others = _session(replies)
        guess = server_software(banner, ehlo, others)
        assert guess is None or guess.evidence
        parse_ehlo(ehlo)


@given(st.lists(st.sampled_from(["250-mx", "XXXA", "250 XXXXXXXA x", "X-EXPS", "SIZE", " Xa"])))
def test_masked_ehlo_keywords_without_an_x(lines):
    """The early answer for a reply with no X is what reading every keyword gives."""
    from pcapsmtp.smtp.software import _MASKED_KEYWORD, _strip_code

    keywords = (_strip_code(line).split()[:1] for line in lines[1:])
    read = [kw[0] for kw in keywords if kw and _MASKED_KEYWORD.fullmatch(kw[0])]
    assert masked_ehlo_keywords(lines) == read
