"""Policy + checked options + image facts -> the hardened run specification of one sandbox.

The policy is the ceiling and the RunSpec is built from it alone: nothing the
user passes can add a capability, a host namespace, a device, a port or a
forwarded variable; the options (``options.check_options``) may only tighten
it.

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
  file-descriptor count, an init process, no restart policy, bounded logs;
- the policy's runtime (gVisor's runsc under ``sandbox-gvisor``), never the
  engine's default when the policy names one.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from paracle_guard.errors import InputError
from paracle_guard.launcher.hostpath import CheckedPath, is_under
from paracle_guard.launcher.options import (
    UNMOUNTABLE,
    WORKSPACE,
    CheckedOptions,
    ReadOnlyMount,
    SandboxConfig,
    check_options,
    parse_env,
    parse_mount,
)
from paracle_guard.launcher.refusal import PolicyViolation
from paracle_guard.policy.models import Policy
from paracle_guard.rules.filesystem import normalise_path
from paracle_guard.subject import UserFact

__all__ = ["WORKSPACE", "PolicyViolation", "ReadOnlyMount", "RunSpec", "SandboxConfig",
           "build_runspec", "check_options", "parse_env", "parse_mount"]

LAUNCHER_LABEL = "paracle-guard.launcher"
# Read only by the launcher's own commands; `docker ps --filter label=...` finds them.
POLICY_LABEL = "paracle-guard.policy"

TMPFS_SIZE = "64m"
# A read-only tmpfs only has to exist; a size of 0 would mean "unlimited" to the kernel.
COVER_SIZE = "4k"
NOFILE_LIMIT = 1024
LOG_MAX_SIZE = "1m"
LOG_MAX_FILES = "1"


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


# No core dumps, no POSIX message queues, a bounded file-descriptor count.
_ULIMITS = (
    Ulimit(name="core", soft=0, hard=0),
    Ulimit(name="msgqueue", soft=0, hard=0),
    Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT),
)


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
    # The engine runtime (HostConfig.Runtime); None: the engine's default. For Kubernetes,
    # the RuntimeClass the policy maps to it.
    runtime: str | None = None
    runtime_class: str | None = None
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

    tmpfs, binds = _mounts(options, uid, gid)
    mounted = {mount.target for mount in tmpfs} | {bind.target for bind in binds}
    tmpfs.extend(_volume_covers(image_volumes, mounted, options))
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
        ulimits=_ULIMITS,
        labels=tuple(sorted(all_labels.items())),
        open_stdin=open_stdin,
        timeout=options.timeout,
        file_secret_names=options.file_secret_names,
        runtime=options.runtime,
        runtime_class=runtime_class_for(policy, options.runtime),
    )


def runtime_class_for(policy: Policy, runtime: str | None) -> str | None:
    """The RuntimeClass the policy maps to ``runtime`` (the first by name), if any."""
    classes = sorted(name for name, handler in policy.controls.runtime.runtime_classes.items()
                     if handler == runtime)
    return classes[0] if runtime is not None and classes else None


def _mounts(options: CheckedOptions, uid: int,
            gid: int) -> tuple[list[TmpfsMount], list[BindMount]]:
    """The tmpfs mounts and host binds the options and the policy's writable paths give."""
    tmpfs: list[TmpfsMount] = []
    binds: list[BindMount] = []
    if options.workspace is not None:
        _require_writable_by(options.workspace, uid, gid)
        binds.append(_bind(options.workspace, WORKSPACE, read_only=False))
    binds.extend(_bind(source, target, read_only=True) for source, target in options.mounts)
    for path in options.writable:
        if options.workspace is not None and path == WORKSPACE:
            continue
        # /tmp is where droppers land: nothing written there may be executed. The agent's
        # own builds run from /workspace; "exec" is explicit because the engine adds
        # noexec to every --tmpfs that does not say otherwise.
        flags = "rw,noexec,nosuid,nodev" if path != WORKSPACE else "rw,exec,nosuid,nodev"
        tmpfs.append(TmpfsMount(
            target=path, options=f"{flags},size={TMPFS_SIZE},uid={uid},gid={gid},mode=0700",
        ))
    return tmpfs, binds


def _volume_covers(image_volumes: Sequence[str], mounted: set[str],
                   options: CheckedOptions) -> list[TmpfsMount]:
    """A read-only tmpfs over each image VOLUME that no other mount already covers.

    An image VOLUME becomes a writable anonymous volume even under a read-only root;
    a mount at the same place replaces it, so none is ever created.
    The engine cleans a VOLUME's path before it makes the volume, so the cover must too.
    """
    covers: list[TmpfsMount] = []
    for volume in sorted({normalise_path(v) for v in image_volumes} - mounted):
        if volume in UNMOUNTABLE:
            raise PolicyViolation(f"the image declares VOLUME {volume}, which cannot be covered",
                                  key="controls.root_filesystem.read_only")
        for _, target in options.mounts:
            if is_under(target, volume) or is_under(volume, target):
                raise PolicyViolation(
                    f"refused: --mount at {target} overlaps the image's VOLUME {volume}",
                    key="--mount")
        covers.append(TmpfsMount(target=volume,
                                 options=f"ro,noexec,nosuid,nodev,size={COVER_SIZE}"))
    return covers


def _bind(source: CheckedPath, target: str, *, read_only: bool) -> BindMount:
    return BindMount(source=source.real, target=target, identity=source.identity,
                     read_only=read_only, is_dir=source.is_dir)


def _run_as(policy: Policy, image_user: UserFact | None) -> tuple[int, int]:
    """The uid and gid to run as: numeric, never 0, and always both given.

    The uid is the policy's first non-root uid, else the image's proven non-root
    user; the gid the policy's first non-root gid, else the image user's own group
    when it is not 0, else the uid. Naming the group also keeps the engine from
    adding the groups the image's /etc/group lists the user in.
    """
    uid = _first_non_zero(policy.controls.user.allowed_uids, "controls.user.allowed_uids")
    if uid is None:
        # "Any non-root uid": the image's own user, when the image proves it is not root.
        if image_user is None or not image_user.spec or not image_user.uid:
            raise PolicyViolation(
                "controls.user.allowed_uids is empty and the image's user is not a proven "
                "non-root uid; list the uid to run as in controls.user.allowed_uids",
                key="controls.user.allowed_uids",
            )
        uid = image_user.uid
    gid = _first_non_zero(policy.controls.user.allowed_gids, "controls.user.allowed_gids")
    if gid is None:
        image_gid = image_user.gid if image_user is not None and image_user.uid == uid else None
        gid = image_gid or uid
    return uid, gid


def _first_non_zero(allowed: list[int], key: str) -> int | None:
    if not allowed:
        return None
    for value in allowed:
        if value != 0:
            return value
    raise PolicyViolation(f"{key} allows only 0; the launcher never runs as root", key=key)


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
