"""The scenarios: each makes captures/<name>.pcap and captures/<name>.truth.json.

A scenario function builds its network, starts its servers and captures, drives the client
inside the client namespace and calls ``run.finish(...)`` with what the lab knows.
"""

from __future__ import annotations

import os
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from client import (
    HELO,
    LabSMTP,
    client_context,
    make_message,
    parse_swaks,
    run_session,
)
from harness import TROUBLE, Run
from labnet import CLIENT, CLIENT_IP, ROUTER, SERVER, SERVER_IP, SERVER_IP6, Topology, in_ns, netns
from mta import PASSWORD, SERVER_NAME, USERNAME, Exim, Postfix, Postgrey

SCENARIOS: dict[str, Callable[[Run], None]] = {}
HERE = Path(__file__).resolve().parent

ALICE = f"alice@{HELO}"
BOB, CAROL, DAVE = (f"{u}@{SERVER_NAME}" for u in ("bob", "carol", "dave"))
CREDENTIALS = {"username": USERNAME, "password": PASSWORD}
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def scenario(name: str):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


def absent(*but: str) -> list[str]:
    """Every trouble finding except ``but``."""
    return [c for c in TROUBLE if c not in but]


def doc(fn) -> str:
    return " ".join(fn.__doc__.split())


def simple_mail(subject: str, rcpt: list[str] | None = None, seed: int = 1, quit=True, **kw):
    """A body for run_session: EHLO, one transaction, QUIT."""
    rcpt = rcpt or [BOB]

    def body(smtp: LabSMTP) -> None:
        if smtp.greeting != 220:  # 421/554 greeting: the server is about to close
            smtp.close()
            return
        smtp.ehlo()
        msg = make_message(subject, ALICE, rcpt, seed=seed, **kw)
        smtp.transaction(ALICE, rcpt, msg, subject)
        if quit:
            smtp.quit()

    return body


def session(body, port: int = 25, host: str = SERVER_IP, **kw) -> LabSMTP:
    """One client session, run inside the client namespace."""
    with netns(CLIENT):
        return run_session(LabSMTP((host, port), **kw), body)


def python_server(run: Run, role: str, *args: str) -> None:
    """Start servers.py inside ``role``; stopped by PID when the scenario ends."""
    logf = (run.work / f"servers-{args[0]}.log").open("w")
    proc = run.lab.spawn(
        role,
        [sys.executable, str(HERE / "servers.py"), *args],
        f"servers.py {args[0]}",
        start_new_session=True,
        stdout=logf,
        stderr=logf,
    )
    run.extra_stops.append(lambda: run.lab.stop(proc))
    time.sleep(1)
    if proc.poll() is not None:
        raise RuntimeError((run.work / f"servers-{args[0]}.log").read_text())


# -- plain SMTP ---------------------------------------------------------------------------------
@scenario("clean-delivery")
def clean_delivery(run: Run) -> None:
    """one short mail to Postfix on port 25, no faults"""
    run.network()
    run.start_postfix()
    run.capture()
    smtp = session(simple_mail("lab clean delivery"))
    run.sessions.append(smtp.session())
    run.finish(description=doc(clean_delivery), absent=absent())


@scenario("unknown-user")
def unknown_user(run: Run) -> None:
    """one mail to a recipient Postfix does not know: RCPT answered 550 5.1.1, no DATA, QUIT"""
    run.network()
    run.start_postfix()
    run.capture()
    smtp = session(simple_mail("lab unknown user", [f"nobody@{SERVER_NAME}"]))
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(unknown_user), expected=["hard-bounce"], absent=absent("hard-bounce")
    )


@scenario("pipelining")
def pipelining(run: Run) -> None:
    """RFC 2920 PIPELINING: three messages in one session, each to three recipients, MAIL/RCPT/DATA
    sent in one write; the last end-of-data and QUIT share a segment. Subjects in plain ASCII,
    ISO-2022-JP and UTF-8 encoded words."""
    run.network()
    run.start_postfix()
    run.capture()
    rcpt = [BOB, CAROL, DAVE]
    subjects = [
        ("lab pipelining 1", None),
        ("ラボの試験メール 2", "iso-2022-jp"),
        ("Prüfung der Übertragung 3 – ça marche", "utf-8"),
    ]

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        assert smtp.has_extn("pipelining")
        for i, (subject, charset) in enumerate(subjects, 1):
            msg = make_message(subject, ALICE, rcpt, seed=i, subject_charset=charset)
            smtp.transaction(ALICE, rcpt, msg, subject, pipelined=True, then_quit=i == 3)
        smtp.close()

    smtp = session(body)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(pipelining),
        absent=absent(),
        notes="The last message's '.' and QUIT go out in one segment (tshark 4.0 drops the QUIT).",
    )


