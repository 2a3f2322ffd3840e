from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
import xmlschema

from paracle_guard.location import Location
from paracle_guard.report.junit import render_junit
from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.severity import Severity

# The Jenkins xUnit plugin's JUnit schema (source and licence: data/README.md).
JUNIT_XSD = Path(__file__).parent / "data" / "junit-10.xsd"


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def _suite(report: Report) -> tuple[ElementTree.Element, ElementTree.Element]:
    root = ElementTree.fromstring(render_junit(report).encode("utf-8"))
    suite = root.find("testsuite")
    assert suite is not None
    return root, suite


def _case(suite: ElementTree.Element, name: str) -> ElementTree.Element:
    case = suite.find(f"testcase[@name='{name}']")
    assert case is not None, name
    return case


SANDBOX = "docker/Dockerfile.sandbox"
IMAGE = "ghcr.io/acme/sandbox:1.0"


def test_one_testcase_per_finding_and_one_per_clean_target(report: Report) -> None:
    root, suite = _suite(report)
    assert root.tag == "testsuites"
    assert [case.get("name") for case in suite.findall("testcase")] == [
        f"{SANDBOX}: PG102 uid-not-allowed",
        f"{SANDBOX}:5: PG401 install-recommends",
        f"{SANDBOX}:12: PG101 root-user",
        f"{SANDBOX}:6: PG403 denied-package",
        f"{SANDBOX}:1: PG501 unpinned-base-image",
        f"{SANDBOX}:9: PG503 remote-code",
        "docker/Dockerfile.clean",
        "/srv/build/Dockerfile:3: PG601 secret-in-env",
        f"{IMAGE}: PG101 root-user",
        f"{IMAGE}:/usr/bin/sudo: PG103 sudo",
    ]
    assert _case(suite, f"{IMAGE}: PG101 root-user").get("classname") == "paracle-guard.image"
    assert _case(suite, "docker/Dockerfile.clean").get("classname") == "paracle-guard.dockerfile"


def test_counts_agree_with_the_testcases(report: Report) -> None:
    root, suite = _suite(report)
    for element in (root, suite):
        assert element.get("tests") == "10"
        assert element.get("failures") == "5"  # PG401, PG101 twice, PG601, PG103
        assert element.get("errors") == "0"
    assert suite.get("skipped") == "4"  # the info finding and the three suppressed
    failing = [case for case in suite.findall("testcase") if case.find("failure") is not None]
    skipped = [case for case in suite.findall("testcase") if case.find("skipped") is not None]
    assert (len(failing), len(skipped)) == (5, 4)


def test_each_finding_at_or_above_fail_on_is_one_failure(report: Report) -> None:
    _, suite = _suite(report)
    failures = _case(suite, f"{SANDBOX}:12: PG101 root-user").findall("failure")
    assert [(f.get("type"), f.get("message")) for f in failures] == [
        ("error", "PG101 root-user: the final stage runs as root"),
    ]
    assert (failures[0].text or "").splitlines() == [
        f"{SANDBOX}:12: PG101 root-user [error] the final stage runs as root",
        "    fix: Add USER 1000 to the final stage",
    ]


def test_findings_below_fail_on_and_suppressed_ones_are_skipped_with_why(
    report: Report,
) -> None:
    _, suite = _suite(report)
    below = _case(suite, f"{SANDBOX}: PG102 uid-not-allowed")
    assert below.find("failure") is None
    skipped = below.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == (
        "info is below fail_on (warning): reported, does not fail the run")
    assert "PG102 uid-not-allowed [info]" in (below.findtext("system-out") or "")
    reasons = [
        _case(suite, name).find("skipped") for name in (
            f"{SANDBOX}:6: PG403 denied-package",
            f"{SANDBOX}:1: PG501 unpinned-base-image",
            f"{SANDBOX}:9: PG503 remote-code",
        )
    ]
    assert [None if r is None else r.get("message") for r in reasons] == [
        "suppressed (inline: editor for debugging)",
        "suppressed (waiver: digest pinned by renovate)",
        "suppressed (cli: --ignore on the command line)",
    ]


