"""Filesystem rules: what stays writable, and where a container starts.

A read-only root filesystem is only as good as the holes left in it: image
``VOLUME``s come back as writable anonymous volumes, and world-writable
directories let any uid plant files. The path helpers here are path-aware
(``/procfoo`` is not under ``/proc``) and are shared with the other families.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator

from paracle_guard.location import Location
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import Subject

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
    kinds=("image",),
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
    for volume in subject.volumes:
        yield Violation(
            message=(
                f"VOLUME {volume} becomes a writable anonymous volume, even with a read-only "
                "root filesystem"
            ),
        )


@rule(
    code="PG204",
    name="unsafe-workdir",
    severity=Severity.ERROR,
    kinds=("image", "dockerfile"),
    summary="The working directory is under /proc, /sys or /dev",
    fix="Set WORKDIR to a normal directory such as /workspace",
    rationale=(
        "A working directory inside the kernel's pseudo-filesystems is never needed by an "
        "application and is the shape of container escapes: runc CVE-2024-21626 let a "
        "WORKDIR of /proc/self/fd/N reach the host filesystem."
    ),
    references=("CVE-2024-21626",),
)
def unsafe_workdir(subject: Subject, controls: Controls) -> Iterator[Violation]:
    if not subject.workdir:
        return
    workdir = normalise_path(subject.workdir)
    for root in UNSAFE_WORKDIR_ROOTS:
        if is_under(workdir, root):
            yield Violation(
                message=f"working directory {subject.workdir} is under {root}",
                location=_workdir_location(subject),
            )
            return


def _workdir_location(subject: Subject) -> Location | None:
    """The last WORKDIR line of the target image, when the subject is a Dockerfile."""
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
