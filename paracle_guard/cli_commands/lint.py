"""``paracle-guard lint``: Dockerfiles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_commands.scan import read_stdin, run_scan
from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import (
    BaselineOption,
    ColorOption,
    FailOnOption,
    FormatOption,
    IgnoreOption,
    OutputOption,
    PolicyOption,
    StdinNameOption,
    WriteBaselineOption,
)
from paracle_guard.errors import InputError

if TYPE_CHECKING:
    from paracle_guard.subject import Subject

app = command_app()


@app.command()
@fails_cleanly
def lint(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Dockerfiles, or folders searched for Dockerfile, "
                       "Dockerfile.*, *.Dockerfile, *.dockerfile and Containerfile; - reads "
                       "standard input."),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="STAGE",
                                 help="Build stage to check (default: the last).")
    ] = None,
    build_arg: Annotated[
        list[str] | None,
        typer.Option("--build-arg", metavar="NAME[=VALUE]",
                     help="A build argument, as given to docker build (repeatable)."),
    ] = None,
    ignore: IgnoreOption = None,
    stdin_filename: StdinNameOption = "Dockerfile",
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check Dockerfiles against the policy."""
    from paracle_guard.sources.build_args import parse_build_args

    args = parse_build_args(build_arg or [])
    run_scan(_dockerfiles(paths, target, args, stdin_filename),
             policy=policy, ignore=ignore, fail_on=fail_on)


def _dockerfiles(paths: list[str], target: str | None, args: dict[str, str],
                 stdin_filename: str) -> Iterator[Subject]:
    from paracle_guard.sources.discovery import find_dockerfiles
    from paracle_guard.sources.dockerfile import load_dockerfile, parse_dockerfile

    checked = 0
    if "-" in paths:
        # Editors and pipes hand over an unsaved buffer this way.
        content = read_stdin()
        yield parse_dockerfile(content, stdin_filename, target=target, build_args=args)
        checked += 1
    for path in find_dockerfiles(p for p in paths if p != "-"):
        yield load_dockerfile(path, target=target, build_args=args)
        checked += 1
    if checked == 0:
        raise InputError(f"no Dockerfiles found in: {', '.join(paths)}")
