"""smtp.log, conn.log and files.log as Zeek writes them, so zeek-cut and the SIEM parsers
built for Zeek read what pcapsmtp found (``analyze --format zeek`` and ``--format
zeek-json``).

Learnt from Zeek's own scripts (zeek/zeek: base/protocols/smtp/main.zeek, files.zeek and
entities.zeek, base/protocols/conn/main.zeek, base/frameworks/files/main.zeek), none of it
copied: the field names, types and order of the logs, which MIME entity is a file and how
deep, and when Zeek writes an smtp.log row: one per mail transaction as its script draws the
line (a row starts with the connection's first SMTP line, at the reply to a message, or at a
MAIL after client activity; a row with no MAIL, RCPT or STARTTLS is not written). The TCP
facts are the analysis's own: conn_state and history come from pcapsmtp.tcp.state, computed
once while reading. The layout and the escaping of wire text: pcapsmtp.report.zeekwriter.
Each log's rows are drawn in a module of its own: pcapsmtp.report.zeeksmtp, .zeekconn (with
the ids the three logs share) and .zeekfiles; this one puts them together.
docs/zeek-logs.md lists every difference and why.
"""

from __future__ import annotations

from pcapsmtp.analysis.model import Analysis
from pcapsmtp.report.zeekconn import CONN_FIELDS, conn_row
from pcapsmtp.report.zeekfiles import FILES_FIELDS, message_files
from pcapsmtp.report.zeeksmtp import SMTP_FIELDS, smtp_rows
from pcapsmtp.report.zeekwriter import ZeekLog, json_lines, tsv


def zeek_logs(analysis: Analysis) -> list[ZeekLog]:
    """smtp.log, conn.log and files.log of the analysis's sessions, in the order of their
    first frames (Zeek writes a row when it is done with it; the order of rows carries
    nothing)."""
    times = [t for c in analysis.captures for t in (c.first_time_ns, c.last_time_ns) if t]
    span = (min(times), max(times)) if times else (None, None)
    smtp = ZeekLog("smtp", SMTP_FIELDS, [], *span)
    conn = ZeekLog("conn", CONN_FIELDS, [], *span)
    files = ZeekLog("files", FILES_FIELDS, [], *span)
    for session in analysis.sessions:
        conn.rows.append(conn_row(session))
        found = message_files(session)
        smtp.rows.extend(smtp_rows(session, found))
        files.rows.extend(row for rows in found.values() for row in rows)
    smtp.rows.sort(key=lambda row: row["ts"])
    files.rows.sort(key=lambda row: row["ts"])
    return [smtp, conn, files]


def render_zeek(analysis: Analysis, tz=None) -> str:
    """The logs in Zeek's TSV layout, smtp.log, conn.log then files.log, each with its own
    headers: zeek-cut reads them one after the other (it starts again at each
    ``#fields``)."""
    return "".join(tsv(log) for log in zeek_logs(analysis))


def render_zeek_json(analysis: Analysis, tz=None) -> str:
    """The logs as JSON lines, smtp.log's, conn.log's then files.log's; each line carries
    ``_path`` (as Zeek's JSON streaming logs do) to tell them apart."""
    return "".join(json_lines(log, with_path=True) for log in zeek_logs(analysis))


def zeek_files(analysis: Analysis, as_json: bool = False) -> dict[str, str]:
    """File name -> contents for ``-o DIR``: smtp.log, conn.log and files.log (JSON lines
    with ``as_json``, named .log as Zeek names them with LogAscii::use_json)."""
    if as_json:
        return {f"{log.path}.log": json_lines(log) for log in zeek_logs(analysis)}
    return {f"{log.path}.log": tsv(log) for log in zeek_logs(analysis)}
