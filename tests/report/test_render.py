"""The public entry point: ``render(report, fmt)`` and what it costs to import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from paracle_guard.report import FORMATS, render
from paracle_guard.report.models import Report

# Builds a one-finding report, renders it as asked, then says which heavy or
# unrelated modules got imported along the way.
_PROBE = textwrap.dedent(
    """
    import json, sys
    from paracle_guard.location import Location
    from paracle_guard.report import render
    from paracle_guard.report.models import Finding, PolicyRef, Report, Result, ToolInfo
    from paracle_guard.severity import Severity

    report = Report(tool=ToolInfo(version="0"), policy=PolicyRef(name="p", sha256="0"),
                    fail_on=Severity.WARNING)
    report.add(Result(target="Dockerfile", kind="dockerfile", findings=[Finding(
        rule="PG101", name="root-user", severity=Severity.ERROR, message="root",
        location=Location(path="Dockerfile", line=1))]))
    fmt, color = sys.argv[1], sys.argv[2] == "color"
    render(report, fmt, color=color)
    watched = ["rich", "jsonschema", "docker"] + [
        "paracle_guard.report." + m for m in ("text", "json_format", "sarif", "github", "junit")
    ]
    print(json.dumps(sorted(m for m in watched if m in sys.modules)))
    """
)


def _imported_after(fmt: str, color: bool = False) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, fmt, "color" if color else "plain"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(completed.stdout)
    return loaded


def test_plain_text_never_imports_rich() -> None:
    assert _imported_after("text") == ["paracle_guard.report.text"]


def test_colour_is_the_only_way_rich_gets_imported() -> None:
    assert "rich" in _imported_after("text", color=True)


@pytest.mark.parametrize(
    ("fmt", "modules"),
    [
        ("json", ["paracle_guard.report.json_format"]),
        ("sarif", ["paracle_guard.report.json_format", "paracle_guard.report.sarif"]),
        ("github", ["paracle_guard.report.github", "paracle_guard.report.text"]),
        ("junit", ["paracle_guard.report.junit", "paracle_guard.report.text"]),
    ],
)
def test_a_format_imports_only_what_it_needs(fmt: str, modules: list[str]) -> None:
    # Even color=True must not drag rich into a machine format.
    assert _imported_after(fmt, color=True) == modules


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_both_sample_reports_ending_with_a_newline(
    fmt: str, report: Report, empty_report: Report
) -> None:
    for rendered in (render(report, fmt), render(empty_report, fmt)):
        assert rendered.endswith("\n")
        assert not rendered.endswith("\n\n")


def test_formats_are_the_published_five_each_with_its_renderer() -> None:
    import importlib

    assert list(FORMATS) == ["text", "json", "sarif", "github", "junit"]
    for chosen in FORMATS.values():
        assert callable(getattr(importlib.import_module(chosen.module), chosen.function))
        assert chosen.description


def test_an_unknown_format_is_refused(report: Report) -> None:
    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        render(report, "xml")
