"""Making reports through the command line, and looking into what they hold."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from pcapsmtp.cli import main
from tests.captures import LAB, REPO_ROOT

REPO = REPO_ROOT
FORMATS = ("md", "html", "json")

UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
"""What a terminal, an editor or a bidi-aware viewer would act on; only \\t and \\n may pass."""
MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()<>#+!|~.-])")


def report(tmp_path: Path, capture: Path | str, fmt: str, *args: str) -> str:
    """Run ``pcapsmtp report`` and return the file it wrote."""
    out = tmp_path / f"report.{fmt}"
    result = CliRunner().invoke(main, ["report", str(capture), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}: ")
    return out.read_text(encoding="utf-8")


def plain(text: str, fmt: str) -> str:
    """The text a reader sees: Markdown backslash escapes and HTML entities undone."""
    if fmt == "md":
        return MARKDOWN_ESCAPE.sub(r"\1", text).replace("&amp;", "&")
    if fmt == "html":
        import html

        return html.unescape(text)
    return text


def secret_forms(credentials: dict) -> list[str]:
    """A lab's credentials as they can appear: the passwords in clear, and in base64 the
    AUTH PLAIN blob, the user name and each password (AUTH LOGIN)."""
    user = credentials["username"].encode()
    passwords = [
        credentials[k].encode() for k in ("password", "failed_password") if k in credentials
    ]
    forms = [p.decode() for p in passwords]
    for password in passwords:
        forms.append(base64.b64encode(b"\0" + user + b"\0" + password).decode())
        forms.append(base64.b64encode(password).decode())
    forms.append(base64.b64encode(user).decode())
    return forms


def truth(name: str) -> dict:
    return json.loads((LAB / f"{name}.truth.json").read_text())


class Elements(HTMLParser):
    """Every element and attribute of an HTML page, and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def active(self) -> list[str]:
        """What could run code or load something: scripts, frames, embeds, event handlers,
        javascript: URLs, any src, any href that leaves the page."""
        found = []
        for tag, attrs in self.tags:
            harmless_icon = tag == "link" and attrs.get("href") == "data:,"
            if tag in ("script", "iframe", "object", "embed", "img", "link", "base", "form"):
                found += [] if harmless_icon else [tag]
            for name, value in attrs.items():
                value = (value or "").strip().lower()
                if name.startswith("on") or name in ("src", "srcdoc", "formaction"):
                    found.append(f"{tag} {name}")
                if (
                    name in ("href", "xlink:href")
                    and not value.startswith("#")
                    and value != "data:,"
                ):
                    found.append(f"{tag} {name}={value}")
                if "javascript:" in value:
                    found.append(f"{tag} {name}={value}")
        return found
