"""PG501 unpinned-base-image, PG502 untrusted-registry, PG503 remote-code."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paracle_guard.severity import Severity
from paracle_guard.sources.run_facts import read_run
from paracle_guard.subject import BaseImage
from tests.builders import (
    base_image,
    check,
    controls,
    dockerfile,
    instruction,
    loc,
    messages,
    run_step,
)

DIGEST = "sha256:" + "a" * 64

# --- PG501 unpinned-base-image ----------------------------------------------------


def test_no_tag_means_latest() -> None:
    (violation,) = check("PG501", dockerfile(base_images=[base_image("python", line=3)]))
    assert violation.message == "base image python has no tag or digest, so it means :latest"
    assert violation.location == loc(3)


def test_latest_tag_without_digest() -> None:
    subject = dockerfile(base_images=[base_image("python:latest", tag="latest")])
    (message,) = messages("PG501", subject)
    assert ":latest" in message


@pytest.mark.parametrize(
    ("ref", "tag", "example"),
    [
        ("alpine", None, "FROM alpine:<version>@sha256:..."),
        ("python:latest", "latest", "FROM python:<version>@sha256:..."),
        ("localhost:5000/team/app:latest", "latest",
         "FROM localhost:5000/team/app:<version>@sha256:..."),
        ("localhost:5000/app", None, "FROM localhost:5000/app:<version>@sha256:..."),
        ("python:3.12", "3.12", "FROM python:3.12@sha256:..."),
    ],
)
def test_the_fix_spells_the_image_s_own_name(ref: str, tag: str | None, example: str) -> None:
    policy = controls(base_image={"require_digest": True})
    (violation,) = check("PG501", dockerfile(base_images=[base_image(ref, tag=tag)]), policy)
    assert violation.fix is not None
    assert violation.fix.endswith(f": {example}")
    assert "python:3.12-slim" not in violation.fix


def test_every_stage_is_checked_not_only_the_final_one() -> None:
    subject = dockerfile(
        base_images=[
            base_image("golang", final=False, line=1),
            base_image("alpine:3.20", tag="3.20"),
        ]
    )
    assert [v.location for v in check("PG501", subject)] == [loc(1)]


@pytest.mark.parametrize(
    ("tag", "digest"),
    [("3.12-slim", None), ("latest", DIGEST), (None, DIGEST)],
)
def test_pinned_images_pass(tag: str | None, digest: str | None) -> None:
    subject = dockerfile(base_images=[base_image("python", tag=tag, digest=digest)])
    assert check("PG501", subject) == []


def test_forbid_latest_off() -> None:
    policy = controls(base_image={"forbid_latest": False})
    assert check("PG501", dockerfile(base_images=[base_image("python")]), policy) == []


def test_require_digest() -> None:
    policy = controls(base_image={"require_digest": True})
    subject = dockerfile(
        base_images=[
            base_image("python:3.12", tag="3.12"),
            base_image("python", tag="3.12", digest=DIGEST),
        ]
    )
    (message,) = messages("PG501", subject, policy)
    assert message == "base image python:3.12 is not pinned by digest (@sha256:...)"


def test_latest_and_no_digest_are_one_finding() -> None:
    policy = controls(base_image={"require_digest": True})
    assert len(check("PG501", dockerfile(base_images=[base_image("python")]), policy)) == 1


# --- PG502 untrusted-registry -----------------------------------------------------


def _ghcr(repository: str) -> BaseImage:
    return base_image(f"ghcr.io/{repository}:1", registry="ghcr.io", repository=repository, tag="1")


@pytest.mark.parametrize(
    ("allowed", "image_fact"),
    [
        (["docker.io"], base_image("python:3.12", tag="3.12")),
        (["DOCKER.IO"], base_image("python:3.12", tag="3.12")),
        (["ghcr.io/acme"], _ghcr("acme/app")),
        (["ghcr.io/acme/"], _ghcr("acme/tools/app")),
        (["docker.io/library"], base_image("python:3.12", tag="3.12")),
        (["docker.io/python"], base_image("python", repository="library/python")),
        (["quay.io", "ghcr.io"], _ghcr("someone/app")),
    ],
)
def test_allowed_registries(allowed: list[str], image_fact: BaseImage) -> None:
    policy = controls(base_image={"allowed_registries": allowed})
    assert check("PG502", dockerfile(base_images=[image_fact]), policy) == []


@pytest.mark.parametrize(
    ("allowed", "image_fact"),
    [
        (["ghcr.io"], base_image("python:3.12", tag="3.12")),
        (["ghcr.io/acme"], _ghcr("acmeevil/app")),
        (["docker.io/library"], base_image("bitnami/redis", repository="bitnami/redis")),
        (["registry.example.com"], _ghcr("acme/app")),
    ],
)
def test_disallowed_registries(allowed: list[str], image_fact: BaseImage) -> None:
    policy = controls(base_image={"allowed_registries": allowed})
    (violation,) = check("PG502", dockerfile(base_images=[image_fact]), policy)
    assert "not in allowed_registries" in violation.message


def test_no_allowed_registries_means_any() -> None:
    assert check("PG502", dockerfile(base_images=[_ghcr("x/y")])) == []


# --- PG503 remote-code ------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("curl -fsSL https://get.example.com | sh", "RUN pipes curl output into sh"),
        ("curl -fsSL https://x | sudo -E bash -", "RUN pipes curl output into bash"),
        ("wget -qO- https://x | tee /tmp/i.sh | /bin/bash", "RUN pipes wget output into bash"),
        ("curl -sL https://x/get-pip.py | python3", "RUN pipes curl output into python3"),
        ("curl https://x | perl", "RUN pipes curl output into perl"),
        ("wget -O- https://x | node", "RUN pipes wget output into node"),
        ('sh -c "$(curl -fsSL https://x/install.sh)"', "RUN runs curl output with sh"),
        ('eval "$(wget -qO- https://x)"', "RUN runs wget output with eval"),
        ("bash <(curl -s https://x)", "RUN runs curl output with bash"),
    ],
)
def test_downloaded_code_is_run(script: str, message: str) -> None:
    assert messages("PG503", dockerfile(run_steps=[run_step(script)])) == [message]


def test_builder_stages_count_too() -> None:
    step = run_step("curl -fsSL https://sh.rustup.rs | sh -s -- -y", final=False, line=4)
    (violation,) = check("PG503", dockerfile(run_steps=[step]))
    assert violation.location == loc(4)


def test_exec_form_shell_scripts_are_read_too() -> None:
    step = read_run(argv=["/bin/sh", "-c", "curl -s https://x | bash"], location=loc(2))
    assert messages("PG503", dockerfile(run_steps=[step])) == ["RUN pipes curl output into bash"]


@pytest.mark.parametrize(
    "script",
    [
        "curl -fsSLo /tmp/i.sh https://x && echo 'abc  /tmp/i.sh' | sha256sum -c && sh /tmp/i.sh",
        "curl -fsSL https://x/key.gpg | gpg --dearmor -o /usr/share/keyrings/x.gpg",
        "wget -qO- https://x/app.tar.gz | tar xz -C /opt",
        "curl -s https://x | shasum",
        "echo hi | sh",
        "sh -c 'echo $(date)'",
        "ssh-keyscan github.com >> /root/.ssh/known_hosts",
    ],
)
def test_verified_or_unrelated_downloads_pass(script: str) -> None:
    assert check("PG503", dockerfile(run_steps=[run_step(script)])) == []


def test_add_from_url_without_checksum() -> None:
    subject = dockerfile(
        instructions=[instruction("ADD", "https://example.com/tool.tar.gz /opt/", line=8)]
    )
    (violation,) = check("PG503", subject)
    assert violation.message == "ADD https://example.com/tool.tar.gz downloads without --checksum"
    assert violation.location == loc(8)


def test_add_from_url_with_checksum_or_local_add_passes() -> None:
    subject = dockerfile(
        instructions=[
            instruction(
                "ADD",
                "https://example.com/tool.tar.gz /opt/",
                flags={"checksum": "sha256:" + "b" * 64},
            ),
            instruction("ADD", "app.tar.gz /opt/"),
            instruction("COPY", "https-notes.txt /opt/"),
        ]
    )
    assert check("PG503", subject) == []


@pytest.mark.parametrize(
    "source",
    [
        "git@github.com:org/tools.git",
        "ssh://git@github.com/org/tools.git",
        "git://example.com/tools.git",
        "https://github.com/org/tools.git#main",
        "https://github.com/org/tools.git?ref=v1.0",
    ],
)
def test_add_of_a_git_repository_by_a_moving_ref(source: str) -> None:
    subject = dockerfile(instructions=[instruction("ADD", f"{source} /opt/tools", line=3)])
    (violation,) = check("PG503", subject)
    assert violation.message.startswith(f"ADD {source} fetches a git repository by a moving ref")
    assert violation.location == loc(3)


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        ("https://github.com/org/tools.git#0123456789abcdef0123456789abcdef01234567", {}),
        ("git@github.com:org/tools.git?commit=0123456789abcdef0123456789abcdef01234567", {}),
        ("git@github.com:org/tools.git", {"checksum": "0123456789abcdef0123456789abcdef01234567"}),
        ("github.com/org/tools", {}),  # BuildKit reads this as a local path for ADD
        ("./git@host:x", {}),
    ],
)
def test_add_of_a_pinned_git_repository_passes(source: str, flags: dict[str, str]) -> None:
    subject = dockerfile(instructions=[instruction("ADD", f"{source} /opt/tools", flags=flags)])
    assert check("PG503", subject) == []


def _unresolved(ref: str, names: list[str], undeclared: list[str],
                registry: str = "docker.io") -> BaseImage:
    fact = base_image(ref, line=2, registry=registry)
    return replace(fact, unresolved=names, undeclared=undeclared)


def test_a_base_image_chosen_at_build_time_is_unknown_not_latest() -> None:
    subject = dockerfile(base_images=[_unresolved("$BASE", ["BASE"], [])])
    (violation,) = check("PG501", subject)
    assert violation.severity is Severity.INFO
    assert violation.message == (
        "base image $BASE depends on $BASE, which has no value here: the image is chosen at "
        "build time, so lint cannot tell whether it is pinned (pass --build-arg BASE=... to "
        "check it)"
    )


def test_an_undeclared_variable_in_from_is_named() -> None:
    subject = dockerfile(base_images=[_unresolved("gcr.io/$PROJECT_ID/az", ["PROJECT_ID"],
                                                  ["PROJECT_ID"])])
    (message,) = messages("PG501", subject)
    assert message.startswith("base image gcr.io/$PROJECT_ID/az depends on $PROJECT_ID")
    assert "declare ARG PROJECT_ID before FROM" in message


def test_an_unknown_registry_cannot_be_allowed() -> None:
    subject = dockerfile(base_images=[_unresolved("$REGISTRY/app:1", ["REGISTRY"], [],
                                                  registry="$REGISTRY")])
    policy = controls(base_image={"allowed_registries": ["registry.example.com"]})
    (message,) = messages("PG502", subject, policy)
    assert "cannot be checked against allowed_registries" in message
