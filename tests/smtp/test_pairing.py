"""What a reply can answer, told by the reply alone (pcapsmtp.smtp.pairing.fit)."""

from __future__ import annotations

import pytest

from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, GREETING, Command, Reply
from pcapsmtp.smtp.pairing import MAYBE, NO, SURE, fit


def _fit(verb: str, code: int, *lines: str) -> int:
    return fit(Command(verb, "", 1, 0), Reply(code, list(lines) or [""], 2, 0))


@pytest.mark.parametrize(
    ("verb", "code", "lines", "expected"),
    [
        ("DATA", 354, ["End data with <CR><LF>.<CR><LF>"], SURE),  # RFC 5321 4.3.2
        ("RCPT", 354, ["End data"], NO),
        ("QUIT", 221, ["2.0.0 Bye"], SURE),
        ("MAIL", 221, ["2.0.0 Bye"], NO),
        (AUTH_RESPONSE, 334, ["UGFzc3dvcmQ6"], SURE),  # RFC 4954
        (GREETING, 220, ["mx ESMTP"], SURE),
        ("STARTTLS", 220, ["2.0.0 Ready to start TLS"], SURE),  # RFC 3207
        ("EHLO", 220, ["mx ESMTP"], NO),
        (GREETING, 554, ["no SMTP service here"], MAYBE),  # RFC 5321 3.1
        (GREETING, 250, ["Ok"], NO),
        ("MAIL", 250, ["2.1.0 Ok"], SURE),  # RFC 3463 X.1.0, Postfix
        ("RCPT", 250, ["2.1.5 Ok"], SURE),  # RFC 3463 X.1.5 destination address valid
        ("MAIL", 250, ["2.1.5 Ok"], NO),
        ("DATA", 250, ["2.1.5 Ok"], NO),
        ("RCPT", 550, ["5.1.1 <x@y>: Recipient address rejected"], MAYBE),
        ("EHLO", 550, ["5.1.1 <x@y>: Recipient address rejected"], NO),
        (END_OF_DATA, 250, ["2.0.0 Ok: queued as 4ABC123"], SURE),
        (END_OF_DATA, 250, ["OK id=1abcde-000123-AB"], SURE),  # Exim
        ("RCPT", 250, ["2.0.0 Ok: queued as 4ABC123"], NO),
        ("DATA", 250, ["Ok"], NO),  # DATA draws 354 or a refusal
        ("EHLO", 250, ["mx", "PIPELINING", "SIZE 1000"], SURE),
        ("RSET", 250, ["mx", "PIPELINING"], NO),
        ("RCPT", 250, ["Accepted"], MAYBE),  # Exim: no enhanced code, any 250 could be it
        ("MAIL", 451, ["4.3.0 try again"], MAYBE),
    ],
)
def test_fit(verb, code, lines, expected):
    assert _fit(verb, code, *lines) == expected
