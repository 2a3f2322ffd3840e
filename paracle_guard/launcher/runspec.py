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
import posixpath
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paracle_guard import units
from paracle_guard.errors import InputError
from paracle_guard.launcher.envfile import ENV_NAME, read_env_file
from paracle_guard.launcher.hostpath import CheckedPath, check_host_path, is_under, overlapping
from paracle_guard.launcher.refusal import PolicyViolation
from paracle_guard.policy.models import Policy
from paracle_guard.subject import UserFact

__all__ = ["PolicyViolation", "RunSpec", "SandboxConfig", "build_runspec", "check_options"]

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

_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Paths inside the container where a tmpfs would hide the system rather than add scratch space.
_UNMOUNTABLE = ("/", "/proc", "/sys", "/dev")

# Bounds every backend can honour without overflowing: a week is longer than any
# sandboxed command should run (select() and Kubernetes' activeDeadlineSeconds take
# far more, but 1e300 seconds overflows both); the engine stores limits as int64.
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_CPUS = 1024.0
MAX_PIDS = 2**31 - 1
MAX_BYTES = 2**63 - 1


class ReadOnlyMount(BaseModel):
    """A read-only input: a host folder or file, mounted at ``target`` in the sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path
    target: str


class SandboxConfig(BaseModel):
    """What the caller asks for; every limit may only tighten the policy's.

    ``None`` means "the policy's value". ``env`` holds explicit values only:
    nothing from the caller's environment is forwarded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A tag, ID or digest of a local image; resolved to its ID once, never pulled.
    base_image: str = Field(min_length=1)
    memory: str | None = None  # Docker notation: 256m, 1g, 268435456
    cpus: float | None = Field(default=None, gt=0, le=MAX_CPUS, allow_inf_nan=False)
    pids: int | None = Field(default=None, ge=1, le=MAX_PIDS)
    # Seconds; None: no timeout. inf, nan, 1e300 and -1 are refused here, before anything.
    timeout: float | None = None
    network: str | None = None
    workspace: Path | None = None  # a host folder mounted at /workspace
    env: dict[str, str] = Field(default_factory=dict)
    # Files of NAME=VALUE lines (docker run --env-file); the way in for secrets.
    env_files: tuple[Path, ...] = ()
    # Host folders or files mounted read-only (--mount HOST:CONTAINER:ro).
    mounts: tuple[ReadOnlyMount, ...] = ()

    @property
    def image(self) -> str:
        return self.base_image

    @field_validator("timeout", mode="before")
    @classmethod
    def _finite_timeout(cls, value: object) -> object:
        if value is None:
            return None
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("expected a number of seconds") from None
        if not 0 < seconds <= MAX_TIMEOUT:  # false for nan too
            raise ValueError(f"expected seconds, more than 0 and at most {MAX_TIMEOUT:g} "
                             "(7 days)")
        return seconds


