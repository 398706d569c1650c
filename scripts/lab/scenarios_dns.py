"""DNS scenarios: a real resolver (Debian's unbound) in the core namespace, 10.77.2.1:53,
serving the lab's zones, some of them broken on purpose.

The sending side resolves like an MTA, with dig (bind9-dnsutils) against that resolver: the
recipient domain's MX, then its hosts' A records (the domain's own A when it has no MX,
RFC 5321 5.1), and connects to what it found, or gives up as an MTA would. The receiving side
is Postfix with its peer-name lookup on (the PTR of its client, then the A of that name,
before the greeting), resolving through unbound too. The truth records what dig told the
client (status and answers): never derived from the capture.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

from client import make_message
from harness import Run
from labnet import CLIENT, SERVER, in_ns
from scenarios import BOB, absent, doc, scenario, session, simple_mail

HERE = Path(__file__).resolve().parent
RESOLVER = "10.77.2.1"
RESOLVER_NS = "core"
SLOW_AUTH_PORT = 5300
SLOW_PTR_DELAY_S = 2.5
SILENT_PORT = 5399

ZONES = """\
  local-zone: "lab.test." static
  local-data: "lab.test. SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60"
  local-data: "server.lab.test. MX 10 mx.lab.test."
  local-data: "mx.lab.test. A 10.77.2.2"
  local-data: "client.lab.test. A 10.77.1.2"
  local-data: "plain.lab.test. A 10.77.2.2"
  local-data: "nullmx.lab.test. MX 0 ."
  local-data: "moved.lab.test. MX 10 mx.moved.lab.test."
  local-data: "mx.moved.lab.test. A 10.77.2.3"
  local-zone: "refused.test." always_refuse
  local-zone: "10.in-addr.arpa." nodefault
  local-zone: "test." nodefault
stub-zone:
  name: "broken.test."
  stub-addr: 127.0.0.1@5399
stub-zone:
  name: "silent.test."
  stub-addr: 10.77.2.1@{silent_port}
stub-zone:
  name: "1.77.10.in-addr.arpa."
  stub-addr: 10.77.2.1@{slow_port}
"""

UNBOUND_CONF = """\
server:
  interface: {resolver}
  port: 53
  access-control: 10.77.0.0/16 allow
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{work}"
  pidfile: ""
  use-syslog: no
  logfile: "{work}/unbound.log"
  verbosity: 1
  num-threads: 1
  do-ip6: no
  module-config: "iterator"
  qname-minimisation: no
  infra-cache-min-rtt: 4000
  discard-timeout: 0
