"""``paracle-guard compose``: each service of compose projects, as Compose merges them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_commands.scan import folders_of, run_scan
from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import (
    BaselineOption,
    ColorOption,
    FailOnOption,
    IgnoreOption,
    OutputOption,
    PolicyOption,
    WriteBaselineOption,
    format_option,
)
from paracle_guard.errors import GuardError, UsageError
from paracle_guard.report import FORMATS, SCAN_REPORT

if TYPE_CHECKING:
    from paracle_guard.sources.compose_engine import EngineDefaults
    from paracle_guard.subject import Subject

app = command_app()


@app.command("compose")
@fails_cleanly
def compose_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(metavar="PATH", help="Compose files (each read alone, as docker compose "
                       "-f FILE) or folders (read as docker compose run there: COMPOSE_FILE, "
                       "or the default file and its override). Default: this folder."),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", metavar="FILE",
                     help="Compose file of one project, merged in order like docker compose "
                     "-f A -f B (repeatable)."),
    ] = None,
    folders: Annotated[
        bool, typer.Option("--folders", help="Check the project of each PATH's folder (for "
                           "pre-commit, which passes the changed files).")
    ] = False,
    cgroup_version: Annotated[
        int | None,
        typer.Option("--cgroup-version", metavar="1|2",
                     help="The checked hosts' cgroup version, for services without cgroup:. "
                     "Default: ask the Docker Engine; assume 1 without one."),
    ] = None,
    with_dockerfiles: Annotated[
        bool, typer.Option("--with-dockerfiles",
                           help="Also lint the Dockerfiles the services are built from.")
    ] = False,
    policy: PolicyOption = None,
    # -f names a compose file here, as in docker compose: --format has no short form.
    output_format: Annotated[list[str] | None, format_option(
        SCAN_REPORT, names=("--format",), repeatable=True)] = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check each service of compose projects against the policy, as Compose merges them."""
    if cgroup_version not in (None, 1, 2):
        raise UsageError(f"--cgroup-version {cgroup_version}: expected 1 or 2")
    if file and paths:
        raise UsageError("give one project's files with -f, or paths to check, not both")
    _check_compose_files(file or [])
    engine = _engine_defaults(cgroup_version)
    targets = paths or ["."]
    if folders:
        targets = folders_of(targets)
    run_scan(_services(file or [], targets, engine, with_dockerfiles),
             policy=policy, ignore=ignore, fail_on=fail_on)


def _services(files: list[str], targets: list[str], engine: Callable[[], EngineDefaults],
              with_dockerfiles: bool) -> Iterator[Subject]:
    from paracle_guard.sources.compose import load_compose, load_compose_files
    from paracle_guard.sources.compose_builds import services_and_builds

    if files:
        projects = [load_compose_files(files, engine=engine)]
    else:
        projects = [load_compose(target, engine=engine) for target in targets]
    services = (service for project in projects for service in project)
    yield from services_and_builds(services, with_dockerfiles=with_dockerfiles)


def _check_compose_files(files: list[str]) -> None:
    for name in files:
        if name in FORMATS and not os.path.exists(name):
            raise UsageError(f"-f {name}: no such compose file (-f names a compose file, as in "
                             f"docker compose; the report format is --format {name})")


def _engine_defaults(cgroup_version: int | None) -> Callable[[], EngineDefaults]:
    """What the checked host's engine fills in: told by --cgroup-version, else asked of
    the engine (only when a service leaves something to its default)."""
    from paracle_guard.sources.compose_engine import (
        ASSUMED_CGROUP_V1,
        defaults_from_info,
        engine_defaults,
    )

    if cgroup_version is not None:
        return lambda: engine_defaults(cgroup_version)

    def ask() -> EngineDefaults:
        from paracle_guard.docker_client import Engine

        try:
            with Engine.connect() as engine:
                return defaults_from_info(engine.info())
        except GuardError:
            return ASSUMED_CGROUP_V1

    return ask
