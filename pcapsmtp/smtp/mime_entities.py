"""What a MIME entity's header block says about its body: media type, transfer encoding,
multipart boundary, disposition and file name (RFC 2045, 2046, 2183, 2231), read with the
``email`` package's parameter parsing from the block pcapsmtp.smtp.message parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

from pcapsmtp.smtp.header_text import (
    FOLD,
    decode_bytes,
    decode_field,
    field_text,
    is_plain,
    latin1_bytes,
)
from pcapsmtp.smtp.message_facts import MAX_BOUNDARY


@dataclass(slots=True)
class Entity:
    """What a MIME entity's header block says about its body."""

    content_type: str
    subtype: str
    disposition: str | None
    encoding: str
    boundary: bytes | None
    filename: str | None


def describe(entity: Message) -> tuple[Entity, list[str]]:
    anomalies: list[str] = []
    params, codec = _param_fields(entity)
    content_type = params.get_content_type()  # always one "/" (RFC 2045 5.2 fallback)
    maintype, _, subtype = content_type.partition("/")
    encoding = params.get("content-transfer-encoding")
    type_params = _TypeParams(params)
    boundary = None
    if maintype == "multipart":
        text = type_params.boundary()
        if not text or len(text) > MAX_BOUNDARY:
            anomalies.append("multipart_without_boundary")
        else:
            boundary = text.encode(codec, "replace")
    info = Entity(
        content_type=content_type,
        subtype=subtype,
        disposition=params.get_content_disposition(),
        encoding=str(encoding).strip().lower() if encoding else "7bit",
        boundary=boundary,
        filename=_filename(params, type_params, anomalies),
    )
    return info, anomalies


class _TypeParams:
    """Content-Type's parameters, parsed by the email package (``Message.get_params``) at
    most once for the boundary and the name: ``get_boundary`` and ``get_param`` each parse
    the field again. Parsed only when one is asked for, as those calls would."""

    __slots__ = ("_message", "_params")

    def __init__(self, message: Message) -> None:
        self._message = message
        self._params: list | None = None

    def get(self, name: str) -> str | tuple | None:
        """``Message.get_param(name)``: the first parameter of that name, unquoted."""
        if self._params is None:
            self._params = self._message.get_params(header="content-type") or []
        for key, value in self._params:
            if key.lower() == name:
                return value
        return None

    def boundary(self) -> str | None:
        """``Message.get_boundary()``."""
        if "content-type" not in self._message:
            return None
        if self._params is None:
            self._params = self._message.get_params(header="content-type") or []
        for key, value in self._params:
            if key.lower() == "boundary":
                return collapse_rfc2231_value(value).rstrip()
        return None


def _filename(params: Message, type_params: _TypeParams, anomalies: list[str]) -> str | None:
    """Content-Disposition filename, else Content-Type name (email's get_filename order)."""
    for header in ("content-disposition", "content-type"):
        if header == "content-disposition":
            value = params.get_param("filename", header=header)
        else:
            value = type_params.get("name")
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: charset'language'value, %-decoded
            charset, _, text = value
            text, ok = decode_bytes(latin1_bytes(text), charset)
        else:  # often RFC 2047 inside the quoted string: not allowed (RFC 2047 5), but common
            text, ok = decode_field(value)
        if not ok:
            anomalies.append("undecodable_filename")
        text = text.strip()
        if text:
            return text
    return None


_PARAM_FIELDS = frozenset(("content-type", "content-disposition", "content-transfer-encoding"))


def _param_fields(entity: Message) -> tuple[Message, str]:
    """Content-Type, Content-Disposition and Content-Transfer-Encoding as text, for the email
    package's parameter parsing, and the codec the (last) Content-Type was read with: 8-bit
    bytes are decoded first, so raw UTF-8 or Shift_JIS names survive, and folding is
    removed. When the three are plain ASCII on one line (nearly always) that changes
    nothing, and the parsed block itself is read."""
    picked = [
        (name.strip().lower(), value)
        for name, value in entity.raw_items()
        if name.strip().lower() in _PARAM_FIELDS
    ]
    if all(is_plain(value) for _, value in picked):
        return entity, "ascii"
    message = Message()
    codec = "ascii"
    message.set_default_type(entity.get_default_type())
    for key, value in picked:
        text, field_codec = field_text(value)
        if key == "content-type":
            codec = field_codec
        message[key] = FOLD.sub("", text)
    return message, codec
