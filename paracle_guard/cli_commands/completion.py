"""``paracle-guard completion``: the shell completion scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_kit import options
from paracle_guard.cli_kit.house import PROG, command_app, fails_cleanly

app = command_app()

SHELLS = {"bash": "bash 4.4 or later", "zsh": "zsh", "fish": "fish"}
COMPLETE_VAR = "_PARACLE_GUARD_COMPLETE"


@app.command("completion")
@fails_cleanly
def completion_command(
    shell: Annotated[str, typer.Argument(
        metavar="SHELL", help="bash, zsh or fish.",
        autocompletion=options.complete_from(SHELLS),
        callback=options.check_choice("SHELL", SHELLS))],
) -> None:
    """Print the completion script for a shell: commands, options, formats, rule codes
    and names, built-in policies.

    bash: paracle-guard completion bash > ~/.local/share/bash-completion/completions/paracle-guard
    zsh:  paracle-guard completion zsh > "${fpath[1]}/_paracle-guard"
    fish: paracle-guard completion fish > ~/.config/fish/completions/paracle-guard.fish
    (--install-completion does the same for the current shell.)
    """
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell))
