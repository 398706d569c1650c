"""Every file format and link type, made from a real capture by real tools at test time.

Each variant of a source capture is made with editcap / mergecap / gzip where those tools
can make it, and with ``writers.py`` where they cannot (byte order, ``if_tsresol``,
``if_tsoffset``, Simple and obsolete Packet Blocks, re-encoding frames under another link
layer). On each variant, frames, IP frames and frame times equal tshark's on the same
file, and the TCP segments and ICMP errors we decode equal those of the original file.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import pytest

from pcapsmtp.capture import DecryptionSecrets, open_capture, packets
from tests.ahead import UNDER_XDIST, Later, ahead
from tests.capture import writers as w
from tests.capture.tshark import TSHARK, reader_facts, tshark_facts
from tests.captures import LAB, PUBLIC, REPO_ROOT

SOURCES = {
    "zeek-smtp": PUBLIC / "zeek-smtp.pcap",  # IPv4 over Ethernet, 125 frames
    "zeek-ipv6": PUBLIC / "zeek-communityid-ipv6.pcap",  # IPv6 over Ethernet
    "lab-clean-delivery": LAB / "clean-delivery.pcap",
}


@dataclass
class Variant:
    """A file made from the source capture, and what reading it must give."""

    path: Path
    format: str
    """The ``CaptureInfo.format`` the file must be read as: proof the tool made what we asked."""
    link_types: set[int]
    kept: list[int] | None = None
    """Frame numbers of the source that made it into the variant, in order; None: all."""
    copies: int = 1
    """How many times each source segment is in the variant (a merge of two copies: 2)."""
    oracle: Path | None = None
    """The file tshark reads for the reference facts when it cannot read the variant."""
    untimed: set[int] = field(default_factory=set)
    """Frames without a timestamp (Simple Packet Blocks): see ``test_variant``."""


def run(*command: str | Path) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True)


class Maker:
    """Makes variants of one source capture, each in a folder of its own."""

    def __init__(self, source: Path, folder: Path) -> None:
        self.root = self.folder = folder
        self.source = source
        # One normal form for everything below: nanosecond pcap, as editcap writes it.
        self.base = folder / "base.pcap"
        run("editcap", "-F", "nsecpcap", source, self.base)
        self.pcap = w.read_pcap(self.base.read_bytes())

    def make(self, variant: str) -> Variant:
        self.folder = self.root / variant
        self.folder.mkdir()
        return VARIANTS[variant](self)

    def out(self, name: str) -> Path:
        return self.folder / name

    def pcap_file(self, name: str, pcap: w.PcapFile) -> Path:
        path = self.out(name)
        path.write_bytes(pcap.to_bytes())
        return path

    def relinked(self, name: str, linktype: int, file_linktype: int | None = None, tags=()):
        records, kept = w.relink(self.pcap.records, self.pcap.linktype, linktype, tags)
        if not kept:
            pytest.skip(f"the source has no frames that {name} can carry")
        pcap = w.PcapFile(file_linktype or linktype, records, nanoseconds=True)
        return Variant(self.pcap_file(name, pcap), "pcap-ns", {file_linktype or linktype}, kept)

    def pcapng(self, name: str, blocks: list[bytes]) -> Path:
        path = self.out(name)
        path.write_bytes(b"".join(blocks))
        return path


# --- the variants: one small function each ----------------------------------------------


def pcap_little_endian(m: Maker) -> Variant:
    path = m.out("le.pcap")
    run("editcap", "-F", "pcap", m.source, path)
    if path.read_bytes()[:4] != struct.pack("<I", w.PCAP_MAGIC_US):  # a big-endian host
        path.write_bytes(w.read_pcap(path.read_bytes()).to_bytes())
    return Variant(path, "pcap", {m.pcap.linktype})


def pcap_big_endian(m: Maker) -> Variant:
    le = pcap_little_endian(m).path
    pcap = w.read_pcap(le.read_bytes())
    pcap.order = ">"
    return Variant(m.pcap_file("be.pcap", pcap), "pcap", {m.pcap.linktype})


def pcap_nanoseconds(m: Maker) -> Variant:
    path = m.out("ns.pcap")
    run("editcap", "-F", "nsecpcap", m.source, path)
    return Variant(path, "pcap-ns", {m.pcap.linktype})


def pcap_nanoseconds_big_endian(m: Maker) -> Variant:
    pcap = w.read_pcap(pcap_nanoseconds(m).path.read_bytes())
    pcap.order = ">"
    return Variant(m.pcap_file("ns-be.pcap", pcap), "pcap-ns", {m.pcap.linktype})


def pcapng(m: Maker) -> Variant:
    path = m.out("plain.pcapng")
    run("editcap", "-F", "pcapng", m.source, path)
    return Variant(path, "pcapng", {m.pcap.linktype})


def pcapng_sections(m: Maker) -> Variant:
    """Two sections (``cat`` of two pcapng files), frames split between them."""
    first, second = m.out("first.pcapng"), m.out("second.pcapng")
    run("editcap", "-F", "pcapng", "-r", m.source, first, "1-40")  # keep 1-40
    run("editcap", "-F", "pcapng", m.source, second, "1-40")  # drop 1-40
    path = m.pcapng("sections.pcapng", [first.read_bytes(), second.read_bytes()])
    return Variant(path, "pcapng", {m.pcap.linktype})


def pcapng_big_endian_section_with_other_link_type(m: Maker) -> Variant:
    """A little-endian section from editcap, then a big-endian one (Linux SLL2) by hand.

    The second section's interface 0 is not the first's: the reader must forget the
    first section's interfaces and switch byte order.
    """
    first = m.out("first.pcapng")
    run("editcap", "-F", "pcapng", "-r", m.source, first, "1-40")
    records, kept = w.relink(m.pcap.records, m.pcap.linktype, w.LINKTYPE_LINUX_SLL2)
    rest = [(n, r) for n, r in zip(kept, records, strict=True) if n > 40]
    blocks = [first.read_bytes(), w.shb(">"), w.idb(w.LINKTYPE_LINUX_SLL2, ">", tsresol=9)]
    blocks += [w.epb(0, r.time_ns, r.data, r.wire_len, ">") for _, r in rest]
    path = m.pcapng("mixed-sections.pcapng", blocks)
    kept = list(range(1, min(40, len(m.pcap.records)) + 1)) + [n for n, _ in rest]
    link_types = {m.pcap.linktype} | ({w.LINKTYPE_LINUX_SLL2} if rest else set())
    return Variant(path, "pcapng", link_types, kept)


def pcapng_interfaces_with_different_link_types(m: Maker) -> Variant:
    """``mergecap`` of the Ethernet capture and a Linux SLL copy shifted by 1 ms."""
    sll = m.relinked("sll.pcap", w.LINKTYPE_LINUX_SLL).path
    shifted = m.out("sll-shifted.pcap")
    run("editcap", "-t", "0.001", sll, shifted)
    path = m.out("merged.pcapng")
    run("mergecap", "-F", "pcapng", "-w", path, m.base, shifted)
    return Variant(path, "pcapng", {m.pcap.linktype, w.LINKTYPE_LINUX_SLL}, copies=2)


def pcapng_timestamp_resolutions(m: Maker) -> Variant:
    """Three interfaces: ns; 2^-20 s and -3600 s offset; 10^-10 s and +86400 s offset."""
    lt = m.pcap.linktype
    interfaces = [
        (w.idb(lt, tsresol=9), lambda t: t),
        (
            w.idb(lt, tsresol=0x80 | 20, tsoffset=-3600),
            lambda t: ((t + 3600 * 10**9) << 20) // 10**9,
        ),
        (w.idb(lt, tsresol=10, tsoffset=86400), lambda t: (t - 86400 * 10**9) * 10),
    ]
    blocks = [w.shb(), *(block for block, _ in interfaces)]
    for i, r in enumerate(m.pcap.records):
        units = interfaces[i % 3][1](r.time_ns)
        blocks.append(w.epb(i % 3, units, r.data, r.wire_len))
    return Variant(m.pcapng("tsresol.pcapng", blocks), "pcapng", {lt})


def pcapng_simple_and_obsolete_packet_blocks(m: Maker) -> Variant:
    """Enhanced, Simple and obsolete Packet Blocks in turn, on one µs interface."""
    blocks = [w.shb(), w.idb(m.pcap.linktype, snaplen=262144)]
    untimed = set()
    for i, r in enumerate(m.pcap.records):
        units = r.time_ns // 1000
        if i % 3 == 0:
            blocks.append(w.epb(0, units, r.data, r.wire_len))
        elif i % 3 == 1:
            blocks.append(w.spb(r.data, r.wire_len))
            untimed.add(i + 1)
        else:
            blocks.append(w.obsolete_pb(0, units, r.data, r.wire_len))
    path = m.pcapng("spb-pb.pcapng", blocks)
    return Variant(path, "pcapng", {m.pcap.linktype}, untimed=untimed)


def gzip_compressed(m: Maker) -> Variant:
    path = m.out("plain.pcap.gz")
    with path.open("wb") as out:
        subprocess.run(["gzip", "-c", str(m.source)], stdout=out, check=True)
    return Variant(path, "pcap", {m.pcap.linktype})


def bzip2_compressed(m: Maker) -> Variant:
    """tshark 4.0 reads no bzip2: its reference is the plain file."""
    path = m.out("plain.pcap.bz2")
    path.write_bytes(bz2.compress(m.base.read_bytes()))
    return Variant(path, "pcap-ns", {m.pcap.linktype}, oracle=m.base)


def xz_compressed(m: Maker) -> Variant:
    """tshark 4.0 reads no xz: its reference is the plain file."""
    path = m.out("plain.pcapng.xz")
    path.write_bytes(lzma.compress(pcapng(m).path.read_bytes()))
    return Variant(path, "pcapng", {m.pcap.linktype}, oracle=m.base)


def vlan_8021q(m: Maker) -> Variant:
    return m.relinked("vlan.pcap", w.LINKTYPE_ETHERNET, tags=(0x8100 << 16 | 100,))


def qinq_8021ad(m: Maker) -> Variant:
    tags = (w.ETH_TYPE_8021AD << 16 | 7, w.ETH_TYPE_8021Q << 16 | 100)
    return m.relinked("qinq.pcap", w.LINKTYPE_ETHERNET, tags=tags)


def linux_sll(m: Maker) -> Variant:
    return m.relinked("sll.pcap", w.LINKTYPE_LINUX_SLL)


def linux_sll2(m: Maker) -> Variant:
    return m.relinked("sll2.pcap", w.LINKTYPE_LINUX_SLL2)


def raw_ip(m: Maker, file_linktype: int = w.LINKTYPE_RAW) -> Variant:
    """``editcap -C 14 -T rawip`` strips the Ethernet header; other sources are re-encoded."""
    if m.pcap.linktype != w.LINKTYPE_ETHERNET:
        return m.relinked(f"raw-{file_linktype}.pcap", w.LINKTYPE_RAW, file_linktype)
    path = m.out("rawip.pcap")
    run("editcap", "-F", "pcap", "-C", "14", "-T", "rawip", m.source, path)
    pcap = w.read_pcap(path.read_bytes())
    pcap.linktype = file_linktype  # the same frames under DLT_RAW's other numbers
    for record in pcap.records:  # editcap -C leaves the length on the wire as it was
        record.wire_len -= 14
    return Variant(m.pcap_file(f"raw-{file_linktype}.pcap", pcap), "pcap", {file_linktype})


def raw_ip_dlt12(m: Maker) -> Variant:
    return raw_ip(m, 12)


def raw_ip_dlt14(m: Maker) -> Variant:
    return raw_ip(m, 14)


def linktype_ipv4(m: Maker) -> Variant:
    return m.relinked("ipv4.pcap", w.LINKTYPE_IPV4)


def linktype_ipv6(m: Maker) -> Variant:
    return m.relinked("ipv6.pcap", w.LINKTYPE_IPV6)


def bsd_null(m: Maker) -> Variant:
    return m.relinked("null.pcap", w.LINKTYPE_NULL)


def openbsd_loop(m: Maker) -> Variant:
    return m.relinked("loop.pcap", w.LINKTYPE_LOOP)


VARIANTS: dict[str, Callable[[Maker], Variant]] = {
    f.__name__: f
    for f in (
        pcap_little_endian,
        pcap_big_endian,
        pcap_nanoseconds,
        pcap_nanoseconds_big_endian,
        pcapng,
        pcapng_sections,
        pcapng_big_endian_section_with_other_link_type,
        pcapng_interfaces_with_different_link_types,
        pcapng_timestamp_resolutions,
        pcapng_simple_and_obsolete_packet_blocks,
        gzip_compressed,
        bzip2_compressed,
        xz_compressed,
        vlan_8021q,
        qinq_8021ad,
        linux_sll,
        linux_sll2,
        raw_ip,
        raw_ip_dlt12,
        raw_ip_dlt14,
        linktype_ipv4,
        linktype_ipv6,
        bsd_null,
        openbsd_loop,
    )
}
LINK_VARIANTS = [
    "vlan_8021q", "qinq_8021ad", "linux_sll", "linux_sll2", "raw_ip", "linktype_ipv6",
    "bsd_null", "openbsd_loop", "pcapng_interfaces_with_different_link_types",
]  # fmt: skip
SOURCE_VARIANTS = {
    "zeek-smtp": [v for v in VARIANTS if v != "linktype_ipv6"],
    "zeek-ipv6": LINK_VARIANTS,
    "lab-clean-delivery": list(VARIANTS),
}
CASES = [(source, variant) for source in SOURCES for variant in SOURCE_VARIANTS[source]]


@dataclass
class Made:
    """One variant, made, with tshark's run on it under way."""

    maker: Maker
    variant: Variant | None
    skipped: str = ""
    tshark: Future | Later | None = None