@scenario("bdat-chunking")
def bdat_chunking(run: Run) -> None:
    """RFC 3030 CHUNKING: one message in 1200-byte BDAT chunks (the last 'BDAT n LAST'), a second
    message as one BDAT chunk followed by 'BDAT 0 LAST', and a third sent as MAIL, RCPT and
    'BDAT n LAST' with its chunk pipelined in one segment"""
    run.network()
    run.start_postfix()
    run.capture()

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        assert smtp.has_extn("chunking")
        msg = make_message("lab bdat 1", ALICE, [BOB], seed=1, body="chunk me\n" * 300)
        smtp.bdat_transaction(ALICE, [BOB], msg, "lab bdat 1", chunk=1200)
        msg = make_message("lab bdat 2", ALICE, [CAROL], seed=2)
        smtp.bdat_transaction(ALICE, [CAROL], msg, "lab bdat 2", chunk=len(msg), zero_last=True)
        msg = make_message("lab bdat 3", ALICE, [DAVE], seed=3)
        smtp.bdat_transaction(ALICE, [DAVE], msg, "lab bdat 3", chunk=len(msg), pipelined=True)
        smtp.quit()

    smtp = session(body)
    run.sessions.append(smtp.session())
    run.finish(description=doc(bdat_chunking), absent=absent())


@scenario("ipv6")
def ipv6(run: Run) -> None:
    """one short mail to Postfix on port 25 over IPv6, no faults"""
    run.network(Topology(ipv6=True))
    run.start_postfix()
    run.capture()
    smtp = session(simple_mail("lab ipv6 delivery"), host=SERVER_IP6)
    run.sessions.append(smtp.session())
    run.finish(description=doc(ipv6), absent=absent())


# -- AUTH and TLS ---------------------------------------------------------------------------------
def submission(pf: Postfix, port: int = 587, tls: str = "may", auth_only: str = "no") -> None:
    pf.service(
        port,
        f"smtpd_tls_security_level={tls}",
        "smtpd_sasl_auth_enable=yes",
        f"smtpd_tls_auth_only={auth_only}",
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination",
    )


def swaks_session(run: Run, port: int, source_port: int, *args: str) -> dict:
    """Run swaks in the client namespace; its transcript becomes a truth session."""
    proc = subprocess.run(
        in_ns(CLIENT, "swaks", "--server", SERVER_IP, "--port", str(port),
              "--local-interface", CLIENT_IP, "--local-port", str(source_port),
              "--helo", HELO, "--timeout", "30", *args),
        capture_output=True, text=True,
    )  # fmt: skip
    (run.work / f"swaks-{source_port}.txt").write_text(proc.stdout + proc.stderr)
    steps, body = parse_swaks(proc.stdout)
    return {"steps": steps, "body": body, "client": f"{CLIENT_IP}:{source_port}"}


@scenario("auth-plain-clear")
def auth_plain_clear(run: Run) -> None:
    """AUTH in clear text on port 587 (no TLS offered): AUTH PLAIN with smtplib, AUTH LOGIN with
    swaks, both delivering a mail; then a third session whose AUTH PLAIN fails with 535"""
    run.network()
    run.start_postfix(lambda pf: submission(pf, tls="none"))
    run.capture()
    wrong = "not-the-password"

    def plain(password: str, subject: str):
        def body(smtp: LabSMTP) -> None:
            smtp.ehlo()
            smtp.user, smtp.password = USERNAME, password
            try:
                smtp.auth("PLAIN", smtp.auth_plain)
            except smtplib.SMTPAuthenticationError:
                smtp.quit()
                return
            msg = make_message(subject, ALICE, [BOB])
            smtp.transaction(ALICE, [BOB], msg, subject)
            smtp.quit()

        return body

    s1 = session(plain(PASSWORD, "lab auth plain"), port=587)
    run.sessions.append(s1.session(auth={"mechanism": "PLAIN", "username": USERNAME, "code": 235}))

    msg = make_message("lab auth login", ALICE, [BOB], seed=2)
    # swaks ends the data with CRLF . CRLF itself: give it the message without its last CRLF.
    (run.work / "swaks-message.eml").write_bytes(msg[:-2])
    sw = swaks_session(
        run, 587, 40587, "--from", ALICE, "--to", BOB, "--auth", "LOGIN",
        "--auth-user", USERNAME, "--auth-password", PASSWORD,
        "--data", "@" + str(run.work / "swaks-message.eml"),
    )  # fmt: skip
    queue = next(s["reply_text"] for s in sw["steps"] if s["command"] == ".")
    assert sum(len(line) + 2 for line in sw["body"]) == len(msg), "swaks changed the message"
    run.sessions.append(
        {
            "client": sw["client"],
            "server": f"{SERVER_IP}:587",
            "client_software": "swaks",
            "tls": None,
            "tls_version": None,
            "helo": HELO,
            "dialogue": sw["steps"],
            "transactions": [
                {
                    "mail_from": ALICE,
                    "rcpt_to": [{"address": BOB, "code": 250}],
                    "subject": "lab auth login",
                    "size": len(msg),
                    "code": 250,
                    "queue_id": queue.rsplit(" ", 1)[-1],
                }
            ],
            "reset_by": None,
            "outcome": "delivered",
            "outcome_without_keys": None,
            "last_reply": sw["steps"][-1]["reply"],
            "auth": {"mechanism": "LOGIN", "username": USERNAME, "code": 235},
        }
    )
    s3 = session(plain(wrong, "lab auth refused"), port=587)
    run.sessions.append(
        s3.session(
            outcome="rejected", auth={"mechanism": "PLAIN", "username": USERNAME, "code": 535}
        )
    )
    run.finish(
        description=doc(auth_plain_clear),
        credentials={**CREDENTIALS, "failed_password": wrong},
        expected=["auth-failed"],
        absent=absent("auth-failed"),
    )


