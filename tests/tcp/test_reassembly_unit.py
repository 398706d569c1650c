"""tcp/reassembly.py at its own API, one behaviour a test: segments in, chunks out.

Where a real connection helps, its segments are read from a lab capture
(captures/clean-delivery.pcap: Postfix to Postfix, one mail) and fed to a
``StreamReassembler`` directly, without the flow table; the other cases are built around
the same sequence numbers. The out-of-order bound and its warning (docs/limits.md) go
through ``FlowTracker``, which words the warning.
"""

from __future__ import annotations

import pytest

from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.tcp import FlowTracker, StreamData, StreamGap, reassembly
from pcapsmtp.tcp.model import TH_ACK, TH_FIN, TH_SYN
from pcapsmtp.tcp.reassembly import SEGMENT_OVERHEAD, Chunk, StreamReassembler
from pcapsmtp.tcp.sequence import MASK
from tests.conftest import LAB_CAPTURES

CLEAN = LAB_CAPTURES / "clean-delivery.pcap"
CLIENT_ISN = 193998412
"""The client's SYN in captures/clean-delivery.pcap (frame 3, tshark's tcp.seq_raw)."""
SERVER_ISN = 3494070351
"""The server's SYN/ACK (frame 4)."""


def clean_segments() -> list[TcpSegment]:
    with open_capture(str(CLEAN)) as capture:
        return [p for p in packets(capture) if isinstance(p, TcpSegment)]


def rows(chunks: list[Chunk]) -> list[tuple]:
    return [(c.offset, c.length, c.data, c.frame, c.reason) for c in chunks]


def started(isn: int = CLIENT_ISN) -> StreamReassembler:
    r = StreamReassembler()
    r.start(isn)
    return r


def at(offset: int, isn: int = CLIENT_ISN) -> int:
    """The sequence number of stream offset ``offset``."""
    return (isn + 1 + offset) & MASK


# -- in order -----------------------------------------------------------------------------


def test_a_real_client_stream_comes_out_whole_and_in_order():
    """The client side of clean-delivery.pcap: every payload byte once, at the offset
    tshark's relative sequence number gives it (tcp.seq - 1), the FIN where it ends."""
    segments = clean_segments()
    client = [s for s in segments if s.sport == 32832]
    assert client[0].flags == TH_SYN and client[0].seq == CLIENT_ISN
    r = StreamReassembler()
    chunks: list[Chunk] = []
    for seg in client:
        if seg.flags & TH_SYN:
            r.start(seg.seq)
        if seg.length:
            r.segment(seg.seq, seg.payload, seg.length, seg.frame, seg.time_ns)
        if seg.flags & TH_FIN:
            r.fin((seg.seq + seg.length) & MASK)
        chunks += r.take()
    sent = b"".join(s.payload for s in client)
    assert len(sent) == 392  # 22 + 35 + 31 + 6 + 292 + 6, frames 8 to 19
    assert b"".join(c.data for c in chunks) == sent
    assert [(c.offset, c.length, c.frame) for c in chunks] == [
        (0, 22, 8),
        (22, 35, 11),
        (57, 31, 13),
        (88, 6, 15),
        (94, 292, 17),
        (386, 6, 19),
    ]
    assert chunks[0].data == b"ehlo client.lab.test\r\n"
    assert r.fin_offset == 392 and r.expected == 392
    assert r.mismatches == 0 and r.limited == 0


def test_the_ack_of_a_fin_is_no_missing_byte():
    """The FIN takes one sequence number: the peer's ACK of it (frame 23 of
    clean-delivery.pcap acknowledges 193998806 = ISN + 1 + 392 + 1) declares no gap."""
    r = started()
    r.segment(at(0), b"x" * 392, 392, 17, 0)
    r.fin(at(392))
    r.acknowledged(193998806, 23, 0)
    assert rows(r.take()) == [(0, 392, b"x" * 392, 17, "")]
    without_fin = started()
    without_fin.segment(at(0), b"x" * 392, 392, 17, 0)
    without_fin.take()
    without_fin.acknowledged(193998806, 23, 0)  # no FIN sent: a byte never captured
    assert rows(without_fin.take()) == [(392, 1, None, 23, "not captured")]


