"""The lab's SMTP client: smtplib, with every command and reply written down as it happens.

The transcript is the ground truth of a session: it comes from what the client sent and
received, never from reading the capture.
"""

from __future__ import annotations

import base64
import random
import re
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from email.header import Header, decode_header, make_header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

HELO = "client.lab.test"
QUEUED_AS = re.compile(r"(?:queued as |\bid=)([0-9A-Za-z-]+)")  # Postfix; Exim
AUTH_RESPONSE = "AUTH-RESPONSE"  # a line answering a 334 challenge: not a command verb


def endpoint(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def root_error(exc: BaseException) -> BaseException:
    """The OSError smtplib wrapped in SMTPServerDisconnected, if any."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, smtplib.SMTPException):
            return seen
        seen = seen.__context__
    return exc


def classify(exc: BaseException) -> str:
    """The DESIGN.md outcome that an exception seen by the client stands for."""
    err = root_error(exc)
    if isinstance(err, ssl.SSLError):
        return "tls-failed"
    if isinstance(err, ConnectionRefusedError):
        return "refused"
    if isinstance(err, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(err, TimeoutError):
        return "timeout"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "incomplete"
    return "incomplete"


def make_message(
    subject: str,
    mail_from: str,
    rcpt: list[str],
    body: str = "Hello from the pcapsmtp lab.\n",
    attachment: int = 0,
    seed: int = 1,
    message_id: str | None = None,
    subject_charset: str | None = None,
) -> bytes:
    """An RFC 5322 message with CRLF line ends; ``attachment`` random bytes, base64-encoded.

    No line starts with a dot, so the message's size is the same before and after
    dot-stuffing.
    """
    charset = "us-ascii" if body.isascii() else "utf-8"  # us-ascii keeps the body readable (7bit)
    if attachment:
        msg = MIMEMultipart()
        msg.attach(MIMEText(body, "plain", charset))
        blob = random.Random(seed).randbytes(attachment)
        part = MIMEApplication(blob, "octet-stream", Name="lab.bin")
        part["Content-Disposition"] = 'attachment; filename="lab.bin"'
        msg.attach(part)
    else:
        msg = MIMEText(body, "plain", charset)
    msg["From"] = mail_from
    msg["To"] = ", ".join(rcpt)
    if subject_charset:
        msg["Subject"] = Header(subject, subject_charset).encode()
        assert str(make_header(decode_header(msg["Subject"]))) == subject
    else:
        msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or f"<lab-{seed}@{HELO}>"
    data = msg.as_bytes()
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"\r\n." not in data
    return data


class LabSMTP(smtplib.SMTP):
    """smtplib.SMTP that records the dialogue: (command verb, reply code) in order."""

    def __init__(
        self,
        server: tuple[str, int],
        timeout: float = 30,
        source: tuple[str, int] | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        helo: str = HELO,
    ):
        super().__init__(local_hostname=helo, timeout=timeout, source_address=source)
        self.server_addr = server
        self.implicit_tls = implicit_tls
        self.steps: list[dict] = []
        self.transactions: list[dict] = []
        self._pending: deque[str] = deque()
        self._encrypted = False
        self._auth_continues = False
        self.client_addr = source
        self.tls: str | None = None
        self.tls_version: str | None = None
        self.error: str | None = None
        self.helo_name = helo
        self.connected = False
        self.greeting: int | None = None
        self.exception: str | None = None
        # Called once the TCP connection is up, before the greeting is read.
        self.on_connect: Callable[[], None] | None = None
        # (bytes, seconds): send the message in pieces with a pause after each, calling
        # on_chunk(i) before piece i; data_sent counts what the socket accepted.
        self.pacing: tuple[int, float] | None = None
        self.on_chunk: Callable[[int], None] | None = None
        self.data_sent = 0

    # -- recording hooks ------------------------------------------------------------------
    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        self.connected = True
        self.client_addr = sock.getsockname()[:2]
        if self.on_connect:
            self.on_connect()
        if self.implicit_tls:
            self.tls = "implicit"
            self._encrypted = True
            sock = self.implicit_tls.wrap_socket(sock, server_hostname=host)
            self.tls_version = sock.version()
        return sock

    def putcmd(self, cmd, args=""):
        if self._auth_continues:
            verb = AUTH_RESPONSE
        else:
            verb = cmd.split(" ", 1)[0].upper() if cmd else ""
        self._pending.append(verb)
        super().putcmd(cmd, args)

    def expect(self, verb: str) -> None:
        """Register a command sent without putcmd (end of data, BDAT, pipelined lines)."""
        self._pending.append(verb)

    def getreply(self):
        code, text = super().getreply()
        command = self._pending.popleft() if self._pending else None
        self._auth_continues = code == 334 and command in ("AUTH", AUTH_RESPONSE)
        self._record(command, code, text.decode("utf-8", "replace"))
        return code, text

    def _record(self, command: str | None, code: int | None, text: str | None) -> None:
        step = {"command": command, "reply": code}
        if self._encrypted:
            step["encrypted"] = True
        if text is not None:
            step["reply_text"] = text
        self.steps.append(step)

    def unanswered(self) -> None:
        """Commands that were sent but never answered get ``"reply": null``."""
        while self._pending:
            self._record(self._pending.popleft(), None, None)

    # -- session-level operations ---------------------------------------------------------
    def open(self) -> int:
        """Connect and read the greeting; its code is also kept as ``self.greeting``."""
        self.greeting, _ = self.connect(self.server_addr[0], self.server_addr[1])
        return self.greeting

    def starttls(self, context: ssl.SSLContext):
        self.tls = "starttls"
        code, text = self.docmd("STARTTLS")
        if code != 220:
            raise smtplib.SMTPNotSupportedError(code, text)
        self._encrypted = True
        self.sock = context.wrap_socket(self.sock, server_hostname=self.server_addr[0])
        self.tls_version = self.sock.version()
        self.file = None
        self.helo_resp = self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        return code, text

    def data(self, msg: bytes):
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if self.pacing:
            self._send_paced(msg + b".\r\n")
        else:
            self.send(msg + b".\r\n")
        self.expect(".")
        return self.getreply()

    def _send_paced(self, payload: bytes) -> None:
        """A slow sender: the message in pieces, a pause after each."""
        size, pause = self.pacing
        self.data_sent = 0
        for i, start in enumerate(range(0, len(payload), size)):
            if self.on_chunk:
                self.on_chunk(i)
            self.send(payload[start : start + size])
            self.data_sent = min(start + size, len(payload))
            time.sleep(pause)

    def transaction(
        self,
        mail_from: str,
        rcpt: list[str],
        message: bytes,
        subject: str | None,
        mail_options: tuple[str, ...] = (),
        pipelined: bool = False,
        then_quit: bool = False,
    ) -> dict:
        """MAIL, RCPT..., DATA, the message; recorded as one transaction."""
        tx = {
            "mail_from": mail_from,
            "rcpt_to": [],
            "subject": None,
            "size": None,
            "code": None,
            "queue_id": None,
        }
        self.transactions.append(tx)
        if pipelined:
            return self._pipelined(tx, mail_from, rcpt, message, subject, mail_options, then_quit)
        code, _ = self.mail(mail_from, list(mail_options))
        if code != 250:
            tx["code"] = code
            return tx
        for addr in rcpt:
            rcode, _ = self.rcpt(addr)
            tx["rcpt_to"].append({"address": addr, "code": rcode})
        if not any(r["code"] in (250, 251) for r in tx["rcpt_to"]):
            tx["code"] = tx["rcpt_to"][-1]["code"]
            return tx
        tx["subject"], tx["size"] = subject, len(message)
        try:
            code, text = self.data(message)
        finally:
            if self.pacing and self.data_sent < len(message) + 3:  # the socket failed
                tx["message_size"] = len(message)
                tx["size"] = min(self.data_sent, len(message))
        self._finish(tx, code, text)
        return tx

    def _finish(self, tx: dict, code: int, text: bytes) -> None:
        tx["code"] = code
        match = QUEUED_AS.search(text.decode("utf-8", "replace"))
        tx["queue_id"] = match.group(1) if match and code == 250 else None

    def _pipelined(self, tx, mail_from, rcpt, message, subject, mail_options, then_quit) -> dict:
        """RFC 2920: MAIL, every RCPT and DATA in one write, then the replies in order.

        With ``then_quit`` the end of data and QUIT go out in one write too.
        """
        tx["pipelined"] = True
        opts = "".join(f" {o}" for o in mail_options)
        lines = [f"MAIL FROM:<{mail_from}>{opts}\r\n"] + [f"RCPT TO:<{a}>\r\n" for a in rcpt]
        lines.append("DATA\r\n")
        self.send("".join(lines).encode())
        for verb in ["MAIL"] + ["RCPT"] * len(rcpt) + ["DATA"]:
            self.expect(verb)
        mcode, _ = self.getreply()
        for addr in rcpt:
            rcode, _ = self.getreply()
            tx["rcpt_to"].append({"address": addr, "code": rcode})
        dcode, _ = self.getreply()
        if dcode != 354:
            tx["code"] = mcode if mcode != 250 else tx["rcpt_to"][-1]["code"]
            return tx
        tx["subject"], tx["size"] = subject, len(message)
        self.send(message + b".\r\n" + (b"QUIT\r\n" if then_quit else b""))
        self.expect(".")
        if then_quit:
            self.expect("QUIT")
        code, text = self.getreply()
        self._finish(tx, code, text)
        if then_quit:
            self.getreply()
        return tx

    def bdat_transaction(
        self,
        mail_from: str,
        rcpt: list[str],
        message: bytes,
        subject: str,
        chunk: int,
        zero_last: bool = False,
        pipelined: bool = False,
    ) -> dict:
        """RFC 3030: the message in BDAT chunks of ``chunk`` bytes, the last one ``LAST``.

        With ``zero_last`` every chunk goes without LAST and an empty ``BDAT 0 LAST`` ends it.
        With ``pipelined`` MAIL, RCPT and the first chunk go out in one write (RFC 2920).
        """
        tx = {"mail_from": mail_from, "rcpt_to": [], "subject": subject, "size": len(message),
              "code": None, "queue_id": None, "chunks": []}  # fmt: skip
        self.transactions.append(tx)
        pieces = [message[i : i + chunk] for i in range(0, len(message), chunk)]
        if zero_last:
            pieces.append(b"")
        head = b""
        if pipelined:
            tx["pipelined"] = True
            head = f"MAIL FROM:<{mail_from}>\r\n".encode()
            head += "".join(f"RCPT TO:<{a}>\r\n" for a in rcpt).encode()
            self._pending.extend(["MAIL"] + ["RCPT"] * len(rcpt))
        else:
            self.mail(mail_from)
            for addr in rcpt:
                tx["rcpt_to"].append({"address": addr, "code": self.rcpt(addr)[0]})
        for i, piece in enumerate(pieces):
            last = " LAST" if i == len(pieces) - 1 else ""
            self.send(head + f"BDAT {len(piece)}{last}\r\n".encode() + piece)
            self.expect("BDAT")
            if head:
                head = b""
                self.getreply()
                for addr in rcpt:
                    tx["rcpt_to"].append({"address": addr, "code": self.getreply()[0]})
            code, text = self.getreply()
            tx["chunks"].append(len(piece))
        self._finish(tx, code, text)
        return tx

    def quit(self):
        try:
            return super().quit()
        finally:
            self.close()

    # -- the truth -------------------------------------------------------------------------
    def session(self, outcome: str | None = None, **extra) -> dict:
        """This session's ground-truth record (see captures/README.md for the fields)."""
        self.unanswered()
        last = next((s["reply"] for s in reversed(self.steps) if s["reply"] is not None), None)
        record = {
            "client": endpoint(self.client_addr) if self.client_addr else None,
            "server": endpoint(self.server_addr),
            "tls": self.tls,
            "tls_version": self.tls_version,
            "helo": self.helo_name
            if any(s["command"] in ("EHLO", "HELO") for s in self.steps)
            else None,
            "dialogue": self.steps,
            "transactions": self.transactions,
            "reset_by": None,
            "outcome": outcome or self.default_outcome(),
            "outcome_without_keys": None,
            "last_reply": last,
        }
        if self.tls:
            record["outcome_without_keys"] = (
                "tls-failed" if self.error == "tls-failed" else "encrypted"
            )
        record.update(extra)
        return record

    def default_outcome(self) -> str:
        if self.error in ("refused", "unreachable", "tls-failed", "reset", "timeout"):
            return self.error
        codes = [t["code"] for t in self.transactions if t["code"] is not None]
        if any(c // 100 == 2 for c in codes):
            return "delivered"
        replies = [s["reply"] for s in self.steps if s["reply"] is not None]
        if any(c // 100 == 5 for c in codes) or (replies and replies[-1] // 100 == 5 and not codes):
            return "rejected"
        if any(c // 100 == 4 for c in codes) or any(c in (421,) for c in replies):
            return "deferred"
        if self.error:
            return self.error
        return "incomplete"


def run_session(smtp: LabSMTP, body) -> LabSMTP:
    """Open, run ``body(smtp)``, and note how it ended; failures become ``smtp.error``."""
    try:
        smtp.open()
        body(smtp)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.error = classify(exc)
        if smtp.error == "timeout" and not smtp.connected:
            smtp.error = "unreachable"
        smtp.exception = f"{type(root_error(exc)).__name__}: {root_error(exc)}"
        smtp.close()
    return smtp


def client_context(
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    keylog: str | None = None,
) -> ssl.SSLContext:
    """A TLS client context that trusts the lab's self-signed server and logs its keys."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if keylog:
        ctx.keylog_filename = keylog
    return ctx


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def bound_socket(family: int, source: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(source)
    return sock


def parse_swaks(transcript: str) -> tuple[list[dict], list[bytes]]:
    """swaks' transcript -> (dialogue steps, message lines sent after 354).

    swaks prefixes client lines with " -> " (" ~> " inside TLS) and server lines with "<-  "
    ("<~  " inside TLS, "<** " / "<~* " for error replies); "===" and "***" lines are its own.
    """
    steps: list[dict] = []
    pending: deque[str] = deque()
    body: list[bytes] = []
    in_data = auth = False
    reply_lines: list[str] = []
    for line in transcript.splitlines():
        prefix, text = line[:4], line[4:]
        if prefix in (" -> ", " ~> "):
            if in_data:
                if text == ".":
                    in_data = False
                    pending.append(".")
                else:
                    body.append(text.encode())
                continue
            verb = AUTH_RESPONSE if auth else text.split(" ", 1)[0].upper()
            pending.append(verb)
        elif prefix in ("<-  ", "<~  ", "<** ", "<~* "):
            reply_lines.append(text[4:])
            if text[3:4] == "-":
                continue
            code = int(text[:3])
            command = pending.popleft() if pending else None
            step = {"command": command, "reply": code}
            if prefix[1] == "~":
                step["encrypted"] = True
            step["reply_text"] = "\n".join(reply_lines)
            reply_lines = []
            steps.append(step)
            auth = code == 334 and command in ("AUTH", AUTH_RESPONSE)
            in_data = command == "DATA" and code == 354
    for command in pending:
        steps.append({"command": command, "reply": None})
    return steps, body
