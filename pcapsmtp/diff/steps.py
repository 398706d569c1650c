"""A session as a list of steps: the greeting, each command with its reply, the message, TLS,
replies nobody asked for, and how the connection ended. Each step also carries the TCP trouble
(retransmissions, resets, zero windows, ICMP) that happened while it was under way.

What the capture did is told apart from what the network did: a frame that repeats a packet
captured just before (CaptureInfo.copy_frames) is no retransmission, a RST the connection
outlived (smtp.outcome.outlived) did not end it, and a reply in a hole the capture lost is
not a reply the server never sent.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Set
from itertools import pairwise

from pcapsmtp.smtp.events import (
    AUTH_RESPONSE,
    CLIENT,
    END_OF_DATA,
    REDACTED,
    SERVER,
    Command,
    Reply,
    Side,
)
from pcapsmtp.smtp.model import Outcome, Session, Transaction
from pcapsmtp.smtp.outcome import outlived
from pcapsmtp.tcp.model import TH_FIN, TH_RST, Flag, SegmentNote, TcpFlow

from .model import Step


def session_steps(session: Session, copies: Set[int] = frozenset()) -> list[Step]:
    """The steps of a session in the order they happened, the end last. ``copies``: frames of
    its capture that repeat a packet captured just before (not counted as retransmissions)."""
    steps = [_command_step(session, command) for command in session.commands]
    _mark_lost_replies(session, steps)
    steps += _unfinished_messages(session)
    steps += [_unsolicited_step(reply) for reply in session.unsolicited]
    if session.tls is not None:
        steps.append(_tls_step(session))
    # A stable sort: pipelined commands completed by one frame keep their order.
    steps.sort(key=lambda step: step.frame or 0)
    steps.insert(0, _greeting_step(session))
    end = _end_step(session)
    if session.outcome == Outcome.INCOMPLETE and any(step.reply_lost for step in steps):
        end.outcome_unknown = True  # the replies that would tell are in the capture's holes
    steps.append(end)
    _assign_spans(steps, session.flow, copies)
    return steps


def _greeting_step(session: Session) -> Step:
    greeting = session.greeting
    step = Step(
        key="greeting",
        label="greeting",
        frame=greeting.frame if greeting else None,
        time_ns=greeting.time_ns if greeting else None,
        reply=greeting,
        latency_ns=session.greeting_latency_ns,
    )
    if greeting is None and session.tls is not None and session.tls.mode == "implicit":
        step.hidden = True
        step.note = "inside TLS"
    elif greeting is None and session.flow.syn_time_ns is None and session.commands:
        step.hidden = True
        step.note = "before the capture started"
    elif greeting is None and session.one_sided == CLIENT:
        step.hidden = True
        step.note = ONLY_CLIENT
    return step


def _command_step(session: Session, command: Command) -> Step:
    reply = command.reply
    step = Step(
        key=command.verb,
        label=REDACTED if command.verb == AUTH_RESPONSE else command.text,
        argument="" if command.secret else command.argument,
        frame=command.frame,
        time_ns=command.time_ns,
        reply=reply,
        latency_ns=reply.time_ns - command.time_ns if reply else None,
    )
    if command.verb == AUTH_RESPONSE:
        step.key = "auth-response"
    if command.verb == END_OF_DATA or (command.verb == "BDAT" and command.bdat_last):
        # The final dot and the last BDAT chunk both complete the message: one key.
        message = command.message
        step.key = "message"
        if message is not None:
            name = "message" if command.verb == END_OF_DATA else step.label
            step.label = f"{name}, {message.size} bytes"
            step.incomplete = not message.complete
            if not message.complete:
                step.note = "bytes of the message are missing from the capture"
    return step


ONLY_CLIENT = "the capture holds only the client's packets"
LOST = "the capture lost the reply"


def _mark_lost_replies(session: Session, steps: list[Step]) -> None:
    """Commands left unanswered with a hole the capture lost in the server's bytes between
    the replies captured around them: replies come in order, so theirs was in it.
    In a capture of the client's packets only, no reply can be in it."""
    if session.one_sided == CLIENT:
        for step in steps:
            if step.reply is None and step.frame is not None and step.key not in ("tls",):
                step.reply_lost = ONLY_CLIENT
                step.note = step.note or ONLY_CLIENT
        return
    holes = [g.frame for g in session.gaps if g.sender == SERVER and g.reason == "not captured"]
    if not holes:
        return
    replies = sorted(c.reply.frame for c in session.commands if c.reply is not None)
    for step in steps:
        if step.reply is not None or step.frame is None or step.key == "tls":
            continue
        following = bisect_right(replies, step.frame)
        limit = replies[following] if following < len(replies) else None
        # After the last reply captured before the command (a pipelined command's own frame
        # may acknowledge the hole), at or before the next one.
        after = replies[following - 1] if following else 0
        if any(after < frame and (limit is None or frame <= limit) for frame in holes):
            step.reply_lost = LOST
            step.note = step.note or LOST


