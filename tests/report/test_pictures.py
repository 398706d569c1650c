"""The HTML report's figures on real lab captures, read as SVG: what the ladder and the
time-sequence graph show is checked against tshark (frames, times, sequence numbers), and
the words written on them against what happened in the capture."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.report.helpers import LAB, Elements, report
from tests.tshark import fields, needs_tshark

SVG = "{http://www.w3.org/2000/svg}"


def figures(page: str) -> dict[str, ET.Element]:
    """Each inline SVG of the page by its aria-label."""
    out = {}
    for markup in re.findall(r"<svg .*?</svg>", page, re.S):
        root = ET.fromstring(markup)
        out[root.get("aria-label")] = root
    return out


def ladder(page: str, session: int) -> list[ET.Element]:
    root = figures(page)[f"Ladder diagram of session {session}"]
    return [g for g in root.iter(f"{SVG}g") if "row" in (g.get("class") or "").split()]


def time_sequence(page: str) -> ET.Element:
    (root,) = [r for label, r in figures(page).items() if label.startswith("Time-sequence")]
    return root


def words(element: ET.Element) -> str:
    return " ".join(t.text or "" for t in element.iter(f"{SVG}text"))


def classes(element: ET.Element) -> set[str]:
    return set((element.get("class") or "").split())


def times_ms(capture: Path, stream: int) -> dict[int, float]:
    """frame -> ms since the stream's first frame, as tshark counts."""
    rows = fields(capture, ["frame.number", "frame.time_epoch"], f"tcp.stream eq {stream}")
    first = float(rows[0][1])
    return {int(n): (float(t) - first) * 1000 for n, t in rows}


@pytest.fixture(scope="module")
def blackhole(tmp_path_factory) -> str:
    return report(tmp_path_factory.mktemp("blackhole"), LAB / "mtu-blackhole.pcap", "html")


# -- ladder -------------------------------------------------------------------------------------


@needs_tshark
def test_the_rst_of_rst_in_data_is_at_its_frame_and_time(tmp_path):
    capture = LAB / "rst-in-data.pcap"
    rows = ladder(report(tmp_path, capture, "html"), 1)
    (rst_frame,) = [int(r[0]) for r in fields(capture, ["frame.number"], "tcp.flags.reset == 1")]
    (rst,) = [g for g in rows if "row-rst" in classes(g)]
    assert int(rst.get("data-frame")) == rst_frame
    assert float(rst.get("data-ms")) == pytest.approx(times_ms(capture, 0)[rst_frame], abs=0.002)
    assert "TCP RST" in words(rst)
    assert rows[-1] is rst, "nothing after the reset"
    message = next(g for g in rows if "row-message" in classes(g))
    assert rows.index(message) < rows.index(rst), "the message went out before the reset"


@needs_tshark
def test_the_syn_ack_is_labelled_as_such(blackhole):
    rows = ladder(blackhole, 2)
    (synack,) = fields(LAB / "mtu-blackhole.pcap", ["frame.number"],
                       "tcp.stream eq 1 && tcp.flags.syn == 1 && tcp.flags.ack == 1")  # fmt: skip
    row = next(g for g in rows if g.get("data-frame") == synack[0])
    assert "TCP SYN/ACK" in words(row)
    assert "TCP SYN/ACK" not in words(rows[0]), "the client's SYN stays a SYN"


@needs_tshark
def test_retransmissions_are_drawn_one_by_one_with_their_count(blackhole):
    capture = LAB / "mtu-blackhole.pcap"
    wanted = "tcp.stream eq 1 && tcp.analysis.retransmission && ip.src == 10.77.1.2"
    retransmitted = [int(r[0]) for r in fields(capture, ["frame.number"], wanted)]
    run = next(g for g in ladder(blackhole, 2) if g.get("data-count") == str(len(retransmitted)))
    assert (int(run.get("data-frame")), int(run.get("data-last-frame"))) == (
        retransmitted[0],
        retransmitted[-1],
    )
    arrows = [line for line in run.iter(f"{SVG}line") if "arrow" in classes(line)]
    assert len(arrows) == len(retransmitted) == 6
    span = (times_ms(capture, 1)[retransmitted[-1]] - times_ms(capture, 1)[retransmitted[0]]) / 1000
    assert f"×6 (frames {retransmitted[0]}–{retransmitted[-1]}, over {span:.1f} s)" in words(run)


