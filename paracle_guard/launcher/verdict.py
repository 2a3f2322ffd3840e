"""How a launch judges what it sees: the rules' verdicts, and the launcher's own proofs.

Findings from the policy's rules refuse at or above ``fail_on``, as in every
other command. Findings from the launcher's own proofs (a mount that would
land, or landed, away from its target; what the kernel shows after start)
refuse whatever the policy waives: they are the launcher's promise, not a
preference. Both go into the one report the refusal carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from paracle_guard.engine import Plan
from paracle_guard.launcher.backend import CheckedImage, Observation
from paracle_guard.launcher.refusal import PolicyViolation
from paracle_guard.launcher.runspec import RunSpec
from paracle_guard.location import Location
from paracle_guard.report.models import Finding, Report, Result, SuppressionInfo
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject


def judge(report: Report, result: Result, what: str, problems: Sequence[str] = ()) -> None:
    """Add ``result`` to the report; refuse when it fails the policy or ``problems`` exist."""
    report.add(result)
    failing = [f for f in result.findings if f.severity.at_least(report.fail_on)]
    if not failing and not problems:
        return
    reasons = [f"{f.rule} {f.name}: {f.message}" for f in failing] + list(problems)
    raise PolicyViolation(
        f"refused: {what}: " + "; ".join(reasons), findings=failing, report=report
    )


def launcher_finding(code: str, message: str, where: str) -> Finding:
    """A finding the launcher's own proof makes, named after the rule whose promise broke."""
    from paracle_guard.rules.base import find_rule

    found = find_rule(code)
    return Finding(rule=code, name=found.name if found else code, severity=Severity.ERROR,
                   message=message, location=Location(path=where),
                   fix=found.fix if found else "")


def refuse(report: Report, target: str, findings: list[Finding], what: str) -> None:
    """Refuse on the launcher's own findings: no waiver or severity can excuse them."""
    if not findings:
        return
    report.results = [r for r in report.results if r.target != target]
    report.add(Result(target=target, kind="container", findings=findings))
    raise PolicyViolation(
        f"refused: {what}: " + "; ".join(f"{f.rule} {f.name}: {f.message}" for f in findings),
        findings=findings, report=report)


def prove_mount_targets(image: CheckedImage, spec: RunSpec, report: Report) -> None:
    """Every mount of the RunSpec lands where it is declared, by the image's own content."""
    tree = image.subject.image_tree if image.subject is not None else None
    if tree is None:
        return
    findings = []
    for target, is_dir in spec.mount_targets():
        problem = tree.mount_target_problem(target, directory=is_dir)
        if problem is not None:
            findings.append(launcher_finding(
                "PG206", f"mount target {target}: {problem.message}", problem.path))
    refuse(report, f"mount targets of {image.ref}", findings, f"image {image.ref}")


def judge_observation(
    plan: Plan, report: Report, spec: RunSpec, seen: Observation, when: str
) -> None:
    """Judge what the backend saw: the RunSpec differences, the rules, the host's proof."""
    for subject in seen.subjects:
        result = _waive_file_secrets(plan.evaluate(subject), subject, spec)
        # A re-inspect replaces the earlier verdict on the same container.
        report.results = [r for r in report.results if r.target != subject.target]
        judge(report, result, f"{subject.target} ({when})", seen.problems)
    if seen.host is not None:
        where = f"/proc/{seen.host.pid}"
        refuse(report, f"host:{spec.name}",
               [launcher_finding(p.code, p.message, where) for p in seen.proof],
               f"{spec.name} as the kernel runs it ({when})")


def _waive_file_secrets(result: Result, subject: Subject, spec: RunSpec) -> Result:
    """PG601 on the variables that came from a 0600 --env-file: the way the launcher advises."""
    if not spec.file_secret_names:
        return result
    from_files = {variable.location for variable in subject.env
                  if variable.name in spec.file_secret_names}
    waived = [f for f in result.findings if f.rule == "PG601" and f.location in from_files]
    if not waived:
        return result
    reason = "from an --env-file only its owner can read, as the launcher advises"
    result.findings = [f for f in result.findings if f not in waived]
    result.suppressed.extend(f.model_copy(update={"suppression": SuppressionInfo(
        kind="waiver", reason=reason)}) for f in waived)
    return result
