"""`paracle-guard rules` and `rules explain`, through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_process import run_cli

POLICY = """\
apiVersion: paracle-guard/v1
kind: Policy
metadata: {name: team}
extends: [sandbox]
rules:
  PG501: {severity: error}
  remote-code: {severity: "off"}
custom_rules:
  - code: ORG001
    name: no-apt-upgrade
    instruction: RUN
    pattern: 'apt-get\\s+upgrade'
    message: "apt-get upgrade makes builds unreproducible"
    severity: info
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(POLICY)
    return path


def _rules(*args: str) -> dict[str, dict[str, object]]:
    ran = run_cli("rules", "--format", "json", *args)
    assert ran.code == 0, ran.stderr
    return {rule["code"]: rule for rule in json.loads(ran.stdout)["rules"]}


def test_rules_json_lists_every_built_in_rule_at_its_default_severity() -> None:
    rules = _rules()
    assert rules["PG101"]["name"] == "root-user"
    assert rules["PG101"]["severity"] == rules["PG101"]["default_severity"] == "error"
    assert not any(rule["custom"] for rule in rules.values())


def test_rules_with_a_policy_show_its_custom_rules_and_effective_severities(
    policy: Path,
) -> None:
    rules = _rules("--policy", str(policy))
    assert (rules["PG501"]["severity"], rules["PG501"]["default_severity"]) == ("error",
                                                                                 "warning")
    assert rules["PG503"]["severity"] == "off"
    custom = rules["ORG001"]
    assert (custom["name"], custom["severity"], custom["custom"]) == ("no-apt-upgrade", "info",
                                                                      True)


def test_the_table_shows_the_same(policy: Path) -> None:
    ran = run_cli("rules", "--policy", str(policy))
    lines = {line.split()[0]: line for line in ran.stdout.splitlines()}
    assert lines["code"].split()[:3] == ["code", "name", "severity"]
    assert "error (default warning)" in lines["PG501"]
    assert "off (default warning)" in lines["PG503"]
    assert "[custom]" in lines["ORG001"]


def test_built_in_policy_names_work_too() -> None:
    assert _rules("--policy", "baseline")["PG101"]["severity"] in ("error", "warning", "info",
                                                                   "off")


def test_explain_knows_a_policy_s_custom_rule(policy: Path) -> None:
    ran = run_cli("rules", "explain", "no-apt-upgrade", "--policy", str(policy))
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith("ORG001 no-apt-upgrade [info]")
    assert "custom rule of policy team" in ran.stdout
    shown = run_cli("rules", "explain", "PG501", "--policy", str(policy), "--format", "json")
    assert json.loads(shown.stdout)["severity"] == "error"


@pytest.mark.parametrize(
    ("asked", "suggested"),
    [("root_user", "root-user"), ("ROOT-USR", "root-user"), ("PG1010", "PG101"),
     ("privleged", "privileged")],
)
def test_explain_suggests_the_rule_meant(asked: str, suggested: str) -> None:
    ran = run_cli("rules", "explain", asked)
    assert ran.code == 2
    assert ran.error_lines == [
        f"paracle-guard: error: {asked}: no rule has this code or name (did you mean "
        f"{suggested!r}?) (see 'paracle-guard rules')"
    ]


def test_ignore_suggests_the_rule_meant(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ran = run_cli("lint", "Dockerfile", "--ignore", "root_user", cwd=tmp_path)
    assert ran.code == 2
    assert "did you mean 'root-user'?" in ran.stderr
