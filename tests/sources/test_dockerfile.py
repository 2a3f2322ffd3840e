"""sources/dockerfile.py: Dockerfiles become Subjects with exact facts and 1-based lines."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.errors import InputError
from paracle_guard.sources.dockerfile import load_dockerfile, parse_dockerfile
from paracle_guard.subject import RunStep, Subject


def parse(
    text: str, *, target: str | None = None, build_args: Mapping[str, str] | None = None
) -> Subject:
    return parse_dockerfile(
        textwrap.dedent(text), "Dockerfile", target=target, build_args=build_args
    )


def argvs(step: RunStep) -> list[list[str]]:
    return [command.argv for command in step.commands]


def spans(subject: Subject) -> list[tuple[str, int | None, int | None]]:
    return [(i.keyword, i.location.line, i.location.end_line) for i in subject.instructions]


def problems(subject: Subject) -> list[tuple[int | None, str]]:
    return [(p.location.line, p.message) for p in subject.parse_problems]


def env(subject: Subject, origin: str = "ENV") -> dict[str, str | None]:
    return {var.name: var.value for var in subject.env if var.origin == origin}


# --- lines, continuations, directives, encodings -----------------------------------


def test_continuations_with_comments_and_blank_lines_keep_exact_lines() -> None:
    subject = parse("""\
        FROM alpine:3.20
        RUN apk add \\
            # the shell never sees this comment
            curl \\

            git
        # a comment between instructions

        USER 1000
        """)
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 6), ("USER", 9, 9)]
    assert subject.run_steps[0].script == "apk add     curl     git"
    assert argvs(subject.run_steps[0]) == [["apk", "add", "curl", "git"]]
    assert not subject.parse_problems


def test_continuation_running_into_the_end_of_the_file() -> None:
    subject = parse_dockerfile("FROM alpine\nRUN echo a \\\n  b \\", "Dockerfile")
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 3)]
    assert argvs(subject.run_steps[0]) == [["echo", "a", "b"]]


def test_crlf_line_endings() -> None:
    subject = parse_dockerfile(
        b"FROM alpine\r\nRUN apk add \\\r\n    curl\r\nUSER app:app\r\n", "Dockerfile"
    )
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 3), ("USER", 4, 4)]
    assert subject.user is not None and subject.user.spec == "app:app"
    assert argvs(subject.run_steps[0]) == [["apk", "add", "curl"]]


@pytest.mark.parametrize("content", [b"\xef\xbb\xbfFROM alpine\nUSER 1000\n",
                                     "\ufeffFROM alpine\nUSER 1000\n"])
def test_utf8_bom_is_dropped(content: str | bytes) -> None:
    subject = parse_dockerfile(content, "Dockerfile")
    assert spans(subject) == [("FROM", 1, 1), ("USER", 2, 2)]
    assert not subject.parse_problems
    assert [image.ref for image in subject.base_images] == ["alpine"]


def test_backtick_escape_directive_windows_style() -> None:
    subject = parse("""\
        # escape=`
        FROM mcr.microsoft.com/windows/servercore:ltsc2022
        WORKDIR C:\\app
        RUN powershell -Command `
            Write-Host C:\\temp
        COPY app.exe C:\\app\\
        """)
    assert spans(subject) == [("FROM", 2, 2), ("WORKDIR", 3, 3), ("RUN", 4, 5), ("COPY", 6, 6)]
    assert subject.workdir == "C:\\app"
    assert subject.run_steps[0].script == "powershell -Command     Write-Host C:\\temp"
    assert subject.instructions[3].value == "app.exe C:\\app\\"


def test_syntax_directive_and_late_directives_are_comments() -> None:
    subject = parse("""\
        # syntax=docker/dockerfile:1.7
        # escape=`
        FROM alpine
        # escape=\\
        RUN echo a `
            b
        """)
    assert spans(subject) == [("FROM", 3, 3), ("RUN", 5, 6)]


def test_directive_after_a_comment_is_not_a_directive() -> None:
    subject = parse("""\
        # a plain comment first
        # escape=`
        FROM alpine
        RUN echo a \\
            b
        """)
    assert spans(subject) == [("FROM", 3, 3), ("RUN", 4, 5)]


def test_lowercase_and_mixed_case_instructions() -> None:
    subject = parse("""\
        from alpine:3.20 as Base
        run apk add curl
        User 1000
        """)
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 2), ("USER", 3, 3)]
    assert subject.metadata == {"stages": ["base"], "stage": "base"}
    assert subject.user is not None and subject.user.uid == 1000


def test_exec_and_shell_forms() -> None:
    subject = parse("""\
        FROM python:3.12
        RUN ["/bin/sh", "-c", "pip install flask && rm -rf /root/.cache"]
        RUN ["pip", "install", "requests"]
        RUN pip install gunicorn
        CMD ["python", "app.py"]
        """)
    exec_step, plain_exec, shell_step = subject.run_steps
    assert exec_step.exec_form and plain_exec.exec_form and not shell_step.exec_form
    assert exec_step.script == '["/bin/sh", "-c", "pip install flask && rm -rf /root/.cache"]'
    assert argvs(exec_step) == [
        ["/bin/sh", "-c", "pip install flask && rm -rf /root/.cache"],
        ["pip", "install", "flask"],
        ["rm", "-rf", "/root/.cache"],
    ]
    assert argvs(plain_exec) == [["pip", "install", "requests"]]
    assert [p.name for p in subject.packages] == ["flask", "requests", "gunicorn"]
    assert subject.instructions[-1].value == '["python", "app.py"]'


# --- heredocs ------------------------------------------------------------------------


def test_run_heredoc_body_is_the_script() -> None:
    subject = parse("""\
        FROM debian:bookworm
        RUN <<EOF
        set -eux
        apt-get update
        apt-get install -y --no-install-recommends curl
        EOF
        USER 1000
        """)
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 6), ("USER", 7, 7)]
    step = subject.run_steps[0]
    assert step.location.line == 2 and step.location.end_line == 6
    assert step.script == (
        "set -eux\napt-get update\napt-get install -y --no-install-recommends curl\n"
    )
    assert argvs(step) == [
        ["set", "-eux"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "curl"],
    ]
    assert [(p.name, p.location.line) for p in subject.packages] == [("curl", 2)]
    assert subject.instructions[1].value == (
        "<<EOF\nset -eux\napt-get update\napt-get install -y --no-install-recommends curl\nEOF"
    )


def test_heredoc_lines_are_neither_instructions_nor_comments() -> None:
    subject = parse("""\
        FROM alpine
        RUN <<EOF
        # paracle-guard ignore=PG101 reason="inside a heredoc"
        FROM evil
        USER root
        EOF
        """)
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 6)]
    assert subject.suppressions == []
    assert subject.user is not None and subject.user.spec is None


def test_heredoc_with_dash_strips_leading_tabs() -> None:
    subject = parse_dockerfile(
        "FROM alpine\nRUN <<-EOT\n\tapk add \\\n\t\tcurl\n\tEOT\nUSER 1000\n", "Dockerfile"
    )
    assert spans(subject) == [("FROM", 1, 1), ("RUN", 2, 5), ("USER", 6, 6)]
    assert subject.run_steps[0].script == "apk add \\\ncurl\n"
    assert argvs(subject.run_steps[0]) == [["apk", "add", "curl"]]


def test_quoted_heredoc_delimiters_are_not_expanded() -> None:
    subject = parse("""\
        FROM alpine
        ARG PKG=curl
        RUN <<EOF
        apk add $PKG
        EOF
        RUN <<"EOF"
        apk add $PKG
        EOF
        RUN <<'EOF'
        apk add $PKG
        EOF
        """)
    assert [step.script for step in subject.run_steps] == [
        "apk add curl\n", "apk add $PKG\n", "apk add $PKG\n"
    ]
    # Quoting the delimiter stops BuildKit's expansion, not the shell's: ARGs are in the
    # environment of RUN, so every one of the three installs curl.
    assert [(p.name, p.location.line) for p in subject.packages] == [
        ("curl", 3), ("curl", 6), ("curl", 9)
    ]


def test_several_heredocs_on_one_line() -> None:
    subject = parse("""\
        FROM alpine
        COPY <<A <<B /etc/app/
        first file
        A
        second file
        B
        RUN <<ONE cat > /one && <<TWO sh
        data
        ONE
        apk add jq
        TWO
        """)
    assert spans(subject) == [("FROM", 1, 1), ("COPY", 2, 6), ("RUN", 7, 11)]
    assert subject.instructions[1].value == "<<A <<B /etc/app/\nfirst file\nA\nsecond file\nB"
    step = subject.run_steps[0]
    assert step.script == "<<ONE cat > /one && <<TWO sh\ndata\nONE\napk add jq\nTWO"
    assert argvs(step) == [["cat"], ["sh"], ["apk", "add", "jq"]]
    assert [p.name for p in subject.packages] == ["jq"]


def test_copy_heredoc_expands_unless_quoted() -> None:
    subject = parse("""\
        FROM alpine
        ARG PORT=8080
        COPY --chmod=644 <<EOF /etc/app.conf
        listen $PORT
        EOF
        """)
    copy = subject.instructions[-1]
    assert (copy.keyword, copy.location.line, copy.location.end_line) == ("COPY", 3, 5)
    assert copy.flags == {"chmod": "644"}
    assert copy.value == "<<EOF /etc/app.conf\nlisten 8080\nEOF"


def test_command_with_heredoc_keeps_the_body_as_data() -> None:
    subject = parse("""\
        FROM python:3.12-slim
        RUN python3 <<EOF
        import subprocess
        subprocess.run(["apt-get", "install", "sudo"])
        EOF
        RUN bash -e <<EOF
        pip install requests
        EOF
        """)
    python_step, bash_step = subject.run_steps
    assert python_step.script == (
        'python3 <<EOF\nimport subprocess\nsubprocess.run(["apt-get", "install", "sudo"])\nEOF'
    )
    assert argvs(python_step) == [["python3"]]
    assert argvs(bash_step) == [["bash", "-e"], ["pip", "install", "requests"]]
    assert [(p.name, p.manager, p.location.line) for p in subject.packages] == [
        ("requests", "pip", 6)
    ]


def test_heredoc_script_with_non_shell_shebang_is_not_split() -> None:
    subject = parse("""\
        FROM python:3.12
        RUN <<EOF
        #!/usr/bin/env python3
        print("apt-get install -y sudo")
        EOF
        """)
    assert subject.run_steps[0].commands == []
    assert subject.packages == []


def test_onbuild_heredoc_belongs_to_the_onbuild_instruction() -> None:
    subject = parse("""\
        FROM alpine
        ONBUILD RUN <<EOF
        apk add sudo
        EOF
        USER 1000
        """)
    assert spans(subject) == [("FROM", 1, 1), ("ONBUILD", 2, 4), ("USER", 5, 5)]
    assert subject.run_steps == [] and subject.packages == []


# --- variables --------------------------------------------------------------------


def test_substitution_forms() -> None:
    subject = parse("""\
        FROM scratch
        ARG NAME=app
        ARG EMPTY=
        ENV A=$NAME B=${NAME} C=${MISSING:-fallback} D=${NAME:-unused} E=${NAME:+alt} \\
            F=${MISSING:+alt} G=${EMPTY:-dflt} H=${EMPTY-kept} I='$NAME' J="$NAME" K=\\$NAME
        """)
    assert env(subject) == {
        "A": "app", "B": "app", "C": "fallback", "D": "app", "E": "alt", "F": "",
        "G": "dflt", "H": "", "I": "$NAME", "J": "app", "K": "$NAME",
    }


def test_global_args_feed_only_from_lines_unless_redeclared() -> None:
    subject = parse("""\
        ARG BASE=python:3.12-slim
        ARG VERSION=1.0
        FROM ${BASE}
        ENV V1=${VERSION}
        ARG VERSION
        ENV V2=${VERSION}
        """)
    assert [image.ref for image in subject.base_images] == ["python:3.12-slim"]
    # V1: not declared in the stage; on an external image its ENV might define it.
    assert env(subject) == {"V1": "${VERSION}", "V2": "1.0"}
    args = [(var.name, var.value, var.final, var.location.line)
            for var in subject.env if var.origin == "ARG"]
    assert args == [("BASE", "python:3.12-slim", False, 1), ("VERSION", "1.0", False, 2),
                    ("VERSION", "1.0", True, 5)]


def test_undeclared_variables_are_empty_on_scratch_and_kept_on_images() -> None:
    scratch = parse("FROM scratch\nENV PATH=/opt/bin:$PATH\n")
    image = parse("FROM python:3.12\nENV PATH=/opt/bin:$PATH\n")
    assert env(scratch) == {"PATH": "/opt/bin:"}
    assert env(image) == {"PATH": "/opt/bin:$PATH"}


def test_env_line_substitutes_with_the_environment_before_it() -> None:
    subject = parse("""\
        FROM scratch
        ENV A=1
        ENV A=2 B=$A
        ENV LEGACY value with spaces
        """)
    assert [(v.name, v.value, v.location.line) for v in subject.env] == [
        ("A", "1", 2), ("A", "2", 3), ("B", "1", 3), ("LEGACY", "value with spaces", 4)
    ]


def test_env_wins_over_arg_of_the_same_name() -> None:
    subject = parse("""\
        FROM alpine
        ENV MODE=prod
        ARG MODE=dev
        RUN echo $MODE
        """)
    assert subject.run_steps[0].script == "echo prod"
    assert subject.run_steps[0].environment == {"MODE": "prod"}


def test_build_args_override_declared_args_only() -> None:
    subject = parse(
        """\
        ARG BASE=python:3.10-slim
        FROM ${BASE}
        ARG UID=1000
        ARG TOKEN
        RUN echo $UID $UNDECLARED
        USER ${UID}
        """,
        build_args={"BASE": "python:3.12-slim", "UID": "2000", "UNDECLARED": "x"},
    )
    assert [image.ref for image in subject.base_images] == ["python:3.12-slim"]
    assert subject.user is not None and (subject.user.spec, subject.user.uid) == ("2000", 2000)
    assert subject.run_steps[0].script == "echo 2000 $UNDECLARED"
    assert subject.run_steps[0].environment == {"UID": "2000"}
    build_args = [(v.name, v.value, v.location.line, v.final)
                  for v in subject.env if v.origin == "build-arg"]
    assert build_args == [("BASE", "python:3.12-slim", 1, False), ("UID", "2000", 3, True),
                          ("UNDECLARED", "x", None, False)]
    assert env(subject, "ARG")["TOKEN"] is None


def test_docker_substitutes_only_some_instructions() -> None:
    subject = parse("""\
        FROM alpine
        ARG DIR=/srv
        ARG PORT=8080
        WORKDIR $DIR
        EXPOSE $PORT
        LABEL dir=$DIR
        VOLUME $DIR/data
        STOPSIGNAL ${SIG:-SIGTERM}
        CMD echo $DIR
        ONBUILD RUN echo $DIR
        """)
    values = {i.keyword: i.value for i in subject.instructions}
    assert values["WORKDIR"] == "/srv" and values["EXPOSE"] == "8080"
    assert values["LABEL"] == "dir=/srv" and values["VOLUME"] == "/srv/data"
    assert values["STOPSIGNAL"] == "${SIG:-SIGTERM}"  # SIG may be in the base image's ENV
    assert values["CMD"] == "echo $DIR" and values["ONBUILD"] == "RUN echo $DIR"
    assert subject.volumes == ["/srv/data"]
    assert [(p.port, p.protocol) for p in subject.exposed_ports] == [(8080, "tcp")]


def test_automatic_platform_args_stay_unresolved() -> None:
    subject = parse("""\
        FROM --platform=$BUILDPLATFORM golang:1.22 AS build
        ARG TARGETARCH
        RUN GOARCH=$TARGETARCH go build ./...
        FROM --platform=linux/amd64 alpine:3.20
        COPY --from=build /out /app
        """)
    assert [(i.ref, i.platform, i.final) for i in subject.base_images] == [
        ("golang:1.22", "$BUILDPLATFORM", False), ("alpine:3.20", "linux/amd64", True)
    ]
    assert subject.run_steps[0].script == "GOARCH=$TARGETARCH go build ./..."
    assert subject.instructions[0].flags == {"platform": "$BUILDPLATFORM"}


def test_onbuild_is_kept_as_an_instruction_only() -> None:
    subject = parse("""\
        FROM python:3.12
        ONBUILD USER root
        ONBUILD RUN apt-get install -y sudo
        ONBUILD ENV SECRET_TOKEN=abc
        USER 1000
        """)
    assert [(i.keyword, i.value) for i in subject.instructions[1:4]] == [
        ("ONBUILD", "USER root"),
        ("ONBUILD", "RUN apt-get install -y sudo"),
        ("ONBUILD", "ENV SECRET_TOKEN=abc"),
    ]
    assert subject.user is not None and subject.user.uid == 1000
    assert subject.run_steps == [] and subject.packages == [] and subject.env == []


# --- stages --------------------------------------------------------------------------

MULTI_STAGE = """\
    FROM golang:1.22 AS builder
    RUN go build -o /out/app ./cmd/app
    USER root

    FROM node:20 AS docs
    RUN npm run build

    FROM gcr.io/distroless/static:nonroot AS final
    COPY --from=builder /out/app /app
    USER 65532
    """


def test_default_target_is_the_last_stage() -> None:
    subject = parse(MULTI_STAGE)
    assert subject.metadata == {"stages": ["builder", "docs", "final"], "stage": "final"}
    # docs feeds nothing the target needs: its facts are left out.
    assert [(i.keyword, i.stage, i.final) for i in subject.instructions] == [
        ("FROM", "builder", False), ("RUN", "builder", False), ("USER", "builder", False),
        ("FROM", "final", True), ("COPY", "final", True), ("USER", "final", True),
    ]
    assert [(b.ref, b.registry, b.repository, b.final) for b in subject.base_images] == [
        ("golang:1.22", "docker.io", "library/golang", False),
        ("gcr.io/distroless/static:nonroot", "gcr.io", "distroless/static", True),
    ]
    assert subject.user is not None and subject.user.uid == 65532


def test_target_selects_a_stage_by_name() -> None:
    subject = parse(MULTI_STAGE, target="Builder")
    assert subject.metadata["stage"] == "builder"
    assert [i.stage for i in subject.instructions] == ["builder"] * 3
    assert subject.user is not None and subject.user.spec == "root" and subject.user.is_root
    assert [(s.final, s.stage) for s in subject.run_steps] == [(True, "builder")]


def test_unknown_target_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        parse(MULTI_STAGE, target="release")
    assert str(caught.value) == (
        "Dockerfile: --target release: no stage of that name (stages: builder, docs, final)"
    )


def test_stage_inherits_user_env_and_workdir_from_its_parent_stage() -> None:
    subject = parse("""\
        FROM python:3.12-slim AS base
        ENV APP_HOME=/srv/app
        WORKDIR $APP_HOME
        USER root

        FROM base AS final
        WORKDIR src
        RUN echo $APP_HOME
        """)
    user = subject.user
    assert user is not None
    assert (user.spec, user.uid, user.location and user.location.line) == ("root", 0, 4)
    assert user.inherited_from == "base"
    assert subject.workdir == "/srv/app/src"
    assert subject.run_steps[0].script == "echo /srv/app"
    assert subject.run_steps[0].environment == {"APP_HOME": "/srv/app"}
    assert [(b.ref, b.stage, b.final) for b in subject.base_images] == [
        ("python:3.12-slim", "base", True)
    ]


def test_copy_and_mount_sources_by_name_or_index_are_needed_stages() -> None:
    subject = parse("""\
        FROM alpine AS unused
        RUN apk add nmap
        FROM python:3.12 AS deps
        RUN pip install requests
        FROM golang:1.22
        RUN go build ./...
        FROM debian:bookworm-slim
        COPY --from=2 /go/bin/app /app
        RUN --mount=type=bind,from=deps,source=/usr/lib,target=/deps ls /deps
        COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/
        COPY --from=scratch / /
        """)
    assert subject.metadata["stages"] == ["unused", "deps", "2", "3"]
    assert {step.stage for step in subject.run_steps} == {"deps", "2", "3"}
    assert [(p.name, p.final) for p in subject.packages] == [("requests", False)]
    assert [(b.ref, b.stage, b.final, b.location.line) for b in subject.base_images] == [
        ("python:3.12", "deps", False, 3),
        ("golang:1.22", "2", False, 5),
        ("debian:bookworm-slim", "3", True, 7),
        ("nginx:1.27", "3", False, 10),
    ]
    mount_step = subject.run_steps[-1]
    assert mount_step.mounts == ["type=bind,from=deps,source=/usr/lib,target=/deps"]


def test_from_arg_substitution_can_name_a_stage() -> None:
    subject = parse("""\
        ARG FLAVOUR=slim
        FROM python:3.12 AS full
        USER 1000
        FROM python:3.12-slim AS slim
        USER 2000
        FROM ${FLAVOUR}
        """)
    assert subject.user is not None and subject.user.uid == 2000
    assert [b.stage for b in subject.base_images] == ["slim"]


# --- base images -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("python:3.10-slim", "docker.io", "library/python", "3.10-slim", None),
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("docker.io/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
        ("ghcr.io/acme/app:1.2@sha256:abcd", "ghcr.io", "acme/app", "1.2", "sha256:abcd"),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        ("registry.example.com:5000/app@sha256:ff", "registry.example.com:5000", "app", None,
         "sha256:ff"),
    ],
)
def test_base_image_references_are_parsed(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    (image,) = parse(f"FROM {ref}\n").base_images
    assert (image.ref, image.registry, image.repository, image.tag, image.digest) == (
        ref, registry, repository, tag, digest
    )
    assert (image.stage, image.final, image.location.line) == ("0", True, 1)


def test_scratch_and_stage_names_are_not_base_images() -> None:
    subject = parse("""\
        FROM scratch AS root
        FROM root AS app
        COPY --from=root / /
        """)
    assert subject.base_images == []
    assert subject.user is not None and subject.user.inherited_from is None


# --- USER --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "spec", "name", "uid", "gid"),
    [
        ("USER 0:0", "0:0", None, 0, 0),
        ("USER root:root", "root:root", "root", 0, 0),
        ("USER root", "root", "root", 0, 0),
        ("ARG UID=0\nUSER ${UID}", "0", None, 0, 0),
        ("ARG UID=1000\nARG GID=1000\nUSER $UID:$GID", "1000:1000", None, 1000, 1000),
        ("USER 1000", "1000", None, 1000, None),
        ("RUN useradd -u 1001 -m app\nUSER app", "app", "app", 1001, None),
        ("RUN useradd --uid 1002 -g 1002 app\nUSER app", "app", "app", 1002, 1002),
        ("RUN adduser -u 1003 app\nUSER app", "app", "app", 1003, None),
        ("RUN adduser --disabled-password --uid 1004 app\nUSER app", "app", "app", 1004, None),
        ("RUN addgroup -S app && adduser -D -u 1005 -G app app\nUSER app", "app", "app", 1005,
         None),
        ("RUN groupadd -g 1100 grp && useradd -u 1006 -g grp app\nUSER app", "app", "app", 1006,
         1100),
        ("RUN groupadd --gid 1200 grp\nUSER 1007:grp", "1007:grp", None, 1007, 1200),
    ],
)
def test_user_resolution(body: str, spec: str, name: str | None, uid: int, gid: int | None) -> None:
    lines = body.split("\n")
    subject = parse_dockerfile("FROM debian:bookworm\n" + body + "\n", "Dockerfile")
    user = subject.user
    assert user is not None
    assert (user.spec, user.name, user.uid, user.gid) == (spec, name, uid, gid)
    assert user.unresolved_reason is None
    assert user.location is not None and user.location.line == len(lines) + 1
    assert user.is_root is (uid == 0)


def test_no_user_anywhere_is_root_inherited_from_the_base_image() -> None:
    subject = parse("""\
        ARG BASE=python:3.12-slim
        FROM ${BASE} AS base
        FROM base
        RUN echo hi
        """)
    user = subject.user
    assert user is not None
    assert (user.spec, user.uid, user.inherited_from) == (None, None, "python:3.12-slim")
    assert user.is_root
    assert user.location is not None and user.location.line == 3


def test_root_in_a_builder_is_not_the_final_user() -> None:
    subject = parse("""\
        FROM golang:1.22 AS build
        USER root
        FROM alpine:3.20
        COPY --from=build /app /app
        USER 1000:1000
        """)
    assert subject.user is not None and (subject.user.uid, subject.user.gid) == (1000, 1000)
    assert subject.user.inherited_from is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("USER nginx",
         "user 'nginx' is not created in this Dockerfile; it may come from the base image "
         "debian:bookworm"),
        ("RUN useradd -r app\nUSER app",
         "user 'app' is created without a fixed uid (useradd -u / adduser -u)"),
        ("ARG UID\nUSER ${UID:-1000}",
         "USER ${UID:-1000} depends on $UID, which this Dockerfile gives no value; "
         "pass --build-arg UID=..."),
        ("ARG UID\nRUN useradd -u $UID app\nUSER app",
         "user 'app' is created with uid '$UID', which is not a number lint can read"),
    ],
)
def test_unresolvable_users_say_why(body: str, reason: str) -> None:
    user = parse_dockerfile("FROM debian:bookworm\n" + body + "\n", "Dockerfile").user
    assert user is not None
    assert user.uid is None and user.unresolved_reason == reason
    assert not user.is_root


# --- run steps, packages, instructions ----------------------------------------------------


def test_run_step_facts() -> None:
    subject = parse("""\
        FROM python:3.12-slim
        ENV PIP_NO_CACHE_DIR=1
        ARG EXTRA
        RUN --mount=type=cache,target=/root/.cache/pip --network=none \\
            pip install "flask>=3" && \\
            curl -fsSL https://example.com/x.sh | sh
        """)
    (step,) = subject.run_steps
    assert (step.location.line, step.location.end_line) == (4, 6)
    assert step.mounts == ["type=cache,target=/root/.cache/pip"]
    assert step.environment == {"PIP_NO_CACHE_DIR": "1"}
    assert step.script == 'pip install "flask>=3" &&     curl -fsSL https://example.com/x.sh | sh'
    assert argvs(step) == [
        ["pip", "install", "flask>=3"], ["curl", "-fsSL", "https://example.com/x.sh"], ["sh"]
    ]
    assert [(d.url, d.consumer, d.runs_as_code) for d in step.downloads] == [
        ("https://example.com/x.sh", "sh", True)
    ]
    assert (step.stage, step.final, step.exec_form) == ("0", True, False)
    run = subject.instructions[-1]
    assert run.flags == {"mount": "type=cache,target=/root/.cache/pip", "network": "none"}


def test_packages_from_every_manager() -> None:
    subject = parse("""\
        FROM debian:bookworm
        RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.* git \\
            -o Dpkg::Options::=--force-confold ./local.deb
        RUN apt install -y vim/bookworm-backports
        RUN apk add --no-cache --virtual .build-deps gcc musl-dev=1.2.4-r2
        RUN yum -y install httpd && dnf install -y nginx && microdnf install shadow-utils
        RUN zypper -n install --no-recommends sudo
        RUN pip install --no-cache-dir -r requirements.txt requests==2.31 'uvicorn[standard]>=1' .
        RUN python3 -m pip install --upgrade PyYAML && pip3 install -e ./src Django
        RUN sudo DEBIAN_FRONTEND=noninteractive apt-get install -y tini
        """)
    assert [(p.manager, p.name, p.version, p.location.line) for p in subject.packages] == [
        ("apt", "curl", "7.88.*", 2),
        ("apt", "git", None, 2),
        ("apt", "vim", None, 4),
        ("apk", "gcc", None, 5),
        ("apk", "musl-dev", "1.2.4-r2", 5),
        ("yum", "httpd", None, 6),
        ("dnf", "nginx", None, 6),
        ("microdnf", "shadow-utils", None, 6),
        ("zypper", "sudo", None, 7),
        ("pip", "requests", "2.31", 8),
        ("pip", "uvicorn", ">=1", 8),
        ("pip", "pyyaml", None, 9),
        ("pip", "django", None, 9),
        ("apt", "tini", None, 10),
    ]


def test_instruction_flags_and_values() -> None:
    subject = parse("""\
        FROM alpine
        ARG OWNER=app
        ADD --checksum=sha256:abc https://example.com/tool.tgz /opt/
        COPY --chown=${OWNER}:${OWNER} --link ["a b", "/dst/"]
        HEALTHCHECK --interval=30s CMD wget -q localhost
        """)
    add, copy, health = subject.instructions[2:]
    assert (add.keyword, add.flags, add.value) == (
        "ADD", {"checksum": "sha256:abc"}, "https://example.com/tool.tgz /opt/"
    )
    assert (copy.flags, copy.value) == ({"chown": "app:app", "link": "true"}, '["a b", "/dst/"]')
    assert (health.flags, health.value) == ({"interval": "30s"}, "CMD wget -q localhost")


def test_exposed_ports_volumes_and_workdir_of_the_target_chain() -> None:
    subject = parse("""\
        FROM alpine AS base
        EXPOSE 80 443/tcp 53/udp
        VOLUME ["/data", "/logs"]
        WORKDIR /srv
        FROM base
        EXPOSE 9000-9002/UDP
        VOLUME /cache /tmp
        WORKDIR app/../web
        """)
    assert [(p.port, p.protocol, p.location.line) for p in subject.exposed_ports] == [
        (80, "tcp", 2), (443, "tcp", 2), (53, "udp", 2),
        (9000, "udp", 6), (9001, "udp", 6), (9002, "udp", 6),
    ]
    assert subject.volumes == ["/data", "/logs", "/cache", "/tmp"]
    assert subject.workdir == "/srv/web"


# --- suppressions -------------------------------------------------------------------------


def test_line_suppression_covers_the_next_instruction() -> None:
    subject = parse("""\
        FROM debian:bookworm
        # paracle-guard ignore=PG401,denied-package reason="the dev image needs vim"
        # a second comment may sit between
        RUN apt-get install -y \\
            vim
        # paracle-guard ignore=PG101 reason='root on purpose'
        USER root
        """)
    assert [(s.rules, s.reason, s.scope, s.first_line, s.last_line, s.location.line)
            for s in subject.suppressions] == [
        (["PG401", "denied-package"], "the dev image needs vim", "line", 4, 5, 2),
        (["PG101"], "root on purpose", "line", 7, 7, 6),
    ]


def test_suppression_separated_by_a_blank_line_covers_nothing() -> None:
    subject = parse("""\
        FROM alpine
        # paracle-guard ignore=PG101 reason="too far away"

        USER root
        """)
    (suppression,) = subject.suppressions
    assert (suppression.first_line, suppression.last_line) == (None, None)


def test_suppression_inside_a_continuation_covers_that_instruction() -> None:
    subject = parse("""\
        FROM alpine
        RUN apk add \\
            # paracle-guard ignore=denied-package reason="debug build"
            sudo
        """)
    (suppression,) = subject.suppressions
    assert (suppression.first_line, suppression.last_line) == (2, 4)


def test_file_suppression_anywhere_and_missing_reasons() -> None:
    subject = parse("""\
        FROM alpine
        USER 1000
        # paracle-guard ignore-file=PG501, PG502
        # Paracle-Guard ignore=PG101 reason=unquoted words here
        # paracle-guard ignore=PG103
        RUN true
        # paracle-guard: not a suppression
        """)
    assert [(s.rules, s.reason, s.scope, s.first_line) for s in subject.suppressions] == [
        (["PG501", "PG502"], None, "file", None),
        (["PG101"], "unquoted words here", "line", 6),
        (["PG103"], None, "line", 6),
    ]


# --- parse problems --------------------------------------------------------------------------

EMPTY = "empty Dockerfile: no instructions (it needs at least a FROM)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", [(1, EMPTY)]),
        (b"# only a comment\n\n", [(1, EMPTY)]),
        (b"RUN echo hi\nUSER app\n",
         [(1, "no FROM instruction: a Dockerfile must start a build stage with FROM")]),
        (b"FROM alpine\nECHO hi\n", [(2, "unknown instruction 'ECHO'")]),
        (b"ARG X=1\nLABEL a=b\nFROM alpine\n",
         [(2, "LABEL before the first FROM: only ARG may come before FROM")]),
        (b"FROM alpine\nRUN <<EOF\necho never closed\n",
         [(2, "unterminated heredoc <<EOF: no line 'EOF' closes it")]),
        (b"\x00\x01\x02ELF",
         [(1, "binary content (NUL byte on line 1); a Dockerfile is UTF-8 text")]),
        (b"FROM alpine\nRUN echo \xff\xfe\n", [(2, "line 2 is not valid UTF-8 text")]),
        (b"# escape=x\nFROM alpine\n", [(1, "invalid escape directive 'x': use \\ or `")]),
        (b"FROM alpine AS\n", [(1, "FROM takes an image, optionally followed by AS name")]),
        (b"FROM alpine AS a\nFROM alpine AS a\n", [(2, "duplicate stage name 'a'")]),
        (b"FROM alpine\nUSER app extra\n", [(2, "USER takes exactly one argument: user[:group]")]),
        (b"FROM alpine\nCOPY onlyone\n", [(2, "COPY needs a source and a destination")]),
        (b"FROM alpine\nEXPOSE http\n", [(2, "EXPOSE 'http' is not a port[/protocol]")]),
        (b"FROM alpine\nONBUILD FROM x\n", [(2, "ONBUILD FROM is not allowed")]),
        (b"FROM alpine\nENV\n", [(2, "ENV requires at least one argument")]),
        (b"FROM alpine\nCOPY --from=7 /a /b\n", [(2, "--from=7: no stage has that index")]),
    ],
)
def test_parse_problems(content: bytes, expected: list[tuple[int, str]]) -> None:
    assert problems(parse_dockerfile(content, "Dockerfile")) == expected


def test_problems_are_capped() -> None:
    content = "FROM alpine\n" + "".join(f"BOGUS{n} x\n" for n in range(30))
    found = problems(parse_dockerfile(content, "Dockerfile"))
    assert len(found) == 21
    assert found[0] == (2, "unknown instruction 'BOGUS0'")
    assert found[-1] == (None, "10 more problems not shown")


def test_problem_locations_name_the_path() -> None:
    subject = parse_dockerfile("FROM alpine\nNOPE\n", "docker/Dockerfile.dev")
    assert subject.target == "docker/Dockerfile.dev" and subject.kind == "dockerfile"
    assert subject.parse_problems[0].location.path == "docker/Dockerfile.dev"
    assert str(subject.parse_problems[0].location) == "docker/Dockerfile.dev:2"


# --- loading files --------------------------------------------------------------------------


def test_load_dockerfile_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM alpine AS a\nUSER 1000\nFROM alpine AS b\n")
    subject = load_dockerfile(path, target="a")
    assert subject.target == str(path)
    assert subject.user is not None and subject.user.uid == 1000


def test_load_dockerfile_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match=r"nope: no such file$"):
        load_dockerfile(missing)
    with pytest.raises(InputError, match=r": is a directory, not a Dockerfile$"):
        load_dockerfile(tmp_path)


# --- never raises ----------------------------------------------------------------------------

_DOCKERFILE_LINES = st.sampled_from([
    "FROM alpine", "FROM a AS b", "from b", "FROM ${X:-y}", "ARG X", "ARG X=1", "RUN <<EOF",
    "RUN <<-'A' <<B", "EOF", "A", "B", "\tA", "RUN a \\", "\\", "`", "# escape=`", "# syntax=",
    "USER $X", "USER ${X}:${Y", "ENV A=1 B", "ENV", "COPY --from=0 a b", "COPY --from=", "ONBUILD",
    "RUN [\"sh\", \"-c\", \"x\"]", "RUN [[[", "EXPOSE 1-99999", "WORKDIR ..", "\ufeff", "\r",
    "# paracle-guard ignore=PG1 reason=\"x", "", "  ", "RUN sh -c '$(", "VOLUME [\"/\"",
])


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.lists(_DOCKERFILE_LINES, max_size=25).map("\n".join),
))
def test_parse_dockerfile_never_raises(content: str | bytes) -> None:
    subject = parse_dockerfile(content, "Dockerfile")
    assert subject.kind == "dockerfile"
    for instruction in subject.instructions:
        line, end = instruction.location.line, instruction.location.end_line
        assert line is not None and end is not None and 1 <= line <= end


# --- issue 13: what BuildKit refuses and accepts, COPY/ADD facts, SHELL, FROM $VAR ---------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('LABEL foo="bar baz', "double"),
        ("LABEL foo='bar baz", "single"),
        ('ENV A="unclosed', "double"),
        ("ENV LEGACY value with 'open", "single"),
        ('ARG X="a', "double"),
        ('WORKDIR "/srv', "double"),
        ('COPY a "b c.txt /dst/', "double"),
        ('USER "1000', "double"),
        ('EXPOSE "80', "double"),
    ],
)
def test_an_unterminated_quote_is_a_parse_error_at_its_line(line: str, kind: str) -> None:
    subject = parse_dockerfile(f"FROM alpine:3.20\n\n{line}\nUSER 1000\n", "Dockerfile")
    (problem,) = subject.parse_problems
    assert problem.location.line == 3
    assert f"the {kind} quote is never closed" in problem.message


@pytest.mark.parametrize(
    "line",
    [
        'LABEL foo="bar baz" qux=\'a b\'',
        'LABEL escaped="a \\" b"',
        'RUN echo "unclosed',  # the shell's business, not BuildKit's
        'CMD ["echo", "x"]',
        'VOLUME ["/data"]',
    ],
)
def test_closed_quotes_and_unexpanded_instructions_are_fine(line: str) -> None:
    assert parse_dockerfile(f"FROM alpine:3.20\n{line}\n", "Dockerfile").parse_problems == []


def test_a_latin1_comment_is_accepted_as_docker_build_does() -> None:
    content = b"# Maintenu par l\xe9quipe\nFROM alpine:3.20\n  # caf\xe9 \xff\nUSER 1000\n"
    subject = parse_dockerfile(content, "Dockerfile")
    assert subject.parse_problems == []
    assert spans(subject) == [("FROM", 2, 2), ("USER", 4, 4)]


def test_latin1_outside_a_comment_is_reported_with_advice() -> None:
    subject = parse_dockerfile(b"# caf\xe9\nFROM alpine:3.20\nLABEL a=caf\xe9\n", "Dockerfile")
    (problem,) = subject.parse_problems
    assert (problem.location.line, problem.message) == (3, "line 3 is not valid UTF-8 text")
    assert problem.fix is not None and "Save the Dockerfile as UTF-8" in problem.fix


def test_copy_and_add_operands_as_buildkit_reads_them() -> None:
    subject = parse("""\
        FROM alpine:3.20
        WORKDIR /srv/app
        ARG CONF=app.conf
        COPY --chown=1000 --chmod=0640 $CONF "two words.txt" conf/
        ADD ["https://example.com/x.tgz", "/opt/"]
        ADD git@github.com:org/tools.git#v1 tools
        COPY --chmod=4755 <<EOF /usr/local/bin/run
        #!/bin/sh
        EOF
        """)
    copy, add_url, add_git, heredoc = subject.instructions[3:]
    assert (copy.sources, copy.destination) == (["app.conf", "two words.txt"], "/srv/app/conf/")
    assert [m.path for m in copy.mode_changes] == ["/srv/app/conf/app.conf",
                                                   "/srv/app/conf/two words.txt"]
    assert not any(m.setuid for m in copy.mode_changes)
    assert [(d.url, d.kind, d.verified) for d in add_url.downloads] == [
        ("https://example.com/x.tgz", "http", False)]
    assert (add_git.destination, [(d.kind, d.verified) for d in add_git.downloads]) == (
        "/srv/app/tools", [("git", False)])
    assert [(m.path, m.setuid) for m in heredoc.mode_changes] == [("/usr/local/bin/run", True)]
    assert copy.downloads == [] and heredoc.sources == ["<<EOF"]


def test_run_steps_start_in_the_workdir_and_follow_shell() -> None:
    subject = parse("""\
        FROM alpine:3.20 AS base
        WORKDIR /etc
        RUN echo x > sudoers.d/app
        SHELL ["/bin/bash", "-o", "pipefail", "-c"]
        FROM base
        RUN curl -s https://x | bash
        SHELL ["pwsh", "-Command"]
        RUN apk add curl
        """)
    first, second, third = subject.run_steps
    assert [w.path for w in first.writes] == ["/etc/sudoers.d/app"]
    assert [d.consumer for d in second.downloads] == ["bash"]  # bash -c, inherited from base
    assert [c.argv[0] for c in third.commands] == ["pwsh"]  # not a POSIX shell: nothing read
    assert third.package_calls == [] and subject.packages == []
    # ...and so the RUN is not checked, which is said rather than passed in silence.
    (problem,) = subject.parse_problems
    assert problem.location.line == 8
    assert problem.message == ('RUN runs through SHELL ["pwsh", "-Command"], which is not a '
                               "shell paracle-guard reads; its commands are not checked")


@pytest.mark.parametrize(
    "shell",
    ['["/bin/busybox", "sh", "-c"]', '["/usr/bin/env", "bash", "-c"]', '["/bin/rbash", "-c"]',
     '["/usr/bin/fish", "-c"]', '["/bin/sh", "-e", "-c"]', '["sudo", "-E", "sh", "-c"]'],
)
def test_a_shell_reached_through_wrappers_or_by_another_name_is_read(shell: str) -> None:
    subject = parse(f"FROM alpine:3.20\nSHELL {shell}\nRUN apk add --no-cache sudo\n")
    assert subject.parse_problems == []
    assert [p.name for p in subject.packages] == ["sudo"]


@pytest.mark.parametrize(
    ("text", "ref", "unresolved", "undeclared"),
    [
        ("ARG BASE\nFROM $BASE\n", "$BASE", ["BASE"], []),
        ("FROM gcr.io/$PROJECT_ID/az\n", "gcr.io/$PROJECT_ID/az", ["PROJECT_ID"], ["PROJECT_ID"]),
        ("ARG TAG\nFROM python:${TAG}-slim\n", "python:${TAG}-slim", ["TAG"], []),
        ("ARG TAG=3.12\nFROM python:${TAG}-slim\n", "python:3.12-slim", [], []),
        ("ARG REGISTRY\nFROM $REGISTRY/app:1\n", "$REGISTRY/app:1", ["REGISTRY"], []),
    ],
)
def test_from_with_variables_that_have_no_value(
    text: str, ref: str, unresolved: list[str], undeclared: list[str]
) -> None:
    (image,) = parse_dockerfile(text, "Dockerfile").base_images
    assert (image.ref, image.unresolved, image.undeclared) == (ref, unresolved, undeclared)
    assert image.registry == ("$REGISTRY" if ref.startswith("$REGISTRY") else
                              "gcr.io" if ref.startswith("gcr.io") else "docker.io")


def test_scripts_nested_past_the_readers_depth_are_a_parse_problem() -> None:
    subject = parse_dockerfile("FROM alpine:3.20\nRUN " + "eval " * 9 + "apk add sudo\n",
                               "Dockerfile")
    (problem,) = subject.parse_problems
    assert problem.location.line == 2
    assert "more than 6 levels deep" in problem.message
    assert problem.fix is not None


# Forty self-doublings ask for 2**40 characters: before the expansion budget these
# exhausted memory (MemoryError, or the process killed) instead of reporting.
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("FROM alpine:3.20\nARG A=xx\n" + "ARG A=${A}${A}\n" * 40 + "USER 1000\n", 24),
        ("ARG A=xx\n" + "ARG A=$A$A\n" * 40 + "FROM alpine:3.20\nUSER 1000\n", 24),
        ("FROM alpine:3.20\nENV A=xx\n" + "ENV A=$A$A\n" * 40 + "USER 1000\n", 24),
        ("FROM alpine:3.20\nENV A=x\nENV B=" + "$A" * 10 + "\n" + "ENV A=$B$B$B$B$B$B$B$B\n"
         "ENV B=$A$A$A$A$A$A$A$A\n" * 5 + "RUN echo $A\n", 10),
    ],
)
def test_self_doubling_variables_are_a_parse_problem_not_a_crash(text: str, line: int) -> None:
    subject = parse_dockerfile(text, "Dockerfile")
    lines = [problem.location.line for problem in subject.parse_problems]
    assert lines and lines[0] == line
    assert "substitution adds more than" in subject.parse_problems[0].message


def test_a_script_that_doubles_its_own_variables_is_left_unread_and_said() -> None:
    subject = parse_dockerfile("FROM alpine:3.20\nRUN A=xx; " + "A=$A$A; " * 40
                               + "apk add --no-cache $A\nUSER 1000\n", "Dockerfile")
    (problem,) = subject.parse_problems
    assert problem.location.line == 2
    assert "expands variables to more than" in problem.message


def test_ordinary_substitution_spends_little_of_the_budget() -> None:
    subject = parse_dockerfile(
        "FROM alpine:3.20\nENV P=/opt/a/bin\nENV P=/opt/b/bin:$P\n"
        "ARG V=1.2\nRUN A=$V; echo ${A:-x} $P > /etc/motd\nUSER 1000\n", "Dockerfile")
    assert subject.parse_problems == []
    assert subject.run_steps[0].writes[0].content == "1.2 /opt/b/bin:/opt/a/bin\n"
