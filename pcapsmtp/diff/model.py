"""What a diff hands to the renderers: two sides, their aligned steps, parameters, a verdict.

A diff always has two sides, ``a`` and ``b``. In a comparison (``pcapsmtp diff GOOD BAD``)
``a`` is the working session and ``b`` the failing one; with ``--same-session`` ``a`` is the
session as the client side saw it and ``b`` as the server side saw it. ``Side.role`` names
each ('good', 'bad', 'client_side', 'server_side') and is the key the JSON uses.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field

from pcapsmtp.diagnose import Finding
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.events import Side as Sender
from pcapsmtp.smtp.model import Outcome, Session

Value = str | int | float | bool | list | dict | None
"""A parameter's value: plain, as JSON holds it (pcapsmtp.diff.parameters)."""

COMPARE = "compare"
SAME_SESSION = "same-session"


@dataclass(slots=True)
class Side:
    """One of the two sessions of a diff."""

    role: str
    """'good', 'bad', 'client_side' or 'server_side': the key of this side in the JSON."""
    capture: str
    """The capture file as the user named it."""
    session: Session
    findings: list[Finding] = field(default_factory=list)
    """The session's findings and the capture-wide ones of its capture."""
    capture_point: str = "unknown"
    """Where the capture was taken, judged from TTLs: 'client', 'server', 'path', 'unknown'."""
    sessions_in_capture: int = 0
    copies: Set[int] = frozenset()
    """Frames of its capture that repeat a packet captured just before
    (CaptureInfo.copy_frames): one packet seen twice, not a retransmission."""


@dataclass(slots=True)
class Step:
    """One step of a dialogue: the greeting, a command with its reply, the message, the end."""

    key: str
    """What the alignment compares: 'greeting', an upper-case verb, 'message', 'tls',
    'unsolicited' or 'end'."""
    label: str
    """The step as people read it: 'EHLO client.example', 'message, 285 bytes'."""
    argument: str = ""
    """The command's argument (wire text); for 'end', how the connection ended."""
    frame: int | None = None
    """The frame that completed the command (or the reply, for steps with no command)."""
    time_ns: int | None = None
    reply: Reply | None = None
    latency_ns: int | None = None
    """Time from the end of the command (the handshake, for the greeting) to the reply."""
    incomplete: bool = False
    """A message whose end of data was never sent or never seen."""
    hidden: bool = False
    """The capture cannot show the step: the greeting inside implicit TLS (port 465), or
    sent before the capture started; ``note`` says which."""
    note: str = ""
    """Anything else worth a few words ('never finished', the outcome at the end)."""
    reply_lost: str = ""
    """Why the capture holds no reply though one was likely sent, in words: the server's
    bytes around it have a hole the capture lost (the capture-loss evidence: 'the capture
    lost the reply'), or it holds only the client's packets (capture-one-sided); empty when
    the reply is there, or when none came."""
    outcome: Outcome | None = None
    """For 'end': the session's outcome."""
    outcome_unknown: bool = False
    """For 'end': the capture holds one side's packets only, or lost replies of a session
    left incomplete, so it cannot show how the mail went (as inside TLS): another outcome
    is no departure."""
    first_frame: int = 0
    last_frame: int = 0
    """The frames this step spans: TCP events between them belong to it."""
    tcp: dict[str, int] = field(default_factory=dict)
    """TCP trouble during the step: 'retransmissions' (copies of a packet captured twice left
    out), 'resets', 'ignored_resets' (RSTs the connection outlived), 'zero_windows', 'icmp'."""


@dataclass(slots=True)
class Divergence:
    """How one aligned step differs between the two sides."""

    kind: str
    """The first difference found: 'only-in-a', 'only-in-b', 'reply', 'no-reply',
    'not-captured' (a reply the capture lost), 'incomplete', 'ending', 'tcp', 'slower',
    'enhanced', 'extensions', 'banner', 'command'."""
    major: bool
    """True for a difference that can explain a failure; False for one that is tolerated (an
    extra STARTTLS or RCPT, a missing QUIT, a different banner, a slower reply)."""
    detail: str
    """Every difference of the step, in a sentence."""


@dataclass(slots=True)
class AlignedStep:
    index: int
    """1-based position in the aligned dialogue."""
    a: Step | None
    b: Step | None
    divergence: Divergence | None = None


@dataclass(slots=True)
class Parameter:
    """One connection parameter side by side."""

    name: str
    """Stable identifier (the JSON key)."""
    label: str
    a: Value
    b: Value
    differs: bool


@dataclass(slots=True)
class TransitFact:
    """Something that happened between two capture points of one session."""

    code: str
    """A stable identifier: 'segments-vanished', 'rst-forged', 'mss-rewritten', ..."""
    summary: str
    finding: str | None = None
    """The finding code of the catalogue this amounts to ('mtu-blackhole', ...), if any."""
    frames_a: list[int] = field(default_factory=list)
    """Evidence frames in the first (client-side) capture."""
    frames_b: list[int] = field(default_factory=list)
    """Evidence frames in the second (server-side) capture."""


@dataclass(slots=True)
class DirectionTransit:
    """What one side sent, as seen where it was sent and where it should have arrived."""

    sender: Sender
    sent: int = 0
    """Data segments (transmissions, retransmissions included) seen on the sender's side."""
    arrived: int = 0
    vanished: int = 0
    """Transmissions seen on the sender's side that never appeared on the other side."""
    vanished_sizes: dict[int, int] = field(default_factory=dict)
    """IP length -> vanished transmissions of that size."""
    arrived_sizes: dict[int, int] = field(default_factory=dict)
    unconfirmed: int = 0
    """Transmissions missing on the other side after that capture's last packet of the flow:
    they may have arrived after it stopped."""
    appeared: int = 0
    """Data segments on the receiving side that the sending side never sent."""
    fragmented: int = 0
    """Segments sent whole that arrived in IP fragments."""
    hops: int | None = None
    """TTL lost between the two points (the sender's usual TTL there minus here)."""


@dataclass(slots=True)
class Diff:
    """The comparison of two sessions."""

    mode: str
    """COMPARE or SAME_SESSION."""
    a: Side
    b: Side
    steps: list[AlignedStep] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    first_divergence: AlignedStep | None = None
    only_in_a: list[Finding] = field(default_factory=list)
    """Findings (by code) of side a that side b does not have."""
    only_in_b: list[Finding] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    """Caveats: different capture points, how the sessions were chosen."""
    pairing: str | None = None
    """SAME_SESSION: how the two views were paired ('isn', 'payload', 'ports', 'time')."""
    transit: list[DirectionTransit] = field(default_factory=list)
    facts: list[TransitFact] = field(default_factory=list)
    """SAME_SESSION: what a box between the two points did, most telling first."""
