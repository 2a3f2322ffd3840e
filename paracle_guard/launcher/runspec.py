"""Policy + user options -> the hardened run specification of one sandbox.

The policy is the ceiling and the RunSpec is built from it alone: nothing the
user passes can add a capability, a host namespace, a device, a port or a
forwarded variable, and a limit the user gives may only be tighter than the
policy's. An option that would loosen the policy is refused with a message
naming the policy key it runs into, so the fix is obvious.

What every RunSpec carries, and why (the ways launchers get bypassed):

- a numeric ``uid:gid`` from the policy, never 0: a named user can map to root,
  and an explicit group stops the runtime adding supplementary groups;
- a read-only root filesystem, where only the policy's writable paths are
  tmpfs mounts (``/workspace`` may be a checked host folder instead), and every
  image ``VOLUME`` is covered by a read-only tmpfs so no anonymous writable
  volume is ever created;
- ``cap_drop=[ALL]`` and nothing added, ``no-new-privileges:true`` once;
- private pid/uts/user/cgroup namespaces, IPC ``none`` (no ``/dev/shm``) and a
  ``msgqueue`` ulimit of 0 (``/dev/mqueue`` stays mounted, but no queue can be
  created in it);
- memory with swap equal to it, CPU and pids limits, core dumps off, a bounded
  file-descriptor count, an init process, no restart policy, bounded logs.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from paracle_guard import units
from paracle_guard.errors import GuardError, InputError
from paracle_guard.policy.models import Policy
from paracle_guard.report.models import Finding, Report
from paracle_guard.subject import UserFact

WORKSPACE = "/workspace"
LAUNCHER_LABEL = "paracle-guard.launcher"
# Read only by the launcher's own commands; `docker ps --filter label=...` finds them.
POLICY_LABEL = "paracle-guard.policy"

TMPFS_SIZE = "64m"
# A read-only tmpfs only has to exist; a size of 0 would mean "unlimited" to the kernel.
COVER_SIZE = "4k"
NOFILE_LIMIT = 1024
LOG_MAX_SIZE = "1m"
LOG_MAX_FILES = "1"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Host trees that must never reach a container, nor anything below them.
SYSTEM_TREES = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run",
    "/var/lib/docker", "/var/lib/containerd",
)
# Folders whose own contents are sensitive but whose subfolders are ordinary
# projects (/root/project, ~/code): refused only as themselves or as an ancestor.
PRIVATE_ROOTS = ("/", "/root")
# Paths inside the container where a tmpfs would hide the system rather than add scratch space.
_UNMOUNTABLE = ("/", "/proc", "/sys", "/dev")


class PolicyViolation(GuardError):
    """A launch refused because it would break the policy.

    ``findings`` holds the rule findings that caused it (empty when an option or
    the workspace was refused before anything was checked); ``key`` names the
    policy key an option ran into; ``report`` is the full report when rules ran.
    """

    exit_code = 125

    def __init__(
        self,
        message: str,
        *,
        findings: Sequence[Finding] = (),
        key: str | None = None,
        report: Report | None = None,
    ) -> None:
        super().__init__(message)
        self.findings = list(findings)
        self.key = key
        self.report = report


class SandboxConfig(BaseModel):
    """What the caller asks for; every limit may only tighten the policy's.

    ``None`` means "the policy's value". ``env`` holds explicit values only:
    nothing from the caller's environment is forwarded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A tag, ID or digest of a local image; resolved to its ID once, never pulled.
    base_image: str = Field(min_length=1)
    memory: str | None = None  # Docker notation: 256m, 1g, 268435456
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)  # seconds; None: no timeout
    network: str | None = None
    workspace: Path | None = None  # a host folder mounted at /workspace
    env: dict[str, str] = Field(default_factory=dict)

    @property
    def image(self) -> str:
        return self.base_image


