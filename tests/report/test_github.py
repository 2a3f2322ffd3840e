from __future__ import annotations

import re
from collections.abc import Callable

from paracle_guard.location import Location
from paracle_guard.report.github import render_github
from paracle_guard.report.models import Finding, Report, Result
from paracle_guard.severity import Severity

COMMAND = re.compile(r"^::(?P<command>[a-z]+)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def _commands(text: str) -> list[tuple[str, dict[str, str], str]]:
    parsed = []
    for line in text.splitlines():
        match = COMMAND.match(line)
        if match:
            properties = dict(
                part.split("=", 1) for part in (match["properties"] or "").split(",") if part
            )
            parsed.append((match["command"], properties, match["message"]))
    return parsed


def test_a_file_finding_is_an_annotation_on_its_file_and_lines(report: Report) -> None:
    assert (
        "::warning file=docker/Dockerfile.sandbox,line=5,endLine=7,"
        "title=PG401 install-recommends::apt-get install without --no-install-recommends"
        "%0Afix: Add --no-install-recommends"
    ) in render_github(report).splitlines()


def test_severities_map_to_error_warning_notice(report: Report) -> None:
    commands = _commands(render_github(report))
    by_title = {props.get("title"): command for command, props, _ in commands}
    assert by_title["PG101 root-user"] == "error"
    assert by_title["PG401 install-recommends"] == "warning"
    assert by_title["PG102 uid-not-allowed"] == "notice"


def test_findings_come_grouped_by_target_in_line_order(report: Report) -> None:
    located = [
        (props.get("file"), props.get("line"))
        for _, props, _ in _commands(render_github(report))
        if "file" in props
    ]
    assert located == [
        ("docker/Dockerfile.sandbox", None),
        ("docker/Dockerfile.sandbox", "5"),
        ("docker/Dockerfile.sandbox", "12"),
        ("/srv/build/Dockerfile", "3"),
    ]


def test_image_findings_name_no_repository_file(report: Report) -> None:
    image = [
        (props, message)
        for _, props, message in _commands(render_github(report))
        if props.get("title") == "PG103 sudo"
    ]
    assert len(image) == 1
    props, message = image[0]
    assert "file" not in props
    assert message.startswith("ghcr.io/acme/sandbox:1.0:/usr/bin/sudo: sudo is installed")
    assert "%0Alayer: sha256:" + "ab" * 32 in message


def test_suppressed_findings_are_counted_not_annotated(report: Report) -> None:
    text = render_github(report)
    titles = {props.get("title") for _, props, _ in _commands(text)}
    assert not titles & {"PG403 denied-package", "PG501 unpinned-base-image", "PG503 remote-code"}
    assert "3 suppressed (1 inline ignore, 1 waiver, 1 --ignore)" in text.splitlines()


def test_notices_are_notice_commands_once_each(report: Report) -> None:
    notices = [
        message
        for command, props, message in _commands(render_github(report))
        if props.get("title") == "paracle-guard"
    ]
    assert len(notices) == 1
    assert notices[0].startswith("exception for denied-package")


def test_ends_with_the_summary(report: Report, empty_report: Report) -> None:
    assert render_github(report).splitlines()[-1] == (
        "3 errors, 2 warnings, 1 info in 3 files, 1 image (policy sandbox)"
    )
    assert render_github(empty_report) == "no findings in 0 files (policy sandbox)\n"


def test_hostile_text_cannot_break_out_of_its_annotation(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    path = "odd,name:file%.Dockerfile"
    report.add(
        Result(
            target=path,
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG901",
                    name="parse-error",
                    severity=Severity.ERROR,
                    message="100% broken\n::error::forged\r\x1b[31m",
                    location=Location(path=path, line=1),
                )
            ],
        )
    )
    lines = render_github(report).splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert len(annotations) == 1
    _, props, message = _commands(annotations[0])[0]
    assert props["file"] == "odd%2Cname%3Afile%25.Dockerfile"
    assert message.startswith("100%25 broken")
    assert "\x1b" not in annotations[0]
