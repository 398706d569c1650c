"""Capture facts as plain structures shared by every output format."""

from __future__ import annotations

from pcapsmtp.capture.model import LINKTYPE_NAMES, CaptureInfo
from pcapsmtp.report.model import CaptureFacts
from pcapsmtp.report.times import iso


def link_type_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype, f"linktype-{linktype}")


def capture_dict(info: CaptureInfo) -> CaptureFacts:
    return {
        "file": info.file,
        "format": info.format,
        "compression": info.compression,
        "frames": info.frames,
        "first_time": iso(info.first_time_ns),
        "last_time": iso(info.last_time_ns),
        "link_types": [
            {"linktype": lt, "name": link_type_name(lt), "frames": n}
            for lt, n in sorted(info.link_types.items())
        ],
        "snaplen": info.snaplen,
        "truncated": info.truncated,
        "ip_frames": info.ip_frames,
        "reassembled_datagrams": info.reassembled,
        "decryption_secrets": len(info.secrets),
        "warnings": list(info.warnings),
    } | ({"files": list(info.files)} if info.files else {})