def test_without_a_syn_the_first_segment_is_offset_zero():
    """A capture that starts mid-connection: the first byte seen is offset 0."""
    r = StreamReassembler()
    r.segment(3494070393, b"250-mx\r\n", 8, 10, 0)
    r.segment(3494070401, b"250 OK\r\n", 8, 11, 0)
    assert rows(r.take()) == [(0, 8, b"250-mx\r\n", 10, ""), (8, 8, b"250 OK\r\n", 11, "")]
    assert r.base == 3494070393


# -- overlap and retransmission -----------------------------------------------------------


def test_an_overlapping_segment_delivers_only_its_new_bytes():
    r = started()
    r.segment(at(0), b"MAIL FROM:", 10, 1, 0)
    r.segment(at(5), b"FROM:<a@b>\r\n", 12, 2, 0)
    assert rows(r.take()) == [(0, 10, b"MAIL FROM:", 1, ""), (10, 7, b"<a@b>\r\n", 2, "")]
    assert r.mismatches == 0


def test_a_retransmission_with_the_same_bytes_is_no_mismatch():
    r = started()
    r.segment(at(0), b"RCPT TO:<x@y>\r\n", 15, 1, 0)
    r.segment(at(0), b"RCPT TO:<x@y>\r\n", 15, 2, 0)
    r.segment(at(5), b"TO:<x", 5, 3, 0)  # a part of it, the same bytes
    assert [c.frame for c in r.take()] == [1]
    assert r.mismatches == 0


def test_a_retransmission_with_other_bytes_is_counted_and_the_first_copy_kept():
    """Different bytes at the same place (a middlebox rewriting, a broken stack): the
    stream keeps what came first, as Wireshark's reassembly does, and counts it."""
    r = started()
    r.segment(at(0), b"RCPT TO:<x@y>\r\n", 15, 1, 0)
    r.segment(at(0), b"RCPT TO:<z@y>\r\n", 15, 2, 0)
    r.segment(at(9), b"x", 1, 3, 0)  # the same byte again
    r.segment(at(9), b"q", 1, 4, 0)
    assert rows(r.take()) == [(0, 15, b"RCPT TO:<x@y>\r\n", 1, "")]
    assert r.mismatches == 2


def test_a_retransmission_straddling_the_delivered_edge_is_compared_and_cut():
    r = started()
    r.segment(at(0), b"DATA\r\n", 6, 1, 0)
    r.segment(at(2), b"XX\r\nQUIT\r\n", 10, 2, 0)  # "TA" became "XX"
    assert rows(r.take()) == [(0, 6, b"DATA\r\n", 1, ""), (6, 6, b"QUIT\r\n", 2, "")]
    assert r.mismatches == 1


def test_after_release_retransmissions_are_not_compared():
    """A closed flow lingers without payload copies: a late retransmission, even with
    other bytes, is neither compared nor delivered again."""
    r = started()
    r.segment(at(0), b"QUIT\r\n", 6, 1, 0)
    r.release()
    r.segment(at(0), b"XXXX\r\n", 6, 2, 0)
    assert [c.frame for c in r.take()] == [1]
    assert r.mismatches == 0


# -- out of order and holes ---------------------------------------------------------------


def test_held_segments_come_out_in_order_when_the_hole_fills():
    r = started()
    r.segment(at(10), b"cccccccccc", 10, 1, 100)
    r.segment(at(20), b"dddd", 4, 2, 200)
    assert r.take() == []
    r.segment(at(0), b"aaaaaaaaaa", 10, 3, 300)
    assert rows(r.take()) == [
        (0, 10, b"aaaaaaaaaa", 3, ""),
        (10, 10, b"cccccccccc", 1, ""),
        (20, 4, b"dddd", 2, ""),
    ]
    assert r._pending == {} and r._pending_bytes == 0


def test_a_longer_copy_of_a_held_segment_replaces_it():
    r = started()
    r.segment(at(10), b"bb", 2, 1, 0)
    r.segment(at(10), b"bbbb", 4, 2, 0)
    r.segment(at(10), b"b", 1, 3, 0)  # shorter: the longer one stays
    r.segment(at(0), b"a" * 10, 10, 4, 0)
    assert rows(r.take()) == [(0, 10, b"a" * 10, 4, ""), (10, 4, b"bbbb", 2, "")]