def tls_scenario(
    run: Run,
    description: str,
    port: int,
    ctx_args: dict,
    implicit: bool = False,
    auth: bool = False,
    configure=None,
) -> LabSMTP:
    keylog = run.out / f"{run.name}.keylog"
    keylog.unlink(missing_ok=True)
    run.network()
    run.start_postfix(configure)
    run.capture()
    ctx = client_context(keylog=str(keylog), **ctx_args)

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        if not implicit:
            smtp.starttls(ctx)
            smtp.ehlo()
        if auth:
            smtp.login(USERNAME, PASSWORD)
        msg = make_message(f"lab {run.name}", ALICE, [BOB])
        smtp.transaction(ALICE, [BOB], msg, f"lab {run.name}")
        smtp.quit()

    smtp = session(body, port=port, implicit_tls=ctx if implicit else None)
    extra = {"auth": {"mechanism": "PLAIN", "username": USERNAME, "code": 235}} if auth else {}
    run.sessions.append(smtp.session(**extra))
    run.finish(
        description=description,
        keylog=keylog.name,
        credentials=CREDENTIALS if auth else None,
        absent=absent(),
        notes="After 221 the client closes its TLS socket with the server's close_notify "
        "unread, so its kernel answers with a RST: normal for smtplib, not a fault.",
    )
    return smtp


@scenario("starttls-auth-587")
def starttls_auth_587(run: Run) -> None:
    """submission on port 587: EHLO, STARTTLS (TLS 1.3), EHLO, AUTH PLAIN, one mail; the client's
    TLS key log is beside the capture"""
    tls_scenario(
        run,
        doc(starttls_auth_587),
        587,
        {},
        auth=True,
        configure=lambda pf: submission(pf, tls="encrypt", auth_only="yes"),
    )


@scenario("starttls-25")
def starttls_25(run: Run) -> None:
    """STARTTLS on port 25 with the client capped at TLS 1.2, one mail; key log beside it"""
    tls_scenario(run, doc(starttls_25), 25, {"maximum": TLS12})


@scenario("smtps-465")
def smtps_465(run: Run) -> None:
    """implicit TLS (TLS 1.3) on port 465, one mail; key log beside it"""

    def configure(pf: Postfix) -> None:
        pf.service("smtp")
        pf.service(465, "smtpd_tls_wrappermode=yes", "smtpd_tls_security_level=encrypt")

    tls_scenario(run, doc(smtps_465), 465, {"minimum": TLS13}, implicit=True, configure=configure)


@scenario("tls-version-mismatch")
def tls_version_mismatch(run: Run) -> None:
    """STARTTLS handshake failure: Postfix capped at TLS 1.2, the client insists on TLS 1.3; the
    server answers the ClientHello with a protocol_version alert"""
    keylog = run.out / f"{run.name}.keylog"
    keylog.unlink(missing_ok=True)
    run.network()
    run.start_postfix(
        lambda pf: pf.main.update(
            smtpd_tls_protocols=">=TLSv1.2, <=TLSv1.2",
            smtpd_tls_mandatory_protocols=">=TLSv1.2, <=TLSv1.2",
        )
    )
    run.capture()
    ctx = client_context(minimum=TLS13, keylog=str(keylog))

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        smtp.starttls(ctx)

    smtp = session(body)
    run.sessions.append(smtp.session(tls_error=smtp.exception))
    run.finish(
        description=doc(tls_version_mismatch),
        fault="server limited to TLS 1.2 (smtpd_tls_protocols), client limited to TLS 1.3",
        expected=["tls-handshake-failed"],
        absent=absent("tls-handshake-failed", "incomplete-session"),
    )
    keylog.unlink(missing_ok=True)  # no handshake, no keys


