"""Misbehaving servers and middleboxes no real MTA imitates on purpose.

Run inside a lab namespace by the scenarios:

    python3 servers.py no-eod-reply  PORT          never answers the end of data
    python3 servers.py zero-window   PORT PAUSE [RCVBUF]   stops reading during DATA for PAUSE s
    python3 servers.py inspect-proxy PORT          Cisco-ASA-style SMTP inspection (transparent)
    python3 servers.py slow-dns ADDR:PORT DELAY   a reverse zone's authority, answering late

Each serves until it is killed; it handles one connection at a time. Nothing here is a
general-purpose server: it trusts its one lab client.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

NAME = "mx.lab.test"
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def listener(port: int, rcvbuf: int | None = None) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:  # set before listen() so that accepted sockets inherit it
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind(("0.0.0.0", port))
    srv.listen(8)
    return srv


class Dialogue:
    """Line-oriented SMTP server side for one connection."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.file = conn.makefile("rb")

    def reply(self, text: str) -> None:
        log("S:", text.replace("\r\n", " | "))
        self.conn.sendall(text.encode() + b"\r\n")

    def line(self) -> bytes:
        data = self.file.readline(4096)
        log("C:", data[:60])
        return data

    def until_data(self) -> bool:
        """Greeting, EHLO, MAIL, RCPT...; True once DATA got its 354."""
        self.reply(f"220 {NAME} ESMTP python-lab-server")
        while line := self.line():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply(f"250-{NAME}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == b"DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                return True
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return False
            else:
                self.reply("502 5.5.2 Error: command not recognized")
        return False

    def read_message(self) -> int:
        size = 0
        while line := self.file.readline(65536):
            if line == b".\r\n":
                return size
            size += len(line)
        return size


def no_eod_reply(port: int) -> None:
    """Accept the whole message, then say nothing: the client has to time out."""
    srv = listener(port)
    while True:
        conn, _ = srv.accept()
        d = Dialogue(conn)
        if d.until_data():
            log("message of", d.read_message(), "bytes; no reply, ever")
            while conn.recv(4096):  # hold the connection until the client goes away
                pass
        d.file.close()
        conn.close()


def zero_window(port: int, pause: float, rcvbuf: int = 2048) -> None:
    """A receiver with a small buffer that stops reading in the middle of DATA."""
    srv = listener(port, rcvbuf=rcvbuf)
    while True:
        conn, _ = srv.accept()
        d = Dialogue(conn)
        if d.until_data():
            d.file.read(4096)
            log(f"not reading for {pause} s")
            time.sleep(pause)
            size = d.read_message()
            d.reply(f"250 2.0.0 Ok: {size} bytes accepted, no queue id")
            if d.line().upper().startswith(b"QUIT"):
                d.reply("221 2.0.0 Bye")
        d.file.close()
        conn.close()


# -- Cisco ASA style "inspect esmtp" ----------------------------------------------------------
# The ASA passes the extensions it understands and masks the others with X's ending in "A"
# (STARTTLS and CHUNKING both become "XXXXXXXA"); the banner text becomes asterisks.
ALLOWED = {b"SIZE", b"8BITMIME", b"PIPELINING", b"DSN", b"ENHANCEDSTATUSCODES", b"AUTH", b"HELP"}


def mask_keyword(line: bytes) -> bytes:
    code, sep, rest = line[:3], line[3:4], line[4:].rstrip(b"\r\n")
    word = rest.split(b" ", 1)[0]
    if word.upper() in ALLOWED:
        return line
    return code + sep + b"X" * (len(word) - 1) + b"A" + rest[len(word) :] + b"\r\n"


def inspect_stream(src: socket.socket, dst: socket.socket) -> None:
    """Server -> client: mask the banner and the EHLO keywords, one whole reply at a time."""
    f = src.makefile("rb")
    replies = 0
    reply: list[bytes] = []
    while line := f.readline(4096):
        reply.append(line)
        if line[3:4] == b"-":
            continue
        if replies == 0 and reply[0].startswith(b"220"):
            reply = [line[:4] + b"*" * (len(line) - 6) + b"\r\n" for line in reply]
        elif len(reply) > 1 and reply[0].startswith(b"250-"):
            # the first line of an EHLO reply names the host: kept; the keywords are masked
            reply = reply[:1] + [mask_keyword(line) for line in reply[1:]]
        dst.sendall(b"".join(reply))
        replies += 1
        reply = []
    dst.shutdown(socket.SHUT_WR)


def pump(src: socket.socket, dst: socket.socket) -> None:
    while data := src.recv(65536):
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)


def inspect_proxy(port: int) -> None:
    """Transparent proxy: iptables REDIRECTs port 25 here; SO_ORIGINAL_DST says where to."""
    srv = listener(port)
    while True:
        conn, peer = srv.accept()
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        dport, dip = struct.unpack_from("!H4s", raw, 2)
        target = (socket.inet_ntoa(dip), dport)
        log("proxy", peer, "->", target)
        upstream = socket.create_connection(target)
        t = threading.Thread(target=pump, args=(conn, upstream), daemon=True)
        t.start()
        inspect_stream(upstream, conn)
        t.join()
        conn.close()
        upstream.close()


def slow_dns(where: str, delay: float) -> None:
    """An authoritative server for the lab's reverse zone that answers every query after
    ``delay`` seconds (a slow or distant name server, which no netem here can imitate):
    PTR of 10.77.1.x -> client.lab.test, NXDOMAIN for anything else. Built with dpkt.dns."""
    import dpkt

    host, port = where.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))

    def answer(data: bytes, peer) -> None:
        time.sleep(delay)
        query = dpkt.dns.DNS(data)
        reply = dpkt.dns.DNS(id=query.id, qd=query.qd, op=dpkt.dns.DNS_AA | 0x8000)
        q = query.qd[0]
        if q.type == dpkt.dns.DNS_PTR and q.name.lower().endswith("1.77.10.in-addr.arpa"):
            rr = dpkt.dns.DNS.RR(name=q.name, type=dpkt.dns.DNS_PTR, ttl=60)
            rr.ptrname = "client.lab.test"
            reply.an = [rr]
        else:
            reply.rcode = dpkt.dns.DNS_RCODE_NXDOMAIN
        sock.sendto(bytes(reply), peer)
        log("answered", q.name, "after", delay)

    while True:
        data, peer = sock.recvfrom(4096)
        threading.Thread(target=answer, args=(data, peer), daemon=True).start()


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "slow-dns":
        slow_dns(argv[1], float(argv[2]))
        return
    port = int(argv[1])
    if mode == "no-eod-reply":
        no_eod_reply(port)
    elif mode == "zero-window":
        zero_window(port, float(argv[2]), *(int(a) for a in argv[3:4]))
    elif mode == "inspect-proxy":
        inspect_proxy(port)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
