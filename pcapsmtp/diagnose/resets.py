"""Resets: who reset, in which SMTP phase, and whether the reset was forged on the path.

A RST injected by a firewall or IPS carries the TTL (IPv6: hop limit) of that box, not of the
host it claims to come from (FIELD-NOTES, "Middleboxes"): compared with the TTL of every
other packet from that side in the same connection, it stands out.
"""

from __future__ import annotations

from collections.abc import Iterator

from pcapsmtp.diagnose.evidence import count, host, phase_at, role, who
from pcapsmtp.diagnose.model import ERROR, INFO, Finding, frame_filter
from pcapsmtp.diagnose.registry import session_rule
from pcapsmtp.diagnose.vantage import hops
from pcapsmtp.smtp.model import Session
from pcapsmtp.tcp.model import TH_FIN, TH_RST, SegmentNote, TcpFlow


def _resets(flow: TcpFlow) -> list[SegmentNote]:
    return [n for n in flow.notes if n.tcp_flags & TH_RST]


def _forged(flow: TcpFlow, note: SegmentNote) -> tuple[int, ...] | None:
    """The TTLs of the sender's other packets, when the RST's TTL is not among them."""
    sender = flow.endpoints[note.direction]
    others = dict(sender.ttls)
    others[note.ttl] = others.get(note.ttl, 0) - 1
    usual = tuple(sorted(ttl for ttl, count in others.items() if count > 0))
    if not usual or note.ttl in usual:
        return None
    return usual


def _harmless(session: Session, note: SegmentNote) -> bool:
    """A RST that closes a finished conversation (after QUIT, or after this side's FIN)."""
    flow = session.flow
    fins_before = [n for n in flow.notes if n.tcp_flags & TH_FIN and n.frame < note.frame]
    quit_done = session.quit is not None and session.quit.frame < note.frame
    return bool(fins_before) or quit_done


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
        and session.outcome in ("rejected", "deferred")
    )


@session_rule("middlebox-reset")
def middlebox_reset(session: Session, context) -> Iterator[Finding]:
    flow = session.flow
    for note in _resets(flow):
        usual = _forged(flow, note)
        if usual is None:
            continue
        sender = flow.endpoints[note.direction]
        phase = phase_at(session, note.frame)
        usual_text = "/".join(map(str, usual))
        yield Finding(
            code="middlebox-reset",
            severity=ERROR if not _harmless(session, note) else INFO,
            summary=(
                f"the RST in frame {note.frame} claims to come from the "
                f"{role(flow, note.direction)} {host(sender)} but has TTL {note.ttl} where its "
                f"other packets have {usual_text}: a device on the path forged it, during {phase}"
            ),
            detail=(
                f"Every packet of {who(flow, note.direction)} in this connection arrived with TTL "
                f"{usual_text}, except the reset in frame {note.frame} with TTL {note.ttl}. A "
                "host does not change its TTL within one connection, so the reset was made by "
                "a box between the capture point and that host (firewall, IPS, SMTP proxy, "
                f"load balancer) that cut the connection during {phase}. A capture taken at "
                f"{host(sender)} at the same time would not show this reset."
            ),
            frames=[note.frame],
            filter=f"tcp.stream eq {flow.stream} && tcp.flags.reset == 1",
            next_steps=[
                "Look in the logs of the firewalls and IPS between the two hosts at "
                "this time for a session teardown or a signature match (DATA with a "
                "pattern, a size limit, an SMTP inspection policy).",
                "Capture at both ends at once (`pcapsmtp diff CLIENT SERVER --same-session`) to "
                "see the reset appear on one side only.",
                _hops_step(note.ttl, max(usual), role(flow, note.direction)),
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
    flow = session.flow
    if session.outcome in ("timeout", "tls-failed"):
        return  # the side that gave up resets; the timeout and TLS findings name the cause
    for note in _resets(flow):
        if _forged(flow, note) is not None or _harmless(session, note):
            continue
        if _after_refusal(session, note):
            continue  # the client hung up on a refusal; the reply findings name it
        phase = phase_at(session, note.frame)
        sender = flow.endpoints[note.direction]
        handshake = flow.synack_time_ns is None and note.direction == flow.server
        if handshake and not session.commands:
            continue  # a refused connection: connect-refused says it better
        yield Finding(
            code="reset",
            severity=ERROR,
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
            ),
            frames=[note.frame],
            filter=frame_filter([note.frame], flow.stream),
            next_steps=[
                f"Check the log of {host(sender)} (the MTA, or the application that opened the "
                "connection) at this time.",
                "If the reset follows a long silence, look at the timeouts on both sides "
                "(RFC 5321 4.5.3.2) and at what kept the other side silent.",
            ],
        )