# -- replies -------------------------------------------------------------------------------------
@scenario("greylisting")
def greylisting(run: Run) -> None:
    """postgrey greylists the first attempt (RCPT answered 451 4.7.1); the client retries after the
    greylist delay in a second session and the mail is delivered"""
    run.network()
    grey = Postgrey(run.lab, run.work, delay=5)
    grey.start()
    run.extra_stops.append(grey.stop)
    run.start_postfix(
        lambda pf: pf.main.update(
            smtpd_recipient_restrictions="reject_unauth_destination, "
            "check_policy_service inet:127.0.0.1:10023"
        )
    )
    run.capture()
    for attempt in (1, 2):
        smtp = session(simple_mail("lab greylisting", seed=7))
        run.sessions.append(smtp.session())
        if attempt == 1:
            time.sleep(7)
    run.finish(
        description=doc(greylisting),
        fault="postgrey policy service with a 5-second greylisting delay",
        expected=["soft-bounce"],
        absent=absent("soft-bounce"),
    )


@scenario("size-exceeded")
def size_exceeded(run: Run) -> None:
    """message_size_limit 20000: a MAIL FROM declaring SIZE=50000 is refused 552 5.3.4; a second
    session sends a 40 KB message without SIZE and gets 552 5.3.4 after the end of data"""
    run.network()
    run.start_postfix(lambda pf: pf.main.update(message_size_limit="20000"))
    run.capture()
    big = make_message("lab size exceeded", ALICE, [BOB], attachment=30000)

    def declared(smtp: LabSMTP) -> None:
        smtp.ehlo()
        assert smtp.has_extn("size")
        smtp.transaction(ALICE, [BOB], big, "lab size exceeded", mail_options=("SIZE=50000",))
        smtp.quit()

    def undeclared(smtp: LabSMTP) -> None:
        smtp.ehlo()
        smtp.transaction(ALICE, [BOB], big, "lab size exceeded")
        smtp.quit()

    for body in (declared, undeclared):
        run.sessions.append(session(body).session())
    run.finish(
        description=doc(size_exceeded),
        fault="Postfix message_size_limit = 20000",
        expected=["size-exceeded"],
        absent=absent("size-exceeded", "hard-bounce"),
    )


@scenario("tarpit")
def tarpit(run: Run) -> None:
    """a tarpitting Postfix: 'smtpd_client_restrictions = sleep 15' with smtpd_delay_reject = no
    holds the greeting back 15 seconds; the mail is then delivered"""
    run.network()
    run.start_postfix(
        lambda pf: pf.main.update(smtpd_delay_reject="no", smtpd_client_restrictions="sleep 15")
    )
    run.capture()
    smtp = session(simple_mail("lab tarpit"), timeout=60)
    run.sessions.append(smtp.session(greeting_delay_s=15))
    run.finish(
        description=doc(tarpit),
        fault="Postfix sleeps 15 s before its 220 greeting",
        expected=["slow-server"],
        absent=absent("slow-server"),
    )


@scenario("server-timeout")
def server_timeout(run: Run) -> None:
    """Postfix closes an idle client: smtpd_timeout 10 s; the client says EHLO, then nothing, and
    receives '421 4.4.2 ... Error: timeout exceeded' before the server closes"""
    run.network()
    run.start_postfix(lambda pf: pf.main.update(smtpd_timeout="10s"))
    run.capture()

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        time.sleep(13)
        smtp.getreply()  # the unsolicited 421
        smtp.close()

    smtp = session(body)
    run.sessions.append(smtp.session(outcome="timeout"))
    run.finish(
        description=doc(server_timeout),
        fault="Postfix smtpd_timeout = 10s; the client stays silent after EHLO",
        expected=["server-timeout"],
        absent=absent("server-timeout", "soft-bounce", "incomplete-session"),
    )


@scenario("retry-storm")
def retry_storm(run: Run) -> None:
    """one client reconnecting 240 times in about a minute to a Postfix that greets it with
    421 4.3.2 (client access map, smtpd_delay_reject = no) and disconnects"""
    run.network()

    def configure(pf: Postfix) -> None:
        pf.files["client_access"] = f"{CLIENT_IP} 421 4.3.2 lab: service unavailable\n"
        pf.main.update(
            smtpd_delay_reject="no",
            smtpd_client_restrictions=f"check_client_access texthash:{pf.conf}/client_access",
        )

    run.start_postfix(configure)
    run.capture()
    for i in range(240):
        smtp = session(simple_mail("lab retry storm", seed=i), source=(CLIENT_IP, 41000 + i))
        run.sessions.append(smtp.session())
        time.sleep(0.2)
    run.finish(
        description=doc(retry_storm),
        fault="Postfix rejects the client with 421 4.3.2 at connection time",
        expected=["retry-storm", "soft-bounce"],
        absent=absent("retry-storm", "soft-bounce", "incomplete-session"),
    )


