"""Each MTA's lines as they write them, and the facts linking takes from them. The lines follow
real logs: the lab's Postfix 3.7 and Exim 4.96, Postfix's and Exim's own formats (smtpd.c,
log_adhoc.c; Exim spec "Log files"), Sendmail 8 and qmail-send lines as posted publicly;
addresses from the documentation ranges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pcapsmtp.maillog.files import LineParser
from pcapsmtp.maillog.model import FileStats
from pcapsmtp.maillog.stamps import Clock

NEAR = int(datetime(2026, 11, 23, 6, 44, tzinfo=UTC).timestamp() * 1e9)


def parse(*texts: str):
    parser = LineParser("test.log", Clock(UTC, NEAR), FileStats("test.log"))
    return [parser.parse(number, text) for number, text in enumerate(texts, 1)][-1]


def facts(line, *names):
    return tuple(getattr(line, name) for name in names)


BASIC = ("mta", "event", "direction", "queue_id", "peer", "peer_port", "status", "code", "dsn")

POSTFIX = [
    (
        "Nov 23 06:44:20 server postfix/smtpd[28087]: connect from unknown[10.77.1.2]",
        ("postfix", "connect", "in", None, "10.77.1.2", None, None, None, None),
    ),
    (
        "Nov 23 06:44:20 server postfix/smtpd[28087]: 6CB8D20E323: client=unknown[10.77.1.2]",
        ("postfix", "received", "in", "6CB8D20E323", "10.77.1.2", None, None, None, None),
    ),
    (
        "Nov 23 06:44:20 server postfix/qmgr[28083]: 6CB8D20E323: from=<alice@client.lab.test>, "
        "size=467, nrcpt=1 (queue active)",
        ("postfix", "message", None, "6CB8D20E323", None, None, None, None, None),
    ),
    (
        "Nov 23 06:45:17 server postfix/smtpd[32418]: NOQUEUE: reject: RCPT from unknown"
        "[10.77.1.2]: 451 4.7.1 <bob@server.lab.test>: Recipient address rejected: Greylisted; "
        "from=<alice@client.lab.test> to=<bob@server.lab.test> proto=ESMTP helo=<client.lab.test>",
        ("postfix", "rejected", "in", None, "10.77.1.2", None, "deferred", 451, "4.7.1"),
    ),
    (
        "Nov 23 06:46:12 server postfix/smtpd[2246]: NOQUEUE: reject: CONNECT from unknown"
        "[10.77.1.2]: 421 4.3.2 <unknown[10.77.1.2]>: Client host rejected: lab; proto=SMTP",
        ("postfix", "rejected", "in", None, "10.77.1.2", None, "deferred", 421, "4.3.2"),
    ),
    (
        "Nov 23 06:48:19 server postfix/smtpd[5989]: timeout after DATA (0 bytes) from "
        "unknown[10.77.1.2]",
        ("postfix", "disconnect", "in", None, "10.77.1.2", None, None, None, None),
    ),
    # The sending side: the next hop's reply, with its queue id, in the status.
    (
        "Nov 23 06:44:21 relay postfix/smtp[4242]: 3F09C20E401: to=<bob@example.net>, "
        "relay=mx.example.net[198.51.100.25]:25, delay=0.3, delays=0.01/0/0.1/0.2, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 6CB8D20E323)",
        ("postfix", "delivery", "out", "3F09C20E401", "198.51.100.25", 25, "sent", 250, "2.0.0"),
    ),
    (
        "Nov 23 06:44:21 relay postfix/smtp[4242]: 3F09C20E401: to=<bob@example.net>, "
        "relay=mx.example.net[198.51.100.25]:25, delay=2, dsn=4.7.1, status=deferred (host "
        "mx.example.net[198.51.100.25] said: 451 4.7.1 Greylisted (in reply to RCPT TO command))",
        (
            "postfix",
            "delivery",
            "out",
            "3F09C20E401",
            "198.51.100.25",
            25,
            "deferred",
            451,
            "4.7.1",
        ),
    ),
    (
        "Nov 23 06:44:21 relay postfix/smtp[4242]: connect to mx.example.net[198.51.100.25]:25: "
        "Connection refused",
        ("postfix", "connect-failed", "out", None, "198.51.100.25", 25, None, None, None),
    ),
    (
        "Nov 23 06:44:51 relay postfix/smtp[4242]: 3F09C20E401: to=<bob@example.net>, relay=none, "
        "delay=30, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.25]:25: "
        "Connection timed out)",
        (
            "postfix",
            "delivery",
            "out",
            "3F09C20E401",
            "198.51.100.25",
            25,
            "deferred",
            None,
            "4.4.1",
        ),
    ),
    # Another syslog_name, a long queue id (enable_long_queue_ids), postscreen with a port.
    (
        "2026-11-23T06:44:20.5+00:00 mx postfix-in/smtpd[7]: 4WkJ3m0Xq1zBrbq: client="
        "a.example.org[2001:db8::10]",
        ("postfix", "received", "in", "4WkJ3m0Xq1zBrbq", "2001:db8::10", None, None, None, None),
    ),
    (
        "Nov 23 06:44:20 mx postfix/postscreen[9]: CONNECT from [192.0.2.10]:40000 to "
        "[198.51.100.25]:25",
        ("postfix", "connect", "in", None, "192.0.2.10", 40000, None, None, None),
    ),
]

EXIM = [
    (
        "2026-11-23 06:50:03 SMTP connection from [10.77.1.2]:33494 (TCP/IP connection count = 1)",
        ("exim", "connect", "in", None, "10.77.1.2", 33494, None, None, None),
    ),
    (
        "2026-11-23 06:50:03 1xVNsJ-00036b-3A <= alice@client.lab.test H=(client.lab.test) "
        "[10.77.1.2]:33494 P=esmtp S=509 id=lab-1@client.lab.test for bob@server.lab.test",
        ("exim", "received", "in", "1xVNsJ-00036b-3A", "10.77.1.2", 33494, None, None, None),
    ),
    (
        "2026-11-23 06:50:04 1xVNsJ-00036b-3A == bob@server.lab.test R=lab_mailbox T=lab_file "
        "defer (-1): Tainted '/tmp/x/bob' not permitted",
        ("exim", "delivery", None, "1xVNsJ-00036b-3A", None, None, "deferred", None, None),
    ),
    (
        "2012-02-13 14:39:57 1RwtJY-0009RI-E4 => bob@example.net R=dnslookup T=remote_smtp "
        'H=mx.example.net [198.51.100.25] C="250 2.0.0 Ok: queued as 8512E1767A67"',
        ("exim", "delivery", "out", "1RwtJY-0009RI-E4", "198.51.100.25", None, "sent", 250, None),
    ),
    (
        "2026-09-16 12:03:40 1x6mUB-00000006Pya-498Q ** bad@example.net R=lookuphost "
        "T=remote_smtp H=mx.example.net [198.51.100.25]: SMTP error from remote mail server after "
        "RCPT TO:<bad@example.net>: 550-5.1.1 The email account does not exist.",
        (
            "exim",
            "delivery",
            "out",
            "1x6mUB-00000006Pya-498Q",
            "198.51.100.25",
            None,
            "bounced",
            550,
            None,
        ),
    ),
    (
        "2026-06-07 10:00:00 1uXc00-000333-44 ** nobody@nx.example R=dnslookup T=remote_smtp: "
        "host mx.nx.example [203.0.113.2]: 550 No such user",
        ("exim", "delivery", "out", "1uXc00-000333-44", "203.0.113.2", None, "bounced", 550, None),
    ),
    (
        "2026-11-23 06:50:03 H=(helo.example) [192.0.2.10]:40000 F=<a@example.org> temporarily "
        "rejected RCPT <b@example.net>: greylisted",
        ("exim", "rejected", "in", None, "192.0.2.10", 40000, "deferred", None, None),
    ),
    # Exim through syslog keeps its own stamp inside the message (syslog_timestamp).
    (
        "Nov 23 06:50:03 mx exim[77]: 2026-11-23 06:50:03 1xVNsJ-00036b-3A Completed",
        ("exim", "message", None, "1xVNsJ-00036b-3A", None, None, None, None, None),
    ),
]

SENDMAIL = [
    (
        "Jul 19 13:28:35 mx sm-mta[11380]: m6JDSZoG011380: from=<monit@example.org>, size=553, "
        "class=0, nrcpts=1, msgid=<1216474115@example.org>, proto=ESMTP, daemon=MTA-v4, "
        "relay=client.example.org [192.0.2.10]",
        ("sendmail", "received", "in", "m6JDSZoG011380", "192.0.2.10", None, None, None, None),
    ),
    (
        "Oct 14 18:04:40 relay sendmail[1131]: x9EL4XLo001111: to=<bob@example.net>, "
        "ctladdr=<a@example.org> (960/100), delay=00:00:05, xdelay=00:00:01, mailer=esmtp, "
        "pri=402603, relay=mx.example.net. [198.51.100.25], dsn=2.0.0, stat=Sent (Ok: queued as "
        "46sWK42Z5gz1F)",
        (
            "sendmail",
            "delivery",
            "out",
            "x9EL4XLo001111",
            "198.51.100.25",
            None,
            "sent",
            None,
            "2.0.0",
        ),
    ),
    (
        "Apr 10 08:47:25 relay sm-mta[593]: r39G922P001173: to=<bob@example.net>, delay=20:38:23, "
        "xdelay=00:00:00, mailer=esmtp, pri=11550899, relay=b.mx.example.net. [198.51.100.26], "
        "dsn=4.1.8, stat=Deferred: 450 4.1.8 <a@example.org>: Sender address rejected: Domain "
        "not found",
        (
            "sendmail",
            "delivery",
            "out",
            "r39G922P001173",
            "198.51.100.26",
            None,
            "deferred",
            450,
            "4.1.8",
        ),
    ),
    (
        "Jun 26 07:24:25 relay sendmail[31762]: q5PNOMeP031760: to=<admin@example.net>, "
        "delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=121393, relay=mx.example.net. "
        "[198.51.100.25], dsn=5.0.0,stat=Service unavailable",
        (
            "sendmail",
            "delivery",
            "out",
            "q5PNOMeP031760",
            "198.51.100.25",
            None,
            "bounced",
            None,
            "5.0.0",
        ),
    ),
    (
        "Dec  6 19:19:22 mx sm-mta[13125]: mB72JLu5013099: ruleset=check_rcpt, "
        "arg1=<x@example.net>, relay=client.example.org [192.0.2.10], reject=550 5.7.1 "
        "<x@example.net>... Relaying denied",
        (
            "sendmail",
            "rejected",
            "in",
            "mB72JLu5013099",
            "192.0.2.10",
            None,
            "rejected",
            550,
            "5.7.1",
        ),
    ),
]

QMAIL = [
    (
        "@4000000052fafd8d32984b1c info msg 3890: bytes 372 from <root@example.org> qp 31835 uid 0",
        ("qmail", "received", None, "3890", None, None, None, None, None),
    ),
    (
        "@4000000052fafd8d38754cec delivery 9: success: 198.51.100.25_accepted_message./"
        "Remote_host_said:_250_ok_1392180611_qp_10394/",
        ("qmail", "delivery", "out", None, "198.51.100.25", None, "sent", 250, None),
    ),
    (
        "Jun 10 20:43:36 relay qmail: 1591785816.273118 delivery 293: deferral: Connected_to_"
        "198.51.100.25_but_greeting_failed./Remote_host_said:_421_too_busy/",
        ("qmail", "delivery", "out", None, "198.51.100.25", None, "deferred", 421, None),
    ),
    (
        "@4000000052fafd8d38754cec tcpserver: ok 17310 mx.example.net:198.51.100.25:25 "
        ":192.0.2.10::48816",
        ("qmail", "connect", "in", None, "192.0.2.10", 48816, None, None, None),
    ),
]


@pytest.mark.parametrize(("text", "expected"), POSTFIX + EXIM + SENDMAIL + QMAIL)
def test_line(text, expected):
    line = parse(text)
    assert facts(line, *BASIC) == expected
    assert line.text == text


def test_next_hop_ids():
    assert parse(POSTFIX[6][0]).remote_id == "6CB8D20E323"
    assert parse(EXIM[3][0]).remote_id == "8512E1767A67"
    assert parse(SENDMAIL[1][0]).remote_id == "46sWK42Z5gz1F"
    assert parse(QMAIL[1][0]).remote_id == "10394"  # the next qmail's qp


def test_queued_means_in_the_queue():
    assert parse(POSTFIX[2][0]).queued and not parse(POSTFIX[1][0]).queued
    assert parse(EXIM[1][0]).queued and parse(SENDMAIL[0][0]).queued
    info = parse(QMAIL[0][0])
    assert info.queued and info.aliases == ("31835",)


def test_qmail_delivery_number_names_the_message():
    line = parse(
        "@4000000052fafd8d373b5dbc starting delivery 9: msg 3890 to remote bob@example.net",
        QMAIL[1][0],
    )
    assert (line.queue_id, line.delivery) == ("3890", "9")


def test_other_programs_and_nonsense_are_counted():
    stats = FileStats("x")
    parser = LineParser("x", Clock(UTC, NEAR), stats)
    assert parser.parse(1, "Nov 23 06:44:20 mx dovecot[1]: imap-login: Login") is None
    assert parser.parse(2, "\x00\xff garbage") is None
    assert (
        parser.parse(3, "Nov 23 06:44:20 mx postfix/anvil[1]: statistics: max rate").event
        == "other"
    )
    assert stats.other_programs == {"dovecot": 1} and stats.not_understood == 1
