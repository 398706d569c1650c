"""Every hostile class of wire text against every output format (issue 19).

One capture carries each class in every place wire text comes from (the EHLO name, MAIL
FROM, RCPT TO, the replies, the Subject). Each output is then read as its consumer reads
it: a terminal (text), a JSON parser, a CommonMark renderer with raw HTML on (Markdown), an
HTML parser (the browser check is tests/report/test_browser.py), a spreadsheet (CSV). The
text must be there to read, and inert.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pcapsmtp.cli import main
from pcapsmtp.report import safe
from tests.conversation import Conversation
from tests.report.helpers import LAB, Elements

pytestmark = pytest.mark.xdist_group("report-every-format")

HOSTILE = {
    "script": "<SCRIPT>alert(1)</SCRIPT>",
    "image": "![x](http://evil.example/p.png)",
    "link": "[c](javascript:alert(2))",
    "autolink": "<http://evil.example/a>",
    "entity": "&lt;script&gt;",
    "fence": "```",
    "pipe": "a|b",
    "formula": '=HYPERLINK("http://evil.example")',
    "plus": "+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(1+1)",
    "escape": "\x1b[31mred\x1b[0m",
    "c1": "\x9b2J",
    "bidi": "\u202egpj.exe\u2066x\u2069",
    "separator": "a\u2028b\u2029c",
}
NOT_UTF8 = b"\xff\xfe\xc3("
UNSAFE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Only \\t, \\n and \\r (in CSV's and HTML's line ends) may reach any output raw."""
SURROGATE = re.compile("[\ud800-\udfff]")
MARKDOWN_ELEMENTS = {"h1", "h2", "h3", "h4", "p", "strong", "em", "code", "pre", "ul", "li",
                     "table", "thead", "tbody", "tr", "th", "td", "blockquote", "br"}  # fmt: skip


def _capture(folder: Path) -> Path:
    """Each hostile value as a whole EHLO name, sender, recipient and reply text (CSV cells
    start with them), the non-UTF-8 bytes in the final reply."""
    c = Conversation()
    c.handshake()
    turns = [("S", b"220 mx.example ESMTP " + HOSTILE["script"].encode() + b"\r\n")]
    turns += [("C", ("EHLO " + HOSTILE["formula"] + "\r\n").encode())]
    turns += [("S", b"250 mx.example\r\n")]
    turns += [("C", ("MAIL FROM:" + HOSTILE["at"] + "\r\n").encode()), ("S", b"250 Ok\r\n")]
    for value in HOSTILE.values():
        turns += [("C", f"RCPT TO:{value}\r\n".encode()), ("S", f"250 {value}\r\n".encode())]
    subject = " ".join(HOSTILE.values()).encode()
    turns += [("C", b"DATA\r\n"), ("S", b"354 go\r\n")]
    turns += [("C", b"Subject: " + subject + b"\r\nFrom: a@b\r\n\r\nbody\r\n.\r\n")]
    turns += [("S", b"554 5.7.1 " + NOT_UTF8 + " ".join(HOSTILE.values()).encode() + b"\r\n")]
    turns += [("C", b"QUIT\r\n"), ("S", b"221 " + HOSTILE["minus"].encode() + b"\r\n")]
    c.say(*turns)
    c.close()
    return c.write(folder / "hostile-formats.pcap")


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("formats")
    path = str(_capture(folder))
    good = str(LAB / "clean-delivery.pcap")
    found = {f"analyze-{fmt}": _run("analyze", "--format", fmt, path)
             for fmt in ("text", "json", "md", "csv", "zeek")}  # fmt: skip
    found["show-text"] = _run("show", "--session", "1", path)
    found["show-json"] = _run("show", "--format", "json", "--session", "1", path)
    for fmt in ("text", "md", "json"):
        found[f"diff-{fmt}"] = _run("diff", "--format", fmt, good, path)
    for fmt in ("md", "html", "json"):
        for baseline in ((), ("--baseline", good)):
            out = folder / f"r{len(baseline)}.{fmt}"
            _run("report", path, "-o", str(out), *baseline)
            found[f"report{'-baseline' if baseline else ''}-{fmt}"] = out.read_text("utf-8")
    return found


def _kinds(name: str) -> str:
    return name.rsplit("-", 1)[1]