class TmpfsMount(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str
    options: str  # as `docker run --tmpfs TARGET:OPTIONS` takes them


class BindMount(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # a real path, checked by ``check_workspace``
    target: str
    # (st_dev, st_ino) of the folder when it was checked: re-checked after start.
    identity: tuple[int, int]


class Ulimit(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    soft: int
    hard: int


class RunSpec(BaseModel):
    """Everything a backend needs to create one hardened sandbox, and nothing more."""

    model_config = ConfigDict(frozen=True)

    name: str
    image_id: str
    command: tuple[str, ...]
    uid: Annotated[int, Field(gt=0)]
    gid: Annotated[int, Field(gt=0)]
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    read_only_rootfs: bool = True
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = ("no-new-privileges:true",)
    network_mode: str = "none"
    ipc_mode: str = "none"
    cgroupns_mode: str = "private"
    tmpfs: tuple[TmpfsMount, ...] = ()
    binds: tuple[BindMount, ...] = ()
    memory_bytes: int | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    init: bool = True
    log_max_size: str = LOG_MAX_SIZE
    log_max_files: str = LOG_MAX_FILES
    labels: tuple[tuple[str, str], ...] = ()
    open_stdin: bool = False
    timeout: float | None = None

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"


def parse_size(text: str, what: str) -> int:
    """Bytes in Docker's notation (``512m``); ``what`` names the option in the error."""
    try:
        return units.parse_size(text)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from None


def parse_env(items: Sequence[str], host_env: Mapping[str, str]) -> dict[str, str]:
    """``--env`` values: ``NAME=VALUE`` sets, ``NAME`` takes the host's value (skipped if unset).

    Nothing else of the host's environment is ever forwarded.
    """
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not _ENV_NAME.match(name):
            raise InputError(f"--env {item!r}: expected NAME or NAME=VALUE, NAME a variable name")
        if not sep:
            if name not in host_env:
                continue  # as docker run does: an unset variable is not passed
            value = host_env[name]
        env[name] = value
    return env


def build_runspec(
    policy: Policy,
    config: SandboxConfig,
    command: Sequence[str],
    *,
    image_id: str,
    image_user: UserFact | None,
    image_volumes: Sequence[str],
    name: str,
    labels: Mapping[str, str] | None = None,
    home: str | None = None,
    docker_host: str | None = None,
    open_stdin: bool = False,
) -> RunSpec:
    """The hardened RunSpec for ``command`` in image ``image_id`` under ``policy``.

    Raises PolicyViolation when the policy cannot be met or an option would loosen
    it, and InputError for options that cannot be understood.
    """
    controls = policy.controls
    if not command:
        raise InputError("no command given: put it after --, as in: run --image IMG -- python x.py")
    uid, gid = _run_as(policy, image_user)

    writable = [path.rstrip("/") or "/" for path in controls.root_filesystem.writable_paths]
    for path in writable:
        if path in _UNMOUNTABLE or path.startswith(("/proc/", "/sys/", "/dev/")):
            raise PolicyViolation(
                f"controls.root_filesystem.writable_paths lists {path}; the launcher only "
                "mounts scratch space, never over / or the kernel's filesystems",
                key="controls.root_filesystem.writable_paths",
            )

    tmpfs: list[TmpfsMount] = []
    binds: list[BindMount] = []
    if config.workspace is not None:
        if WORKSPACE not in writable:
            raise PolicyViolation(
                f"--workspace needs {WORKSPACE} to be writable, but "
                "controls.root_filesystem.writable_paths does not list it",
                key="controls.root_filesystem.writable_paths",
            )
        source, identity = check_workspace(config.workspace, home=home, docker_host=docker_host)
        _require_writable_by(source, config.workspace, uid, gid)
        binds.append(BindMount(source=source, target=WORKSPACE, identity=identity))
    for path in writable:
        if binds and path == WORKSPACE:
            continue
        # /tmp is where droppers land: nothing written there may be executed.
        flags = "rw,noexec,nosuid,nodev" if path != WORKSPACE else "rw,nosuid,nodev"
        tmpfs.append(TmpfsMount(
            target=path, options=f"{flags},size={TMPFS_SIZE},uid={uid},gid={gid},mode=0700",
        ))
    mounted = {mount.target for mount in tmpfs} | {bind.target for bind in binds}
    # An image VOLUME becomes a writable anonymous volume even under a read-only root;
    # a mount at the same place replaces it, so none is ever created.
    for volume in sorted({v.rstrip("/") or "/" for v in image_volumes} - mounted):
        if volume in _UNMOUNTABLE:
            raise PolicyViolation(f"the image declares VOLUME {volume}, which cannot be covered",
                                  key="controls.root_filesystem.read_only")
        tmpfs.append(TmpfsMount(target=volume,
                                options=f"ro,noexec,nosuid,nodev,size={COVER_SIZE}"))

    all_labels = dict(labels or {})
    all_labels[LAUNCHER_LABEL] = "1"
    all_labels[POLICY_LABEL] = policy.sha256 or policy.metadata.name

    return RunSpec(
        name=name,
        image_id=image_id,
        command=tuple(command),
        uid=uid,
        gid=gid,
        env=tuple(sorted(_checked_env(config.env).items())),
        working_dir=WORKSPACE if WORKSPACE in mounted else None,
        read_only_rootfs=True,
        network_mode=_network(policy, config.network),
        tmpfs=tuple(sorted(tmpfs, key=lambda mount: mount.target)),
        binds=tuple(binds),
        memory_bytes=_memory(policy, config.memory),
        nano_cpus=_cpus(policy, config.cpus),
        pids_limit=_pids(policy, config.pids),
        ulimits=(
            Ulimit(name="core", soft=0, hard=0),
            Ulimit(name="msgqueue", soft=0, hard=0),
            Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT),
        ),
        labels=tuple(sorted(all_labels.items())),
        open_stdin=open_stdin,
        timeout=config.timeout,
    )


def _run_as(policy: Policy, image_user: UserFact | None) -> tuple[int, int]:
    """The policy's first non-root uid, with the same gid; else the image's proven non-root user."""
    allowed = policy.controls.user.allowed_uids
    if allowed:
        for uid in allowed:
            if uid != 0:
                return uid, uid
        raise PolicyViolation(
            "controls.user.allowed_uids allows only uid 0; the launcher never runs as root",
            key="controls.user.allowed_uids",
        )
    # "Any non-root uid": the image's own user, when the image proves it is not root.
    if image_user is not None and image_user.spec and image_user.uid:
        gid = image_user.gid if image_user.gid else image_user.uid
        return image_user.uid, gid
    raise PolicyViolation(
        "controls.user.allowed_uids is empty and the image's user is not a proven non-root "
        "uid; list the uid to run as in controls.user.allowed_uids",
        key="controls.user.allowed_uids",
    )


def _memory(policy: Policy, option: str | None) -> int:
    ceiling_text = policy.controls.resources.memory
    ceiling = parse_size(ceiling_text, "controls.resources.memory") if ceiling_text else None
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.memory is null, so the policy sets no memory limit; "
                "give one with --memory",
                key="controls.resources.memory",
            )
        return ceiling
    wanted = parse_size(option, "--memory")
    if ceiling is not None and wanted > ceiling:
        raise PolicyViolation(
            f"--memory {option} is above the policy's controls.resources.memory ({ceiling_text})",
            key="controls.resources.memory",
        )
    if wanted == 0:
        raise InputError("--memory 0 would mean no limit; give a size such as 256m")
    return wanted


def _cpus(policy: Policy, option: float | None) -> int:
    ceiling = policy.controls.resources.cpus
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.cpus is null, so the policy sets no CPU limit; "
                "give one with --cpus",
                key="controls.resources.cpus",
            )
        option = ceiling
    elif ceiling is not None and option > ceiling:
        raise PolicyViolation(
            f"--cpus {option:g} is above the policy's controls.resources.cpus ({ceiling:g})",
            key="controls.resources.cpus",
        )
    if option <= 0:
        raise InputError(f"--cpus {option:g}: expected a positive number")
    return round(option * 1e9)