class OnDemand(dict):
    """A dict whose known keys get their value from ``function(key)`` when first read."""

    def __init__(self, function, keys) -> None:
        super().__init__()
        self._function = function
        self._keys = set(keys)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __getitem__(self, key):
        if not super().__contains__(key):
            self[key] = self._function(key)
        return super().__getitem__(key)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[tuple[str, str], Made]:
    """Every variant of every source present, made up front while tshark, two at a time,
    reads the ones already made: tshark's start-up is most of this module's time. Under
    pytest-xdist a worker makes (and tshark reads) only the variants its tests ask for."""
    missing = [name for name in ("editcap", "mergecap", "gzip") if shutil.which(name) is None]
    if missing or TSHARK is None:
        pytest.skip(f"not installed: {', '.join(missing or ['tshark'])}")
    makers: dict[str, Maker] = {}

    def make(key: tuple[str, str], submit) -> Made:
        source, variant = key
        if source not in makers:
            makers[source] = Maker(SOURCES[source], tmp_path_factory.mktemp(source))
        maker = makers[source]
        try:
            v = maker.make(variant)
        except pytest.skip.Exception as skip:
            return Made(maker, None, skipped=str(skip))
        return Made(maker, v, tshark=submit(tshark_facts, v.oracle or v.path))

    present = [(source, variant) for source, variant in CASES if SOURCES[source].is_file()]
    with ahead(2) as submit:
        if UNDER_XDIST:
            yield OnDemand(lambda key: make(key, submit), present)
        else:
            yield {key: make(key, submit) for key in present}


