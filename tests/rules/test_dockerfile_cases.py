"""Realistic Dockerfiles end to end: the real parser, the real rules, the engine.

The unit tests beside this file build Subjects by hand; these cases check that
the rules read what ``sources.dockerfile`` really produces, including the cases
peers get wrong (builder-stage root, root spelled 0:0 or behind an ARG, root
inherited from a stage, BuildKit heredocs).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Policy
from paracle_guard.report.models import Result
from paracle_guard.sources.dockerfile import load_dockerfile, parse_dockerfile

TODAY = dt.date(2026, 6, 15)
DEFAULTS = Plan.compile(Policy(), today=TODAY)


def lint(
    text: str,
    plan: Plan = DEFAULTS,
    *,
    build_args: dict[str, str] | None = None,
    target: str | None = None,
) -> Result:
    subject = parse_dockerfile(text, "Dockerfile", target=target, build_args=build_args)
    return plan.evaluate(subject)


def found(result: Result) -> list[tuple[str, int | None]]:
    return [(f.rule, f.location.line) for f in result.findings]


# --- the effective user -----------------------------------------------------------

BUILDER_RUNS_AS_ROOT = """\
FROM golang:1.22 AS build
USER root
WORKDIR /src
RUN go build -o /out/app ./cmd/app

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
"""


def test_root_in_a_builder_stage_only_is_not_a_finding() -> None:
    assert found(lint(BUILDER_RUNS_AS_ROOT)) == []


def test_targeting_the_builder_stage_judges_its_user() -> None:
    assert found(lint(BUILDER_RUNS_AS_ROOT, target="build")) == [("PG101", 2)]


@pytest.mark.parametrize(
    ("text", "build_args", "line"),
    [
        ("FROM alpine:3.20\nUSER 0:0\n", None, 2),
        ("FROM alpine:3.20\nUSER root:root\n", None, 2),
        ("FROM alpine:3.20\nUSER root:1000\n", None, 2),
        ("FROM alpine:3.20\nARG UID=0\nUSER ${UID}\n", None, 3),
        ("FROM alpine:3.20\nARG UID=1000\nUSER $UID:$UID\n", {"UID": "0"}, 3),
        ("FROM alpine:3.20\nENV RUN_AS=root\nUSER ${RUN_AS}\n", None, 3),
        ("FROM debian:bookworm-slim\nRUN useradd -o -u 0 toor\nUSER toor\n", None, 3),
        ("FROM alpine:3.20\nUSER 1000\nUSER 0\n", None, 3),
    ],
)
def test_root_in_any_spelling(text: str, build_args: dict[str, str] | None, line: int) -> None:
    assert found(lint(text, build_args=build_args)) == [("PG101", line)]


def test_no_user_at_all_is_root() -> None:
    result = lint('FROM alpine:3.20\nCMD ["sh"]\n')
    assert found(result) == [("PG101", 1)]
    assert "alpine:3.20" in result.findings[0].message


def test_a_final_stage_inherits_root_from_its_base_stage() -> None:
    text = """\
FROM python:3.12-slim AS base
USER root
RUN python3 -m venv /opt/venv

FROM base
CMD ["python3"]
"""
    result = lint(text)
    assert found(result) == [("PG101", 2)]
    assert "inherited from base" in result.findings[0].message


def test_a_final_stage_inherits_a_non_root_user_too() -> None:
    text = 'FROM alpine:3.20 AS base\nUSER 1000:1000\n\nFROM base\nCMD ["sh"]\n'
    assert found(lint(text)) == []


def test_a_uid_without_a_group_leaves_the_group_to_the_base_image() -> None:
    # alpine has no entry for uid 1000: the engine runs it with gid 0.
    result = lint('FROM alpine:3.20\nUSER 1000\n')
    assert found(result) == [("PG104", 2)]
    assert result.findings[0].severity == "info"
    assert "gid 0 when it has no entry" in result.findings[0].message


def test_named_user_resolved_through_useradd() -> None:
    text = "FROM debian:bookworm-slim\nRUN useradd -u 1001 -m app\nUSER app\n"
    plan = Plan.compile(Policy.model_validate({"controls": {"user": {"allowed_uids": [1000]}}}))
    result = lint(text, plan)
    assert found(result) == [("PG102", 3)]
    assert "uid 1001" in result.findings[0].message


# --- heredocs and RUN steps -------------------------------------------------------

HEREDOC_APT = """\
# syntax=docker/dockerfile:1.7
FROM debian:bookworm-slim
RUN <<EOF
set -eux
apt-get update
apt-get install -y ca-certificates
EOF
USER 1000:1000
"""


def test_apt_get_in_a_heredoc() -> None:
    result = lint(HEREDOC_APT)
    assert found(result) == [("PG401", 3), ("PG402", 3)]
    for finding in result.findings:
        assert finding.location.end_line == 7  # the heredoc's closing line


def test_a_clean_heredoc_install_passes() -> None:
    text = HEREDOC_APT.replace(
        "apt-get install -y ca-certificates",
        "apt-get install -y --no-install-recommends ca-certificates\nrm -rf /var/lib/apt/lists/*",
    )
    assert found(lint(text)) == []


def test_remote_code_in_a_builder_stage_heredoc() -> None:
    text = """\
