"""The command line: the root of the app, and where each command lives.

Every command is declared in its own module of ``paracle_guard.cli_commands`` and
imported only when it runs (or help lists it): ``lint`` pays neither for the
launcher, the engine client nor for building the options of commands it does not
run. How commands look and fail, and the options they share, live in ``cli_kit``;
the exit codes in ``exit_codes``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from paracle_guard import __version__
from paracle_guard.cli_kit import click_api as click
from paracle_guard.cli_kit.house import CONTEXT_SETTINGS, PROG, LazyGroup
from paracle_guard.exit_codes import PASSED

# Each command, in the order help lists them, and the module that declares it (its
# namesake in paracle_guard.cli_commands).
COMMANDS: dict[str, str] = {
    name: f"paracle_guard.cli_commands.{name}"
    for name in ("lint", "image", "container", "compose", "k8s", "run", "doctor",
                 "completion", "policy", "rules", "sandbox", "authz", "cache", "serve")
}


class Commands(LazyGroup):
    lazy = COMMANDS


app = typer.Typer(
    name=PROG,
    cls=Commands,
    context_settings=CONTEXT_SETTINGS,
    help="Policy-as-code compliance scanner and enforcer for container sandboxes.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit(PASSED)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True,
                     help="Show the version and exit."),
    ] = False,
) -> None:
    """Policy-as-code compliance scanner and enforcer for container sandboxes."""


def main() -> None:
    # pydantic looks for plugins (the entry points of every installed distribution) when
    # it builds the first model: ~10 ms of each run for plugins a command line never
    # uses. A user who sets the variable keeps their choice.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()


def command_line(loaded: Iterable[str]) -> Callable[[list[str]], Any]:
    """The command line as a function of ``argv``, its click objects built now, with the
    commands named in ``loaded`` (for the warm server: each worker starts from them)."""
    group = typer.main.get_command(app)
    context = _context(group, None)
    _build_parameters(group, None)
    for name in loaded:
        command = group.get_command(context, name)  # type: ignore[attr-defined]
        if command is not None:
            _build_parameters(command, context)
    return lambda argv: group.main(args=argv[1:], prog_name=PROG)


def _build_parameters(command: click.Command, parent: click.Context | None) -> None:
    """Build what click and typer build the first time a command parses its arguments (the
    --help option; a pydantic TypeAdapter per option, ~0.5 ms each), so that no forked
    worker builds it again."""
    context = _context(command, parent)
    for parameter in command.get_params(context):
        build = getattr(parameter, "get_runtime_param", None)
        if build is not None:
            build()
    for subcommand in getattr(command, "commands", {}).values():
        _build_parameters(subcommand, context)


def _context(command: click.Command, parent: click.Context | None) -> click.Context:
    """The context click makes for ``command`` under ``parent`` (``make_context`` without
    parsing): the help option is built once, and cached, with the names it gives
    (``-h, --help``), so a bare context would leave every worker with ``--help`` alone."""
    return click.Context(command, parent=parent, **command.context_settings)
