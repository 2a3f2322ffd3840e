from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from paracle_guard.location import Location
from paracle_guard.report.models import Finding, PolicyRef, Report, Result, ToolInfo
from paracle_guard.report.text import printable, render_text
from paracle_guard.severity import Severity

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _finding_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r": PG\d+ ", line)]


def test_each_finding_is_one_line_with_location_code_name_severity_message(
    report: Report,
) -> None:
    text = render_text(report)
    assert (
        "docker/Dockerfile.sandbox:12: PG101 root-user [error] the final stage runs as root"
        in text.splitlines()
    )
    assert "    fix: Add USER 1000 to the final stage" in text.splitlines()


def test_findings_are_grouped_by_target_and_sorted_by_line(report: Report) -> None:
    lines = _finding_lines(render_text(report))
    assert [line.split(" ")[0] for line in lines] == [
        # The whole-file finding (no line) leads its target.
        "docker/Dockerfile.sandbox:",
        "docker/Dockerfile.sandbox:5:",
        "docker/Dockerfile.sandbox:12:",
        "/srv/build/Dockerfile:3:",
        "ghcr.io/acme/sandbox:1.0:",
        "ghcr.io/acme/sandbox:1.0:/usr/bin/sudo:",
    ]


def test_each_finding_is_followed_by_its_fix(report: Report) -> None:
    lines = render_text(report).splitlines()
    for index, line in enumerate(lines):
        if re.search(r": PG\d+ ", line):
            following = lines[index + 1 : index + 3]
            assert any(extra.startswith("    fix: ") for extra in following), line


def test_image_findings_name_the_image_the_path_and_the_layer(report: Report) -> None:
    lines = render_text(report).splitlines()
    start = lines.index(
        "ghcr.io/acme/sandbox:1.0:/usr/bin/sudo: PG103 sudo [error] sudo is installed"
    )
    assert lines[start + 1] == "    layer: sha256:" + "ab" * 32
    assert lines[start + 2] == "    fix: Do not install sudo, doas, gosu or su-exec"


def test_notices_suppressions_and_summary_close_the_report(report: Report) -> None:
    tail = render_text(report).splitlines()[-3:]
    assert tail[0].startswith("note: exception for denied-package on 'docker/*' expired")
    assert tail[1] == "3 suppressed (1 inline ignore, 1 waiver, 1 --ignore)"
    assert tail[2] == "3 errors, 2 warnings, 1 info in 3 files, 1 image (policy sandbox)"
    # Two targets carry the notice; the reader is told once.
    assert render_text(report).count("note: ") == 1


def test_suppressed_findings_are_counted_not_shown(report: Report) -> None:
    text = render_text(report)
    for code in ("PG403", "PG501", "PG503"):
        assert code not in text


def test_summary_of_files_uses_singular_and_plural(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    report.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG401",
                    name="install-recommends",
                    severity=Severity.WARNING,
                    message="m",
                    location=Location(path="Dockerfile", line=2),
                )
            ],
        )
    )
    assert render_text(report).splitlines()[-1] == (
        "0 errors, 1 warning, 0 info in 1 file (policy sandbox)"
    )


def test_an_empty_report_says_no_findings(empty_report: Report) -> None:
    assert render_text(empty_report) == "no findings in 0 files (policy sandbox)\n"


def test_a_clean_run_says_no_findings_after_its_notes(
    make_report: Callable[..., Report],
) -> None:
    report = make_report()
    for name in ("a/Dockerfile", "b/Dockerfile", "c/Dockerfile"):
        report.add(Result(target=name, kind="dockerfile"))
    assert render_text(report) == "no findings in 3 files (policy sandbox)\n"


def test_colour_carries_the_same_text_with_severity_styles(report: Report) -> None:
    coloured = render_text(report, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == render_text(report)
    # Errors in red, warnings in yellow, info in cyan (SGR 31, 33, 36).
    assert re.search(r"\x1b\[[0-9;]*31m\[error\]", coloured)
    assert re.search(r"\x1b\[[0-9;]*33m\[warning\]", coloured)
    assert re.search(r"\x1b\[[0-9;]*36m\[info\]", coloured)


def test_colour_ignores_no_color_in_the_environment(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether to colour is the caller's decision, already made.
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    assert ANSI.search(render_text(report, color=True))


def test_plain_text_has_no_escape_sequences(report: Report) -> None:
    assert "\x1b" not in render_text(report)


def test_width_wraps_long_lines_under_their_finding(report: Report) -> None:
    lines = render_text(report, width=60).splitlines()
    assert all(len(line) <= 60 or " " not in line.strip() for line in lines)
    start = lines.index("docker/Dockerfile.sandbox:12: PG101 root-user [error] the")
    assert lines[start + 1] == "    final stage runs as root"


def test_without_width_nothing_wraps(report: Report) -> None:
    text = render_text(report)
    assert any(len(line) > 100 for line in text.splitlines())


def test_untrusted_text_cannot_drive_the_terminal(make_report: Callable[..., Report]) -> None:
    report = make_report()
    hostile = "evil\x1b[2J\nghost.Dockerfile:1: PG000 fake [error] \u202eboom\udcff"
    report.add(
        Result(
            target="Dockerfile",
            kind="dockerfile",
            findings=[
                Finding(
                    rule="PG901",
                    name="parse-error",
                    severity=Severity.ERROR,
                    message=hostile,
                    location=Location(path="Dockerfile", line=1),
                )
            ],
        )
    )
    for text in (render_text(report), ANSI.sub("", render_text(report, color=True))):
        assert "\x1b" not in text
        assert "\u202e" not in text
        assert not text.startswith("ghost") and "\nghost" not in text
        assert "evil\\x1b[2J\\x0aghost" in text
        assert "\\u202eboom\\udcff" in text
        text.encode("utf-8")  # a lone surrogate would make this raise


def test_printable_leaves_ordinary_unicode_alone() -> None:
    assert printable("café — naïve 日本 \t") == "café — naïve 日本 \\x09"


def test_image_results_name_what_the_reference_resolved_to() -> None:
    report = Report(
        tool=ToolInfo(version="0"), policy=PolicyRef(name="sandbox", sha256="0"),
        fail_on=Severity.WARNING,
    )
    report.add(Result(
        target="acme/app:1", kind="image",
        metadata={"id": "sha256:abc", "tags": ["acme/app:1", "acme/app:latest"],
                  "repo_digests": []},
    ))
    text = render_text(report)
    assert "acme/app:1: image sha256:abc, tags acme/app:1, acme/app:latest, digests none" in text
    assert "no findings in 1 image" in text


def test_container_results_name_the_container_then_its_image() -> None:
    report = Report(
        tool=ToolInfo(version="0"), policy=PolicyRef(name="sandbox", sha256="0"),
        fail_on=Severity.WARNING,
    )
    container_id = "0123abcd4567" + "f" * 52
    report.add(Result(
        target="web", kind="container",
        metadata={"id": container_id, "name": "web", "state": "running",
                  "image": "acme/app:1", "image_id": "sha256:abc"},
    ))
    text = render_text(report)
    assert "web: container 0123abcd4567 (running), image acme/app:1 sha256:abc" in text
    assert "image " + container_id not in text
