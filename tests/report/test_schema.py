"""Every JSON document the tool writes against its JSON Schema (docs/schema/, draft 2020-12):
the golden files and fresh documents of every lab capture. The schemas close every object
whose keys are fixed, so a renamed or stray field fails here, not in a user's script.

Validated with the ``jsonschema`` package (the reference Python validator), not hand-written
checks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from pcapsmtp.cli import main
from pcapsmtp.report.schema import SCHEMA_VERSION
from tests.captures import LAB, PUBLIC, REPO_ROOT, all_captures

SCHEMAS = REPO_ROOT / "docs" / "schema"
GOLDEN = REPO_ROOT / "tests" / "golden"
CAPTURES = sorted(LAB.glob("*.pcap"))
BASE = "https://pcapsmtp.example/schema/"


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validator(kind: str) -> Draft202012Validator:
    """``analyze``, ``diff``, ``report`` or ``show`` (a $def of the analyze schema)."""
    uri = BASE + ("analyze.schema.json#/$defs/show" if kind == "show" else f"{kind}.schema.json")
    return Draft202012Validator({"$ref": uri}, registry=REGISTRY)


def assert_valid(kind: str, document: dict) -> None:
    errors = sorted(validator(kind).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in errors[:10]
    )


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_schemas_are_valid_draft_2020_12(path):
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def golden_documents() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(GOLDEN.rglob("*")):
        if not path.is_file() or not _body(path).startswith("{"):
            continue
        folder = path.parent.name
        if folder == "analyze":
            args = path.with_name(path.name.removesuffix(".out.golden") + ".args")
            kind = "show" if args.read_text().split()[0] == "show" else "analyze"
        else:
            kind = folder
        found.append((kind, path))
    return found


def _body(path: Path) -> str:
    """A golden file without its '# Golden output of ...' header."""
    text = path.read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("# ")).lstrip()


GOLDENS = golden_documents()


def test_every_json_golden_is_found():
    kinds = {kind for kind, _ in GOLDENS}
    assert kinds == {"analyze", "show", "diff", "report"}, GOLDENS


@pytest.mark.parametrize(
    ("kind", "path"), GOLDENS, ids=[str(p.relative_to(GOLDEN)) for _, p in GOLDENS]
)
def test_golden(kind, path):
    document = json.loads(_body(path))
    assert document["schema_version"] == SCHEMA_VERSION
    assert_valid(kind, document)


def run(*args) -> dict:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def extras(path: Path, keylog: bool = True) -> list:
    stem = path.name.split(".")[0]
    found = []
    if (LAB / f"{stem}.maillog").exists():
        found += ["--maillog", LAB / f"{stem}.maillog"]
    if keylog and (LAB / f"{stem}.keylog").exists():
        found += ["--keylog", LAB / f"{stem}.keylog"]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fresh_documents(path, tmp_path):
    """analyze, show of each session (JSON built once, cut per session), report plain and
    with a baseline and pseudonyms, and diff against a clean delivery: each as written."""
    analyzed = run("analyze", path, "--format", "json", *extras(path))
    assert_valid("analyze", analyzed)
    first = analyzed["sessions"][0]["id"] if analyzed["sessions"] else None
    if first is not None:
        assert_valid("show", run("show", path, "--session", first, "--format", "json",
                                 *extras(path)))  # fmt: skip
    assert_valid("report", run("report", path, "-o", "-", "--format", "json", *extras(path)))
    baseline = LAB / "clean-delivery.pcap"
    assert_valid(
        "report",
        run("report", path, "-o", "-", "--format", "json", "--baseline", baseline,
            "--redact-addresses"),
    )  # fmt: skip
    diff = CliRunner().invoke(main, ["diff", str(baseline), str(path), "--format", "json"])
    if diff.exit_code == 0:
        assert_valid("diff", json.loads(diff.stdout))
    else:
        assert diff.exit_code == 2, diff.output  # no session to compare: a usage error


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [p for p in all_captures() if p.parent == PUBLIC], ids=lambda p: p.name
)
def test_fresh_analyze_documents_of_public_captures(path):
    """Captures nobody here made (other MTAs, link types, damage): the analyze document still
    follows the schema (measured by hand too: analyze, show, report and diff documents of the
    120 public captures, no error)."""
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    if result.stdout:
        assert_valid("analyze", json.loads(result.stdout))


SAME_SESSION = [
    ("mtu-blackhole.pcap", "mtu-blackhole.server.pcap"),
    ("rst-in-data.pcap", "rst-in-data.server.pcap"),
    ("ip-fragmentation.client.pcap", "ip-fragmentation.pcap"),
]


@pytest.mark.parametrize(("client", "server"), SAME_SESSION, ids=lambda n: n)
def test_fresh_same_session_diff(client, server):
    document = run("diff", LAB / client, LAB / server, "--same-session", "--format", "json")
    assert document["mode"] == "same-session"
    assert_valid("diff", document)


# -- the schemas are strict enough to matter ---------------------------------------------------


@pytest.fixture(scope="module")
def blackhole() -> dict:
    return run("analyze", LAB / "mtu-blackhole.pcap", "--format", "json")


@pytest.mark.parametrize(
    "where",
    [
        ("sessions", 0, "client_ip"),
        ("sessions", 0, "tcp", "retransmissions"),
        ("sessions", 0, "smtp", "last_reply", "code"),
        ("findings", 0, "next_steps"),
        ("captures", 0, "frames"),
        ("schema_version",),
    ],
    ids=lambda w: ".".join(map(str, w)),
)
def test_a_renamed_field_fails(blackhole, where):
    assert list(validator("analyze").iter_errors(renamed(blackhole, where)))


def renamed(document: dict, where: tuple) -> dict:
    """A copy of ``document`` with the field at ``where`` renamed."""
    document = copy.deepcopy(document)
    *parents, name = where
    holder = document
    for key in parents:
        holder = holder[key]
    holder[name + "_renamed"] = holder.pop(name)
    return document


def test_a_wrong_value_fails(blackhole):
    for key, value in (("outcome", "lost"), ("community_id", "1:short"), ("start", "yesterday")):
        document = copy.deepcopy(blackhole)
        document["sessions"][0][key] = value
        assert list(validator("analyze").iter_errors(document)), key


@pytest.mark.parametrize(
    ("kind", "args", "where"),
    [
        ("report", ["report", "--format", "json", "-o", "-"], ("sessions", 0, "start_local")),
        ("report", ["report", "--format", "json", "-o", "-"], ("sessions", 0, "server_port")),
        ("report", ["report", "--format", "json", "-o", "-"], ("timeline", 0, "community_id")),
        ("report", ["report", "--format", "json", "-o", "-"], ("capture", "sha256")),
        ("show", ["show", "--session", "1", "--format", "json"], ("smtp", "helo")),
        ("show", ["show", "--session", "1", "--format", "json"], ("schema_version",)),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None,
)
def test_a_renamed_field_fails_in_report_and_show(kind, args, where):
    document = run(args[0], LAB / "mtu-blackhole.pcap", *args[1:])
    assert_valid(kind, document)
    assert list(validator(kind).iter_errors(renamed(document, where)))


def test_a_renamed_field_fails_in_diff():
    document = run("diff", LAB / "clean-delivery.pcap", LAB / "mtu-blackhole.pcap", "--format",
                   "json")  # fmt: skip
    assert_valid("diff", document)
    for where in (("bad", "client_port"), ("verdict",), ("steps", 0, "good")):
        assert list(validator("diff").iter_errors(renamed(document, where))), where


# -- fields that appear only in some documents --------------------------------------------------


def test_a_capped_document(tmp_path, monkeypatch):
    """A hostile capture past the per-session caps (2,000 recipients, 1,000 kept; commands
    capped lower here) and a finding with more evidence frames than it lists (the frame cap
    lowered): ``limits``, ``rcpt_left_out`` and ``frames_left_out`` follow the schema in the
    analyze, show and report documents, and a misspelt one fails."""
    from pcapsmtp.diagnose import model
    from pcapsmtp.smtp import session as session_module
    from tests.e2e.test_hostile_inputs import hostile

    monkeypatch.setattr(session_module, "MAX_COMMANDS", 500)
    monkeypatch.setattr(model, "MAX_FRAMES", 2)
    rcpts = hostile.write_case("rcpts", tmp_path, 0.002)
    holes = hostile.write_case("holes", tmp_path, 0.002)
    analyzed = run("analyze", rcpts, "--format", "json")
    assert_valid("analyze", analyzed)
    session = analyzed["sessions"][0]
    assert session["smtp"]["transactions"][0]["rcpt_left_out"].startswith("+1,000 more")
    assert any(line.startswith("transaction 1: +1,000") for line in session["limits"])
    assert any("commands" in line for line in session["limits"]), session["limits"]
    assert_valid("show", run("show", rcpts, "--session", "1", "--format", "json"))
    assert_valid("report", run("report", rcpts, "-o", "-", "--format", "json"))
    with_frames = run("analyze", holes, "--format", "json")
    assert_valid("analyze", with_frames)
    capped = [f for f in with_frames["findings"] if "frames_left_out" in f]
    assert capped and all(len(f["frames"]) == 2 for f in capped), with_frames["findings"]
    for where in (("sessions", 0, "limits"), ("sessions", 0, "smtp", "transactions", 0,
                                              "rcpt_left_out")):  # fmt: skip
        assert list(validator("analyze").iter_errors(renamed(analyzed, where))), where
    capped[0]["frames_left_out"] = 0
    assert list(validator("analyze").iter_errors(with_frames))


def test_two_captures_with_their_mail_logs():
    """Two captures analysed together name their sessions 'capture#id' in the destinations,
    clients and mail-log lists; the mail log's comparison and each session's deciding reply
    are there."""
    names = ("greylisting", "unknown-user")
    logs = [a for n in names for a in ("--maillog", LAB / f"{n}.maillog")]
    document = run("analyze", *[LAB / f"{n}.pcap" for n in names], *logs, "--format", "json")
    assert_valid("analyze", document)
    assert len(document["captures"]) == 2
    keys = list(document["maillog"]["sessions"])
    assert keys and all("#" in key for key in keys), keys
    assert all("#" in str(s) for d in document["destinations"] for s in d["sessions"])
    assert document["maillog"]["comparison"]
    assert any(s["smtp"]["deciding_reply"] for s in document["sessions"])
    broken = copy.deepcopy(document)
    broken["maillog"]["sessions"]["#1"] = None
    assert list(validator("analyze").iter_errors(broken))
