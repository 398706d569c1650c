"""``analyze --follow``: a real lab capture fed through a pipe record by record, as
``tcpdump -U -w -`` writes it, to a child process read while it is being written.

The child must show a session while the writer still holds the rest of the capture back
(so neither the reader nor the output waits for the end or for a full buffer), its summary
must be ``analyze --format json`` of the same bytes, Ctrl-C must end it with that summary,
and a capture cut inside a record must end with the usual warning.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.analysis import Options
from pcapsmtp.analysis import follow as follow_module
from pcapsmtp.analysis.follow import SessionShown, follow
from pcapsmtp.cli import main
from pcapsmtp.report.jsondoc import analysis_document
from pcapsmtp.report.lines import json_summary
from tests.captures import LAB, REPO_ROOT, all_captures, analysed, capture_id
from tests.report.helpers import UNSAFE_CHARACTERS, secret_forms, truth
from tests.report.test_schema import assert_valid

GREY = LAB / "greylisting.pcap"
"""Two sessions seven seconds apart: deferred (451, greylisted), then delivered."""
pytestmark = pytest.mark.skipif(not GREY.exists(), reason="no lab captures")
WAIT_S = 60
"""How long a line may take on a loaded machine before the test calls it missing."""


def records(path: Path) -> tuple[bytes, list[bytes]]:
    """A pcap's file header and its records, each as the bytes of header and data."""
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, at = [], 24
    while at < len(data):
        caplen = struct.unpack_from(order + "I", data, at + 8)[0]
        out.append(data[at : at + 16 + caplen])
        at += 16 + caplen
    return data[:24], out


class Child:
    """``pcapsmtp analyze - --follow`` with our pipe as its input; its lines read as they come."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pcapsmtp", "analyze", "-", "--follow", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.decode("utf-8"))
        self.lines.put(None)

    def write(self, chunk: bytes) -> None:
        self.process.stdin.write(chunk)
        self.process.stdin.flush()

    def feed(self, header: bytes, chunks: list[bytes], pause: float = 0.005) -> None:
        """Record by record, each in two writes with a pause between: a record that has
        only partly arrived must wait for its rest, never be taken for a cut file."""
        if header:
            self.write(header)
        for record in chunks:
            half = len(record) // 2
            self.write(record[:half])
            time.sleep(pause)
            self.write(record[half:])
            time.sleep(pause)

    def next_line(self) -> str | None:
        return self.lines.get(timeout=WAIT_S)

    def finish(self) -> tuple[list[str], int, str]:
        """Close its input; the lines still to come, its exit status, its stderr."""
        if not self.process.stdin.closed:
            self.process.stdin.close()
        rest = []
        while (line := self.next_line()) is not None:
            rest.append(line)
        code = self.process.wait(timeout=WAIT_S)
        return rest, code, self.process.stderr.read().decode()


def analyze_json(data: bytes) -> dict:
    """``analyze --format json -`` of these bytes: what the summary must equal (a document
    of its own for each caller)."""
    return json.loads(_analyze_output(data))


@functools.cache
def _analyze_output(data: bytes) -> bytes:
    """The output of one ``analyze --format json -`` per distinct input in this process
    (the same bytes give the same document: greylisting.pcap's is asked for three times)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", "-"],
        input=data, capture_output=True, env=env, check=True,
    )  # fmt: skip
    return done.stdout


def summary_document(line: str) -> tuple[dict, bool]:
    """The summary line's analysis, and whether Ctrl-C ended the input."""
    document = json.loads(line)
    assert document["type"] == "summary"
    return document["analysis"], document["interrupted"]


def last_frame_of_first_session() -> int:
    return min(analyze_json(GREY.read_bytes())["sessions"], key=lambda s: s["first_frame"])[
        "last_frame"
    ]


