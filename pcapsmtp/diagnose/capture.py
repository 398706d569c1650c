"""What the capture itself lacks, said plainly with what can and cannot be concluded: one
direction only, a session whose beginning is missing, replies paired by their code after a
hole. The network and the MTAs are not blamed for the capture's limits."""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import count, host, seconds
from pcapsmtp.diagnose.model import INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import capture_rule, session_rule
from pcapsmtp.smtp.events import CLIENT, END_OF_DATA, GREETING
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_ACK, TH_SYN

NEEDS_BOTH_SIDES = frozenset(
    [
        "mtu-blackhole",
        "client-timeout",
        "slow-server",
        "capture-loss",
        "incomplete-session",
    ]
)
"""Codes whose evidence is the other side's packets (its ACKs, its replies, its silence): on a
one-sided session their absence is the capture's, so these rules do not run there."""


@session_rule("capture-one-sided")
def one_sided(session: Session, context) -> Iterator[Finding]:
    side = session.one_sided
    if side is None:
        return
    flow = session.flow
    seen = flow.endpoints[flow.client if side == CLIENT else flow.server]
    missing = side.peer
    if side == CLIENT:
        evidence = sorted({c.frame for c in session.commands if c.verb != GREETING})
        facts = _client_facts(session)
        unknown = (
            "The server's replies are not in the capture, so whether it accepted the sender, "
            "the recipients or the message is unknown: no reply code, no queue id, no "
            "delivery outcome."
        )
    else:
        replies = [c.reply for c in session.commands if c.reply] + session.unsolicited
        if session.greeting is not None:
            replies.append(session.greeting)
        evidence = sorted({r.frame for r in replies})
        facts = _server_facts(session)
        unknown = (
            "The client's commands are not in the capture, so the sender, the recipients and "
            "the message itself are unknown; each reply is shown, not what it answered."
        )
    yield Finding(
        code="capture-one-sided",
        severity=WARNING,
        summary=(
            f"only the {side}'s packets of session {session.id} are in the capture "
            f"({seen.packets} packets from {host(seen)}, none from the {missing}): "
            + ("delivery cannot be confirmed" if side == CLIENT else "commands unknown")
        ),
        detail=(
            f"Every packet of tcp.stream {flow.stream} was sent by the {side}; the {missing}'s "
            "packets existed (data only flows over an established connection) but the capture "
            "point did not see them: asymmetric routing, a SPAN port mirroring one direction, "
            "`tcpdump -Q out` or a `src host` filter. "
            f"{facts} {unknown} Findings that need the {missing}'s packets (acknowledgements, "
            "reply times, retransmissions judged by missing ACKs) are not made for this session."
        ),
        frames=evidence[:50] or [flow.first_frame],
        next_steps=[
            "Capture both directions: on the client or server host itself, or on a port that "
            "sees both directions (`tcpdump -i any 'tcp port 25 or 465 or 587 or icmp'`).",
            "For the outcome meanwhile, read the sending MTA's log for this time and "
            "recipient (the server's reply and queue id are there).",
        ],
    )


def _client_facts(session: Session) -> str:
    verbs = [c.verb for c in session.commands]
    sent = [t for t in session.transactions if t.message_frame is not None]
    said = []
    if session.helo:
        said.append(f"{session.helo_verb} {session.helo}")
    for transaction in session.transactions:
        recipients = ", ".join(r.address for r in transaction.rcpt_to) or "no recipient"
        said.append(f"MAIL FROM <{transaction.mail_from or ''}> to {recipients}")
    text = "The client sent " + ("; ".join(said) if said else "no SMTP command") + "."
    if sent:
        text += f" It sent {len(sent)} message(s) through to the end of data" + (
            " and then QUIT." if "QUIT" in verbs else "."
        )
    elif "QUIT" in verbs:
        text += " It ended with QUIT."
    return text


def _server_facts(session: Session) -> str:
    decided = [t for t in session.transactions if t.final is not None]
    codes = [r.code for r in session.unsolicited]
    text = f"The server sent {len(codes) + (session.greeting is not None)} replies"
    if session.greeting is not None:
        text += f", starting with the greeting {session.greeting.code}"
    text += "."
    for transaction in decided:
        queued = f" (queue id {transaction.queue_id})" if transaction.queue_id else ""
        text += (
            f" It answered a message with {transaction.final.code}{queued}: "
            f"{'accepted' if transaction.outcome == 'delivered' else transaction.outcome}."
        )
    return text


