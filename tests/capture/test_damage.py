"""Damaged and unreadable inputs.

Damage (a cut, a corrupted length, garbage at the end): every frame before it is read,
as tshark reads them; exactly one warning says what was lost; nothing is raised. An input
that cannot be read at all raises ``CaptureError`` with a clear reason, and the CLI turns
it into one line on stderr and exit status 1 while still reporting the other files.
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
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.capture import TcpSegment, open_capture, packets
from pcapsmtp.capture import files as capture_files
from pcapsmtp.cli import main
from pcapsmtp.errors import CaptureError
from tests.ahead import Later, ahead
from tests.capture import writers as w
from tests.capture.tshark import TSHARK, reader_facts, tshark_facts
from tests.captures import PUBLIC

SOURCE = "zeek-smtp.pcap"  # 125 frames, Ethernet, µs pcap, little-endian
FRAMES = 125


@dataclass
class Clean:
    """The source capture as pcap and as pcapng, with where each record starts."""

    pcap: bytes
    pcapng: bytes

    def record(self, number: int) -> int:
        """Offset of pcap record ``number`` (1-based)."""
        offset = 24
        for _ in range(number - 1):
            offset += 16 + struct.unpack_from("<I", self.pcap, offset + 8)[0]
        return offset

    def block(self, frame: int) -> tuple[int, int]:
        """(offset, length) of the pcapng block holding ``frame``."""
        offset, seen = 0, 0
        while True:
            btype, length = struct.unpack_from("<II", self.pcapng, offset)
            seen += btype == 6
            if seen == frame:
                return offset, length
            offset += length


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Clean:
    source = PUBLIC / SOURCE
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    if shutil.which("editcap") is None:
        pytest.skip("editcap is not installed")
    pcapng = tmp_path_factory.mktemp("clean") / "clean.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(source), str(pcapng)], check=True)
    return Clean(source.read_bytes(), pcapng.read_bytes())


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# (name, file suffix, damage, frames read, words the one warning must contain)
DAMAGE: list[tuple[str, str, Callable[[Clean], bytes], int | None, tuple[str, ...]]] = [
    ("pcap cut inside the last record", "pcap",
     lambda c: c.pcap[: c.record(125) + 16 + 10], 124, ("cut short", "record 125")),
    ("pcap cut inside a record header", "pcap",
     lambda c: c.pcap[: c.record(125) + 7], 124, ("cut short", "header of record 125")),
    ("pcap cut inside the file header", "pcap",
     lambda c: c.pcap[:10], 0, ("file header", "no frames")),
    ("pcap record claiming 2 GiB", "pcap",
     lambda c: patched(c.pcap, c.record(60) + 8, "<I", 0x7FFFFFFF), 59,
     ("record 60", "2147483647")),
    ("pcap record longer than the rest of the file", "pcap",
     lambda c: patched(c.pcap, c.record(60) + 8, "<I", 70000), 59, ("cut short", "record 60")),
    ("pcap with garbage appended", "pcap",
     lambda c: c.pcap + b"this is not a pcap record, just trailing junk\n", 125, ("record 126",)),
    ("pcap with a few zero bytes appended", "pcap",
     lambda c: c.pcap + bytes(5), 125, ("header of record 126",)),
    ("gzip stream cut in half", "pcap.gz",
     lambda c: gzip.compress(c.pcap, mtime=0)[: len(gzip.compress(c.pcap)) // 2], None, ("gzip",)),
    ("pcapng cut inside the last block", "pcapng",
     lambda c: c.pcapng[: c.block(125)[0] + 40], 124, ("cut short", "after frame 124")),
    ("pcapng cut inside a block header", "pcapng",
     lambda c: c.pcapng[: c.block(125)[0] + 6], 124, ("cut short", "block header")),
    ("pcapng block length not a multiple of 4", "pcapng",
     lambda c: patched(c.pcapng, c.block(60)[0] + 4, "<I", 13), 59, ("impossible length", "13")),
    ("pcapng block length of 2 GiB", "pcapng",
     lambda c: patched(c.pcapng, c.block(60)[0] + 4, "<I", 0x7FFFFFF0), 59, ("impossible length",)),
    ("pcapng trailing block length differs", "pcapng",
     lambda c: patched(c.pcapng, sum(c.block(60)) - 4, "<I", c.block(60)[1] + 4), 59,
     ("mismatched length",)),
    ("pcapng packet on an undescribed interface", "pcapng",
     lambda c: patched(c.pcapng, c.block(60)[0] + 8, "<I", 5), 59, ("interface 5",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def damaged(clean, tmp_path_factory) -> dict[str, tuple[Path, Later | Future | None]]:
    """Every damaged file, written up front, with tshark (two at a time) already reading
    (under pytest-xdist: reading when a test asks)."""
    folder = tmp_path_factory.mktemp("damaged")
    with ahead(2) as submit:
        found = {}
        for index, (name, suffix, damage, _frames, _words) in enumerate(DAMAGE):
            path = folder / f"{index}.{suffix}"
            path.write_bytes(damage(clean))
            found[name] = (path, submit(tshark_facts, path) if TSHARK else None)
        yield found


@pytest.mark.parametrize(
    ("name", "frames", "words"),
    [(case[0], *case[3:]) for case in DAMAGE],
    ids=[case[0] for case in DAMAGE],
)
def test_damage_is_one_warning(damaged, name, frames, words) -> None:
    """What precedes the damage is read, as tshark reads it; one warning says what was lost."""
    path, tshark_run = damaged[name]
    ours, info = reader_facts(path)

    assert len(info.warnings) == 1, info.warnings
    assert all(word in info.warnings[0] for word in words), info.warnings[0]
    if frames is not None:
        assert ours.frames == frames
    else:  # the cut falls somewhere in the compressed stream: the frames before it count
        assert 0 < ours.frames < FRAMES
    if tshark_run is not None:
        run = tshark_run.result()
        assert run.error  # tshark too sees damage ...
        assert ours == run.facts  # ... and reads exactly what we read


def test_snaplen_truncation_is_counted(tmp_path, clean, tool) -> None:
    """``editcap -s 96`` frames are all read; ``info.truncated`` counts the cut ones and one
    warning says so; their TCP headers are whole, their payloads prefixes of the original."""
    source, path = tmp_path / "clean.pcap", tmp_path / "snap96.pcap"
    source.write_bytes(clean.pcap)
    subprocess.run([tool("editcap"), "-s", "96", str(source), str(path)], check=True)
    longer = sum(1 for r in w.read_pcap(clean.pcap).records if r.wire_len > 96)
    assert longer > 0

    ours, info = reader_facts(path)
    assert info.truncated == longer
    assert len(info.warnings) == 1
    assert f"{longer} frame(s) were cut short by the snap length (96 bytes)" in info.warnings[0]
    if TSHARK is not None:
        assert ours == tshark_facts(path).facts

    with open_capture(str(source)) as whole, open_capture(str(path)) as cut:
        pairs = list(zip(packets(whole), packets(cut), strict=True))
    assert pairs
    for full, short in pairs:
        if not isinstance(full, TcpSegment):  # an ICMP error: its quoted header fits in 96
            quoted = full.quoted
            assert 16 <= short.quoted.transport_bytes <= quoted.transport_bytes
            cut_back = replace(short.quoted, transport_bytes=quoted.transport_bytes)
            assert replace(short, quoted=cut_back) == full
            continue
        assert (short.frame, short.seq, short.length) == (full.frame, full.seq, full.length)
        assert full.payload.startswith(short.payload)


# name, compress, a decompressor object with .decompress()
COMPRESSORS = [
    ("gzip", lambda d: gzip.compress(d, mtime=0), lambda: zlib.decompressobj(wbits=31)),
    ("bzip2", lambda d: bz2.compress(d, compresslevel=1), bz2.BZ2Decompressor),  # 100 kB blocks
    ("xz", lzma.compress, lzma.LZMADecompressor),
]


@pytest.mark.parametrize(
    ("compress", "decompressor"), [c[1:] for c in COMPRESSORS], ids=[c[0] for c in COMPRESSORS]
)
def test_cut_compressed_stream_keeps_the_frames_before_the_cut(
    tmp_path, clean, compress, decompressor
) -> None:
    """A compressed capture cut short reads like the plain capture cut where the
    compressed data ran out: the same frames (tshark reads that plain prefix), one warning."""
    pcap = w.read_pcap(clean.pcap)
    pcap.records *= 4  # 500 frames, 160 kB: more than one bzip2 block
    packed = compress(pcap.to_bytes())
    cut = tmp_path / "cut.pcap.z"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    prefix = tmp_path / "prefix.pcap"
    prefix.write_bytes(decompressor().decompress(cut.read_bytes()))

    ours, info = reader_facts(cut)
    plain, _ = reader_facts(prefix)
    assert 0 < ours.frames < len(pcap.records)
    assert ours == plain
    assert len(info.warnings) == 1
    if TSHARK is not None:
        assert tshark_facts(prefix).facts == plain


def test_compressed_stream_cut_before_any_data(tmp_path, clean) -> None:
    """bzip2 decompresses whole blocks: cut inside the first one, nothing can be read."""
    cut = tmp_path / "cut.pcap.bz2"
    cut.write_bytes(bz2.compress(clean.pcap)[:5000])
    with pytest.raises(CaptureError, match="cannot decompress"):
        open_capture(str(cut))


def _text(path: Path) -> None:
    path.write_text("HELO mail.example.org\r\nMAIL FROM:<a@example.org>\r\n")


def _gzipped_text(path: Path) -> None:
    path.write_bytes(gzip.compress(b"Received: from mail.example.org\r\n"))


# (name, make the input at path, the reason CaptureError gives)
UNREADABLE: list[tuple[str, Callable[[Path], object], str]] = [
    ("text file", _text, "not a pcap or pcapng capture (it starts with 'HELO mai')"),
    ("binary junk", lambda p: p.write_bytes(bytes(range(200, 256))),
     "not a pcap or pcapng capture (it starts with 'c8 c9 ca cb cc cd ce cf')"),
    ("empty file", lambda p: p.write_bytes(b""), "empty file"),
    ("directory", lambda p: p.mkdir(), "is a directory, not a capture file"),
    ("missing file", lambda p: None, "no such file"),
    ("gzip-compressed text", _gzipped_text,
     "not a pcap or pcapng capture (it starts with 'Received')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "reason"), [case[1:] for case in UNREADABLE], ids=[case[0] for case in UNREADABLE]
)
def test_unreadable_input_raises_capture_error(tmp_path, make, reason) -> None:
    """An input that is no capture at all raises CaptureError naming the file and the reason."""
    path = tmp_path / "input"
    make(path)
    with pytest.raises(CaptureError) as raised:
        open_capture(str(path))
    assert (raised.value.source, raised.value.reason) == (str(path), reason)


def test_broken_gzip_raises_capture_error(tmp_path) -> None:
    """A gzip header followed by nonsense cannot be decompressed at all."""
    path = tmp_path / "broken.pcap.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(60)))
    with pytest.raises(CaptureError) as raised:
        open_capture(str(path))
    assert raised.value.reason.startswith("cannot decompress: ")


def test_unreadable_file(tmp_path) -> None:
    """A file we may not read: CaptureError 'permission denied'."""
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file anyway; test_permission_denied simulates it")
    path = tmp_path / "secret.pcap"
    path.write_bytes(b"")
    path.chmod(0)
    with pytest.raises(CaptureError, match="permission denied"):
        open_capture(str(path))


@pytest.fixture
def permission_denied(monkeypatch):
    """Opening any file fails as it would without read permission (works even as root)."""

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(capture_files, "open", refuse, raising=False)


def test_permission_denied(tmp_path, permission_denied) -> None:
    """Simulated unreadable file (root bypasses chmod): CaptureError 'permission denied'."""
    path = tmp_path / "secret.pcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureError) as raised:
        open_capture(str(path))
    assert raised.value.reason == "permission denied"


def analyze(*args: str):
    return CliRunner().invoke(main, ["analyze", *args])


@pytest.mark.parametrize(
    ("make", "reason"), [case[1:] for case in UNREADABLE], ids=[case[0] for case in UNREADABLE]
)
def test_cli_unreadable_input(tmp_path, make, reason) -> None:
    """Exit status 1 and exactly one line on stderr, ``pcapsmtp: error: <file>: <reason>``."""
    path = tmp_path / "input"
    make(path)
    if path.is_dir():  # the command line reads the captures in a folder: there are none
        reason = "a folder with no pcap or pcapng file in it"
    result = analyze(str(path))
    assert result.exit_code == 1
    assert result.stderr == f"pcapsmtp: error: {path}: {reason}\n"
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_permission_denied(tmp_path, permission_denied) -> None:
    path = tmp_path / "secret.pcap"
    path.write_bytes(b"")
    result = analyze(str(path))
    assert (result.exit_code, result.stderr) == (1, f"pcapsmtp: error: {path}: permission denied\n")


def test_cli_reports_good_files_beside_a_bad_one(tmp_path, public_capture) -> None:
    """One unreadable input among good ones: the good ones are reported, exit status 1."""
    good = public_capture(SOURCE)
    other = public_capture("ndpi-smtps.pcapng")
    bad = tmp_path / "notes.txt"
    _text(bad)
    result = analyze("--format", "json", str(good), str(bad), str(other))
    assert result.exit_code == 1
    assert result.stderr == (
        f"pcapsmtp: error: {bad}: not a pcap or pcapng capture (it starts with 'HELO mai')\n"
    )
    reported = json.loads(result.stdout)["captures"]
    assert [(c["file"], c["frames"]) for c in reported] == [(str(good), FRAMES), (str(other), 4)]


def test_cli_damaged_file_is_a_warning_not_an_error(tmp_path, clean) -> None:
    """A damaged capture is analysed (exit 0, nothing on stderr) with its warning."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(clean.pcap[: clean.record(125) + 20])
    result = analyze("--format", "json", str(path))
    assert (result.exit_code, result.stderr) == (0, "")
    (capture,) = json.loads(result.stdout)["captures"]
    assert capture["frames"] == 124
    assert len(capture["warnings"]) == 1