# -- connection failures -----------------------------------------------------------------------
@scenario("connect-refused")
def connect_refused(run: Run) -> None:
    """three attempts to connect to a closed port 25 (nothing listens): each SYN answered RST/ACK"""
    run.network()
    run.capture()
    for i in range(3):
        smtp = session(simple_mail("never sent"), source=(CLIENT_IP, 42000 + i))
        run.sessions.append(smtp.session())
        time.sleep(1)
    run.finish(
        description=doc(connect_refused),
        server_software=None,
        fault="no server listens on 10.77.2.2:25",
        expected=["connect-refused"],
        absent=absent("connect-refused"),
    )


@scenario("connect-timeout")
def connect_timeout(run: Run) -> None:
    """a firewall on the router drops SYNs to port 25: the client's SYN is retransmitted until the
    kernel gives up (tcp_syn_retries = 3, about 15 s)"""
    run.network()
    run.start_postfix()
    run.lab.iptables(ROUTER, "-A", "FORWARD", "-p", "tcp", "--dport", "25", "--syn", "-j", "DROP")
    run.capture()
    smtp = session(simple_mail("never sent"), source=(CLIENT_IP, 43000), timeout=60)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(connect_timeout),
        fault="iptables DROP of TCP SYN to port 25 in the router's FORWARD chain",
        expected=["connect-failed"],
        absent=absent("connect-failed", "retransmissions"),  # the SYN is retransmitted
    )


# -- path MTU ------------------------------------------------------------------------------------
BIG = 200_000  # attachment bytes (about 270 KB once base64-encoded)


def big_mail(subject: str, seed: int = 3):
    return simple_mail(subject, attachment=BIG, seed=seed)


@scenario("mtu-blackhole")
def mtu_blackhole(run: Run) -> None:
    """path-MTU black hole: 1500-byte links at both ends, 1400 on the router-core link, the
    router's ICMP fragmentation-needed dropped. A short mail passes; a mail with a 200 KB
    attachment stalls (full-size segments retransmitted, never acknowledged) until the client's
    kernel gives up; Postfix later times out and its 421 is answered with a RST"""
    run.network(Topology(middle_mtu=1400))
    run.lab.iptables(
        ROUTER, "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"
    )
    run.start_postfix(lambda pf: pf.main.update(smtpd_timeout="45s"))
    run.capture()
    run.capture(SERVER)
    run.sessions.append(session(simple_mail("lab short mail")).session())
    smtp = session(big_mail("lab large mail"), timeout=90)
    time.sleep(25)  # Postfix's smtpd_timeout fires, its 421 meets the client's RST
    assert "timeout after DATA" in run.postfix.maillog.read_text()
    run.sessions.append(
        smtp.session(reset_by="client", client_error=smtp.exception, late_replies=[421])
    )
    run.finish(
        description=doc(mtu_blackhole),
        fault="router-core link MTU 1400, ICMP fragmentation-needed dropped by iptables OUTPUT "
        "on the router, client tcp_mtu_probing = 0",
        expected=["mtu-blackhole"],
        absent=absent("mtu-blackhole", "retransmissions", "server-timeout", "reset",
                      "client-timeout", "incomplete-session"),
        path_mtu=1400,
    )  # fmt: skip


@scenario("mtu-healthy")
def mtu_healthy(run: Run) -> None:
    """the working twin of mtu-blackhole: the same short mail and the same mail with a 200 KB
    attachment over a path that is 1500 bytes end to end"""
    run.network()
    run.start_postfix()
    run.capture()
    run.sessions.append(session(simple_mail("lab short mail")).session())
    run.sessions.append(session(big_mail("lab large mail"), timeout=90).session())
    run.finish(description=doc(mtu_healthy), absent=absent())


@scenario("pmtud-working")
def pmtud_working(run: Run) -> None:
    """path-MTU discovery that works: 1400 on the router-core link, the router's ICMP
    fragmentation-needed (next-hop MTU 1400) reaches the client, which resends in smaller
    segments; the 200 KB mail is delivered"""
    run.network(Topology(middle_mtu=1400))
    run.start_postfix()
    run.capture()
    run.sessions.append(session(big_mail("lab pmtud"), timeout=90).session())
    run.finish(
        description=doc(pmtud_working),
        fault="router-core link MTU 1400 (ICMP allowed)",
        expected=["icmp-frag-needed"],
        absent=absent("retransmissions"),  # the too-big segments are resent smaller
        path_mtu=1400,
    )


