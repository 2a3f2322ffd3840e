from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from paracle_guard.location import Location
from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.report.sarif import render_sarif
from paracle_guard.severity import Severity

# The official schema lives beside the checkout, never inside it.
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SARIF_SCHEMA = SHARED_DATA / "sarif-schema-2.1.0.json"


def _sarif(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_sarif(report))
    return document


def _run(report: Report) -> dict[str, Any]:
    run: dict[str, Any] = _sarif(report)["runs"][0]
    return run


def _results_by_message(report: Report) -> dict[str, dict[str, Any]]:
    return {result["message"]["text"]: result for result in _run(report)["results"]}


@pytest.mark.skipif(
    not SARIF_SCHEMA.is_file(),
    reason=f"the official SARIF 2.1.0 schema is not at {SARIF_SCHEMA} "
    "(the shared data folder beside the checkout is absent)",
)
def test_output_validates_against_the_official_sarif_schema(
    report: Report, empty_report: Report
) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema)
    for case in (report, empty_report):
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(_sarif(case))
        ]
        assert errors == []


def test_one_run_with_a_described_driver(report: Report) -> None:
    document = _sarif(report)
    assert document["version"] == "2.1.0"
    assert len(document["runs"]) == 1
    driver = document["runs"][0]["tool"]["driver"]
    assert driver["name"] == "paracle-guard"
    assert driver["version"] == driver["semanticVersion"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")


def test_rules_listed_are_those_in_results_with_their_metadata(report: Report) -> None:
    run = _run(report)
    rules = run["tool"]["driver"]["rules"]
    reported = {result["ruleId"] for result in run["results"]}
    assert [rule["id"] for rule in rules] == sorted(reported)
    # Suppressed findings' rules are described too, so viewers can explain them.
    assert {"PG403", "PG501", "PG503"} <= reported

    root = next(rule for rule in rules if rule["id"] == "PG101")
    assert root["name"] == "root-user"
    assert root["shortDescription"]["text"] == "The image runs as root"
    assert root["fullDescription"]["text"].startswith("A root process in a container")
    for form in ("text", "markdown"):
        help_text = root["help"][form]
        assert "Add USER 1000 to the final stage" in help_text
        assert "one kernel bug away" in help_text
        assert "CIS Docker 4.1" in help_text
    assert "<https://docs.docker.com/reference/dockerfile/#user>" in root["help"]["markdown"]
    assert root["defaultConfiguration"]["level"] == "error"
    assert root["properties"]["tags"] == ["security"]


def test_security_severity_ranks_rules_for_code_scanning(report: Report) -> None:
    rules = {rule["id"]: rule for rule in _run(report)["tool"]["driver"]["rules"]}
    scores = {code: float(rule["properties"]["security-severity"]) for code, rule in rules.items()}
    # GitHub: 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
    assert 7.0 <= scores["PG101"] < 9.0  # error
    assert 4.0 <= scores["PG401"] < 7.0  # warning
    assert 0.1 <= scores["PG102"] < 4.0  # info


def test_results_point_at_their_rule_by_id_and_index(report: Report) -> None:
    run = _run(report)
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == 9  # six counted, three suppressed
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_levels_map_error_warning_info_to_error_warning_note(report: Report) -> None:
    results = _results_by_message(report)
    assert results["the final stage runs as root"]["level"] == "error"
    assert results["apt-get install without --no-install-recommends"]["level"] == "warning"
    assert results["cannot prove the UID of user 'app'"]["level"] == "note"


def test_relative_paths_sit_under_srcroot_with_their_region(report: Report) -> None:
    location = _results_by_message(report)["apt-get install without --no-install-recommends"][
        "locations"
    ][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "docker/Dockerfile.sandbox",
        "uriBaseId": "%SRCROOT%",
    }
    assert location["region"] == {"startLine": 5, "endLine": 7}


def test_a_finding_without_line_has_no_region(report: Report) -> None:
    location = _results_by_message(report)["cannot prove the UID of user 'app'"]["locations"][0]
    assert "region" not in location["physicalLocation"]


def test_absolute_paths_become_file_uris(report: Report) -> None:
    location = _results_by_message(report)["ENV API_TOKEN looks like a secret"]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///srv/build/Dockerfile"
    }


