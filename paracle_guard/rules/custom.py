"""Rules declared in a policy's ``custom_rules``: a regular expression over instructions.

They let a team add its own checks without forking: for example forbidding
``apt-get upgrade`` in RUN, or requiring that ``COPY`` never targets ``/etc``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from paracle_guard.policy.models import Controls, CustomRule
from paracle_guard.rules.base import CheckFn, Rule, Violation
from paracle_guard.subject import Subject


def build_custom_rules(declared: list[CustomRule]) -> list[Rule]:
    return [
        Rule(
            code=spec.code,
            name=spec.name,
            severity=spec.severity,
            kinds=frozenset({"dockerfile"}),
            summary=spec.message,
            fix=spec.fix or "see the policy that declares this rule",
            check=_matcher(spec),
            rationale="declared in the policy's custom_rules",
        )
        for spec in declared
    ]


def _matcher(spec: CustomRule) -> CheckFn:
    pattern = re.compile(spec.pattern)
    keyword = spec.instruction.upper() if spec.instruction else None

    def check(subject: Subject, controls: Controls) -> Iterator[Violation]:
        for instruction in subject.instructions:
            if not instruction.final:
                continue
            if keyword is not None and instruction.keyword != keyword:
                continue
            if pattern.search(instruction.value):
                yield Violation(message=spec.message, location=instruction.location)

    return check
