"""The command line: the root of the app, and where each command lives.

Every command is declared in its own module of ``paracle_guard.cli_commands`` and
imported only when it runs (or help lists it): ``lint`` pays neither for the
launcher, the engine client nor for building the options of commands it does not
run. How commands look and fail, and the options they share, live in ``cli_kit``;
the exit codes in ``exit_codes``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from paracle_guard import __version__
from paracle_guard.cli_kit.house import CONTEXT_SETTINGS, PROG, LazyGroup
from paracle_guard.exit_codes import PASSED

# Each command, in the order help lists them, and the module that declares it.
COMMANDS: dict[str, str] = {
    name: f"paracle_guard.cli_commands.{module}"
    for name, module in (
        ("lint", "lint"),
        ("image", "image"),
        ("container", "container"),
        ("compose", "compose"),
        ("k8s", "k8s"),
        ("run", "run"),
        ("doctor", "doctor"),
        ("completion", "completion"),
        ("policy", "policy"),
        ("rules", "rules"),
        ("sandbox", "sandbox"),
        ("authz", "authz"),
        ("cache", "cache"),
    )
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
