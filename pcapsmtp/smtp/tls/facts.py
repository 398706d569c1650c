"""What the clear-text part of a TLS handshake showed: the facts the scanner hands on."""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapsmtp.smtp.events import Side


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