def test_fail_on_decides_what_fails_as_the_run_does(report: Report) -> None:
    report.fail_on = Severity.INFO
    _, suite = _suite(report)
    assert suite.get("failures") == "6"
    report.fail_on = Severity.ERROR
    _, suite = _suite(report)
    assert suite.get("failures") == "3"
    assert _case(suite, "/srv/build/Dockerfile:3: PG601 secret-in-env").find("failure") is None


def test_image_failures_say_where_in_the_image(report: Report) -> None:
    _, suite = _suite(report)
    body = _case(suite, f"{IMAGE}:/usr/bin/sudo: PG103 sudo").findtext("failure") or ""
    assert body.startswith(f"{IMAGE}:/usr/bin/sudo: PG103 sudo [error]")
    assert "layer: sha256:" in body


def test_a_clean_target_passes_and_keeps_its_notice(report: Report) -> None:
    _, suite = _suite(report)
    clean = _case(suite, "docker/Dockerfile.clean")
    assert clean.find("failure") is None and clean.find("skipped") is None
    assert (clean.findtext("system-out") or "").startswith("note: exception for denied-package")
    # The suite says it once more for the whole run.
    assert (suite.findtext("system-out") or "").count("note: ") == 1


def test_two_findings_of_one_rule_on_one_line_stay_two_testcases(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    report.add(Result(target="Dockerfile", kind="dockerfile", findings=[
        Finding(rule="PG403", name="denied-package", severity=Severity.WARNING,
                message=f"package {name} is denied", location=Location(path="Dockerfile", line=3))
        for name in ("curl", "wget")
    ]))
    _, suite = _suite(report)
    assert [case.get("name") for case in suite.findall("testcase")] == [
        "Dockerfile:3: PG403 denied-package",
        "Dockerfile:3: PG403 denied-package (2)",
    ]


def test_policy_travels_as_suite_properties(report: Report) -> None:
    _, suite = _suite(report)
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {
        "tool.version": "0.1.0",
        "policy.name": "sandbox",
        "policy.sha256": "0" * 64,
        "fail_on": "warning",
    }


def test_an_empty_report_is_an_empty_suite(empty_report: Report) -> None:
    root, suite = _suite(empty_report)
    assert root.get("tests") == suite.get("tests") == "0"
    assert suite.findall("testcase") == []


def test_every_report_is_valid_against_the_common_junit_schema(
    junit_schema: xmlschema.XMLSchema, report: Report, empty_report: Report
) -> None:
    for sample in (report, empty_report):
        junit_schema.validate(render_junit(sample))
    report.fail_on = Severity.INFO
    junit_schema.validate(render_junit(report))


def test_the_schema_check_would_catch_an_invalid_report(
    junit_schema: xmlschema.XMLSchema, report: Report
) -> None:
    # The old layout put a "skipped" count on <testsuites>, which the schema refuses.
    broken = render_junit(report).replace('<testsuites name="paracle-guard"',
                                          '<testsuites skipped="1" name="paracle-guard"')
    assert not junit_schema.is_valid(broken)


def test_binary_garbage_in_messages_still_makes_well_formed_xml(
    make_report: Callable[..., Report], junit_schema: xmlschema.XMLSchema
) -> None:
    report = make_report()
    report.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG901",
                    name="parse-error",
                    severity=Severity.ERROR,
                    message="garbage \x00\x07\x1b\udcff\ufffe <&> end",
                    location=Location(path="Dockerfile", line=1),
                )
            ],
        )
    )
    _, suite = _suite(report)
    failure = _case(suite, "Dockerfile:1: PG901 parse-error").find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "PG901 parse-error: garbage \\x00\\x07\\x1b\\udcff\\ufffe <&> end"
    )
    junit_schema.validate(render_junit(report))
