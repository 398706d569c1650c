"""Scenarios where the capture, not the network, is partial: one direction, a late start, drops.

Each takes a complete capture on the same interface at the same time as its main capture
(``<name>.reference.pcap``, ``other_files["reference"]``), so what the main capture lacks is
known packet by packet. The SMTP truth still comes from the client's own transcript.
"""

from __future__ import annotations

import json
import time

from client import LabSMTP, make_message, run_session
from frames import describe, missing, tcp_frames
from harness import Run
from labnet import CLIENT, SERVER_IP, in_ns, netns, sh
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
    run.network()
    run.start_postfix()
    run.capture(options=options, expression=expression)
    run.capture(label="reference")
    two_sessions(run)
    tcpdump = " ".join([*options, *([expression] if expression else [])])
    run.finish(
        description=description,
        absent=absent(*PARTIAL),
        capture={"direction": direction, "started": "before-session", "tcpdump": tcpdump},
    )
    sides = {f.side for f in tcp_frames(run.out / f"{run.name}.pcap")}
    if sides != {direction.removesuffix("-only")}:
        raise RuntimeError(f"{run.name}: the capture holds packets of {sides}")
    add_capture_facts(run)


@scenario("one-side-client")
def one_side_client(run: Run) -> None:
    """only the client's packets: tcpdump -Q out on the client's eth0 (what asymmetric routing
    or a one-way SPAN gives); two deliveries to Postfix, the second pipelined; the complete
    capture taken beside it is the reference"""
    one_side(run, doc(one_side_client), "client-only", options=("-Q", "out"))


@scenario("one-side-server")
def one_side_server(run: Run) -> None:
    """only the server's packets: tcpdump 'src host 10.77.2.2' on the client's eth0; the same
    two deliveries as one-side-client; the complete capture is the reference"""
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
