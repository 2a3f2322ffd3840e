"""What is wrong with a policy, and where: a file, a line and a path inside the document.

Kept apart from the YAML reader (``yaml_lines``) so that judging subjects under an
already-resolved policy (``engine``) never imports PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

YamlPath = tuple[str | int, ...]
_Found = TypeVar("_Found")


def nearest(table: Mapping[YamlPath, _Found], path: YamlPath) -> _Found | None:
    """``table``'s entry for ``path``, or for its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        found = table.get(path[:end])
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy, at a place a user can find."""

    file: str
    line: int | None
    path: YamlPath
    message: str

    @property
    def path_text(self) -> str:
        return format_path(self.path)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.path:
            where += f": {format_path(self.path)}"
        return f"{where}: {self.message}"


def format_path(path: YamlPath) -> str:
    """``controls.user.allowed_uids[0]``; keys that are not plain words are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out
