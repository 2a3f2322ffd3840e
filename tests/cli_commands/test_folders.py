"""``--folders`` (the pre-commit hooks' mode): a changed file stands for its whole folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from paracle_guard.cli import app

CASES = Path(__file__).resolve().parents[1] / "sources"
runner = CliRunner()


def targets(args: list[str], stdin: str | None = None) -> list[str]:
    result = runner.invoke(app, [*args, "--format", "json"], input=stdin)
    assert result.exit_code in (0, 1), result.output
    return sorted({r["target"].split("#")[0] for r in json.loads(result.stdout)["results"]})


def test_k8s_folders_reads_each_named_files_folder_once_and_keeps_stdin(workdir: Path) -> None:
    (workdir / "deploy").mkdir()
    for name in ("hardened.yaml", "pg101-root-user.yaml"):
        shutil.copy(CASES / "k8s_cases" / name, workdir / "deploy" / name)
    hardened = (CASES / "k8s_cases" / "hardened.yaml").read_text()
    found = targets(["k8s", "--folders", "deploy/hardened.yaml", "-", "deploy/hardened.yaml",
                     "--stdin-filename", "piped.yaml"], stdin=hardened)
    assert found == ["deploy/hardened.yaml", "deploy/pg101-root-user.yaml", "piped.yaml"]


def test_compose_folders_reads_the_project_of_each_named_files_folder(workdir: Path) -> None:
    (workdir / "app").mkdir()
    shutil.copy(CASES / "compose_cases" / "hardened.yaml", workdir / "app" / "compose.yaml")
    (workdir / "app" / "README").write_text("not compose\n")
    found = targets(["compose", "--folders", "--cgroup-version", "1", "app/README"])
    assert [Path(target).name for target in found] == ["compose.yaml"]
