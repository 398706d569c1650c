"""fragments.py: IPv4 and IPv6 reassembly, checked against what we built and against tshark.

A 3,000-byte SMTP segment is cut into fragments that arrive in order, reversed, shuffled,
duplicated, overlapping, interleaved with another datagram, or never all arrive. Like
Wireshark, the datagram belongs to the frame that completes it and the first copy of an
overlapping byte wins; a set that never completes is reported with its frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from pcapsmtp.capture import TcpSegment, open_capture, packets
from tests.capture import build as b
from tests.capture.test_decode import our_segments, tshark_segments
from tests.capture.tshark import TSHARK, reader_facts, tshark_facts

PAYLOAD = bytes(i * 7 % 251 for i in range(3000))
SEQ = 5000
SEGMENT = b.tcp(PAYLOAD, seq=SEQ)  # 3,020 bytes


@dataclass(frozen=True)
class Piece:
    """Bytes ``start:end`` of a datagram, as one fragment."""

    start: int
    end: int | None
    """None: to the end of the datagram (the last fragment)."""
    ident: int = 1
    garbled: bool = False
    """Different bytes than the datagram's: a conflicting overlap."""
    whole: bool = False
    """Not a fragment: the whole datagram in one packet."""


WHOLE = Piece(0, None, ident=99, whole=True)


def fragment4(piece: Piece) -> bytes:
    data = SEGMENT[piece.start : piece.end]
    if piece.garbled:
        data = b"X" * len(data)
    if piece.whole:
        return b.ipv4(SEGMENT, ident=piece.ident)
    return b.ipv4(data, ident=piece.ident, offset=piece.start, more=piece.end is not None)


def fragment6(
    piece: Piece, before: bytes = b"", first: int = b.FRAGMENT, inner: bytes = b""
) -> bytes:
    """``before``: unfragmentable extension headers (``first`` names the first of them);
    ``inner``: extension headers inside the fragmentable part, before the TCP segment."""
    datagram = inner + SEGMENT
    data = datagram[piece.start : piece.end]
    if piece.garbled:
        data = b"X" * len(data)
    if piece.whole:
        return b.ipv6(SEGMENT)
    nxt = b.DEST_OPTS if inner else b.TCP
    more = piece.end is not None
    return b.ipv6(before + b.fragment_header(nxt, piece.start, more, piece.ident) + data, first)


A, B, C = Piece(0, 1480), Piece(1480, 2960), Piece(2960, None)
# (name, fragments in capture order, {completing frame: fragment frames}, frames never completed)
CASES = [
    ("in order", [A, B, C], {3: (1, 2, 3)}, ()),
    ("reversed", [C, B, A], {3: (1, 2, 3)}, ()),
    ("middle first", [B, A, C], {3: (1, 2, 3)}, ()),
    ("last before middle", [A, C, B], {3: (1, 2, 3)}, ()),
    ("duplicate first fragment", [A, A, B, C], {4: (1, 2, 3, 4)}, ()),
    ("every fragment captured twice (SPAN)", [A, A, B, B, C, C], {5: (1, 2, 3, 4, 5)}, ()),
    ("first fragment again after completion", [A, B, C, A], {3: (1, 2, 3)}, ()),
    ("overlap, same bytes", [Piece(0, 1600), Piece(1200, 2400), Piece(2400, None)],
     {3: (1, 2, 3)}, ()),
    (
        "overlap, conflicting bytes: the first copy wins",
        [Piece(0, 1600), Piece(1200, 1600, garbled=True), Piece(1600, None)],
        {3: (1, 2, 3)},
        (),
    ),
    ("first fragment of 8 bytes: the TCP header split", [Piece(0, 8), Piece(8, None)],
     {2: (1, 2)}, ()),
    (
        "two datagrams interleaved",
        [A, Piece(0, 1480, 2), B, Piece(1480, 2960, 2), C, Piece(2960, None, 2)],
        {5: (1, 3, 5), 6: (2, 4, 6)},
        (),
    ),
    ("a whole packet between fragments", [A, WHOLE, B, C], {2: (), 4: (1, 3, 4)}, ()),
    ("middle fragment missing", [A, C], {}, (1, 2)),
    ("last fragment missing", [A, B, WHOLE], {3: ()}, (1, 2)),
]  # fmt: skip