FROM rust:1.80 AS build
RUN <<EOF
curl --proto '=https' -sSf https://sh.rustup.rs | sh -s -- -y
EOF

FROM debian:bookworm-slim
COPY --from=build /usr/local/cargo/bin/app /usr/local/bin/app
USER 1000:1000
"""
    result = lint(text)
    assert found(result) == [("PG503", 2)]
    assert result.findings[0].message == "RUN pipes curl output into sh"


def test_remote_code_through_sh_c() -> None:
    text = 'FROM alpine:3.20\nRUN sh -c "$(wget -qO- https://example.com/i.sh)"\nUSER 1000:1000\n'
    assert found(lint(text)) == [("PG503", 2)]


def test_cache_mounts_and_pip_environment_are_understood() -> None:
    text = """\
FROM python:3.12-slim
ENV PIP_NO_CACHE_DIR=1
RUN pip install requests==2.32.3
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\
    apt-get update && apt-get install -y --no-install-recommends tini
USER 1000:1000
"""
    assert found(lint(text)) == []


def test_sudo_and_a_sudoers_grant() -> None:
    text = """\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends sudo \\
 && rm -rf /var/lib/apt/lists/* \\
 && echo 'app ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/app
USER 1000:1000
"""
    assert found(lint(text)) == [("PG103", 2), ("PG103", 2)]


# --- suppressions and the sandbox policy ------------------------------------------


def test_inline_suppression_covers_a_continued_run() -> None:
    text = """\
FROM debian:bookworm-slim
# paracle-guard ignore=install-recommends reason="docs tooling needs the recommends"
RUN apt-get update \\
 && apt-get install -y pandoc \\
 && rm -rf /var/lib/apt/lists/*
USER 1000:1000
"""
    result = lint(text)
    assert found(result) == []
    assert [(f.rule, f.location.line) for f in result.suppressed] == [("PG401", 3)]


def test_unparseable_dockerfile_reports_only_parse_errors() -> None:
    result = lint("FORM alpine\nUSER root\n")
    assert {rule for rule, _ in found(result)} == {"PG901"}


HARDENED = """\
# syntax=docker/dockerfile:1.7
ARG PYTHON_VERSION=3.12
FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir --prefix=/install uvloop==0.21.0

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PIP_NO_CACHE_DIR=1
COPY --from=build /install /usr/local
RUN --mount=type=cache,target=/var/cache/apt \\
    --mount=type=cache,target=/var/lib/apt/lists \\
    apt-get update && apt-get install -y --no-install-recommends tini
RUN <<EOF
set -eux
groupadd --gid 1000 app
useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin app
mkdir -p /workspace
chown 1000:1000 /workspace
find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
EOF
WORKDIR /workspace
USER app
ENTRYPOINT ["tini", "--"]
CMD ["python3"]
"""


def test_a_hardened_dockerfile_has_no_findings_under_the_sandbox_policy() -> None:
    result = lint(HARDENED, Plan.compile(load_policy("sandbox"), today=TODAY))
    assert result.findings == []
    assert result.suppressed == []
    assert result.notices == []


def test_the_same_file_with_the_usual_mistakes_has_them_all_reported() -> None:
    careless = (
        HARDENED.replace("--no-install-recommends tini", "tini")
        .replace("USER app\n", "")
        .replace("FROM python:${PYTHON_VERSION}-slim\n", "FROM python\n")
        + "ENV API_TOKEN=abc123\nEXPOSE 22\n"
    )
    result = lint(careless, Plan.compile(load_policy("sandbox"), today=TODAY))
    assert sorted({f.rule for f in result.findings}) == [
        "PG101", "PG310", "PG401", "PG501", "PG601",
    ]
    assert "abc123" not in " ".join(f.message for f in result.findings)


@pytest.mark.parametrize(
    ("user", "spelled"),
    [("${UID:-0}", "'0'"), ("$UID", "''"), ("${USERNAME:-root}:${GROUP}", "'root:'")],
)
def test_user_from_an_unset_variable_that_falls_back_to_root_is_root(
    user: str, spelled: str
) -> None:
    text = f"FROM python:3.10-slim\nARG UID\nARG USERNAME\nARG GROUP\nUSER {user}\n"
    result = lint(text)
    assert found(result) == [("PG101", 5)]
    assert spelled in result.findings[0].message
    assert "--build-arg" in result.findings[0].message


def test_user_from_an_unset_variable_is_judged_again_with_the_build_arg() -> None:
    text = "FROM python:3.10-slim\nARG UID\nUSER ${UID}:${UID}\n"
    assert found(lint(text, build_args={"UID": "1000"})) == []
    assert found(lint(text, build_args={"UID": "0"})) == [("PG101", 3)]


# --- corpus-shaped fixtures: issue 13's verdicts and bypasses ----------------------------

CASES = Path(__file__).parent / "dockerfile_cases"
SANDBOX = Plan.compile(load_policy("sandbox"), today=TODAY)

# case file -> every finding under the sandbox policy: (rule, line, words of its message)
EXPECTED: dict[str, list[tuple[str, int, str]]] = {
    # Verdicts that were wrong on public Dockerfiles.
    "pg402-apt-dist-clean": [],
    "pg402-apk-no-network": [],
    "pg402-expanded-script": [],
    "pg402-lists-removed-before-update": [("PG402", 3, "apt-get update leaves the package lists")],
    "pg501-from-arg-without-default": [("PG501", 3, "chosen at build time")],
    "pg501-registry-from-undeclared-variable": [
        ("PG501", 2, "base image gcr.io/$PROJECT_ID/az depends on $PROJECT_ID"),
    ],
    "pg103-gosu": [
        ("PG101", 2, "no USER is set"),
        ("PG103", 3, "package gosu (apt) switches a process started as root to another user; "
                     "it is not setuid"),
        ("PG403", 3, "package gosu (apt) is denied"),
    ],
    "pg901-unterminated-label": [("PG901", 3, 'the double quote is never closed')],
    "pg901-latin1-comment": [],
    "pg306-build-time-setuid": [
        ("PG306", 3, "COPY --chmod 4755 makes /usr/local/bin/helper setuid"),
        ("PG306", 4, "RUN chmod u+s makes /usr/bin/newgrp setuid"),
        ("PG306", 5, "RUN chmod +s makes /usr/bin/chfn setuid, setgid"),
        ("PG306", 5, "RUN chmod 4755 makes /usr/local/bin/helper setuid"),
        ("PG306", 6, "RUN install 4755 makes /usr/local/bin/tool setuid"),
    ],
    # Bypasses: each was a clean (or partial) result before the shell reader.
    "bypass-ionice": [
        ("PG401", 3, "apt-get install curl without --no-install-recommends"),
        ("PG402", 3, "apt-get update leaves the package lists"),
        ("PG403", 3, "package curl (apt) is denied"),
    ],
    "bypass-doas": [
        ("PG103", 3, "RUN runs a command through doas, so doas is in the image"),
        ("PG402", 3, "apk add without --no-cache"),
        ("PG403", 3, "package curl (apk) is denied"),
    ],
    "bypass-eval": [
        ("PG103", 3, "package sudo (apk) lets a user become root"),
        ("PG403", 3, "package sudo (apk) is denied"),
    ],
    "bypass-xargs": [
        ("PG103", 3, "package sudo (apk) lets a user become root"),
        ("PG403", 3, "package sudo (apk) is denied"),
    ],
    "bypass-dd-sudoers": [("PG103", 3, "RUN writes /etc/sudoers.d/app with dd")],
    "bypass-install-sudoers": [("PG103", 4, "RUN writes /etc/sudoers.d/x with install")],
    "bypass-add-git": [
        ("PG503", 3, "ADD git@github.com:org/tools.git fetches a git repository"),
        ("PG503", 4, "ADD ssh://git@github.com/org/lib.git#v1.2 fetches a git repository"),
    ],
    "bypass-run-sudo": [("PG103", 3, "RUN runs a command through sudo, so sudo is in the image")],
    # Red team (after issue 13): bounds that dropped commands silently now fail closed.
    "bypass-long-wrapper-chain": [("PG901", 3, "chains more than 32 wrapper commands")],
    "bypass-xargs-fan-out": [("PG901", 3, "xargs -I for more than 16 items")],
    "bypass-wrappers-and-shells": [
        ("PG103", 3, "package sudo (apk) lets a user become root"),
        ("PG403", 3, "package sudo (apk) is denied"),
        ("PG103", 4, "package doas (apk) lets a user become root"),
        ("PG403", 4, "package doas (apk) is denied"),
        ("PG103", 5, "package gosu (apk) switches a process started as root"),
        ("PG403", 5, "package gosu (apk) is denied"),
        ("PG103", 7, "package su-exec (apk) switches a process started as root"),
        ("PG403", 7, "package su-exec (apk) is denied"),
    ],
    "bypass-written-script": [
        ("PG103", 3, "package sudo (apk) lets a user become root"),
        ("PG403", 3, "package sudo (apk) is denied"),
        ("PG103", 4, "package doas (apk) lets a user become root"),
        ("PG403", 4, "package doas (apk) is denied"),
        ("PG103", 7, "package gosu (apk) switches a process started as root"),
        ("PG403", 7, "package gosu (apk) is denied"),
        ("PG103", 8, "package su-exec (apk) switches a process started as root"),
        ("PG403", 8, "package su-exec (apk) is denied"),
    ],
    "bypass-functions-aliases-loops": [
        ("PG103", 3, "package sudo (apk) lets a user become root"),
        ("PG403", 3, "package sudo (apk) is denied"),
        ("PG103", 4, "package doas (apk) lets a user become root"),
        ("PG403", 4, "package doas (apk) is denied"),
        ("PG103", 8, "package gosu (apk) switches a process started as root"),
        ("PG403", 8, "package gosu (apk) is denied"),
        ("PG103", 9, "package su-exec (apk) switches a process started as root"),
        ("PG403", 9, "package su-exec (apk) is denied"),
    ],
    "bypass-package-words": [
        ("PG103", 3, "package sudo (apt) lets a user become root"),
        ("PG403", 3, "package sudo (apt) is denied"),
        ("PG310", 4, "package openssh-server (apt) installs an SSH server"),
        ("PG403", 4, "package openssh-server (apt) is denied"),
        ("PG103", 5, "package doas (dnf) lets a user become root"),
        ("PG403", 5, "package doas 6.8.2-1.fc39 (dnf) is denied"),
        ("PG103", 6, "package sudo (pacman) lets a user become root"),
        ("PG403", 6, "package sudo (pacman) is denied"),
    ],
    "pg901-unread-shell": [("PG901", 4, "which is not a shell paracle-guard reads")],
    "bypass-expansions": [
        ("PG103", 5, "package doas (apk) lets a user become root"),
        ("PG403", 5, "package doas (apk) is denied"),
        ("PG103", 6, "package sudo (apk) lets a user become root"),
        ("PG403", 6, "package sudo (apk) is denied"),
        ("PG103", 7, "package gosu (apk) switches a process started as root"),
        ("PG403", 7, "package gosu (apk) is denied"),
        ("PG103", 8, "package su-exec (apk) switches a process started as root"),
        ("PG403", 8, "package su-exec (apk) is denied"),
        ("PG310", 9, "package openssh (apk) installs an SSH server"),
        ("PG403", 9, "package openssh (apk) is denied"),
    ],
}


def test_every_fixture_has_its_expectation() -> None:
    names = {path.name.removesuffix(".Dockerfile.case") for path in CASES.iterdir()}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_fixture_verdicts(case: str) -> None:
    subject = load_dockerfile(CASES / f"{case}.Dockerfile.case")
    result = SANDBOX.evaluate(subject)
    got = [(f.rule, f.location.line) for f in result.findings]
    assert got == [(rule, line) for rule, line, _ in EXPECTED[case]]
    for finding, (_, _, words) in zip(result.findings, EXPECTED[case], strict=True):
        assert words in finding.message


def test_unknown_base_image_is_info_not_latest() -> None:
    (finding,) = SANDBOX.evaluate(
        load_dockerfile(CASES / "pg501-from-arg-without-default.Dockerfile.case")).findings
    assert finding.severity.value == "info"
    assert "latest" not in finding.message
    digest = Plan.compile(Policy.model_validate(
        {"controls": {"base_image": {"require_digest": True}}}), today=TODAY)
    (strict,) = digest.evaluate(
        load_dockerfile(CASES / "pg501-from-arg-without-default.Dockerfile.case")).findings
    assert strict.severity.value == "warning"  # fail closed where a digest is required


def test_the_build_arg_resolves_an_unknown_base_image() -> None:
    text = (CASES / "pg501-from-arg-without-default.Dockerfile.case").read_text()
    assert found(lint(text, build_args={"BASE_IMAGE": "alpine:latest"})) == [("PG501", 3)]
    assert found(lint(text, build_args={"BASE_IMAGE": "alpine:3.20"})) == []