class TmpfsMount(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str
    options: str  # as `docker run --tmpfs TARGET:OPTIONS` takes them


class BindMount(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # a real path, checked by ``hostpath.check_host_path``
    target: str
    # (st_dev, st_ino) of the folder when it was checked: compared after start.
    identity: tuple[int, int]
    read_only: bool = False
    is_dir: bool = True


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
    # Secret-looking variables that came from an --env-file only its owner can read:
    # the one way the launcher accepts them (PG601 is waived for exactly these).
    file_secret_names: tuple[str, ...] = ()

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"

    def mount_targets(self) -> list[tuple[str, bool]]:
        """Every (target, is a directory) the sandbox gets a mount at."""
        return sorted([(mount.target, True) for mount in self.tmpfs]
                      + [(bind.target, bind.is_dir) for bind in self.binds])


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
        if not ENV_NAME.match(name):
            raise InputError(f"--env {item!r}: expected NAME or NAME=VALUE, NAME a variable name")
        if not sep:
            if name not in host_env:
                continue  # as docker run does: an unset variable is not passed
            value = host_env[name]
        env[name] = value
    return env


def parse_mount(text: str) -> ReadOnlyMount:
    """``--mount HOST:CONTAINER:ro``: read-only is the only mode there is."""
    host, sep, rest = text.rpartition(":")
    source, sep2, target = host.rpartition(":")
    if not (sep and sep2) or rest != "ro" or not source or not target:
        raise InputError(f"--mount {text}: expected HOST:CONTAINER:ro (inputs are mounted "
                         "read-only; the sandbox writes only to its writable paths)")
    return ReadOnlyMount(source=Path(source), target=target)


def secret_looking(policy: Policy) -> Callable[[str], bool]:
    """Whether a variable name looks like a secret, by the policy's PG601 patterns."""
    patterns = [re.compile(pattern) for pattern in policy.controls.secrets.env_name_patterns]
    return lambda name: any(pattern.search(name) for pattern in patterns)


@dataclass(frozen=True)
class CheckedOptions:
    """The caller's options, each checked against the policy before anything is created."""

    env: dict[str, str]
    file_secret_names: tuple[str, ...]
    workspace: CheckedPath | None
    mounts: tuple[tuple[CheckedPath, str], ...]  # (host source, container target)
    writable: tuple[str, ...]
    memory_bytes: int
    nano_cpus: int
    pids_limit: int
    network_mode: str
    timeout: float | None


def check_options(
    policy: Policy,
    config: SandboxConfig,
    *,
    home: str | None = None,
    docker_host: str | None = None,
    host_env: Mapping[str, str] | None = None,
) -> CheckedOptions:
    """Everything about a launch that can be judged without the image: refused here or never.

    Raises PolicyViolation when an option would loosen the policy, InputError when
    it cannot be understood; both exit 125 from ``run`` with one line.
    """
    writable = _writable_paths(policy)
    env, file_names = _environment(policy, config, host_env if host_env is not None
                                   else os.environ)
    workspace = None
    if config.workspace is not None:
        if WORKSPACE not in writable:
            raise PolicyViolation(
                f"--workspace needs {WORKSPACE} to be writable, but "
                "controls.root_filesystem.writable_paths does not list it",
                key="controls.root_filesystem.writable_paths",
            )
        workspace = check_host_path(str(config.workspace), option="--workspace",
                                    home=home, docker_host=docker_host)
    return CheckedOptions(
        env=env,
        file_secret_names=file_names,
        workspace=workspace,
        mounts=_read_only_mounts(config.mounts, writable, home=home, docker_host=docker_host),
        writable=tuple(writable),
        memory_bytes=_memory(policy, config.memory),
        nano_cpus=_cpus(policy, config.cpus),
        pids_limit=_pids(policy, config.pids),
        network_mode=_network(policy, config.network),
        timeout=config.timeout,
    )


def _writable_paths(policy: Policy) -> list[str]:
    writable = [path.rstrip("/") or "/" for path in policy.controls.root_filesystem.writable_paths]
    for path in writable:
        if path in _UNMOUNTABLE or path.startswith(("/proc/", "/sys/", "/dev/")):
            raise PolicyViolation(
                f"controls.root_filesystem.writable_paths lists {path}; the launcher only "
                "mounts scratch space, never over / or the kernel's filesystems",
                key="controls.root_filesystem.writable_paths",
            )
    return writable


def _environment(
    policy: Policy, config: SandboxConfig, host_env: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """--env-file values, then --env over them (as docker run orders them); secret-looking
    names are accepted from files only."""
    is_secret = secret_looking(policy)
    env: dict[str, str] = {}
    from_files: set[str] = set()
    for path in config.env_files:
        loaded = read_env_file(path, host_env=host_env, is_secret=is_secret)
        env.update(loaded.values)
        from_files.update(loaded.secret_names)
    for name, value in config.env.items():
        if not ENV_NAME.match(name):
            raise InputError(f"--env {name!r}: not a variable name")
        if "\0" in value:
            raise InputError(f"--env {name}: the value contains a NUL byte")
        if is_secret(name):
            raise PolicyViolation(
                f"refused: --env {name} looks like a secret (controls.secrets."
                "env_name_patterns), and a value on the command line ends up in shell history "
                f"and ps; put {name}=... in a file only you can read (chmod 600) and pass "
                f"--env-file FILE, or hand the sandbox a file with --mount FILE:/run/secrets/"
                f"{name.lower()}:ro",
                key="controls.secrets.env_name_patterns",
            )
        env[name] = value
        from_files.discard(name)
    return env, tuple(sorted(from_files))


def _read_only_mounts(
    mounts: Sequence[ReadOnlyMount], writable: Sequence[str], *, home: str | None,
    docker_host: str | None,
) -> tuple[tuple[CheckedPath, str], ...]:
    checked: list[tuple[CheckedPath, str]] = []
    for mount in mounts:
        spelled = f"--mount {mount.source}:{mount.target}:ro"
        if not mount.target.startswith("/"):
            raise InputError(f"{spelled}: the container path must be absolute")
        target = posixpath.normpath(mount.target)
        if target in _UNMOUNTABLE or target.startswith(("/proc/", "/sys/", "/dev/")):
            raise PolicyViolation(f"refused: {spelled}: {target} would hide the system or a "
                                  "kernel filesystem", key="--mount")
        clash = overlapping(target, [*writable, *(taken for _, taken in checked)])
        if clash is not None:
            raise PolicyViolation(
                f"refused: {spelled}: {target} overlaps {clash}, which is mounted already; "
                "read-only inputs go beside the writable paths (/input, /run/secrets/NAME)",
                key="--mount")
        source = check_host_path(str(mount.source), option="--mount", want="dir-or-file",
                                 home=home, docker_host=docker_host)
        checked.append((source, target))
    return tuple(checked)


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
    options: CheckedOptions | None = None,
) -> RunSpec:
    """The hardened RunSpec for ``command`` in image ``image_id`` under ``policy``.

    ``options`` are the caller's, already checked by ``check_options`` (which runs
    here when they are not given). Raises PolicyViolation when the policy cannot be
    met or an option would loosen it, and InputError for options that cannot be
    understood.
    """
    if not command:
        raise InputError("no command given: put it after --, as in: run --image IMG -- python x.py")
    if options is None:
        options = check_options(policy, config, home=home, docker_host=docker_host)
    uid, gid = _run_as(policy, image_user)

    tmpfs: list[TmpfsMount] = []
    binds: list[BindMount] = []
    if options.workspace is not None:
        _require_writable_by(options.workspace, uid, gid)
        binds.append(_bind(options.workspace, WORKSPACE, read_only=False))
    binds.extend(_bind(source, target, read_only=True) for source, target in options.mounts)
    for path in options.writable:
        if options.workspace is not None and path == WORKSPACE:
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
        for _, target in options.mounts:
            if is_under(target, volume) or is_under(volume, target):
                raise PolicyViolation(
                    f"refused: --mount at {target} overlaps the image's VOLUME {volume}",
                    key="--mount")
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
        env=tuple(sorted(options.env.items())),
        working_dir=WORKSPACE if WORKSPACE in mounted else None,
        read_only_rootfs=True,
        network_mode=options.network_mode,
        tmpfs=tuple(sorted(tmpfs, key=lambda mount: mount.target)),
        binds=tuple(binds),
        memory_bytes=options.memory_bytes,
        nano_cpus=options.nano_cpus,
        pids_limit=options.pids_limit,
        ulimits=(
            Ulimit(name="core", soft=0, hard=0),
            Ulimit(name="msgqueue", soft=0, hard=0),
            Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT),
        ),
        labels=tuple(sorted(all_labels.items())),
        open_stdin=open_stdin,
        timeout=options.timeout,
        file_secret_names=options.file_secret_names,
    )


def _bind(source: CheckedPath, target: str, *, read_only: bool) -> BindMount:
    return BindMount(source=source.real, target=target, identity=source.identity,
                     read_only=read_only, is_dir=source.is_dir)
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
    if wanted > MAX_BYTES:
        raise InputError(f"--memory {option}: more than the engine can store")
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


def _require_writable_by(folder: CheckedPath, uid: int, gid: int) -> None:
    """Refuse a workspace the sandbox user could not write: better now than mid-run."""
    mode = folder.mode
    writable = (
        (folder.uid == uid and mode & stat.S_IWUSR)
        or (folder.gid == gid and mode & stat.S_IWGRP)
        or mode & stat.S_IWOTH
    )
    if not writable:
        raise InputError(
            f"--workspace {folder.given}: the sandbox user {uid}:{gid} cannot write it (owner "
            f"{folder.uid}:{folder.gid}, mode {mode:o}); run chown {uid}:{gid} {folder.real}"
        )
