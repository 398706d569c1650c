"""The server's leaf certificate (sent in clear up to TLS 1.2) read with ``cryptography``."""

from __future__ import annotations

from pcapsmtp.smtp.tls.facts import Certificate


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
