"""A scripted TCP conversation written as a pcap: for inputs no lab can be asked to produce
(hostile replies and headers, an ICMP error quoting an AUTH line).

Every packet is a real Ethernet/IPv4/TCP packet with correct checksums (dpkt computes them),
sequence numbers and acknowledgements, so tshark and pcapsmtp read it like any capture.
Addresses come from the documentation ranges (RFC 5737).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dpkt

CLIENT = bytes([192, 0, 2, 10])
SERVER = bytes([198, 51, 100, 25])
ROUTER = bytes([203, 0, 113, 1])
T0 = 1_700_000_000_000_000_000


@dataclass
class Conversation:
    """Lines said in turn by client (``"C"``) and server (``"S"``), one packet per turn."""

    sport: int = 40123
    dport: int = 25
    step_ns: int = 1_000_000
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    _seq: dict[str, int] = field(default_factory=lambda: {"C": 1000, "S": 5000})
    _time: int = T0

    def _ip(self, who: str, flags: int, payload: bytes = b"") -> dpkt.ip.IP:
        src, dst = (CLIENT, SERVER) if who == "C" else (SERVER, CLIENT)
        sport, dport = (self.sport, self.dport) if who == "C" else (self.dport, self.sport)
        other = "S" if who == "C" else "C"
        segment = dpkt.tcp.TCP(
            sport=sport,
            dport=dport,
            seq=self._seq[who],
            ack=self._seq[other] if flags & dpkt.tcp.TH_ACK else 0,
            flags=flags,
            win=65535,
            data=payload,
        )
        ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=segment)
        ip.len = len(ip)
        return ip

    def send(self, who: str, payload: bytes = b"", flags: int = dpkt.tcp.TH_ACK) -> dpkt.ip.IP:
        if payload:
            flags |= dpkt.tcp.TH_PUSH
        ip = self._ip(who, flags, payload)
        self.add(ip)
        self._seq[who] += len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        return ip

    def send_fragmented(self, who: str, payload: bytes, first: int = 32) -> dpkt.ip.IP:
        """A data segment in two IPv4 fragments, the first carrying ``first`` bytes of the
        TCP segment (a multiple of 8)."""
        ip = self._ip(who, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, payload)
        self._seq[who] += len(payload)
        body = bytes(ip.data)
        for offset, chunk, more in ((0, body[:first], 1), (first, body[first:], 0)):
            fragment = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=ip.p, ttl=ip.ttl, id=0x4242)
            fragment.data, fragment.offset, fragment.mf = chunk, offset // 8, more
            fragment.len = len(fragment)
            self.add(fragment)
        return ip

    def add(self, ip: dpkt.ip.IP) -> None:
        frame = dpkt.ethernet.Ethernet(
            src=b"\x02\x00\x00\x00\x00\x01",
            dst=b"\x02\x00\x00\x00\x00\x02",
            type=dpkt.ethernet.ETH_TYPE_IP,
            data=ip,
        )
        self.packets.append((self._time, bytes(frame)))
        self._time += self.step_ns

    def handshake(self) -> None:
        self.send("C", flags=dpkt.tcp.TH_SYN)
        self.send("S", flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
        self.send("C")

    def close(self) -> None:
        self.send("C", flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)
        self.send("S", flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)
        self.send("C")

    def say(self, *turns: tuple[str, bytes]) -> None:
        for who, payload in turns:
            self.send(who, payload)

    def icmp_too_big(self, quoted: dpkt.ip.IP, mtu: int = 576) -> None:
        """A router's fragmentation-needed about ``quoted`` (RFC 792, quoting 64 bytes of it)."""
        body = bytes(quoted)[: quoted.hl * 4 + 64]
        icmp = dpkt.icmp.ICMP(type=3, code=4, data=dpkt.icmp.ICMP.Unreach(mtu=mtu, data=body))
        ip = dpkt.ip.IP(src=ROUTER, dst=CLIENT, p=dpkt.ip.IP_PROTO_ICMP, ttl=255, data=icmp)
        ip.len = len(ip)
        self.add(ip)

    def write(self, path: Path) -> Path:
        """A nanosecond pcap (dpkt's Writer takes float seconds, which would round times)."""
        with path.open("wb") as out:
            out.write(dpkt.pcap.LEFileHdr(magic=0xA1B23C4D, linktype=1, snaplen=262144).pack())
            for time_ns, frame in self.packets:
                seconds, nanos = divmod(time_ns, 1_000_000_000)
                out.write(
                    dpkt.pcap.LEPktHdr(
                        tv_sec=seconds, tv_usec=nanos, caplen=len(frame), len=len(frame)
                    ).pack()
                )
                out.write(frame)
        return path
