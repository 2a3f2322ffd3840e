"""The published pre-commit hook, run by the real pre-commit against a throw-away repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

GOOD = textwrap.dedent(
    """\
    FROM python:3.10-slim
    RUN pip install --no-cache-dir requests==2.32.3
    USER 1000:1000
    """
)
BAD = textwrap.dedent(
    """\
    FROM python:latest
    RUN apt-get update && apt-get install -y sudo
    """
)


def _pre_commit() -> list[str]:
    found = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("pre-commit is not installed: it is a test dependency ('.[test]')")
    return [found]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _try_repo(cwd: Path) -> subprocess.CompletedProcess[str]:
    # try-repo builds the hook from this checkout as it is, uncommitted changes included.
    return subprocess.run(
        [*_pre_commit(), "try-repo", str(REPO_ROOT), "paracle-guard-lint"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_hook_passes_a_good_commit_and_stops_a_bad_one(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    _git(project, "config", "user.email", "dev@example.invalid")
    _git(project, "config", "user.name", "dev")

    (project / "Dockerfile").write_text(GOOD)
    (project / "README.md").write_text("not a Dockerfile\n")
    _git(project, "add", ".")
    passing = _try_repo(project)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout
    _git(project, "commit", "-q", "-m", "good")

    (project / "build").mkdir()
    (project / "build" / "app.dockerfile").write_text(BAD)
    _git(project, "add", ".")
    failing = _try_repo(project)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "Failed" in failing.stdout
    assert "build/app.dockerfile" in failing.stdout
    assert "PG101" in failing.stdout and "PG103" in failing.stdout
