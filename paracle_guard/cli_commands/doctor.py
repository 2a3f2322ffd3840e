"""``paracle-guard doctor``: can this engine enforce the policy?"""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import DocumentFormatOption, PolicyOption
from paracle_guard.exit_codes import verdict

app = command_app()

@app.command("doctor")
@fails_cleanly
def doctor_command(
    policy: PolicyOption = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also run a trivial container under each sandboxed "
                           "runtime the policy allows (or, with no runtime control, each "
                           "registered one).")
    ] = False,
    output_format: DocumentFormatOption = "text",
) -> None:
    """Check that the Docker Engine can enforce the policy (exit 0), else exit 1."""
    from paracle_guard.launcher.doctor import diagnose
    from paracle_guard.policy.loader import load_policy

    loaded = load_policy(policy)
    diagnosis = diagnose(runtime=loaded.controls.runtime, policy_name=loaded.metadata.name,
                         probe=probe)
    typer.echo(diagnosis.render_json() if output_format == "json" else diagnosis.render_text(),
               nl=False)
    raise typer.Exit(verdict(not diagnosis.ok))

