"""Baselines: unit checks of the matching, and the round trip through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.report.baseline import Baseline
from paracle_guard.report.json_format import render_json
from paracle_guard.report.models import Finding, PolicyRef, Report, Result, ToolInfo
from paracle_guard.severity import Severity
from tests.cli_process import run_cli

OLD = """\
FROM python:latest
RUN apt-get update && apt-get install -y --no-install-recommends curl \\
 && rm -rf /var/lib/apt/lists/*
USER root
"""
# The same Dockerfile with lines added above every finding, and one new problem.
NEW = """\
# syntax=docker/dockerfile:1
# a comment that moves every line down

FROM python:latest
RUN apt-get update && apt-get install -y --no-install-recommends curl \\
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://example.com/install.sh | sh
USER root
"""


def _report(*findings: tuple[str, str, int]) -> Report:
    report = Report(tool=ToolInfo(version="0"), policy=PolicyRef(name="p", sha256="0"),
                    fail_on=Severity.WARNING)
    report.add(Result(target="Dockerfile", kind="dockerfile", findings=[
        Finding(rule=rule, name="x", severity=Severity.ERROR, message=message,
                location=Location(path="Dockerfile", line=line))
        for rule, message, line in findings
    ]))
    return report


def test_a_known_finding_matches_on_any_line() -> None:
    baseline = Baseline.parse(render_json(_report(("PG101", "USER root", 4))).encode(), "b")
    report = _report(("PG101", "USER root", 9))
    baseline.apply(report, "b.json")
    assert report.results[0].findings == []
    (known,) = report.results[0].suppressed
    assert known.suppression is not None
    assert (known.suppression.kind, known.suppression.reason) == ("baseline",
                                                                  "in the baseline b.json")


def test_each_baseline_entry_matches_one_finding() -> None:
    baseline = Baseline.parse(render_json(_report(("PG403", "curl is denied", 2))).encode(), "b")
    report = _report(("PG403", "curl is denied", 2), ("PG403", "curl is denied", 7))
    baseline.apply(report, "b")
    assert [f.location.line for f in report.results[0].findings] == [7]


def test_line_numbers_inside_messages_do_not_break_the_match() -> None:
    old = _report(("PG901", "line 3 is not valid UTF-8 text", 3))
    baseline = Baseline.parse(render_json(old).encode(), "b")
    report = _report(("PG901", "line 8 is not valid UTF-8 text", 8))
    baseline.apply(report, "b")
    assert report.results[0].findings == []


def test_another_target_or_message_is_new() -> None:
    baseline = Baseline.parse(render_json(_report(("PG101", "USER root", 4))).encode(), "b")
    report = _report(("PG101", "USER 0", 4))
    baseline.apply(report, "b")
    assert len(report.results[0].findings) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "b: not JSON"),
        (b"[]", "b: not a paracle-guard JSON report"),
        (b'{"results": [{"target": "x", "findings": [{"rule": "PG101"}]}]}',
         "b: results[0].findings[0]: expected rule, message and location.path"),
    ],
)
def test_a_file_that_is_not_a_report_is_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Baseline.parse(data, "b")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "Dockerfile").write_text(OLD)
    return tmp_path


def test_adopt_on_an_existing_repository_then_fail_only_on_new_findings(repo: Path) -> None:
    written = run_cli("lint", ".", "--write-baseline", "baseline.json", cwd=repo)
    assert written.code == 1  # the run still reports what it found
    assert json.loads((repo / "baseline.json").read_text())["summary"]["error"] >= 1

    unchanged = run_cli("lint", ".", "--baseline", "baseline.json", cwd=repo)
    assert unchanged.code == 0, unchanged.stdout
    assert "no findings" in unchanged.stdout
    assert "in the baseline" in unchanged.stdout

    (repo / "Dockerfile").write_text(NEW)
    moved = run_cli("lint", ".", "--baseline", "baseline.json", "-f", "json", cwd=repo)
    assert moved.code == 1
    result = json.loads(moved.stdout)["results"][0]
    assert [f["rule"] for f in result["findings"]] == ["PG503"]  # only the new curl | sh
    assert {f["suppression"]["kind"] for f in result["suppressed"]} == {"baseline"}
    assert {f["location"]["line"] for f in result["suppressed"]} >= {4, 8}


def test_sarif_carries_the_same_fingerprint_as_partial_fingerprints(repo: Path) -> None:
    as_json = json.loads(run_cli("lint", ".", "-f", "json", cwd=repo).stdout)
    as_sarif = json.loads(run_cli("lint", ".", "-f", "sarif", cwd=repo).stdout)
    fingerprints = {f["fingerprint"] for f in as_json["results"][0]["findings"]}
    partial = {r["partialFingerprints"]["paracleGuardFinding/v1"]
               for r in as_sarif["runs"][0]["results"]}
    assert fingerprints == partial
    (repo / "Dockerfile").write_text(NEW)
    moved = json.loads(run_cli("lint", ".", "-f", "sarif", cwd=repo).stdout)
    assert partial <= {r["partialFingerprints"]["paracleGuardFinding/v1"]
                       for r in moved["runs"][0]["results"]}


def test_write_baseline_refuses_an_input_but_may_replace_the_baseline(repo: Path) -> None:
    refused = run_cli("lint", ".", "--write-baseline", "Dockerfile", cwd=repo)
    assert refused.code == 2
    assert "--write-baseline Dockerfile: this run reads that file" in refused.stderr
    assert (repo / "Dockerfile").read_text() == OLD
    run_cli("lint", ".", "--write-baseline", "b.json", cwd=repo)
    updated = run_cli("lint", ".", "--baseline", "b.json", "--write-baseline", "b.json", cwd=repo)
    assert updated.code == 0, updated.stderr
    assert json.loads((repo / "b.json").read_text())["summary"]["error"] >= 1


def test_a_missing_baseline_is_one_line(repo: Path) -> None:
    ran = run_cli("lint", ".", "--baseline", "nope.json", cwd=repo)
    assert ran.code == 2
    assert ran.error_lines == ["paracle-guard: error: --baseline nope.json: cannot read: No such "
                               "file or directory"]
