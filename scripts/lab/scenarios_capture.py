"""Scenarios where the capture, not the network, is partial: one direction, a late start, drops,
a filter that keeps ICMP errors about connections it leaves out.

Each takes a complete capture on the same interface at the same time as its main capture
(``<name>.reference.pcap``, ``other_files["reference"]``), so what the main capture lacks is
known packet by packet. The SMTP truth still comes from the client's own transcript.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time

from client import LabSMTP, make_message, run_session
from frames import describe, missing, tcp_frames
from harness import Run
from labnet import CLIENT, CLIENT_IP, ROUTER, SERVER_IP, in_ns, netns, sh
from mta import SERVER_NAME
from scenarios import ALICE, BOB, CAROL, DAVE, absent, doc, scenario, session, simple_mail

# What a correct analysis of a partial capture may or may not say is still open (the capture
# does lack packets; the session is not all there): neither required nor forbidden here.
PARTIAL = ("capture-loss", "incomplete-session")


def first_mail(smtp: LabSMTP) -> None:
    """A mail to two recipients with a 12 KB attachment."""
    rcpt = [BOB, CAROL]
    msg = make_message("lab partial capture 1", ALICE, rcpt, attachment=12_000, seed=1)
    smtp.transaction(ALICE, rcpt, msg, "lab partial capture 1")


def piped_mail(smtp: LabSMTP) -> None:
    """A short mail to three recipients, MAIL/RCPT/DATA in one write."""
    rcpt = [BOB, CAROL, DAVE]
    msg = make_message("lab partial capture 2", ALICE, rcpt, seed=2)
    smtp.transaction(ALICE, rcpt, msg, "lab partial capture 2", pipelined=True)


def ehlo_then(*mails):
    def body(smtp: LabSMTP) -> None:
        smtp.ehlo()
        for mail in mails:
            mail(smtp)
        smtp.quit()

    return body


def two_sessions(run: Run) -> None:
    for body in (ehlo_then(first_mail), ehlo_then(piped_mail)):
        run.sessions.append(session(body).session())


def add_capture_facts(run: Run, **facts) -> None:
    """Add to the truth's ``capture`` what is known once the files are written: TCP frame
    counts of the main and the reference capture (tshark), and ``facts``."""
    main = tcp_frames(run.out / f"{run.name}.pcap")
    reference = tcp_frames(run.out / f"{run.name}.reference.pcap")
    path = run.out / f"{run.name}.truth.json"
    truth = json.loads(path.read_text())
    truth["capture"].update(captured_tcp_frames=len(main), reference_tcp_frames=len(reference))
    truth["capture"].update(facts)
    path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n")


def one_side(run: Run, description: str, direction: str, options=(), expression=None) -> None:
    """Two deliveries and a mail to an unknown recipient (RCPT refused 550, QUIT).

    The refusal is in a server-only capture (hard-bounce expected); a client-only capture shows
    only a RCPT followed by QUIT, so there a hard-bounce can be neither required nor forbidden.
    """
    run.network()
    run.start_postfix()
    run.capture(options=options, expression=expression)
    run.capture(label="reference")
    two_sessions(run)
    refused = simple_mail("lab partial capture 3", [f"nobody@{SERVER_NAME}"], seed=3)
    run.sessions.append(session(refused).session())
    tcpdump = " ".join([*options, *([expression] if expression else [])])
    expected = ["hard-bounce"] if direction == "server-only" else []
    run.finish(
        description=description,
        expected=expected,
        absent=absent(*PARTIAL, "hard-bounce"),
        capture={"direction": direction, "started": "before-session", "tcpdump": tcpdump},
    )
    sides = {f.side for f in tcp_frames(run.out / f"{run.name}.pcap")}
    if sides != {direction.removesuffix("-only")}:
        raise RuntimeError(f"{run.name}: the capture holds packets of {sides}")
    add_capture_facts(run)


@scenario("one-side-client")
def one_side_client(run: Run) -> None:
    """only the client's packets: tcpdump -Q out on the client's eth0 (what asymmetric routing
    or a one-way SPAN gives); two deliveries to Postfix, the second pipelined, then a mail to
    an unknown recipient (RCPT refused 550 5.1.1, QUIT); the complete capture taken beside it
    is the reference"""
    one_side(run, doc(one_side_client), "client-only", options=("-Q", "out"))


@scenario("one-side-server")
def one_side_server(run: Run) -> None:
    """only the server's packets: tcpdump 'src host 10.77.2.2' on the client's eth0; the same
    sessions as one-side-client (two deliveries, then RCPT refused 550 5.1.1); the complete
    capture is the reference"""
    one_side(run, doc(one_side_server), "server-only", expression=f"src host {SERVER_IP}")


@scenario("capture-after-ehlo")
def capture_after_ehlo(run: Run) -> None:
    """a capture started in the middle of a session: the client connects, reads the greeting,
    says EHLO and waits while tcpdump starts, so the first captured packet is its MAIL FROM;
    then one mail and a pipelined one in the same session, QUIT. The reference capture holds
    the whole session"""
    run.network()
    run.start_postfix()
    run.capture(label="reference")

    def start_capture(smtp: LabSMTP) -> None:
        time.sleep(0.5)  # the ACK of the EHLO reply is out
        run.capture()
        time.sleep(0.2)

    run.sessions.append(session(ehlo_then(start_capture, first_mail, piped_mail)).session())
    run.finish(
        description=doc(capture_after_ehlo),
        absent=absent(*PARTIAL),
        capture={"direction": "both", "started": "after-ehlo", "first_step": 2,
                 "handshake_captured": False},
    )  # fmt: skip
    first = tcp_frames(run.out / f"{run.name}.pcap")[0]
    if first.side != "client" or not (first.first_line() or "").upper().startswith("MAIL FROM"):
        raise RuntimeError(f"first captured frame is {first}")
    add_capture_facts(run)


@scenario("capture-after-greeting")
def capture_after_greeting(run: Run) -> None:
    """a capture started after the greeting: the client connects, reads the 220 and waits
    while tcpdump starts, so the first captured packet is its EHLO and the first reply in the
    capture is the EHLO's, not a greeting; then one mail and a pipelined one, QUIT"""
    run.network()
    run.start_postfix()
    run.capture(label="reference")

    def body(smtp: LabSMTP) -> None:
        time.sleep(0.5)  # the ACK of the greeting is out
        run.capture()
        time.sleep(0.2)
        ehlo_then(first_mail, piped_mail)(smtp)

    run.sessions.append(session(body).session())
    run.finish(
        description=doc(capture_after_greeting),
        absent=absent(*PARTIAL),
        capture={"direction": "both", "started": "after-greeting", "first_step": 1,
                 "handshake_captured": False},
    )  # fmt: skip
    first = tcp_frames(run.out / f"{run.name}.pcap")[0]
    if first.side != "client" or not (first.first_line() or "").upper().startswith("EHLO"):
        raise RuntimeError(f"first captured frame is {first}")
    add_capture_facts(run)


