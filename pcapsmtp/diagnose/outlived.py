"""What a RST the hosts ignored leaves behind in Wireshark's analysis flags.

A RST whose sequence number lies beyond the next one its sender was expected to send (a
forged RST shot at a guess, out of the window: RFC 5961 3.2 has the hosts drop it) moves
Wireshark's next expected number up to its own. The sender's next segments then sit below
that number and are flagged retransmissions though they carry new data. Our flags stay
Wireshark's; the diagnosis asks this module which of them only the RST made.
"""

from __future__ import annotations

from pcapsmtp.smtp.outcome import outlived
from pcapsmtp.tcp.model import TH_FIN, TH_RST, TH_SYN, Flag, TcpFlow

SEQ_SPACE = 1 << 32


def moved_by_reset(flow: TcpFlow) -> set[int]:
    """Frames flagged retransmissions only because an outlived RST ahead of its sender's
    next sequence number moved Wireshark's mark: segments of the RST's sender after it,
    below its number, each beginning at or past the highest byte sent since. A segment
    sent again after the RST (it begins below that) stays a retransmission."""
    moved: set[int] = set()
    for reset in flow.notes:
        if not (reset.tcp_flags & TH_RST and reset.rst_ahead and outlived(flow, reset)):
            continue
        start = (reset.seq - reset.rst_ahead) % SEQ_SPACE
        sent = 0  # how far past `start` the sender has sent since the RST
        for note in flow.notes:
            if note.frame <= reset.frame or note.direction != reset.direction:
                continue
            offset = (note.seq - start) % SEQ_SPACE
            if offset >= reset.rst_ahead or offset < sent:
                continue  # Wireshark's own flags again, or a segment sent twice
            if note.analysis & Flag.ANY_RETRANSMISSION:
                moved.add(note.frame)
            sent = offset + note.length + bool(note.tcp_flags & (TH_SYN | TH_FIN))
    return moved
