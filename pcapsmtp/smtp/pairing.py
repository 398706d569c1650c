"""Which command a reply can answer, told by the reply alone (its code, enhanced code, text).

In step, replies answer commands in the order they were sent (RFC 5321 4.3, RFC 2920 3.1:
pipelined replies come in order), so position alone pairs them. After bytes the capture lacks
(a gap, a capture started mid-session) position is lost: some replies or some commands are not
there. The protocol still says what each reply can answer (RFC 5321 4.3.2's reply lists,
RFC 3463's subject codes), and a reply that only one command could have drawn puts the pairing
back in step, as Zeek's analyzer recovers after SMTP_AFTER_GAP on the next reply it can place.
"""

from __future__ import annotations

from pcapsmtp.smtp import codes, queue_ids
from pcapsmtp.smtp.events import AUTH_RESPONSE, END_OF_DATA, GREETING, Command, Reply

NO = 0
MAYBE = 1
SURE = 2

ONLY_TO = {
    220: (GREETING, "STARTTLS"),
    221: ("QUIT",),
    235: ("AUTH", AUTH_RESPONSE),
    334: ("AUTH", AUTH_RESPONSE),
    354: ("DATA",),
}
"""Codes RFC 5321 4.3.2 (and RFC 4954, RFC 3207) allow in answer to these commands only."""
ADDRESS_VERBS = ("MAIL", "RCPT")
ENDS_MESSAGE = (END_OF_DATA, "BDAT")
ACCEPTED_MESSAGE = ("queued", "accepted for delivery", "message accepted")
"""Words of a positive reply to the end of a message (Postfix, Sendmail, Exchange, Exim)."""


def fit(command: Command, reply: Reply) -> int:
    """SURE when only this command draws such a reply, MAYBE when it could, else NO."""
    verb, code = command.verb, reply.code
    if code in ONLY_TO:
        return SURE if verb in ONLY_TO[code] else NO
    if verb == GREETING:
        return MAYBE if code in (421, 554) else NO
    enhanced = codes.parse_enhanced(reply.lines[0] if reply.lines else "") or ""
    if enhanced[1:4] == ".1.":
        # X.1.Y: addressing status (RFC 3463 3.2), the answer to MAIL or RCPT.
        if verb not in ADDRESS_VERBS:
            return NO
        if not codes.is_positive(code):
            return MAYBE
        if enhanced[4:] == "5":
            return SURE if verb == "RCPT" else NO  # X.1.5 destination address valid
        return SURE if verb == "MAIL" and enhanced[4:] == "0" else MAYBE
    if codes.is_positive(code):
        return _fit_positive(command, reply)
    return MAYBE


def _fit_positive(command: Command, reply: Reply) -> int:
    verb = command.verb
    if verb == "DATA":
        return NO  # DATA draws 354 or a refusal, never 250
    text = reply.text.lower()
    if queue_ids.queue_id(reply.text) or any(words in text for words in ACCEPTED_MESSAGE):
        return SURE if verb in ENDS_MESSAGE else NO
    if len(reply.lines) > 1 and reply.code == 250:
        return SURE if verb in ("EHLO", "LHLO") else NO
    return MAYBE
