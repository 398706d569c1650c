"""SMTP replies as a mail admin reads them: reply classes and basic codes (``classes``, RFC
5321 4.2), enhanced status codes (``enhanced``, RFC 3463), what a reply means in one line
(``meanings``), and the kinds of refusal the diagnosis asks about (``refusals``).

Every function takes the reply text without the three-digit code, lines joined with "\\n",
the enhanced code (when the server sends one) at the start of the first line. Pure functions:
no I/O, nothing raises on peer text.
"""

from pcapsmtp.smtp.codes.classes import (
    is_intermediate,
    is_permanent,
    is_positive,
    is_transient,
    reply_class,
)
from pcapsmtp.smtp.codes.enhanced import enhanced_meaning, parse_enhanced
from pcapsmtp.smtp.codes.meanings import meaning
from pcapsmtp.smtp.codes.refusals import (
    is_greylisting,
    is_policy_refusal,
    is_rate_limited,
    is_size_rejection,
)

__all__ = [
    "enhanced_meaning",
    "is_greylisting",
    "is_intermediate",
    "is_permanent",
    "is_policy_refusal",
    "is_positive",
    "is_rate_limited",
    "is_size_rejection",
    "is_transient",
    "meaning",
    "parse_enhanced",
    "reply_class",
]