def _pids(policy: Policy, option: int | None) -> int:
    ceiling = policy.controls.resources.pids
    if option is None:
        if ceiling is None:
            raise PolicyViolation(
                "controls.resources.pids is null, so the policy sets no process limit; "
                "give one with --pids",
                key="controls.resources.pids",
            )
        return ceiling
    if option < 1:
        raise InputError(f"--pids {option}: expected a positive number")
    if ceiling is not None and option > ceiling:
        raise PolicyViolation(
            f"--pids {option} is above the policy's controls.resources.pids ({ceiling})",
            key="controls.resources.pids",
        )
    return option


def _network(policy: Policy, option: str | None) -> str:
    allowed = policy.controls.network.mode
    if allowed == "host" and not policy.controls.privileges.host_namespaces:
        raise PolicyViolation(
            "controls.network.mode is host while controls.privileges.host_namespaces is "
            "false; the launcher never shares the host's network namespace",
            key="controls.network.mode",
        )
    if option is None:
        return allowed
    if not _NETWORK_NAME.match(option):
        # container:<id> and similar joins are not network names: never allowed.
        raise PolicyViolation(
            f"--network {option}: only a network name is accepted (joining another "
            f"container's namespace is never allowed; controls.network.mode is {allowed})",
            key="controls.network.mode",
        )
    # "none" is the tightest mode there is, so it is always within the policy.
    if option not in ("none", allowed):
        raise PolicyViolation(
            f"--network {option} is not allowed: controls.network.mode is {allowed}",
            key="controls.network.mode",
        )
    return option


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise InputError(f"environment variable name {name!r} is not a valid name")
        if "\0" in value:
            raise InputError(f"environment variable {name} contains a NUL byte")
    return dict(env)


