"""Who a Dockerfile's container runs as, end to end through `lint`: issue 11's cases.

Each case failed before the identity reader (a root USER passed, or a non-root
one was called root) and passes now. The same specs are checked against the
real engine, through `image`, `container`, `compose` and `run`, in
tests/test_cli_identity.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.report.models import Finding
from paracle_guard.severity import Severity
from paracle_guard.sources.dockerfile import parse_dockerfile

SANDBOX = Plan.compile(load_policy("sandbox"))
BASELINE = Plan.compile(load_policy("baseline"))
CORPUS = Path(__file__).parent / "corpus"
ARABIC_1000 = "\u0661\u0660\u0660\u0660"


def lint(text: str, plan: Plan = SANDBOX, **options: object) -> list[Finding]:
    subject = parse_dockerfile(text, "Dockerfile", **options)  # type: ignore[arg-type]
    return plan.evaluate(subject).findings


def rules(findings: list[Finding]) -> dict[str, Severity]:
    return {finding.rule: finding.severity for finding in findings}


# --- numbers as Go's Atoi reads them ------------------------------------------------


@pytest.mark.parametrize("spec", ["+0", "-0", "-0:-0", "+0:+1000", "000"])
@pytest.mark.parametrize("plan", [SANDBOX, BASELINE], ids=["sandbox", "baseline"])
def test_signed_and_padded_zero_is_root(spec: str, plan: Plan) -> None:
    findings = lint(f"FROM scratch\nUSER {spec}\n", plan)
    assert rules(findings).get("PG101") == Severity.ERROR
    assert "(uid 0)" in next(f.message for f in findings if f.rule == "PG101")


@pytest.mark.parametrize("spec", [ARABIC_1000, "\u00b2", "\uff11\uff10\uff10\uff10"])
def test_non_ascii_digits_are_names_not_uids(spec: str) -> None:
    subject = parse_dockerfile(f"FROM debian:12\nUSER {spec}\n", "Dockerfile")
    assert subject.user is not None
    assert subject.user.uid is None and subject.user.name == spec
    # On an external base it is a name only that image's /etc/passwd knows.
    assert "may come from the base image" in (subject.user.unresolved_reason or "")
    scratch = parse_dockerfile(f"FROM scratch\nUSER {spec}\n", "Dockerfile").user
    assert scratch is not None and "refuses to start it" in (scratch.unresolved_reason or "")


# --- variables as Docker substitutes them ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "ARG NOPE\nENV V=$NOPE\nUSER $V",
        "ARG NOPE\nARG V=${NOPE}\nUSER $V",
        "ARG NOPE\nENV V=${NOPE}\nENV W=$V\nUSER $W",
        # One ENV line is substituted with the environment before it: V gets the old U.
        "ARG U\nENV U=1000 V=$U\nUSER $V",
        "ARG NOPE\nENV V=$NOPE\nFROM base AS child\nUSER $V",
    ],
)
def test_an_unset_argument_reaches_user_through_env_and_arg(body: str) -> None:
    text = "FROM alpine:3.20 AS base\n" + body + "\n"
    assert rules(lint(text)).get("PG101") == Severity.ERROR, body


def test_same_line_env_takes_the_value_from_before_the_line() -> None:
    text = "FROM scratch\nENV U=5\nENV U=0 V=$U\nUSER $V:$V\n"
    user = parse_dockerfile(text, "Dockerfile").user
    assert user is not None and (user.spec, user.uid) == ("5:5", 5)  # engine: User="5"
    unset = parse_dockerfile("FROM scratch\nENV U=0 V=$U\nUSER x$V\n", "Dockerfile").user
    assert unset is not None and unset.spec == "x"  # U was unset before the line: V is ""


def test_a_build_argument_reaches_only_a_declared_arg() -> None:
    # The ARG declared before FROM does not reach the stage: USER is "" there whatever
    # --build-arg says (verified with docker build on the suite's engine).
    text = "ARG UID=0\nFROM scratch\nUSER ${UID}\n"
    for build_args in ({}, {"UID": "1000"}):
        findings = lint(text, build_args=build_args)
        assert rules(findings).get("PG101") == Severity.ERROR
    redeclared = "ARG UID=0\nFROM scratch\nARG UID\nUSER ${UID}:${UID}\n"
    assert "PG101" in rules(lint(redeclared))
    assert "PG101" not in rules(lint(redeclared, build_args={"UID": "1000"}))


# --- variables only the base image can set -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "variable", "base"),
    [
        ("selenium-node", "SEL_UID", "selenium/node-base:latest"),
        ("dotnet-aspnet", "APP_UID", "mcr.microsoft.com/dotnet/aspnet:8.0"),
        ("jupyter-stack", "NB_UID", "quay.io/jupyter/scipy-notebook"),
    ],
)
def test_corpus_users_from_the_base_images_environment_are_unprovable(
    name: str, variable: str, base: str
) -> None:
    text = (CORPUS / f"{name}.Dockerfile.txt").read_text()
    findings = [f for f in lint(text) if f.rule == "PG101"]
    # A notice, not a root error: the base image sets the variable with ENV.
    assert [f.severity for f in findings] == [Severity.INFO]
    message = findings[0].message
    assert f"${variable}" in message and base in message
    assert "paracle-guard image" in message and "--build-arg" not in message


def test_an_arg_declared_only_before_from_says_to_redeclare_it() -> None:
    text = "ARG UID=1000\nFROM python:3.12-slim\nUSER ${UID}\n"
    (finding,) = [f for f in lint(text) if f.rule == "PG101"]
    assert finding.severity == Severity.INFO
    assert "the stage must redeclare ARG UID for --build-arg UID=... to reach it" \
        in finding.message


def test_a_declared_arg_without_value_is_still_root_when_unset() -> None:
    findings = lint("FROM python:3.12-slim\nARG UID\nUSER ${UID}\n")
    (finding,) = [f for f in findings if f.rule == "PG101"]
    assert finding.severity == Severity.ERROR
    assert "unless $UID is given a value (--build-arg UID=...)" in finding.message


# --- account commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    "run",
    [
        "useradd -u 1000 app && usermod --non-unique --uid 0 app",
        "useradd -u 1000 app && usermod -ou 0 app",
        "useradd -ou 0 app",
        "useradd -ou0 app",
        "useradd -o -u0 app",
        "adduser -D -u 0 app",
        "adduser --disabled-password --uid 0 app",
        "useradd -u 1000 bob && usermod -l app -ou 0 bob",
    ],
)
def test_account_commands_that_make_a_name_root(run: str) -> None:
    text = f"FROM debian:12\nRUN {run}\nUSER app\n"
    assert rules(lint(text)).get("PG101") == Severity.ERROR, run


@pytest.mark.parametrize(
    ("run", "changed_by"),
    [
        ("useradd -u 1000 app && sed -i s/1000/0/ /etc/passwd", "sed -i /etc/passwd"),
        ("useradd -u 1000 app && echo 'app:x:0:0::/:/bin/sh' >> /etc/passwd",
         "redirect /etc/passwd"),
        ("useradd -u 1000 app && usermod --frobnicate app", "--frobnicate"),
        ("useradd -u 1000 app && newusers /tmp/users", "newusers"),
    ],
)
def test_an_account_changed_by_what_lint_does_not_model_is_unprovable(
    run: str, changed_by: str
) -> None:
    findings = [f for f in lint(f"FROM debian:12\nRUN {run}\nUSER app\n") if f.rule == "PG101"]
    assert [f.severity for f in findings] == [Severity.INFO]
    assert changed_by in findings[0].message and "cannot prove" in findings[0].message


def test_copying_account_files_makes_names_unprovable() -> None:
    text = "FROM debian:12\nRUN useradd -u 1000 app\nCOPY passwd /etc/passwd\nUSER app\n"
    (finding,) = [f for f in lint(text) if f.rule == "PG101"]
    assert "COPY to /etc/passwd" in finding.message
    workdir = "FROM debian:12\nRUN useradd -u 1000 app\nWORKDIR /etc\nCOPY group .\nUSER app\n"
    assert "PG101" in rules(lint(workdir))


def test_account_commands_that_leave_the_user_alone() -> None:
    text = "FROM debian:12\nRUN useradd -u 1000 app && usermod -s /bin/sh app\nUSER app:app\n"
    assert "PG101" not in rules(lint(text)) and "PG102" not in rules(lint(text))


# --- groups ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "FROM debian:12\nUSER 1000:0\n",
        "FROM debian:12\nUSER 1000:root\n",
        "FROM debian:12\nUSER 1000:+0\n",
        "FROM debian:12\nRUN useradd -u 1000 -g 0 app\nUSER app\n",
        "FROM debian:12\nRUN useradd -u 1000 -G root app\nUSER app\n",
        "FROM debian:12\nRUN useradd -u 1000 app && usermod -aG root app\nUSER app\n",
        "FROM debian:12\nRUN useradd -u 1000 app && gpasswd -a app root\nUSER app\n",
        "FROM debian:12\nRUN groupadd -og 0 admins && useradd -u 1000 -G admins app\nUSER app\n",
        # No /etc/passwd at all: the engine's default group is 0.
        "FROM scratch\nUSER 1000\n",
    ],
)
@pytest.mark.parametrize("plan", [SANDBOX, BASELINE], ids=["sandbox", "baseline"])
def test_the_root_group_is_a_finding(text: str, plan: Plan) -> None:
    assert rules(lint(text, plan)).get("PG104") == Severity.ERROR


def test_an_explicit_group_drops_the_memberships() -> None:
    text = "FROM debian:12\nRUN useradd -u 1000 -G root app\nUSER app:1000\n"
    assert "PG104" not in rules(lint(text))


def test_a_group_the_base_image_decides_is_unprovable() -> None:
    findings = lint("FROM debian:12\nRUN useradd -u 1000 -G audio app\nUSER app\n")
    assert rules(findings)["PG104"] == Severity.INFO
    assert "audio" in next(f.message for f in findings if f.rule == "PG104")


def test_allowed_gids() -> None:
    findings = lint("FROM debian:12\nUSER 1000:2000\n")
    (finding,) = [f for f in findings if f.rule == "PG105"]
    assert finding.severity == Severity.ERROR and "gid 2000" in finding.message
    assert "PG105" not in rules(lint("FROM debian:12\nUSER 1000:1000\n"))


# --- Windows --------------------------------------------------------------------------


def test_container_administrator_is_root_and_container_user_is_not() -> None:
    windows = "FROM mcr.microsoft.com/windows/nanoserver:ltsc2022\n"
    admin = [f for f in lint(windows + "USER ContainerAdministrator\n") if f.rule == "PG101"]
    assert [f.severity for f in admin] == [Severity.ERROR]
    assert "Windows administrator account" in admin[0].message
    assert "PG101" not in rules(lint(windows + "USER ContainerUser\n", BASELINE))
