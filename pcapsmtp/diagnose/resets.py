"""Resets: who reset, in which SMTP phase, and whether the reset was forged on the path.

A RST injected by a firewall or IPS carries the TTL (IPv6: hop limit) of that box, not of the
host it claims to come from (FIELD-NOTES, "Middleboxes"), and, where the host numbers its
IPv4 packets with a counter, an IP ID that does not continue the count. Each RST is compared
with the packets of the same side that are not RSTs: a box that drops a transfer usually
forges one RST per segment it drops, and those must not vouch for each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from pcapsmtp.diagnose.evidence import (
    closed_early,
    count,
    cut_before_reset,
    host,
    phase_at,
    role,
    who,
)
from pcapsmtp.diagnose.model import ERROR, INFO, WARNING, Finding
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.vantage import hops
from pcapsmtp.smtp.model import Outcome, Session
from pcapsmtp.smtp.outcome import outlived
from pcapsmtp.tcp.model import IP_ID_STEP, TH_FIN, TH_RST, Endpoint, SegmentNote, TcpFlow

MIN_IP_ID_PAIRS = 4
"""Consecutive packets of a side needed before its IP IDs are read as a counter."""
COUNTER_SHARE = 0.9
"""Share of those steps that must count up by 1 to IP_ID_STEP (reordering, duplicates)."""


@dataclass(slots=True, frozen=True)
class Forgery:
    """Why a RST is not the host's own: its TTL, its IP ID, or both."""

    note: SegmentNote
    usual_ttls: tuple[int, ...] = ()
    """The TTLs of the side's other packets, when the RST's is not among them."""
    ip_id_after: int | None = None
    """The IP ID of the side's last packet before the RST, when the RST's does not follow it."""


def _resets(flow: TcpFlow) -> list[SegmentNote]:
    return [n for n in flow.notes if n.tcp_flags & TH_RST]


def _non_reset_ttls(flow: TcpFlow, direction: int) -> Counter:
    """TTL -> packets of that side that were not RSTs."""
    ttls = Counter(flow.endpoints[direction].ttls)
    for note in _resets(flow):
        if note.direction == direction:
            ttls[note.ttl] -= 1
    return Counter({ttl: n for ttl, n in ttls.items() if n > 0})


def counts_ip_ids(sender: Endpoint) -> bool:
    """The side numbers its IPv4 packets with an incrementing counter (Linux per connection,
    Windows per host), not randomly (OpenBSD, macOS) or with zeros."""
    return (
        sender.ip_id_pairs >= MIN_IP_ID_PAIRS
        and sender.ip_id_steps >= COUNTER_SHARE * sender.ip_id_pairs
    )


def _breaks_count(sender: Endpoint, note: SegmentNote) -> bool:
    """A RST whose IP ID does not continue the side's counter. IP ID 0 proves nothing: Linux
    gives it to every RST it sends for a socket that no longer exists, as iptables gives it
    to the RSTs it forges."""
    if note.prev_ip_id is None or note.ip_id == 0 or not counts_ip_ids(sender):
        return False
    return not 0 < (note.ip_id - note.prev_ip_id) & 0xFFFF <= IP_ID_STEP


def _id_forged(flow: TcpFlow, direction: int) -> set[int]:
    """Frames of the side's RSTs that break its IP ID count while the host went on sending
    after the first of them. Both are needed: a host whose socket is gone (its process died,
    it closed, it gave up) answers later segments with RSTs numbered apart from the
    connection (older Linux kernels, other systems), but it sends nothing else after them;
    a host that keeps talking never sent the reset."""
    sender = flow.endpoints[direction]
    breaking = [n for n in _resets(flow) if n.direction == direction and _breaks_count(sender, n)]
    if not breaking or sender.ip_id_last == breaking[0].prev_ip_id:
        return set()
    return {n.frame for n in breaking}


def forgery(flow: TcpFlow, note: SegmentNote) -> Forgery | None:
    """Why this RST was forged on the path, or None when it looks like its sender's own."""
    usual = _non_reset_ttls(flow, note.direction)
    if not usual:
        return None
    odd_ttl = note.ttl not in usual
    odd_id = note.frame in _id_forged(flow, note.direction)
    if not odd_ttl and not odd_id:
        return None
    return Forgery(
        note=note,
        usual_ttls=tuple(sorted(usual)) if odd_ttl else (),
        ip_id_after=note.prev_ip_id if odd_id else None,
    )