@pytest.mark.parametrize(
    ("path", "artifact"),
    [
        ("./docker/my Dockerfile", {"uri": "docker/my%20Dockerfile", "uriBaseId": "%SRCROOT%"}),
        ("docker\\Dockerfile", {"uri": "docker/Dockerfile", "uriBaseId": "%SRCROOT%"}),
        ("C:\\work\\Dockerfile", {"uri": "file:///C:/work/Dockerfile"}),
        ("/tmp/caf\udce9/Dockerfile", {"uri": "file:///tmp/caf%E9/Dockerfile"}),
    ],
)
def test_paths_become_valid_uris(
    make_report: Callable[..., Report], path: str, artifact: dict[str, str]
) -> None:
    report = make_report()
    report.add(
        Result(
            target=path,
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG101",
                    name="root-user",
                    severity=Severity.ERROR,
                    message="root",
                    location=Location(path=path, line=1),
                )
            ],
        )
    )
    location = _run(report)["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == artifact


def test_image_paths_stay_inside_their_image_with_the_layer(report: Report) -> None:
    run = _run(report)
    results = _results_by_message(report)
    inside = results["sudo is installed"]["locations"][0]
    # One segment names the image, so registry slashes and the tag's colon
    # cannot be read as directories or a URI scheme.
    assert inside["physicalLocation"]["artifactLocation"] == {
        "uri": "ghcr.io%2Facme%2Fsandbox%3A1.0/usr/bin/sudo",
        "uriBaseId": "IMAGES",
    }
    assert inside["logicalLocations"] == [
        {"name": "/usr/bin/sudo", "fullyQualifiedName": "ghcr.io/acme/sandbox:1.0:/usr/bin/sudo"}
    ]
    assert inside["properties"] == {"layer": "sha256:" + "ab" * 32}
    assert "region" not in inside["physicalLocation"]

    whole = results["the image config runs as root"]["locations"][0]
    assert whole["physicalLocation"]["artifactLocation"]["uri"] == "ghcr.io%2Facme%2Fsandbox%3A1.0"
    assert "IMAGES" in run["originalUriBaseIds"]


def test_every_result_has_a_physical_location(report: Report) -> None:
    # GitHub rejects a whole upload when one result lacks it.
    for result in _run(report)["results"]:
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_suppressed_findings_carry_their_suppression(report: Report) -> None:
    results = _results_by_message(report)
    assert results["vim is denied"]["suppressions"] == [
        {"kind": "inSource", "justification": "editor for debugging"}
    ]
    assert results["python:3.10-slim has no digest"]["suppressions"] == [
        {"kind": "external", "justification": "digest pinned by renovate"}
    ]
    assert results["curl piped into sh"]["suppressions"] == [
        {"kind": "external", "justification": "--ignore on the command line"}
    ]
    assert "suppressions" not in results["the final stage runs as root"]


def test_notices_become_tool_notifications_once_each(report: Report) -> None:
    invocation = _run(report)["invocations"][0]
    assert invocation["executionSuccessful"] is True
    notifications = invocation["toolExecutionNotifications"]
    assert len(notifications) == 1
    assert notifications[0]["message"]["text"].startswith("exception for denied-package")


def test_policy_and_threshold_travel_in_run_properties(report: Report) -> None:
    assert _run(report)["properties"] == {
        "policy": {"name": "sandbox", "sha256": "0" * 64},
        "failOn": "warning",
    }


def test_an_empty_report_is_one_run_with_no_results(empty_report: Report) -> None:
    run = _run(empty_report)
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["invocations"] == [{"executionSuccessful": True}]
    assert "originalUriBaseIds" not in run


def test_a_rule_missing_from_the_metadata_is_still_described(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    report.rules = {}
    report.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            findings=[
                Finding(
                    rule="ACME1",
                    name="acme-rule",
                    severity=Severity.WARNING,
                    message="custom",
                    location=Location(path="Dockerfile", line=2),
                )
            ],
        )
    )
    run = _run(report)
    assert run["tool"]["driver"]["rules"][0]["id"] == "ACME1"
    assert run["tool"]["driver"]["rules"][0]["name"] == "acme-rule"
    assert run["tool"]["driver"]["rules"][0]["defaultConfiguration"] == {"level": "warning"}
    assert run["results"][0]["ruleIndex"] == 0