@scenario("ip-fragmentation")
def ip_fragmentation(run: Run) -> None:
    """the client does not set DF (net.ipv4.ip_no_pmtu_disc = 1), so the router fragments its
    1500-byte packets onto the 1400-byte router-core link; the main capture is at the server,
    where the fragments arrive; the client-side capture shows the unfragmented packets"""
    run.network(Topology(middle_mtu=1400, client_sysctls={"net.ipv4.ip_no_pmtu_disc": "1"}))
    run.start_postfix()
    run.main_point = SERVER
    run.capture(SERVER)
    run.capture()
    run.sessions.append(session(big_mail("lab ip fragments"), timeout=90).session())
    run.finish(
        description=doc(ip_fragmentation),
        fault="router-core link MTU 1400; client sends without DF, router fragments",
        expected=["ip-fragmentation"],
        absent=absent("ip-fragmentation"),
        path_mtu=1400,
    )


# -- transport faults ----------------------------------------------------------------------------
TRIGGER = "X-Lab-Trigger: reset-me"


@scenario("rst-in-data")
def rst_in_data(run: Run) -> None:
    """a firewall on the router injects a TCP RST towards the client in the middle of DATA
    (iptables string match on a body line, REJECT --reject-with tcp-reset). The forged RST
    (source 10.77.2.2, TTL 64 where the server's packets arrive with 62) is seen only at the
    client; the server sees the client's own RST when its next ACK reaches the dead socket"""
    run.network()
    run.lab.iptables(
        ROUTER, "-A", "FORWARD", "-p", "tcp", "--dport", "25", "-m", "string", "--algo", "bm",
        "--string", TRIGGER, "-j", "REJECT", "--reject-with", "tcp-reset",
    )  # fmt: skip
    run.start_postfix(lambda pf: pf.main.update(smtpd_timeout="20s"))
    run.capture()
    run.capture(SERVER)
    body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 300 + TRIGGER + "\n"
    body += "after the trigger\n" * 50
    smtp = session(simple_mail("lab rst in data", body=body))
    run.sessions.append(smtp.session(reset_by="middlebox", client_error=smtp.exception))
    time.sleep(3)
    run.finish(
        description=doc(rst_in_data),
        fault="iptables on the router: -m string --string 'X-Lab-Trigger' -j REJECT "
        "--reject-with tcp-reset (the RST has the router's TTL, 64, not the server's 62)",
        expected=["middlebox-reset"],
        absent=absent("middlebox-reset", "reset", "server-timeout", "incomplete-session"),
    )


@scenario("loss")
def loss(run: Run) -> None:
    """7 % random packet loss in both directions on the router (iptables statistic match, as
    sch_netem is not in this kernel); a mail with a 100 KB attachment is delivered with
    retransmissions"""
    run.network()
    run.lab.iptables(
        ROUTER, "-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", "0.07",
        "-j", "DROP",
    )  # fmt: skip
    run.start_postfix()
    run.capture()
    smtp = session(simple_mail("lab loss", attachment=100_000), timeout=90)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(loss),
        fault="7 % random drop in the router's FORWARD chain",
        expected=["retransmissions"],
        absent=absent("retransmissions"),
    )


@scenario("zero-window")
def zero_window(run: Run) -> None:
    """a receiver that stops reading: a small Python server with a 2 KB receive buffer stops
    reading 4 KB into DATA for 15 s, so the client sees zero windows and probes; then it reads
    the rest and accepts the message"""
    run.network()
    python_server(run, SERVER, "zero-window", "25", "15")
    run.capture()
    smtp = session(simple_mail("lab zero window", attachment=100_000), timeout=60)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(zero_window),
        server_software="python-lab-server",
        fault="server stops reading for 15 s (SO_RCVBUF 2048)",
        expected=["zero-window"],
        absent=absent("zero-window", "slow-server", "retransmissions"),
    )


@scenario("no-eod-reply")
def no_eod_reply(run: Run) -> None:
    """a server that never answers the end of data: the client gives up after 20 s and closes"""
    run.network()
    python_server(run, SERVER, "no-eod-reply", "25")
    run.capture()
    smtp = session(simple_mail("lab no reply"), timeout=20)
    run.sessions.append(smtp.session(client_error=smtp.exception))
    run.finish(
        description=doc(no_eod_reply),
        server_software="python-lab-server",
        fault="the server reads the whole message and never replies to '.'",
        expected=["client-timeout"],
        absent=absent("client-timeout", "slow-server", "incomplete-session"),
    )


