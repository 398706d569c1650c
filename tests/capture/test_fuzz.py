"""Fuzzing: whatever the bytes, reading ends, and only CaptureError ever escapes.

Small real captures (and synthetic ones covering pcapng's rarer blocks, fragments and ICMP
errors, always present) are mutated: bytes flipped, the file cut, bytes inserted or
deleted, length and offset fields overwritten with awkward values. Opening the result and
iterating ``packets()`` to the end must raise nothing but CaptureError, and must stop.
"""

from __future__ import annotations

import gzip
import signal
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.capture import LINKTYPE_NAMES, IPPacket, open_capture, packets
from pcapsmtp.capture.decode import decode_icmp_error, decode_ip, decode_tcp
from pcapsmtp.capture.model import Frame
from pcapsmtp.errors import CaptureError
from tests.capture import build as b
from tests.capture import writers as w
from tests.captures import PUBLIC

PUBLIC_SEEDS = [
    "arkime-smtp-subject-multi-nospace.pcap",
    "ndpi-smtps.pcapng",
    "arkime-smtp-html.pcap",
]
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def synthetic_pcap() -> bytes:
    """IPv4 and IPv6 fragments, an ICMP error, options, extension headers: one small pcap."""
    segment = b.tcp(b"MAIL FROM:<a@example.org>\r\n" * 3)
    packets_ = [
        b.ipv4(segment[:24], ident=7, more=True),
        b.ipv4(segment[24:], ident=7, offset=24),
        b.ipv6(b.fragment_header(b.TCP, 0, True, 9) + segment[:40], b.FRAGMENT),
        b.ipv6(b.fragment_header(b.TCP, 40, False, 9) + segment[40:], b.FRAGMENT),
        b.icmp4_error(3, 4, b.ipv4(segment, df=True)[:28], mtu=1400),
        b.icmp6_error(2, 0, b.ipv6(segment)[:60], mtu=1280),
        b.ipv4(segment, options=bytes([148, 4, 0, 0])),
        b.ipv6(b.extension(b.TCP) + segment, b.HOP_BY_HOP),
    ]
    frames = [b.ethernet(p) for p in packets_]
    records = [w.Record(b.T0 + i, f, len(f)) for i, f in enumerate(frames)]
    return w.PcapFile(w.LINKTYPE_ETHERNET, records, nanoseconds=True).to_bytes()


def synthetic_pcapng() -> bytes:
    """Two sections (the second big-endian), two interfaces, every block type we read."""
    frame = b.ethernet(b.ipv4(b.tcp()))
    raw = b.ipv6(b.tcp())
    little = [
        w.shb(),
        w.idb(w.LINKTYPE_ETHERNET, tsresol=0x80 | 20, tsoffset=5),
        w.idb(w.LINKTYPE_RAW, snaplen=64),
        w.epb(0, 123456789, frame, len(frame)),
        w.spb(frame, len(frame)),
        w.obsolete_pb(1, 5, raw, len(raw)),
        w.dsb(0x544C534B, b"CLIENT_RANDOM 00 11\n"),
        w.systemd_journal(b"__REALTIME_TIMESTAMP=1700000000000000\n"),
    ]
    big = [w.shb(">"), w.idb(w.LINKTYPE_LINUX_SLL2, ">", tsresol=9)]
    sll2 = w.encapsulate(w.LINKTYPE_LINUX_SLL2, w.ETH_TYPE_IP6, raw)
    big.append(w.epb(0, b.T0, sll2, len(sll2), ">"))
    return b"".join(little + big)


def seeds() -> dict[str, bytes]:
    found = {"synthetic.pcap": synthetic_pcap(), "synthetic.pcapng": synthetic_pcapng()}
    found["synthetic.pcapng.gz"] = gzip.compress(found["synthetic.pcapng"], mtime=0)
    for name in PUBLIC_SEEDS:
        path = PUBLIC / name
        if path.is_file():
            found[name] = path.read_bytes()
    return found


SEEDS = seeds()
AWKWARD = [0, 1, 7, 8, 12, 13, 16, 20, 28, 32, 40, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF]
position = st.integers(min_value=0, max_value=1 << 16)
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.integers(1, 255)),
    st.tuples(st.just("cut"), position),
    st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=24)),
    st.tuples(st.just("delete"), position, st.integers(1, 64)),
    st.tuples(st.just("u32"), position, st.sampled_from(AWKWARD), st.sampled_from("<>")),
    st.tuples(st.just("u16"), position, st.sampled_from(AWKWARD), st.sampled_from("<>")),
)


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, where, *args in mutations:
        at = where % (len(out) + 1)
        if kind == "flip" and at < len(out):
            out[at] ^= args[0]
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = args[0]
        elif kind == "delete":
            del out[at : at + args[0]]
        elif kind in ("u32", "u16"):
            fmt = args[1] + ("I" if kind == "u32" else "H")
            size = struct.calcsize(fmt)
            at -= at % size  # length fields are aligned
            if at + size <= len(out):
                struct.pack_into(fmt, out, at, args[0] & (0xFFFFFFFF if size == 4 else 0xFFFF))
    return bytes(out)


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging: a loop that never ends is a bug we want reported."""

    def expired(_signum, _frame):
        raise TimeoutError(f"reading did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "mutated"


def read_everything(path: Path, size: int) -> None:
    with time_limit(10):
        try:
            with open_capture(str(path)) as capture:
                count = sum(1 for _ in packets(capture))
                info = capture.info
        except CaptureError:
            return
    # every frame needs at least a 12-byte block or a 16-byte record; compressed input aside
    if info.compression is None:
        assert info.frames <= size // 12
    assert count <= info.frames + info.reassembled
    assert all(isinstance(warning, str) for warning in info.warnings)


@SETTINGS
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_captures(scratch, seed: str, mutations) -> None:
    """No exception but CaptureError escapes open_capture and packets(); reading ends."""
    data = mutate(SEEDS[seed], mutations)
    scratch.write_bytes(data)
    read_everything(scratch, len(data))


@SETTINGS
@given(seed=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_compressed_mutated_captures(scratch, seed: str, data) -> None:
    """The same through gzip, which hides the damage from the container until it is read."""
    mutations = data.draw(st.lists(mutation, min_size=1, max_size=4))
    packed = gzip.compress(mutate(SEEDS[seed], mutations), mtime=0)
    if data.draw(st.booleans()):
        packed = packed[: data.draw(st.integers(10, len(packed)))]
    scratch.write_bytes(packed)
    read_everything(scratch, len(packed))


LINK_TYPES = [*sorted(LINKTYPE_NAMES), 147]


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from(LINK_TYPES), data=st.binary(max_size=120))
def test_decode_any_bytes(linktype: int, data: bytes) -> None:
    """Any frame under any link type decodes to a packet, None or a reason; never raises."""
    ip = decode_ip(Frame(1, 0, linktype, data, len(data)))
    assert ip is None or isinstance(ip, IPPacket | str)
    if isinstance(ip, IPPacket):
        decode_tcp(ip)
        decode_icmp_error(ip)
