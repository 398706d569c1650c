"""The compiled core's binding (pcapsmtp._core): what the capture layer relies on beyond
the frames themselves, which every other capture test checks."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest

import pcapsmtp
from pcapsmtp import _core
from pcapsmtp.capture import open_capture
from pcapsmtp.capture.files import read_frames
from pcapsmtp.capture.model import CaptureInfo, Frame

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "captures" / "clean-delivery.pcap"


def test_the_crate_has_the_package_version():
    """maturin takes the wheel's version from core/Cargo.toml."""
    cargo = tomllib.loads((ROOT / "core" / "Cargo.toml").read_text())
    assert cargo["package"]["version"] == pcapsmtp.__version__


class Failing(io.RawIOBase):
    """A stream that serves ``data`` and then raises ``error``."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        self.data = data
        self.error = error

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self.data:
            raise self.error
        out, self.data = self.data[: max(n, 1)], self.data[max(n, 1) :]
        return out


def _frames(stream) -> tuple[list[Frame], CaptureInfo]:
    info = CaptureInfo(file="stream")
    reader = _core.Reader(stream, Frame)
    return list(read_frames(reader, info)), info


def test_a_failing_stream_ends_the_frames_with_a_warning():
    whole = CAPTURE.read_bytes()
    expected, _ = _frames(io.BytesIO(whole))
    cut = len(whole) - 10
    frames, info = _frames(Failing(whole[:cut], OSError(5, "Input/output error")))
    assert frames == expected[: len(frames)] and len(frames) == len(expected) - 1
    assert info.warnings == [
        f"the file stream is damaged after frame {len(frames)} ([Errno 5] Input/output error); "
        "the frames before it were read"
    ]


def test_an_interrupt_while_reading_is_raised_not_turned_into_a_warning():
    whole = CAPTURE.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        _frames(Failing(whole[: len(whole) // 2], KeyboardInterrupt()))


def test_frame_offset_and_batches():
    """Numbers run on after the offset, across batches, as in one merged capture."""
    plain = [f.number for f in open_capture(str(CAPTURE)).frames()]
    shifted = [f.number for f in open_capture(str(CAPTURE), 1000).frames()]
    assert shifted == [n + 1000 for n in plain] and plain == list(range(1, len(plain) + 1))