@scenario("capture-after-handshake")
def capture_after_handshake(run: Run) -> None:
    """a capture that misses the TCP handshake: Postfix holds its greeting back 2 s
    ('smtpd_client_restrictions = sleep 2', smtpd_delay_reject = no) and tcpdump starts once
    the client is connected, so the first captured packet is the 220 greeting; one mail, QUIT"""
    run.network()
    run.start_postfix(
        lambda pf: pf.main.update(smtpd_delay_reject="no", smtpd_client_restrictions="sleep 2")
    )
    run.capture(label="reference")
    smtp = LabSMTP((SERVER_IP, 25))
    smtp.on_connect = lambda: run.capture()
    with netns(CLIENT):
        run_session(smtp, simple_mail("lab capture after handshake", [BOB, CAROL]))
    run.sessions.append(smtp.session(greeting_delay_s=2))
    run.finish(
        description=doc(capture_after_handshake),
        fault="Postfix sleeps 2 s before its greeting; tcpdump starts after connect()",
        absent=absent(*PARTIAL, "slow-server"),
        capture={"direction": "both", "started": "after-handshake", "first_step": 0,
                 "handshake_captured": False},
    )  # fmt: skip
    first = tcp_frames(run.out / f"{run.name}.pcap")[0]
    if first.side != "server" or not (first.first_line() or "").startswith("220 "):
        raise RuntimeError(f"first captured frame is {first}")
    add_capture_facts(run)


# -- capture-side drops: a SPAN port that loses packets --------------------------------------
DROP_SHARE = 0.15


