"""The published pre-commit hook, run by the real pre-commit against a throw-away repository."""

from __future__ import annotations

import os
import re
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


def _try_repo(cwd: Path, hook: str | None = "paracle-guard-lint"
              ) -> subprocess.CompletedProcess[str]:
    # try-repo builds the hooks from this checkout as it is, uncommitted changes included;
    # with no hook named it runs them all (one environment to build, not three).
    return subprocess.run(
        [*_pre_commit(), "try-repo", str(REPO_ROOT), *([hook] if hook else [])],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    _git(project, "config", "user.email", "dev@example.invalid")
    _git(project, "config", "user.name", "dev")
    return project


def test_hook_passes_a_good_commit_and_stops_a_bad_one(tmp_path: Path) -> None:
    project = _project(tmp_path)

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


CASES = REPO_ROOT / "tests" / "sources"


def test_compose_and_k8s_hooks_judge_what_compose_and_the_cluster_run(tmp_path: Path) -> None:
    project = _project(tmp_path)
    shutil.copy(CASES / "compose_cases" / "hardened.yaml", project / "compose.yaml")
    (project / "k8s").mkdir()
    shutil.copy(CASES / "k8s_cases" / "hardened.yaml", project / "k8s" / "pod.yaml")
    (project / "notes.yaml").write_text("not: [a manifest\n")  # outside both hooks' files
    _git(project, "add", ".")
    passing = _try_repo(project, None)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert re.search(r"paracle-guard compose\.+Passed", passing.stdout), passing.stdout
    assert re.search(r"paracle-guard k8s\.+Passed", passing.stdout), passing.stdout
    _git(project, "commit", "-q", "-m", "good")

    # The override alone changes: the hook judges the project it makes with compose.yaml.
    (project / "compose.override.yaml").write_text(
        "services:\n  sandbox:\n    privileged: true\n")
    pod = (project / "k8s" / "pod.yaml").read_text()
    (project / "k8s" / "pod.yaml").write_text(
        pod.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n"
                    "        privileged: true", 1))
    _git(project, "add", ".")
    failing = _try_repo(project, None)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert re.search(r"paracle-guard compose\.+Failed", failing.stdout), failing.stdout
    assert re.search(r"paracle-guard k8s\.+Failed", failing.stdout), failing.stdout
    assert "compose.override.yaml:3: PG303 privileged" in failing.stdout
    assert "k8s/pod.yaml: Pod sandbox" in failing.stdout
    assert re.search(r"k8s/pod\.yaml:\d+: PG303 privileged", failing.stdout)