def check_workspace(
    folder: Path | str, *, home: str | None = None, docker_host: str | None = None
) -> tuple[str, tuple[int, int]]:
    """The real path and (st_dev, st_ino) of a workspace folder, or a refusal saying why.

    Refused: a path that does not exist or is not a folder, any symlink on the way
    to it (the engine would follow it at mount time, after this check), and host
    paths whose exposure hands over the host: system trees (and anything below
    them), /, /root and the user's home (and any folder that contains one of them),
    and the folder of the engine's socket.
    """
    given = str(folder)
    absolute = os.path.abspath(os.path.expanduser(given))
    _refuse_symlinks(given, absolute)
    try:
        info = os.stat(absolute)
    except OSError as exc:
        raise InputError(f"--workspace {given}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"--workspace {given}: not a folder")
    real = os.path.realpath(absolute)
    if real != absolute:
        raise PolicyViolation(
            f"--workspace {given}: resolves to {real} through a symlink or '..'; "
            "give the real path",
            key="--workspace",
        )
    _refuse_sensitive(given, real, home=home, docker_host=docker_host)
    return real, (info.st_dev, info.st_ino)


def _require_writable_by(real: str, given: Path | str, uid: int, gid: int) -> None:
    """Refuse a workspace the sandbox user could not write: better now than mid-run."""
    info = os.stat(real)
    mode = info.st_mode
    writable = (
        (info.st_uid == uid and mode & stat.S_IWUSR)
        or (info.st_gid == gid and mode & stat.S_IWGRP)
        or mode & stat.S_IWOTH
    )
    if not writable:
        raise InputError(
            f"--workspace {given}: the sandbox user {uid}:{gid} cannot write it (owner "
            f"{info.st_uid}:{info.st_gid}, mode {stat.S_IMODE(mode):o}); "
            f"run chown {uid}:{gid} {real}"
        )


def _refuse_symlinks(given: str, absolute: str) -> None:
    current = "/"
    for part in Path(absolute).parts[1:]:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except OSError as exc:
            raise InputError(f"--workspace {given}: {current}: {exc.strerror or exc}") from exc
        if stat.S_ISLNK(mode):
            raise PolicyViolation(
                f"--workspace {given}: {current} is a symlink; the engine would follow it "
                "when mounting, so give the real path",
                key="--workspace",
            )


def _refuse_sensitive(given: str, real: str, *, home: str | None, docker_host: str | None) -> None:
    trees = list(SYSTEM_TREES)
    socket_folder = _socket_folder(docker_host)
    if socket_folder is not None:
        trees.append(socket_folder)
    roots = list(PRIVATE_ROOTS)
    if home:
        roots.append(os.path.realpath(home))
    for tree in trees:
        if _is_under(real, tree) or _is_under(tree, real):
            raise PolicyViolation(
                f"--workspace {given}: {real} is or holds the sensitive host path {tree}",
                key="--workspace",
            )
    for root in roots:
        if _is_under(root, real):
            what = "the root of the host" if root == "/" else f"the home folder {root}"
            raise PolicyViolation(
                f"--workspace {given}: {real} is or holds {what}; mount a project folder "
                "inside it instead",
                key="--workspace",
            )


def _socket_folder(docker_host: str | None) -> str | None:
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    path = host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"
    if not host or host.startswith("unix://"):
        return os.path.realpath(os.path.dirname(path) or "/")
    return None


def _is_under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")