def test_a_hole_that_never_fills_is_a_gap_at_the_end_of_the_flow():
    r = started()
    r.segment(at(0), b"EHLO a\r\n", 8, 1, 0)
    r.segment(at(20), b"QUIT\r\n", 6, 2, 0)
    r.segment(at(40), b"!", 1, 3, 0)
    assert [c.frame for c in r.take()] == [1]
    r.finish(9, 900)
    assert rows(r.take()) == [
        (8, 12, None, 9, "never filled"),
        (20, 6, b"QUIT\r\n", 2, ""),
        (26, 14, None, 9, "never filled"),
        (40, 1, b"!", 3, ""),
    ]
    assert r.limited == 0


def test_an_acknowledged_hole_stops_at_the_held_data():
    """The peer acknowledged past a hole and past held data: the hole is 'not captured'
    up to the held data, which is delivered; what lies beyond it is declared by the next
    ACK that passes it."""
    r = started()
    r.segment(at(10), b"b" * 10, 10, 1, 0)
    r.acknowledged(at(30), 2, 0)
    assert rows(r.take()) == [(0, 10, None, 2, "not captured"), (10, 10, b"b" * 10, 1, "")]
    r.acknowledged(at(30), 3, 0)
    assert rows(r.take()) == [(20, 10, None, 3, "not captured")]


def test_an_old_ack_changes_nothing():
    r = started()
    r.segment(at(0), b"a" * 10, 10, 1, 0)
    r.take()
    r.acknowledged(at(5), 2, 0)
    r.acknowledged(CLIENT_ISN + 1, 3, 0)
    assert r.take() == [] and r.expected == 10


def test_a_payload_cut_by_the_snap_length_leaves_a_snaplen_gap():
    r = started()
    r.segment(at(0), b"abc", 1400, 1, 0)
    r.segment(at(1400), b"next", 4, 2, 0)
    assert rows(r.take()) == [
        (0, 3, b"abc", 1, ""),
        (3, 1397, None, 1, "snaplen"),
        (1400, 4, b"next", 2, ""),
    ]


def test_acks_before_any_data_are_ignored():
    r = StreamReassembler()
    r.acknowledged(12345, 1, 0)
    assert r.take() == [] and r.base is None


# -- the bound on held data ---------------------------------------------------------------


def test_the_bound_gives_up_the_first_hole_each_time_it_is_passed(monkeypatch):
    """Room for three held segments: each further one gives up the hole in front (one
    byte here), delivers the segment behind it, and holds the new one."""
    size = 100
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 3 * (size + SEGMENT_OVERHEAD))
    r = started()
    count = 10
    for i in range(count):
        r.segment(at(1 + i * (size + 1)), bytes([65 + i]) * size, size, i + 1, 0)
        assert r._pending_bytes <= 3 * (size + SEGMENT_OVERHEAD)
    chunks = r.take()
    gaps = [c for c in chunks if c.data is None]
    assert [(c.offset, c.length, c.frame, c.reason) for c in gaps] == [
        (i * (size + 1), 1, i + 4, "buffer limit") for i in range(count - 3)
    ]
    assert (r.limited, r.limited_bytes) == (count - 3, count - 3)
    assert [c.data for c in chunks if c.data] == [bytes([65 + i]) * size for i in range(7)]
    r.finish(99, 0)
    tail = r.take()
    assert [c.reason for c in tail if c.data is None] == ["never filled"] * 3
    assert sum(c.length for c in chunks + tail) == count * (size + 1)


def _segment(
    frame: int,
    src: bytes,
    sport: int,
    dst: bytes,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
) -> TcpSegment:
    return TcpSegment(
        frame=frame, time_ns=frame * 1_000_000, version=4, src=src, dst=dst, sport=sport,
        dport=dport, seq=seq, ack=ack, flags=flags, window=64240, options=b"",
        payload=payload, length=len(payload), ttl=64, df=True, ip_id=frame,
        ip_len=40 + len(payload),
    )  # fmt: skip


