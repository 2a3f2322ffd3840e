"""Reports shared by the reporter tests: every shape a reporter must render.

Tests reach these through fixtures only (pytest's importlib mode makes a
conftest unimportable); the sample's names are spelled out in the tests.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paracle_guard.location import Location
from paracle_guard.report.models import (
    Finding,
    PolicyRef,
    Report,
    Result,
    RuleInfo,
    SuppressionInfo,
    ToolInfo,
)
from paracle_guard.severity import Severity

DOCKERFILE = "docker/Dockerfile.sandbox"
CLEAN = "docker/Dockerfile.clean"
ABSOLUTE = "/srv/build/Dockerfile"
IMAGE = "ghcr.io/acme/sandbox:1.0"
LAYER = "sha256:" + "ab" * 32
EXPIRED = "exception for denied-package on 'docker/*' expired on 2024-01-31; it no longer applies"

RULES = {
    info.code: info
    for info in (
        RuleInfo(
            code="PG101",
            name="root-user",
            severity=Severity.ERROR,
            summary="The image runs as root",
            fix="Add USER 1000 to the final stage",
            rationale="A root process in a container is one kernel bug away from root on the host.",
            references=["CIS Docker 4.1", "https://docs.docker.com/reference/dockerfile/#user"],
        ),
        RuleInfo(
            code="PG103",
            name="sudo",
            severity=Severity.ERROR,
            summary="sudo or a similar tool is installed",
            fix="Do not install sudo, doas, gosu or su-exec",
        ),
        RuleInfo(
            code="PG401",
            name="install-recommends",
            severity=Severity.WARNING,
            summary="apt-get install without --no-install-recommends",
            fix="Add --no-install-recommends",
            rationale="Recommended packages widen the attack surface.",
        ),
        RuleInfo(
            code="PG403",
            name="denied-package",
            severity=Severity.WARNING,
            summary="A package the policy denies is installed",
            fix="Remove the package",
        ),
        RuleInfo(
            code="PG501",
            name="unpinned-base-image",
            severity=Severity.WARNING,
            summary="Base image is not pinned",
            fix="Pin a tag and a digest",
        ),
        RuleInfo(
            code="PG503",
            name="remote-code",
            severity=Severity.ERROR,
            summary="Remote code is run unverified",
            fix="Download, verify a checksum, then run",
        ),
        RuleInfo(
            code="PG601",
            name="secret-in-env",
            severity=Severity.WARNING,
            summary="A secret is passed through ENV or ARG",
            fix="Use a BuildKit secret mount",
        ),
        RuleInfo(
            code="PG102",
            name="uid-not-allowed",
            severity=Severity.INFO,
            summary="The UID is not one the policy allows",
            fix="Use an allowed UID",
        ),
    )
}


def finding(
    code: str,
    severity: Severity,
    message: str,
    location: Location,
    suppression: SuppressionInfo | None = None,
) -> Finding:
    return Finding(
        rule=code,
        name=RULES[code].name,
        severity=severity,
        message=message,
        location=location,
        fix=RULES[code].fix,
        suppression=suppression,
    )


def new_report(fail_on: Severity = Severity.WARNING) -> Report:
    return Report(
        tool=ToolInfo(version="0.1.0"),
        policy=PolicyRef(name="sandbox", sha256="0" * 64),
        fail_on=fail_on,
        rules=dict(RULES),
    )


@pytest.fixture
def empty_report() -> Report:
    return new_report()


@pytest.fixture
def make_report() -> Callable[..., Report]:
    """A report with no results yet: ``make_report(fail_on=Severity.ERROR)``."""
    return new_report


@pytest.fixture
def report() -> Report:
    return sample_report()


def sample_report() -> Report:
    """Four targets: a Dockerfile with findings of every severity and every kind of
    suppression, a clean one with a notice, one by absolute path, and an image."""
    built = new_report()
    built.add(
        Result(
            target=DOCKERFILE,
            kind="dockerfile",
            findings=[
                # Out of line order on purpose: reporters sort by line.
                finding(
                    "PG101",
                    Severity.ERROR,
                    "the final stage runs as root",
                    Location(path=DOCKERFILE, line=12),
                ),
                finding(
                    "PG401",
                    Severity.WARNING,
                    "apt-get install without --no-install-recommends",
                    Location(path=DOCKERFILE, line=5, end_line=7),
                ),
                finding(
                    "PG102",
                    Severity.INFO,
                    "cannot prove the UID of user 'app'",
                    Location(path=DOCKERFILE),
                ),
            ],
            suppressed=[
                finding(
                    "PG403",
                    Severity.WARNING,
                    "vim is denied",
                    Location(path=DOCKERFILE, line=6),
                    SuppressionInfo(kind="inline", reason="editor for debugging"),
                ),
                finding(
                    "PG501",
                    Severity.WARNING,
                    "python:3.10-slim has no digest",
                    Location(path=DOCKERFILE, line=1),
                    SuppressionInfo(kind="waiver", reason="digest pinned by renovate"),
                ),
                finding(
                    "PG503",
                    Severity.ERROR,
                    "curl piped into sh",
                    Location(path=DOCKERFILE, line=9),
                    SuppressionInfo(kind="cli", reason="--ignore on the command line"),
                ),
            ],
            metadata={"stage": "final", "stages": ["builder", "final"]},
        )
    )
    built.add(Result(target=CLEAN, kind="dockerfile", notices=[EXPIRED]))
    built.add(
        Result(
            target=ABSOLUTE,
            kind="dockerfile",
            findings=[
                finding(
                    "PG601",
                    Severity.WARNING,
                    "ENV API_TOKEN looks like a secret",
                    Location(path=ABSOLUTE, line=3),
                ),
            ],
            # The same notice on two targets is one thing to know.
            notices=[EXPIRED],
        )
    )
    built.add(
        Result(
            target=IMAGE,
            kind="image",
            findings=[
                finding(
                    "PG103",
                    Severity.ERROR,
                    "sudo is installed",
                    Location(path="/usr/bin/sudo", layer=LAYER),
                ),
                finding(
                    "PG101", Severity.ERROR, "the image config runs as root", Location(path=IMAGE)
                ),
            ],
        )
    )
    return built
