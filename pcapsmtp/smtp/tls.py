"""Facts from the clear-text part of a TLS handshake (after STARTTLS, or on port 465).

Sans-io: each direction's bytes come in stream order, any split, with the frame that carried
them. Records (RFC 8446 5.1, RFC 5246 6.2) are walked; handshake messages are reassembled
across records in a bounded buffer and the ClientHello, ServerHello and (TLS <= 1.2) the
server's Certificate are read. Once a direction is encrypted only record headers are read;
bodies are counted, never kept. Peer data never makes this module raise: what cannot be
understood becomes an anomaly code and the direction resynchronises or stops.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from pcapsmtp.smtp.events import CLIENT, SERVER, Side

# Record content types (RFC 8446 5.1, RFC 6520 for heartbeat).
CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
HEARTBEAT = 24

# Handshake message types (RFC 8446 4, RFC 5246 7.4).
CLIENT_HELLO = 1
SERVER_HELLO = 2
CERTIFICATE = 11

# Extensions (RFC 6066 3, RFC 8446 4.2.1).
EXT_SERVER_NAME = 0
EXT_SUPPORTED_VERSIONS = 43

MAX_RECORD = (1 << 14) + 2048
"""Longest record body allowed: TLSCiphertext of TLS 1.2 (RFC 5246 6.2.3); 1.3 allows less."""
HANDSHAKE_LIMIT = 64 * 1024
"""Handshake bytes kept per message; a longer message (a huge certificate chain) is cut."""
RESYNC_LIMIT = 64 * 1024
"""Bytes searched for a record boundary after a gap before older bytes are dropped."""
CLEAR_TEXT_SHOWN = 80

HELLO_RETRY_RANDOM = bytes.fromhex(
    "CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"
)
"""ServerHello.random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 4.1.3)."""

VERSION_NAMES = {
    0x0002: "SSLv2",
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}
"""Protocol versions named as OpenSSL, and so Postfix's logs, name them."""

ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
"""Alert descriptions: RFC 8446 6, RFC 5246 7.2, and the IANA TLS Alerts registry.
(``ssl.AlertDescription`` lacks several of these, so it cannot be the source.)"""
ALERT_LEVELS = {1: "warning", 2: "fatal"}


@dataclass(slots=True)
class Certificate:
    """The server's leaf certificate, as sent in clear (TLS <= 1.2)."""

    subject: str
    """RFC 4514 string."""
    issuer: str
    not_before: str
    """ISO 8601, UTC (``2024-01-31T12:00:00Z``)."""
    not_after: str
    san: list[str]
    """DNS names of the subjectAltName extension (RFC 5280 4.2.1.6)."""
    frame: int
    """Frame that completed the Certificate message."""
    public_key: str = ""
    """Key type and size, e.g. ``RSA-2048`` or ``EC-secp256r1``."""
    signature_hash: str = ""
    """Hash of the issuer's signature, e.g. ``sha256``; ``sha1`` is refused by many peers."""


@dataclass(slots=True)
class TlsAlert:
    """One alert record."""

    frame: int
    time_ns: int
    sender: Side
    """``client`` or ``server``."""
    level: str
    """``warning``, ``fatal``, or ``unknown`` when encrypted."""
    description: str
    """RFC name (``handshake_failure``, ``unknown_ca``, ...); ``alert_N`` for an unlisted
    value; ``unknown`` when encrypted."""
    encrypted: bool
    """The alert came after encryption started, so its content is unknown."""
    during_handshake: bool = True
    """Sent before both sides' Finished went out: a fatal one here means the handshake
    failed."""
    inferred: bool = False
    """TLS 1.3 hides the record type: this application_data record was taken for an alert
    because its size is exactly that of an encrypted alert (2 bytes + type + AEAD tag)."""


