"""`paracle-guard image`: every image rule against real images, through the engine and a tarball.

Each rule has a failing image and the passing one ("minimal"); the same image
checked through the engine and through ``--input`` on its ``docker save``
archive gives the same findings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from tests.docker_images import TestImages

runner = CliRunner()

# image in the test catalogue -> rules that must fire on it (and no others)
EXPECTED: dict[str, set[str]] = {
    "minimal": set(),
    "root-default": {"PG101"},
    "root-by-name": {"PG101"},
    "numeric-user": {"PG102", "PG105"},  # USER 4242:4242: neither id is the sandbox's
    "packages": {"PG103", "PG403", "PG404"},  # its apk database lists sudo
    "privileged-files": {"PG103", "PG205", "PG306"},
    "secrets": {"PG601", "PG602"},
    "runtime-config": {"PG203", "PG204", "PG310"},
    "whiteouts": {"PG306"},
}

# A policy that keeps the sandbox controls and makes PG404 fire on a small database.
POLICY = """\
apiVersion: paracle-guard/v1
kind: Policy
metadata: {name: image-tests}
extends: [sandbox]
controls:
  packages:
    max_installed: 5
    deny: {sudo: error, curl: warning, requests: warning}
"""


def _json(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def _comparable(report: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    findings = report["results"][0]["findings"]
    return sorted(
        (f["rule"], f["message"], f["location"]["layer"],
         None if f["location"]["path"] == report["results"][0]["target"] else f["location"]["path"])
        for f in findings
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_image_rules_through_engine_and_archive(
    name: str, test_images: TestImages, policy_file: Path
) -> None:
    built = test_images.get(name)
    code, live = _json(["image", built.ref, "--policy", str(policy_file)])
    assert {f["rule"] for f in live["results"][0]["findings"]} == EXPECTED[name]
    assert code == (1 if EXPECTED[name] else 0)
    assert live["results"][0]["kind"] == "image"
    assert live["results"][0]["metadata"]["id"] == built.id

    archive = test_images.archive(name)
    _, saved = _json(["image", built.ref, "--input", str(archive), "--policy", str(policy_file)])
    assert _comparable(saved) == _comparable(live)


def test_findings_inside_the_image_carry_path_and_layer(
    test_images: TestImages, policy_file: Path
) -> None:
    built = test_images.get("privileged-files")
    _, report = _json(["image", built.ref, "--policy", str(policy_file)])
    setuid = [f for f in report["results"][0]["findings"] if f["rule"] == "PG306"]
    assert "/usr/bin/sudo" in {f["location"]["path"] for f in setuid}
    assert all(f["location"]["layer"].startswith("sha256:") for f in setuid)


def test_secret_values_are_never_printed(test_images: TestImages) -> None:
    built = test_images.get("secrets")
    result = runner.invoke(app, ["image", built.ref, "--policy", "sandbox"])
    assert result.exit_code == 1
    assert "API_TOKEN" in result.output
    assert "s3cr3t-value-never-printed" not in result.output
    assert "hunter2" not in result.output


def test_text_report_names_id_and_tags(test_images: TestImages) -> None:
    built = test_images.get("minimal")
    result = runner.invoke(app, ["image", built.ref, "--policy", "sandbox"])
    assert result.exit_code == 0, result.output
    assert f"{built.ref}: image {built.id}, tags {built.ref}" in result.output


def test_missing_image_is_a_clear_error(test_images: TestImages) -> None:
    result = runner.invoke(app, ["image", "paracle-guard-test/not-built:never"])
    assert result.exit_code == 2
    assert "not present locally; build or pull it first" in result.output


def test_unreachable_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = runner.invoke(app, ["image", "anything:1"])
    assert result.exit_code == 2
    assert "cannot reach the Docker Engine" in result.output


def test_archive_without_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                test_images: TestImages) -> None:
    archive = test_images.archive("root-default")
    # No daemon is asked: an unreachable DOCKER_HOST changes nothing.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, report = _json(["image", "--input", str(archive), "--policy", "sandbox"])
    assert code == 1
    assert {f["rule"] for f in report["results"][0]["findings"]} == {"PG101"}


def test_image_needs_a_reference_or_an_archive() -> None:
    result = runner.invoke(app, ["image"])
    assert result.exit_code == 2
    assert "--input" in result.output
