"""``paracle-guard authz``: the Docker authorization plugin."""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_kit.house import fails_cleanly, group_app
from paracle_guard.cli_kit.options import PolicyOption

app = group_app("Guard the Docker Engine itself: an authorization plugin.",
                  no_args_is_help=True)

@app.command("serve")
@fails_cleanly
def authz_serve_command(
    policy: PolicyOption = None,
    socket_path: Annotated[
        str, typer.Option("--socket", metavar="PATH",
                          help="Where to listen; the file name (less .sock) is the plugin's "
                          "name for dockerd --authorization-plugin.")
    ] = "/run/docker/plugins/paracle-guard.sock",
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", metavar="FILE",
                     help="Append one JSON line per allow and deny to FILE (default: the "
                     "policy's audit_log, else standard output)."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", metavar="HOST",
                     help="The engine being guarded, read for image configs and containers "
                     "(default: DOCKER_HOST, else unix:///var/run/docker.sock)."),
    ] = None,
    decision_timeout: Annotated[
        float, typer.Option("--decision-timeout", metavar="SECONDS",
                            help="Seconds a decision may take; past them the request is "
                            "refused.")
    ] = 10.0,
) -> None:
    """Serve the Docker authorization plugin: the policy, enforced for every client."""
    from paracle_guard.authz import run_serve

    raise typer.Exit(run_serve(
        policy=policy, socket_path=socket_path, audit_log=audit_log, engine_host=engine,
        deadline=decision_timeout,
    ))

