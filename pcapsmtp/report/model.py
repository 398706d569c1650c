"""The report document's shape: one TypedDict per part, what ``report`` writes as JSON and
what its Markdown and HTML renderers read.

TypedDicts, not dataclasses: the document is JSON (DESIGN.md's contract, byte for byte the
goldens) and ``--redact-addresses`` rewrites every string of it, so at run time it stays
plain dicts and lists; these declarations are where its fields are named. Adding a field:
declare it here, fill it in the builder (``document.py``, ``dialogue.py``, ``sessions.py``,
...) and show it in the renderers that should; tests/report/test_model.py checks that every
document built from our captures has exactly the fields declared here.

Parts that only the HTML's figures read (a session's ``graphs`` and ``ladder``, the
baseline diff's ``view``) stay out of the JSON (``markdown_report.render_report_json``).

No ``from __future__ import annotations`` here: ``NotRequired`` must stay visible to
``typing`` at run time.
"""

from typing import NotRequired, TypedDict


class FileFacts(TypedDict):
    """Size and SHA-256 of a capture file (``ticket.file_facts``)."""

    name: str
    size: int
    sha256: str


class LinkType(TypedDict):
    linktype: int
    name: str
    frames: int


class CaptureFacts(TypedDict):
    """A capture as every output format describes it (``captures.capture_dict``)."""

    file: str
    format: str
    compression: str | None
    frames: int
    first_time: str | None
    last_time: str | None
    link_types: list[LinkType]
    snaplen: int | None
    truncated: int
    ip_frames: int
    reassembled_datagrams: int
    decryption_secrets: int
    warnings: list[str]
    files: NotRequired[list[str]]
    """The files of a rotated set."""


class CaptureSection(CaptureFacts, FileFacts):
    """The report's capture: its facts, its file's, and its times for people."""

    first_time_utc: str | None
    last_time_utc: str | None
    first_time_local: str | None
    last_time_local: str | None
    duration_s: float | None
    duration: str | None
    smtp_sessions: int
    other_connections: int


class ReportInfo(TypedDict):
    format: int
    title: str


class Verdict(TypedDict):
    line: str
    level: str
    """The worst finding's severity, 'warning' when a session failed unexplained, or 'ok'."""
    sessions: int
    outcomes: dict[str, int]
    errors: int
    warnings: int
    info: int


class Party(TypedDict):
    role: str
    """'server', 'client' or 'icmp sender'."""
    address: str
    ports: list[int]
    names: list[str]
    software: list[str]
    sessions: list[int]


class FindingDoc(TypedDict):
    """One finding (``findings.finding_dict``)."""

    code: str
    severity: str
    session: int | None
    capture: str | None
    tcp_stream: int | None
    frames: list[int]
    frames_left_out: NotRequired[int]
    filter: str | None
    summary: str
    detail: str
    next_steps: list[str]


