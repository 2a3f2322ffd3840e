"""``paracle-guard container``: created or running containers, as the engine inspects them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_commands.scan import run_scan
from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import (
    BaselineOption,
    ColorOption,
    FailOnOption,
    FormatOption,
    IgnoreOption,
    OutputOption,
    PolicyOption,
    WriteBaselineOption,
)
from paracle_guard.errors import InputError, UsageError

if TYPE_CHECKING:
    from paracle_guard.subject import Subject

app = command_app()


@app.command("container")
@fails_cleanly
def container_command(
    containers: Annotated[
        list[str] | None,
        typer.Argument(metavar="CONTAINER", help="Containers to check, by name or ID."),
    ] = None,
    all_containers: Annotated[
        bool, typer.Option("--all", help="Also check every container on the engine, any state.")
    ] = False,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="KEY[=VALUE]",
                     help="Also check the containers with this label (repeatable: all must "
                     "match; narrows --all)."),
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check created or running containers (their docker inspect) against the policy."""
    if not containers and not all_containers and not label:
        raise UsageError("name at least one container, or use --all or --label")
    run_scan(_containers(containers or [], all_containers, label or []),
             policy=policy, ignore=ignore, fail_on=fail_on)


def _containers(names: list[str], all_containers: bool, labels: list[str]) -> Iterator[Subject]:
    from paracle_guard.sources.container import load_containers

    subjects = load_containers(names, all=all_containers, labels=labels)
    if not subjects:
        raise InputError("no container on the engine matches")
    yield from subjects
