"""Report models and one module per output format.

``FORMATS`` is the one map of output formats: each name with what it is for, the
function that renders a scan report in it, and the kinds of document it can
write. Every command's ``--format`` (``--report`` for ``run``) takes its choices,
help and completion from this map (``cli_kit.options.format_option``), so adding
a format is one entry here, its renderer module and its test.

``render(report, fmt)`` imports only the module of the format asked for, so a JSON
run never loads rich and a text run in a pipe never loads anything but the
standard library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paracle_guard.report.models import Report

# The kinds of document a command writes. A scan report (lint, image, container,
# compose, k8s) can be written in every format; the small documents of doctor,
# sandbox test, the rules listing and run's refusal report (on stderr, beside the
# command's own output) only in the formats that list DOCUMENT.
SCAN_REPORT = "scan report"
DOCUMENT = "document"


@dataclass(frozen=True)
class ReportFormat:
    description: str  # what it is for, as completion shows it
    module: str
    function: str  # (report) -> str; the text format also takes color= and width=
    documents: frozenset[str] = frozenset({SCAN_REPORT})


FORMATS: dict[str, ReportFormat] = {
    "text": ReportFormat("for people: one line per finding", "paracle_guard.report.text",
                         "render_text", frozenset({SCAN_REPORT, DOCUMENT})),
    "json": ReportFormat("for programs: reports as schemas/report.schema.json describes them",
                         "paracle_guard.report.json_format", "render_json",
                         frozenset({SCAN_REPORT, DOCUMENT})),
    "sarif": ReportFormat("SARIF 2.1.0, for code scanning", "paracle_guard.report.sarif",
                          "render_sarif"),
    "github": ReportFormat("GitHub Actions annotations", "paracle_guard.report.github",
                           "render_github"),
    "junit": ReportFormat("JUnit XML, one test case per finding, for CI test reports",
                          "paracle_guard.report.junit", "render_junit"),
}


def formats_for(document: str) -> dict[str, ReportFormat]:
    """The formats a command writing ``document`` offers, in the map's order."""
    return {name: chosen for name, chosen in FORMATS.items() if document in chosen.documents}


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