@needs_tshark
def test_the_long_silence_is_a_break_and_the_timeout_reply_comes_after_it(blackhole):
    capture = LAB / "mtu-blackhole.pcap"
    at = times_ms(capture, 1)
    rows = ladder(blackhole, 2)
    (silence,) = [g for g in rows if "row-silence" in classes(g)]
    (reply,) = fields(capture, ["frame.number"], "tcp.stream eq 1 && smtp.response.code == 421")
    before = max(n for n in at if n < int(reply[0]))
    assert float(silence.get("data-ms")) == pytest.approx(at[int(reply[0])] - at[before], abs=0.002)
    assert f"{float(silence.get('data-ms')) / 1000:.3f} s without a packet" in words(silence)
    after = rows[rows.index(silence) + 1]
    assert after.get("data-frame") == reply[0] and "421 4.4.2" in words(after)


@needs_tshark
def test_the_message_that_never_completed_is_drawn_unfinished_where_it_began(blackhole):
    capture = LAB / "mtu-blackhole.pcap"
    rows = ladder(blackhole, 2)
    (unfinished,) = [g for g in rows if g.get("data-unfinished") == "yes"]
    assert "never completed" in words(unfinished)
    assert not [h for h in unfinished.iter(f"{SVG}path") if "head" in classes(h)], "no arrowhead"
    (ready,) = fields(capture, ["frame.number"], "tcp.stream eq 1 && smtp.response.code == 354")
    data = f"tcp.stream eq 1 && ip.src == 10.77.1.2 && tcp.len > 0 && frame.number > {ready[0]}"
    first = fields(capture, ["frame.number"], data)
    assert unfinished.get("data-frame") == first[0][0]
    assert rows.index(unfinished) == [g.get("data-frame") for g in rows].index(ready[0]) + 1


def test_a_clean_delivery_has_no_break_and_nothing_unfinished(tmp_path):
    rows = ladder(report(tmp_path, LAB / "clean-delivery.pcap", "html"), 1)
    assert not [g for g in rows if "row-silence" in classes(g) or g.get("data-unfinished")]
    assert [g for g in rows if "row-rst" in classes(g)] == []


@needs_tshark
def test_a_lost_segment_stops_short(tmp_path):
    capture = LAB / "mtu-blackhole.server.pcap"
    rows = ladder(report(tmp_path, capture, "html"), 2)
    (lost,) = fields(capture, ["frame.number"], "tcp.analysis.lost_segment")
    row = next(g for g in rows if g.get("data-frame") == lost[0])
    assert "row-lost" in classes(row)
    (line,) = [x for x in row.iter(f"{SVG}line") if "lost" in classes(x)]
    assert float(line.get("x2")) < 830 - 100, "the arrow stops before the server's lifeline"


# -- time-sequence graph ------------------------------------------------------------------------


def test_both_directions_share_one_time_axis_and_each_gap_is_labelled_once(blackhole):
    graph = time_sequence(blackhole)
    label = graph.get("aria-label")
    assert "client → server: 21,814 bytes" in label and "server → client: 323 bytes" in label
    breaks = [g for g in graph.iter(f"{SVG}g") if "gap-break" in classes(g)]
    texts = [words(g) for g in breaks]
    assert texts and len(texts) == len(set(texts)), "one label per gap"
    assert words(graph).count(" idle") == len(breaks) == 2


@needs_tshark
def test_the_black_hole_stall_is_written_on_the_graph(blackhole):
    capture = LAB / "mtu-blackhole.pcap"
    graph = time_sequence(blackhole)
    (note,) = [g for g in graph.iter(f"{SVG}g") if "stall-note" in classes(g)]
    said = words(note)
    assert "stalled here: nothing acknowledged after this point (21,720 bytes waiting)" in said
    assert "1,500-byte packets sent 6×, none acknowledged; nothing larger than 87 bytes" in said
    acks = fields(capture, ["frame.number", "tcp.ack"], "tcp.stream eq 1 && ip.src == 10.77.2.2")
    final = max(int(a) for _, a in acks)
    reached = min(int(n) for n, a in acks if int(a) == final)
    assert float(note.get("data-ms")) == pytest.approx(times_ms(capture, 1)[reached], abs=0.002)
    acked = f"tcp.stream eq 1 && ip.src == 10.77.1.2 && tcp.len > 0 && tcp.seq < {final}"
    largest = max(int(r[0]) for r in fields(capture, ["ip.len"], acked))
    assert f"nothing larger than {largest} bytes" in said, "the largest packet acknowledged"