def span_port(run: Run, keep: float) -> None:
    """Mirror eth0 both ways to a veth (span0 -> mon0), each packet with probability ``keep``.

    tc's classic-BPF classifier draws a random number per packet (SKF_AD_RANDOM) and only the
    packets it matches get the mirred action: what a busy SPAN port or an overrun capture
    buffer does. The network delivers every packet; only the copy is lost.
    """
    ns = in_ns(CLIENT)
    sh(*ns, "ip", "link", "add", "span0", "type", "veth", "peer", "name", "mon0")
    for dev in ("span0", "mon0"):
        sh(*ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off",
           "rx", "off", check=False)  # fmt: skip
        sh(*ns, "ip", "link", "set", dev, "up")
    threshold = int(keep * 2**32)
    # ld rand; jgt threshold -> no match; ret match; ret no match
    program = f"4,32 0 0 {0xFFFFF000 + 56},37 1 0 {threshold},6 0 0 65535,6 0 0 0"
    sh(*ns, "tc", "qdisc", "add", "dev", "eth0", "clsact")
    for hook in ("ingress", "egress"):
        sh(*ns, "tc", "filter", "add", "dev", "eth0", hook, "bpf", "bytecode", program,
           "action", "mirred", "egress", "mirror", "dev", "span0")  # fmt: skip


@scenario("capture-drops")
def capture_drops(run: Run) -> None:
    """a capture that loses packets the network delivered: the client's eth0 is mirrored to a
    SPAN-like veth that passes each packet with probability 0.85 (tc bpf random + mirred) and
    tcpdump listens there; three deliveries to Postfix (one with a 30 KB attachment, one
    pipelined) all succeed, the capture has holes in both directions, server replies included.
    The complete capture at eth0 is the reference"""
    run.network()
    run.start_postfix()
    span_port(run, 1 - DROP_SHARE)
    run.capture(interface="mon0")
    run.capture(label="reference")
    two_sessions(run)
    run.sessions.append(
        session(simple_mail("lab capture drops 3", [DAVE], attachment=30_000, seed=3)).session()
    )
    run.finish(
        description=doc(capture_drops),
        fault=f"capture copies dropped at random ({DROP_SHARE:.0%}) between eth0 and the capture",
        expected=["capture-loss"],
        absent=absent(*PARTIAL),
        capture={"direction": "both", "started": "before-session",
                 "mechanism": "tc bpf (random) + mirred from eth0 to a veth, tcpdump -i mon0"},
    )  # fmt: skip
    main = tcp_frames(run.out / f"{run.name}.pcap")
    reference = tcp_frames(run.out / f"{run.name}.reference.pcap")
    lost = missing(reference, main)
    if len(main) + len(lost) != len(reference):
        raise RuntimeError("the main capture holds packets the reference lacks")
    if not any(f.side == "server" and f.tcp_len for f in lost):
        raise RuntimeError("no server reply was dropped this time: run it again")
    add_capture_facts(run, dropped_by_capture=[describe(f) for f in lost])


@scenario("icmp-quoted-streams")
def icmp_quoted_streams(run: Run) -> None:
    """a capture filtered to 'tcp port 25 or icmp' while the client also tries port 2525, which a
    firewall on the router rejects with ICMP port unreachable: between two deliveries to
    Postfix the capture holds ICMP errors quoting TCP connections it never saw (Wireshark gives
    each quoted connection its own tcp.stream, so the second delivery is stream 3)"""
    run.network()
    run.lab.iptables(
        ROUTER, "-A", "FORWARD", "-p", "tcp", "--dport", "2525", "-j", "REJECT",
        "--reject-with", "icmp-port-unreachable",
    )  # fmt: skip
    run.start_postfix()
    run.capture(expression="tcp port 25 or icmp")
    run.capture(label="reference")
    run.sessions.append(session(simple_mail("lab icmp quoted 1", seed=1)).session())
    others = []
    for i in range(2):
        source = (CLIENT_IP, 44000 + i)
        with netns(CLIENT):
            try:
                socket.create_connection((SERVER_IP, 2525), timeout=10, source_address=source)
                raise RuntimeError("port 2525 answered")
            except ConnectionRefusedError as exc:
                error = f"{type(exc).__name__}: {exc}"
        others.append({"client": f"{CLIENT_IP}:{source[1]}", "server": f"{SERVER_IP}:2525",
                       "client_error": error, "captured_as": "icmp"})  # fmt: skip
        time.sleep(0.5)
    run.sessions.append(session(simple_mail("lab icmp quoted 2", seed=2)).session())
    run.finish(
        description=doc(icmp_quoted_streams),
        fault="iptables on the router: TCP to port 2525 REJECTed with icmp-port-unreachable; "
        "the capture filter leaves out port 2525 but keeps ICMP",
        absent=absent(),
        other_connections=others,
        capture={"direction": "both", "started": "before-session",
                 "tcpdump": "tcp port 25 or icmp"},
    )  # fmt: skip
    add_capture_facts(run)