@scenario("smtp-inspection")
def smtp_inspection(run: Run) -> None:
    """an SMTP-inspection firewall (a transparent proxy on the router, Cisco ASA style) masks the
    banner with asterisks and unknown EHLO keywords with X's (STARTTLS and CHUNKING become
    XXXXXXXA), so the client never starts TLS; the mail is delivered in clear"""
    run.network()
    run.lab.iptables(
        ROUTER, "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "25", "-j", "REDIRECT",
        "--to-ports", "10025",
    )  # fmt: skip
    python_server(run, ROUTER, "inspect-proxy", "10025")
    run.start_postfix()
    run.capture()

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        msg = make_message("lab inspection", ALICE, [BOB])
        smtp.transaction(ALICE, [BOB], msg, "lab inspection")
        smtp.quit()

    run.sessions.append(session(body).session())
    run.finish(
        description=doc(smtp_inspection),
        fault="transparent SMTP proxy on the router (iptables REDIRECT to servers.py "
        "inspect-proxy); masks banner and EHLO keywords",
        expected=["smtp-inspection"],
        absent=absent("smtp-inspection"),
    )


@scenario("capture-truncated")
def capture_truncated(run: Run) -> None:
    """a clean delivery captured with a 96-byte snaplen (tcpdump -s 96): headers only"""
    run.network()
    run.start_postfix()
    run.capture(snaplen=96)
    run.sessions.append(session(simple_mail("lab snaplen")).session())
    run.finish(
        description=doc(capture_truncated),
        fault="capture snaplen 96 bytes",
        expected=["capture-truncated"],
        absent=absent("capture-truncated", "incomplete-session"),
        snaplen=96,
    )


# -- a second MTA --------------------------------------------------------------------------------
@scenario("clean-delivery-exim")
def clean_delivery_exim(run: Run) -> None:
    """one short mail to Exim 4.96 (Debian's exim4-daemon-light) on port 25, no faults; its
    mainlog is the maillog"""
    run.network()
    exim = Exim(run.lab, run.work)
    run.postfix = exim  # the harness only needs maillog, settle() and stop()
    exim.start()
    run.capture()
    run.sessions.append(session(simple_mail("lab clean delivery exim")).session())
    run.finish(description=doc(clean_delivery_exim), server_software="Exim", absent=absent())


# -- issue 17: a dying server, a volley of forged resets, a window that closes for a moment ------
def smtpd_pid(postfix: Postfix) -> int:
    """The PID of the one smtpd child of this lab's Postfix master (its session process)."""
    master = postfix.proc.pid
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        if ppid == master and comm == "smtpd":
            found.append(int(stat.parent.name))
    if len(found) != 1:
        raise RuntimeError(f"expected one smtpd under master {master}, found {found}")
    return found[0]


@scenario("server-killed-in-data")
def server_killed_in_data(run: Run) -> None:
    """the server's smtpd dies in the middle of DATA: the client sends a 60 KB attachment in
    8 KB pieces a third of a second apart; after the third piece the lab kills Postfix's smtpd
    (SIGKILL, by its PID) while its receive queue is empty, so its kernel sends a FIN; the
    client's next piece is answered by RSTs (genuine TTL) and its send fails"""
    run.network()
    run.start_postfix()
    run.capture()
    run.capture(SERVER)
    killed: list[int] = []

    def on_chunk(i: int) -> None:
        if i == 3:
            pid = smtpd_pid(run.postfix)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            time.sleep(0.5)  # the FIN reaches the client, which does not read it

    smtp = LabSMTP((SERVER_IP, 25))
    smtp.pacing, smtp.on_chunk = (8192, 0.33), on_chunk
    with netns(CLIENT):
        run_session(smtp, simple_mail("lab server killed", attachment=60_000))
    assert killed, "the client never reached the fourth piece"
    run.sessions.append(smtp.session(reset_by="server", client_error=smtp.exception))
    time.sleep(1)
    if f"pid {killed[0]} killed by signal 9" not in run.postfix.maillog.read_text():
        raise RuntimeError("Postfix's master did not log the killed smtpd")
    run.finish(
        description=doc(server_killed_in_data),
        fault=f"SIGKILL to the session's smtpd (pid {killed[0]}) during DATA",
        expected=["reset"],
        expected_severity={"reset": "error"},
        absent=absent("reset", "incomplete-session"),
    )


FORGE = "X-Lab-Trigger: forge-resets"


