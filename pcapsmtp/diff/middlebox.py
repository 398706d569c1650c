"""What a box between two capture points did to one connection, as ``TransitFact``s:
segments that vanished or were fragmented, RSTs seen on one side only, handshake options and
TTLs rewritten, addresses translated, banner and EHLO keywords masked.

Side a is the client side, side b the server side; "upstream" of a segment is the capture on
its sender's side, "downstream" the other one.
"""

from __future__ import annotations

from pcapsmtp.capture.addresses import endpoint_name
from pcapsmtp.smtp.events import CLIENT, SERVER, Side
from pcapsmtp.smtp.model import Session
from pcapsmtp.smtp.software import is_masked_banner, masked_ehlo_keywords

from .model import Diff, TransitFact
from .parameters import extensions
from .segments import FlowView
from .transit import ResetTransit, Transit, compare_direction, resets, usual_ttl

SIDES = ("client side", "server side")
MIN_BLACKHOLE_PACKET = 576
"""Every IPv4 path carries 576-byte packets (RFC 791): a limit below is no MTU."""


def transit_facts(diff: Diff, va: FlowView, vb: FlowView) -> None:
    """Fill ``diff.transit`` and ``diff.facts`` from the two views of the connection."""
    sa, sb = diff.a.session, diff.b.session
    _segments(diff, va, vb)
    diff.facts += _smtp_facts(sa, sb)
    diff.facts += _address_facts(sa, sb, va, vb)


# -- segments -------------------------------------------------------------------------------


def _segments(diff: Diff, va: FlowView, vb: FlowView) -> None:
    """Compare both directions: client data (a -> b) and server data (b -> a)."""
    c2s = compare_direction(va, vb, CLIENT)
    s2c = compare_direction(vb, va, SERVER)
    diff.transit = [c2s.summary, s2c.summary]
    diff.facts += _reset_facts(va, vb, CLIENT, c2s.offset_ns, s2c)
    diff.facts += _reset_facts(vb, va, SERVER, s2c.offset_ns, c2s)
    diff.facts += _segment_facts(c2s, up_is_a=True)
    diff.facts += _segment_facts(s2c, up_is_a=False)
    diff.facts += _handshake_facts(va, vb)


def _frames(up_is_a: bool, up: list[int], down: list[int] = ()) -> dict:
    return {
        "frames_a": list(up if up_is_a else down)[:50],
        "frames_b": list(down if up_is_a else up)[:50],
    }


def _sides(sender: Side) -> tuple[str, str]:
    """(upstream, downstream) names for a sender."""
    return SIDES if sender == CLIENT else SIDES[::-1]


def _segment_facts(transit: Transit, up_is_a: bool) -> list[TransitFact]:
    summary = transit.summary
    sender = summary.sender
    up, down = _sides(sender)
    facts = []
    if transit.vanished:
        facts.append(_vanished_fact(transit, up_is_a))
    if transit.unconfirmed:
        frames = [s.frame for s in transit.unconfirmed]
        sizes = _sizes(transit.unconfirmed)
        facts.append(
            TransitFact(
                "segments-unconfirmed",
                f"{count(len(frames), sender + ' segment')} ({sizes}) seen at the {up} are not "
                f"in the {down} capture, which holds nothing later from this connection: it "
                "may have stopped before they could arrive, or a box dropped them",
                **_frames(up_is_a, frames),
            )
        )
    if transit.fragmented:
        sent = [pair[0] for pair in transit.fragmented]
        facts.append(
            TransitFact(
                "fragmented",
                f"{count(len(sent), sender + ' segment')} sent whole ({_sizes(sent)}) arrived at "
                f"the {down} in IP fragments: a router between the two points fragmented them",
                "ip-fragmentation",
                **_frames(
                    up_is_a, [s.frame for s in sent], [p[1].frame for p in transit.fragmented]
                ),
            )
        )
    if summary.appeared:
        facts.append(
            TransitFact(
                "segments-appeared",
                f"{count(summary.appeared, sender + ' data segment')} reached the {down} that the "
                f"{up} never saw leave: injected on the way, or lost by the {up} capture",
            )
        )
    return facts


