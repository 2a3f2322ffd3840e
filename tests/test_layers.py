"""The house plan's layers, as CONTRIBUTING.md's tour states them, checked against every import.

Data flows one way (source -> Subject -> engine -> Report -> reporter): a module may
import its own room and the rooms below it, never one above. Imports only for type
checking count too: a reader of the code meets them all the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import paracle_guard

PACKAGE = Path(paracle_guard.__file__).parent

# Small modules that import nothing of ours but other leaves.
LEAVES = {"severity", "location", "units", "yaml12", "errors", "exit_codes", "cel",
          "image_tree", "disk_cache", "progress", "engine_protocol"}

# room -> the rooms it may import (besides itself, the leaves and the package root,
# which only carries __version__ and the lazy launcher API).
MAY_IMPORT: dict[str, set[str]] = {
    "leaf": set(),
    "subject": set(),
    "policy": set(),
    "report": set(),
    "docker_client": set(),
    "rules": {"subject", "policy"},
    "sources": {"subject", "docker_client"},
    "engine": {"rules", "policy", "subject", "report"},
    "admission": {"rules", "policy", "subject"},
    "authz": {"engine", "rules", "policy", "subject", "sources", "report", "docker_client"},
    "launcher": {"authz", "engine", "admission", "rules", "policy", "subject", "sources",
                 "report", "docker_client"},
    "cli": {"launcher", "authz", "engine", "admission", "rules", "policy", "subject",
            "sources", "report", "docker_client", "warm"},
    # The warm-start server forks workers that run the command line; it is handed the
    # command line to run, and imports the rest by name (importlib), never by statement.
    "warm": set(),
    "entry": {"warm", "cli"},
}


def room_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "root"
    head = parts[0]
    if head in LEAVES:
        return "leaf"
    if head.startswith("subject"):
        return "subject"
    if head in ("cli", "cli_commands", "cli_kit"):
        return "cli"
    if head == "engine_reader":  # the authorization plugin's bounded reader: the engine's door too
        return "docker_client"
    return head


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, here: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = here.split(".")[: -node.level] if node.level else []
                found.add(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] == "paracle_guard"}


def test_every_room_imports_only_its_own_and_the_rooms_below() -> None:
    breaches = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        room = room_of(here)
        if room == "root":
            continue
        assert room in MAY_IMPORT, f"{here}: room {room} is not in the house plan"
        allowed = MAY_IMPORT[room] | {room, "leaf", "root"}
        for target in imported(ast.parse(path.read_text(encoding="utf-8")), here):
            if room_of(target) not in allowed:
                breaches.append(f"{here} ({room}) imports {target} ({room_of(target)})")
    assert breaches == []


def test_leaves_import_only_leaves() -> None:
    for name in sorted(LEAVES):
        path = PACKAGE / f"{name}.py"
        assert path.exists(), f"leaf {name} is gone: update LEAVES and CONTRIBUTING.md"
        targets = imported(ast.parse(path.read_text(encoding="utf-8")), f"paracle_guard.{name}")
        assert {room_of(t) for t in targets} <= {"leaf"}, (name, targets)


def test_contributing_names_the_same_leaves_and_rooms() -> None:
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    leaf_row = next(line for line in text.splitlines() if line.startswith("| leaves:"))
    named = set(re.findall(r"`(\w+)\.py`", leaf_row.split("|")[1]))
    assert named == LEAVES
    for room in MAY_IMPORT:
        if room not in ("leaf", "cli"):
            assert f"`{room}" in text, f"CONTRIBUTING.md's tour does not name {room}"
