"""Addresses as people write them: 10.0.0.5:25 and [2001:db8::5]:25."""

from __future__ import annotations

import ipaddress


def address(ip: bytes, port: int | None = None) -> str:
    text = str(ipaddress.ip_address(ip))
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def endpoint_name(endpoint) -> str:
    """'ip:port' of a pcapsmtp.tcp.Endpoint."""
    return address(endpoint.ip, endpoint.port)
