from __future__ import annotations

import json
from collections.abc import Callable

from paracle_guard.location import Location
from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.severity import Severity


def _warning(line: int) -> Finding:
    return Finding(
        rule="PG401",
        name="install-recommends",
        severity=Severity.WARNING,
        message="m",
        location=Location(path="Dockerfile", line=line),
    )


def test_summary_counts_unsuppressed_findings_per_severity(report: Report) -> None:
    summary = report.summary
    assert (summary.error, summary.warning, summary.info) == (3, 2, 1)


def test_summary_follows_results_however_they_were_added(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    report.add(Result(target="a", kind="dockerfile", findings=[_warning(1)]))
    # Appending directly, as a caller building results in place might.
    report.results[0].findings.append(_warning(2))
    assert report.summary.warning == 2


def test_failed_compares_findings_with_fail_on(make_report: Callable[..., Report]) -> None:
    report = make_report(fail_on=Severity.ERROR)
    report.add(Result(target="a", kind="dockerfile", findings=[_warning(1)]))
    assert not report.failed
    report.fail_on = Severity.WARNING
    assert report.failed


def test_suppressed_findings_never_fail_a_run(make_report: Callable[..., Report]) -> None:
    report = make_report(fail_on=Severity.INFO)
    report.add(Result(target="a", kind="dockerfile", suppressed=[_warning(1)]))
    assert not report.failed
    assert report.summary.warning == 0


def test_notices_appear_once_each_in_order(report: Report) -> None:
    # The sample carries the same expired-waiver notice on two targets.
    assert sum(len(result.notices) for result in report.results) == 2
    assert len(report.notices) == 1
    assert report.notices[0].startswith("exception for denied-package")


def test_suppressed_counts_by_kind(report: Report) -> None:
    assert report.suppressed_total == 3
    assert report.suppressed_counts == {"inline": 1, "waiver": 1, "cli": 1}


def test_rules_stay_out_of_the_dump_and_the_dump_reads_back(report: Report) -> None:
    dumped = report.model_dump(mode="json")
    assert "rules" not in dumped
    assert dumped["summary"] == {"error": 3, "warning": 2, "info": 1}
    again = Report.model_validate_json(json.dumps(dumped))
    assert again.results == report.results
    assert again.summary == report.summary


def test_image_kinds_are_in_image(report: Report) -> None:
    assert [result.in_image for result in report.results] == [False, False, False, True]


def test_results_for_one_target_merge_each_finding_once(
        make_report: Callable[..., Report]) -> None:
    from paracle_guard.report.models import SuppressionInfo

    report = make_report()
    pod = "deploy.yaml#Deployment/web"
    waived = _warning(3).model_copy(update={"suppression": SuppressionInfo(kind="waiver")})
    report.add(Result(target=pod, kind="k8s", label="Deployment web", findings=[_warning(3)],
                      parts={f"{pod}/init": "container init"}))
    report.add(Result(target=pod, kind="k8s", label="Deployment web", suppressed=[waived],
                      findings=[_warning(3), _warning(9)], parts={f"{pod}/app": "container app"}))
    (merged,) = report.results
    # One copy counted stays counted: a waiver must cover every copy (fail closed).
    assert [f.location.line for f in merged.findings] == [3, 9]
    assert merged.suppressed == []
    assert list(merged.parts) == [f"{pod}/init", f"{pod}/app"]
