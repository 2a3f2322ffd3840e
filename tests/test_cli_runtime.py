"""The runtime control through the commands, against the real engine: ``container``,
``compose`` and ``k8s`` under the built-in ``sandbox-gvisor`` policy.

Containers are created (never started) with and without ``--runtime runsc``;
creating one under runsc needs the runtime registered with the engine, which
``scripts/docker-engine`` does (the ``gvisor`` fixture fails in CI without it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from tests.docker_images import BuiltImage, TestImages
from tests.runtime_containers import HARDENED, PLAIN_IMAGE, ContainerFactory, container_factory

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def containers(docker_client: Any, test_images: TestImages) -> Iterator[ContainerFactory]:
    with container_factory(docker_client, test_images.run_id) as factory:
        yield factory


def findings(args: list[str]) -> tuple[int, list[list[tuple[str, str]]]]:
    """Exit code and, per checked target, its (rule, message) pairs, from the JSON report."""
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    return result.exit_code, [[(f["rule"], f["message"]) for f in r["findings"]
                               if f["rule"] != "PG808"] for r in document["results"]]


@pytest.mark.docker
def test_container_flags_a_runc_container_under_sandbox_gvisor(
    workdir: Path, containers: ContainerFactory, test_images: TestImages, gvisor: str
) -> None:
    image: BuiltImage = test_images.get(PLAIN_IMAGE)
    under_gvisor = containers.create(image.id, runtime=gvisor, **HARDENED)
    under_runc = containers.create(image.id, **HARDENED)  # the engine's default: runc
    code, results = findings(["container", under_gvisor, under_runc,
                              "--policy", "sandbox-gvisor"])
    assert code == 1
    assert results == [[], [("PG313", "runtime runc is not allowed: controls.runtime.allowed "
                                      "is runsc")]]
    # The same runc container passes the sandbox policy, which asks for no runtime.
    assert findings(["container", under_runc, "--policy", "sandbox"]) == (0, [[]])


def test_compose_flags_a_service_without_runtime_runsc(workdir: Path) -> None:
    shutil.copy(REPO / "tests" / "sources" / "compose_cases" / "hardened.yaml",
                workdir / "compose.yaml")
    code, results = findings(["compose", "compose.yaml", "--policy", "sandbox-gvisor"])
    assert (code, results) == (1, [[("PG313", "no runtime is named, so the engine's default "
                                               "runs it, not runsc")]])
    text = (workdir / "compose.yaml").read_text()
    (workdir / "compose.yaml").write_text(text + "    runtime: runsc\n")
    assert findings(["compose", "compose.yaml", "--policy", "sandbox-gvisor"]) == (0, [[]])


def test_k8s_flags_a_pod_without_the_runtime_class(workdir: Path) -> None:
    manifest = workdir / "pod.yaml"
    shutil.copy(REPO / "tests" / "sources" / "k8s_cases" / "hardened.yaml", manifest)
    code, results = findings(["k8s", "pod.yaml", "--policy", "sandbox-gvisor"])
    assert code == 1 and [rule for rule, _ in results[0]] == ["PG313"]
    text = manifest.read_text().replace("spec:\n  automountServiceAccountToken",
                                        "spec:\n  runtimeClassName: gvisor\n"
                                        "  automountServiceAccountToken", 1)
    manifest.write_text(text)
    assert findings(["k8s", "pod.yaml", "--policy", "sandbox-gvisor"]) == (0, [[]])
