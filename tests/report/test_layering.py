"""The report layer renders only: no module of pcapsmtp/report imports the pipeline (reading
captures, reassembling TCP, tracking SMTP, analysing, computing a diff); pcapsmtp/ticket.py
does that work and hands models down. And its modules form no import cycle, not even
through imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pcapsmtp

PACKAGE = Path(pcapsmtp.__file__).parent
REPORT = PACKAGE / "report"

PIPELINE = (
    "pcapsmtp.capture",
    "pcapsmtp.tcp.reassembly",
    "pcapsmtp.tcp.flows",
    "pcapsmtp.tcp.flow_objects",
    "pcapsmtp.tcp.limits",
    "pcapsmtp.tcp.state",
    "pcapsmtp.tcp.analysis",
    "pcapsmtp.tcp.streams",
    "pcapsmtp.streams",
    "pcapsmtp.smtp.session",
    "pcapsmtp.smtp.tracker",
    "pcapsmtp.smtp.dialogue",
    "pcapsmtp.rotated",
    "pcapsmtp.analysis.rotated",
    "pcapsmtp.diff",
    "pcapsmtp.ticket",
)
"""Modules (and their submodules) the report layer must not import..."""
MODELS = (
    "pcapsmtp.capture.model",
    "pcapsmtp.capture.addresses",
    "pcapsmtp.capture.timestamps",
    "pcapsmtp.diff.model",
    "pcapsmtp.diff.names",
)
"""...except these, which hold models and names only (addresses and timestamps: how an
address or a capture time is written, pure functions that read nothing)."""
ANALYSIS_MODELS = {"Analysis", "CaptureResult", "Options"}
"""What may be imported from pcapsmtp.analysis: its models, not ``analyze``."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every import in the file, at the top or inside a function."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [(base, alias.name) for alias in node.names]
    return found


def forbidden(module: str, name: str | None) -> bool:
    if module == "pcapsmtp.analysis":
        return name not in ANALYSIS_MODELS
    if module == "pcapsmtp.diagnose":
        return True
    inside = lambda prefixes: any(  # noqa: E731
        module == p or module.startswith(p + ".") for p in prefixes
    )
    return inside(PIPELINE) and not inside(MODELS)


def test_the_report_layer_imports_no_pipeline_module():
    found = [
        (module_name(path), module, name)
        for path in sorted(REPORT.rglob("*.py"))
        for module, name in imports(path)
        if forbidden(module, name)
    ]
    assert found == []


def test_the_rule_catches_a_pipeline_import():
    assert forbidden("pcapsmtp.analysis", "analyze")
    assert forbidden("pcapsmtp.streams", "collect_streams")
    assert forbidden("pcapsmtp.diff", "compare_captures")
    assert forbidden("pcapsmtp.diff.compare", "step_name")
    assert forbidden("pcapsmtp.smtp.session", "deciding_reply")
    assert not forbidden("pcapsmtp.analysis", "Analysis")
    assert not forbidden("pcapsmtp.diff.names", "step_name")
    assert not forbidden("pcapsmtp.capture.model", "CaptureInfo")
    assert not forbidden("pcapsmtp.smtp.model", "Session")


def test_the_report_modules_form_no_import_cycle():
    names = {module_name(p): p for p in REPORT.rglob("*.py")}
    graph = {
        name: {f"{m}.{n}" if f"{m}.{n}" in names else m for m, n in imports(path)} & set(names)
        for name, path in names.items()
    }
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*trail, nxt])
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