@dataclass(slots=True)
class TlsFacts:
    """What the clear-text part of a TLS handshake showed."""

    client_hello_frame: int | None = None
    client_random: bytes | None = None
    """ClientHello.random: what a key log names the session's secrets by (NSS key log format)."""
    offered_versions: list[str] = field(default_factory=list)
    """From supported_versions (RFC 8446 4.2.1), else the legacy version; GREASE left out."""
    sni: str | None = None
    """server_name (RFC 6066 3); MTAs often send none."""
    offered_ciphers: int = 0
    """Cipher suites offered, as tshark counts them (GREASE and SCSVs included)."""
    offered_cipher_names: list[str] = field(default_factory=list)
    server_hello_frame: int | None = None
    version: str | None = None
    """Chosen: ServerHello supported_versions (TLS 1.3), else its legacy version."""
    cipher: str | None = None
    """Chosen suite, OpenSSL's name (what Postfix logs), else ``0xC02F``-style."""
    cipher_id: int | None = None
    """Chosen suite, IANA value."""
    hello_retry: bool = False
    """The server answered with a HelloRetryRequest (RFC 8446 4.1.4)."""
    certificate: Certificate | None = None
    certificates: int = 0
    """Certificates in the server's chain (0 when not seen: TLS 1.3 or resumption)."""
    alerts: list[TlsAlert] = field(default_factory=list)
    encrypted_from: dict[Side, int] = field(default_factory=dict)
    """Sender -> first frame carrying one of its encrypted records (after its
    ChangeCipherSpec in TLS <= 1.2; after the ServerHello in TLS 1.3)."""
    application_bytes: dict[Side, int] = field(default_factory=dict)
    """Sender -> bytes in its application_data records (in TLS 1.3 these include the
    encrypted handshake, which looks the same)."""
    clear_text: dict[Side, str] = field(default_factory=dict)
    """Sender -> the first bytes of a direction that is not TLS at all, as text: evidence
    such as an inspection box's "500 5.5.1 Command unrecognized" after a 220 to STARTTLS."""
    anomalies: list[str] = field(default_factory=list)
    """Stable snake_case codes, each at most once: not_tls, record_too_long,
    truncated_handshake, handshake_too_long, malformed_client_hello, ..."""


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
        return any(a.during_handshake and a.level != "warning" for a in facts.alerts)

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


class _Short(Exception):
    """A handshake message ended before one of its fields."""


class _Reader:
    """Bounds-checked reading of TLS presentation-language fields (RFC 8446 3)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise _Short
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vector(self, size_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(size_bytes), "big"))


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    """Extensions block (optional in TLS <= 1.2 hellos)."""
    if r.left() < 2:
        return []
    block = _Reader(r.vector(2))
    found = []
    while block.left() >= 4:
        ext_type = block.u16()
        found.append((ext_type, block.vector(2)))
    return found


def _server_name(data: bytes) -> str | None:
    """server_name extension: the first host_name entry (RFC 6066 3)."""
    names = _Reader(_Reader(data).vector(2))
    while names.left() >= 3:
        name_type = names.u8()
        name = names.vector(2)
        if name_type == 0:
            return name.decode("ascii", "backslashreplace")
    return None


def _sslv2_hello(head: bytes | bytearray) -> bool:
    """An SSLv2 record header with a CLIENT-HELLO (msg type 1) and a 3.x version inside."""
    return len(head) >= 5 and head[0] & 0x80 != 0 and head[2] == 1 and head[3] == 3


def _grease(value: int) -> bool:
    """RFC 8701 reserved values: 0x0A0A, 0x1A1A, ... 0xFAFA."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def _version_name(value: int) -> str:
    return VERSION_NAMES.get(value, f"0x{value:04X}")


@functools.cache
def _cipher_table() -> dict[int, str]:
    """IANA value -> OpenSSL name, for every suite the local OpenSSL knows."""
    import ssl  # here, not at the top: ~50 ms of start-up, needed only once TLS is seen

    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
        return {c["id"] & 0xFFFF: c["name"] for c in context.get_ciphers()}
    except (ssl.SSLError, ValueError, KeyError):
        return {}


def cipher_name(value: int) -> str:
    """OpenSSL's name of a cipher suite, or its IANA value as ``0xC02F``."""
    return _cipher_table().get(value, f"0x{value:04X}")


def parse_certificate(der: bytes, frame: int) -> Certificate | None:
    """The facts of one DER certificate (RFC 5280), read by ``cryptography``; None when
    it cannot be parsed."""
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        return Certificate(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            san=_dns_names(cert),
            frame=frame,
            public_key=_key_description(cert),
            signature_hash=_signature_hash(cert),
        )
    except Exception:  # cryptography raises ValueError and others on malformed DER
        return None


def _dns_names(cert) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


def _key_description(cert) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    try:
        key = cert.public_key()
    except Exception:  # unsupported key algorithm
        return "unknown"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA-{key.key_size}"
    return type(key).__name__.removesuffix("PublicKey")


def _signature_hash(cert) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm
        return "unknown"
    return algorithm.name if algorithm is not None else "none"