def test_the_flow_table_warns_once_for_a_direction_that_reached_the_bound(monkeypatch):
    """docs/limits.md: past the bound the hole is given up as a gap ('buffer limit') and
    the capture says so, once per direction, with how often and how many bytes."""
    size = 200
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 2 * (size + SEGMENT_OVERHEAD))
    client, server = bytes([10, 77, 1, 2]), bytes([10, 77, 2, 2])
    packets_in = [
        _segment(1, client, 32832, server, 25, CLIENT_ISN, 0, TH_SYN),
        _segment(2, server, 25, client, 32832, SERVER_ISN, at(-1) + 1, TH_SYN | TH_ACK),
        _segment(3, client, 32832, server, 25, at(0), SERVER_ISN + 1, TH_ACK),
    ]
    for i in range(6):  # a hole of 3 bytes in front of each, never sent, never acked
        seq = at(3 + i * (size + 3))
        packets_in.append(
            _segment(4 + i, client, 32832, server, 25, seq, SERVER_ISN + 1, TH_ACK, b"m" * size)
        )
    tracker = FlowTracker((25,))
    events = list(tracker.events(packets_in))
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert [(g.offset, g.length, g.reason) for g in gaps] == [
        (0, 3, "buffer limit"),
        (203, 3, "buffer limit"),
        (406, 3, "buffer limit"),
        (609, 3, "buffer limit"),
        (812, 3, "never filled"),
        (1015, 3, "never filled"),
    ]
    data = [e for e in events if isinstance(e, StreamData)]
    assert sum(len(e.data) for e in data) == 6 * size
    [warning] = tracker.warnings
    assert warning == (
        "tcp.stream 0, 10.77.1.2:32832 -> 10.77.2.2:25: data held behind holes that did not "
        "fill reached the reassembly bound (4 MiB) 4 times; 12 bytes were skipped (gaps "
        "'buffer limit'), and segments of them arriving later were not used"
    )
    [ended] = [e.flow for e in events if type(e).__name__ == "FlowEnded"]
    assert ended.endpoints[0].gaps == 6 and ended.endpoints[0].gap_bytes == 18


# -- sequence wraparound ------------------------------------------------------------------


@pytest.mark.parametrize("isn", [0xFFFFFFF0, 0xFFFFFFFF, 0x7FFFFFF8])
def test_a_stream_across_the_wrap_keeps_its_offsets(isn):
    """Sequence numbers pass 2**32 - 1 -> 0 (or the half-way point) inside the stream;
    offsets go on counting, in order and out of order."""
    r = started(isn)
    r.segment(at(32, isn), b"c" * 16, 16, 3, 0)  # past the wrap, before the bytes in front
    r.segment(at(0, isn), b"a" * 16, 16, 1, 0)
    r.segment(at(16, isn), b"b" * 16, 16, 2, 0)
    r.segment(at(8, isn), b"a" * 8 + b"b" * 8, 16, 4, 0)  # an old retransmission, unchanged
    assert [(c.offset, c.data[:1]) for c in r.take()] == [(0, b"a"), (16, b"b"), (32, b"c")]
    assert r.mismatches == 0
    r.fin(at(48, isn))
    assert r.fin_offset == 48


def test_offsets_are_64_bit_past_several_wraps():
    """A stream longer than 4 GiB (made of snap-length-cut segments, so no bytes are
    held): the offset of a byte after three wraps is its true distance from the start."""
    r = started(SERVER_ISN)
    step = 1 << 30
    for i in range(13):  # 13 GiB
        r.segment(at(i * step, SERVER_ISN), b"", step, i + 1, 0)
    r.segment(at(13 * step, SERVER_ISN), b"250 OK\r\n", 8, 99, 0)
    last = r.take()[-1]
    assert (last.offset, last.data) == (13 * step, b"250 OK\r\n")
    assert last.offset > 3 * (MASK + 1)
    r.segment(at(13 * step - 4, SERVER_ISN), b"\x00" * 4, 4, 100, 0)  # just behind: old
    assert r.take() == [] and r.expected == 13 * step + 8
