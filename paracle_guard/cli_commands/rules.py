"""``paracle-guard rules``: the rules, as built in or as a policy has them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_kit import options
from paracle_guard.cli_kit.house import fails_cleanly, group_app
from paracle_guard.cli_kit.options import ColorOption, DocumentFormatOption
from paracle_guard.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from paracle_guard.engine import CatalogueEntry


app = group_app("List the rules, or explain one.", invoke_without_command=True)

RulesPolicyOption = Annotated[str | None, options.policy_option(
    help="Show the rules as this policy (file or built-in name) has them: its custom rules "
    "too, and each rule's severity there. Default: the built-in rules at their default "
    "severities.")]


@app.callback()
@fails_cleanly
def rules_table(
    ctx: typer.Context,
    policy: RulesPolicyOption = None,
    output_format: DocumentFormatOption = "text",
    color: ColorOption = None,
) -> None:
    """List every rule with its code, name, severity and what it checks."""
    if ctx.invoked_subcommand is not None:
        return
    from paracle_guard.cli_kit.outputs import wants_color
    from paracle_guard.cli_kit.rule_listing import render_json, render_table

    entries, policy_name = _rule_catalogue(policy)
    if output_format == "json":
        typer.echo(render_json(entries, policy_name), nl=False)
    else:
        typer.echo(render_table(entries, color=wants_color(color, sys.stdout.isatty())), nl=False)


@app.command("explain")
@fails_cleanly
def rules_explain(
    rule_id: Annotated[str, typer.Argument(metavar="RULE", help="Rule code or name.",
                                           autocompletion=options.complete_rules)],
    policy: RulesPolicyOption = None,
    output_format: DocumentFormatOption = "text",
) -> None:
    """Explain one rule: what it finds, why it matters, how to fix it."""
    import json

    from paracle_guard.cli_kit.rule_listing import as_json, explain
    from paracle_guard.rules.base import find_rule

    entries, policy_name = _rule_catalogue(policy)
    found = find_rule(rule_id, [entry.rule for entry in entries])
    if found is None:
        words = [word for entry in entries for word in (entry.rule.code, entry.rule.name)]
        raise InputError(f"{rule_id}: no rule has this code or name"
                         f"{did_you_mean(rule_id, words)} (see 'paracle-guard rules')")
    entry = next(entry for entry in entries if entry.rule is found)
    if output_format == "json":
        typer.echo(json.dumps(as_json(entry), indent=2, ensure_ascii=False))
    else:
        typer.echo(explain(entry, policy_name), nl=False)


def _rule_catalogue(policy: str | None) -> tuple[list[CatalogueEntry], str | None]:
    """The rules as ``policy`` sees them; without one, every built-in rule as it ships."""
    from paracle_guard.engine import CatalogueEntry, Plan
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.rules.base import all_rules

    if policy is None:
        return [CatalogueEntry(rule, rule.severity.value, custom=False)
                for rule in all_rules()], None
    plan = Plan.compile(load_policy(policy))
    return plan.catalogue, plan.policy.metadata.name

