"""The Subject: normalised facts about one thing under check.

Every source (Dockerfile, image, container, compose service...) turns its raw
input into one Subject; every rule reads only a Subject. A fact carries the
location it came from wherever one exists, so findings point at a file and line
(or at a path inside an image layer).

Facts from a Dockerfile are marked ``final`` when they end up in the target
image (the target stage and the stages it is built ``FROM``); facts from builder
stages that only feed ``COPY --from`` are kept with ``final=False`` because some
controls (remote code, secrets, base images) still care about them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paracle_guard.location import Location

SubjectKind = Literal["dockerfile", "image", "container", "compose", "k8s"]


class UserFact(BaseModel):
    """The effective user a container of this subject starts as."""

    # The user exactly as configured after variable substitution ("1000:1000",
    # "root", "app"); None when nothing sets a user (the engine then runs root).
    spec: str | None = None
    name: str | None = None
    uid: int | None = None
    gid: int | None = None
    # Why the uid could not be proven, when ``uid`` is None and ``spec`` is set.
    unresolved_reason: str | None = None
    # Where the user was set: a USER line, or the base-image/stage it came from.
    location: Location | None = None
    inherited_from: str | None = None

    @property
    def is_root(self) -> bool:
        """True when this user is root in any spelling; unknown names are not root."""
        if not self.spec:
            return True
        return self.uid == 0 or self.name == "root"


class BaseImage(BaseModel):
    """An external image a build starts from (never a stage name, never scratch)."""

    ref: str
    registry: str  # "docker.io" when the reference names none
    repository: str
    tag: str | None = None
    digest: str | None = None
    platform: str | None = None
    stage: str
    final: bool = True
    location: Location


class Package(BaseModel):
    """A package installed (Dockerfile) or present (image database)."""

    name: str
    manager: str  # apt, apk, yum, dnf, microdnf, zypper, pip, dpkg, rpm, python
    version: str | None = None
    size_bytes: int | None = None
    final: bool = True
    location: Location


class RunStep(BaseModel):
    """One RUN instruction, with its shell script split into pipelines of argv lists."""

    script: str
    # Each pipeline is a list of simple commands joined by "|"; each command an argv.
    pipelines: list[list[list[str]]] = Field(default_factory=list)
    exec_form: bool = False
    # BuildKit mounts given with --mount (e.g. "type=cache,target=/var/cache/apt").
    mounts: list[str] = Field(default_factory=list)
    # ENV and ARG values in force when this step runs.
    environment: dict[str, str] = Field(default_factory=dict)
    stage: str
    final: bool = True
    location: Location

    @property
    def commands(self) -> list[list[str]]:
        return [command for pipeline in self.pipelines for command in pipeline]


class Instruction(BaseModel):
    """A Dockerfile instruction after continuation joining and substitution."""

    keyword: str  # upper case: FROM, RUN, COPY...
    value: str
    flags: dict[str, str] = Field(default_factory=dict)  # --from=builder -> {"from": "builder"}
    stage: str
    final: bool = True
    location: Location


class EnvVar(BaseModel):
    """An environment variable or build argument; values are never printed in full."""

    name: str
    value: str | None = None
    origin: Literal["ENV", "ARG", "build-arg", "config"]
    final: bool = True
    location: Location


# Content-derived labels an image source may put on a FileEntry; rules decide what they mean.
FileTag = Literal["sudoers-grant", "private-key", "cloud-credentials", "dotenv", "registry-auth"]

# Basenames an image source always records, whatever their mode: the binaries and
# files the rules look for by name.
NOTABLE_NAMES = frozenset({
    "sudo", "doas", "gosu", "su-exec", "sshd", "dropbear",
    ".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials", ".netrc",
    ".pgpass", ".pypirc", ".npmrc", ".git-credentials", "config.json",
})


class FileEntry(BaseModel):
    """A notable file inside an image.

    An image source records a file when it has setuid/setgid bits or file
    capabilities, is a world-writable directory, lies under /etc/sudoers*, has a
    basename in NOTABLE_NAMES, or carries a content tag. Everything else is not
    kept, so that a large image costs little memory.
    """

    path: str  # absolute path inside the image
    mode: int  # st_mode permission bits, including setuid/setgid/sticky
    kind: Literal["file", "dir", "symlink", "other"] = "file"
    uid: int = 0
    gid: int = 0
    size_bytes: int = 0
    capabilities: bool = False  # carries a security.capability xattr
    tags: list[FileTag] = Field(default_factory=list)
    location: Location


class ExposedPort(BaseModel):
    port: int
    protocol: str = "tcp"
    location: Location


class Suppression(BaseModel):
    """An inline ``# paracle-guard ignore=...`` comment."""

    rules: list[str]
    reason: str | None = None
    scope: Literal["line", "file"]
    # For line scope: the first and last line of the instruction it covers.
    first_line: int | None = None
    last_line: int | None = None
    location: Location


class ParseProblem(BaseModel):
    """Input that could not be understood; reported as a parse-error finding."""

    message: str
    location: Location


class Subject(BaseModel):
    kind: SubjectKind
    target: str
    user: UserFact | None = None
    base_images: list[BaseImage] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    run_steps: list[RunStep] = Field(default_factory=list)
    instructions: list[Instruction] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    files: list[FileEntry] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)
    exposed_ports: list[ExposedPort] = Field(default_factory=list)
    workdir: str | None = None
    suppressions: list[Suppression] = Field(default_factory=list)
    parse_problems: list[ParseProblem] = Field(default_factory=list)
    # Identity of what was checked: image ID, tags, digests, stage name...
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
