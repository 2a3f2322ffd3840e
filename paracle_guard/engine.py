"""The engine: runs the rules that apply to a Subject under a Policy.

``Plan.compile`` resolves a policy once per run (rule overrides, waivers,
custom rules, --ignore); ``Plan.evaluate`` then judges any number of Subjects
and returns one Result each, with suppressions and waivers applied.

The report models are built with ``model_construct``: every value comes from a
Subject, a rule or the policy, already typed (mypy checks the keywords), so a run
that prints text never pays for building their validators. Every list and dict is
given, even empty: for a default factory ``model_construct`` takes the factory's
signature first, and ``inspect.signature(list)`` compiles the tokenizer's patterns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase

from paracle_guard.errors import InputError, did_you_mean
from paracle_guard.location import Location
from paracle_guard.policy.loader import PolicyValidationError, policy_digest
from paracle_guard.policy.models import Policy, Waiver
from paracle_guard.policy.problems import Problem, YamlPath
from paracle_guard.report.models import (
    Finding,
    PolicyRef,
    Report,
    Result,
    RuleInfo,
    SuppressionInfo,
    finding_order,
)
from paracle_guard.rules.base import (
    RETIRED,
    Rule,
    Violation,
    all_rules,
    current_identifier,
    find_rule,
)
from paracle_guard.rules.custom import build_custom_rules
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject, Whole

PARSE_ERROR = "PG901"


@dataclass(frozen=True)
class _ActiveRule:
    rule: Rule
    severity_override: Severity | None


@dataclass(frozen=True)
class _ResolvedWaiver:
    code: str
    waiver: Waiver


@dataclass(frozen=True)
class CatalogueEntry:
    """A rule as a policy sees it: built in or custom, and its severity there (or off)."""

    rule: Rule
    severity: str  # error, warning, info, or off
    custom: bool


class Plan:
    """A policy compiled against the rule registry, ready to judge Subjects."""

    def __init__(
        self,
        policy: Policy,
        active: list[_ActiveRule],
        waivers: list[_ResolvedWaiver],
        ignored: frozenset[str],
        known: frozenset[str],
        today: dt.date,
        catalogue: list[CatalogueEntry],
    ) -> None:
        self.policy = policy
        self._active = active
        self._waivers = waivers
        self._ignored = ignored
        self._known = known
        self._today = today
        self.catalogue = catalogue

    @classmethod
    def compile(
        cls,
        policy: Policy,
        *,
        ignore: Collection[str] = (),
        today: dt.date | None = None,
    ) -> Plan:
        problems: list[Problem] = []
        rules = _all_rules(policy, problems)
        overrides = _severity_overrides(policy, rules, problems)
        waivers = _waivers(policy, rules, problems)
        if problems:
            raise PolicyValidationError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
        active = [
            _ActiveRule(rule=r, severity_override=(
                Severity(overrides[r.code]) if r.code in overrides else None))
            for r in rules
            if overrides.get(r.code) != "off"
        ]
        builtin = {r.code for r in all_rules()}
        catalogue = [CatalogueEntry(r, overrides.get(r.code, r.severity.value),
                                    custom=r.code not in builtin) for r in rules]
        known = frozenset({r.code for r in rules} | {r.name for r in rules} | set(RETIRED))
        return cls(policy, active, waivers, _ignored(ignore, rules), known,
                   today or dt.date.today(), catalogue)

    def policy_warnings(self) -> list[Problem]:
        """What is legal in the policy but probably not meant: waivers and authz exemptions
        that have expired."""
        waivers = [
            _problem(self.policy, ("exceptions", index, "expires"),
                     f"the exception for {waiver.rule} on {waiver.target!r} expired on "
                     f"{waiver.expires}; it no longer applies")
            for index, waiver in self.policy.expired_waivers(self._today)
        ]
        exemptions = [
            _problem(self.policy, ("authz", "exemptions", index, "expires"),
                     f"the authz exemption ({exemption.reason}) expired on "
                     f"{exemption.expires}; it no longer applies")
            for index, exemption in enumerate(self.policy.authz.exemptions)
            if exemption.expired(self._today)
        ]
        return waivers + exemptions

    @property
    def rules(self) -> list[Rule]:
        return [entry.rule for entry in self._active]

    def new_report(self, fail_on: Severity | None = None) -> Report:
        """The empty report every run under this plan fills: the policy, its rules and
        its threshold (``fail_on`` overrides the policy's, as ``--fail-on`` does)."""
        return Report.empty(
            PolicyRef.model_construct(name=self.policy.metadata.name,
                                      sha256=policy_sha256(self.policy)),
            fail_on if fail_on is not None else self.policy.fail_on,
            self.rule_info(),
        )

    def rule_info(self) -> dict[str, RuleInfo]:
        return {
            entry.rule.code: RuleInfo.model_construct(
                code=entry.rule.code,
                name=entry.rule.name,
                severity=entry.severity_override or entry.rule.severity,
                summary=entry.rule.summary,
                fix=entry.rule.fix,
                fixes=dict(entry.rule.fixes.items()),
                rationale=entry.rule.rationale,
                references=list(entry.rule.references),
            )
            for entry in self._active
        }

    def evaluate(self, subject: Subject) -> Result:
        """The findings of ``subject``. A part of a larger target (a container of a Pod)
        gives a result for the whole, its own findings marked with its target; adding
        the parts' results to one Report merges them into one result per whole."""
        whole = subject.whole
        named: Subject | Whole = subject if whole is None else whole
        parts = {} if whole is None else {subject.target: subject.label or subject.target}
        result = Result.model_construct(target=named.target, kind=subject.kind,
                                        label=named.label, metadata=_copied(named.metadata),
                                        parts=parts, findings=[], suppressed=[], notices=[])
        applicable = [entry for entry in self._active
                      if subject.judged and subject.kind in entry.rule.kinds]
        if any(problem.blocking for problem in subject.parse_problems):
            # Input we could not understand is judged only as unparseable: every other
            # rule would be guessing about it, and guesses are false alarms.
            applicable = [entry for entry in applicable if entry.rule.code == PARSE_ERROR]

        for entry in applicable:
            for violation in entry.rule.check(subject, self.policy.controls):
                finding = self._finding(entry, violation, subject)
                suppression = self._suppression(finding, subject)
                if suppression is None:
                    result.findings.append(finding)
                else:
                    suppressed = finding.model_copy(update={"suppression": suppression})
                    result.suppressed.append(suppressed)

        result.notices.extend(subject.notices)
        result.notices.extend(self._unknown_rule_notices(subject))
        result.notices.extend(self._expired_waiver_notices(result.target))
        if whole is not None:
            result.notices.extend(self._expired_waiver_notices(subject.target))
        result.findings.sort(key=finding_order)
        result.suppressed.sort(key=finding_order)
        result.fill_fingerprints()
        return result

    def _finding(self, entry: _ActiveRule, violation: Violation, subject: Subject) -> Finding:
        whole = subject.whole
        part = None if whole is None or whole.owns(violation.location) else subject.target
        return Finding.model_construct(
            rule=entry.rule.code,
            name=entry.rule.name,
            severity=entry.severity_override or violation.severity or entry.rule.severity,
            message=violation.message,
            location=violation.location or Location(path=subject.target),
            fix=violation.fix or entry.rule.fix_for(subject.kind),
            target=part,
        )

    def _suppression(self, finding: Finding, subject: Subject) -> SuppressionInfo | None:
        if finding.rule in self._ignored:
            return SuppressionInfo.model_construct(kind="cli",
                                                   reason="--ignore on the command line")
        if finding.rule != PARSE_ERROR:
            for comment in subject.suppressions:
                if not _names_rule(comment.rules, finding):
                    continue
                if comment.scope == "file" or _covers(comment.first_line, comment.last_line,
                                                      finding.location.line):
                    return SuppressionInfo.model_construct(kind="inline", reason=comment.reason)
        # A waiver for a target covers its findings and those of its parts.
        whole = subject.whole.target if subject.whole is not None else subject.target
        targets = [whole] if finding.target is None else [whole, finding.target]
        for resolved in self._waivers:
            if (
                resolved.code == finding.rule
                and not resolved.waiver.expired(self._today)
                and any(_target_matches(resolved.waiver.target, t) for t in targets)
            ):
                return SuppressionInfo.model_construct(kind="waiver", reason=resolved.waiver.reason)
        return None

    def _unknown_rule_notices(self, subject: Subject) -> list[str]:
        return [
            f"{comment.location}: ignore names unknown rule {identifier!r}; it suppresses nothing"
            for comment in subject.suppressions
            for identifier in comment.rules
            if identifier.upper() not in self._known and identifier.lower() not in self._known
        ]

    def _expired_waiver_notices(self, target: str) -> list[str]:
        return [
            f"exception for {resolved.waiver.rule} on {resolved.waiver.target!r} expired on "
            f"{resolved.waiver.expires}; it no longer applies"
            for resolved in self._waivers
            if resolved.waiver.expired(self._today)
            and _target_matches(resolved.waiver.target, target)
        ]


def _copied(metadata: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    """A Subject's metadata for a Result of its own, as validating it would have copied it."""
    return {key: list(value) if isinstance(value, list) else value
            for key, value in metadata.items()}


# --- compiling a policy -----------------------------------------------------------


def policy_sha256(policy: Policy) -> str:
    """The digest a report and an audit line name the policy by: the loader's, else computed."""
    return policy.sha256 or policy_digest(policy)


def _problem(policy: Policy, path: YamlPath, message: str) -> Problem:
    file, line = policy.locate(path)
    return Problem(file, line, path, message)


def _unknown_rule(identifier: str, rules: list[Rule]) -> str:
    words = [word for rule in rules for word in (rule.code, rule.name)]
    return f"no rule has the code or name {identifier!r}{did_you_mean(identifier, words)}"


def _all_rules(policy: Policy, problems: list[Problem]) -> list[Rule]:
    """The built-in rules and the policy's custom ones, which may not reuse a code or name."""
    builtin = all_rules()
    custom = build_custom_rules(policy.custom_rules)
    for index, declared in enumerate(custom):
        if declared.code in RETIRED or declared.name in RETIRED:
            problems.append(_problem(
                policy, ("custom_rules", index),
                f"{declared.code} {declared.name} reuses the retired rule "
                f"{RETIRED.get(declared.code) or RETIRED[declared.name]}'s old code or name"))
            continue
        for other in builtin + custom[:index]:
            if declared.code == other.code or declared.name == other.name:
                problems.append(_problem(
                    policy, ("custom_rules", index),
                    f"{declared.code} {declared.name} clashes with rule {other.code} "
                    f"{other.name}"))
                break
    return builtin + custom


def _severity_overrides(
    policy: Policy, rules: list[Rule], problems: list[Problem]
) -> dict[str, str]:
    """Rule code -> the severity (or "off") the policy's ``rules:`` section sets."""
    overrides: dict[str, str] = {}
    for key, override in policy.rules.items():
        found = find_rule(key, rules)
        if found is None:
            problems.append(_problem(policy, ("rules", key), _unknown_rule(key, rules)))
        elif override.severity is not None:
            overrides[found.code] = override.severity
    return overrides


def _waivers(policy: Policy, rules: list[Rule], problems: list[Problem]) -> list[_ResolvedWaiver]:
    waivers = []
    for index, waiver in enumerate(policy.exceptions):
        found = find_rule(waiver.rule, rules)
        if found is None:
            problems.append(_problem(policy, ("exceptions", index, "rule"),
                                     _unknown_rule(waiver.rule, rules)))
            continue
        waivers.append(_ResolvedWaiver(code=found.code, waiver=waiver))
    return waivers


def _ignored(ignore: Collection[str], rules: list[Rule]) -> frozenset[str]:
    """Codes named by --ignore (repeatable, or comma-separated)."""
    ignored = set()
    for identifier in ignore:
        for part in filter(None, (p.strip() for p in identifier.split(","))):
            found = find_rule(part, rules)
            if found is None:
                raise InputError(f"--ignore {part}: {_unknown_rule(part, rules)}")
            ignored.add(found.code)
    return frozenset(ignored)


def _names_rule(identifiers: list[str], finding: Finding) -> bool:
    for identifier in identifiers:
        wanted = current_identifier(identifier)
        if wanted.upper() == finding.rule or wanted.lower() == finding.name:
            return True
    return False


def _covers(first: int | None, last: int | None, line: int | None) -> bool:
    if first is None or line is None:
        return False
    return first <= line <= (last if last is not None else first)


def _target_matches(pattern: str, target: str) -> bool:
    """Glob on the target; a relative pattern also matches the tail of an absolute path."""
    target = target.replace("\\", "/")
    return fnmatchcase(target, pattern) or (
        not pattern.startswith("/") and fnmatchcase(target, "*/" + pattern)
    )

