"""JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure...).

One testsuite; one testcase per target; one ``<failure>`` per finding at or
above the report's ``fail_on``, so the test report goes red exactly when
``Report.failed`` makes the run fail. Findings below that threshold and
suppressed findings are listed in the testcase's ``<system-out>``: shown,
never counted. No times are written: the report does not carry any.
"""

from __future__ import annotations

from xml.etree import ElementTree

from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.report.text import (
    about,
    fix_lines,
    location_label,
    ordered_findings,
    printable,
)

SUITE = "paracle-guard"


def _finding_text(result: Result, finding: Finding) -> str:
    subject = about(result, finding)
    lines = [
        f"{location_label(result, finding)}: {finding.rule} {finding.name} "
        f"[{finding.severity.value}] {printable(finding.message)}"
        + (f" ({printable(subject)})" if subject is not None else "")
    ]
    if finding.location.layer:
        lines.append(f"    layer: {printable(finding.location.layer)}")
    if finding.fix:
        first, *more = fix_lines(finding.fix)
        lines.append(f"    fix: {first}")
        lines.extend(f"         {line}" for line in more)
    return "\n".join(lines)


def _suppressed_text(result: Result, finding: Finding) -> str:
    how = "suppressed"
    if finding.suppression is not None:
        how = f"suppressed ({finding.suppression.kind}"
        if finding.suppression.reason:
            how += f": {printable(finding.suppression.reason)}"
        how += ")"
    return f"{how} {_finding_text(result, finding)}"


def _testcase(report: Report, result: Result) -> tuple[ElementTree.Element, bool]:
    case = ElementTree.Element(
        "testcase", name=printable(result.target), classname=f"{SUITE}.{printable(result.kind)}"
    )
    shown = []
    failed = False
    for finding in ordered_findings(result):
        if finding.severity.at_least(report.fail_on):
            failed = True
            failure = ElementTree.SubElement(
                case,
                "failure",
                message=f"{finding.rule} {finding.name}: {printable(finding.message)}",
                type=finding.severity.value,
            )
            failure.text = _finding_text(result, finding)
        else:
            shown.append(_finding_text(result, finding))
    shown.extend(_suppressed_text(result, finding) for finding in result.suppressed)
    shown.extend(f"note: {printable(notice)}" for notice in result.notices)
    if shown:
        ElementTree.SubElement(case, "system-out").text = "\n".join(shown)
    return case, failed


def render_junit(report: Report) -> str:
    cases = [_testcase(report, result) for result in report.results]
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(failed for _, failed in cases)),
        "errors": "0",
        "skipped": "0",
    }
    root = ElementTree.Element("testsuites", {"name": SUITE, **counts})
    suite = ElementTree.SubElement(
        root, "testsuite", {"name": f"{SUITE} (policy {printable(report.policy.name)})", **counts}
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (
        ("tool.version", report.tool.version),
        ("policy.name", report.policy.name),
        ("policy.sha256", report.policy.sha256),
        ("fail_on", report.fail_on.value),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=printable(value))
    suite.extend(case for case, _ in cases)
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