# (name, how an IPv6 fragment is built)
IPV6_LAYOUTS = [
    ("IPv6", lambda p: fragment6(p)),
    ("IPv6, hop-by-hop before the fragment header",
     lambda p: fragment6(p, before=b.extension(b.FRAGMENT), first=b.HOP_BY_HOP)),
    ("IPv6, destination options after the fragment header",
     lambda p: fragment6(p, inner=b.extension(b.TCP))),
]  # fmt: skip
LAYOUTS = [("IPv4", fragment4), *IPV6_LAYOUTS]


def applies(layout_name: str, pieces: list[Piece]) -> bool:
    """The 8-byte split is about the TCP header, which inner extension headers move away."""
    return not (layout_name.startswith("IPv6, destination") and pieces[0].end == 8)


PARAMS = [
    pytest.param(layout, pieces, completions, lost, id=f"{layout_name}: {name}")
    for layout_name, layout in LAYOUTS
    for name, pieces, completions, lost in CASES
    if applies(layout_name, pieces)
]


@pytest.mark.parametrize(("layout", "pieces", "completions", "lost"), PARAMS)
def test_reassembly(tmp_path, layout, pieces, completions, lost) -> None:
    """Each datagram comes out once, whole, at the frame completing it, naming its fragments;
    a set that never completes is one warning naming its frames."""
    path = b.write_pcap(tmp_path / "fragments.pcap", [layout(p) for p in pieces])
    with open_capture(str(path)) as capture:
        found = list(packets(capture))
        info = capture.info

    assert all(isinstance(s, TcpSegment) for s in found)
    assert {s.frame: s.fragment_frames for s in found} == completions
    for segment in found:
        assert (segment.seq, segment.length, segment.payload) == (SEQ, len(PAYLOAD), PAYLOAD)
    assert info.reassembled == sum(1 for frames in completions.values() if frames)
    if lost:
        shown = ", ".join(map(str, lost))
        assert info.warnings == [
            f"1 IP datagram(s) never got all their fragments (frames {shown}); "
            "their content is missing"
        ]
    else:
        assert info.warnings == []


@pytest.mark.oracle
@pytest.mark.parametrize("layout_name", [name for name, _ in LAYOUTS])
def test_reassembly_agrees_with_tshark(tmp_path, layout_name) -> None:
    """Every case in one file, each with its own IP IDs: tshark completes the same datagrams
    in the same frames with the same TCP bytes."""
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    layout = dict(LAYOUTS)[layout_name]
    sent = [
        layout(replace(piece, ident=piece.ident + 100 * index))
        for index, (_, pieces, _, _) in enumerate(CASES)
        if applies(layout_name, pieces)
        for piece in pieces
    ]
    path = b.write_pcap(tmp_path / "fragments.pcap", sent)
    ours, _info = reader_facts(path)
    assert ours.reassembled == sum(
        1
        for _, pieces, done, _ in CASES
        if applies(layout_name, pieces)
        for f in done.values()
        if f
    )
    assert ours == tshark_facts(path).facts
    assert our_segments(path) == tshark_segments(path)


def test_fragments_are_given_up_after_the_timeout(tmp_path) -> None:
    """A deliberate difference from tshark, which waits for a missing fragment forever: we
    give up after 60 s of capture time (Linux's receiver gives up after 30 s, ipfrag_time,
    so the host never saw that datagram either), which also bounds our memory."""
    second = 1_000_000_000
    times = [b.T0, b.T0 + 61 * second, b.T0 + 61 * second + 1]
    path = b.write_pcap(tmp_path / "late.pcap", [fragment4(p) for p in (A, B, C)], times)
    ours, info = reader_facts(path)
    assert (ours.reassembled, ours.segments) == (0, ())
    assert info.warnings == [
        "2 IP datagram(s) never got all their fragments (frames 1, 2, 3); their content is missing"
    ]
    if TSHARK is not None:
        assert tshark_facts(path).facts.reassembled == 1