def _harmless(session: Session, note: SegmentNote) -> bool:
    """A RST that closes a finished conversation: after QUIT, or after a FIN that was not
    its sender's own FIN in the middle of the session (``closed_early``)."""
    flow = session.flow
    if session.quit is not None and session.quit.frame < note.frame:
        return True
    fins_before = [n for n in flow.notes if n.tcp_flags & TH_FIN and n.frame < note.frame]
    if not fins_before:
        return False
    early = closed_early(session, note.direction)
    return early is None or early.frame != fins_before[0].frame


def _after_refusal(session: Session, note: SegmentNote) -> bool:
    """A client RST right after the server's last reply refused it (4xx/5xx): how some
    clients hang up instead of sending QUIT, not a fault of its own."""
    flow = session.flow
    last = session.last_reply
    return (
        note.direction == flow.client
        and last is not None
        and last.code >= 400
        and last.frame < note.frame
        and session.outcome in (Outcome.REJECTED, Outcome.DEFERRED)
    )


def _frames_text(frames: list[int]) -> str:
    if len(frames) == 1:
        return f"frame {frames[0]}"
    shown = ", ".join(map(str, frames[:-1]))
    return f"frames {shown} and {frames[-1]}"


def _evidence(forged: list[Forgery]) -> str:
    """'has TTL 64 where its other packets have 62' for one RST, or the volley's words."""
    one = len(forged) == 1
    parts = []
    ttl_forged = [f for f in forged if f.usual_ttls]
    if ttl_forged:
        ttls = "/".join(map(str, sorted({f.note.ttl for f in ttl_forged})))
        usual = "/".join(map(str, ttl_forged[0].usual_ttls))
        verb = "has" if one else "have" if len(ttl_forged) == len(forged) else "some have"
        parts.append(f"{verb} TTL {ttls} where its other packets have {usual}")
    id_forged = [f for f in forged if f.ip_id_after is not None]
    if id_forged:
        first = id_forged[0]
        ids = ", ".join(f"{f.note.ip_id:#06x}" for f in id_forged[:4])
        verb = "carries" if one else "carry" if len(id_forged) == len(forged) else "some carry"
        parts.append(f"{verb} IP ID {ids} where its packets count up from {first.ip_id_after:#06x}")
    return " and ".join(parts)


def _why_forged(session: Session, direction: int, forged: list[Forgery]) -> str:
    """The evidence as sentences, up to the reason a host would not have sent them."""
    flow = session.flow
    sender = who(flow, direction)
    by_ttl = [f for f in forged if f.usual_ttls]
    by_id = [f for f in forged if f.ip_id_after is not None]
    parts, reasons = [], []
    if by_ttl:
        which = (
            f"the reset in frame {by_ttl[0].note.frame}"
            if len(by_ttl) == 1
            else f"the {len(by_ttl)} resets in {_frames_text([f.note.frame for f in by_ttl])}"
        )
        ttls = "/".join(map(str, sorted({f.note.ttl for f in by_ttl})))
        parts.append(
            f"Every packet of {sender} in this connection arrived with TTL "
            f"{'/'.join(map(str, by_ttl[0].usual_ttls))}, except {which} with TTL {ttls}."
        )
        reasons.append("a host does not change its TTL within one connection")
    if by_id:
        first = by_id[0]
        which = (
            f"the reset in frame {first.note.frame} carries"
            if len(by_id) == 1
            else f"the resets in {_frames_text([f.note.frame for f in by_id])} carry"
        )
        ids = ", ".join(f"{f.note.ip_id:#06x}" for f in by_id[:4])
        parts.append(
            f"{sender[0].upper() + sender[1:]} numbers its packets with a counter and went on "
            f"sending after the first reset, but {which} IP ID {ids} where the count stood at "
            f"{first.ip_id_after:#06x}."
        )
        reasons.append("a host's own reset continues its count and ends its sending")
    reason = " and ".join(reasons)
    return " ".join(parts) + " " + reason[0].upper() + reason[1:]


@session_rule("middlebox-reset")
def middlebox_reset(session: Session, context) -> Iterator[Finding]:
    """Every RST that a side's other packets say it did not send (TTL, IP ID counter), one
    finding per side. ERROR when the first one cut a session that had not delivered,
    WARNING when the mail had been accepted, INFO after a FIN or QUIT (a finished
    conversation)."""
    flow = session.flow
    for direction in (flow.client, flow.server):
        forged = [
            f
            for note in _resets(flow)
            if note.direction == direction and (f := forgery(flow, note)) is not None
        ]
        if forged:
            yield _middlebox_finding(session, direction, forged)


