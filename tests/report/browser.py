"""One headless Chromium for every page a test shows it, driven over the DevTools protocol.

Chromium spends a second or more of CPU starting; the browser tests look at a dozen pages.
Started once with ``--remote-debugging-pipe`` (the protocol's JSON messages, each ended by
a NUL byte, on the file descriptors 3 and 4: no network port, no websocket), it opens a
fresh tab per page, so no page sees another's state, and does there what the command
line's ``--dump-dom``, ``--screenshot`` and ``--print-to-pdf`` do: the DOM as serialised
after the load event, a PNG of the window, a PDF of the page.

Console messages are caught twice: the protocol's events for the tab (console API calls,
uncaught exceptions, the browser's own log entries such as a blocked load or a Content
Security Policy violation), and the ``CONSOLE`` lines Chromium writes to stderr with
``--enable-logging=stderr``, as a Chromium run per page was checked before.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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
TIMEOUT = 120.0


def console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message, error or not, as ``...:CONSOLE...``."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@dataclass
class Page:
    """What the browser made of one page."""

    dom: str
    console: list[str] = field(default_factory=list)
    """The tab's console messages, exceptions and log entries, as "kind: text"."""
    screenshot: bytes | None = None
    pdf: bytes | None = None


class Browser:
    """A headless Chromium kept running; :meth:`show` loads one page in a fresh tab."""

    def __init__(self, executable: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_written = os.pipe()
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            close_fds=False,
            preexec_fn=lambda: _as_3_and_4(commands_read, replies_written),
        )
        os.close(commands_read)
        os.close(replies_written)
        self._next_id = 0
        self._pending = b""
        self._events: list[dict] = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _receive(self) -> dict:
        while b"\0" not in self._pending:
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe: {self.stderr[-2000:]}")
            self._pending += chunk
        message, _, self._pending = self._pending.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait for its answer, keeping the events that come first."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            answer = self._receive()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self._events.append(answer)
        raise TimeoutError(method)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method and e.get("sessionId") == session
                      for e in self._events):  # fmt: skip
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self._events.append(self._receive())

    def show(
        self, page: Path, width: int, height: int, screenshot: bool = False, pdf: bool = False
    ) -> Page:
        """Load ``page`` in a new tab of ``width`` x ``height`` pixels, wait for its load
        event, and read back its DOM, its console, and when asked a screenshot and a PDF."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            self._events = [e for e in self._events if e.get("sessionId") != session]
            self.call("Page.navigate", session, url=page.as_uri())
            self._wait_for("Page.loadEventFired", session)
            dom = self.call(
                "Runtime.evaluate",
                session,
                expression="document.documentElement.outerHTML",
                returnByValue=True,
            )["result"]["value"]
            shown = Page(dom=dom)
            if screenshot:
                data = self.call("Page.captureScreenshot", session, format="png")["data"]
                shown.screenshot = base64.b64decode(data)
            if pdf:
                data = self.call("Page.printToPDF", session, displayHeaderFooter=False)["data"]
                shown.pdf = base64.b64decode(data)
            shown.console = [_said(e) for e in self._events if e.get("sessionId") == session
                             and _said(e)]  # fmt: skip
            return shown
        finally:
            self._events = [e for e in self._events if e.get("sessionId") != session]
            self.call("Target.closeTarget", targetId=target)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr_thread.join(timeout=10)
        os.close(self._commands)
        os.close(self._replies)


def _as_3_and_4(commands: int, replies: int) -> None:
    """In the child: the command pipe as fd 3, the reply pipe as fd 4, where Chromium's
    ``--remote-debugging-pipe`` looks for them (the only inheritable fds besides stdio)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands, replies)]
    os.dup2(high[0], 3)
    os.dup2(high[1], 4)


def _said(event: dict) -> str | None:
    """A console message, an uncaught exception or a log entry, as text; None otherwise."""
    params = event.get("params", {})
    match event.get("method"):
        case "Runtime.consoleAPICalled":
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            return f"console.{params['type']}: {' '.join(texts)}"
        case "Runtime.exceptionThrown":
            return f"exception: {params['exceptionDetails'].get('text', '')}"
        case "Log.entryAdded":
            entry = params["entry"]
            return f"log {entry['source']} {entry['level']}: {entry['text']}"
    return None