def test_a_session_is_shown_while_the_rest_is_held_back_and_the_summary_is_analyze():
    header, chunks = records(GREY)
    first_end = last_frame_of_first_session()
    child = Child("--format", "json")
    child.feed(header, chunks[:first_end])
    line = json.loads(child.next_line())  # the writer holds the second session back meanwhile
    assert line["type"] == "session"
    session = line["session"]
    assert (session["tcp_stream"], session["outcome"]) == (0, "deferred")
    assert [f["code"] for f in session["findings"]] == ["soft-bounce"]
    assert session["last_frame"] <= first_end
    child.feed(b"", chunks[first_end:])
    rest, code, stderr = child.finish()
    assert code == 0, stderr
    kinds = [json.loads(x)["type"] for x in rest]
    assert kinds[-1] == "summary" and "session" in kinds
    for x in [json.dumps(line), *rest]:
        assert_valid("live", json.loads(x))
    summary, interrupted = summary_document(rest[-1])
    assert not interrupted
    assert summary == analyze_json(GREY.read_bytes())


def test_ctrl_c_ends_the_input_and_open_sessions_as_at_the_end_of_a_capture(tmp_path):
    """SIGINT in the middle of the second session: it is shown as analyze shows a capture
    that stops there, and the summary is the analysis of what was read, plus a warning."""
    header, chunks = records(GREY)
    first_end = last_frame_of_first_session()
    cut = first_end + (len(chunks) - first_end) // 2
    child = Child("--format", "json")
    child.feed(header, chunks[:first_end])
    assert json.loads(child.next_line())["session"]["tcp_stream"] == 0  # its handler in place
    child.feed(b"", chunks[first_end:cut])
    child.process.send_signal(signal.SIGINT)
    rest, code, stderr = child.finish()
    assert code == 0, stderr
    events = [json.loads(x) for x in rest]
    second = [e["session"] for e in events if e["type"] == "session"]
    assert [(s["tcp_stream"], s["outcome"]) for s in second] == [(1, "incomplete")]
    warnings = [e["text"] for e in events if e["type"] == "warning"]
    assert any(w.startswith("reading stopped by Ctrl-C (SIGINT) after frame ") for w in warnings)
    summary, interrupted = summary_document(rest[-1])
    assert interrupted
    expected = analyze_json(header + b"".join(chunks[:cut]))
    assert expected["captures"][0]["frames"] == cut
    summary["captures"][0]["warnings"] = [
        w for w in summary["captures"][0]["warnings"] if "Ctrl-C" not in w
    ]
    assert summary == expected
    assert [f["code"] for f in summary["findings"] if f["session"] == 2] == ["incomplete-session"]


def test_a_capture_cut_inside_a_record_ends_with_the_usual_warning():
    data = GREY.read_bytes()
    cut = data[:-7]
    child = Child("--format", "json")
    child.feed(b"", [cut])
    rest, code, stderr = child.finish()
    assert code == 0, stderr
    events = [json.loads(x) for x in rest]
    warnings = [e["text"] for e in events if e["type"] == "warning"]
    usual = analyze_json(cut)["captures"][0]["warnings"]
    assert any("cut short inside record 40" in w for w in usual)
    assert warnings == usual
    summary, _ = summary_document(rest[-1])
    assert summary == analyze_json(cut)


def test_text_lines_and_the_text_summary_is_analyzes_report():
    """A file path is read to its end; each session's line says when, which stream, who,
    how it ended and the codes; the summary after the marker is analyze's text report."""
    result = CliRunner().invoke(main, ["analyze", "--follow", str(GREY)])
    assert result.exit_code == 0, result.output
    head, summary = result.stdout.split("-- summary (end of input) --\n")
    first = head.splitlines()[0]
    assert (
        "stream 0  #1  10.77.1.2:" in first and " -> 10.77.2.2:25  deferred  soft-bounce" in first
    )
    assert head.splitlines()[1].startswith("    WARNING soft-bounce (#1, stream 0): ")
    assert summary == CliRunner().invoke(main, ["analyze", str(GREY)]).stdout


def test_no_credentials_and_no_control_characters_in_the_lines():
    name = "auth-plain-clear"
    result = CliRunner().invoke(
        main, ["analyze", "--follow", "--format", "json", str(LAB / f"{name}.pcap")]
    )
    assert result.exit_code == 0, result.output
    assert [
        form for form in secret_forms(truth(name)["credentials"]) if form in result.stdout
    ] == []
    text = CliRunner().invoke(main, ["analyze", "--follow", str(LAB / f"{name}.pcap")]).stdout
    assert [form for form in secret_forms(truth(name)["credentials"]) if form in text] == []
    for line in result.stdout.splitlines():
        assert_valid("live", json.loads(line))
        assert not UNSAFE_CHARACTERS.search(line)


