"""sources/discovery.py: Docker's names for Dockerfiles, and the pre-commit hook's same rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from paracle_guard.sources.discovery import find_dockerfiles, is_dockerfile_name

HOOKS = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"

NAMES = {
    "Dockerfile": True,
    "dockerfile": True,  # the docker CLI's fallback name
    "Dockerfile.dev": True,
    "Dockerfile.sandbox.api": True,
    "app.Dockerfile": True,
    "app.dockerfile": True,
    "Containerfile": True,
    "Containerfile.ubi": True,
    "Dockerfile.dockerignore": False,  # BuildKit's per-Dockerfile ignore file
    "app.Dockerfile.dockerignore": False,
    "Dockerfile.md": False,
    "Dockerfile.MD": False,
    "Dockerfile.rst": False,
    "Dockerfile.txt": False,
    "Containerfile.adoc": False,
    "Dockerfile.html": False,
    "README.md": False,
    ".dockerignore": False,
    "dockerfile.dev": False,
    "Dockerfile-dev": False,
    "mydockerfile": False,
    "forgot-user.Dockerfile.bad": False,
}


@pytest.mark.parametrize(("name", "matches"), sorted(NAMES.items()))
def test_is_dockerfile_name(name: str, matches: bool) -> None:
    assert is_dockerfile_name(name) is matches


def _hook_selects(path: str) -> bool:
    (hook,) = [h for h in yaml.safe_load(HOOKS.read_text()) if h["id"] == "paracle-guard-lint"]
    return bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)


@pytest.mark.parametrize(("name", "matches"), sorted(NAMES.items()))
@pytest.mark.parametrize("folder", ["", "build/", "a/b.c/"])
def test_the_pre_commit_hook_selects_the_same_files(folder: str, name: str, matches: bool) -> None:
    assert _hook_selects(folder + name) is matches


def test_a_folder_walk_skips_ignore_files_and_docs(tmp_path: Path) -> None:
    for name in ("Dockerfile", "Dockerfile.dockerignore", "Dockerfile.md", "dockerfile"):
        (tmp_path / name).write_text("FROM alpine\n")
    found = [Path(path).name for path in find_dockerfiles([str(tmp_path)])]
    assert found == ["Dockerfile", "dockerfile"]