def segment_keys(path: Path, kept: list[int] | None = None, copies: int = 1) -> Counter:
    """TCP segments and ICMP errors as comparable tuples, without frame number and time."""
    keys: Counter = Counter()
    with open_capture(str(path)) as capture:
        for packet in packets(capture):
            if kept is None or packet.frame in kept:
                ignored = ("frame", "time_ns", "fragment_frames")
                key = tuple(
                    getattr(packet, f.name) for f in fields(packet) if f.name not in ignored
                )
                keys[(type(packet).__name__, *key)] += copies
    return keys


@pytest.mark.oracle
@pytest.mark.parametrize(("source", "variant"), CASES, ids=[f"{s}-{v}" for s, v in CASES])
def test_variant(made, source: str, variant: str) -> None:
    """Frames, IP frames and times are tshark's; the segments are the original file's."""
    if (source, variant) not in made:
        pytest.skip(f"{SOURCES[source]} is absent")
    entry = made[source, variant]
    if entry.variant is None:
        pytest.skip(entry.skipped)
    maker, v = entry.maker, entry.variant
    ours, info = reader_facts(v.path)
    assert (info.format, set(info.link_types)) == (v.format, v.link_types)
    # Rewritten as raw IP, the source's non-IP frames (the lab's ARP) become bytes that are
    # not IP: tshark calls them malformed, and we say so once.
    assert all("malformed IP header" in w for w in info.warnings)
    assert not info.warnings or "raw" in variant

    expected = entry.tshark.result().facts
    if v.untimed:
        # A Simple Packet Block has no timestamp: tshark shows none; we give it the time of
        # the frame before it, so times never jump back to 1970 in the middle of a capture.
        assert {n for n, t in enumerate(expected.times, 1) if t is None} == v.untimed
        times = list(expected.times)
        for n in sorted(v.untimed):
            times[n - 1] = times[n - 2] if n > 1 else 0
        expected = replace(expected, times=tuple(times))
    assert ours == expected

    original = segment_keys(maker.source)
    assert original, "the source capture has no TCP segments to compare"
    assert segment_keys(v.path) == segment_keys(maker.source, v.kept, v.copies)


