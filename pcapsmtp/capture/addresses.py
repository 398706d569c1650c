"""Addresses as people write them: 10.0.0.5:25 and [2001:db8::5]:25."""

from __future__ import annotations

import functools
import ipaddress


def address(ip: bytes, port: int | None = None) -> str:
    text = _text(ip) if type(ip) is bytes else str(ipaddress.ip_address(ip))
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def endpoint_name(endpoint) -> str:
    """'ip:port' of a pcapsmtp.tcp.Endpoint."""
    return address(endpoint.ip, endpoint.port)


@functools.lru_cache(maxsize=4096)
def _text(ip: bytes) -> str:
    """A capture's addresses come back session after session (its servers, its clients'
    networks): ``ipaddress`` parses and formats each in about 8 us, 14,000 times in the JSON
    of a 200 MB capture of 1,800 sessions."""
    return str(ipaddress.ip_address(ip))
