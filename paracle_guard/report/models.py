"""The Report: what a run found, in the shape ``schemas/report.schema.json`` publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paracle_guard.location import Location
from paracle_guard.severity import Severity


class SuppressionInfo(BaseModel):
    # inline: a "# paracle-guard ignore" comment; waiver: a policy exception;
    # cli: --ignore on the command line.
    kind: Literal["inline", "waiver", "cli"]
    reason: str | None = None


class Finding(BaseModel):
    rule: str
    name: str
    severity: Severity
    message: str
    location: Location
    fix: str | None = None
    suppression: SuppressionInfo | None = None


class Result(BaseModel):
    target: str
    kind: str
    findings: list[Finding] = Field(default_factory=list)
    # Findings that a suppression, waiver or --ignore took out of the count.
    suppressed: list[Finding] = Field(default_factory=list)
    # Things the user should know that are not findings (an expired waiver...).
    notices: list[str] = Field(default_factory=list)
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)


class ToolInfo(BaseModel):
    name: str = "paracle-guard"
    version: str


class PolicyRef(BaseModel):
    name: str
    sha256: str


class Summary(BaseModel):
    error: int = 0
    warning: int = 0
    info: int = 0


class RuleInfo(BaseModel):
    """Rule metadata carried for reporters that describe rules (SARIF)."""

    code: str
    name: str
    severity: Severity
    summary: str
    fix: str
    rationale: str = ""
    references: list[str] = Field(default_factory=list)


class Report(BaseModel):
    tool: ToolInfo
    policy: PolicyRef
    fail_on: Severity
    results: list[Result] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    rules: dict[str, RuleInfo] = Field(default_factory=dict, exclude=True)

    def add(self, result: Result) -> None:
        self.results.append(result)
        for finding in result.findings:
            setattr(self.summary, finding.severity.value,
                    getattr(self.summary, finding.severity.value) + 1)

    @property
    def failed(self) -> bool:
        """True when any finding is at or above ``fail_on``."""
        return any(
            finding.severity.at_least(self.fail_on)
            for result in self.results
            for finding in result.findings
        )
