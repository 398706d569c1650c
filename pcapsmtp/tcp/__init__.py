"""The TCP layer: flows numbered like Wireshark's tcp.stream, analysed like its tcp.analysis,
reassembled into ordered byte streams with explicit gaps. Knows nothing of SMTP."""

from pcapsmtp.tcp.flows import FlowTracker, parse_options, track_flows
from pcapsmtp.tcp.model import (
    Endpoint,
    Flag,
    FlowEnded,
    FlowEvent,
    Handshake,
    SegmentNote,
    StreamData,
    StreamGap,
    TcpFlow,
)

__all__ = [
    "Endpoint",
    "Flag",
    "FlowEnded",
    "FlowEvent",
    "FlowTracker",
    "Handshake",
    "SegmentNote",
    "StreamData",
    "StreamGap",
    "TcpFlow",
    "parse_options",
    "track_flows",
]