@capture_rule("capture-duplicates")
def duplicates(sessions: list[Session], context) -> Iterator[Finding]:
    """TCP frames that repeat a packet captured just before (capture.CaptureInfo.copy_frames):
    INFO, the capture's doing. Wireshark's counts (and the session's TCP facts) take each
    copy for a retransmission; the rules about loss leave them out."""
    copies = sorted(context.info.copy_frames)
    if not copies:
        return
    yield Finding(
        code="capture-duplicates",
        severity=INFO,
        summary=(
            f"{len(copies)} frames are copies of a TCP packet captured just before: the "
            "capture point saw packets twice"
        ),
        detail=(
            "Each of these frames repeats the IP and TCP headers (TTL aside) of a segment a "
            "few frames and at most 5 ms earlier: one packet captured twice, as a SPAN port "
            "mirroring both ports of a path, a capture on a bridge and its member, or on "
            "several interfaces does, not a packet sent twice (a sender's retransmission "
            "comes a round trip later, with a new IP ID or timestamp). Wireshark marks the "
            "copies as retransmissions and the TCP counts here include them; the findings "
            "about loss do not."
        ),
        frames=copies[:20],
        next_steps=[
            "Mirror one port in both directions, or capture on the host; `editcap -D 5 "
            "in.pcap out.pcap` removes such copies from a capture.",
        ],
    )


BACKWARDS_NS = 10**9
"""A step back in time this large changes what the rules measure (timeouts, slow replies, a
lookup's wait); smaller ones are the usual jitter of a capture taken on several queues."""


@capture_rule("capture-time-backwards")
def time_backwards(sessions: list[Session], context) -> Iterator[Finding]:
    """Frames whose time is a second or more earlier than the frame before them: INFO, the
    capture's clock. Durations measured across them (latencies, timeouts, a lookup's wait)
    are what the times say, not what happened."""
    frames, first, most_ns = context.info.time_backwards
    if most_ns < BACKWARDS_NS:
        return
    day = 86_400 * 10**9
    step = seconds(most_ns) if most_ns < day else count(round(most_ns / day), "day")
    yield Finding(
        code="capture-time-backwards",
        severity=INFO,
        summary=(
            f"the capture's times go back: {count(frames, 'frame')} "
            f"{'carries' if frames == 1 else 'carry'} a time earlier than the frame before "
            f"(first: frame {first}; up to {step} back)"
        ),
        detail=(
            "Frames are read in the order of the file, as Wireshark numbers them, whatever "
            "their times. A capture merged from several interfaces or hosts whose clocks "
            "differ, a clock stepped back while capturing, or a tool that wrote packets with "
            "the wrong times makes a time go back; every duration measured across such a "
            "step (a reply's latency, a timeout, a DNS lookup's wait, how long a side was "
            "silent) is what the times say, not what happened, and the findings that rest on "
            "one may be wrong or missing."
        ),
        frames=[first],
        next_steps=[
            "Check the capture hosts' clocks (NTP); merge captures with `mergecap` after "
            "correcting an offset with `editcap -t SECONDS`, or read each capture on its own.",
        ],
    )


NEEDS_ORDER = frozenset(
    [
        "mtu-blackhole",
        "retransmissions",
        "capture-loss",
        "connect-refused",
        "server-closed",
        "client-closed",
        "tls-handshake-failed",
        "slow-server",
        "server-timeout",
        "client-timeout",
    ]
)
"""Codes whose evidence is the order and timing of the two sides' packets (which was
answered, acknowledged or waited for first): on a session merged from two capture points
with clocks apart (``inverted_handshake``) that order is the clocks', so these rules do not
run there; capture-merged-clocks explains the session."""


def inverted_handshake(flow) -> int | None:
    """Nanoseconds by which the server's SYN/ACK was captured before the client's SYN it
    answers, in time and in the file's order: a capture merged from two points (one per
    side, ``mergecap`` orders by time) whose clocks differ by at least that much. None when
    the handshake is in order or not captured (times that merely go back in file order are
    capture-time-backwards)."""
    syns = [n for n in flow.notes if n.tcp_flags & (TH_SYN | TH_ACK) == TH_SYN]
    synacks = [n for n in flow.notes if n.tcp_flags & (TH_SYN | TH_ACK) == TH_SYN | TH_ACK]
    if not syns or not synacks:
        return None
    syn, synack = syns[0], synacks[0]
    if synack.frame > syn.frame or synack.time_ns >= syn.time_ns:
        return None
    return syn.time_ns - synack.time_ns