@pytest.mark.parametrize(
    "args",
    [
        [str(GREY), str(LAB / "clean-delivery.pcap")],
        [str(GREY), "--format", "md"],
        [str(GREY), "--jobs", "2"],
    ],
    ids=["two captures", "markdown", "jobs"],
)
def test_what_follow_does_not_do_is_a_usage_error(args):
    result = CliRunner().invoke(main, ["analyze", "--follow", *args])
    assert result.exit_code == 2, result.output


def test_a_finding_of_several_sessions_comes_when_the_input_goes_quiet():
    """retry-storm needs many sessions: with half the storm written and the writer holding
    the rest back, the quiet input lets the child check every rule over the sessions so far."""
    storm = LAB / "retry-storm.pcap"
    header, chunks = records(storm)
    child = Child("--format", "json")
    child.feed(header, chunks[: len(chunks) // 2], pause=0)
    seen = []
    while not seen or seen[-1]["type"] != "finding":
        seen.append(json.loads(child.next_line()))
    assert seen[-1]["finding"]["code"] == "retry-storm"
    child.feed(b"", chunks[len(chunks) // 2 :], pause=0)
    rest, code, stderr = child.finish()
    assert code == 0, stderr
    lines = seen + [json.loads(x) for x in rest]
    for line in lines:
        assert_valid("live", line)
    summary, _ = summary_document(rest[-1])
    streams = {s["tcp_stream"] for s in summary["sessions"]}
    assert {x["session"]["tcp_stream"] for x in lines if x["type"] == "session"} == streams
    assert "retry-storm" in [f["code"] for f in summary["findings"]]


def test_a_connection_attempt_nobody_answers_is_shown_once_it_falls_silent(monkeypatch):
    """connect-timeout.pcap's eight unanswered SYNs, written to a pipe that then stays open:
    the attempt is shown when it has been silent for SILENT_S (0.5 s here), not when the
    flow table gives it up at the end, and the end does not show it again."""
    monkeypatch.setattr(follow_module, "SILENT_S", 0.5)
    header, chunks = records(LAB / "connect-timeout.pcap")
    read_end, write_end = os.pipe()
    events: queue.Queue = queue.Queue()
    done: dict = {}
    source = f"/dev/fd/{read_end}"
    reader = threading.Thread(
        target=lambda: done.update(result=follow(source, Options(), events.put)), daemon=True
    )
    reader.start()
    os.write(write_end, header + b"".join(chunks))
    shown = events.get(timeout=WAIT_S)
    assert isinstance(shown, SessionShown) and not shown.revised
    assert (shown.session.outcome, [f.code for f in shown.findings]) == (
        "unreachable",
        ["connect-failed"],
    )
    os.close(write_end)
    reader.join(WAIT_S)
    os.close(read_end)
    analysis, interrupted = done["result"]
    assert not interrupted
    assert [s.outcome for s in analysis.sessions] == ["unreachable"]
    assert [f.code for f in analysis.findings] == ["connect-failed"]
    assert events.empty()


@pytest.mark.parametrize("path", all_captures(), ids=capture_id)
def test_every_session_is_shown_and_the_summary_is_analyze_on_every_capture(path):
    """Every lab and public capture read with --follow (a file, as fast as it is read):
    each session of ``analyze`` was shown as it ended, and the summary is its document."""
    events: list = []
    analysis, interrupted = follow(str(path), Options(), events.append)
    summary, _ = summary_document(json_summary(analysis, interrupted))
    expected = json.loads(json.dumps(analysis_document(analysed(path)), ensure_ascii=False))
    assert summary == expected
    shown = {(e.session.flow.stream, e.session.flow.first_frame) for e in events
             if isinstance(e, SessionShown)}  # fmt: skip
    assert {(s["tcp_stream"], s["first_frame"]) for s in expected["sessions"]} <= shown
