"""Rules about the input itself: files we cannot parse, suppressions we cannot trust."""

from __future__ import annotations

from collections.abc import Iterator

from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import ALL_KINDS, Subject


@rule(
    code="PG901",
    name="parse-error",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The input could not be parsed, so nothing else in it can be trusted",
    fix="Fix the input at the reported line",
    # What to do depends on what was read: the tool that would refuse it too.
    fixes={
        "dockerfile": "Fix the Dockerfile at the reported line; docker build refuses it too",
        "compose": "Fix the compose file at the reported line; docker compose refuses it too",
        "k8s": "Fix the manifest at the reported line; kubectl apply refuses it too",
        "image": (
            "Check the image input: a complete docker save archive, or a reference the "
            "engine can inspect"
        ),
        "container": (
            "The inspect data holds values the engine never stores: check where it came "
            "from, or inspect the container again with docker inspect"
        ),
    },
    rationale=(
        "A file the checker cannot read is a file nothing has checked. It fails the run "
        "rather than passing silently."
    ),
)
def parse_error(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for problem in subject.parse_problems:
        # A problem with advice of its own (a file that is not UTF-8) keeps it.
        yield Violation(message=problem.message, location=problem.location, fix=problem.fix)


@rule(
    code="PG902",
    name="suppression-without-reason",
    severity=Severity.WARNING,
    # Only a Dockerfile's reader reads inline ignore comments.
    kinds=("dockerfile",),
    summary="An inline ignore comment gives no reason",
    fix='Add reason="..." to the comment: say why this finding is acceptable here',
    rationale="A waiver nobody can explain is a waiver nobody can review or retire.",
)
def suppression_without_reason(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for comment in subject.suppressions:
        if not (comment.reason or "").strip():
            yield Violation(
                message=f"ignore of {', '.join(comment.rules)} has no reason",
                location=comment.location,
            )