def test_decryption_secrets_are_kept(tmp_path, public_capture, tool) -> None:
    """A Decryption Secrets Block made by ``editcap --inject-secrets`` is in ``info.secrets``."""
    source = public_capture("zeek-smtp.pcap")
    keylog = tmp_path / "keys.txt"
    keylog.write_text(
        f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\nCLIENT_RANDOM {'12' * 32} {'34' * 48}\n"
    )
    path = tmp_path / "secrets.pcapng"
    subprocess.run([tool("editcap"), "--inject-secrets", f"tls,{keylog}", str(source), str(path)],
                   check=True)  # fmt: skip
    ours, info = reader_facts(path)
    plain, _ = reader_facts(source)
    assert info.secrets == [DecryptionSecrets(DecryptionSecrets.TLS_KEY_LOG, keylog.read_bytes())]
    assert ours == plain  # the block is not a frame


def test_unknown_link_type_is_counted_not_fatal(tmp_path, public_capture) -> None:
    """Frames of a link type we cannot decode are counted and reported in one warning."""
    pcap = w.read_pcap(public_capture("zeek-smtp.pcap").read_bytes())
    pcap.linktype = 147  # LINKTYPE_USER0
    path = tmp_path / "user0.pcap"
    path.write_bytes(pcap.to_bytes())
    ours, info = reader_facts(path)
    assert (ours.frames, ours.ip_frames, info.link_types) == (125, (), {147: 125})
    assert info.warnings == ["125 frame(s) not decoded: unsupported link type (link type 147)"]
    if TSHARK is not None:
        assert tshark_facts(path).facts == ours


