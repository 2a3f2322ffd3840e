"""``paracle-guard policy``: validate, show, export and describe policies."""

from __future__ import annotations

from typing import Annotated

import typer

from paracle_guard.cli_kit import options
from paracle_guard.cli_kit.house import fails_cleanly, group_app, print_error, print_warning
from paracle_guard.cli_kit.outputs import STDOUT, refuse_inputs, write_file
from paracle_guard.errors import InputError
from paracle_guard.exit_codes import ERROR

app = group_app("Validate, show and describe policies.", no_args_is_help=True)

@app.command("validate")
@fails_cleanly
def policy_validate(
    specs: Annotated[
        list[str],
        typer.Argument(metavar="FILE|NAME", help="Policy files or built-in names to validate.",
                       autocompletion=options.complete_policies),
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings (an expired exception) as errors.")
    ] = False,
) -> None:
    """Validate policies against the schema, their extends chain and the rules they name.

    Every problem is reported as FILE:LINE: PATH: what is wrong. Exits 2 when any
    policy is invalid (or, with --strict, has a warning).
    """
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import PolicyValidationError, validate_policy

    invalid = 0
    for spec in specs:
        try:
            loaded = validate_policy(spec)
            # Compiling resolves rule names in rules/exceptions/custom_rules.
            warnings = Plan.compile(loaded).policy_warnings()
        except PolicyValidationError as error:
            # Here, unlike in lint, the user asked for every problem at once.
            for problem in error.problems:
                print_error(str(problem))
            invalid += 1
            continue
        for warning in warnings:
            (print_error if strict else print_warning)(str(warning))
        if strict and warnings:
            invalid += 1
            continue
        noted = f", {len(warnings)} warning{'s' * (len(warnings) != 1)}" if warnings else ""
        typer.echo(f"{loaded.source}: valid (policy {loaded.metadata.name}, "
                   f"sha256 {loaded.sha256[:12]}{noted})")
    if invalid:
        raise typer.Exit(ERROR)


PolicyArgument = Annotated[
    str | None,
    typer.Argument(metavar="FILE|NAME", help="Policy file or built-in name (default: as lint "
                   "finds it).", autocompletion=options.complete_policies),
]
EXPORT_FORMATS = {"kubernetes": "Namespace with PSA labels, NetworkPolicy, "
                  "ValidatingAdmissionPolicy and its binding"}


@app.command("show")
@fails_cleanly
def policy_show(
    name: PolicyArgument = None,
) -> None:
    """Print the effective policy, after extends and defaults."""
    from paracle_guard.policy.loader import effective_policy_yaml, load_policy

    typer.echo(effective_policy_yaml(load_policy(name)), nl=False)


@app.command("export")
@fails_cleanly
def policy_export(
    name: PolicyArgument = None,
    export_format: Annotated[str, options.format_option(EXPORT_FORMATS, default="kubernetes")]
    = "kubernetes",
    namespace: Annotated[
        str, typer.Option("--namespace", metavar="NAME",
                          help="The namespace the exported objects guard.")
    ] = "paracle-sandboxes",
    output: Annotated[str | None, options.output_option(
        help="Write the objects to FILE instead of standard output.")] = None,
) -> None:
    """Export the policy for a cluster: PSA labels, NetworkPolicy, ValidatingAdmissionPolicy."""
    from paracle_guard.admission import export_kubernetes
    from paracle_guard.launcher.k8s_backend import render_manifests
    from paracle_guard.policy.loader import load_policy

    loaded = load_policy(name)
    try:
        objects = export_kubernetes(loaded, namespace)
    except ValueError as error:
        raise InputError(f"--namespace {namespace}: {error}") from None
    if output is None or output == STDOUT:
        typer.echo(render_manifests(objects), nl=False)
    else:
        refuse_inputs([output], [loaded.source or ""], "--output")
        write_file(output, render_manifests(objects))


@app.command("schema")
@fails_cleanly
def policy_schema() -> None:
    """Print the JSON Schema of the policy file."""
    from paracle_guard.policy.loader import policy_schema_text

    typer.echo(policy_schema_text(), nl=False)


@app.command("list")
@fails_cleanly
def policy_list() -> None:
    """List the built-in policies."""
    from paracle_guard.policy.loader import builtin_policy_names

    for name in builtin_policy_names():
        typer.echo(name)

