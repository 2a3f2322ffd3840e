"""Filesystem rules: what stays writable, and where a container starts.

A read-only root filesystem is only as good as the holes left in it: image
``VOLUME``s come back as writable anonymous volumes, mounts add writable
places, host mounts hand the container parts of the host, and world-writable
directories let any uid plant files. The path helpers here are path-aware
(``/procfoo`` is not under ``/proc``) and are shared with the other families.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from paracle_guard.cel import CelCheck, cel, container_has, every_container
from paracle_guard.location import Location
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, ByKind, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import ALL_KINDS, RUNTIME_KINDS, Subject, SubjectKind

if TYPE_CHECKING:  # runtime facts are made on first use (see subject.py)
    from paracle_guard.subject_runtime import Mount

# Kernel interfaces: a working directory there hands the process a handle on the
# host (runc CVE-2024-21626 leaked a host fd through /proc/self/fd).
UNSAFE_WORKDIR_ROOTS = ("/proc", "/sys", "/dev")

STICKY = 0o1000
WORLD_WRITABLE = 0o002


def normalise_path(path: str) -> str:
    """An absolute, dot-free path, so that prefix checks cannot be dodged with ``..``."""
    # normpath keeps a leading "//" (POSIX allows it a meaning), so strip and re-add one.
    return "/" + posixpath.normpath("/" + path.strip()).lstrip("/")


def is_under(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or inside it, comparing whole path components."""
    path, root = normalise_path(path), normalise_path(root)
    return root == "/" or path == root or path.startswith(root + "/")


def is_under_any(path: str, roots: Iterable[str]) -> bool:
    return any(is_under(path, root) for root in roots)


