"""``pcapsmtp export --annotate``: tshark (the oracle) reads back, on every capture, a packet
comment ``pcapsmtp <code>: ...`` on exactly the evidence frames of the analysis's findings,
one per finding; the frames are the input's (number, time, lengths, link type, bytes, the
credentials overwritten) and the same as a plain export's; no comment carries a control
byte or a credential, and nothing secret of the input's section header is copied."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapsmtp.capture import open_capture
from pcapsmtp.cli import main
from pcapsmtp.export import export_capture, export_session
from pcapsmtp.export.comments import finding_comment
from tests.captures import LAB, PUBLIC, all_captures, analysed, capture_id
from tests.report.helpers import secret_forms
from tests.report.hostile import hostile_capture
from tests.tshark import TSHARK, ask, fields, needs_tshark, occurrences

FRAME = ["frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols"]
CODE = re.compile(r"pcapsmtp ([a-z0-9-]+): ")
COMMENT_FIELDS = ("-e", "frame.number", "-e", "frame.comment")
CREDENTIAL_CAPTURES = ["auth-plain-clear", "starttls-auth-587"]
SELECTED = 'frame.comment contains "pcapsmtp"'
ask([*FRAME, "frame.comment"])
ask(["frame.number"], SELECTED)


def comments(path: Path) -> dict[int, list[str]]:
    """frame.number -> its packet comments, as tshark reads them (every one of them): from
    the file's shared pass (tests/tshark.py), else from ``-T json``."""
    shared = occurrences(path, ["frame.comment"])
    if shared is not None:
        return {number: found for number, (found,) in shared if found}
    out = subprocess.run(
        [TSHARK, "-n", "-r", str(path), "-Y", "frame.comment", "-T", "json", *COMMENT_FIELDS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    found = {}
    for packet in json.loads(out or "[]"):
        layers = packet["_source"]["layers"]
        found[int(layers["frame.number"][0])] = layers["frame.comment"]
    return found


def ours(path: Path) -> dict[int, list[str]]:
    """The codes of the comments ``frame.comment contains "pcapsmtp"`` selects."""
    rows = fields(path, ["frame.number"], SELECTED)
    selected = {int(row[0]) for row in rows}
    found = {n: [c for c in cs if c.startswith("pcapsmtp ")] for n, cs in comments(path).items()}
    assert {n for n, cs in found.items() if cs} == selected
    return {n: [CODE.match(c).group(1) for c in found[n]] for n in sorted(selected)}


def expected(findings, numbers: list[int] | None = None) -> dict[int, list[str]]:
    """Evidence frame (renumbered as in the export when ``numbers`` lists the capture's
    number of each exported frame) -> the codes of its findings, in the findings' order."""
    renumber = None if numbers is None else {n: i + 1 for i, n in enumerate(numbers)}
    codes: dict[int, list[str]] = {}
    for finding in findings:
        for frame in dict.fromkeys(finding.frames):
            if renumber is not None and frame not in renumber:
                continue
            at = frame if renumber is None else renumber[frame]
            codes.setdefault(at, []).append(finding.code)
    return dict(sorted(codes.items()))


def frames(path: Path) -> list[tuple]:
    with open_capture(str(path)) as capture:
        return [(f.number, f.time_ns, f.linktype, f.data, f.wire_len) for f in capture.frames()]


@needs_tshark
@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("capture", all_captures(), ids=capture_id)
def test_the_annotated_copy_comments_exactly_the_evidence_frames(tmp_path, capture):
    analysis = analysed(capture)
    out, plain = tmp_path / "annotated.pcapng", tmp_path / "plain.pcapng"
    result = export_capture(str(capture), analysis.sessions, str(out), annotate=analysis.findings)
    export_capture(str(capture), analysis.sessions, str(plain))
    assert ours(out) == expected(analysis.findings)
    assert result.comments == sum(len(codes) for codes in expected(analysis.findings).values())
    assert comments(plain) == {}, "no comment without --annotate (nor one from the input)"
    assert fields(out, FRAME) == fields(capture, FRAME), "same frames, numbers, times, lengths"
    annotated, original = frames(out), frames(capture)
    assert annotated == frames(plain)
    assert len(annotated) == len(original) == analysis.captures[0].frames
    changed = [a[0] for a, o in zip(annotated, original, strict=True) if a != o]
    assert changed == result.redacted_frames, "only credentials were overwritten"


@needs_tshark
@pytest.mark.oracle
@pytest.mark.parametrize("name", ["mtu-blackhole", "server-timeout", "retry-storm"])
def test_expert_info_lists_the_comments(tmp_path, name):
    capture = LAB / f"{name}.pcap"
    out = tmp_path / "annotated.pcapng"
    result = CliRunner().invoke(main, ["export", str(capture), "--annotate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    expert = subprocess.run(
        [TSHARK, "-n", "-q", "-r", str(out), "-z", "expert,comment"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    findings = analysed(capture).findings
    assert findings, "a capture with findings"
    for finding in findings:
        assert finding_comment(finding) in expert
    count = sum(len(set(f.frames)) for f in findings)
    assert re.search(rf"Comments \({count}\)", expert), expert
    assert f"; {count} comment(s) on " in result.stderr


def _session_findings(analysis, session):
    return [f for f in analysis.findings if f.session in (None, session.id)]


@needs_tshark
@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("capture", sorted(LAB.glob("*.pcap")), ids=capture_id)
def test_a_session_s_annotated_export_maps_its_frames(tmp_path, capture):
    """The first session with a finding (else the first): its frames renumbered from 1."""
    analysis = analysed(capture)
    if not analysis.sessions:
        pytest.skip("no SMTP session")
    with_findings = {f.session for f in analysis.findings}
    session = next((s for s in analysis.sessions if s.id in with_findings), analysis.sessions[0])
    out = tmp_path / "session.pcapng"
    findings = _session_findings(analysis, session)
    result = export_session(str(capture), session, str(out), annotate=findings)
    numbers = result.frame_numbers
    picked = set(numbers)  # the rows -Y "frame.number in {...}" prints, from the shared pass
    assert [row[1:] for row in fields(out, FRAME)] == [
        row[1:] for row in fields(capture, FRAME) if int(row[0]) in picked
    ], "frame i of the export is frame numbers[i - 1] of the capture"
    assert ours(out) == expected(findings, numbers)


@needs_tshark
def test_cli_session_and_standard_output(tmp_path):
    """--session with --annotate through the command line; -o - writes the same pcapng."""
    capture = LAB / "mtu-blackhole.pcap"
    out = tmp_path / "s.pcapng"
    quiet = CliRunner().invoke(
        main, ["export", str(capture), "--session", "1", "--annotate", "-o", str(out)]
    )
    assert quiet.exit_code == 0, quiet.output
    assert "; no comment: no finding has an evidence frame among them" in quiet.stderr
    assert comments(out) == {}
    args = ["export", str(capture), "--session", "2", "--annotate"]
    result = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "comment(s) on" in result.stderr
    analysis = analysed(capture)
    session = analysis.sessions[1]
    numbers = export_session(str(capture), session, str(tmp_path / "p.pcap")).frame_numbers
    assert ours(out) == expected(_session_findings(analysis, session), numbers)
    piped = CliRunner().invoke(main, [*args, "-o", "-"])
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes == out.read_bytes()
    assert piped.stdout_bytes[:4] == b"\x0a\x0d\x0d\x0a", "pcapng on standard output"
    assert piped.stderr.startswith("wrote standard output (pcapng): ")


def test_a_pcap_name_is_a_one_line_usage_error(tmp_path):
    out = tmp_path / "x.pcap"
    result = CliRunner().invoke(
        main, ["export", str(LAB / "mtu-blackhole.pcap"), "--annotate", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "--annotate writes pcapng (pcap has no packet comments)" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_without_annotate_a_session_is_still_required(tmp_path):
    out = tmp_path / "x.pcapng"
    result = CliRunner().invoke(main, ["export", str(LAB / "mtu-blackhole.pcap"), "-o", str(out)])
    assert result.exit_code == 2
    assert not out.exists()


# -- what never gets in ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CREDENTIAL_CAPTURES)
def test_no_credential_in_the_annotated_copy(tmp_path, name):
    truth = json.loads((LAB / f"{name}.truth.json").read_text())
    forms = [form.encode() for form in secret_forms(truth["credentials"])]
    out = tmp_path / "annotated.pcapng"
    result = CliRunner().invoke(
        main, ["export", str(LAB / f"{name}.pcap"), "--annotate", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert [form for form in forms if form in data] == []
    if name == "auth-plain-clear":
        original = (LAB / f"{name}.pcap").read_bytes()
        assert [form for form in forms if form in original], "the capture has them in clear"
        assert "AUTH line(s) overwritten in frame(s)" in result.stderr


UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


@needs_tshark
@pytest.mark.oracle
def test_hostile_wire_text_lands_inert(tmp_path):
    capture = hostile_capture(tmp_path)
    out = tmp_path / "annotated.pcapng"
    result = CliRunner().invoke(main, ["export", str(capture), "--annotate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    found = [c for cs in comments(out).values() for c in cs]
    assert found and all(c.startswith("pcapsmtp hard-bounce: ") for c in found)
    assert fields(out, FRAME) == fields(capture, FRAME), "a nanosecond pcap's times kept"
    raw = out.read_bytes()
    for comment in found:
        assert not UNSAFE.search(comment), comment
        assert "\\x1b[5mrejected" in comment, "the escape shown, not executed"
        assert comment.encode("utf-8") in raw, "stored as UTF-8, as tshark shows it"
    section = subprocess.run(
        ["capinfos", "-k", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert "pcapsmtp " in section and "\x1b" not in section and "\u202e" not in section


def test_a_comment_is_cut_at_a_character_boundary():
    class Long:
        code = "hard-bounce"
        summary = "\u00e9" * 5000

    comment = finding_comment(Long)
    data = comment.encode("utf-8")
    assert len(data) <= 4000 and comment.endswith("...")
    assert data.decode("utf-8") == comment


@needs_tshark
@pytest.mark.oracle
def test_the_input_s_section_comment_is_not_copied(tmp_path):
    """A public capture whose section comment is a TLS key log (CLIENT_RANDOM lines)."""
    capture = PUBLIC / "wireshark-notes-smtp-ssl.pcapng"
    if not capture.exists():
        pytest.skip("public captures absent")
    assert b"CLIENT_RANDOM" in capture.read_bytes()
    out = tmp_path / "annotated.pcapng"
    analysis = analysed(capture)
    export_capture(str(capture), analysis.sessions, str(out), annotate=analysis.findings)
    assert b"CLIENT_RANDOM" not in out.read_bytes()
    assert fields(out, FRAME) == fields(capture, FRAME)


# -- what a pcapng input had is kept --------------------------------------------------------------


needs_editcap = pytest.mark.skipif(
    shutil.which("editcap") is None or shutil.which("mergecap") is None,
    reason="editcap/mergecap (Wireshark's tools) are not installed",
)


@needs_tshark
@needs_editcap
@pytest.mark.oracle
def test_existing_comments_are_kept_and_ours_added(tmp_path):
    capture = LAB / "mtu-blackhole.pcap"
    evidence = expected(analysed(capture).findings)
    first = next(iter(evidence))
    commented = tmp_path / "commented.pcapng"
    subprocess.run(
        [
            "editcap",
            "-F",
            "pcapng",
            "-a",
            f"{first}:seen by the admin",
            "-a",
            "1:first frame",
            *map(str, (capture, commented)),
        ],
        check=True,
        capture_output=True,
    )
    analysis = analysed(commented)
    out = tmp_path / "annotated.pcapng"
    export_capture(str(commented), analysis.sessions, str(out), annotate=analysis.findings)
    found = comments(out)
    assert found[1] == ["first frame"]
    assert found[first][0] == "seen by the admin", "the input's comment first"
    assert [CODE.match(c).group(1) for c in found[first][1:]] == evidence[first]
    assert ours(out) == evidence
    again = tmp_path / "again.pcapng"
    export_capture(str(out), analysis.sessions, str(again), annotate=analysis.findings)
    assert comments(again) == found, "an annotated copy annotated again: no comment twice"
    squeezed = tmp_path / "commented.pcapng.gz"
    squeezed.write_bytes(gzip.compress(commented.read_bytes()))
    out_gz = tmp_path / "from-gzip.pcapng"
    export_capture(str(squeezed), analysis.sessions, str(out_gz), annotate=analysis.findings)
    assert comments(out_gz) == found, "a compressed pcapng input is read the same"


def _link_type_null() -> list[Path]:
    """A public capture on BSD loopback (link type 0), when the public captures are there."""
    for path in sorted(PUBLIC.glob("*.pcap")) if PUBLIC.is_dir() else []:
        if path.read_bytes()[20:24] == b"\x00\x00\x00\x00":
            return [path]
    return []


@needs_tshark
@needs_editcap
@pytest.mark.oracle
def test_interfaces_link_types_and_resolutions_are_kept(tmp_path):
    """Captures merged into one pcapng: an interface counting nanoseconds, one counting
    microseconds, and a loopback one; the frames keep their interface, link type and time."""
    nanoseconds = tmp_path / "ns.pcapng"
    subprocess.run(
        ["editcap", "-F", "pcapng", str(hostile_capture(tmp_path)), str(nanoseconds)],
        check=True,
        capture_output=True,
    )
    merged = tmp_path / "merged.pcapng"
    inputs = [nanoseconds, LAB / "mtu-blackhole.pcap", *_link_type_null()]
    subprocess.run(
        ["mergecap", "-F", "pcapng", "-w", str(merged), *map(str, inputs)],
        check=True,
        capture_output=True,
    )
    analysis = analysed(merged)
    out = tmp_path / "annotated.pcapng"
    export_capture(str(merged), analysis.sessions, str(out), annotate=analysis.findings)
    keys = [*FRAME, "frame.interface_id", "frame.encap_type"]
    assert fields(out, keys) == fields(merged, keys)
    assert len({row[-2] for row in fields(out, keys)}) == len(inputs)
    assert ours(out) == expected(analysis.findings)
    info = subprocess.run(["capinfos", str(out)], capture_output=True, text=True).stdout
    assert "Time precision = nanoseconds (9)" in info
    assert "Time precision = microseconds (6)" in info


def _big_endian_pcapng(path: Path) -> tuple[Path, int]:
    """mtu-blackhole's frames in a big-endian pcapng as odd writers make them: two Ethernet
    interfaces (one counting 2^-20 s from an offset, one nanoseconds), an obsolete Packet
    Block, a Simple Packet Block, a systemd journal entry, a Decryption Secrets Block, and a
    frame with a comment and direction flags of its own. Returns it and the SPB's number."""
    from tests.capture import writers as w

    order = ">"
    capture = w.read_pcap((LAB / "mtu-blackhole.pcap").read_bytes())
    offset = 1_700_000_000
    parts = [w.shb(order), w.idb(1, order, 262144, 0x80 | 20, offset), w.idb(1, order, 262144, 9)]
    parts.append(w.dsb(0x544C534B, b"CLIENT_RANDOM 00 11\n", order))
    spb_number = 5
    number = 0
    for i, record in enumerate(capture.records):
        number += 1
        if number == 12:
            parts.append(w.systemd_journal(b"__REALTIME_TIMESTAMP=1763880000000000\nMESSAGE=hi\n"))
            number += 1
        data, wire = record.data, record.wire_len
        if number == spb_number:
            parts.append(w.spb(data, wire, order))
        elif number == 3:
            parts.append(w.obsolete_pb(1, record.time_ns, data, wire, order))
        elif number == 7:
            units = record.time_ns
            head = struct.pack(order + "IIIII", 1, units >> 32, units & 0xFFFFFFFF, len(data), wire)
            pad = b"\x00" * (-len(data) % 4)
            options = w._options([(1, b"admin note"), (2, struct.pack(order + "I", 2))], order)
            parts.append(w._block(6, head + data + pad + options, order))
        elif i % 2:
            parts.append(w.epb(1, record.time_ns, data, wire, order))
        else:
            units = ((record.time_ns - offset * 10**9) << 20) // 10**9
            parts.append(w.epb(0, units, data, wire, order))
    path.write_bytes(b"".join(parts))
    return path, spb_number


@needs_tshark
@pytest.mark.oracle
def test_a_big_endian_pcapng_with_every_kind_of_block(tmp_path):
    capture, spb = _big_endian_pcapng(tmp_path / "odd.pcapng")
    analysis = analysed(capture)
    assert analysis.findings, "mtu-blackhole's findings, frame numbers shifted by the journal"
    out = tmp_path / "annotated.pcapng"
    export_capture(str(capture), analysis.sessions, str(out), annotate=analysis.findings)
    keys = [*FRAME, "frame.interface_id", "frame.encap_type", "frame.packet_flags"]
    rows, original = fields(out, keys), fields(capture, keys)
    assert len(rows) == len(original) == analysis.captures[0].frames
    for row, before in zip(rows, original, strict=True):
        if row[0] == str(spb):  # no timestamp in a Simple Packet Block: the frame before's
            row, before = row[2:], before[2:]
        assert row == before
    assert comments(out)[7][0] == "admin note"
    assert ours(out) == expected(analysis.findings)
    assert b"CLIENT_RANDOM" not in out.read_bytes()