CASES = [
    "analyze-text", "analyze-json", "analyze-md", "analyze-csv", "analyze-zeek", "show-text",
    "show-json",
    "diff-text", "diff-md", "diff-json", "report-md", "report-html", "report-json",
    "report-baseline-md", "report-baseline-html", "report-baseline-json",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_no_control_character_or_surrogate_leaves(outputs, case):
    text = outputs[case]
    assert UNSAFE.findall(text) == []
    assert SURROGATE.findall(text) == []
    text.encode("utf-8")


@pytest.mark.parametrize("case", [c for c in CASES if _kinds(c) == "json"])
def test_json_parses_and_keeps_the_text(outputs, case):
    document = json.loads(outputs[case])
    flat = json.dumps(document, ensure_ascii=False)
    assert "\\\\xff\\\\xfe" in flat, "bytes that are not UTF-8, as \\xNN"
    assert "<SCRIPT>alert(1)</SCRIPT>" in flat
    assert "\u202e" in json.loads(json.dumps(document)) or "\\u202e" in outputs[case]


@pytest.mark.parametrize("case", [c for c in CASES if _kinds(c) == "md"])
def test_markdown_renders_no_markup_from_the_wire(outputs, case):
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(outputs[case])
    page = Elements(rendered)
    assert page.active() == []
    assert page.names <= MARKDOWN_ELEMENTS, page.names - MARKDOWN_ELEMENTS
    shown = "".join(page.text)
    assert any(HOSTILE[k] in shown for k in ("script", "formula", "at", "minus")), "as text"


@pytest.mark.parametrize("case", [c for c in CASES if _kinds(c) == "md"])
def test_markdown_code_blocks_are_not_closed_from_the_wire(outputs, case):
    """Every fence the document opens is closed by the fence the document wrote."""
    text = outputs[case]
    opened = re.findall(r"^(`{3,})text$", text, re.MULTILINE)
    rendered = MarkdownIt("commonmark").render(text)
    assert rendered.count("<pre>") == len(opened)


def test_markdown_tables_keep_their_columns(outputs):
    """A '|' from the wire does not add a column to any table row."""
    for case in [c for c in CASES if _kinds(c) == "md"]:
        rendered = MarkdownIt("commonmark").enable("table").render(outputs[case])
        for table in re.findall(r"<table>.*?</table>", rendered, re.DOTALL):
            head = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.DOTALL):
                assert len(re.findall(r"<td[ >]", row)) == head, (case, row)


@pytest.mark.parametrize("case", [c for c in CASES if _kinds(c) == "html"])
def test_html_holds_no_active_element(outputs, case):
    page = Elements(outputs[case])
    assert page.active() == []
    assert "<SCRIPT>alert(1)</SCRIPT>" in "".join(page.text)


def test_csv_opened_as_a_spreadsheet_evaluates_nothing(outputs):
    rows = list(csv.reader(io.StringIO(outputs["analyze-csv"])))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert '\'=HYPERLINK("http://evil.example")' in cells, "neutralised, still readable"
    assert "'@SUM(1+1)" in cells


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize(
    "escape", [safe.terminal, safe.markdown, safe.markdown_code, safe.html, safe.csv_cell]
)
def test_each_escape_alone(name, escape):
    """The functions themselves, one hostile class at a time."""
    out = escape(HOSTILE[name] + NOT_UTF8.decode("utf-8", "surrogateescape"))
    assert UNSAFE.findall(out) == [] and SURROGATE.findall(out) == []
    if escape is safe.csv_cell:
        assert out[:1] not in ("=", "+", "-", "@", "\t", "\r")
    if escape is safe.html:
        assert "<" not in out and ">" not in out and '"' not in out
    if escape is safe.markdown:
        rendered = MarkdownIt("commonmark", {"html": True}).render(out)
        assert Elements(rendered).names <= {"p"}
    if escape is safe.markdown_code:
        rendered = MarkdownIt("commonmark", {"html": True}).render(out)
        assert Elements(rendered).names <= {"p", "code"}


def test_json_text_escapes_what_json_dumps_leaves_raw():
    raw = json.dumps({"t": HOSTILE["c1"] + HOSTILE["bidi"] + HOSTILE["separator"]},
                     ensure_ascii=False)  # fmt: skip
    out = safe.json_text(raw)
    assert UNSAFE.findall(out) == []
    assert json.loads(out) == json.loads(raw)


@given(st.text() | st.text(alphabet=st.characters(max_codepoint=0xA0)))
def test_json_text_returns_a_text_without_unsafe_characters_unchanged(text):
    escaped = safe._UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    assert safe.json_text(text) == escaped
