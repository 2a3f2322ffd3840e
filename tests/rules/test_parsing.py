"""PG901 parse-error and PG902 suppression-without-reason."""

from __future__ import annotations

import pytest

from paracle_guard.engine import Plan
from paracle_guard.policy.models import Policy
from paracle_guard.subject import ParseProblem, Subject, SubjectKind, Suppression
from tests.builders import check, dockerfile, image, loc


def _problem(message: str, line: int) -> ParseProblem:
    return ParseProblem(message=message, location=loc(line))


def _suppression(reason: str | None, line: int = 3, scope: str = "line") -> Suppression:
    return Suppression(
        rules=["PG101", "denied-package"],
        reason=reason,
        scope=scope,
        first_line=line + 1 if scope == "line" else None,
        last_line=line + 1 if scope == "line" else None,
        location=loc(line),
    )


def test_each_parse_problem_is_a_finding_at_its_line() -> None:
    subject = dockerfile(
        parse_problems=[_problem("unknown instruction FORM", 1), _problem("no FROM", 2)]
    )
    found = check("PG901", subject)
    assert [(v.message, v.location) for v in found] == [
        ("unknown instruction FORM", loc(1)),
        ("no FROM", loc(2)),
    ]


def test_parse_errors_apply_to_every_kind() -> None:
    subject = image(parse_problems=[_problem("not a docker save archive", 1)])
    assert len(check("PG901", subject)) == 1


def test_a_clean_parse_has_no_findings() -> None:
    assert check("PG901", dockerfile()) == []


def test_suppression_without_reason() -> None:
    subject = dockerfile(suppressions=[_suppression(None, line=3), _suppression("  ", line=8)])
    found = check("PG902", subject)
    assert [v.location for v in found] == [loc(3), loc(8)]
    assert found[0].message == "ignore of PG101, denied-package has no reason"


def test_file_scope_suppressions_need_a_reason_too() -> None:
    assert len(check("PG902", dockerfile(suppressions=[_suppression(None, scope="file")]))) == 1


def test_suppression_with_a_reason_passes() -> None:
    subject = dockerfile(suppressions=[_suppression("the dev image needs it")])
    assert check("PG902", subject) == []


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("dockerfile", "docker build refuses it"),
        ("compose", "docker compose refuses it"),
        ("k8s", "kubectl apply refuses it"),
        ("image", "docker save archive"),
        ("container", "docker inspect"),
    ],
)
def test_the_fix_is_worded_for_the_kind_of_input(kind: SubjectKind, words: str) -> None:
    subject = Subject(kind=kind, target="x", parse_problems=[_problem("bad", 1)])
    (finding,) = Plan.compile(Policy()).evaluate(subject).findings
    assert finding.fix is not None and words in finding.fix
    assert "Docker would refuse" not in finding.fix


def test_a_problem_with_its_own_advice_keeps_it() -> None:
    problem = ParseProblem(message="line 2 is not valid UTF-8 text", location=loc(2),
                           fix="Save the Dockerfile as UTF-8")
    (violation,) = check("PG901", dockerfile(parse_problems=[problem]))
    assert violation.fix == "Save the Dockerfile as UTF-8"
