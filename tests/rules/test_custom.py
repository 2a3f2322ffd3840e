"""Rules declared in a policy's custom_rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paracle_guard.policy.models import Controls, CustomRule
from paracle_guard.rules.custom import build_custom_rules
from paracle_guard.severity import Severity
from paracle_guard.subject import Instruction, Subject
from tests.builders import dockerfile, instruction, loc


def _rule(**fields: object) -> CustomRule:
    declared = {"code": "ACME1", "name": "no-upgrade", "message": "do not upgrade", **fields}
    return CustomRule.model_validate(declared)


def _violations(spec: CustomRule, subject: Subject) -> list[tuple[str, int | None]]:
    (built,) = build_custom_rules([spec])
    return [
        (v.message, v.location.line if v.location else None)
        for v in built.check(subject, Controls())
    ]


def test_metadata_comes_from_the_policy() -> None:
    (built,) = build_custom_rules(
        [_rule(severity="error", fix="use a newer base image", pattern="upgrade")]
    )
    assert (built.code, built.name, built.severity) == ("ACME1", "no-upgrade", Severity.ERROR)
    assert built.kinds == frozenset({"dockerfile"})
    assert built.summary == "do not upgrade"
    assert built.fix == "use a newer base image"


def test_default_fix_points_at_the_policy() -> None:
    (built,) = build_custom_rules([_rule(pattern="x")])
    assert "policy" in built.fix
    assert built.severity is Severity.WARNING


def _instructions(*items: Instruction) -> Subject:
    return dockerfile(instructions=list(items))


def test_pattern_matches_instruction_values() -> None:
    subject = _instructions(
        instruction("RUN", "apt-get update && apt-get upgrade -y", line=3),
        instruction("RUN", "apt-get install -y curl", line=4),
        instruction("LABEL", "note=upgrade later", line=5),
    )
    assert _violations(_rule(pattern=r"apt(-get)? (dist-)?upgrade"), subject) == [
        ("do not upgrade", 3)
    ]
    assert _violations(_rule(pattern="upgrade"), subject) == [
        ("do not upgrade", 3),
        ("do not upgrade", 5),
    ]


def test_instruction_filter() -> None:
    subject = _instructions(
        instruction("COPY", "app.conf /etc/app.conf", line=2),
        instruction("RUN", "cp x /etc/y", line=3),
    )
    assert _violations(_rule(instruction="COPY", pattern=r"\s/etc/"), subject) == [
        ("do not upgrade", 2)
    ]


def test_builder_stages_are_not_matched() -> None:
    subject = _instructions(instruction("RUN", "apt-get upgrade -y", final=False))
    assert _violations(_rule(pattern="upgrade"), subject) == []


def test_location_is_the_instruction() -> None:
    subject = _instructions(instruction("RUN", "apt-get upgrade", line=7))
    (built,) = build_custom_rules([_rule(pattern="upgrade")])
    (violation,) = built.check(subject, Controls())
    assert violation.location == loc(7)


@pytest.mark.parametrize(
    "fields",
    [
        {"pattern": "("},
        {"pattern": "x", "code": "pg-1"},
        {"pattern": "x", "name": "NoUpgrade"},
        {"pattern": "x", "instruction": "EXPLODE"},
    ],
)
def test_invalid_declarations_are_rejected(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        _rule(**fields)