@rule(
    code="PG203",
    name="image-volume",
    severity=Severity.WARNING,
    kinds=("image", "container"),
    summary="The image declares a VOLUME, which stays writable under a read-only root filesystem",
    fix=(
        "Remove the VOLUME instruction; mount a named volume or tmpfs at run time where the "
        "workload really needs to write"
    ),
    rationale=(
        "Docker creates an anonymous, writable volume for every VOLUME in the image config, "
        "even when the container runs with --read-only. Untrusted code can persist files "
        "there and the volume outlives the container. Mounts should be decided by whoever "
        "runs the container, not baked into the image."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.13",),
)
def image_volume(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not controls.root_filesystem.read_only:
        return
    if subject.runtime is not None:
        # A container shows the volume the engine really created (none where the
        # user mounted something else over the path).
        for mount in subject.runtime.mounts:
            if mount.from_image and not mount.read_only:
                yield Violation(
                    message=(
                        f"the image's VOLUME {mount.target} is mounted as a writable anonymous "
                        "volume, even with a read-only root filesystem"
                    ),
                    location=mount.location,
                    fix=(
                        f"Mount a read-only tmpfs (or a volume the policy allows) over "
                        f"{mount.target}, or rebuild the image without the VOLUME"
                    ),
                )
        return
    for volume in subject.volumes:
        yield Violation(
            message=(
                f"VOLUME {volume} becomes a writable anonymous volume, even with a read-only "
                "root filesystem"
            ),
        )


def _unsafe_workdir_on_admission(controls: Controls) -> CelCheck:
    return CelCheck(
        every_container("!has(c.workingDir) || !c.workingDir.matches('^/(proc|sys|dev)(/|$)')"),
        "workingDir must not be under /proc, /sys or /dev")


@rule(
    code="PG204",
    name="unsafe-workdir",
    severity=Severity.ERROR,
    kinds=ALL_KINDS,
    summary="The working directory is under /proc, /sys or /dev",
    fix="Set WORKDIR to a normal directory such as /workspace",
    fixes={
        "container": "Recreate the container with --workdir /workspace (a normal directory)",
        "compose": "Set working_dir: to a normal directory such as /workspace",
        "k8s": "Set the container's workingDir: to a normal directory such as /workspace",
    },
    rationale=(
        "A working directory inside the kernel's pseudo-filesystems is never needed by an "
        "application and is the shape of container escapes: runc CVE-2024-21626 let a "
        "WORKDIR of /proc/self/fd/N reach the host filesystem."
    ),
    references=("CVE-2024-21626",),
    admission=Admission(pod=_unsafe_workdir_on_admission),
)
def unsafe_workdir(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not subject.workdir:
        return
    workdir = normalise_path(subject.workdir)
    # runc changes into the working directory inside the container, following the image's
    # symlinks: a WORKDIR /app that is a link to /proc/self/fd/7 is that path.
    landing = subject.image_tree.resolve(workdir) if subject.image_tree is not None else None
    for root in UNSAFE_WORKDIR_ROOTS:
        if is_under(workdir, root):
            message = f"working directory {subject.workdir} is under {root}"
        elif landing is not None and is_under(landing, root):
            message = (f"working directory {subject.workdir} leads to {landing} through a "
                       f"symlink in the image, under {root}")
        else:
            continue
        yield Violation(message=message, location=_workdir_location(subject))
        return


def _workdir_location(subject: Subject) -> Location | None:
    """The last WORKDIR line of the target image, or the run-time working directory."""
    if subject.runtime is not None:
        return subject.runtime.location_of("workdir")
    workdirs = [i for i in subject.instructions if i.keyword == "WORKDIR" and i.final]
    return workdirs[-1].location if workdirs else None


@rule(
    code="PG205",
    name="world-writable",
    severity=Severity.WARNING,
    kinds=("image",),
    summary="A world-writable directory without the sticky bit, outside the writable paths",
    fix=(
        "chmod o-w the directory (or chmod +t if it must be shared, like /tmp) in the "
        "Dockerfile that builds the image"
    ),
    rationale=(
        "Any uid in the container can create, replace or delete files in a world-writable "
        "directory that lacks the sticky bit, including files other users or root later "
        "execute. Writable locations should be the few the policy names."
    ),
)
def world_writable(subject: Subject, controls: Controls) -> Iterator[Violation]:
    writable = controls.root_filesystem.writable_paths
    for entry in subject.files:
        if entry.kind != "dir":
            continue
        if not entry.mode & WORLD_WRITABLE or entry.mode & STICKY:
            continue
        if is_under_any(entry.path, writable):
            continue
        yield Violation(
            message=(
                f"directory {entry.path} is world-writable (mode {entry.mode & 0o7777:04o}) "
                "without the sticky bit"
            ),
            location=entry.location,
        )


# The launcher's own mount targets, whatever the policy lists: /tmp for scratch space,
# /workspace for --workspace. Checked in every image, since a policy may add them later.
LAUNCHER_TARGETS = ("/tmp", "/workspace")


def mount_targets(subject: Subject, controls: Controls) -> list[str]:
    """Where a launcher mounts into this image: writable paths, its own targets, VOLUMEs."""
    wanted = {*controls.root_filesystem.writable_paths, *LAUNCHER_TARGETS, *subject.volumes}
    return sorted({normalise_path(path) for path in wanted})


@rule(
    code="PG206",
    name="unsafe-mount-target",
    severity=Severity.ERROR,
    kinds=("image",),
    summary=(
        "A mount target (a writable path, /tmp, /workspace or a VOLUME), or a parent of "
        "one, is a symlink or not a directory in the image"
    ),
    fix=(
        "Make the path a real directory in the image (rm the symlink, mkdir the directory) "
        "in the Dockerfile that builds it"
    ),
    rationale=(
        "runc resolves a mount's destination inside the container's root filesystem, "
        "following symlinks as if that root were /. An image whose /tmp is a symlink to /etc "
        "(or whose /workspace points at /usr/local/bin, first on PATH) receives the writable "
        "tmpfs or workspace there, and the sandbox can rewrite what it runs. A target that "
        "is a file or a device cannot hold a directory mount at all."
    ),
)
def unsafe_mount_target(subject: Subject, controls: Controls) -> Iterator[Violation]:
    tree = subject.image_tree
    if tree is None:
        return
    for target in mount_targets(subject, controls):
        problem = tree.mount_target_problem(target)
        if problem is not None:
            yield Violation(
                message=f"mount target {target}: {problem.message}",
                location=Location(path=problem.path, layer=problem.layer),
            )


# --- run-time filesystem (containers and compose services) --------------------------


def _writable_rootfs_on_admission(controls: Controls) -> CelCheck | None:
    if not controls.root_filesystem.read_only:
        return None
    return CelCheck(every_container(f"{container_has('readOnlyRootFilesystem')} && "
                                    "c.securityContext.readOnlyRootFilesystem == true"),
                    "every container must set readOnlyRootFilesystem: true")


@rule(
    code="PG201",
    name="writable-rootfs",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="The root filesystem is writable while the policy requires it read-only",
    fix="Run with a read-only root filesystem: docker run --read-only, compose read_only: true",
    fixes={
        "container": "Recreate the container with --read-only, and --tmpfs where it must write",
        "compose": "Set read_only: true on the service, with tmpfs: entries where it must write",
        "k8s": "Set securityContext.readOnlyRootFilesystem: true on the container, with an "
               "emptyDir volume where it must write",
    },
    rationale=(
        "A writable root filesystem lets code replace binaries, libraries and configuration "
        "that the image was checked with, and hide tools for later. Read-only, with scratch "
        "space only where the policy says, keeps the running container equal to the image."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.13",),
    admission=Admission(pod=_writable_rootfs_on_admission),
)
def writable_rootfs(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or not controls.root_filesystem.read_only or config.read_only:
        return
    yield Violation(message=worded(subject.kind, _WRITABLE_ROOT, "the root filesystem is "
                                   "writable (read-only is not set)"),
                    location=config.location_of("read_only"))


_WRITABLE_ROOT: ByKind = {
    "container": "the root filesystem is writable (HostConfig.ReadonlyRootfs is false)",
    "compose": "the root filesystem is writable (read_only: true is not set)",
    "k8s": "the root filesystem is writable (readOnlyRootFilesystem: true is not set)",
}


def describe_mount(mount: Mount, kind: SubjectKind = "container") -> str:
    """``bind mount of /srv``, ``volume data``, ``hostPath volume sock (/var/run/docker.sock)``:
    a mount as the reader of its kind of input knows it, and how it gets there."""
    what = _describe_pod_volume(mount) if kind == "k8s" else _describe_mount(mount)
    return f"{what} ({mount.via})" if mount.via else what


def _describe_mount(mount: Mount) -> str:
    if mount.type == "bind":
        return f"bind mount of {mount.source}"
    if mount.type == "volume":
        if mount.anonymous:
            return "anonymous volume"
        bound = f" (binds {mount.host_path})" if mount.host_path else ""
        return f"volume {mount.source}{bound}"
    if mount.type == "npipe":
        return f"named pipe {mount.source}"
    return mount.type


def _describe_pod_volume(mount: Mount) -> str:
    # The Kubernetes source names a volume's type and name: "hostPath:sock", "emptyDir:tmp".
    kind, _, name = (mount.source or "").partition(":")
    if not name:
        kind, name = "volume", mount.source or ""
    if mount.host_path is not None and kind != "persistentVolumeClaim":
        return f"{kind} volume {name} ({mount.host_path})"
    return f"{kind} volume {name}"


def _writable_path_on_admission(controls: Controls) -> CelCheck | None:
    if not controls.root_filesystem.read_only:
        return None
    paths = [path.rstrip("/") or "/" for path in controls.root_filesystem.writable_paths]
    under = " || ".join(f"m.mountPath == {cel(p)} || m.mountPath.startsWith({cel(p + '/')})"
                        for p in paths) or "false"
    from paracle_guard.subject_runtime import READ_ONLY_VOLUME_TYPES

    read_only_volume = " || ".join(f"has(v.{kind})" for kind in READ_ONLY_VOLUME_TYPES)
    return CelCheck(
        every_container(
            "!has(c.volumeMounts) || c.volumeMounts.all(m, "
            "(has(m.readOnly) && m.readOnly == true) || "
            "(has(object.spec.volumes) && object.spec.volumes.exists(v, v.name == m.name "
            f"&& ({read_only_volume}))) || {under})"),
        "writable volume mounts must be under " + (", ".join(paths) or "no path"))


@rule(
    code="PG202",
    name="writable-path",
    severity=Severity.WARNING,
    kinds=RUNTIME_KINDS,
    summary="A writable bind, volume or tmpfs is mounted outside the policy's writable paths",
    fix=(
        "Mount it read-only (:ro, read_only: true), move it under one of "
        "controls.root_filesystem.writable_paths, or add its path there"
    ),
    fixes={
        "container": "Recreate the container with the mount read-only (-v SRC:DST:ro, --mount "
                     "...,readonly), or mount it under one of "
                     "controls.root_filesystem.writable_paths",
        "compose": "Mount it read-only (:ro in the short syntax, read_only: true in the long "
                   "one), or under one of controls.root_filesystem.writable_paths",
        "k8s": "Set readOnly: true on the volumeMount, or mount it under one of "
               "controls.root_filesystem.writable_paths",
    },
    rationale=(
        "Every writable mount is a hole in the read-only root filesystem: code can persist "
        "or stage files there, and a writable bind or volume outlives the container. The "
        "policy lists the few paths where writing is expected."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.13",),
    admission=Admission(pod=_writable_path_on_admission),
)
def writable_path(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or not controls.root_filesystem.read_only:
        return
    allowed = controls.root_filesystem.writable_paths
    for mount in config.mounts:
        # Image VOLUMEs are PG203's; the engine's own /dev/shm is not a mount here.
        if mount.read_only or mount.from_image or mount.type not in ("bind", "volume", "tmpfs"):
            continue
        if is_under_any(mount.target, allowed):
            continue
        listed = ", ".join(allowed) if allowed else "none"
        yield Violation(
            message=(
                f"{describe_mount(mount, subject.kind)} makes {mount.target} writable, outside "
                f"the writable paths ({listed})"
            ),
            location=mount.location,
        )


# Host paths that hand a container the host: kernel interfaces, devices, system
# configuration, root's home, runtime state. Their children count too; "/" only itself.
SENSITIVE_HOST_PATHS = (
    "/proc", "/sys", "/dev", "/etc", "/boot", "/root", "/run", "/var/run",
    "/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet",
)
# Container runtime API sockets, wherever the host keeps them: reaching one is root.
RUNTIME_SOCKETS = frozenset({
    "docker.sock", "containerd.sock", "crio.sock", "podman.sock", "dockershim.sock",
    "cri-dockerd.sock", "buildkitd.sock",
})
RUNTIME_PIPES = frozenset({"docker_engine", "docker_engine_windows", "docker_engine_linux",
                           "containerd-containerd"})
# Read-only binds of these are a common way to share the host's time zone; the files
# say nothing secret and give no control.
HARMLESS_READ_ONLY = frozenset({"/etc/localtime", "/etc/timezone"})


def sensitive_host_path(path: str) -> str | None:
    """Why mounting host ``path`` is dangerous, or None when it is not one of ours."""
    normal = normalise_path(path)
    name = posixpath.basename(normal)
    if name in RUNTIME_SOCKETS:
        return f"the container runtime's API socket {name}, which is root on the host"
    if normal == "/":
        return "the host's whole filesystem"
    for root in SENSITIVE_HOST_PATHS:
        if is_under(normal, root):
            return f"host path {normal}" + (f" (under {root})" if normal != root else "")
    for root in SENSITIVE_HOST_PATHS:
        if is_under(root, normal):
            return f"host path {normal}, which contains {root}"
    return None


def _sensitive_pipe(pipe: str) -> str | None:
    name = pipe.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]
    if name in RUNTIME_PIPES:
        return f"the container runtime's named pipe {name}, which is root on the host"
    return None


@rule(
    code="PG307",
    name="sensitive-mount",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary=(
        "A sensitive host path is mounted: a runtime socket, /, /proc, /sys, /dev, /etc, "
        "/boot, /root, /run, /var/run, /var/lib/docker"
    ),
    fix=(
        "Remove the mount; give the container a dedicated directory or a named volume instead, "
        "and never the Docker socket"
    ),
    fixes={
        "container": "Recreate the container without the mount (-v/--mount); give it a "
                     "dedicated directory or a named volume, never the Docker socket",
        "compose": "Remove the entry from the service's volumes: (or the device from the "
                   "volume's driver_opts); give it a dedicated directory or a named volume, "
                   "never the Docker socket",
        "k8s": "Remove the hostPath volume (or the hostPath PersistentVolume its claim binds); "
               "use emptyDir, configMap or secret volumes, never the Docker socket",
    },
    rationale=(
        "The Docker socket is full control of the engine, which is root on the host. The "
        "host's /, /etc, /proc, /sys, /dev and runtime directories let a container read "
        "secrets, change host configuration or reach kernel interfaces; read-only does not "
        "make a socket safe. A volume whose driver binds a host path, or a path that is a "
        "symlink to one of these, is the same mount under another name."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.6",
        "CIS Docker Benchmark v1.6.0 5.32",
        "Kubernetes Pod Security Standards (baseline): HostPath volumes",
    ),
)
def sensitive_mount(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    for mount in config.mounts:
        if mount.host_path is None:
            continue
        if mount.type == "npipe":
            reason = _sensitive_pipe(mount.host_path)
        elif mount.read_only and normalise_path(mount.host_path) in HARMLESS_READ_ONLY:
            reason = None
        else:
            reason = sensitive_host_path(mount.host_path)
        if reason is None and mount.host_realpath is not None:
            real = sensitive_host_path(mount.host_realpath)
            if real is not None:
                reason = f"{real}, through the symlink {mount.host_path}"
        if reason is not None:
            yield Violation(
                message=f"{describe_mount(mount, subject.kind)} at {mount.target} exposes "
                        f"{reason}",
                location=mount.location,
            )
    for inherited in config.unresolved_mounts:
        yield Violation(
            message=f"volumes_from {inherited.value} inherits every mount of a container this "
                    "file cannot show; they may include the Docker socket or the host's /",
            location=inherited.location,
            fix="Mount what the service needs itself, or take volumes_from a service of this "
                "project, whose mounts are checked",
        )
