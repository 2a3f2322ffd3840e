"""The Subject: normalised facts about one thing under check.

Every source (Dockerfile, image, container, compose service...) turns its raw
input into one Subject; every rule reads only a Subject. A fact carries the
location it came from wherever one exists, so findings point at a file and line
(or at a path inside an image layer).

Containers and compose services also carry a RuntimeConfig: how they are run
(read-only root, capabilities, namespaces, mounts, limits...), normalised so
that one set of rules judges ``docker inspect`` and compose files alike.

Facts from a Dockerfile are marked ``final`` when they end up in the target
image (the target stage and the stages it is built ``FROM``); facts from builder
stages that only feed ``COPY --from`` are kept with ``final=False`` because some
controls (remote code, secrets, base images) still care about them.

The records are plain dataclasses, not pydantic models: only our own readers
build them, from values they have already checked and typed (mypy checks every
constructor), so validating them again bought nothing but start-up time (building
validators for ~35 classes cost a short ``lint`` about 25 ms of its ~300). A
source reading untrusted data checks it itself, as it always had to for a clear
message naming the field.

How a container is run (``subject_runtime``) and an image's layer skeleton
(``image_tree``) live in modules of their own that this one names for type
checkers only: a Dockerfile has neither, and making their classes is a few
milliseconds of every ``lint``. Code that builds or reads them imports them from
there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paracle_guard.location import Location
from paracle_guard.subject_run import (
    AccountAction,
    AccountChange,
    Download,
    FileWrite,
    ModeChange,
    PackageAction,
    PackageCall,
    PathRemoval,
    RequestedPackage,
    RunStep,
    ShellCommand,
)

if TYPE_CHECKING:
    from paracle_guard.image_tree import ImageTree
    from paracle_guard.subject_runtime import KubernetesFacts, RuntimeConfig

# The model's public names, the records of subject_run included. How a container is run
# is named from subject_runtime (see the module's docstring).
__all__ = [
    "ALL_KINDS", "BUILD_KINDS", "IMAGE_NAMING_KINDS", "NOTABLE_NAMES",
    "RUNTIME_KINDS", "AccountAction", "AccountChange", "BaseImage",
    "Download", "EnvVar", "ExposedPort", "FileEntry", "FileTag", "FileWrite", "GroupGrant",
    "Instruction", "ModeChange", "Package", "PackageAction", "PackageCall", "ParseProblem",
    "PathRemoval", "RequestedPackage", "RunStep", "ShellCommand", "Subject", "SubjectKind",
    "Suppression", "UserFact", "Whole",
]

SubjectKind = Literal["dockerfile", "image", "container", "compose", "k8s"]
# The groups of kinds rules judge, named once. What an image is built from and what it
# holds:
BUILD_KINDS: tuple[SubjectKind, ...] = ("dockerfile", "image")
# How a container is run: the engine's record of one, a compose service, a Pod.
RUNTIME_KINDS: tuple[SubjectKind, ...] = ("container", "compose", "k8s")
# The inputs that name the image to build from or run (FROM, image:), not an image itself.
IMAGE_NAMING_KINDS: tuple[SubjectKind, ...] = ("dockerfile", "compose", "k8s")
ALL_KINDS: tuple[SubjectKind, ...] = ("dockerfile", "image", "container", "compose", "k8s")


@dataclass(slots=True, kw_only=True)
class GroupGrant:
    """A supplementary group the container's process holds besides its primary group."""

    # None with an ``unknown_reason``: a name only the image can resolve; None without
    # one: a group known not to be root whose number is not fixed (groupadd app).
    gid: int | None = None
    unknown_reason: str | None = None
    name: str | None = None
    # What grants it, for messages: "the image's /etc/group", "--group-add", "group_add",
    # "supplementalGroups", "fsGroup", "useradd -G".
    via: str
    location: Location | None = None


@dataclass(slots=True, kw_only=True)
class UserFact:
    """The effective user a container of this subject starts as, and its groups.

    Sources fill it through ``sources.identity``, which reads user and group
    specs as the engine does.
    """

    # The user exactly as configured after variable substitution ("1000:1000",
    # "root", "app"); None when nothing sets a user (the engine then runs root).
    spec: str | None = None
    name: str | None = None
    uid: int | None = None
    # The primary gid. None with no ``groups_unresolved_reason``: a group that is
    # known not to be root but whose number is not fixed (the group useradd creates).
    gid: int | None = None
    # Why the uid is not certain: it could not be proven (``uid`` None), it was read
    # with unset build variables (``USER ${UID:-0}`` with no --build-arg: uid 0), or
    # the engine refuses to start the container with this user.
    unresolved_reason: str | None = None
    # Root cannot be ruled out (a variable only the base image defines, account files
    # that could not be read): rules report it with ``unresolved_reason``.
    may_be_root: bool = False
    # The built-in Windows accounts: ContainerAdministrator is the administrator.
    windows_account: Literal["administrator", "user"] | None = None
    groups: list[GroupGrant] = field(default_factory=list)
    # Why the primary gid or the complete set of supplementary groups is not known.
    groups_unresolved_reason: str | None = None
    # Where the primary group is set when that is not where the user is (runAsGroup).
    gid_location: Location | None = None
    # Where the user was set: a USER line, or the base-image/stage it came from.
    location: Location | None = None
    inherited_from: str | None = None

    @property
    def is_root(self) -> bool:
        """True when this user is root in any spelling; unknown names are not root."""
        if not self.spec:
            return True
        return self.uid == 0 or self.name == "root" or self.windows_account == "administrator"

    @property
    def gids(self) -> list[int]:
        """The gids the process certainly holds: the primary and every known supplementary."""
        known = [] if self.gid is None else [self.gid]
        return known + [grant.gid for grant in self.groups if grant.gid is not None]


