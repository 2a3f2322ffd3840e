from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree

from paracle_guard.location import Location
from paracle_guard.report.junit import render_junit
from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.severity import Severity


def _suite(report: Report) -> tuple[ElementTree.Element, ElementTree.Element]:
    root = ElementTree.fromstring(render_junit(report).encode("utf-8"))
    suite = root.find("testsuite")
    assert suite is not None
    return root, suite


def _case(suite: ElementTree.Element, name: str) -> ElementTree.Element:
    case = suite.find(f"testcase[@name='{name}']")
    assert case is not None, name
    return case


def test_one_testcase_per_target(report: Report) -> None:
    root, suite = _suite(report)
    assert root.tag == "testsuites"
    assert [case.get("name") for case in suite.findall("testcase")] == [
        "docker/Dockerfile.sandbox",
        "docker/Dockerfile.clean",
        "/srv/build/Dockerfile",
        "ghcr.io/acme/sandbox:1.0",
    ]
    assert _case(suite, "ghcr.io/acme/sandbox:1.0").get("classname") == "paracle-guard.image"


def test_counts_agree_with_the_testcases(report: Report) -> None:
    root, suite = _suite(report)
    for element in (root, suite):
        assert element.get("tests") == "4"
        assert element.get("failures") == "3"  # every target but the clean one
        assert element.get("errors") == "0"


def test_each_finding_at_or_above_fail_on_is_a_failure(report: Report) -> None:
    _, suite = _suite(report)
    failures = _case(suite, "docker/Dockerfile.sandbox").findall("failure")
    assert [(f.get("type"), f.get("message")) for f in failures] == [
        ("warning", "PG401 install-recommends: apt-get install without --no-install-recommends"),
        ("error", "PG101 root-user: the final stage runs as root"),
    ]
    body = failures[1].text or ""
    assert body.splitlines() == [
        "docker/Dockerfile.sandbox:12: PG101 root-user [error] the final stage runs as root",
        "    fix: Add USER 1000 to the final stage",
    ]


def test_findings_below_fail_on_and_suppressed_ones_are_shown_not_failed(
    report: Report,
) -> None:
    _, suite = _suite(report)
    out = _case(suite, "docker/Dockerfile.sandbox").findtext("system-out") or ""
    assert "PG102 uid-not-allowed [info]" in out
    assert "suppressed (inline: editor for debugging) docker/Dockerfile.sandbox:6: PG403" in out
    assert "suppressed (waiver: digest pinned by renovate)" in out
    assert "suppressed (cli: --ignore on the command line)" in out


def test_fail_on_decides_what_fails_as_the_run_does(report: Report) -> None:
    report.fail_on = Severity.INFO
    _, suite = _suite(report)
    assert len(_case(suite, "docker/Dockerfile.sandbox").findall("failure")) == 3
    report.fail_on = Severity.ERROR
    _, suite = _suite(report)
    assert len(_case(suite, "docker/Dockerfile.sandbox").findall("failure")) == 1
    assert _case(suite, "/srv/build/Dockerfile").find("failure") is None
    assert suite.get("failures") == "2"


def test_image_failures_say_where_in_the_image(report: Report) -> None:
    _, suite = _suite(report)
    bodies = [f.text or "" for f in _case(suite, "ghcr.io/acme/sandbox:1.0").findall("failure")]
    assert any(
        body.startswith("ghcr.io/acme/sandbox:1.0:/usr/bin/sudo: PG103 sudo [error]")
        and "layer: sha256:" in body
        for body in bodies
    )


def test_a_clean_target_passes_and_keeps_its_notice(report: Report) -> None:
    _, suite = _suite(report)
    clean = _case(suite, "docker/Dockerfile.clean")
    assert clean.find("failure") is None
    assert (clean.findtext("system-out") or "").startswith("note: exception for denied-package")


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


def test_binary_garbage_in_messages_still_makes_well_formed_xml(
    make_report: Callable[..., Report],
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
    failure = _case(suite, "Dockerfile").find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "PG901 parse-error: garbage \\x00\\x07\\x1b\\udcff\\ufffe <&> end"
    )