def test_unknown_link_type_beside_a_known_one(tmp_path, public_capture) -> None:
    """In a pcapng, frames of the known interface are decoded, the others counted."""
    pcap = w.read_pcap(public_capture("zeek-smtp.pcap").read_bytes())
    blocks = [w.shb(), w.idb(pcap.linktype), w.idb(147)]
    for i, r in enumerate(pcap.records):
        blocks.append(w.epb(i % 2, r.time_ns // 1000, r.data, r.wire_len))
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(b"".join(blocks))
    ours, info = reader_facts(path)
    assert ours.ip_frames == tuple(range(1, 126, 2))
    assert info.warnings == ["62 frame(s) not decoded: unsupported link type (link type 147)"]


def analyze_json(*args: str, stdin: bytes | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", *args],
        input=stdin, capture_output=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_standard_input(public_capture, compress: bool) -> None:
    """``pcapsmtp analyze -`` reads a capture, plain or gzip-compressed, from standard input."""
    source = public_capture("zeek-smtp.pcap")
    data = source.read_bytes()
    from_stdin = analyze_json("-", stdin=gzip.compress(data) if compress else data)
    from_file = analyze_json(str(source))
    (piped,), (named,) = from_stdin["captures"], from_file["captures"]
    assert piped.pop("file") == "-"
    assert piped.pop("compression") == ("gzip" if compress else None)
    named.pop("file"), named.pop("compression")
    assert piped == named
    assert named["frames"] == 125


def test_systemd_journal_entries_are_frames_without_ip(tmp_path, public_capture) -> None:
    """A systemd Journal Export Block is a frame (as in Wireshark) timed by its
    ``__REALTIME_TIMESTAMP``; it carries no IP and is no decoding failure."""
    pcap = w.read_pcap(public_capture("zeek-smtp.pcap").read_bytes())
    entries = [
        b"__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1254722767500000\nMESSAGE=postfix/smtp\n",
        b"__REALTIME_TIMESTAMP=1254722767600000\nMESSAGE=postfix/qmgr\n",
    ]
    blocks = [w.shb(), w.idb(pcap.linktype)]
    for r in pcap.records[:2]:
        blocks.append(w.epb(0, r.time_ns // 1000, r.data, r.wire_len))
    blocks += [w.systemd_journal(entry) for entry in entries]
    path = tmp_path / "journal.pcapng"
    path.write_bytes(b"".join(blocks))
    ours, info = reader_facts(path)
    assert ours.times[2:] == (1254722767_500000_000, 1254722767_600000_000)
    assert ours.ip_frames == (1, 2)
    assert info.warnings == []
    if TSHARK is not None:
        assert tshark_facts(path).facts == ours


@pytest.mark.parametrize("nanoseconds", [False, True], ids=["µs", "ns"])
def test_fraction_of_a_second_beyond_one_second_carries(tmp_path, public_capture, nanoseconds):
    """A record whose µs (ns) field says 1.5 s means 1.5 s more, as tshark counts it."""
    pcap = w.read_pcap(public_capture("zeek-smtp.pcap").read_bytes())
    pcap.nanoseconds = nanoseconds
    raw = bytearray(pcap.to_bytes())
    struct.pack_into("<I", raw, 24 + 4, 1_500_000_000 if nanoseconds else 1_500_000)
    path = tmp_path / "carry.pcap"
    path.write_bytes(raw)
    ours, _info = reader_facts(path)
    assert ours.times[0] == 1254722767_000000_000 + 1_500_000_000
    if TSHARK is not None:
        assert ours == tshark_facts(path).facts