@dataclass(slots=True, kw_only=True)
class BaseImage:
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
    # Build arguments the reference uses that have no value here (ARG BASE with no
    # default and no --build-arg): the image is chosen at build time. ``ref`` shows
    # them as written ("gcr.io/$PROJECT_ID/app"); ``undeclared`` are those no ARG
    # before FROM declares, which docker build replaces with "". A registry that is
    # such a variable stays as written too ("$REGISTRY").
    unresolved: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Package:
    """A package installed (Dockerfile) or present (image database)."""

    name: str
    manager: str  # apt, apk, yum, dnf, microdnf, zypper, pip, dpkg, rpm, python
    version: str | None = None
    size_bytes: int | None = None
    final: bool = True
    location: Location



@dataclass(slots=True, kw_only=True)
class Instruction:
    """A Dockerfile instruction after continuation joining and substitution."""

    keyword: str  # upper case: FROM, RUN, COPY...
    value: str
    flags: dict[str, str] = field(default_factory=dict)  # --from=builder -> {"from": "builder"}
    stage: str
    final: bool = True
    location: Location
    # COPY and ADD: the sources and the destination as BuildKit reads them.
    sources: list[str] = field(default_factory=list)
    destination: str | None = None
    # ADD of URLs and git repositories; COPY/ADD --chmod.
    downloads: list[Download] = field(default_factory=list)
    mode_changes: list[ModeChange] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class EnvVar:
    """An environment variable or build argument; values are never printed in full."""

    name: str
    value: str | None = None
    # config: the image config (inherited by a container unchanged); runtime: set when
    # the container is created (docker run -e, compose environment / env_file).
    origin: Literal["ENV", "ARG", "build-arg", "config", "runtime"]
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


@dataclass(slots=True, kw_only=True)
class FileEntry:
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
    tags: list[FileTag] = field(default_factory=list)
    location: Location


@dataclass(slots=True, kw_only=True)
class ExposedPort:
    port: int
    protocol: str = "tcp"
    location: Location


@dataclass(slots=True, kw_only=True)
class Suppression:
    """An inline ``# paracle-guard ignore=...`` comment."""

    rules: list[str]
    reason: str | None = None
    scope: Literal["line", "file"]
    # For line scope: the first and last line of the instruction it covers.
    first_line: int | None = None
    last_line: int | None = None
    location: Location


@dataclass(slots=True, kw_only=True)
class ParseProblem:
    """Input that could not be understood; reported as a parse-error finding."""

    message: str
    location: Location
    # How to fix it, when this problem has its own advice (a file that is not UTF-8).
    fix: str | None = None
    # False: the input is understood (as its consumer reads it) but depends on a reading
    # worth refusing, such as two keys Go's JSON decoder takes as one; the other rules
    # still judge it. True: nothing else in it can be trusted.
    blocking: bool = True


@dataclass(slots=True, kw_only=True)
class Whole:
    """The larger target a Subject is one part of: the Pod of one of its containers.

    Rules judge the part. A finding located outside the part's own lines of
    ``path`` is about a setting of the whole (a pod-level field, or its absence):
    it is reported once, for the whole, however many of its parts found it.
    """

    target: str  # deploy.yaml#Deployment/web
    label: str  # what a report calls it: "Deployment web"
    path: str
    part_lines: frozenset[int] = frozenset()
    metadata: dict[str, str | list[str]] = field(default_factory=dict)

    def owns(self, location: Location | None) -> bool:
        """True when a finding at ``location`` is about the whole, not the part."""
        if location is None or location.path != self.path or location.line is None:
            return False
        return location.line not in self.part_lines


@dataclass(slots=True, kw_only=True)
class Subject:
    kind: SubjectKind
    target: str
    # What a report calls the target, when its name alone does not say ("service web",
    # "init container migrate"); None for files and images.
    label: str | None = None
    whole: Whole | None = None
    # What the source wants the reader to know that is not a finding: which of several
    # compose files it read, what it assumed about the host.
    notices: list[str] = field(default_factory=list)
    # False for input the source read and found nothing in to judge (a manifest with
    # only a Service): the engine reports its notices and runs no rule on it.
    judged: bool = True
    user: UserFact | None = None
    base_images: list[BaseImage] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    run_steps: list[RunStep] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)
    env: list[EnvVar] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    exposed_ports: list[ExposedPort] = field(default_factory=list)
    workdir: str | None = None
    suppressions: list[Suppression] = field(default_factory=list)
    parse_problems: list[ParseProblem] = field(default_factory=list)
    # Identity of what was checked: image ID, tags, digests, stage name...
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    # How a container or compose service is run; None for Dockerfiles and images.
    runtime: RuntimeConfig | None = None
    # Pod-only settings of a Kubernetes container; None for every other kind.
    kubernetes: KubernetesFacts | None = None
    # Images only: every directory and symlink of each layer, to tell where a mount
    # at a given path would land (see image_tree.py).
    image_tree: ImageTree | None = None
