"""Report models and one module per output format.

``FORMATS`` maps each format name to the function that renders it; the CLI builds
its ``--format`` choices, help and completion from this one map. ``render(report,
fmt)`` imports only the module of the format asked for, so a JSON run never loads
rich and a text run in a pipe never loads anything but the standard library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paracle_guard.report.models import Report


@dataclass(frozen=True)
class ReportFormat:
    description: str  # what it is for, as completion and help show it
    module: str
    function: str  # (report) -> str; the text format also takes color= and width=


FORMATS: dict[str, ReportFormat] = {
    "text": ReportFormat("one line per finding, for people", "paracle_guard.report.text",
                         "render_text"),
    "json": ReportFormat("the report as schemas/report.schema.json describes it",
                         "paracle_guard.report.json_format", "render_json"),
    "sarif": ReportFormat("SARIF 2.1.0, for code scanning", "paracle_guard.report.sarif",
                          "render_sarif"),
    "github": ReportFormat("GitHub Actions annotations", "paracle_guard.report.github",
                           "render_github"),
    "junit": ReportFormat("JUnit XML, one test case per finding, for CI test reports",
                          "paracle_guard.report.junit", "render_junit"),
}


def render(report: Report, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    """``report`` in format ``fmt``, ending with a newline, ready to write out.

    ``color`` and ``width`` concern only the text format: ``color`` asks for
    terminal styling (the caller decides), ``width`` wraps long lines (None: never
    wrap). Machine formats ignore both.
    """
    chosen = FORMATS.get(fmt)
    if chosen is None:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    renderer = getattr(importlib.import_module(chosen.module), chosen.function)
    text: str = renderer(report, color=color, width=width) if fmt == "text" else renderer(report)
    return text