class Endpoints(TypedDict):
    """The two ends as Zeek and Suricata log them (``sessions.endpoint_fields``)."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


class TimelineRow(Endpoints):
    """One session in the timeline (``document.timeline_row``)."""

    session: int
    tcp_stream: int
    start: str | None
    start_local: str | None
    offset_s: float | None
    duration_s: float
    client: str
    server: str
    community_id: str
    server_software: str | None
    mail_from: str | None
    recipients: int
    outcome: str
    outcome_reason: str
    last_reply: str | None
    tcp: str
    findings: list[str]


class NegativeReply(TypedDict):
    code: int
    enhanced: str | None
    count: int
    text: str
    meaning: str | None
    first_frame: int
    capture: str | None


class PeerRow(TypedDict):
    """What destinations and clients have in common (``health.peer_dict``)."""

    attempts: int
    sessions: list
    """Session ids, or capture-qualified references when there are several captures."""
    outcomes: dict[str, int]
    delivered: int
    deferred: int
    rejected: int
    refused: int
    unreachable: int
    timeouts: int
    messages: dict[str, int]
    first_time: str | None
    last_time: str | None
    replies: dict[str, int]
    negative_replies: list[NegativeReply]


class DestinationRow(PeerRow):
    server: str
    clients: list[str]


class ClientRow(PeerRow):
    client: str
    servers: list[str]


class Overview(TypedDict):
    """Per destination and per client (``health.health_document``)."""

    destinations: list[DestinationRow]
    clients: list[ClientRow]


class LogLineDoc(TypedDict):
    file: str
    line: int
    time: str | None
    mta: str | None
    event: str | None
    queue_id: str | None
    status: str | None
    dsn: str | None
    text: str


class LogNote(TypedDict):
    verdict: str
    text: str
    line: int | None


class LogLink(TypedDict):
    """The log lines of one side linked to a session (``maillog.link_dict``)."""

    side: str
    method: str
    why: str
    lines: list[LogLineDoc]
    notes: list[LogNote]


class Disagreement(TypedDict):
    session: int | str
    text: str


class Orphan(TypedDict):
    side: str
    peer: str | None
    start: str | None
    lines: list[LogLineDoc]


class MaillogDoc(TypedDict):
    """The mail logs given with --maillog (``maillog.maillog_document``)."""

    files: list[dict]
    linked: dict[str, int]
    window_s: float
    clock_offset_s: float
    unlinked_sessions: list
    comparison: str
    disagreements: list[Disagreement]
    orphans: list[Orphan]
    warnings: list[str]


PerSide = int | bool | dict[str, int] | None
"""One side's value of a TcpDoc pair: a count, a flag, sizes by count, or None when unknown."""


class ClientServer(TypedDict):
    client: PerSide
    server: PerSide


Reset = TypedDict("Reset", {"frame": int, "from": str, "ttl": int | None})
IcmpDoc = TypedDict(
    "IcmpDoc", {"frame": int, "type": int, "code": int, "mtu": int | None, "from": str}
)


class TcpDoc(TypedDict):
    """A session's TCP connection (``sessions.tcp_dict``); per side values as ClientServer."""

    state: str
    history: str
    mss: ClientServer
    wscale: ClientServer
    sack: ClientServer
    timestamps: ClientServer
    ttl: ClientServer
    df: ClientServer
    retransmissions: int
    fast_retransmissions: int
    spurious_retransmissions: int
    out_of_order: int
    lost_segments: int
    acked_unseen: int
    dup_acks: int
    zero_windows: int
    resets: list[Reset]
    fragments: int
    icmp: list[IcmpDoc]
    bytes: ClientServer
    packets: ClientServer
    max_segment: ClientServer
    max_ip_len: ClientServer
    max_acked_segment: ClientServer
    max_acked_ip_len: ClientServer
    retransmitted_sizes: ClientServer
    unacked_sizes: ClientServer
    gaps: ClientServer
    rtt_ms: float | None


class TlsDoc(TypedDict):
    mode: str
    frame: int
    version: str | None
    offered_versions: list[str]
    cipher: str | None
    sni: str | None
    alert: str | None
    failed: bool
    decrypted: bool


class AuthDoc(TypedDict):
    mechanism: str | None
    code: int | None
    """The server's answer; the credentials are never kept."""


class Recipient(TypedDict):
    address: str
    code: int | None
    enhanced: str | None
    frame: int


class Attachment(TypedDict):
    filename: str | None
    content_type: str | None
    size: int | None


TransactionDoc = TypedDict(
    "TransactionDoc",
    {
        "mail_from": str | None,
        "mail_params": dict[str, str],
        "rcpt_to": list[Recipient],
        "rcpt_left_out": NotRequired[str],
        "method": str | None,
        "size": int | None,
        "declared_size": int | None,
        "code": int | None,
        "enhanced": str | None,
        "text": str | None,
        "meaning": str | None,
        "queue_id": str | None,
        "message_id": str | None,
        "subject": str | None,
        "from": str | None,
        "date": str | None,
        "attachments": list[Attachment],
        "message_complete": bool,
        "first_frame": int,
        "last_frame": int | None,
        "outcome": str,
    },
)


class ReplyDoc(TypedDict):
    code: int
    enhanced: str | None
    text: str
    frame: int


