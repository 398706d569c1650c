"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) renders it
with no console message at all (no script error, no blocked load: the page asks for
nothing), prints it to PDF, and leaves a screenshot in test-artifacts/ for people to look at.
Skipped when chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report import hostile
from tests.report.helpers import LAB, REPO, Elements, report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
CASES = ["mtu-blackhole", "pmtud-working", "auth-plain-clear", "hostile"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, errors="replace")


def console_messages(stderr: str) -> list[str]:
    """Chromium logs every console message, error or not, as ``...:CONSOLE...``."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def html_report(tmp_path: Path, case: str) -> Path:
    capture = hostile.hostile_capture(tmp_path) if case == "hostile" else LAB / f"{case}.pcap"
    page = tmp_path / f"{case}.html"
    page.write_text(report(tmp_path, capture, "html"), encoding="utf-8")
    return page


@pytest.mark.parametrize("case", CASES)
def test_renders_without_console_messages(tmp_path, case):
    page = html_report(tmp_path, case)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"report-{case}.png"
    screenshot.unlink(missing_ok=True)
    done = chromium(tmp_path, page, f"--screenshot={screenshot}", "--window-size=1280,5200")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_hostile_page_builds_no_script_in_the_dom(tmp_path):
    page = html_report(tmp_path, "hostile")
    done = chromium(tmp_path, page, "--dump-dom")
    assert done.returncode == 0
    dom = Elements(done.stdout)
    assert dom.active() == []
    assert "script" not in dom.names
    assert hostile.SCRIPT in "".join(dom.text), "the browser shows the text"
    assert console_messages(done.stderr) == []


def test_prints_to_pdf(tmp_path):
    page = html_report(tmp_path, "mtu-blackhole")
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "report-mtu-blackhole.pdf"
    pdf.unlink(missing_ok=True)
    done = chromium(tmp_path, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", data))
    assert pages >= 2, "the whole report, over several pages"
