"""Options that several commands share, built in one place.

Each is a ``typer.Option`` with a readable metavar, a help text made from the same
data it checks against, and shell completion. Every command that writes a report or
a document takes its ``--format`` from ``format_option``, over the one map of
formats (``paracle_guard.report.FORMATS``) narrowed to the kind of document it
writes, so the choices, the help and the completion never disagree.

Completions import what they list only when a shell asks: declaring these
options costs nothing on a normal run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import typer

from paracle_guard.cli_kit.house import usage_error
from paracle_guard.errors import did_you_mean
from paracle_guard.report import DOCUMENT, SCAN_REPORT, formats_for

SEVERITIES: dict[str, str] = {
    "error": "only errors fail the run",
    "warning": "warnings and errors fail the run",
    "info": "any finding fails the run",
}
COLOR_MODES: dict[str, str] = {
    "auto": "colour on a terminal, unless NO_COLOR is set (FORCE_COLOR forces it)",
    "always": "colour even in a pipe or a file",
    "never": "plain text",
}

Completion = Callable[[str], list[tuple[str, str]]]


def _choices_text(choices: Iterable[str]) -> str:
    names = list(choices)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def complete_from(choices: Mapping[str, str]) -> Completion:
    def complete(incomplete: str) -> list[tuple[str, str]]:
        return [(name, help) for name, help in choices.items() if name.startswith(incomplete)]

    return complete


def check_choice(
    option: str, choices: Mapping[str, str]
) -> Callable[[typer.Context, typer.CallbackParam, Any], Any]:
    """A callback refusing values outside ``choices`` as a usage error."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        for given in values:
            if given is not None and given not in choices:
                usage_error(f"{option} {given}: expected {_choices_text(choices)}"
                            f"{did_you_mean(given, choices)}", ctx)
        return value

    return check


def choice_option(
    *names: str, choices: Mapping[str, str], metavar: str, what: str, default: str | None = None,
    more: str = "",
) -> Any:
    """An option whose value is one of ``choices`` (name -> what it means); the help reads
    ``WHAT: a, b or c (default: D). MORE``."""
    help = f"{what}: {_choices_text(choices)}"
    if default is not None:
        help += f" (default: {default})"
    return typer.Option(
        *names,
        metavar=metavar,
        help=f"{help}. {more}".strip(),
        autocompletion=complete_from(choices),
        callback=check_choice(names[0], choices),
        show_default=False,
    )


def format_option(
    document: str | Mapping[str, Any],
    *,
    names: tuple[str, ...] = ("--format", "-f"),
    repeatable: bool = False,
    default: str = "text",
    what: str = "Output format",
) -> Any:
    """``--format FORMAT`` over the formats that can write ``document`` (a kind named in
    ``paracle_guard.report``), or over ``document`` itself when it is a map of choices
    that are not report formats (``policy export``'s targets): name -> description."""
    choices: Mapping[str, Any] = (formats_for(document) if isinstance(document, str)
                                  else document)
    described = {name: _description_of(value) for name, value in choices.items()}
    more = ("Repeat it, each followed by its --output FILE, for several reports from one run."
            if repeatable else "")
    return choice_option(*names, choices=described, metavar="FORMAT", what=what,
                         default=default, more=more)


def _description_of(value: Any) -> str:
    return value if isinstance(value, str) else str(getattr(value, "description", ""))


# --- completions of things that are not fixed lists ------------------------------------


def complete_policies(incomplete: str) -> list[tuple[str, str]]:
    """Built-in policy names; the shell adds file names (bash's ``-o default``)."""
    from paracle_guard.policy.loader import builtin_policy_names

    return [(name, "built-in policy") for name in builtin_policy_names()
            if name.startswith(incomplete)]


def complete_rules(incomplete: str) -> list[tuple[str, str]]:
    """Rule codes and names, each with its summary."""
    from paracle_guard.rules.base import all_rules

    found = []
    for rule in all_rules():
        for word in (rule.code, rule.name):
            if word.lower().startswith(incomplete.lower()):
                found.append((word, rule.summary))
    return found


def complete_rule_list(incomplete: str) -> list[tuple[str, str]]:
    """For comma-separated lists (``--ignore PG101,root``): complete the last item."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [(prefix + word, help) for word, help in complete_rules(last)]


# --- the shared options -----------------------------------------------------------------


POLICY_HELP = ("Policy file or built-in name (see 'paracle-guard policy list'). Default: "
               ".paracle-guard.yaml here or at the git root, else sandbox.")


def policy_option(help: str = POLICY_HELP) -> Any:
    return typer.Option(
        "--policy", "-p",
        metavar="FILE|NAME",
        help=help,
        autocompletion=complete_policies,
        show_default=False,
    )


OUTPUT_HELP = ("Write the report of the --format before it to FILE instead of standard "
               "output (- is standard output). A symlink is written through; an existing "
               "file keeps its permissions; a file this run reads is refused.")


def output_option(help: str = OUTPUT_HELP) -> Any:
    return typer.Option(
        "--output", "-o",
        metavar="FILE",
        help=help,
        show_default=False,
    )


def fail_on_option() -> Any:
    return choice_option(
        "--fail-on", choices=SEVERITIES, metavar="SEVERITY",
        what="Lowest severity that fails the run", default="the policy's fail_on",
    )


def ignore_option() -> Any:
    return typer.Option(
        "--ignore",
        metavar="RULE",
        help="Rule code or name to leave out (repeatable, or comma-separated).",
        autocompletion=complete_rule_list,
        show_default=False,
    )


def color_option() -> Any:
    return choice_option(
        "--color", choices=COLOR_MODES, metavar="WHEN", what="Colour the text output",
        default="auto", more="auto honours NO_COLOR and FORCE_COLOR.",
    )


def baseline_option() -> Any:
    return typer.Option(
        "--baseline",
        metavar="FILE",
        help="A JSON report of an earlier run: findings already in it are reported as "
        "suppressed (baseline), so only new ones fail the run.",
        show_default=False,
    )


def write_baseline_option() -> Any:
    return typer.Option(
        "--write-baseline",
        metavar="FILE",
        help="Also write this run's findings as a baseline (a JSON report) to FILE.",
        show_default=False,
    )


# --- the options as commands declare them ------------------------------------------------
#
# The scan skeleton (cli_commands/scan.py) reads the report options from the command's
# context by these parameter names: output_format, output, color, baseline, write_baseline.

PolicyOption = Annotated[str | None, policy_option()]
FormatOption = Annotated[list[str] | None, format_option(SCAN_REPORT, repeatable=True)]
OutputOption = Annotated[list[str] | None, output_option()]
FailOnOption = Annotated[str | None, fail_on_option()]
IgnoreOption = Annotated[list[str] | None, ignore_option()]
ColorOption = Annotated[str | None, color_option()]
BaselineOption = Annotated[str | None, baseline_option()]
WriteBaselineOption = Annotated[str | None, write_baseline_option()]
DocumentFormatOption = Annotated[str, format_option(DOCUMENT)]
NoCacheOption = Annotated[
    bool,
    typer.Option("--no-cache", help="Read every layer of the image again; neither use nor "
                 "fill the cache of image facts."),
]
StdinNameOption = Annotated[str, typer.Option(
    "--stdin-filename", metavar="NAME",
    help="The name findings and waivers use for - (standard input).")]
