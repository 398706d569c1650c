"""TLS's numbers and what they are called: record content types, handshake message types,
extensions, protocol versions, alerts, and cipher suites by OpenSSL's names."""

from __future__ import annotations

import functools

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
