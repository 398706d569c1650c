"""TCP trouble: connections refused or unanswered, retransmissions, zero windows, and what
the capture itself lost or cut (so nobody blames the network for the capture's gaps)."""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.capture.addresses import address
from pcapsmtp.diagnose.evidence import count, host, phase_at, role, seconds, who
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.outlived import moved_by_reset
from pcapsmtp.diagnose.registry import capture_rule, session_rule
from pcapsmtp.smtp.model import Outcome, Session
from pcapsmtp.tcp.model import TH_ACK, TH_RST, TH_SYN, Flag

RETRANSMISSION_RATE = 0.02
"""Share of a side's data segments retransmitted before it is worth a warning."""
MIN_RETRANSMISSIONS = 3


@session_rule("connect-refused")
def connect_refused(session: Session, context) -> Iterator[Finding]:
    if session.outcome != Outcome.REFUSED:
        return
    flow = session.flow
    server = flow.endpoints[flow.server]
    resets = [n.frame for n in flow.notes if n.tcp_flags & TH_RST]
    syns = [n.frame for n in flow.notes if n.tcp_flags & (TH_SYN | TH_ACK) == TH_SYN]
    synacks = [n for n in flow.notes if n.tcp_flags & (TH_SYN | TH_ACK) == TH_SYN | TH_ACK]
    if flow.synack_time_ns is not None or synacks:
        yield _closed_without_greeting(session, syns, synacks)
        return
    yield Finding(
        code="connect-refused",
        severity=ERROR,
        summary=f"{host(server)} refused the connection to port {server.port} (RST to the SYN)",
        detail=(
            f"The connection request (frame {syns[0] if syns else flow.first_frame}) was "
            f"answered with a reset (frame {resets[0] if resets else '?'}): nothing listens on "
            f"port {server.port} at {host(server)}, or a firewall rejects the connection "
            "actively. No SMTP was exchanged."
        ),
        frames=(syns[:1] + resets[:1]),
        next_steps=[
            f"On {host(server)}: is the MTA running and listening on port {server.port} "
            "on this address (`ss -ltn`)?",
            "Check firewalls on the way that answer with a reset (REJECT with tcp-reset).",
            "Check the MX / smarthost record points to the right host and port.",
        ],
    )


def _closed_without_greeting(session: Session, syns: list[int], synacks: list) -> Finding:
    """The server's TCP accepted (SYN/ACK), then the server closed before any greeting: not
    a refusal of the SYN, but an MTA (or a box in front of it) that dropped the client."""
    flow = session.flow
    server, client = flow.endpoints[flow.server], flow.endpoints[flow.client]
    closed = server.closed_frame
    note = next((n for n in flow.notes if n.frame == closed), None)
    how = "a reset" if note is not None and note.tcp_flags & TH_RST else "a FIN"
    accepted = synacks[0].frame if synacks else None
    after = (
        f", {seconds(note.time_ns - synacks[0].time_ns)} later"
        if note is not None and synacks
        else ""
    )
    frames = [f for f in (syns[0] if syns else None, accepted, closed) if f]
    return Finding(
        code="connect-refused",
        severity=ERROR,
        summary=(
            f"{host(server)} accepted the TCP connection to port {server.port}, then closed it "
            f"({how}) without a greeting"
        ),
        detail=(
            "The server's TCP answered the connection request"
            + (f" (SYN/ACK in frame {accepted})" if accepted else "")
            + f" and the server closed the connection with {how} in frame {closed}{after}, "
            "before sending any 220 greeting. Something listens on the port, but the mail "
            "server (or a proxy, load balancer or firewall in front of it) dropped this client "
            "at once: a connection or process limit reached (Postfix process_limit, "
            "smtpd_client_connection_count_limit), a pre-greeting check that refused the "
            "client's address (postscreen, TCP wrappers in /etc/hosts.deny, an access "
            "list), or a proxy with no working server behind it. No SMTP was exchanged."
        ),
        frames=frames,
        next_steps=[
            f"In the mail log of {host(server)} at this time, look for the connection from "
            f"{host(client)} and what ended it (Postfix: 'lost connection after CONNECT', "
            "'too many connections', postscreen's 'DNSBL rank' or 'PREGREET').",
            f"Check the server's connection limits and whether {host(client)} is on an "
            "access or blocklist the server consults before greeting.",
            "If a load balancer or proxy answers on this address, check that its mail "
            "servers behind it are up.",
        ],
    )


