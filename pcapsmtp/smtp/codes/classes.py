"""Reply classes (RFC 5321 section 4.2.1, the first digit) and what the basic reply codes
mean (RFC 5321 sections 4.2.2 and 4.2.3, and the extensions that added one)."""

from __future__ import annotations

# --- Reply classes, RFC 5321 section 4.2.1 (first digit) -------------------------------------

REPLY_CLASSES = {
    2: "positive",  # 2yz Positive Completion reply
    3: "intermediate",  # 3yz Positive Intermediate reply
    4: "transient",  # 4yz Transient Negative Completion reply
    5: "permanent",  # 5yz Permanent Negative Completion reply
}


def reply_class(code: int) -> str:
    """The class of a reply by its first digit; "invalid" outside 200-599."""
    if not 200 <= code <= 599:
        return "invalid"
    return REPLY_CLASSES[code // 100]


def is_positive(code: int) -> bool:
    return reply_class(code) == "positive"


def is_intermediate(code: int) -> bool:
    return reply_class(code) == "intermediate"


def is_transient(code: int) -> bool:
    return reply_class(code) == "transient"


def is_permanent(code: int) -> bool:
    return reply_class(code) == "permanent"


def _is_negative(code: int) -> bool:
    return is_transient(code) or is_permanent(code)


# --- Basic reply codes: RFC 5321 sections 4.2.2 and 4.2.3, and the extensions that added one --

BASIC_CODES = {
    211: "system status, or system help reply",
    214: "help message",
    220: "service ready",
    221: "service closing transmission channel",
    235: "authentication succeeded",  # RFC 4954 section 6
    250: "requested mail action okay, completed",
    251: "user not local; the server will forward the message",
    252: "cannot verify the user, but will accept the message and attempt delivery",
    334: "authentication challenge: the server waits for the client's next AUTH step",  # RFC 4954
    354: "start mail input; end with <CRLF>.<CRLF>",
    421: "service not available, closing the transmission channel",
    432: "a password transition is needed",  # RFC 4954 section 6
    450: "mailbox unavailable for now (busy, or temporarily blocked for policy reasons)",
    451: "requested action aborted: local error in processing on the server",
    452: "insufficient system storage on the server (or too many recipients)",
    454: "temporary authentication failure, or TLS not available now",  # RFC 4954, RFC 3207
    455: "the server cannot accommodate the MAIL FROM/RCPT TO parameters now",
    458: "unable to queue messages for the node",  # RFC 1985 (ETRN)
    459: "node not allowed",  # RFC 1985 (ETRN)
    500: "syntax error, command unrecognized (or command line too long)",
    501: "syntax error in parameters or arguments",
    502: "command not implemented",
    503: "bad sequence of commands",
    504: "command parameter not implemented",
    521: "this host does not accept mail",  # RFC 7504 section 3
    530: "authentication required, or STARTTLS must come first",  # RFC 4954, RFC 3207
    534: "authentication mechanism is too weak",  # RFC 4954 section 6
    535: "authentication credentials invalid",  # RFC 4954 section 6
    538: "encryption required for the requested authentication mechanism",  # RFC 4954
    550: "mailbox unavailable (not found, no access, or refused for policy reasons)",
    551: "user not local; the client should try the forward-path given",
    552: "exceeded storage allocation (message too big for the server or mailbox)",
    553: "mailbox name not allowed (e.g. address syntax incorrect)",
    554: "transaction failed (when opening the connection: no SMTP service here)",
    555: "MAIL FROM/RCPT TO parameters not recognized or not implemented",
    556: "the recipient's domain does not accept mail",  # RFC 7504 section 3
}

_CLASS_MEANINGS = {
    "positive": "positive completion",
    "intermediate": "positive intermediate: the server waits for more from the client",
    "transient": "temporary failure: the same command may succeed later",
    "permanent": "permanent failure: retrying unchanged will not succeed",
    "invalid": "not a valid SMTP reply code",
}
_CLASS_WORDS = {"transient": "temporary failure", "permanent": "permanent failure"}


def _basic_meaning(code: int) -> str:
    klass = reply_class(code)
    phrase = BASIC_CODES.get(code)
    if phrase is None:
        return f"{_CLASS_MEANINGS[klass]} ({code})"
    word = _CLASS_WORDS.get(klass)
    return f"{word}: {phrase} ({code})" if word else phrase