@scenario("forged-rst-volley")
def forged_rst_volley(run: Run) -> None:
    """a firewall on the router forges a RST in the server's name for every client segment it
    drops once it has seen a body line (iptables string match marks the connection, CONNMARK;
    every later client segment is REJECTed with tcp-reset): the client's segments in flight
    each draw a RST, all with the router's TTL 64 where the server's packets arrive with 62"""
    run.network()
    for rule in (
        ["-m", "connmark", "--mark", "1", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-m", "string", "--algo", "bm", "--string", FORGE, "-j", "CONNMARK", "--set-mark", "1"],
        ["-m", "connmark", "--mark", "1", "-j", "REJECT", "--reject-with", "tcp-reset"],
    ):
        run.lab.iptables(ROUTER, "-A", "FORWARD", "-p", "tcp", "--dport", "25", *rule)
    run.start_postfix(lambda pf: pf.main.update(smtpd_timeout="30s"))
    run.capture()
    run.capture(SERVER)
    body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 40 + FORGE + "\n"
    body += "after the trigger, still in flight\n" * 600
    # The client writes the message in 16 KB pieces: the first one (with the trigger) is in
    # flight when the RSTs come back, the second write fails, so the end of data is never
    # handed to the socket and the truth says exactly how much the socket took.
    smtp = LabSMTP((SERVER_IP, 25))
    smtp.pacing = (16384, 0.2)
    with netns(CLIENT):
        run_session(smtp, simple_mail("lab forged rst volley", body=body))
    run.sessions.append(smtp.session(reset_by="middlebox", client_error=smtp.exception))
    time.sleep(2)
    run.finish(
        description=doc(forged_rst_volley),
        fault="iptables on the router: a string match on 'X-Lab-Trigger: forge-resets' sets "
        "connmark 1; every client segment of a marked connection is REJECTed with tcp-reset "
        "(each RST has the router's TTL, 64, not the server's 62)",
        expected=["middlebox-reset"],
        absent=absent("middlebox-reset", "reset", "server-timeout", "incomplete-session"),
    )
    out = subprocess.run(
        ["tshark", "-n", "-r", str(run.out / f"{run.name}.pcap"), "-Y",
         f"ip.src=={SERVER_IP} && tcp.flags.reset==1", "-T", "fields", "-e", "ip.ttl"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if len(out) < 2 or set(out) != {"64"}:
        raise RuntimeError(f"forged RSTs seen at the client with TTLs {out}")


@scenario("zero-window-brief")
def zero_window_brief(run: Run) -> None:
    """a receive buffer that fills for a moment: a small Python server with a 16 KB receive
    buffer (SO_RCVBUF) stops reading for 0.1 s, 4 KB into DATA, so its window closes for less
    than the client's persist timer (no probe); then it reads the rest and accepts the
    100 KB message. The client's tail-loss probe is off (tcp_early_retrans = 0): at the lab's
    0.1 ms RTT its 10 ms timer fires while the server delays its ACK, which a real path's
    RTT would not do"""
    run.network(Topology(client_sysctls={"net.ipv4.tcp_early_retrans": "0"}))
    python_server(run, SERVER, "zero-window", "25", "0.1", "16384")
    run.capture()
    smtp = session(simple_mail("lab zero window brief", attachment=100_000), timeout=60)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(zero_window_brief),
        server_software="python-lab-server",
        fault="server stops reading for 0.1 s (SO_RCVBUF 16384)",
        expected=["zero-window"],
        expected_severity={"zero-window": "info"},
        absent=absent("zero-window", "slow-server", "retransmissions"),
    )


@scenario("bare-lf-dot")
def bare_lf_dot(run: Run) -> None:
    """a client that ends its lines with a bare LF (as a script writing to a socket does): the
    message and its end of data '.\\n' have no CR; Postfix (smtpd_forbid_bare_newline = no,
    Debian's default) accepts them and queues the mail; then QUIT"""
    run.network()
    run.start_postfix()
    run.capture()
    subject = "lab bare LF"

    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        msg = make_message(subject, ALICE, [BOB], body="one line\nanother line\n" * 20)
        msg = msg.replace(b"\r\n", b"\n")
        tx = {"mail_from": ALICE, "rcpt_to": [], "subject": subject, "size": len(msg),
              "code": None, "queue_id": None, "line_ending": "LF"}  # fmt: skip
        smtp.transactions.append(tx)
        smtp.mail(ALICE)
        tx["rcpt_to"].append({"address": BOB, "code": smtp.rcpt(BOB)[0]})
        smtp.putcmd("data")
        code, _ = smtp.getreply()
        assert code == 354, code
        smtp.send(msg + b".\n")
        smtp.expect(".")
        code, text = smtp.getreply()
        smtp._finish(tx, code, text)
        smtp.quit()

    smtp = session(body)
    run.sessions.append(smtp.session())
    assert smtp.transactions[0]["code"] == 250, smtp.steps
    run.finish(
        description=doc(bare_lf_dot),
        fault="the client's message lines and end of data use a bare LF",
        absent=absent(),
        notes="tshark 4.0 waits for CRLF.CRLF: it never sees this end of data and shows "
        "QUIT as message text.",
    )
