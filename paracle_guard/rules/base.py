"""What a rule is, and the registry every rule module adds itself to.

A rule is metadata plus a pure ``check(subject, controls)`` that yields
Violations. It never reads files, calls Docker or prints; the engine turns its
Violations into Findings and applies severities, suppressions and waivers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from paracle_guard.location import Location
from paracle_guard.policy.models import Controls
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject, SubjectKind


@dataclass(frozen=True)
class Violation:
    message: str
    location: Location | None = None  # None: the subject's target as a whole
    # Overrides the rule's default severity (e.g. the policy's severity for a denied package).
    severity: Severity | None = None
    fix: str | None = None  # overrides the rule's generic fix for this case


CheckFn = Callable[[Subject, Controls], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    code: str  # stable: PG101
    name: str  # stable kebab-case: root-user
    severity: Severity
    kinds: frozenset[SubjectKind]
    summary: str  # one line: what it finds
    fix: str  # one line: how to fix it
    check: CheckFn
    rationale: str = ""
    references: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, Rule] = {}

# The family modules; importing one registers its rules.
FAMILIES = (
    "user",
    "filesystem",
    "capabilities",
    "privileges",
    "packages",
    "base_image",
    "secrets",
    "network",
    "resources",
    "parsing",
    "kubernetes",
)


def rule(
    *,
    code: str,
    name: str,
    severity: Severity,
    kinds: Iterable[SubjectKind],
    summary: str,
    fix: str,
    rationale: str = "",
    references: Iterable[str] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as the check of a rule."""

    def register(check: CheckFn) -> CheckFn:
        if code in _REGISTRY or any(r.name == name for r in _REGISTRY.values()):
            raise RuntimeError(f"rule {code} {name} registered twice")
        _REGISTRY[code] = Rule(
            code=code,
            name=name,
            severity=severity,
            kinds=frozenset(kinds),
            summary=summary,
            fix=fix,
            check=check,
            rationale=rationale,
            references=tuple(references),
        )
        return check

    return register


def all_rules() -> list[Rule]:
    """Every built-in rule, ordered by code."""
    for family in FAMILIES:
        importlib.import_module(f"paracle_guard.rules.{family}")
    return sorted(_REGISTRY.values(), key=lambda r: r.code)


def find_rule(identifier: str, rules: Iterable[Rule] | None = None) -> Rule | None:
    """A rule by code (case-insensitive) or by name."""
    wanted = identifier.strip()
    for candidate in rules if rules is not None else all_rules():
        if candidate.code.upper() == wanted.upper() or candidate.name == wanted.lower():
            return candidate
    return None
