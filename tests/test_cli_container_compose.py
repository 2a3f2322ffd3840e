"""``paracle-guard compose`` and ``paracle-guard container``, through Typer's runner.

The compose reports must carry the compose file's line numbers, in JSON (checked
against the published report schema) and SARIF (against the official schema
when the shared data folder is present). Container commands run against the test
engine with containers created, never started.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from tests.docker_images import BuiltImage, TestImages
from tests.runtime_containers import (
    HARDENED,
    PLAIN_IMAGE,
    ContainerFactory,
    container_factory,
    with_changes,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CASES = REPO_ROOT / "tests" / "sources" / "compose_cases"
REPORT_SCHEMA = REPO_ROOT / "schemas" / "report.schema.json"
SARIF_SCHEMA = REPO_ROOT / ".." / "shared" / "data" / "sarif-schema-2.1.0.json"
runner = CliRunner()


def copy_case(workdir: Path, case: str, name: str = "compose.yaml") -> Path:
    target = workdir / name
    shutil.copy(CASES / f"{case}.yaml", target)
    return target


def line_of(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.strip().startswith(text))


def run_json(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator(json.loads(REPORT_SCHEMA.read_text())).validate(document)
    return result.exit_code, document


# --- compose ------------------------------------------------------------------------


def test_hardened_compose_file_passes(workdir: Path) -> None:
    copy_case(workdir, "hardened")
    result = runner.invoke(app, ["compose", "compose.yaml"])
    assert result.exit_code == 0, result.output


def test_json_carries_the_compose_lines(workdir: Path) -> None:
    path = copy_case(workdir, "pg307-sensitive-mount")
    code, document = run_json(["compose", "compose.yaml"])
    assert code == 1
    [result] = document["results"]
    assert (result["target"], result["kind"]) == ("compose.yaml#sandbox", "compose")
    [finding] = result["findings"]
    assert (finding["rule"], finding["name"]) == ("PG307", "sensitive-mount")
    assert finding["location"] == {"path": "compose.yaml",
                                   "line": line_of(path, "- /var/run/docker.sock"),
                                   "end_line": None, "layer": None}


def test_sarif_carries_the_compose_lines(workdir: Path) -> None:
    path = copy_case(workdir, "pg304-new-privileges-allowed")
    result = runner.invoke(app, ["compose", "compose.yaml", "--format", "sarif"])
    assert result.exit_code == 1, result.output
    sarif = json.loads(result.stdout)
    if SARIF_SCHEMA.is_file():
        jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)
    [found] = sarif["runs"][0]["results"]
    assert found["ruleId"] == "PG304"
    physical = found["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "compose.yaml"
    assert physical["region"]["startLine"] == line_of(path, '- "no-new-privileges:false"')


def test_default_compose_file_is_found(workdir: Path) -> None:
    copy_case(workdir, "pg303-privileged", "docker-compose.yml")
    code, document = run_json(["compose"])
    assert code == 1
    assert [r["target"] for r in document["results"]] == ["docker-compose.yml#sandbox"]


def test_no_compose_file_is_one_clear_line(workdir: Path) -> None:
    result = runner.invoke(app, ["compose"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "paracle-guard: error: .: no compose file here or in a parent folder (looked for "
        "compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml)"
    ]
    result = runner.invoke(app, ["compose", "missing.yaml"])
    assert result.exit_code == 2
    assert "missing.yaml: no such compose file" in result.output


def test_broken_compose_file_is_a_parse_error_finding(workdir: Path) -> None:
    copy_case(workdir, "pg901-parse-error")
    code, document = run_json(["compose", "compose.yaml"])
    assert code == 1
    [finding] = document["results"][0]["findings"]
    assert (finding["rule"], finding["location"]["line"]) == ("PG901", 5)


def test_options_shared_with_lint(workdir: Path) -> None:
    copy_case(workdir, "pg311-published-port")  # a warning under the sandbox policy
    assert runner.invoke(app, ["compose", "compose.yaml", "--fail-on", "error"]).exit_code == 0
    assert runner.invoke(app, ["compose", "compose.yaml", "--ignore", "published-port"]
                         ).exit_code == 0
    out = workdir / "report.json"
    result = runner.invoke(app, ["compose", "compose.yaml", "--format", "json", "-o", str(out)])
    assert result.exit_code == 1
    assert json.loads(out.read_text())["summary"]["warning"] == 1
    # -f names a compose file here, as in docker compose; a format name says so.
    mistaken = runner.invoke(app, ["compose", "-f", "json"])
    assert mistaken.exit_code == 2
    assert "-f json: no such compose file" in mistaken.output
    assert "--format json" in mistaken.output


def test_with_dockerfiles_lints_the_services_builds(workdir: Path) -> None:
    (workdir / "app").mkdir()
    # The stage declares the ARG: a build argument reaches only a declared one.
    (workdir / "app" / "Containerfile").write_text(
        "FROM python:3.10-slim\nARG RUN_AS\nUSER ${RUN_AS}\n")
    hardened = (CASES / "hardened.yaml").read_text().replace(
        "image: paracle/sandbox:1.0",
        "build:\n      context: ./app\n      dockerfile: Containerfile\n      args:\n"
        "        RUN_AS: root",
    )
    (workdir / "compose.yaml").write_text(hardened)
    code, document = run_json(["compose", "compose.yaml"])
    assert code == 0 and [r["kind"] for r in document["results"]] == ["compose"]
    code, document = run_json(["compose", "compose.yaml", "--with-dockerfiles"])
    assert code == 1
    assert [(r["kind"], r["target"]) for r in document["results"]] == [
        ("compose", "compose.yaml#sandbox"), ("dockerfile", "app/Containerfile")]
    # The build arg from the compose file reaches the Dockerfile: USER root.
    assert [f["rule"] for f in document["results"][1]["findings"]] == ["PG101"]


def test_with_dockerfiles_and_a_missing_dockerfile(workdir: Path) -> None:
    text = (CASES / "hardened.yaml").read_text().replace("image: paracle/sandbox:1.0",
                                                        "build: ./nowhere")
    (workdir / "compose.yaml").write_text(text)
    result = runner.invoke(app, ["compose", "compose.yaml", "--with-dockerfiles"])
    assert result.exit_code == 2
    assert "compose.yaml#sandbox: build: nowhere/Dockerfile: no such file" in result.output


def test_compose_as_a_real_process(workdir: Path) -> None:
    copy_case(workdir, "pg312-unconfined-profile")
    process = subprocess.run(
        [str(Path(sys.executable).parent / "paracle-guard"), "compose", "compose.yaml"],
        capture_output=True, text=True, cwd=workdir, check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "XDG_CACHE_HOME": str(workdir)},
    )
    assert process.returncode == 1, process.stderr
    assert "compose.yaml:10: PG312 unconfined-profile [error]" in process.stdout


# --- container ---------------------------------------------------------------------------


@pytest.fixture
def containers(docker_client: Any, test_images: TestImages) -> Iterator[ContainerFactory]:
    with container_factory(docker_client, test_images.run_id) as factory:
        yield factory


@pytest.fixture(scope="session")
def plain_image(test_images: TestImages) -> BuiltImage:
    return test_images.get(PLAIN_IMAGE)


@pytest.mark.docker
def test_container_command(workdir: Path, containers: ContainerFactory,
                           plain_image: BuiltImage) -> None:
    hardened = containers.create(plain_image.id, **HARDENED)
    risky = containers.create(plain_image.id, **with_changes(cap_add=["SYS_ADMIN"]))
    result = runner.invoke(app, ["container", hardened])
    assert result.exit_code == 0, result.output
    code, document = run_json(["container", hardened, risky])
    assert code == 1
    assert [r["kind"] for r in document["results"]] == ["container", "container"]
    assert document["results"][0]["findings"] == []
    [finding] = document["results"][1]["findings"]
    assert finding["rule"] == "PG302"
    assert finding["location"]["path"] == "HostConfig.CapAdd[0]"
    result = runner.invoke(app, ["container", risky, "--format", "sarif"])
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    if SARIF_SCHEMA.is_file():
        jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)


@pytest.mark.docker
def test_container_all_and_labels(workdir: Path, containers: ContainerFactory,
                                  plain_image: BuiltImage) -> None:
    marker = f"pg-cli-{containers.run_id}"
    tagged = containers.create(plain_image.id, labels={marker: "yes"}, **HARDENED)
    containers.create(plain_image.id, labels={marker: "no"}, **with_changes(privileged=True))
    code, document = run_json(["container", "--label", f"{marker}=yes"])
    assert code == 0
    assert [r["metadata"]["id"] for r in document["results"]] == [tagged]
    code, document = run_json(["container", "--all", "--label", marker])
    assert code == 1 and len(document["results"]) == 2


@pytest.mark.docker
def test_unknown_container_is_one_clear_line(workdir: Path, docker_client: Any) -> None:
    result = runner.invoke(app, ["container", "pg-no-such-container-xyz"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "paracle-guard: error: no container 'pg-no-such-container-xyz' on the Docker Engine"
    ]


def test_container_needs_something_to_check(workdir: Path) -> None:
    result = runner.invoke(app, ["container"])
    assert result.exit_code == 2
    assert "name at least one container, or use --all or --label" in result.output
