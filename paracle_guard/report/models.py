"""The Report: what a run found, in the shape ``schemas/report.schema.json`` publishes.

Every field here (except ``Report.rules``) is part of the JSON report, and
``tests/report/test_json_format.py`` keeps the schema's keys equal to these
models' fields: a field added here needs its description there.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from paracle_guard import __version__
from paracle_guard.location import Location
from paracle_guard.severity import Severity

SuppressionKind = Literal["inline", "waiver", "cli", "baseline"]
SUPPRESSION_KINDS: tuple[SuppressionKind, ...] = ("inline", "waiver", "cli", "baseline")

# Subjects whose finding paths lie inside an image's filesystem rather than on
# disk beside the checkout; reporters must not present those paths as local files.
IMAGE_KINDS = frozenset({"image", "container"})


class _ReportModel(BaseModel):
    # Validators and serializers are built on first use: the engine builds reports from
    # values it made itself (``model_construct``), so a text report never needs them;
    # JSON, SARIF and a baseline read back build them then.
    model_config = ConfigDict(defer_build=True)


class SuppressionInfo(_ReportModel):
    """Why a finding was taken out of the count."""

    # inline: a "# paracle-guard ignore" comment; waiver: a policy exception;
    # cli: --ignore on the command line; baseline: already in --baseline's report.
    kind: SuppressionKind
    reason: str | None = None


class Finding(_ReportModel):
    rule: str  # stable code: PG101
    name: str  # stable kebab-case name: root-user
    severity: Severity
    message: str
    location: Location
    fix: str | None = None
    # Set only on findings in ``Result.suppressed``.
    suppression: SuppressionInfo | None = None
    # The part of the result's target this finding is about (a container of a Pod:
    # ``FILE#Kind/name/container``); None when it is about the target as a whole.
    target: str | None = None

    # Identifies the finding across runs, whatever line it moves to (finding_fingerprint).
    fingerprint: str = ""

    def same_as(self, other: Finding) -> bool:
        """The same rule, about the same thing, at the same place, saying the same."""
        return (self.rule, self.target, self.location, self.message) == (
            other.rule, other.target, other.location, other.message)


def finding_order(finding: Finding) -> tuple[int, str, str]:
    """The order findings are kept in: by line, then rule, then message."""
    return (finding.location.line or 0, finding.rule, finding.message)


_LINE_NUMBER = re.compile(r"\bline \d+")


def finding_fingerprint(
    rule: str, target: str, path: str, message: str, part: str | None = None
) -> str:
    """What stays the same about a finding when lines are added above it: its rule, its
    target (and the part of it, a Pod's container), the file it is in and its message
    (which quotes the offending text), with line numbers in the message masked. Line
    numbers themselves are left out."""
    masked = _LINE_NUMBER.sub("line #", message)
    key = "\0".join((rule, target, part or "", path, masked))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# What the summary counts a result as, by kind: "in 1 file, 4 services".
TARGET_NOUNS = {"compose": "service", "k8s": "workload", "image": "image",
                "container": "container"}


class Result(_ReportModel):
    """Everything found in one target (a Dockerfile, an image, a compose service, a Pod...)."""

    target: str
    kind: str
    findings: list[Finding] = Field(default_factory=list)
    # Findings that a suppression, waiver or --ignore took out of the count.
    suppressed: list[Finding] = Field(default_factory=list)
    # Things the user should know that are not findings (an expired waiver...).
    notices: list[str] = Field(default_factory=list)
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
    # What a report calls the target when its name alone does not say: "service web",
    # "Deployment web"; None for files and images.
    label: str | None = None
    # The parts of the target that findings can be about, each with what to call it:
    # {"deploy.yaml#Deployment/web/app": "container app"}.
    parts: dict[str, str] = Field(default_factory=dict)

    @property
    def in_image(self) -> bool:
        """True when finding paths name files inside an image, not files on disk."""
        return self.kind in IMAGE_KINDS

    @property
    def files(self) -> list[str]:
        """The files on disk this result was read from (none for images and containers)."""
        if self.in_image:
            return []
        listed = self.metadata.get("files")
        if isinstance(listed, list) and listed:
            return listed
        single = self.metadata.get("file")
        return [single] if isinstance(single, str) else [self.target]

    @property
    def counted_as(self) -> str | None:
        """What the summary counts this result as besides its files, if anything."""
        if self.kind in ("compose", "k8s") and self.label is None:
            return None  # a file that could not be read as a project or has no workload
        return TARGET_NOUNS.get(self.kind)

    def absorb(self, other: Result) -> None:
        """Take in another result for the same target, each finding once.

        A finding one part of a Pod reported and another suppressed stays counted:
        a waiver must cover every copy of it to take it out (fail closed).
        """
        for finding in other.findings:
            if not any(finding.same_as(known) for known in self.findings):
                self.findings.append(finding)
        for finding in other.suppressed:
            if not any(finding.same_as(known) for known in (*self.findings, *self.suppressed)):
                self.suppressed.append(finding)
        self.suppressed = [s for s in self.suppressed
                           if not any(s.same_as(f) for f in self.findings)]
        self.notices.extend(n for n in other.notices if n not in self.notices)
        self.parts.update(other.parts)
        self.findings.sort(key=finding_order)
        self.suppressed.sort(key=finding_order)

    @model_validator(mode="after")
    def _fingerprinted(self) -> Result:
        self.fill_fingerprints()
        return self

    def fill_fingerprints(self) -> None:
        """Give every finding that has none its fingerprint (``finding_fingerprint``)."""
        for finding in (*self.findings, *self.suppressed):
            if not finding.fingerprint:
                finding.fingerprint = finding_fingerprint(
                    finding.rule, self.target, finding.location.path, finding.message,
                    finding.target)


class ToolInfo(_ReportModel):
    name: str = "paracle-guard"
    version: str


class PolicyRef(_ReportModel):
    name: str
    sha256: str


class Summary(_ReportModel):
    """Unsuppressed findings per severity."""

    error: int = 0
    warning: int = 0
    info: int = 0


class RuleInfo(_ReportModel):
    """Rule metadata carried for reporters that describe rules (SARIF)."""

    code: str
    name: str
    severity: Severity  # the rule's severity under this policy (after overrides)
    summary: str
    fix: str
    # The fix worded for one kind of target, where the rule has one: {"k8s": "..."}.
    fixes: dict[str, str] = Field(default_factory=dict)
    rationale: str = ""
    references: list[str] = Field(default_factory=list)


class Report(_ReportModel):
    tool: ToolInfo
    policy: PolicyRef
    fail_on: Severity
    results: list[Result] = Field(default_factory=list)
    # Metadata of the rules the run could report; reporters look codes up here.
    # Kept out of the JSON report: it describes the tool, not this run's findings.
    rules: dict[str, RuleInfo] = Field(default_factory=dict, exclude=True)

    @classmethod
    def empty(cls, policy: PolicyRef, fail_on: Severity,
              rules: dict[str, RuleInfo] | None = None) -> Report:
        """A report of this paracle-guard version with no results yet, for a run to fill.

        ``Plan.new_report`` builds it from a compiled policy: prefer that.
        """
        return cls.model_construct(tool=ToolInfo.model_construct(version=__version__),
                                   policy=policy, fail_on=fail_on, results=[],
                                   rules=dict(rules or {}))

    def add(self, result: Result) -> None:
        """Add a result; one for a target already here is merged into it (a Pod's
        containers are judged one by one and reported as the one Pod)."""
        result.fill_fingerprints()
        for known in self.results:
            if (known.target, known.kind) == (result.target, result.kind):
                known.absorb(result)
                return
        self.results.append(result)

    # Derived from ``results`` rather than stored, so a Report built in one go
    # (or loaded back from JSON) can never carry counts that disagree with it.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> Summary:
        counts = Counter(
            finding.severity.value for result in self.results for finding in result.findings
        )
        return Summary.model_construct(error=counts["error"], warning=counts["warning"],
                                       info=counts["info"])

    @property
    def failed(self) -> bool:
        """True when any finding is at or above ``fail_on``."""
        return any(
            finding.severity.at_least(self.fail_on)
            for result in self.results
            for finding in result.findings
        )

    @property
    def notices(self) -> list[str]:
        """Every result's notices once each, in order: one expired waiver that
        matches a thousand targets is one thing for the user to know."""
        return list(dict.fromkeys(n for result in self.results for n in result.notices))

    @property
    def suppressed_total(self) -> int:
        return sum(len(result.suppressed) for result in self.results)

    @property
    def suppressed_counts(self) -> dict[SuppressionKind, int]:
        """Suppressed findings per kind of suppression, kinds with none left out."""
        counts = Counter(
            finding.suppression.kind
            for result in self.results
            for finding in result.suppressed
            if finding.suppression is not None
        )
        return {kind: counts[kind] for kind in SUPPRESSION_KINDS if counts[kind]}