def _unfinished_messages(session: Session) -> list[Step]:
    """A message whose end was never seen: DATA got its 354, then no final dot came."""
    commands = session.commands
    ended = {
        id(command.reply)
        for command, following in pairwise(commands)
        if command.verb == "DATA" and following.verb == END_OF_DATA
    }
    steps = []
    for transaction in session.transactions:
        reply = transaction.data_reply
        if transaction.method != "DATA" or reply is None or reply.code != 354:
            continue
        if id(reply) in ended:
            continue
        steps.append(_unfinished_step(transaction, reply))
    return steps


def _unfinished_step(transaction: Transaction, data_reply: Reply) -> Step:
    size = transaction.size or 0
    return Step(
        key="message",
        label=f"message, {size} bytes, unfinished",
        frame=data_reply.frame,
        time_ns=data_reply.time_ns,
        incomplete=True,
        note=f"{size} bytes of the message seen, never its end",
    )


def _unsolicited_step(reply: Reply) -> Step:
    return Step(
        key="unsolicited",
        label="(no command)",
        frame=reply.frame,
        time_ns=reply.time_ns,
        reply=reply,
    )


def _tls_step(session: Session) -> Step:
    tls = session.tls
    facts = tls.facts
    found = (facts.version, facts.cipher) if facts is not None else ()
    what = ", ".join(str(x) for x in found if x)
    label = "TLS handshake" + (" (implicit)" if tls.mode == "implicit" else "")
    if tls.failed:
        label += " failed"
    return Step(
        key="tls",
        label=label + (f": {what}" if what else ""),
        frame=tls.frame,
        incomplete=tls.failed,
        note="the handshake failed" if tls.failed else "the dialogue goes on inside TLS",
    )


def ending(session: Session) -> tuple[str, str]:
    """How the connection ended, as (kind, phrase): kind is 'reset', 'closed' or 'open'. A RST
    the connection outlived (a forged one the hosts ignored) ended nothing."""
    flow = session.flow
    resets = [n for n in flow.notes if n.tcp_flags & TH_RST and not outlived(flow, n)]
    fins = [n for n in flow.notes if n.tcp_flags & TH_FIN]
    if resets and (not fins or resets[0].frame < fins[0].frame):
        first = resets[0]
        return "reset", f"reset by the {_who(flow, first)} (frame {first.frame}, TTL {first.ttl})"
    if fins:
        first = fins[0]
        return "closed", f"closed by the {_who(flow, first)} (frame {first.frame})"
    return "open", "still open when the capture ended"


def _who(flow: TcpFlow, note: SegmentNote) -> Side:
    return CLIENT if note.direction == flow.client else SERVER


def _end_step(session: Session) -> Step:
    kind, phrase = ending(session)
    flow = session.flow
    return Step(
        key="end",
        label=phrase,
        argument=kind,
        frame=flow.last_frame,
        time_ns=flow.last_time_ns,
        note=f"{session.outcome}: {session.outcome_reason}",
        outcome=session.outcome,
        outcome_unknown=session.one_sided is not None,
    )


def _assign_spans(steps: list[Step], flow: TcpFlow, copies: Set[int]) -> None:
    """Each step spans from the frame after the previous one to its reply (or, with no
    reply, to just before the next step); the end step takes whatever is left."""
    previous = flow.first_frame - 1
    for i, step in enumerate(steps):
        if step.reply is not None:
            last = step.reply.frame
        elif i + 1 < len(steps) and steps[i + 1].frame is not None:
            last = steps[i + 1].frame - 1
        else:
            last = step.frame or previous
        if step.key == "end":
            last = flow.last_frame
        step.first_frame = previous + 1
        step.last_frame = max(last, previous)
        previous = step.last_frame
    _count_trouble(steps, flow, copies)


def _count_trouble(steps: list[Step], flow: TcpFlow, copies: Set[int]) -> None:
    notes = flow.notes
    frames = [note.frame for note in notes]
    icmp_frames = sorted(error.frame for error in flow.icmp)
    for step in steps:
        lo = bisect_left(frames, step.first_frame)
        hi = bisect_right(frames, step.last_frame)
        counts: dict[str, int] = {}
        for note in notes[lo:hi]:
            retransmitted = note.analysis & Flag.ANY_RETRANSMISSION and note.length
            if retransmitted and note.frame not in copies:
                counts["retransmissions"] = counts.get("retransmissions", 0) + 1
            if note.analysis & Flag.ZERO_WINDOW:
                counts["zero_windows"] = counts.get("zero_windows", 0) + 1
            if note.tcp_flags & TH_RST:
                key = "ignored_resets" if outlived(flow, note) else "resets"
                counts[key] = counts.get(key, 0) + 1
        icmp = bisect_right(icmp_frames, step.last_frame) - bisect_left(
            icmp_frames, step.first_frame
        )
        if icmp:
            counts["icmp"] = icmp
        step.tcp = counts
