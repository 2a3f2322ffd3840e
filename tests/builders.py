"""Small builders for Subjects and their facts, so rule tests read like the case they test.

RUN steps and COPY/ADD instructions are read by the real readers (the shell
reader, the Dockerfile source), so a rule test sees exactly the facts lint
produces. End-to-end cases through the whole parser live in
tests/rules/test_dockerfile_cases.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from paracle_guard.location import Location
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Violation, find_rule
from paracle_guard.sources.dockerfile import parse_dockerfile
from paracle_guard.sources.run_facts import read_run
from paracle_guard.subject import (
    BaseImage,
    EnvVar,
    ExposedPort,
    FileEntry,
    FileTag,
    Instruction,
    Package,
    RunStep,
    Subject,
    UserFact,
)

DOCKERFILE = "Dockerfile"
IMAGE = "example/app:1.0"


def loc(line: int | None = 1, *, path: str = DOCKERFILE, end_line: int | None = None) -> Location:
    return Location(path=path, line=line, end_line=end_line)


def image_loc(path: str, layer: str = "sha256:layer1") -> Location:
    return Location(path=path, layer=layer)


def controls(**sections: dict[str, Any]) -> Controls:
    """Controls with the given sections changed: controls(user={"allow_root": True})."""
    return Controls.model_validate(sections)


def check(code: str, subject: Subject, policy: Controls | None = None) -> list[Violation]:
    """Run one registered rule on a subject, as the engine would."""
    found = find_rule(code)
    assert found is not None, f"rule {code} is not registered"
    return list(found.check(subject, policy if policy is not None else Controls()))


def messages(code: str, subject: Subject, policy: Controls | None = None) -> list[str]:
    return [violation.message for violation in check(code, subject, policy)]


def dockerfile(**facts: Any) -> Subject:
    return Subject(kind="dockerfile", target=DOCKERFILE, **facts)


def image(**facts: Any) -> Subject:
    return Subject(kind="image", target=IMAGE, **facts)


def run_step(
    script: str,
    *,
    line: int = 1,
    final: bool = True,
    stage: str = "final",
    mounts: list[str] | None = None,
    environment: dict[str, str] | None = None,
    workdir: str = "/",
) -> RunStep:
    """A RUN step as the shell reader reads ``script`` (ENV/ARG values in ``environment``)."""
    return read_run(
        script,
        variables=environment or {},
        cwd=workdir,
        mounts=mounts or [],
        stage=stage,
        final=final,
        location=loc(line),
    )


def instruction(
    keyword: str,
    value: str,
    *,
    line: int = 1,
    final: bool = True,
    flags: dict[str, str] | None = None,
    stage: str = "final",
) -> Instruction:
    """An instruction as the Dockerfile source reads it (COPY/ADD operands included)."""
    given = "".join(f"--{name}={flag} " for name, flag in (flags or {}).items())
    parsed = parse_dockerfile(f"FROM scratch\n{keyword} {given}{value}\n", DOCKERFILE)
    read = parsed.instructions[-1]
    return replace(read, stage=stage, final=final, location=loc(line))


def package(
    name: str,
    manager: str = "apt",
    *,
    line: int = 1,
    final: bool = True,
    version: str | None = None,
    size: int | None = None,
) -> Package:
    return Package(
        name=name,
        manager=manager,
        version=version,
        size_bytes=size,
        final=final,
        location=loc(line),
    )


def user(
    spec: str | None,
    *,
    uid: int | None = None,
    name: str | None = None,
    line: int | None = 1,
    inherited_from: str | None = None,
    unresolved_reason: str | None = None,
) -> UserFact:
    return UserFact(
        spec=spec,
        uid=uid,
        name=name,
        unresolved_reason=unresolved_reason,
        inherited_from=inherited_from,
        location=loc(line) if line is not None else None,
    )


def base_image(
    ref: str,
    *,
    registry: str = "docker.io",
    repository: str | None = None,
    tag: str | None = None,
    digest: str | None = None,
    line: int = 1,
    final: bool = True,
) -> BaseImage:
    return BaseImage(
        ref=ref,
        registry=registry,
        repository=repository if repository is not None else ref.split(":")[0].split("@")[0],
        tag=tag,
        digest=digest,
        stage="final",
        final=final,
        location=loc(line),
    )


def env(
    name: str,
    value: str | None = "value",
    *,
    origin: str = "ENV",
    line: int = 1,
    final: bool = True,
) -> EnvVar:
    return EnvVar(name=name, value=value, origin=origin,
                  final=final, location=loc(line))


def file(
    path: str,
    mode: int = 0o644,
    *,
    kind: str = "file",
    uid: int = 0,
    gid: int = 0,
    capabilities: bool = False,
    tags: list[FileTag] | None = None,
) -> FileEntry:
    return FileEntry(path=path, mode=mode, kind=kind,
                     uid=uid, gid=gid, capabilities=capabilities, tags=tags or [],
                     location=image_loc(path))


def port(number: int, protocol: str = "tcp", *, line: int = 1) -> ExposedPort:
    return ExposedPort(port=number, protocol=protocol, location=loc(line))
