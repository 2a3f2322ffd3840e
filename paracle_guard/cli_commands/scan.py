"""The skeleton every scan command shares: policy, subjects, evaluation, reports, exit code.

A scan command checks its usage, then hands ``run_scan`` the subjects to judge as a
lazy iterable: the policy is loaded and every ``--output`` checked before anything
is read, so a wrong option never waits for a ten-minute scan. The report options
(``--format``/``--output`` pairs, ``--color``, ``--baseline``, ``--write-baseline``)
are read from the command's context by their parameter names (``cli_kit.options``),
so a command only has to declare them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from paracle_guard.cli_kit.click_api import Context, get_current_context
from paracle_guard.cli_kit.outputs import (
    Destination,
    destinations,
    refuse_inputs,
    wants_color,
    write_file,
    write_stdout,
)
from paracle_guard.errors import InputError, UsageError
from paracle_guard.exit_codes import verdict

if TYPE_CHECKING:
    from paracle_guard.disk_cache import DiskCache
    from paracle_guard.engine import Plan
    from paracle_guard.progress import ReadProgress
    from paracle_guard.report.baseline import Baseline
    from paracle_guard.report.models import Report
    from paracle_guard.subject import Subject


@dataclass
class ReportRequest:
    """What the command line asked of the report, checked before the run starts."""

    destinations: list[Destination]
    color: str | None
    policy_source: str | None
    baseline: str | None = None
    known: Baseline | None = None
    write_baseline: str | None = None


def run_scan(
    subjects: Iterable[Subject],
    *,
    policy: str | None,
    ignore: Iterable[str] | None,
    fail_on: str | None,
) -> NoReturn:
    """Judge every subject under the policy, write the reports, exit 1 on findings, else 0."""
    ctx = get_current_context()
    plan, report, request = _plan_and_report(ctx, policy, ignore, fail_on)
    for subject in subjects:
        report.add(plan.evaluate(subject))
    _emit(ctx, report, request)


def _plan_and_report(
    ctx: Context, policy_spec: str | None, ignore: Iterable[str] | None, fail_on: str | None
) -> tuple[Plan, Report, ReportRequest]:
    """The compiled policy, the empty report its results go into, and the report options."""
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.severity import Severity

    params = ctx.params
    # Usage errors first: a wrong --output must not wait for a ten-minute scan.
    chosen = destinations(ctx, params.get("output_format"), params.get("output"))
    plan = Plan.compile(load_policy(policy_spec), ignore=list(ignore or []))
    policy = plan.policy
    request = ReportRequest(chosen, params.get("color"), policy.source,
                            write_baseline=params.get("write_baseline"))
    if params.get("baseline"):
        request.baseline = str(params["baseline"])
        request.known = _read_baseline(request.baseline)
    report = plan.new_report(Severity(fail_on) if fail_on else None)
    return plan, report, request


def _read_baseline(path: str) -> Baseline:
    from paracle_guard.report.baseline import Baseline

    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        raise InputError(f"--baseline {path}: cannot read: {error.strerror or error}") from None
    return Baseline.parse(data, f"--baseline {path}")


def _emit(ctx: Context, report: Report, request: ReportRequest) -> NoReturn:
    """Write every report the command line asked for, and exit 1 on findings, else 0."""
    from paracle_guard.report import render

    inputs = _inputs(ctx, report, request)
    refuse_inputs([d.path for d in request.destinations], inputs, "--output")
    baseline_text = None
    if request.write_baseline:
        # Written from the findings before --baseline takes any out: the new baseline
        # holds everything this run found.
        refuse_inputs([request.write_baseline],
                      [i for i in inputs if i != request.baseline], "--write-baseline")
        baseline_text = render(report, "json")
    if request.known is not None:
        request.known.apply(report, request.baseline or "")
    for destination in request.destinations:
        if destination.path is None:
            color = wants_color(request.color, sys.stdout.isatty())
            write_stdout(render(report, destination.format,
                                color=color and destination.format == "text"))
        else:
            color = request.color == "always" and destination.format == "text"
            write_file(destination.path, render(report, destination.format, color=color))
    if request.write_baseline and baseline_text is not None:
        write_file(request.write_baseline, baseline_text, option="--write-baseline")
    raise typer.Exit(verdict(report.failed))


def _inputs(ctx: Context, report: Report, request: ReportRequest) -> list[str]:
    """Every file this run read, as far as the command line and the results say."""
    outputs = {"output", "write_baseline"}
    named: list[str] = []
    for name, value in ctx.params.items():
        if name in outputs:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (str, Path)):
                named.append(str(item))
    for result in report.results:
        if result.in_image:
            continue
        named.append(result.target)
        for key in ("file", "files"):
            value = result.metadata.get(key)
            named.extend([value] if isinstance(value, str) else value or [])
    if request.policy_source and not request.policy_source.startswith("builtin:"):
        named.append(request.policy_source)
    return named


# --- what several commands read ----------------------------------------------------------


def read_stdin(what: str = "a Dockerfile",
               example: str = "paracle-guard lint - < Dockerfile") -> bytes:
    """Standard input, for ``-``; a terminal there would wait forever, so it is refused."""
    if sys.stdin.isatty():
        raise UsageError(f"-: standard input is a terminal; pipe {what} in ({example})")
    return sys.stdin.buffer.read()


def folders_of(paths: Iterable[str]) -> list[str]:
    """For ``--folders`` (pre-commit passes the changed files): each path's folder, once, in
    order."""
    return list(dict.fromkeys(os.path.dirname(p) or "." for p in paths))


def facts_cache(no_cache: bool) -> DiskCache | None:
    if no_cache:
        return None
    from paracle_guard.sources.facts_store import open_cache

    return open_cache()


def progress(formats: Sequence[str] | None) -> ReadProgress | None:
    """A progress line for long image reads: on a terminal only, never with machine output."""
    if any(fmt != "text" for fmt in formats or []) or not sys.stderr.isatty():
        return None
    from paracle_guard.progress import TerminalProgress

    return TerminalProgress()
