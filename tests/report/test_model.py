"""The report document has exactly the shape pcapsmtp/report/model.py declares: every field
the builders fill is declared there, every declared field is filled, and each value has
its declared type. So the model is where a field is added, and a field added elsewhere
only (a misspelt key, a key left out) fails here."""

from __future__ import annotations

import types
import typing
from datetime import UTC

import pytest

from pcapsmtp.analysis import Options
from pcapsmtp.report import model
from pcapsmtp.report.markdown_report import render_report_json
from pcapsmtp.ticket import ReportOptions, make_report
from tests.report.helpers import LAB


def _is_typeddict(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__total__")


def mismatches(value, kind, where: str = "report") -> list[str]:
    """Where ``value`` departs from the declared ``kind``."""
    if kind is object or kind is typing.Any:
        return []
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        found = [mismatches(value, arg, where) for arg in args]
        return [] if any(not f for f in found) else min(found, key=len)
    if kind is type(None):
        return [] if value is None else [f"{where}: {value!r} is not None"]
    if _is_typeddict(kind):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not {kind.__name__}"]
        declared = typing.get_type_hints(kind)
        keys = set(value)
        out = [f"{where}.{k}: not declared in {kind.__name__}" for k in keys - set(declared)]
        out += [f"{where}.{k}: missing" for k in kind.__required_keys__ - keys]
        for key in keys & set(declared):
            out += mismatches(value[key], declared[key], f"{where}.{key}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [
            m for i, item in enumerate(value) for m in mismatches(item, args[0], f"{where}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a dict"]
        return [m for k, item in value.items() for m in mismatches(item, args[1], f"{where}[{k}]")]
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    return [] if ok else [f"{where}: {value!r} is not {kind.__name__}"]


def test_the_checker_catches_a_field_out_of_the_model():
    verdict = {"line": "", "level": "ok", "sessions": 0, "outcomes": {}, "errors": 0,
               "warnings": 0, "info": 0}  # fmt: skip
    assert mismatches(verdict, model.Verdict) == []
    assert mismatches(verdict | {"levle": "ok"}, model.Verdict) == [
        "report.levle: not declared in Verdict"
    ]
    assert mismatches({k: v for k, v in verdict.items() if k != "info"}, model.Verdict) == [
        "report.info: missing"
    ]
    assert mismatches(verdict | {"errors": "1"}, model.Verdict) == ["report.errors: '1' is not int"]


LAB_CAPTURES = sorted(p for p in LAB.glob("*.pcap") if not p.name.endswith(".reference.pcap"))


@pytest.mark.parametrize("capture", LAB_CAPTURES, ids=lambda p: p.stem)
def test_every_lab_report_has_the_declared_shape(capture):
    log = capture.with_name(capture.name.split(".")[0] + ".maillog")
    options = Options(maillogs=(str(log),) if log.exists() else ())
    report, errors = make_report(str(capture), options, ReportOptions(tz=UTC))
    assert not errors
    assert mismatches(report, model.Report) == []
    assert render_report_json(report)


@pytest.mark.parametrize("baseline", ["mtu-healthy.pcap", "clean-delivery.pcap"])
def test_a_report_with_a_baseline_has_the_declared_shape(baseline):
    report, errors = make_report(
        str(LAB / "mtu-blackhole.pcap"), Options(), ReportOptions(), str(LAB / baseline)
    )
    assert not errors and report["baseline"]["diff"]["document"] is not None
    assert mismatches(report, model.Report) == []


def test_a_baseline_without_a_comparison_has_the_declared_shape(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes((LAB / "mtu-healthy.pcap").read_bytes()[:24])
    report, _ = make_report(str(LAB / "mtu-blackhole.pcap"), Options(), ReportOptions(), str(empty))
    assert report["baseline"]["diff"]["error"]
    assert mismatches(report, model.Report) == []
