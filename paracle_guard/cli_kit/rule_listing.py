"""``paracle-guard rules``: the rules as a table, as JSON, or one rule explained.

Each entry is a rule as a policy sees it (``engine.CatalogueEntry``): built in
or custom, with its severity under that policy, ``off`` included.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paracle_guard.engine import CatalogueEntry

COLUMNS = ("code", "name", "severity", "applies to", "what it finds")
# How explain names a kind of subject when a rule words its fix for it.
KIND_NAMES = {"container": "container", "compose": "compose", "k8s": "Kubernetes",
              "image": "image", "dockerfile": "Dockerfile"}


def _row(entry: CatalogueEntry) -> tuple[str, str, str, str, str]:
    rule = entry.rule
    severity = entry.severity
    if severity != rule.severity.value:
        severity += f" (default {rule.severity.value})"
    kinds = ",".join(sorted(rule.kinds))
    return rule.code, rule.name, severity, kinds, rule.summary + (" [custom]" * entry.custom)


def render_table(entries: list[CatalogueEntry], *, color: bool) -> str:
    rows = [_row(entry) for entry in entries]
    if color:
        import io

        from rich.console import Console
        from rich.table import Table

        table = Table(*COLUMNS)
        for row in rows:
            table.add_row(*row)
        buffer = io.StringIO()
        Console(file=buffer, force_terminal=True, no_color=False, width=160,
                highlight=False).print(table)
        return buffer.getvalue()
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(4)]
    lines = []
    for row in [COLUMNS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]))
    return "\n".join(lines) + "\n"


def as_json(entry: CatalogueEntry) -> dict[str, Any]:
    rule = entry.rule
    return {
        "code": rule.code,
        "name": rule.name,
        "severity": entry.severity,
        "default_severity": rule.severity.value,
        "custom": entry.custom,
        "applies_to": sorted(rule.kinds),
        "summary": rule.summary,
        "fix": rule.fix,
        "fixes": dict(rule.fixes),
        "rationale": rule.rationale,
        "references": list(rule.references),
    }


def render_json(entries: list[CatalogueEntry], policy: str | None) -> str:
    document = {"policy": policy, "rules": [as_json(entry) for entry in entries]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def explain(entry: CatalogueEntry, policy: str | None) -> str:
    rule = entry.rule
    severity = entry.severity
    if policy is not None and severity != rule.severity.value:
        severity += f" under policy {policy}; default {rule.severity.value}"
    lines = [f"{rule.code} {rule.name} [{severity}]",
             f"applies to: {', '.join(sorted(rule.kinds))}"]
    if entry.custom:
        lines.append(f"custom rule of policy {policy}")
    lines += ["", rule.summary]
    if rule.rationale:
        lines += ["", "Why: " + rule.rationale]
    lines += ["", "Fix: " + rule.fix]
    lines += [f"Fix ({KIND_NAMES.get(kind, kind)}): {fix}" for kind, fix in rule.fixes.items()]
    if rule.references:
        lines += ["", "References: " + "; ".join(rule.references)]
    return "\n".join(lines) + "\n"