@session_rule("connect-failed")
def connect_failed(session: Session, context) -> Iterator[Finding]:
    if session.outcome != Outcome.UNREACHABLE:
        return
    flow = session.flow
    server = flow.endpoints[flow.server]
    client = flow.endpoints[flow.client]
    syns = [n for n in flow.notes if n.tcp_flags & (TH_SYN | TH_ACK) == TH_SYN]
    waited = (flow.last_time_ns - flow.first_time_ns) / 1e9
    icmp = [e for e in flow.icmp if e.type in (1, 3)]
    cause = (
        f"; ICMP destination unreachable (type {icmp[0].type} code {icmp[0].code}) came back "
        f"from {host_ip(icmp[0].src)} in frame {icmp[0].frame}"
        if icmp
        else "; nothing came back, not even an ICMP error: packets are dropped silently"
    )
    yield Finding(
        code="connect-failed",
        severity=ERROR,
        summary=(
            f"{host(client)} could not connect to {host(server)} port {server.port}: "
            f"{count(len(syns), 'SYN')} over {waited:.1f} s went unanswered"
        ),
        detail=(
            f"The client sent {count(len(syns), 'connection request')} between frames "
            f"{syns[0].frame if syns else flow.first_frame} and {flow.last_frame} and gave up "
            f"after {waited:.1f} s{cause}. The server never answered, so the host is down, "
            "unreachable, or a firewall drops the traffic."
        ),
        frames=[n.frame for n in syns][:10] + [e.frame for e in icmp][:5],
        next_steps=[
            f"From the client's network, test `nc -vz {host(server)} {server.port}` and "
            f"`traceroute -T -p {server.port} {host(server)}`.",
            "Check firewalls (outbound port 25 is often blocked by ISPs and cloud providers).",
            "Check the server is up and its address (MX record) is current.",
        ],
    )


def host_ip(ip: bytes) -> str:
    return address(ip)


