"""Facts from the clear-text part of a TLS handshake (after STARTTLS, or on port 465).

Sans-io: each direction's bytes come in stream order, any split, with the frame that carried
them. Records (RFC 8446 5.1, RFC 5246 6.2) are walked; handshake messages are reassembled
across records in a bounded buffer and the ClientHello, ServerHello and (TLS <= 1.2) the
server's Certificate are read. Once a direction is encrypted only record headers are read;
bodies are counted, never kept. Peer data never makes this module raise: what cannot be
understood becomes an anomaly code and the direction resynchronises or stops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pcapsmtp.smtp.events import CLIENT, SERVER, Side
from pcapsmtp.smtp.tls.certificates import parse_certificate
from pcapsmtp.smtp.tls.facts import TlsAlert, TlsFacts
from pcapsmtp.smtp.tls.fields import _extensions, _Reader, _server_name, _Short
from pcapsmtp.smtp.tls.names import (
    ALERT,
    ALERT_LEVELS,
    ALERT_NAMES,
    APPLICATION_DATA,
    CERTIFICATE,
    CHANGE_CIPHER_SPEC,
    CLIENT_HELLO,
    EXT_SERVER_NAME,
    EXT_SUPPORTED_VERSIONS,
    HANDSHAKE,
    HEARTBEAT,
    HELLO_RETRY_RANDOM,
    SERVER_HELLO,
    _grease,
    _version_name,
    cipher_name,
)

MAX_RECORD = (1 << 14) + 2048
"""Longest record body allowed: TLSCiphertext of TLS 1.2 (RFC 5246 6.2.3); 1.3 allows less."""
HANDSHAKE_LIMIT = 64 * 1024
"""Handshake bytes kept per message; a longer message (a huge certificate chain) is cut."""
RESYNC_LIMIT = 64 * 1024
"""Bytes searched for a record boundary after a gap before older bytes are dropped."""
CLEAR_TEXT_SHOWN = 80


@dataclass(slots=True)
class _Direction:
    """Parsing state of one direction."""

    sender: Side
    buf: bytearray = field(default_factory=bytearray)
    """The record being read: header, plus the body when it is read in clear."""
    skip: int = 0
    """Body bytes of the current record still to pass over without keeping them."""
    handshake: bytearray = field(default_factory=bytearray)
    handshake_skip: int = 0
    """Bytes of an over-long handshake message still to drop."""
    records: int = 0
    encrypted: bool = False
    resync: bool = False
    resync_need: int = 0
    """While resynchronising: buffered bytes needed before the next search is worth it."""
    stopped: bool = False


_RECORD_START = re.compile(rb"[\x14-\x18]\x03[\x00-\x04]")
_OK, _NOT_TLS, _LOST = range(3)


class TlsScanner:
    """Both directions of one TLS connection in, ``TlsFacts`` out."""

    def __init__(self) -> None:
        self._facts = TlsFacts()
        self._dirs: dict[str, _Direction] = {}
        self._tls13 = False
        self._server_hello = False
        self._finished: set[str] = set()
        """Senders whose Finished went out, as far as records show it."""

    @property
    def facts(self) -> TlsFacts:
        return self._facts

    @property
    def failed(self) -> bool:
        """A fatal (or encrypted) alert before the handshake completed, a ClientHello that
        no ServerHello answered, or a side that does not speak TLS at all."""
        facts = self._facts
        if facts.client_hello_frame is not None and facts.server_hello_frame is None:
            return True
        if facts.clear_text:
            return True
        # A TLS 1.3 record only guessed to be an alert by its size counts when the client's
        # side of the handshake is in the capture: without its ClientHello and records (the
        # capture lost them), "before the client's Finished" says nothing.
        client_seen = facts.client_hello_frame is not None or CLIENT in facts.encrypted_from
        return any(
            a.during_handshake and a.level != "warning" and (client_seen or not a.inferred)
            for a in facts.alerts
        )

    def _completed(self) -> bool:
        return {CLIENT, SERVER} <= self._finished

    # -- input ----------------------------------------------------------------

    def feed(self, sender: Side, data: bytes, frame: int, time_ns: int) -> None:
        """Bytes of one direction in stream order (any split)."""
        d = self._direction(sender)
        while data and not d.stopped:
            data = self._resync(d, data) if d.resync else self._walk(d, data, frame, time_ns)

    def gap(self, sender: Side) -> None:
        """Bytes of ``sender`` went missing: find the next record boundary in what follows."""
        d = self._direction(sender)
        if d.stopped:
            return
        self._anomaly("gap")
        if d.handshake and not d.encrypted:
            self._anomaly("truncated_handshake")
        d.buf.clear()
        d.skip = 0
        d.handshake.clear()
        d.handshake_skip = 0
        d.resync = True
        d.resync_need = 0

    # -- the walk in the core (issue 21) ----------------------------------------

    def records_walk(self, sender: Side) -> tuple[int, bytes, int | None] | None:
        """Where ``sender``'s walk is, ``(skip, head, alert_size)``, when all its next
        records can be walked elsewhere (pcapsmtp._core.TlsRecords, which the flow table
        feeds): the direction is encrypted, in step, and every application_data record
        it sends from now on only adds to ``records`` and ``application_bytes`` (it was
        counted before, its Finished too in TLS 1.3), so a walker that takes only such
        records and refuses anything else (with ``alert_size``, the length of a TLS 1.3
        encrypted alert, refused) leaves the facts as ``feed`` would. Else None."""
        d = self._dirs.get(sender)
        facts = self._facts
        if (
            d is None
            or not d.encrypted
            or d.resync
            or d.stopped
            or not d.records
            or len(d.buf) >= 5
            or sender not in facts.encrypted_from
            or sender not in facts.application_bytes
            or (self._tls13 and sender not in self._finished)
        ):
            return None
        return d.skip, bytes(d.buf), self._alert_size() if self._tls13 else None

    def walked(self, sender: Side, skip: int, head: bytes, records: int, length: int) -> None:
        """What the walk ``records_walk`` allowed did: where it is now, and the records
        and application_data bytes it counted."""
        d = self._dirs[sender]
        d.skip = skip
        d.buf[:] = head
        d.records += records
        if length:
            self._facts.application_bytes[sender] += length

    def _direction(self, sender: Side) -> _Direction:
        d = self._dirs.get(sender)
        if d is None:
            d = self._dirs[sender] = _Direction(sender)
        return d

    # -- records --------------------------------------------------------------

    def _walk(self, d: _Direction, data: bytes, frame: int, time_ns: int) -> bytes:
        """Walk the records in ``data``; returns the bytes to resynchronise on when the
        record framing was lost, else b""."""
        pos, n = 0, len(data)
        while pos < n:
            if d.skip:
                take = min(d.skip, n - pos)
                d.skip -= take
                pos += take
            elif len(d.buf) < 5:
                take = min(5 - len(d.buf), n - pos)
                d.buf += data[pos : pos + take]
                pos += take
                if len(d.buf) < 5:
                    break
                verdict = self._header(d, frame, time_ns)
                if verdict == _NOT_TLS:
                    self._not_tls(d, bytes(d.buf) + data[pos : pos + CLEAR_TEXT_SHOWN])
                    return b""
                if verdict == _LOST:
                    rest = bytes(d.buf[1:]) + data[pos:]
                    d.buf.clear()
                    d.resync = True
                    return rest
            else:
                need = 5 + d.buf[3] * 256 + d.buf[4] - len(d.buf)
                take = min(need, n - pos)
                d.buf += data[pos : pos + take]
                pos += take
                if take == need:
                    content_type, body = d.buf[0], bytes(d.buf[5:])
                    d.buf.clear()
                    self._record(d, content_type, body, frame, time_ns)
        return b""

    def _header(self, d: _Direction, frame: int, time_ns: int) -> int:
        """A record header is complete in ``d.buf``: check it, and pass over the body unless
        it is to be read. Returns _OK, _NOT_TLS or _LOST."""
        head = d.buf
        content_type, length = head[0], head[3] * 256 + head[4]
        first = d.records == 0
        if first and d.sender == CLIENT and _sslv2_hello(head):
            self._sslv2_hello(d, frame)
            return _OK
        if not (CHANGE_CIPHER_SPEC <= content_type <= HEARTBEAT and head[1] == 3 and head[2] <= 4):
            if first:
                return _NOT_TLS
            self._anomaly("bad_record")
            return _LOST
        if length > MAX_RECORD:
            self._anomaly("record_too_long")
            return _LOST
        d.records += 1
        if length == 0:
            d.buf.clear()
            self._record(d, content_type, b"", frame, time_ns)
        elif self._passed_over(d, content_type, length, frame, time_ns):
            d.buf.clear()
            d.skip = length
        return _OK

    def _passed_over(
        self, d: _Direction, content_type: int, length: int, frame: int, time_ns: int
    ) -> bool:
        """Account for a record whose body is not read; False when the body must be read."""
        if content_type == CHANGE_CIPHER_SPEC or (content_type == ALERT and length == 2):
            return False  # clear even after encryption started (RFC 8446 5, D.4)
        if content_type == APPLICATION_DATA:
            apps = self._facts.application_bytes
            apps[d.sender] = apps.get(d.sender, 0) + length
        if not d.encrypted:
            return content_type != HANDSHAKE
        self._facts.encrypted_from.setdefault(d.sender, frame)
        if content_type == ALERT or (self._tls13 and length == self._alert_size()):
            self._alert(d.sender, None, None, frame, time_ns, inferred=content_type != ALERT)
        elif self._tls13 or content_type == HANDSHAKE:
            # TLS 1.3: the first encrypted record that is no alert carries Finished (or
            # what precedes it); TLS <= 1.2: the handshake record after ChangeCipherSpec.
            self._finished.add(d.sender)
        return True

    def _record(self, d: _Direction, content_type: int, body: bytes, frame: int, t: int) -> None:
        if content_type == CHANGE_CIPHER_SPEC:
            self._change_cipher_spec(d)
        elif content_type == ALERT:
            if len(body) == 2:
                self._alert(d.sender, body[0], body[1], frame, t)
        elif content_type == HANDSHAKE:
            self._handshake_bytes(d, body, frame)

    def _change_cipher_spec(self, d: _Direction) -> None:
        # In TLS 1.3 it is a no-op kept for middleboxes (RFC 8446 D.4), and a client that
        # offered 1.3 may send it before any ServerHello (after a HelloRetryRequest).
        offered_13 = "TLSv1.3" in self._facts.offered_versions
        if not self._tls13 and (self._server_hello or not offered_13):
            if d.handshake:
                self._anomaly("truncated_handshake")
                d.handshake.clear()
            d.encrypted = True

    def _alert(
        self,
        sender: Side,
        level: int | None,
        code: int | None,
        frame: int,
        time_ns: int,
        inferred: bool = False,
    ) -> None:
        encrypted = code is None
        alert = TlsAlert(
            frame=frame,
            time_ns=time_ns,
            sender=sender,
            level="unknown" if encrypted else ALERT_LEVELS.get(level, "unknown"),
            description="unknown" if encrypted else ALERT_NAMES.get(code, f"alert_{code}"),
            encrypted=encrypted,
            during_handshake=not self._completed(),
            inferred=inferred,
        )
        self._facts.alerts.append(alert)

    def _alert_size(self) -> int:
        """Length of a TLS 1.3 encrypted alert: 2 bytes, the inner type, the AEAD tag (16,
        or 8 for TLS_AES_128_CCM_8_SHA256), when no padding is added (RFC 8446 5.2)."""
        return 2 + 1 + (8 if self._facts.cipher_id == 0x1305 else 16)

    def _not_tls(self, d: _Direction, head: bytes) -> None:
        self._anomaly("not_tls")
        text = head[:CLEAR_TEXT_SHOWN].decode("ascii", "backslashreplace")
        self._facts.clear_text[d.sender] = text
        d.stopped = True
        d.buf.clear()

    def _sslv2_hello(self, d: _Direction, frame: int) -> None:
        """An SSLv2-compatible ClientHello (RFC 5246 E.2): note the version, skip it."""
        head = d.buf
        self._anomaly("sslv2_client_hello")
        facts = self._facts
        if facts.client_hello_frame is None:
            facts.client_hello_frame = frame
            facts.offered_versions = [_version_name(head[3] * 256 + head[4])]
        d.records += 1
        d.skip = max(0, ((head[0] & 0x7F) << 8 | head[1]) - 3)
        d.buf.clear()

    # -- resynchronisation after a gap or a bad header --------------------------

    def _resync(self, d: _Direction, data: bytes) -> bytes:
        """Look for two consecutive plausible record headers; return the bytes from the
        first of them (to be parsed as records), or b"" while still searching."""
        d.buf += data
        buf = d.buf
        if len(buf) < d.resync_need:
            return b""
        for match in _RECORD_START.finditer(bytes(buf)):  # a copy: buf shrinks below
            at = match.start()
            if at + 5 > len(buf):
                break
            length = buf[at + 3] * 256 + buf[at + 4]
            after = at + 5 + length
            if length > MAX_RECORD:
                continue
            if after + 5 > len(buf):
                self._drop_searched(d, at)
                d.resync_need = after + 5 - at
                return b""
            if _RECORD_START.match(buf, after):
                found = bytes(buf[at:])
                buf.clear()
                d.resync = False
                d.resync_need = 0
                d.records = max(d.records, 1)
                return found
        self._drop_searched(d, max(0, len(buf) - 4))
        d.resync_need = 0
        return b""

    def _drop_searched(self, d: _Direction, keep_from: int) -> None:
        if len(d.buf) > RESYNC_LIMIT:
            keep_from = max(keep_from, len(d.buf) - RESYNC_LIMIT)
        del d.buf[:keep_from]

    # -- handshake messages -----------------------------------------------------

    def _handshake_bytes(self, d: _Direction, body: bytes, frame: int) -> None:
        if d.encrypted:
            return
        if d.handshake_skip:
            drop = min(d.handshake_skip, len(body))
            d.handshake_skip -= drop
            body = body[drop:]
        d.handshake += body
        hs = d.handshake
        while len(hs) >= 4 and not d.encrypted:
            msg_type, length = hs[0], int.from_bytes(hs[1:4], "big")
            if length > HANDSHAKE_LIMIT:
                if len(hs) < 4 + HANDSHAKE_LIMIT:
                    return
                self._anomaly("handshake_too_long")
                self._message(d, msg_type, bytes(hs[4 : 4 + HANDSHAKE_LIMIT]), frame)
                used = min(len(hs), 4 + length)
                d.handshake_skip = 4 + length - used
                del hs[:used]
                continue
            if len(hs) < 4 + length:
                return
            message = bytes(hs[4 : 4 + length])
            del hs[: 4 + length]
            self._message(d, msg_type, message, frame)

    def _message(self, d: _Direction, msg_type: int, body: bytes, frame: int) -> None:
        try:
            if msg_type == CLIENT_HELLO and d.sender == CLIENT:
                self._client_hello(body, frame)
            elif msg_type == SERVER_HELLO and d.sender == SERVER:
                self._server_hello_message(body, frame)
            elif msg_type == CERTIFICATE and d.sender == SERVER:
                self._certificate(body, frame)
        except _Short:
            self._anomaly(f"malformed_{_MESSAGE_NAMES.get(msg_type, 'handshake')}")

    def _client_hello(self, body: bytes, frame: int) -> None:
        """RFC 8446 4.1.2 (the TLS 1.2 layout is the same, RFC 5246 7.4.1.2)."""
        facts = self._facts
        if facts.client_hello_frame is not None:
            return  # the second ClientHello after a HelloRetryRequest says nothing new
        r = _Reader(body)
        legacy = r.u16()
        random = r.take(32)
        r.vector(1)
        suites = r.vector(2)
        r.vector(1)
        ids = [suites[i] * 256 + suites[i + 1] for i in range(0, len(suites) - 1, 2)]
        facts.client_hello_frame = frame
        facts.client_random = random
        facts.offered_ciphers = len(ids)
        facts.offered_cipher_names = [cipher_name(i) for i in ids if not _grease(i)]
        facts.offered_versions = [_version_name(legacy)]
        for ext_type, data in _extensions(r):
            if ext_type == EXT_SERVER_NAME:
                facts.sni = _server_name(data)
            elif ext_type == EXT_SUPPORTED_VERSIONS:
                v = _Reader(data).vector(1)
                versions = [v[i] * 256 + v[i + 1] for i in range(0, len(v) - 1, 2)]
                facts.offered_versions = [_version_name(x) for x in versions if not _grease(x)]

    def _server_hello_message(self, body: bytes, frame: int) -> None:
        """RFC 8446 4.1.3; a HelloRetryRequest shares the layout."""
        facts = self._facts
        r = _Reader(body)
        legacy = r.u16()
        random = r.take(32)
        r.vector(1)
        suite = r.u16()
        r.u8()
        version = legacy
        for ext_type, data in _extensions(r):
            if ext_type == EXT_SUPPORTED_VERSIONS:
                version = _Reader(data).u16()
        facts.cipher_id = suite
        facts.cipher = cipher_name(suite)
        facts.version = _version_name(version)
        if random == HELLO_RETRY_RANDOM:
            facts.hello_retry = True
            return
        facts.server_hello_frame = frame
        self._server_hello = True
        if version == 0x0304:
            # Everything after the ServerHello is encrypted, both ways (RFC 8446 2).
            self._tls13 = True
            self._direction(CLIENT).encrypted = True
            self._direction(SERVER).encrypted = True

    def _certificate(self, body: bytes, frame: int) -> None:
        """RFC 5246 7.4.2: a 24-bit list of 24-bit length-prefixed DER certificates."""
        facts = self._facts
        if facts.certificate is not None:
            return
        r = _Reader(body)
        chain = _Reader(r.take(min(r.u24(), r.left())))
        ders = []
        while chain.left() >= 3:
            length = chain.u24()
            if length > chain.left():
                self._anomaly("truncated_certificate_chain")
                break
            ders.append(chain.take(length))
        facts.certificates = len(ders)
        if ders:
            facts.certificate = parse_certificate(ders[0], frame)
            if facts.certificate is None:
                self._anomaly("bad_certificate_der")

    def _anomaly(self, code: str) -> None:
        if code not in self._facts.anomalies:
            self._facts.anomalies.append(code)


_MESSAGE_NAMES = {CLIENT_HELLO: "client_hello", SERVER_HELLO: "server_hello", 11: "certificate"}


def _sslv2_hello(head: bytes | bytearray) -> bool:
    """An SSLv2 record header with a CLIENT-HELLO (msg type 1) and a 3.x version inside."""
    return len(head) >= 5 and head[0] & 0x80 != 0 and head[2] == 1 and head[3] == 3
