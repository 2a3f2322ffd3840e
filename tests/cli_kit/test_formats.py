"""The one map of output formats drives every command's --format: choices, help, completion."""

from __future__ import annotations

import pytest
from typer.main import get_command

from paracle_guard.cli import app
from paracle_guard.cli_kit import click_api as click
from paracle_guard.cli_kit.house import iter_commands
from paracle_guard.report import DOCUMENT, FORMATS, SCAN_REPORT, formats_for
from tests.cli_process import run_cli

# Every command that writes a report or a document, its format option and what it writes.
FORMAT_OPTIONS = {
    ("lint",): ("--format", SCAN_REPORT),
    ("image",): ("--format", SCAN_REPORT),
    ("container",): ("--format", SCAN_REPORT),
    ("compose",): ("--format", SCAN_REPORT),
    ("k8s",): ("--format", SCAN_REPORT),
    ("doctor",): ("--format", DOCUMENT),
    ("sandbox", "test"): ("--format", DOCUMENT),
    ("run",): ("--report", DOCUMENT),
    ("rules",): ("--format", DOCUMENT),
    ("rules", "explain"): ("--format", DOCUMENT),
}


def _format_params() -> dict[tuple[str, ...], click.Parameter]:
    found = {}
    for path, command in iter_commands(get_command(app)):
        for param in command.params:
            if param.name in ("output_format", "report_format"):
                found[path] = param
    return found


def test_every_format_option_is_listed_here() -> None:
    # A new command with a format option must say which document it writes.
    assert set(_format_params()) == set(FORMAT_OPTIONS)


@pytest.mark.parametrize("path", list(FORMAT_OPTIONS), ids=" ".join)
def test_the_map_makes_each_commands_choices_help_and_completion(path: tuple[str, ...]) -> None:
    option, document = FORMAT_OPTIONS[path]
    param = _format_params()[path]
    expected = formats_for(document)
    assert expected and all(document in FORMATS[name].documents for name in expected)
    assert option in param.opts
    help_text = " ".join(str(getattr(param, "help", "")).split())
    names = list(expected)
    listed = (names[0] if len(names) == 1
              else f"{', '.join(names[:-1])} or {names[-1]}")
    assert f"Output format: {listed} (default: text)" in help_text or \
        f"Format of the report on refusal: {listed} (default: text)" in help_text
    completed = param.shell_complete(click.Context(get_command(app)), "")
    assert [item.value for item in completed] == names
    assert [item.help for item in completed] == [chosen.description
                                                for chosen in expected.values()]
    for name in FORMATS:
        if name not in expected:
            assert name not in help_text.split(":", 1)[1].split("(")[0]


def test_scan_reports_take_every_format_and_documents_text_and_json() -> None:
    assert list(formats_for(SCAN_REPORT)) == list(FORMATS)
    assert list(formats_for(DOCUMENT)) == ["text", "json"]


@pytest.mark.parametrize(
    ("args", "option", "given"),
    [
        (["lint", "--format", "xml", "Dockerfile"], "--format", "xml"),
        (["compose", "--format", "xml"], "--format", "xml"),
        (["doctor", "--format", "sarif"], "--format", "sarif"),
        (["rules", "--format", "xml"], "--format", "xml"),
        (["run", "--report", "junit", "--image", "x", "--", "true"], "--report", "junit"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_an_unknown_format_is_one_clear_line_and_exit_2(
    args: list[str], option: str, given: str
) -> None:
    ran = run_cli(*args)
    assert ran.code == 2
    assert "Traceback" not in ran.stderr
    error, hint = ran.error_lines
    assert error.startswith(f"paracle-guard: error: {option} {given}: expected text")
    assert hint.startswith("See 'paracle-guard ")
