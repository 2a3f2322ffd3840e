"""What a rule is, and the registry every rule module adds itself to.

A rule is metadata plus a pure ``check(subject, controls)`` that yields
Violations. It never reads files, calls Docker or prints; the engine turns its
Violations into Findings and applies severities, suppressions and waivers.

A rule speaks the reader's language: its ``fixes`` give the fix worded for each
kind of subject it fires on (``--cap-drop ALL`` for a container, ``cap_drop:
[ALL]`` for compose, ``capabilities.drop: [ALL]`` for Kubernetes), beside the
generic ``fix``; a check words its messages for ``subject.kind`` with
``worded``. Both live with the rule, never in a table elsewhere.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from paracle_guard.cel import CelCheck
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
# A rule's CEL twin for the controls a policy sets; None: nothing to enforce under them.
CelFn = Callable[[Controls], CelCheck | None]


@dataclass(frozen=True)
class Admission:
    """How the API server enforces a rule at admission (``policy export --format kubernetes``).

    ``pod`` judges a Pod; ``pod_template`` the pod template of an Agent Sandbox
    ``Sandbox`` or ``SandboxTemplate`` (None: the Pod's expression, read at
    ``spec.podTemplate``). Validations are listed in rule-code order;
    ``listed_after`` places this rule's right after another rule's instead (only to
    keep the order earlier releases exported).
    """

    pod: CelFn | None = None
    pod_template: CelFn | None = None
    listed_after: str | None = None
# Text worded for each kind of subject; a kind left out reads the default.
ByKind = Mapping[SubjectKind, str]

_NO_FIXES: ByKind = MappingProxyType({})


def worded(kind: SubjectKind, texts: ByKind, default: str) -> str:
    """``texts[kind]``, or ``default`` when the kind has no wording of its own."""
    return texts.get(kind, default)


@dataclass(frozen=True)
class Rule:
    code: str  # stable: PG101
    name: str  # stable kebab-case: root-user
    severity: Severity
    kinds: frozenset[SubjectKind]
    summary: str  # one line: what it finds
    fix: str  # how to fix it, in general
    check: CheckFn
    rationale: str = ""
    references: tuple[str, ...] = field(default_factory=tuple)
    # The fix worded for one kind of subject (may hold a short snippet over lines).
    fixes: ByKind = field(default_factory=lambda: _NO_FIXES, compare=False)
    # Its translation for Kubernetes admission control, when a Pod spec can show it.
    admission: Admission | None = field(default=None, compare=False)

    def fix_for(self, kind: SubjectKind) -> str:
        return worded(kind, self.fixes, self.fix)


_REGISTRY: dict[str, Rule] = {}
# Codes and names a rule had before it was merged into another: policies, waivers
# and --ignore that name them keep working.
RETIRED = MappingProxyType({
    "PG807": "PG501", "unpinned-image": "PG501",
    "PG809": "PG502", "untrusted-image-registry": "PG502",
})

# Modules of this package that declare no rules: every other one is a control family,
# and importing it registers its rules (a new family module needs no list of its own).
NOT_FAMILIES = frozenset({"base", "custom"})


@functools.cache
def family_modules() -> tuple[str, ...]:
    """The control family modules of ``paracle_guard.rules``, by name."""
    package = importlib.import_module(__package__ or "paracle_guard.rules")
    return tuple(sorted(
        module.name for module in pkgutil.iter_modules(package.__path__)
        if not module.ispkg and module.name not in NOT_FAMILIES
    ))


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
    fixes: ByKind | None = None,
    admission: Admission | None = None,
) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as the check of a rule."""

    judged = frozenset(kinds)

    def register(check: CheckFn) -> CheckFn:
        if code in _REGISTRY or any(r.name == name for r in _REGISTRY.values()):
            raise RuntimeError(f"rule {code} {name} registered twice")
        if code in RETIRED or name in RETIRED:
            raise RuntimeError(f"rule {code} {name} reuses a retired code or name")
        unknown = set(fixes or {}) - judged
        if unknown:
            raise RuntimeError(f"rule {code} words a fix for kinds it never judges: {unknown}")
        if admission is not None and "k8s" not in judged:
            raise RuntimeError(f"rule {code} has an admission translation but never judges k8s")
        _REGISTRY[code] = Rule(
            code=code,
            name=name,
            severity=severity,
            kinds=judged,
            summary=summary,
            fix=fix,
            check=check,
            rationale=rationale,
            references=tuple(references),
            fixes=MappingProxyType(dict(fixes or {})),
            admission=admission,
        )
        return check

    return register


def all_rules() -> list[Rule]:
    """Every built-in rule, ordered by code."""
    for family in family_modules():
        importlib.import_module(f"{__package__}.{family}")
    return sorted(_REGISTRY.values(), key=lambda r: r.code)


def current_identifier(identifier: str) -> str:
    """``identifier``, or the code of the rule a retired code or name was merged into."""
    return RETIRED.get(identifier.upper(), RETIRED.get(identifier.lower(), identifier))


def find_rule(identifier: str, rules: Iterable[Rule] | None = None) -> Rule | None:
    """A rule by code (case-insensitive) or by name, a retired one's by its successor."""
    wanted = current_identifier(identifier.strip())
    for candidate in rules if rules is not None else all_rules():
        if candidate.code.upper() == wanted.upper() or candidate.name == wanted.lower():
            return candidate
    return None