def count(n: int, noun: str) -> str:
    """'1 segment', '21 segments'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _sizes(segments) -> str:
    sizes = sorted({s.ip_len for s in segments})
    shown = ", ".join(map(str, sizes[:6])) + (", ..." if len(sizes) > 6 else "")
    return f"{shown} bytes"


def _vanished_fact(transit: Transit, up_is_a: bool) -> TransitFact:
    sender = transit.summary.sender
    up, down = _sides(sender)
    vanished, arrived = transit.vanished, transit.arrived
    frames = [s.frame for s in vanished]
    largest_arrived = max((s.ip_len for s in arrived), default=0)
    smallest_vanished = min(s.ip_len for s in vanished)
    n = len(vanished)
    if smallest_vanished > largest_arrived:
        pattern = (
            f"every {sender} segment larger than {largest_arrived} bytes (IP) vanished: "
            f"{count(n, 'transmission')} of {_sizes(vanished)} seen at the {up} never reached "
            f"the {down}" + (f", while all {len(arrived)} smaller ones arrived" if arrived else "")
        )
        blackhole = n >= 2 and smallest_vanished >= MIN_BLACKHOLE_PACKET
        if blackhole:
            pattern += ": a path-MTU black hole between the two points"
        return TransitFact(
            "segments-vanished",
            pattern,
            "mtu-blackhole" if blackhole else None,
            **_frames(up_is_a, frames),
        )
    return TransitFact(
        "segments-dropped",
        f"{count(n, sender + ' segment')} ({_sizes(vanished)}) seen at the {up} never reached the "
        f"{down}, while others as large arrived: dropped on the way, not for their size",
        **_frames(up_is_a, frames),
    )


def _reset_facts(
    up: FlowView, down: FlowView, sender: Side, offset: int, peer: Transit
) -> list[TransitFact]:
    """The ``sender``'s RSTs seen on one side only. ``peer``: the other direction, whose
    vanished segments a forged RST may answer."""
    facts = []
    for reset in resets(up, down, sender, offset):
        if reset.seen_at == "down":
            facts.append(_arrived_alone(reset, up, down, peer))
        elif not reset.both and reset.other_continued:
            up_is_a = sender == CLIENT
            facts.append(
                TransitFact(
                    "rst-dropped",
                    f"the {sender}'s RST (frame {reset.segment.frame}) never reached the "
                    f"{_sides(sender)[1]}",
                    **_frames(up_is_a, [reset.segment.frame]),
                )
            )
    return facts


def _arrived_alone(reset: ResetTransit, up: FlowView, down: FlowView, peer: Transit):
    """A RST seen only where it arrived: forged when its TTL is not the one the sender's
    packets arrive with (FIELD-NOTES: an injected RST carries the box's TTL), or when the
    sender's side capture goes on without it."""
    sender, segment = reset.sender, reset.segment
    up_name, down_name = _sides(sender)
    frames = _frames(sender == CLIENT, [], [segment.frame])
    usual = usual_ttl(down, sender)
    ttl_differs = usual is not None and segment.ttl != usual
    if not (reset.other_continued or ttl_differs):
        return TransitFact(
            "rst-unconfirmed",
            f"a RST from the {sender} reached the {down_name} (frame {segment.frame}) after "
            f"the {up_name} capture had stopped: whether the {sender} sent it cannot be told",
            **frames,
        )
    why = []
    if ttl_differs:
        why.append(f"its TTL {segment.ttl} is not the {usual} the {sender}'s packets arrive with")
    if reset.other_continued:
        why.append(f"the {up_name} capture goes on and shows no such RST")
    answer, answered = _answering(peer, segment, sender, down_name)
    ip = endpoint_name(up.flow.endpoints[_index(up, sender)])
    frames = _frames(sender == CLIENT, [], [segment.frame, *answered])
    return TransitFact(
        "rst-forged",
        f"a RST claiming to come from the {sender} {ip} reached the {down_name} (frame "
        f"{segment.frame}) but the {sender} never sent it: {' and '.join(why)}; a box between "
        f"the two points forged it{answer}",
        "middlebox-reset",
        **frames,
    )


def _answering(peer: Transit, reset, sender: Side, where: str) -> tuple[str, list[int]]:
    """A forged RST right after a segment the box swallowed is the box's answer to it:
    (the phrase that says so, that segment's frame)."""
    before = [s for s in peer.vanished + peer.unconfirmed if s.time_ns <= reset.time_ns]
    if not before:
        return "", []
    last = max(before, key=lambda s: s.time_ns)
    return (
        f", right after the {peer.summary.sender}'s segment in frame {last.frame} of the "
        f"{where} ({last.length} bytes of data), which never reached the {sender}: the box "
        f"dropped it and reset the connection in the {sender}'s name",
        [last.frame],
    )


def _index(view: FlowView, sender: Side) -> int:
    return view.flow.client if sender == CLIENT else view.flow.server


def _handshake_facts(va: FlowView, vb: FlowView) -> list[TransitFact]:
    facts = []
    for sender, up, down in ((CLIENT, va, vb), (SERVER, vb, va)):
        sent = up.flow.endpoints[_index(up, sender)].handshake
        got = down.flow.endpoints[_index(down, sender)].handshake
        what = "SYN" if sender == CLIENT else "SYN/ACK"
        if sent is None or got is None:
            continue
        for attr, name, code in (
            ("mss", "MSS", "mss-rewritten"),
            ("wscale", "window scale", "wscale-rewritten"),
            ("sack_permitted", "SACK permitted", "sack-removed"),
            ("timestamps", "timestamps", "timestamps-removed"),
        ):
            before, after = getattr(sent, attr), getattr(got, attr)
            if before != after:
                facts.append(
                    TransitFact(
                        code,
                        f"the {sender}'s {what} left with {name} {_value(before)} and arrived "
                        f"with {_value(after)}: a box between the two points rewrote it",
                    )
                )
        hops = _ttl_hops(up, down, sender)
        if hops is not None and hops < 0:
            facts.append(
                TransitFact(
                    "ttl-rewritten",
                    f"the {sender}'s packets arrive with a higher TTL than they left with "
                    f"({usual_ttl(down, sender)} against {usual_ttl(up, sender)}): a box "
                    "between the two points rewrites the TTL",
                )
            )
    return facts


def _ttl_hops(up: FlowView, down: FlowView, sender: Side) -> int | None:
    before, after = usual_ttl(up, sender), usual_ttl(down, sender)
    return None if before is None or after is None else before - after


def _value(value) -> str:
    if value is None or value is False:
        return "none" if value is None else "off"
    return "on" if value is True else str(value)


def _address_facts(sa: Session, sb: Session, va: FlowView, vb: FlowView) -> list[TransitFact]:
    facts = []
    for role, ea, eb in ((CLIENT, sa.client, sb.client), (SERVER, sa.server, sb.server)):
        if (ea.ip, ea.port) != (eb.ip, eb.port):
            facts.append(
                TransitFact(
                    "nat",
                    f"the {role} is {endpoint_name(ea)} at the client side and "
                    f"{endpoint_name(eb)} at the server side: address translation",
                )
            )
    for sender in (CLIENT, SERVER):
        isn_a, isn_b = va.isn.get(sender), vb.isn.get(sender)
        if isn_a is not None and isn_b is not None and isn_a != isn_b:
            facts.append(
                TransitFact(
                    "isn-rewritten",
                    f"the {sender}'s initial sequence number differs between the two points "
                    "(a firewall's sequence number randomisation)",
                )
            )
    return facts


# -- SMTP -----------------------------------------------------------------------------------


def _smtp_facts(sa: Session, sb: Session) -> list[TransitFact]:
    """What the client got (a) against what the server sent (b)."""
    facts = []
    ga, gb = sa.greeting, sb.greeting
    if ga is not None and gb is not None and ga.text != gb.text:
        masked = is_masked_banner(ga.text)
        facts.append(
            TransitFact(
                "banner-masked" if masked else "banner-changed",
                f"the server's banner “{gb.text}” reached the client as “{ga.text}”"
                + (": masked by an SMTP inspection" if masked else ""),
                "smtp-inspection" if masked else None,
                [ga.frame],
                [gb.frame],
            )
        )
    ka, kb = extensions(sa), extensions(sb)
    if sa.ehlo is not None and sb.ehlo is not None and set(ka) != set(kb):
        lost = [k for k in kb if k not in ka]
        masked = masked_ehlo_keywords(sa.ehlo.lines)
        if "STARTTLS" in lost:
            facts.append(
                TransitFact(
                    "starttls-removed",
                    "the server offers STARTTLS but the client never sees it: a box between "
                    "removed it, so the mail goes in clear text",
                    "smtp-inspection",
                    [sa.ehlo.frame],
                    [sb.ehlo.frame],
                )
            )
        facts.append(
            TransitFact(
                "ehlo-masked" if masked else "ehlo-changed",
                f"EHLO keywords the server sent but the client did not get: {' '.join(lost) or '-'}"
                + (f"; masked to {' '.join(masked)}" if masked else ""),
                "smtp-inspection" if masked or lost else None,
                [sa.ehlo.frame],
                [sb.ehlo.frame],
            )
        )
    return facts