@session_rule("capture-merged-clocks")
def merged_clocks(session: Session, context) -> Iterator[Finding]:
    """The SYN/ACK captured before its SYN. WARNING: the order of the two sides' packets,
    and every figure taken across them (retransmissions, latencies, timeouts), is the
    clocks' doing; the session cannot be judged from this capture."""
    flow = session.flow
    ahead = inverted_handshake(flow)
    if ahead is None:
        return
    server = flow.endpoints[flow.server]
    yield Finding(
        code="capture-merged-clocks",
        severity=WARNING,
        summary=(
            f"the SYN/ACK of {host(server)} is captured {seconds(ahead)} before the SYN it "
            "answers: the capture merges two capture points whose clocks differ"
        ),
        detail=(
            "A host answers a SYN after receiving it, so a SYN/ACK can only be captured "
            "after its SYN at a single capture point. Here it comes first: the two sides' "
            "packets were captured at different points (each host, or two interfaces) and "
            "merged by their times, with clocks at least "
            f"{seconds(ahead)} apart. Replies then appear before the commands they answer and "
            "data after the ACKs that acknowledge it, so the dialogue's order, latencies, "
            "timeouts and Wireshark's retransmission flags on this connection are the clocks' "
            "doing; nothing about the network or the servers can be concluded from them."
        ),
        frames=sorted(n.frame for n in flow.notes if n.tcp_flags & TH_SYN)[:2],
        next_steps=[
            "Read each side's capture on its own, or shift one before merging: "
            f"`editcap -t {ahead / 1e9:.3f} server-side.pcap shifted.pcap` then `mergecap`.",
            "Keep the capture hosts' clocks in step (NTP) when captures are to be merged.",
        ],
    )


@session_rule("capture-started-late")
def started_late(session: Session, context) -> Iterator[Finding]:
    missing = session.not_captured
    if not missing:
        return
    flow = session.flow
    parts = {
        "handshake": "the TCP handshake (MSS, window scaling, the round-trip time are unknown)",
        "greeting": "the server's greeting (banner and server software unknown)",
    }
    first_reply = next((c for c in session.commands if c.reply is not None), None)
    pairing = ""
    if first_reply is not None and "greeting" in missing:
        pairing = (
            f" The first reply in the capture (frame {first_reply.reply.frame}) answers "
            f"{first_reply.verb if first_reply.verb != END_OF_DATA else 'the end of a message'} "
            f"(frame {first_reply.frame}), not a greeting."
        )
    lost = [r.frame for r in session.unsolicited][:10]
    if lost:
        pairing += (
            f" Replies to commands sent before the capture started: frame(s) "
            f"{', '.join(map(str, lost))}."
        )
    yield Finding(
        code="capture-started-late",
        severity=INFO,
        summary=(
            f"session {session.id} began before the capture did: not captured "
            + " and ".join(missing)
        ),
        detail=(
            f"tcp.stream {flow.stream} is in the capture from frame {flow.first_frame} on; "
            f"missing: {'; '.join(parts[m] for m in missing)}.{pairing} What the captured part "
            "shows is read as usual; what happened before it is unknown."
        ),
        frames=[flow.first_frame, *lost],
        next_steps=["Start the capture before the connection is opened."],
    )


@session_rule("pairing-uncertain")
def pairing_uncertain(session: Session, context) -> Iterator[Finding]:
    uncertain = session.uncertain
    lost = (
        []
        if session.one_sided
        else [u.command for u in session.unanswered if u.reason == "not captured"]
    )
    if not uncertain and not lost:
        return
    frames = sorted({r.frame for r in uncertain} | {c.frame for c in lost})
    named = ", ".join(
        f"{r.code} in frame {r.frame} to {r.command.verb if r.command else '?'}"
        for r in uncertain[:5]
    )
    yield Finding(
        code="pairing-uncertain",
        severity=INFO,
        summary=(
            f"after bytes the capture lacks, {len(uncertain)} reply(ies) of session "
            f"{session.id} are paired with their command by code only, and "
            f"{len(lost)} command(s) have no reply in the capture"
        ),
        detail=(
            "A hole in the capture (or its late start) lost some replies or commands, so the "
            "order alone no longer says which reply answers which command. Each reply after "
            "it was given to the first waiting command it can answer (a 354 only to DATA, "
            "'queued as' only to the end of a message, X.1.5 only to RCPT); where several "
            "could have drawn it the pairing is uncertain"
            + (f": {named}." if named else ".")
            + " Reply times for these are not measured."
        ),
        frames=frames[:50],
        next_steps=[
            "Capture again without drops (`tcpdump -B 8192`, a narrower capture filter) to "
            "see every reply.",
        ],
    )
