"""GitHub Actions workflow commands: each finding becomes an annotation on the run
and, for files in the checkout, on the pull request's diff.

``::error file=docker/Dockerfile,line=3,title=PG101 root-user::message``. Findings
inside an image get no ``file`` (it would name a file the repository does not
have); their message says where they are instead. Suppressed findings are not
annotated, only counted, as in the text report.
"""

from __future__ import annotations

from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.report.text import (
    about,
    fix_lines,
    location_label,
    ordered_findings,
    printable,
    summary_line,
    suppressed_line,
)
from paracle_guard.severity import Severity

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    # The runner's own escaping: without it a newline would end the command and
    # the rest of the message would be read as a log line (or a new command).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(result: Result, finding: Finding) -> str:
    location = finding.location
    properties = []
    parts = [printable(finding.message)]
    if result.in_image:
        parts[0] = f"{location_label(result, finding)}: {parts[0]}"
    else:
        properties.append(f"file={_escape_property(printable(location.path))}")
        if location.line is not None:
            properties.append(f"line={location.line}")
            if location.end_line is not None and location.end_line > location.line:
                properties.append(f"endLine={location.end_line}")
    title = f"{finding.rule} {finding.name}"
    subject = about(result, finding)
    if subject is not None:
        title += f" ({printable(subject)})"
    properties.append(f"title={_escape_property(title)}")
    if location.layer:
        parts.append(f"layer: {printable(location.layer)}")
    if finding.fix:
        parts.append("fix: " + "\n".join(fix_lines(finding.fix)))
    command = COMMANDS[finding.severity]
    return f"::{command} {','.join(properties)}::{_escape_data(chr(10).join(parts))}"


def render_github(report: Report) -> str:
    lines = [
        _annotation(result, finding)
        for result in report.results
        for finding in ordered_findings(result)
    ]
    lines.extend(
        f"::notice title=paracle-guard::{_escape_data(printable(notice))}"
        for notice in report.notices
    )
    suppressed = suppressed_line(report)
    if suppressed:
        lines.append(suppressed)
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