"""


def start_unbound(run: Run) -> None:
    """unbound in the core namespace; stopped by PID when the scenario ends.

    ``infra-cache-min-rtt`` lets it wait 4 s for an authority before trying again, and
    ``discard-timeout: 0`` keeps it from dropping an answer that took over 1.9 s (the default
    Debian's security update brought): the slow reverse zone must come through late, not never.
    """
    conf = run.work / "unbound.conf"
    text = UNBOUND_CONF.format(resolver=RESOLVER, work=run.work)
    conf.write_text(text + ZONES.format(slow_port=SLOW_AUTH_PORT, silent_port=SILENT_PORT))
    subprocess.run(["unbound-checkconf", str(conf)], check=True, capture_output=True)
    logf = (run.work / "unbound.out").open("w")
    proc = run.lab.spawn(
        RESOLVER_NS, ["unbound", "-d", "-c", str(conf)], "unbound", stdout=logf, stderr=logf
    )
    run.extra_stops.append(lambda: run.lab.stop(proc))
    time.sleep(1)
    if proc.poll() is not None:
        raise RuntimeError((run.work / "unbound.out").read_text())


def start_slow_authority(run: Run) -> None:
    """The reverse zone's authoritative server, answering after SLOW_PTR_DELAY_S (servers.py)."""
    logf = (run.work / "servers-slow-dns.log").open("w")
    proc = run.lab.spawn(
        RESOLVER_NS,
        [
            sys.executable,
            str(HERE / "servers.py"),
            "slow-dns",
            f"{RESOLVER}:{SLOW_AUTH_PORT}",
            str(SLOW_PTR_DELAY_S),
        ],
        "servers.py slow-dns",
        start_new_session=True,
        stdout=logf,
        stderr=logf,
    )
    run.extra_stops.append(lambda: run.lab.stop(proc))
    time.sleep(1)
    if proc.poll() is not None:
        raise RuntimeError((run.work / "servers-slow-dns.log").read_text())


HEADER = re.compile(r"status: (\w+), id: (\d+)")


def dig(qtype: str, name: str, tries: int = 1) -> dict:
    """One lookup by dig in the client namespace (5 s a try), as the truth records it."""
    argv = in_ns(
        CLIENT, "dig", f"@{RESOLVER}", "+time=5", f"+tries={tries}", "+noedns", qtype, name
    )
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    found = HEADER.search(out)
    answers = []
    section = False
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            section = True
        elif section and not line.strip():
            section = False
        elif section and not line.startswith(";"):
            fields = line.split()
            if len(fields) >= 5 and fields[3] == qtype:
                answers.append(" ".join(fields[4:]))
    return {
        "name": name,
        "type": qtype,
        "status": found.group(1) if found else "timeout",
        "id": int(found.group(2)) if found else None,
        "answers": answers,
    }


def resolve_mx(domain: str, lookups: list[dict], tries: int = 1) -> str | None:
    """What an MTA does before it connects: MX, then the hosts' A (or the domain's own A
    when it has no MX); the address to connect to, or None (the MTA gives up)."""
    mx = dig("MX", domain, tries)
    lookups.append(mx)
    if mx["status"] != "NOERROR":
        return None
    hosts = [a.split()[1].rstrip(".") for a in mx["answers"]]
    if hosts == [""]:
        return None  # null MX (RFC 7505)
    for host in hosts or [domain]:
        a = dig("A", host)
        lookups.append(a)
        if a["status"] == "NOERROR" and a["answers"]:
            return a["answers"][0]
    return None


DNS_ABSENT = [
    "dns-lookup-failed",
    "dns-timeout",
    "dns-no-mx",
    "dns-mx-mismatch",
    "dns-slow-greeting",
]


def dns_absent(*but: str) -> list[str]:
    return absent(*but) + [c for c in DNS_ABSENT if c not in but]


def deliver(run: Run, domain: str, lookups: list[dict], subject: str, to: str | None = None):
    """Resolve ``domain`` and, when that gives an address, send one mail there (or to ``to``)."""
    found = resolve_mx(domain, lookups)
    if found is None:
        return None
    smtp = session(simple_mail(subject, [f"bob@{domain}"]), host=to or found)
    run.sessions.append(smtp.session())
    return smtp


def relaying(postfix) -> None:
    """Postfix takes mail for any domain from the lab (and discards it: it never relays)."""
    postfix.main.update(smtpd_relay_restrictions="permit_mynetworks, reject_unauth_destination")


@scenario("dns-lookup-failed")
def dns_lookup_failed(run: Run) -> None:
    """MX lookups through unbound (the lab resolver, 10.77.2.1): server.lab.test resolves and one
    mail is delivered; then gone.lab.test (NXDOMAIN), broken.test (SERVFAIL: its only name
    server is an address the resolver will not query) and refused.test (REFUSED by the
    resolver's policy) fail, so the client sends nothing to them"""
    run.network()
    start_unbound(run)
    run.start_postfix()
    run.capture()
    lookups: list[dict] = []
    deliver(run, "server.lab.test", lookups, "lab dns ok")
    for domain in ("gone.lab.test", "broken.test", "refused.test"):
        assert resolve_mx(domain, lookups) is None, domain
    run.finish(
        description=doc(dns_lookup_failed),
        fault="unbound zones: gone.lab.test does not exist, broken.test's name server is unusable, "
        "refused.test is refused",
        dns=lookups,
        expected=["dns-lookup-failed"],
        absent=dns_absent("dns-lookup-failed"),
        client_software="dig + smtplib",
    )


@scenario("dns-timeout")
def dns_timeout(run: Run) -> None:
    """the name server of silent.test drops every query (iptables DROP before it), so unbound
    keeps trying and the client's MX lookup (dig, 5 s a try, 2 tries) goes unanswered: no mail
    is sent there; 15 s after the last try server.lab.test resolves at once and a mail to it is
    delivered"""
    run.network()
    run.lab.iptables(
        RESOLVER_NS, "-A", "INPUT", "-p", "udp", "--dport", str(SILENT_PORT), "-j", "DROP"
    )
    start_unbound(run)
    run.start_postfix()
    run.capture()
    lookups: list[dict] = []
    assert resolve_mx("silent.test", lookups, tries=2) is None
    time.sleep(15)
    assert deliver(run, "server.lab.test", lookups, "lab dns after a timeout") is not None
    run.finish(
        description=doc(dns_timeout),
        fault="silent.test's name server drops every query",
        dns=lookups,
        expected=["dns-timeout"],
        absent=dns_absent("dns-timeout"),
        client_software="dig + smtplib",
    )


@scenario("dns-no-mx")
def dns_no_mx(run: Run) -> None:
    """plain.lab.test has no MX (NOERROR, empty answer): the client falls back to the domain's own A
    record (RFC 5321 5.1 implicit MX) and delivers; nullmx.lab.test publishes a null MX ('MX 0 .',
    RFC 7505), so the client sends nothing"""
    run.network()
    start_unbound(run)
    run.start_postfix(relaying)
    run.capture()
    lookups: list[dict] = []
    assert deliver(run, "plain.lab.test", lookups, "lab dns implicit mx") is not None
    assert resolve_mx("nullmx.lab.test", lookups) is None
    run.finish(
        description=doc(dns_no_mx),
        fault="unbound zones: plain.lab.test has only an A record; nullmx.lab.test has MX 0 .",
        dns=lookups,
        expected=["dns-no-mx"],
        absent=dns_absent("dns-no-mx"),
        client_software="dig + smtplib",
    )


@scenario("dns-mx-mismatch")
def dns_mx_mismatch(run: Run) -> None:
    """moved.lab.test's MX is mx.moved.lab.test at 10.77.2.3, but the client connects to 10.77.2.2
    (as an /etc/hosts entry, a stale cache or a configured relay would make it) and delivers"""
    run.network()
    start_unbound(run)
    run.start_postfix(relaying)
    run.capture()
    lookups: list[dict] = []
    smtp = deliver(run, "moved.lab.test", lookups, "lab dns mismatch", to="10.77.2.2")
    assert smtp is not None
    run.finish(
        description=doc(dns_mx_mismatch),
        fault="the client ignores the MX address 10.77.2.3 and connects to 10.77.2.2",
        dns=lookups,
        expected=["dns-mx-mismatch"],
        expected_severity={"dns-mx-mismatch": "warning"},
        absent=dns_absent("dns-mx-mismatch"),
        client_software="dig + smtplib",
    )


def server_resolver(run: Run) -> None:
    """The server namespace's /etc/resolv.conf names unbound (``ip netns exec`` mounts
    /etc/netns/pcl-server/resolv.conf over it); removed when the scenario ends."""
    netns_dir = Path("/etc/netns") / f"pcl-{SERVER}"
    netns_dir.mkdir(parents=True, exist_ok=True)
    (netns_dir / "resolv.conf").write_text(f"nameserver {RESOLVER}\noptions timeout:5 attempts:1\n")

    def remove_resolv() -> None:
        (netns_dir / "resolv.conf").unlink(missing_ok=True)
        for folder in (netns_dir, netns_dir.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()

    run.extra_stops.append(remove_resolv)


@scenario("dns-sender-domain")
def dns_sender_domain(run: Run) -> None:
    """a receiving Postfix that checks senders (smtpd_sender_restrictions =
    reject_unknown_sender_domain) resolves through unbound: mail from alice@gone.lab.test, a
    domain that does not exist, is refused at MAIL FROM (450 4.1.8 Domain not found) after the
    server's MX lookup of gone.lab.test is answered NXDOMAIN; the capture is the server's"""
    run.network()
    server_resolver(run)
    start_unbound(run)
    run.start_postfix(
        lambda pf: pf.main.update(
            disable_dns_lookups="no",
            smtpd_sender_restrictions="reject_unknown_sender_domain",
        )
    )
    run.main_point = SERVER
    run.capture(SERVER)
    sender = "alice@gone.lab.test"

    def body(smtp) -> None:
        smtp.ehlo()
        msg = make_message("lab dns sender domain", sender, [BOB])
        smtp.transaction(sender, [BOB], msg, "lab dns sender domain")
        smtp.quit()

    smtp = session(body)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(dns_sender_domain),
        fault="the sender's domain gone.lab.test does not exist (NXDOMAIN from unbound)",
        expected=["dns-lookup-failed", "soft-bounce"],
        absent=dns_absent("dns-lookup-failed", "soft-bounce"),
    )


@scenario("dns-slow-ptr")
def dns_slow_ptr(run: Run) -> None:
    """a receiving Postfix with its peer-name lookup on (smtpd_peername_lookup = yes) resolves
    through unbound, whose authoritative server for the client's reverse zone answers only after
    2.5 s: the PTR lookup of 10.77.1.2 holds the greeting back; the mail is then delivered. The
    capture is the server's, on its eth0"""
    run.network()
    server_resolver(run)
    start_slow_authority(run)
    start_unbound(run)
    run.start_postfix(
        lambda pf: pf.main.update(smtpd_peername_lookup="yes", disable_dns_lookups="no")
    )
    run.main_point = SERVER
    run.capture(SERVER)
    started = time.monotonic()
    smtp = session(simple_mail("lab dns slow ptr"), timeout=60)
    run.sessions.append(smtp.session())
    run.finish(
        description=doc(dns_slow_ptr),
        fault=f"the reverse zone 1.77.10.in-addr.arpa answers after {SLOW_PTR_DELAY_S} s",
        slow_ptr_delay_s=SLOW_PTR_DELAY_S,
        session_seconds=round(time.monotonic() - started, 1),
        expected=["dns-slow-greeting"],
        absent=dns_absent("dns-slow-greeting"),
    )


__all__ = ["BOB"]