def test_the_failure_is_written_above_the_graph(blackhole):
    (end,) = [g for g in time_sequence(blackhole).iter(f"{SVG}g") if "end-note" in classes(g)]
    assert words(end) == "timeout (frame 61): 421 4.4.2 server.lab.test Error: timeout exceeded"


@needs_tshark
def test_the_receiving_end_of_the_black_hole_says_what_never_arrived(tmp_path):
    capture = LAB / "mtu-blackhole.server.pcap"
    graph = time_sequence(report(tmp_path, capture, "html"))
    (note,) = [g for g in graph.iter(f"{SVG}g") if "unseen-note" in classes(g)]
    rows = fields(capture, ["frame.number", "tcp.seq", "tcp.len"],
                  "tcp.stream eq 1 && ip.src == 10.77.1.2")  # fmt: skip
    seen = max(int(s) + int(n) for _, s, n in rows if int(n))
    jump = next((int(f), int(s)) for f, s, _ in rows if int(s) > seen)
    assert (
        f"{jump[1] - seen:,} bytes the client sent never showed up here (frame {jump[0]}"
        in words(note)
    )


def test_no_stall_and_nothing_unseen_where_all_went_through(tmp_path):
    for name in ("clean-delivery", "loss", "zero-window", "mtu-healthy"):
        graph = time_sequence(report(tmp_path, LAB / f"{name}.pcap", "html", "--session", "1"))
        assert not [g for g in graph.iter(f"{SVG}g") if classes(g) & {"stall-note", "unseen-note"}]
        assert not [g for g in graph.iter(f"{SVG}g") if "end-note" in classes(g)], name


# -- the page around them -----------------------------------------------------------------------


@needs_tshark
def test_alike_findings_are_one_card_with_count_sessions_and_a_filter_that_shows_them(tmp_path):
    capture = LAB / "retry-storm.pcap"
    page = report(tmp_path, capture, "html")
    assert re.findall(r'<div class="finding \w+" data-count="(\d+)">', page) == ["240"]
    card = page[page.index('data-count="240"') : page.index('<h2 id="timeline"')]
    assert "sessions 1–240" in card
    assert len(re.findall(r"<tr><td class=\"num\">", card)) == 240, "each session listed"
    (shown,) = re.findall(r'<code class="filter">(.*?)</code>', card)
    frames = [int(n) for n in re.findall(r"\d+", shown)]
    assert [int(r[0]) for r in fields(capture, ["frame.number"], shown)] == frames
    assert len(frames) == 240 and page.count('class="finding ') == 2


def test_parties_name_the_server_not_an_enhanced_status_code(tmp_path):
    page = report(tmp_path, LAB / "retry-storm.pcap", "html")
    parties = page[page.index('id="parties"') : page.index('id="findings"')]
    assert "4.3.2" not in parties and "<td>1–240</td>" in parties
    clean = report(tmp_path, LAB / "clean-delivery.pcap", "html")
    assert "<td>server.lab.test</td>" in clean[clean.index('id="parties"') :]


def test_the_baseline_table_shows_values_not_structures(tmp_path):
    page = report(tmp_path, LAB / "mtu-blackhole.pcap", "html", "--baseline",
                  str(LAB / "mtu-healthy.pcap"))  # fmt: skip
    text = "".join(Elements(page).text)
    assert "{'" not in text and "client TTL 64" in text


def test_commands_in_backticks_render_as_code(tmp_path, blackhole):
    assert "<code>tracepath 10.77.2.2</code>" in blackhole
    assert "`" not in "".join(Elements(blackhole).text).split("How this report")[0]
    markdown = report(tmp_path, LAB / "mtu-blackhole.pcap", "md")
    assert "run `tracepath 10.77.2.2` from" in markdown
    assert "\\`" not in markdown


def test_overview_times_are_for_people(tmp_path, blackhole):
    overview = blackhole[blackhole.index('id="overview"') : blackhole.index('id="sessions"')]
    assert "2026-11-23 06:47:34.067" in overview
    assert "T06:47" not in overview and "000+00:00" not in overview
