"""`paracle-guard policy validate`, through the real console script."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.cli_process import run_cli

HEAD = "apiVersion: paracle-guard/v1\nkind: Policy\nmetadata: {name: team}\nextends: [sandbox]\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["sandbox", "baseline", "builtin:sandbox"])
def test_built_in_names_validate_like_files(name: str, tmp_path: Path) -> None:
    ran = run_cli("policy", "validate", name, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith(f"builtin:{name.removeprefix('builtin:')}: valid (policy ")


def test_an_unknown_name_is_one_line(tmp_path: Path) -> None:
    ran = run_cli("policy", "validate", "sandbx", cwd=tmp_path)
    assert ran.code == 2
    assert ran.error_lines[0].startswith("paracle-guard: error: unknown built-in policy 'sandbx'")


def test_every_rule_problem_has_its_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", HEAD + (
        "rules:\n"
        "  PG101: {severity: error}\n"
        "  root-usr: {severity: info}\n"
        "exceptions:\n"
        "  - rule: PG999\n"
        "    reason: nothing\n"
        "custom_rules:\n"
        "  - code: PG101\n"
        "    name: mine\n"
        "    pattern: x\n"
        "    message: clash\n"
    ))
    ran = run_cli("policy", "validate", "team.yaml", cwd=tmp_path)
    assert ran.code == 2
    assert ran.error_lines == [
        "paracle-guard: error: team.yaml:7: rules.root-usr: no rule has the code or name "
        "'root-usr' (did you mean 'root-user'?)",
        "paracle-guard: error: team.yaml:9: exceptions[0].rule: no rule has the code or name "
        "'PG999'",
        "paracle-guard: error: team.yaml:12: custom_rules[0]: PG101 mine clashes with rule "
        "PG101 root-user",
    ]


def test_a_problem_in_an_extended_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "apiVersion: paracle-guard/v1\nkind: Policy\nrules:\n"
                                 "  nope: {severity: info}\n")
    write(tmp_path, "team.yaml", "apiVersion: paracle-guard/v1\nkind: Policy\n"
                                 "extends: [./base.yaml]\n")
    ran = run_cli("policy", "validate", "team.yaml", cwd=tmp_path)
    assert ran.code == 2
    assert ran.error_lines[0].startswith("paracle-guard: error: base.yaml:4: rules.nope: ")


def test_the_same_problem_stops_lint_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", HEAD + "rules:\n  nope: {severity: info}\n")
    write(tmp_path, "Dockerfile", "FROM scratch\nUSER 1000\n")
    ran = run_cli("lint", "Dockerfile", "--policy", "team.yaml", cwd=tmp_path)
    assert ran.code == 2
    assert ran.error_lines[0].startswith("paracle-guard: error: team.yaml:6: rules.nope: no rule")


EXPIRED = HEAD + (
    "exceptions:\n"
    "  - rule: denied-package\n"
    "    reason: the dev image ships curl\n"
    "    expires: 2020-01-31\n"
)


def test_an_expired_waiver_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", EXPIRED)
    ran = run_cli("policy", "validate", "team.yaml", cwd=tmp_path)
    assert ran.code == 0
    assert ran.error_lines == [
        "paracle-guard: warning: team.yaml:8: exceptions[0].expires: the exception for "
        "denied-package on '*' expired on 2020-01-31; it no longer applies"
    ]
    assert ran.stdout.startswith("team.yaml: valid (policy team, sha256 ")
    assert ran.stdout.rstrip().endswith(", 1 warning)")


def test_strict_makes_an_expired_waiver_an_error(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", EXPIRED)
    ran = run_cli("policy", "validate", "--strict", "team.yaml", cwd=tmp_path)
    assert ran.code == 2
    assert ran.stdout == ""
    assert ran.error_lines[0].startswith("paracle-guard: error: team.yaml:8: exceptions[0]")


def test_a_waiver_expiring_later_is_fine(tmp_path: Path) -> None:
    later = dt.date.today() + dt.timedelta(days=30)
    write(tmp_path, "team.yaml", EXPIRED.replace("2020-01-31", later.isoformat()))
    ran = run_cli("policy", "validate", "--strict", "team.yaml", cwd=tmp_path)
    assert (ran.code, ran.stderr) == (0, "")


def test_an_expired_authz_exemption_is_a_warning_too(tmp_path: Path) -> None:
    write(tmp_path, "team.yaml", HEAD + (
        "authz:\n"
        "  exemptions:\n"
        "    - tls_user: ci-runner\n"
        "      reason: the old CI\n"
        "      expires: 2021-03-01\n"
    ))
    ran = run_cli("policy", "validate", "team.yaml", cwd=tmp_path)
    assert ran.code == 0
    assert ran.error_lines == [
        "paracle-guard: warning: team.yaml:9: authz.exemptions[0].expires: the authz exemption "
        "(the old CI) expired on 2021-03-01; it no longer applies"
    ]
