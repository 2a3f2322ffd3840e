"""``paracle-guard sandbox``: self-tests of sandbox images."""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_commands.scan import progress
from paracle_guard.cli_kit.house import fails_cleanly, group_app
from paracle_guard.cli_kit.options import DocumentFormatOption, NoCacheOption, PolicyOption
from paracle_guard.exit_codes import verdict

app = group_app("Self-tests of sandbox images.", no_args_is_help=True)

@app.command("test")
@fails_cleanly
def sandbox_test_command(
    image: Annotated[
        str, typer.Option("--image", metavar="IMAGE",
                          help="Local image to test: tag, ID or digest (never pulled).")
    ] = "paracle/sandbox:latest",
    policy: PolicyOption = None,
    output_format: DocumentFormatOption = "text",
    no_cache: NoCacheOption = False,
) -> None:
    """Launch IMAGE through the enforced launcher and prove its promises from inside.

    Exits 0 when every promise holds, 1 when one is broken or could not be checked.
    """
    from paracle_guard.launcher.probe import render_probe_report, run_probe

    report = run_probe(image, policy=policy, cache=not no_cache,
                       progress=progress([output_format]))
    typer.echo(render_probe_report(report, output_format), nl=False)
    raise typer.Exit(verdict(not report.ok))

