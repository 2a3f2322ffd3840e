"""Release hygiene: the README's pre-commit snippet, the changelog and the version agree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from paracle_guard import __version__

ROOT = Path(__file__).resolve().parents[1]


def _snippet_rev() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"repo: https://github.com/paracle/paracle-guard\n\s+rev: (\S+)", readme)
    assert found is not None, "README.md has no pre-commit snippet"
    return found.group(1)


def _released() -> list[str]:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    return re.findall(r"^## (\d+\.\d+\.\d+)\b", changelog, flags=re.MULTILINE)


def test_the_snippet_pins_the_newest_release_of_the_changelog() -> None:
    released = _released()
    assert released, "CHANGELOG.md lists no release"
    assert _snippet_rev() == f"v{released[0]}"


def test_the_version_is_the_newest_release_or_a_dev_version_after_it() -> None:
    declared = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(),
                         flags=re.MULTILINE)
    assert declared is not None and declared.group(1) == __version__
    newest = tuple(int(part) for part in _released()[0].split("."))
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(\.dev\d+)?", __version__)
    assert match is not None, __version__
    current = tuple(int(part) for part in match.group(1, 2, 3))
    released_now = current == newest and not match.group(4)
    developing_next = current > newest and bool(match.group(4))
    assert released_now or developing_next


def test_the_pinned_tag_exists_and_carries_the_hook_where_tags_were_fetched() -> None:
    tags = subprocess.run(["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True)
    if tags.returncode != 0 or not tags.stdout.strip():
        pytest.skip("this checkout has no tags (a shallow or tag-less clone)")
    rev = _snippet_rev()
    assert rev in tags.stdout.split(), f"tag {rev} does not exist"
    hooks = subprocess.run(["git", "show", f"{rev}:.pre-commit-hooks.yaml"], cwd=ROOT,
                           capture_output=True, text=True)
    assert hooks.returncode == 0 and "id: paracle-guard-lint" in hooks.stdout