def _middlebox_finding(session: Session, direction: int, forged: list[Forgery]) -> Finding:
    flow = session.flow
    first = forged[0].note
    frames = [f.note.frame for f in forged]
    sender = flow.endpoints[direction]
    phase = phase_at(session, first.frame)
    evidence = _evidence(forged)
    one = len(forged) == 1
    went_on = all(outlived(flow, f.note) for f in forged)
    if _harmless(session, first):
        severity = INFO
    elif session.outcome == Outcome.DELIVERED or went_on:
        severity = WARNING
    else:
        severity = ERROR
    the_rsts = (
        f"the RST in {_frames_text(frames)}"
        if one
        else (f"{len(frames)} RSTs ({_frames_text(frames)})")
    )
    usual_ttls = next((f.usual_ttls for f in forged if f.usual_ttls), ())
    hops = [_hops_step(first.ttl, max(usual_ttls), role(flow, direction))] if usual_ttls else []
    return Finding(
        code="middlebox-reset",
        severity=severity,
        summary=(
            f"{the_rsts} {'claims' if one else 'claim'} to come from the "
            f"{role(flow, direction)} {host(sender)} but {evidence}: a device on the path "
            f"forged {'it' if one else 'them'}, during {phase}"
        ),
        detail=(
            _why_forged(session, direction, forged)
            + f", so {'the reset was' if one else 'the resets were'} made by a box between "
            "the capture point and that host (firewall, IPS, SMTP proxy, load balancer) that "
            + ("tried to cut" if went_on else "cut")
            + f" the connection during {phase}"
            + ("" if one else "; such a box sends one reset for each segment it stops")
            + f". A capture taken at {host(sender)} at the same time would not show "
            f"{'this reset' if one else 'these resets'}."
            + (
                " The connection went on after "
                + ("it" if one else "them")
                + ": the hosts ignored "
                + ("it" if one else "them")
                + " (out of their window, or too late), so nothing was cut."
                if severity == WARNING and went_on
                else " The mail had already been accepted, so only the end of the session was cut."
                if severity == WARNING
                else ""
            )
        ),
        frames=frames[:20],
        next_steps=[
            "Look in the logs of the firewalls and IPS between the two hosts at "
            "this time for a session teardown or a signature match (DATA with a "
            "pattern, a size limit, an SMTP inspection policy).",
            "Capture at both ends at once (`pcapsmtp diff CLIENT SERVER --same-session`) to "
            f"see {'the reset' if one else 'the resets'} appear on one side only.",
            *hops,
        ],
    )


def _hops_step(forged_ttl: int, usual_ttl: int, sender: str) -> str:
    """Where the forging box sits, from how many routers each TTL crossed (hosts start at
    64, 128 or 255 and every router takes one off)."""
    box, real = hops(forged_ttl), hops(usual_ttl)
    where = (
        "with no router between it and the capture point: on that network segment, or "
        "the first router itself"
        if box == 0
        else f"{count(box, 'router')} away from the capture point"
    )
    return (
        f"Locate the box by its TTL: the {sender}'s packets crossed {count(real, 'router')} "
        f"to reach the capture point (TTL {usual_ttl}), the reset {count(box, 'router')} (TTL "
        f"{forged_ttl}), assuming the usual starting TTLs of 64, 128 or 255: the box that "
        f"made it sits {where}."
    )