@session_rule("retransmissions")
def retransmissions(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    for direction, sender in enumerate(flow.endpoints):
        count = sender.counts["retransmission"]
        data = sender.data_segments
        if count < MIN_RETRANSMISSIONS or not data:
            continue
        if _blackhole_explains(sender):
            continue
        notes = [
            n
            for n in flow.notes
            if n.direction == direction
            and n.analysis & Flag.ANY_RETRANSMISSION
            and not _after_too_big(flow, n)
        ]
        # A frame captured twice is one packet, not a packet sent again; new data below a
        # RST the hosts ignored is flagged only because the RST moved Wireshark's mark.
        copies, moved = context.info.copy_frames, moved_by_reset(flow)
        if copies or moved:
            kept = [n for n in notes if n.frame not in copies and n.frame not in moved]
            count -= len(notes) - len(kept)
            notes = kept
        if not flow.dropped_notes:
            count = len(notes)  # retransmissions that obeyed an ICMP too-big are not loss
        rate = count / data
        if count < MIN_RETRANSMISSIONS or rate < RETRANSMISSION_RATE:
            continue
        phases = sorted({phase_at(session, n.frame) for n in notes})
        fast = sender.counts["fast_retransmission"]
        spurious = sender.counts["spurious_retransmission"]
        yield Finding(
            code="retransmissions",
            severity=WARNING,
            summary=(
                f"{count} retransmissions from {host(sender)} ({rate:.0%} of its "
                f"{data} data segments): packet loss on the path"
            ),
            detail=(
                f"{who(flow, direction).capitalize()} retransmitted {count} segments "
                f"({fast} fast, {spurious} spurious, the rest after a timeout) out of {data} "
                f"that carried data, during {', '.join(phases) or 'the connection'}. Segments "
                "of every size were eventually acknowledged, which points to loss or "
                "congestion, not to a path-MTU problem. Each timeout costs the sender at least "
                "200 ms to a few seconds, which slows large messages and can trip timeouts."
                + (
                    f" {spurious} were spurious: the data had arrived, the ACKs were late."
                    if spurious
                    else ""
                )
            ),
            frames=[n.frame for n in notes][:20],
            next_steps=[
                "Look for interface errors and drops on the hosts and routers along the path "
                "(`ip -s link`, switch counters), and for a saturated link.",
                f"Measure loss with `mtr -T -P {flow.endpoints[flow.server].port} "
                f"{host(flow.endpoints[1 - direction])}` from {host(sender)}.",
            ],
        )


PMTUD_RESEND_NS = 3 * 1_000_000_000
"""Retransmissions this soon after an ICMP too-big are the sender obeying it, not loss."""


def _after_too_big(flow, note) -> bool:
    return any(e.is_too_big and 0 <= note.time_ns - e.time_ns <= PMTUD_RESEND_NS for e in flow.icmp)


def _blackhole_explains(sender) -> bool:
    big = sum(c for size, c in sender.retransmitted_sizes.items() if size > sender.max_acked_ip_len)
    return sender.max_acked_ip_len > 0 and big >= 2 and sender.too_big_mtu is None


ZERO_WINDOW_STALL_NS = 1_000_000_000
"""A receive window closed this long stalled the transfer: more than the sender's first
persist probes (RFC 9293 3.8.6.1, from one RTO: 200 ms on Linux, up to 1 s elsewhere) and
more than anyone notices. Shorter closures are a full buffer being drained."""


@session_rule("zero-window")
def zero_window(session: Session, context) -> Iterator[Finding]:
    """Segments flagged zero window (Wireshark's ``tcp.analysis.zero_window``) from a side.
    Severity follows what it did: ERROR when the session then ended in a timeout or reset,
    WARNING when the window stayed closed ZERO_WINDOW_STALL_NS or longer (a stall), INFO when
    it reopened sooner (a buffer that filled for a moment, no effect on the mail)."""
    flow = session.flow
    for direction, receiver in enumerate(flow.endpoints):
        count = receiver.counts["zero_window"]
        if not count:
            continue
        notes = [
            n for n in flow.notes if n.direction == direction and n.analysis & Flag.ZERO_WINDOW
        ]
        span = (notes[-1].time_ns - notes[0].time_ns) / 1e9 if len(notes) > 1 else 0.0
        closed = receiver.longest_zero_window_ns
        failed = session.outcome in (Outcome.TIMEOUT, Outcome.RESET)
        stalled = closed >= ZERO_WINDOW_STALL_NS
        severity = ERROR if failed else WARNING if stalled else INFO
        times = f"{count} times" if count > 1 else "once"
        what = (
            "it stopped reading the data sent to it"
            if stalled or failed
            else "its receive buffer filled for a moment, with no effect on the transfer"
        )
        yield Finding(
            code="zero-window",
            severity=severity,
            summary=(
                f"the {role(flow, direction)} {host(receiver)} advertised a zero window "
                f"{times}{f' over {span:.1f} s' if count > 1 else ''}, closed for "
                f"{seconds(closed)}{' at most' if count > 1 else ''}: {what}"
            ),
            detail=(
                f"{who(flow, direction).capitalize()} told its peer {times} that its "
                f"receive buffer was full (window 0), first in frame {notes[0].frame} during "
                f"{phase_at(session, notes[0].frame)}; the longest its window stayed closed "
                f"was {seconds(closed)}. "
                + (
                    "The sender must wait, probing, until the window opens. The application "
                    "on that host is not reading fast enough: it is overloaded, blocked on "
                    "disk or a content filter, or stuck."
                    + (f" The session then ended ({session.outcome})." if failed else "")
                    if stalled or failed
                    else f"That is under {seconds(ZERO_WINDOW_STALL_NS)}: the application "
                    "read its buffer again before the transfer stalled, so this cost the "
                    "mail nothing; it is worth knowing only if it becomes longer."
                )
            ),
            frames=[n.frame for n in notes][:20],
            next_steps=[
                f"Check the load of {host(receiver)} and of its MTA (queue, disk, content "
                "scanner) at this time.",
                "A content filter or milter that reads slowly shows exactly this.",
            ],
        )


@session_rule("capture-loss")
def capture_loss(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    unseen = [g for g in session.gaps if g.reason == "not captured"]
    acked_unseen = sum(e.counts["ack_lost_segment"] for e in flow.endpoints)
    missing = sum(g.length for g in unseen)
    if not missing:
        return  # ACKs ahead of data that shows up later: the capture reordered, lost nothing
    frames = [
        n.frame for n in flow.notes if n.analysis & (Flag.ACK_LOST_SEGMENT | Flag.LOST_SEGMENT)
    ]
    yield Finding(
        code="capture-loss",
        severity=WARNING,
        summary=(
            f"the capture missed {missing} bytes of this connection that the network did "
            "deliver (the receiver acknowledged them)"
        ),
        detail=(
            f"{acked_unseen} acknowledgement(s) cover data the capture never saw, and "
            f"{len(unseen)} hole(s) of {missing} bytes could not be filled. The peer "
            "received those bytes, so the network did not lose them: the capture did "
            "(tcpdump's buffer overflowed, the SPAN port dropped, or the capture started "
            "late). Findings about this stretch rest on partial evidence."
        ),
        frames=frames[:20],
        next_steps=[
            "Capture again with a larger buffer (`tcpdump -B 8192`), a capture filter that "
            "keeps only mail (`tcp port 25 or 465 or 587 or icmp`), and on the host rather "
            "than a busy SPAN port; tcpdump reports 'packets dropped by kernel' when it "
            "loses packets.",
        ],
    )


UNSAID_CUT = (
    " The file records these frames as whole (each one's captured length equals its "
    "original length), but their IP headers say the packets were longer: the program "
    "that wrote the capture cut them without saying so."
)


@capture_rule("capture-truncated")
def capture_truncated(sessions: list[Session], context) -> Iterator[Finding]:
    info = context.info
    affected = [s for s in sessions if any(g.reason == "snaplen" for g in s.gaps)]
    cut_frames = sorted({g.frame for s in affected for g in s.gaps if g.reason == "snaplen"})
    if not info.truncated and not cut_frames:
        return
    cut_to = min((s for s in [info.snaplen] if s), default=None)
    unsaid = "" if info.truncated else UNSAID_CUT
    yield Finding(
        code="capture-truncated",
        severity=WARNING,
        summary=(
            f"{info.truncated or len(cut_frames)} frames were cut short by the capture's "
            "snap length: the "
            f"payload of {count(len(affected), 'SMTP session')} is incomplete"
        ),
        detail=(
            "The capture kept only the first bytes of each packet"
            + (f" ({cut_to} bytes)" if cut_to else "")
            + ": long commands, replies and the message itself are cut, so texts, "
            "sizes and subjects are partial. TCP analysis is unaffected (it uses the "
            "headers), and commands and reply codes are still read where a packet starts "
            "with them." + unsaid
        ),
        frames=cut_frames[:20],
        next_steps=[
            "Capture again with the full packets: `tcpdump -s 0` (the default in "
            "current tcpdump; older versions and some appliances cut at 68 or 96)."
        ],
    )


@session_rule("incomplete-session")
def incomplete_session(session: Session, context) -> Iterator[Finding]:
    """A session left undecided (outcome incomplete or no-smtp) whose connection the capture
    holds only part of: no SYN and no SYN/ACK (it started before the capture), or neither a
    RST nor a FIN from both sides by the last frame (the capture stopped first). INFO: the
    capture, not the network or the hosts."""
    flow = session.flow
    if session.outcome not in (Outcome.INCOMPLETE, Outcome.NO_SMTP):
        return
    started_late = flow.syn_time_ns is None and flow.synack_time_ns is None
    if not started_late and not all(e.packets for e in flow.endpoints):
        return  # one direction only: what the capture lacks is the other side, not the end
    reset = any(n.tcp_flags & TH_RST for n in flow.notes)
    both_closed = all(e.closed_frame is not None for e in flow.endpoints)
    still_open = not reset and not both_closed
    if not (started_late or still_open):
        return
    where = " and ".join(
        [
            *(["the capture starts after the connection was opened"] if started_late else []),
            *(["the capture ends before the session did"] if still_open else []),
        ]
    )
    missing = " and ".join(
        [
            *(["its beginning (no SYN)"] if started_late else []),
            *(["its end (the connection was still open at the last frame)"] if still_open else []),
        ]
    )
    yield Finding(
        code="incomplete-session",
        severity=INFO,
        summary=f"session {session.id} is only partly in the capture: {where}",
        detail=(
            f"The capture lacks {missing} of the connection (tcp.stream {flow.stream}), so "
            "what happened outside the captured part is unknown. Nothing in the captured part "
            "shows a fault."
        ),
        frames=[flow.first_frame, flow.last_frame],
        next_steps=["Capture for longer, starting before the mail is sent."],
    )