DialogueLine = TypedDict(
    "DialogueLine",
    {
        "frame": int,
        "time": str | None,
        "from": str,
        "kind": str,
        "text": str,
        "latency_ms": float | None,
        "decrypted": bool,
    },
)


class Unanswered(TypedDict):
    frame: int
    command: str


Anomaly = TypedDict("Anomaly", {"code": str, "frame": int, "from": str, "detail": str})


class SmtpDoc(TypedDict):
    """A session's SMTP dialogue and what it decided (``sessions.smtp_dict``)."""

    banner: str | None
    greeting_latency_ms: float | None
    server_software: str | None
    helo: str | None
    extensions: list[str]
    size_limit: int | None
    starttls: bool
    tls: TlsDoc | None
    auth: AuthDoc | None
    tunnel: str | None
    transactions: list[TransactionDoc]
    dialogue: list[DialogueLine]
    last_reply: ReplyDoc | None
    deciding_reply: ReplyDoc | None
    unanswered: list[Unanswered]
    anomalies: list[Anomaly]


class SessionDoc(Endpoints):
    """A session as the analyze, show and report documents hold it (``sessions.session_dict``)."""

    id: int
    capture: str | None
    tcp_stream: int
    client: str
    server: str
    community_id: str
    start: str | None
    end: str | None
    first_frame: int
    last_frame: int
    outcome: str
    outcome_reason: str
    tcp: TcpDoc
    smtp: SmtpDoc
    findings: list[FindingDoc]
    limits: NotRequired[list[str]]
    """The per-session caps reached (docs/limits.md)."""


Entry = TypedDict(
    "Entry",
    {
        "frame": int,
        "last_frame": int,
        "count": int,
        "time": str | None,
        "offset_ms": float,
        "from": str,
        "kind": str,
        "text": str,
        "latency_ms": float | None,
        "code": int | None,
        "to": str | None,
        "label": str,
    },
)
"""One line of the interleaved dialogue (``dialogue.dialogue_entries``): a command, a reply,
a run of one TCP event or of one ICMP error."""


class SessionSection(SessionDoc):
    """A session shown in detail (``dialogue.session_section`` and ``document.build_report``)."""

    start_local: str | None
    end_local: str | None
    dialogue_dropped: int
    entries: list[Entry]
    graphs: dict | None
    """Drawing material of the HTML (``series.session_series``), not in the JSON."""
    ladder: list[dict]
    """Drawing material of the HTML (``ladder.ladder_rows``), not in the JSON."""
    log: list[LogLink] | None
    """The mail log lines linked to the session; None when no log was given."""


class Detailed(TypedDict):
    why: str
    sessions: list[int]


class DiffStepRow(TypedDict):
    index: int
    mark: str
    good: str
    good_latency: str
    bad: str
    bad_latency: str
    detail: str | None


class ParameterRow(TypedDict):
    label: str
    good: str
    bad: str
    differs: bool


class DiffView(TypedDict):
    """The diff as the Markdown and HTML renderers show it (``baseline._view``)."""

    markdown: str
    steps: list[DiffStepRow]
    parameters: list[ParameterRow]
    legend: str


class DiffSection(TypedDict):
    document: dict | None
    """``pcapsmtp diff``'s JSON document (``diffdoc.diff_document``), or None."""
    error: str | None
    view: NotRequired[DiffView]
    """Only with a document; not in the JSON."""


class BaselineSection(TypedDict):
    capture: CaptureSection
    verdict: Verdict
    timeline: list[TimelineRow]
    findings: list[FindingDoc]
    diff: DiffSection


class Produced(TypedDict):
    tool: str
    version: str
    command_line: list[str]
    generated: str
    tz: str
    addresses: str
    credentials: str


class Report(TypedDict):
    """The whole report (``document.build_report``)."""

    schema_version: str
    report: ReportInfo
    verdict: Verdict
    capture: CaptureSection
    parties: list[Party]
    findings: list[FindingDoc]
    timeline: list[TimelineRow]
    overview: Overview
    maillog: MaillogDoc | None
    detailed: Detailed
    sessions: list[SessionSection]
    baseline: BaselineSection | None
    produced: Produced
