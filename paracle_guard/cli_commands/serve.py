"""``paracle-guard serve``: the warm-start server (see ``paracle_guard.warm``)."""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.exit_codes import verdict

app = command_app()

@app.command("serve")
@fails_cleanly
def serve_command(
    status: Annotated[
        bool, typer.Option("--status", help="Say whether a server for this code runs for "
                           "this user (exit 0) or not (exit 1), and where; serve nothing.")
    ] = False,
) -> None:
    """Keep paracle-guard loaded for this user, so that each command starts in milliseconds.

    Runs in the foreground until Ctrl-C or SIGTERM, logging each command it runs on
    stderr. A command line uses it when it runs the same code as the same user in the
    same context (namespaces, credentials, limits, locale); otherwise it runs as always.
    Set PARACLE_GUARD_NO_SERVER=1 to never use it.
    """
    if status:
        from paracle_guard.warm.client import server_status

        running, said = server_status()
        typer.echo(said)
        raise typer.Exit(verdict(not running))
    from paracle_guard.cli import command_line
    from paracle_guard.warm.protocol import SERVED
    from paracle_guard.warm.server import serve

    serve(lambda: command_line(SERVED))
