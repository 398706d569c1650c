"""SMTP over real TLS, written as a capture whose TCP segmentation the test chooses.

OpenSSL (through ``ssl``'s memory BIOs) makes every TLS byte and writes the client's key log
as it would for ``SSLKEYLOGFILE``; only the TCP/IP framing around those bytes is ours. That
lets a test place records exactly: several records in one segment, one record over several
segments, a command line cut between two records, all of which real clients do under load
and which the lab captures happen not to show.

Addresses come from the documentation ranges (RFC 5737).
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CLIENT, SERVER = "client", "server"
CLIENT_IP, SERVER_IP = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 25])
T0 = 1_700_000_000_000_000_000
STEP_NS = 1_000_000
"""Frames are 1 ms apart."""


def make_pki(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate and its key (PEM files)."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.jp")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class _Side:
    ip: bytes
    port: int
    seq: int
    acked: int = 0
    """What this side has acknowledged of its peer (the peer's next sequence number)."""


@dataclass
class Conversation:
    """Build it step by step, then ``write(path)``: the capture and ``path.keylog``.

    ``plain`` holds what each side sent inside TLS, in order, with the frame that completed
    each write: what a correct decryption must give back.
    """

    pki: tuple[Path, Path]
    keylog: Path
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    implicit: bool = False
    mss: int = 1400
    client_port: int = 40000
    server_port: int | None = None
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    plain: dict[str, list[tuple[int, bytes]]] = field(
        default_factory=lambda: {CLIENT: [], SERVER: []}
    )

    def __post_init__(self) -> None:
        port = self.server_port or (465 if self.implicit else 25)
        self.sides = {
            CLIENT: _Side(CLIENT_IP, self.client_port, 1000),
            SERVER: _Side(SERVER_IP, port, 5000),
        }
        self.tls = None
        self._connect()
        if self.implicit:
            self.start_tls()

    # -- TCP -------------------------------------------------------------------------------

    def _frame(self, sender: str, flags: int, payload: bytes = b"") -> int:
        me, peer = self.sides[sender], self.sides[CLIENT if sender == SERVER else SERVER]
        tcp = dpkt.tcp.TCP(
            sport=me.port, dport=peer.port, seq=me.seq, ack=me.acked, flags=flags, win=8192
        )
        tcp.data = payload
        ip = dpkt.ip.IP(src=me.ip, dst=peer.ip, p=6, ttl=64, id=len(self.frames), data=tcp)
        ip.len = 20 + len(bytes(tcp))
        eth = dpkt.ethernet.Ethernet(
            src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", data=ip
        )
        self.frames.append((T0 + len(self.frames) * STEP_NS, bytes(eth)))
        me.seq += len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        return len(self.frames)

    def _connect(self) -> None:
        client, server = self.sides[CLIENT], self.sides[SERVER]
        self._frame(CLIENT, dpkt.tcp.TH_SYN)
        server.acked = client.seq
        self._frame(SERVER, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
        client.acked = server.seq
        self._frame(CLIENT, dpkt.tcp.TH_ACK)

    def segments(self, sender: str, data: bytes, sizes: list[int] | None = None) -> int:
        """``data`` in segments of ``sizes`` (then of the MSS), the peer's ACK after them;
        the frame number of the last segment."""
        peer = CLIENT if sender == SERVER else SERVER
        pos, last, sizes = 0, 0, list(sizes or [])
        while pos < len(data):
            size = sizes.pop(0) if sizes else self.mss
            last = self._frame(sender, dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, data[pos : pos + size])
            pos += size
        self.sides[peer].acked = self.sides[sender].seq
        self._frame(peer, dpkt.tcp.TH_ACK)
        return last

    def clear(self, sender: str, data: bytes) -> None:
        self.segments(sender, data)

    def close(self) -> None:
        for sender in (CLIENT, SERVER):
            peer = CLIENT if sender == SERVER else SERVER
            self.sides[peer].acked = self.sides[sender].seq + 1
            self._frame(sender, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK)
        self._frame(CLIENT, dpkt.tcp.TH_ACK)

    # -- TLS -------------------------------------------------------------------------------

    def start_tls(self) -> None:
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        client_ctx.maximum_version = self.version
        client_ctx.keylog_filename = str(self.keylog)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(*self.pki)
        self.bios = {name: (ssl.MemoryBIO(), ssl.MemoryBIO()) for name in (CLIENT, SERVER)}
        self.tls = {
            CLIENT: client_ctx.wrap_bio(*self.bios[CLIENT], server_hostname="mx.example.jp"),
            SERVER: server_ctx.wrap_bio(*self.bios[SERVER], server_side=True),
        }
        done: set[str] = set()
        for _ in range(8):
            for name in (CLIENT, SERVER):
                if name not in done:
                    try:
                        self.tls[name].do_handshake()
                        done.add(name)
                    except ssl.SSLWantReadError:
                        pass
                self._flush(name)
        assert done == {CLIENT, SERVER}, "handshake did not complete"

    def starttls(self) -> None:
        """Greeting, EHLO, STARTTLS and its 220 in clear text, then the handshake."""
        for sender, line in (
            (SERVER, b"220 mx.example.jp ESMTP\r\n"),
            (CLIENT, b"EHLO client.example\r\n"),
            (SERVER, b"250-mx.example.jp\r\n250 STARTTLS\r\n"),
            (CLIENT, b"STARTTLS\r\n"),
            (SERVER, b"220 2.0.0 Ready to start TLS\r\n"),
        ):
            self.clear(sender, line)
        self.start_tls()

    def _flush(self, sender: str, sizes: list[int] | None = None) -> int | None:
        """Whatever TLS bytes ``sender`` has written go on the wire; the peer reads them."""
        data = self.bios[sender][1].read()
        if not data:
            return None
        peer = CLIENT if sender == SERVER else SERVER
        last = self.segments(sender, data, sizes)
        self.bios[peer][0].write(data)
        with contextlib.suppress(ssl.SSLWantReadError):
            while self.tls[peer].read(1 << 16):
                pass
        self._flush(peer)  # TLS 1.3 session tickets, alerts
        return last

    def send(self, sender: str, *writes: bytes, sizes: list[int] | None = None) -> int:
        """Each write becomes one TLS record (or more past 16 KB); all of them go out
        together, cut into segments of ``sizes`` then of the MSS."""
        for data in writes:
            self.tls[sender].write(data)
        last = self._flush(sender, sizes)
        self.plain[sender].append((last, b"".join(writes)))
        return last

    def stream(self, sender: str) -> bytes:
        return b"".join(data for _, data in self.plain[sender])

    def write(self, path: Path) -> Path:
        records = []
        for time_ns, frame in self.frames:
            sec, ns = divmod(time_ns, 1_000_000_000)
            records.append(struct.pack("<IIII", sec, ns, len(frame), len(frame)) + frame)
        header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
        path.write_bytes(header + b"".join(records))
        return path


def _main() -> None:
    """``python3 -m tests.tlsconv OUT.pcap``: one SMTP session over TLS carrying a large
    message, for benchmarks (docs/performance.md); the key log goes beside it."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=_main.__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--tls", choices=["1.2", "1.3"], default="1.3")
    parser.add_argument("--implicit", action="store_true", help="port 465 instead of STARTTLS")
    parser.add_argument("--message-kb", type=int, default=128)
    args = parser.parse_args()
    version = ssl.TLSVersion.TLSv1_2 if args.tls == "1.2" else ssl.TLSVersion.TLSv1_3
    with tempfile.TemporaryDirectory() as folder:
        pki = make_pki(Path(folder))
        keylog = args.output.with_suffix(".keylog")
        keylog.unlink(missing_ok=True)
        c = Conversation(pki, keylog, version=version, implicit=args.implicit)
        if args.implicit:
            c.send(SERVER, b"220 mx.example.jp ESMTP\r\n")
        else:
            c.starttls()
        line = b"A line of a large message, repeated to fill it up to the size asked for.\r\n"
        body = line * (args.message_kb * 1024 // len(line))
        for sender, data in (
            (CLIENT, b"EHLO client.example\r\n"),
            (SERVER, b"250-mx.example.jp\r\n250 PIPELINING\r\n"),
            (CLIENT, b"MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n"),
            (SERVER, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
            (CLIENT, b"Subject: large\r\n\r\n" + body + b".\r\n"),
            (SERVER, b"250 2.0.0 Ok: queued as 4BC123\r\n"),
            (CLIENT, b"QUIT\r\n"),
            (SERVER, b"221 2.0.0 Bye\r\n"),
        ):
            c.send(sender, data)
        c.close()
        c.write(args.output)


if __name__ == "__main__":
    _main()
