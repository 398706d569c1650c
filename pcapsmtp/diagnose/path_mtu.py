"""Path MTU: black holes, ICMP fragmentation-needed (heeded or ignored), IP fragmentation.

The signature of a black hole (RFC 2923 2.1, RFC 4821): the handshake and small segments
pass, full-size segments are retransmitted again and again and never acknowledged, and no
ICMP fragmentation-needed (IPv6 Packet Too Big) comes back. Plain loss hits every size, so
its retransmissions end up acknowledged at full size; a black hole's never do.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.evidence import host, phase_at, role, who
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.vantage import capture_elsewhere, captured_at
from pcapsmtp.smtp.model import Outcome, Session
from pcapsmtp.tcp.model import Endpoint, Flag, TcpFlow

MIN_RETRIES = 2
"""Retransmissions of too-big segments needed before calling it a black hole."""
RECEIVER_STALL_NS = 5 * 1_000_000_000

MTU_STEPS = [
    "Find the hop with the small MTU: run `tracepath {peer}` from {sender}; "
    "`ping -M do -s {probe} {peer}` (a {size}-byte packet) should fail where the path is too "
    "narrow.",
    "Let ICMP 'fragmentation needed' (type 3 code 4; for IPv6, type 2 Packet Too Big) through "
    "every firewall on the path: without it, senders cannot learn the path MTU (RFC 2923).",
    "Clamp the TCP MSS where the MTU shrinks (tunnel, VPN, PPPoE router), e.g. "
    "`iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS "
    "--clamp-mss-to-pmtu`.",
    "As a stopgap on a Linux sender, `sysctl net.ipv4.tcp_mtu_probing=1` (RFC 4821) lets it "
    "recover by itself; on Windows, EnablePMTUBHDetect.",
]


def _too_big_retransmissions(sender: Endpoint) -> dict[int, int]:
    return {
        size: count
        for size, count in sender.retransmitted_sizes.items()
        if size > sender.max_acked_ip_len
    }


@session_rule("mtu-blackhole")
def mtu_blackhole(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    for direction, sender in enumerate(flow.endpoints):
        if sender.too_big_mtu is not None:
            continue  # ICMP reached the sender: not a black hole (see icmp_frag_needed)
        stuck = _too_big_retransmissions(sender)
        if sender.max_acked_ip_len == 0 or sum(stuck.values()) < MIN_RETRIES:
            continue
        yield _sender_side(session, context, direction, sender, stuck)
    receiver_side = _receiver_side(session, context)
    if receiver_side is not None:
        yield receiver_side


def _path_acked(context, sender: Endpoint, peer: Endpoint, below: int) -> int:
    """The largest packet from this sender's host to the peer's host that was acknowledged in
    any connection of the capture (smaller than ``below``): it narrows the MTU bracket."""
    sizes = context.path_acked.get((sender.ip, peer.ip), [])
    return max((size for size in sizes if size < below), default=0)


def _sender_side(session: Session, context, direction: int, sender: Endpoint, stuck) -> Finding:
    flow = session.flow
    peer = flow.endpoints[1 - direction]
    smallest = min(stuck)
    acked = max(sender.max_acked_ip_len, _path_acked(context, sender, peer, below=smallest))
    retries = sum(stuck.values())
    frames = [
        n.frame
        for n in flow.notes
        if n.direction == direction and n.analysis & Flag.ANY_RETRANSMISSION and n.ip_len > acked
    ]
    first = frames[0] if frames else flow.first_frame
    recovered = session.outcome == Outcome.DELIVERED
    mss = peer.handshake.mss if peer.handshake and peer.handshake.mss else None
    summary = (
        f"{smallest}-byte packets from {host(sender)} were retransmitted {retries} times and "
        f"never acknowledged, while smaller ones (up to {acked} bytes) were: path MTU black "
        f"hole between {host(sender)} and {host(peer)}"
    )
    detail = (
        f"{who(flow, direction).capitalize()} sent packets of up to {sender.max_ip_len} bytes"
        f"{f' (the peer announced MSS {mss})' if mss else ''}. The largest packet from "
        f"{host(sender)} to {host(peer)} ever acknowledged (in this capture) was {acked} "
        f"bytes; in this connection, packets of {smallest} bytes and more were "
        f"retransmitted {retries} times and none was acknowledged, so the path MTU lies "
        f"between {acked} and {smallest - 1} bytes. No ICMP fragmentation-needed reached the "
        f"capture, so the sender cannot learn the smaller MTU. The stall began in "
        f"{phase_at(session, first)} (frame {first}). "
        + (
            "The session still completed: the sender found its way around the hole (for "
            "example by MTU probing), at the cost of delay."
            if recovered
            else "The transfer never got through and the session ended "
            f"({session.outcome}: {session.outcome_reason})."
        )
        + (
            " The capture was taken at the sending side (judged from TTLs), where the lost "
            "packets show."
            if captured_at(session, role(flow, direction))
            else " The lost packets show in this capture, so it was taken between the sender "
            "and the hole."
        )
    )
    steps = [
        s.format(peer=host(peer), sender=host(sender), probe=smallest - 28, size=smallest)
        for s in MTU_STEPS
    ]
    return Finding(
        code="mtu-blackhole",
        severity=WARNING if recovered else ERROR,
        summary=summary,
        detail=detail,
        frames=frames[:20],
        next_steps=steps,
    )


def _resent(flow: TcpFlow, direction: int, copies: set[int]) -> bool:
    """This side retransmitted: a frame the capture holds twice (a SPAN copy) is not one."""
    if not flow.endpoints[direction].retransmitted_sizes:
        return False
    if not copies or flow.dropped_notes:
        return True
    return any(
        n.direction == direction and n.analysis & Flag.ANY_RETRANSMISSION and n.frame not in copies
        for n in flow.notes
    )


def _receiver_side(session: Session, context) -> Finding | None:
    """At the receiving end the big packets never show at all: the message starts, only
    small packets (or none) arrive, and the connection dies after a silence."""
    flow = session.flow
    transaction = session.transactions[-1] if session.transactions else None
    if transaction is None or transaction.method != "DATA" or transaction.final is not None:
        return None
    if transaction.message_frame is not None and transaction.message_complete:
        return None  # the whole message arrived: what followed is another story
    client = flow.endpoints[flow.client]
    server = flow.endpoints[flow.server]
    client_mss = client.handshake.mss if client.handshake else None
    if not client_mss or session.outcome not in (Outcome.TIMEOUT, Outcome.RESET):
        return None
    full_size = client_mss + (60 if len(client.ip) == 16 else 40)
    if client.max_ip_len >= full_size or _resent(flow, flow.client, context.info.copy_frames):
        return None
    data_reply = transaction.data_reply
    if data_reply is None or data_reply.code != 354 or (transaction.size or 0) >= client_mss:
        return None
    if flow.last_time_ns - data_reply.time_ns < RECEIVER_STALL_NS:
        return None
    return Finding(
        code="mtu-blackhole",
        severity=ERROR,
        summary=(
            f"the message from {host(client)} never arrived: only packets up to "
            f"{client.max_ip_len} bytes reached {host(server)}, though the client may send "
            f"{full_size}: suspected path MTU black hole"
        ),
        detail=(
            f"After the 354 in frame {data_reply.frame} the server received "
            f"{transaction.size or 0} bytes of message and then nothing, until the session "
            f"ended ({session.outcome}: {session.outcome_reason}). The client announced "
            f"MSS {client_mss}, so full-size packets are {full_size} bytes; the largest "
            f"that arrived was {client.max_ip_len}. At the receiving end a black hole shows "
            f"as packets that never come: confirm with {capture_elsewhere(session)}, where "
            "they appear retransmitted and unacknowledged."
        ),
        frames=[data_reply.frame],
        next_steps=[
            s.format(peer=host(server), sender=host(client), probe=full_size - 28, size=full_size)
            for s in MTU_STEPS
        ],
    )


@session_rule("icmp-frag-needed")
def icmp_frag_needed(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    too_big = [e for e in flow.icmp if e.is_too_big and e.mtu]
    if not too_big:
        return
    for direction, sender in enumerate(flow.endpoints):
        if sender.too_big_mtu is None:
            continue
        errors = [e for e in too_big if e.quoted and e.quoted.sport == sender.port]
        if not errors:
            continue
        mtu = sender.too_big_mtu
        routers = ", ".join(sorted({host_of(e.src) for e in errors}))
        frames = [e.frame for e in errors]
        ignored = sender.max_ip_len_after_too_big > mtu
        if ignored:
            yield Finding(
                code="icmp-frag-needed",
                severity=WARNING if session.outcome == Outcome.DELIVERED else ERROR,
                summary=(
                    f"{routers} told {host(sender)} {len(errors)} times that the path MTU is "
                    f"{mtu}, but it kept sending {sender.max_ip_len_after_too_big}-byte packets"
                ),
                detail=(
                    f"ICMP fragmentation-needed with next-hop MTU {mtu} arrived in frames "
                    f"{', '.join(map(str, frames[:10]))}; afterwards {who(flow, direction)} "
                    f"still sent packets of up to {sender.max_ip_len_after_too_big} bytes. The "
                    "ICMP reaches the capture point but not the sender's TCP stack: a host "
                    "firewall dropping it, a load balancer sending it to another server, or an "
                    "address-translating box that does not rewrite ICMP."
                ),
                frames=frames[:20],
                next_steps=[
                    f"Check that {host(sender)} accepts ICMP type 3 code 4 (host firewall, "
                    "`iptables -L INPUT`), and that a load balancer in front of it forwards "
                    "ICMP to the right server (ECMP: Cloudflare's 'Path MTU discovery in "
                    "practice').",
                    f"Meanwhile, clamp the MSS to {mtu - 40} on the router at the small link.",
                ],
            )
        else:
            yield Finding(
                code="icmp-frag-needed",
                severity=INFO,
                summary=f"path MTU {mtu} discovered: {routers} sent ICMP fragmentation-needed "
                f"and {host(sender)} shrank its packets",
                detail=(
                    f"{len(errors)} ICMP fragmentation-needed (next-hop MTU {mtu}) arrived in "
                    f"frames {', '.join(map(str, frames[:10]))}; {who(flow, direction)} then "
                    f"sent packets of at most {sender.max_ip_len_after_too_big} bytes. Path MTU "
                    "discovery worked (RFC 1191): this is not a black hole. The first full-size "
                    "packets were resent smaller, which cost one round trip."
                ),
                frames=frames[:20],
                next_steps=[
                    f"Nothing to fix. If the small MTU is unexpected, it is the link of {routers}."
                ],
            )


def host_of(ip: bytes) -> str:
    return address(ip)


@session_rule("ip-fragmentation")
def ip_fragmentation(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    for direction, sender in enumerate(flow.endpoints):
        if not sender.fragmented:
            continue
        frames = sender_fragment_frames(flow, direction)
        delivered = session.outcome == Outcome.DELIVERED
        harmless = delivered and not sender.counts["retransmission"]
        yield Finding(
            code="ip-fragmentation",
            severity=INFO if harmless else WARNING,
            summary=(
                f"{sender.fragmented} segments from {host(sender)} arrived in IP fragments: "
                "the sender does not set Don't Fragment and the path MTU is smaller than its "
                "packets"
            ),
            detail=(
                f"{who(flow, direction).capitalize()} sent {sender.fragmented} of its "
                f"{sender.packets} packets without the DF bit, and a router on the path cut "
                f"them into fragments; the capture reassembled them. Fragments are fragile: "
                "one lost fragment loses the whole segment, and many firewalls and load "
                "balancers drop or mishandle them."
                + (
                    " Here every fragment arrived and nothing had to be resent: no effect on "
                    "the mail yet."
                    if harmless
                    else " The mail still went through here, with retransmissions."
                    if delivered
                    else ""
                )
            ),
            frames=frames[:20],
            next_steps=[
                f"Let {host(sender)} use path MTU discovery (Linux: "
                "net.ipv4.ip_no_pmtu_disc=0; it is the default).",
                "Clamp the MSS at the router with the small link so TCP never needs fragments.",
            ],
        )


def sender_fragment_frames(flow: TcpFlow, direction: int) -> list[int]:
    return list(flow.endpoints[direction].fragment_frames)