@session_rule("reset")
def reset(session: Session, context) -> Iterator[Finding]:
    """The first RST of each side that its own packets vouch for, sent before any FIN or
    QUIT. ERROR; INFO when every message had been accepted before (the reset only cut the
    goodbye)."""
    flow = session.flow
    if session.outcome in (Outcome.TIMEOUT, Outcome.TLS_FAILED):
        return  # the side that gave up resets; the timeout and TLS findings name the cause
    reported: set[int] = set()
    for note in _resets(flow):
        if note.direction in reported:
            continue  # the first one ended the session; the rest answer late packets
        if forgery(flow, note) is not None or _harmless(session, note):
            continue
        if any(r.direction != note.direction and r.frame < note.frame for r in _resets(flow)):
            continue  # the peer's reset (its own or forged) ended it; this answers late packets
        if _after_refusal(session, note):
            continue  # the client hung up on a refusal; the reply findings name it
        phase = phase_at(session, note.frame)
        sender = flow.endpoints[note.direction]
        handshake = flow.synack_time_ns is None and note.direction == flow.server
        if handshake and not session.commands:
            continue  # a refused connection: connect-refused says it better
        reported.add(note.direction)
        early = closed_early(session, note.direction)
        if early is not None and early.frame < note.frame:
            yield _closed_then_reset(session, early, note)
            continue
        delivered = session.outcome == Outcome.DELIVERED
        cut = cut_before_reset(session, note)
        yield Finding(
            code="reset",
            severity=INFO if delivered else WARNING if cut else ERROR,
            summary=(
                f"the {role(flow, note.direction)} {host(sender)} reset the connection "
                f"during {phase} (frame {note.frame})"
            ),
            detail=(
                f"{who(flow, note.direction).capitalize()} sent a RST in frame {note.frame} "
                f"while the session was in {phase}; no FIN or QUIT had closed it before, so "
                f"the session ended there ({session.outcome}). Its TTL ({note.ttl}) matches the "
                "sender's other packets, so the sender itself reset: look at its logs for why "
                "(a crash, a policy, an idle or overall timeout, a client that gave up)."
                + (
                    " Every message had been accepted before: the reset only cut the end of "
                    "the session."
                    if delivered
                    else ""
                )
                + (
                    f" The {role(flow, 1 - note.direction)}'s data just before it (frame "
                    f"{cut}) was cut by the capture's snap length: it may have been a reply "
                    "that ended the session (a 221 to QUIT, a 421), which a host may answer "
                    "with a RST."
                    if cut
                    else ""
                )
            ),
            frames=[cut, note.frame] if cut else [note.frame],
            next_steps=[
                f"Check the log of {host(sender)} (the MTA, or the application that opened the "
                "connection) at this time.",
                "If the reset follows a long silence, look at the timeouts on both sides "
                "(RFC 5321 4.5.3.2) and at what kept the other side silent.",
            ],
        )


def _closed_then_reset(session: Session, fin: SegmentNote, first: SegmentNote) -> Finding:
    """A side that closed in the middle of the session and reset what its peer sent after."""
    flow = session.flow
    side, peer = fin.direction, 1 - fin.direction
    sender, other = flow.endpoints[side], flow.endpoints[peer]
    resets = [n.frame for n in _resets(flow) if n.direction == side and n.frame > fin.frame]
    acked = other.last_acked_frame
    if acked is not None and acked > fin.frame:
        acked = None  # acknowledged after the FIN: not what the side had taken before it
    phase = phase_at(session, fin.frame)
    delivered = session.outcome == Outcome.DELIVERED
    what = "the message" if phase == "the message transfer (DATA)" else "what its peer was sending"
    acked_text = (
        f"; the last data of the {role(flow, peer)} it acknowledged is in frame {acked}"
        if acked
        else ""
    )
    frames = sorted({fin.frame, first.frame, *([acked] if acked else [])})
    return Finding(
        code="reset",
        severity=INFO if delivered else ERROR,
        summary=(
            f"the {role(flow, side)} {host(sender)} closed the connection during {phase} "
            f"(FIN, frame {fin.frame}) and reset the {len(resets)} segment(s) the "
            f"{role(flow, peer)} sent after it: it closed before accepting {what}"
        ),
        detail=(
            f"{who(flow, side).capitalize()} sent a FIN in frame {fin.frame} while the session "
            f"was in {phase}, with no reply saying why and no QUIT before{acked_text}. "
            f"{who(flow, peer).capitalize()} went on sending, and every further segment was "
            f"answered by a RST (first in frame {first.frame}) with the "
            f"{role(flow, side)}'s own TTL ({first.ttl}): its end of the connection no longer "
            "existed. That is how a kernel closes the sockets of a process that ended (killed, "
            "crashed, out of memory, restarted) when nothing was left unread: the "
            f"{role(flow, side)} closed the connection before accepting {what}, and the "
            f"session ended there ({session.outcome})."
        ),
        frames=frames,
        next_steps=[
            f"Check the log of {host(sender)} at this time for the MTA process that handled "
            "the connection: a crash, a kill (OOM killer, a restart, a watchdog), a signal "
            "(Postfix: 'process /usr/lib/postfix/sbin/smtpd pid N killed by signal 9').",
            "Check the host's memory, disk and resource limits, and any content filter or "
            "milter the MTA waits for during DATA.",
        ],
    )
