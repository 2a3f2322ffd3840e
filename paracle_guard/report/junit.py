"""JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure...).

One testsuite. Each finding is its own testcase, so a CI system lists every
problem as it lists a failed test:

- a finding at or above the report's ``fail_on`` holds a ``<failure>``: the test
  report goes red exactly when ``Report.failed`` makes the run fail;
- a finding below ``fail_on`` and a suppressed finding are ``<skipped>``, with why
  in the message: shown, never counted as failures;
- a target with no finding at all is one passing testcase named after it.

Testcases are named ``LOCATION: CODE name`` (``Dockerfile:7: PG101 root-user``)
and grouped by ``paracle-guard.KIND`` as their classname. The output is valid
against the common JUnit schema (the Jenkins xUnit plugin's ``junit-10.xsd``;
``tests/report/test_junit.py`` checks it), which has no times: none are written.
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


def _why_skipped(report: Report, finding: Finding) -> str:
    suppression = finding.suppression
    if suppression is None:
        return (f"{finding.severity.value} is below fail_on ({report.fail_on.value}): "
                "reported, does not fail the run")
    how = f"suppressed ({suppression.kind}"
    if suppression.reason:
        how += f": {printable(suppression.reason)}"
    return how + ")"


class _Cases:
    """The testcases of the suite, with unique names and the counts the suite carries."""

    def __init__(self) -> None:
        self.elements: list[ElementTree.Element] = []
        self.failures = 0
        self.skipped = 0
        self._names: dict[tuple[str, str], int] = {}

    def add(self, classname: str, name: str) -> ElementTree.Element:
        # Several findings of one rule on one line (two denied packages) must stay
        # apart: CI systems merge testcases that share a class and a name.
        seen = self._names.get((classname, name), 0) + 1
        self._names[(classname, name)] = seen
        unique = name if seen == 1 else f"{name} ({seen})"
        case = ElementTree.Element("testcase", name=printable(unique), classname=classname)
        self.elements.append(case)
        return case

    def finding(self, report: Report, result: Result, finding: Finding) -> None:
        case = self.add(f"{SUITE}.{printable(result.kind)}",
                        f"{location_label(result, finding)}: {finding.rule} {finding.name}")
        message = f"{finding.rule} {finding.name}: {printable(finding.message)}"
        if finding.suppression is None and finding.severity.at_least(report.fail_on):
            self.failures += 1
            failure = ElementTree.SubElement(case, "failure", message=message,
                                             type=finding.severity.value)
            failure.text = _finding_text(result, finding)
            return
        self.skipped += 1
        ElementTree.SubElement(case, "skipped", message=_why_skipped(report, finding))
        ElementTree.SubElement(case, "system-out").text = _finding_text(result, finding)

    def clean(self, result: Result) -> None:
        case = self.add(f"{SUITE}.{printable(result.kind)}", printable(result.target))
        if result.notices:
            ElementTree.SubElement(case, "system-out").text = "\n".join(
                f"note: {printable(notice)}" for notice in result.notices)


def render_junit(report: Report) -> str:
    cases = _Cases()
    for result in report.results:
        for finding in ordered_findings(result):
            cases.finding(report, result, finding)
        for finding in result.suppressed:
            cases.finding(report, result, finding)
        if not result.findings and not result.suppressed:
            cases.clean(result)
    counts = {"tests": str(len(cases.elements)), "failures": str(cases.failures), "errors": "0"}
    root = ElementTree.Element("testsuites", {"name": SUITE, **counts})
    suite = ElementTree.SubElement(
        root, "testsuite",
        {"name": f"{SUITE} (policy {printable(report.policy.name)})", **counts,
         "skipped": str(cases.skipped)},
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (
        ("tool.version", report.tool.version),
        ("policy.name", report.policy.name),
        ("policy.sha256", report.policy.sha256),
        ("fail_on", report.fail_on.value),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=printable(value))
    suite.extend(cases.elements)
    notices = [f"note: {printable(notice)}" for notice in report.notices]
    if notices:
        ElementTree.SubElement(suite, "system-out").text = "\n".join(notices)
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