# -- a SYN scanner that reuses its 4-tuples with the same sequence numbers --------------------
SCAN_SOURCE_PORT = 61000
SO_RCVBUFFORCE = 33  # asm-generic/socket.h (root may pass rmem_max)
# Round 1 probes this many closed ports (2 frames each: more than pcapsmtp's LINGER_FRAMES of
# 2000), round 2 the first REUSED of them again, more than LINGER_NS (10 s) later.
SCAN_PORTS = [p for p in range(1, 1104) if p not in (25, 465, 587)]
REUSED = 20
SCAN_PAUSE_S = 12


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def probe_isn(dport: int) -> int:
    """masscan style: the sequence number is a hash of the 4-tuple, the same on every scan."""
    key = f"{CLIENT_IP}:{SCAN_SOURCE_PORT}>{SERVER_IP}:{dport}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


def syn_probe(dport: int) -> bytes:
    header = struct.pack(
        "!HHIIBBHHH", SCAN_SOURCE_PORT, dport, probe_isn(dport), 0, 5 << 4, 0x02, 1024, 0, 0
    )
    pseudo = socket.inet_aton(CLIENT_IP) + socket.inet_aton(SERVER_IP)
    pseudo += struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", _checksum(pseudo + header)) + header[18:]


def scan_round(ports: list[int]) -> dict:
    """SYN probes to ``ports`` from a raw socket in the client namespace; count the answers."""
    answers: dict[int, int] = {}
    with netns(CLIENT):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        raw.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        raw.settimeout(3)
        try:
            for dport in ports:
                raw.sendto(syn_probe(dport), (SERVER_IP, 0))
                time.sleep(0.0005)
            while len(answers) < len(ports):
                packet, (src, _) = raw.recvfrom(65535)
                ihl = (packet[0] & 0x0F) * 4
                sport, to_port = struct.unpack("!HH", packet[ihl : ihl + 4])
                if src == SERVER_IP and to_port == SCAN_SOURCE_PORT:
                    answers[sport] = packet[ihl + 13]
        except TimeoutError:
            pass
        finally:
            raw.close()
    flags = {0x14: "RST/ACK", 0x12: "SYN/ACK"}
    counts: dict[str, int] = {}
    for dport in ports:
        name = flags.get(answers.get(dport), "none")
        counts[name] = counts.get(name, 0) + 1
    return {"ports": ports, "answers": counts}


@scenario("scan-port-reuse")
def scan_port_reuse(run: Run) -> None:
    """a SYN scanner beside the mail client (raw socket, masscan style: source port 61000, each
    probe's sequence number a hash of its 4-tuple) probes 1100 closed ports of the server, a
    delivery to Postfix follows, and 12 s later the scanner probes the first 20 ports again,
    then a second delivery: every probe is answered RST/ACK; the second round reuses 4-tuples
    with the same ISN, which Wireshark keeps in their first tcp.stream, so the second delivery
    is stream 1101"""
    run.network()
    run.start_postfix()
    run.capture()
    rounds = [scan_round(SCAN_PORTS)]
    run.sessions.append(session(simple_mail("lab scan reuse 1", seed=1)).session())
    time.sleep(SCAN_PAUSE_S)
    rounds.append(scan_round(SCAN_PORTS[:REUSED]))
    run.sessions.append(session(simple_mail("lab scan reuse 2", seed=2)).session())
    for r in rounds:
        if r["answers"] != {"RST/ACK": len(r["ports"])}:
            raise RuntimeError(f"unexpected answers {r['answers']}")
    run.finish(
        description=doc(scan_port_reuse),
        fault="none: a port scanner shares the capture",
        absent=absent(),
        scanner={"source": f"{CLIENT_IP}:{SCAN_SOURCE_PORT}",
                 "isn": "first 4 bytes of sha256('10.77.1.2:61000>10.77.2.2:PORT')",
                 "pause_s": SCAN_PAUSE_S, "rounds": rounds},
    )  # fmt: skip
