"""CONTRIBUTING.md points only at files that exist: a checklist naming a moved file misleads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `path/to/file.ext` in backticks; <placeholders> are templates, not files.
PATH = re.compile(r"`([\w./-]+/[\w.-]+\.(?:py|md|json|yaml))[`#:]")


def test_every_file_contributing_names_exists() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    named = set(PATH.findall(text))
    assert len(named) > 20  # the checklists name their files
    missing = sorted(path for path in named
                     if not (ROOT / path).exists() and not (ROOT / "paracle_guard" / path).exists())
    assert missing == []
