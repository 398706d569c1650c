"""The flow table's fast path (FlowTracker.batch_events on the decoder's SegmentBatches)
gives the same events, in the same order, as FlowTracker.events on TcpSegment objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.capture import open_capture, packets, segment_batches
from pcapsmtp.smtp.tracker import SMTP_PORTS
from pcapsmtp.tcp import FlowEnded, StreamData, StreamGap
from pcapsmtp.tcp.flows import FlowTracker
from tests.captures import LAB, capture_id, in_folder

CAPTURES = in_folder(LAB)


def summary(event) -> tuple:
    if isinstance(event, StreamData):
        return ("data", event.flow.stream, event.direction, event.offset, event.data,
                event.frame, event.time_ns)  # fmt: skip
    if isinstance(event, StreamGap):
        return ("gap", event.flow.stream, event.direction, event.offset, event.length,
                event.frame, event.time_ns, event.reason)  # fmt: skip
    assert isinstance(event, FlowEnded)
    return ("ended", event.flow)


def tracked(path: Path, fast: bool) -> tuple:
    tracker = FlowTracker(SMTP_PORTS)
    with open_capture(str(path)) as capture:
        if fast:
            events = [summary(e) for e in tracker.batch_events(segment_batches(capture))]
        else:
            events = [summary(e) for e in tracker.events(packets(capture))]
    facts = (tracker.unmatched_icmp, tracker.icmp_streams, tracker.icmp_starts,
             tracker.warnings, tracker.streams, tracker.evicted)  # fmt: skip
    return events, facts


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_the_fast_path_gives_the_same_events(path: Path) -> None:
    events, facts = tracked(path, fast=True)
    assert (events, facts) == tracked(path, fast=False)


def test_ticks_come_before_every_nth_packet() -> None:
    path = LAB / "retry-storm.pcap"
    with open_capture(str(path)) as capture:
        count = sum(1 for _ in packets(capture))
    tracker, seen, ticks = FlowTracker(SMTP_PORTS), [0], []

    def tick() -> None:
        ticks.append(seen[0])

    with open_capture(str(path)) as capture:
        for _event in tracker.batch_events(segment_batches(capture), tick, 7):
            seen[0] += 1
    assert len(ticks) == count // 7 and ticks == sorted(ticks) and ticks[-1] < seen[0]
    assert ticks[0] > 0


def test_an_ipv6_fragment_identification_beyond_16_bits_is_read_as_the_fast_path_reads_it() -> None:
    """An IPv6 fragment header's identification is 32 bits; the table keeps an IP ID of 16
    (IPv4's field), on both paths. The object path raised OverflowError on such a segment."""
    from pcapsmtp.capture.model import TcpSegment
    from pcapsmtp.tcp import FlowEnded, FlowTracker

    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    syn = TcpSegment(
        frame=1,
        time_ns=0,
        version=6,
        src=src,
        dst=dst,
        sport=40000,
        dport=25,
        seq=1,
        ack=0,
        flags=0x02,
        window=65535,
        options=b"",
        payload=b"",
        length=0,
        ttl=64,
        df=False,
        ip_id=0x1234_5678,
        ip_len=60,
        fragment_frames=(1,),
    )
    ended = [e for e in FlowTracker([25]).events([syn]) if isinstance(e, FlowEnded)]
    assert len(ended) == 1
    assert ended[0].flow.endpoints[0].packets == 1
    assert ended[0].flow.endpoints[0].fragmented == 1
