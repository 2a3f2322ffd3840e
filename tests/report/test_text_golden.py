"""The text report of a compose project and of a Deployment, line for line.

The golden files show what a person reads: each service, workload and container
under its own header, the pod's settings once (not once per container), fixes
in the words of the input, and a summary that counts files and targets apart.
Regenerate one only after reading the difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app

GOLDEN = Path(__file__).parent / "golden"
runner = CliRunner()


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("COMPOSE_FILE", raising=False)


def test_a_four_service_compose_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN / "compose")
    # The host's cgroup version is given, so the output does not depend on the engine.
    result = runner.invoke(app, ["compose", "-p", "sandbox", "--cgroup-version", "1"])
    assert result.exit_code == 1, result.output
    assert result.stdout == (GOLDEN / "compose.txt").read_text()


def test_a_deployment_with_an_init_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN / "k8s")
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "deploy.yaml"])
    assert result.exit_code == 1, result.output
    assert result.stdout == (GOLDEN / "deploy.txt").read_text()


def test_sarif_has_each_pod_level_result_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN / "k8s")
    result = runner.invoke(app, ["k8s", "-p", "sandbox", "--format", "sarif", "deploy.yaml"])
    results = json.loads(result.stdout)["runs"][0]["results"]
    keys = [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"],
             r["properties"]["target"]) for r in results]
    assert len(keys) == len(set(keys))
    pod = "deploy.yaml#Deployment/web"
    assert sorted(keys) == [
        ("PG301", 26, f"{pod}/migrate"),
        ("PG702", 16, pod), ("PG801", 16, pod), ("PG804", 17, pod), ("PG805", 44, pod),
        ("PG808", 16, pod), ("PG811", 17, pod),
    ]
    names = {r["ruleId"]: r["locations"][0]["logicalLocations"][0]["name"] for r in results}
    assert (names["PG301"], names["PG702"]) == ("init container migrate",
                                                 "Deployment shop/web")
