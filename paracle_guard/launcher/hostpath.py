"""Host folders and files handed to a sandbox: checked so that what is mounted is what was checked.

The engine mounts a bind source by path, at start, after this check. A path can
change in between: whoever may rename an entry in one of its parent folders can
swap the checked folder for a symlink (``renameat2(RENAME_EXCHANGE)``), and the
engine follows it. Comparing before and after cannot stop that, so the launcher
refuses any path that someone else could change, as sshd's StrictModes does for
key files:

- every component is opened with ``O_NOFOLLOW`` relative to its parent, so the
  checked chain is the real chain and no symlink is ever followed;
- every parent folder must be owned by root or the invoking user, and not be
  writable by group or others, unless it has the sticky bit (then only the
  owner of an entry can rename it, and that owner must be root or the invoking
  user); a POSIX ACL that lets another user or a group write it is refused too.

Root and the invoking user are trusted (they could run the engine themselves);
nobody else can then rename anything on the way, so the engine finds at start
the folder that was checked. The launcher still compares what the container
sees with the identity recorded here (``hostproof``), as defence in depth.
Every OSError becomes one line naming the option, the path and the component.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from paracle_guard.errors import InputError
from paracle_guard.launcher.refusal import PolicyViolation

# Host trees that must never reach a container, nor anything below them.
SYSTEM_TREES = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run",
    "/var/lib/docker", "/var/lib/containerd",
)
# Folders whose own contents are sensitive but whose subfolders are ordinary
# projects (/root/project, ~/code): refused only as themselves or as an ancestor.
PRIVATE_ROOTS = ("/", "/root")

_WALK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_ACL_XATTR = "system.posix_acl_access"
_ACL_HEADER = struct.Struct("<I")
_ACL_ENTRY = struct.Struct("<HHI")
_ACL_USER, _ACL_GROUP, _ACL_MASK = 0x02, 0x08, 0x10
_ACL_WRITE = 0x02

Want = Literal["dir", "dir-or-file"]


@dataclass(frozen=True)
class CheckedPath:
    """A host path that passed the checks, and what it was when checked."""

    option: str  # --workspace, --mount: for messages
    given: str  # as the user wrote it
    real: str  # absolute, no symlink anywhere on the way
    identity: tuple[int, int]  # (st_dev, st_ino) when checked
    is_dir: bool
    uid: int
    gid: int
    mode: int


def trusted_uids() -> frozenset[int]:
    return frozenset({0, os.getuid()})


def check_host_path(
    given: str,
    *,
    option: str,
    want: Want = "dir",
    home: str | None = None,
    docker_host: str | None = None,
) -> CheckedPath:
    """Check ``given`` as the source of a bind mount; one line (exit 125) when refused."""
    try:
        absolute = os.path.abspath(os.path.expanduser(given))
    except OSError as exc:  # a relative path while the current folder is gone
        raise InputError(f"{option} {given}: {exc.strerror or exc}") from None
    info = _walk(absolute, given, option)
    is_dir = stat.S_ISDIR(info.st_mode)
    if want == "dir" and not is_dir:
        raise InputError(f"{option} {given}: not a folder")
    if not is_dir and not stat.S_ISREG(info.st_mode):
        raise InputError(f"{option} {given}: not a folder or a regular file")
    _refuse_sensitive(option, given, absolute, home=home, docker_host=docker_host)
    return CheckedPath(option=option, given=given, real=absolute,
                       identity=(info.st_dev, info.st_ino), is_dir=is_dir,
                       uid=info.st_uid, gid=info.st_gid, mode=stat.S_IMODE(info.st_mode))


def _walk(absolute: str, given: str, option: str) -> os.stat_result:
    """Open ``absolute`` component by component, never following a symlink; its stat."""
    trusted = trusted_uids()
    current = "/"
    try:
        fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{option} {given}: /: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        parts = [part for part in absolute.split("/") if part]
        for depth, name in enumerate(parts):
            path = os.path.join(current, name)
            try:
                child = os.open(name, _WALK_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise InputError(f"{option} {given}: {path}: {exc.strerror or exc}") from None
            try:
                entry = os.fstat(child)
                if stat.S_ISLNK(entry.st_mode):
                    raise PolicyViolation(
                        f"refused: {option} {given}: {path} is a symlink; the engine would "
                        "follow it when mounting, so give the real path", key=option)
                _refuse_renamers(option, given, current, info, fd, path, entry, trusted)
            finally:
                os.close(fd)
                fd = child
            if depth < len(parts) - 1 and not stat.S_ISDIR(entry.st_mode):
                raise InputError(f"{option} {given}: {path}: not a folder")
            info, current = entry, path
        return info
    except OSError as exc:  # fstat or getxattr of something that vanished meanwhile
        raise InputError(f"{option} {given}: {current}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _refuse_renamers(
    option: str, given: str, folder: str, folder_info: os.stat_result, folder_fd: int,
    entry: str, entry_info: os.stat_result, trusted: frozenset[int],
) -> None:
    """Refuse when someone but root or the invoking user can rename ``entry`` in ``folder``."""
    why: str | None = None
    mode = folder_info.st_mode
    if folder_info.st_uid not in trusted:
        why = f"{folder} belongs to uid {folder_info.st_uid}"
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        writers = "group and others" if mode & stat.S_IWGRP and mode & stat.S_IWOTH else (
            "its group" if mode & stat.S_IWGRP else "others")
        if not mode & stat.S_ISVTX:
            why = f"{folder} is writable by {writers} (mode {stat.S_IMODE(mode):04o})"
        elif entry_info.st_uid not in trusted:
            why = (f"{entry} belongs to uid {entry_info.st_uid} inside the shared folder "
                   f"{folder}")
    if why is None:
        why = _acl_writers(folder_fd)
    if why is not None:
        raise PolicyViolation(
            f"refused: {option} {given}: {why}, so another user could swap {entry} between "
            "the check and the mount; use a folder whose parents only you (or root) can change",
            key=option)


def _acl_writers(folder_fd: int) -> str | None:
    """Who else a POSIX access ACL lets write the folder open as ``folder_fd``, or None."""
    try:
        # Through the descriptor's /proc link: the folder that was opened, not a path.
        raw = os.getxattr(f"/proc/self/fd/{folder_fd}", _ACL_XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise
    return acl_writers(raw, trusted_uids())


def acl_writers(raw: bytes, trusted: frozenset[int]) -> str | None:
    """Named users or groups with write in an ACL xattr (the mask permitting), or None."""
    entries = [_ACL_ENTRY.unpack_from(raw, offset)
               for offset in range(_ACL_HEADER.size, len(raw) - _ACL_ENTRY.size + 1,
                                   _ACL_ENTRY.size)]
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), _ACL_WRITE)
    if not mask & _ACL_WRITE:
        return None
    for tag, perm, ident in entries:
        if not perm & _ACL_WRITE:
            continue
        if tag == _ACL_USER and ident not in trusted:
            return f"an ACL lets uid {ident} write it"
        if tag == _ACL_GROUP:
            return f"an ACL lets gid {ident} write it"
    return None


def open_no_follow(root_fd: int, path: str) -> int:
    """An O_PATH descriptor of ``path`` below ``root_fd``, no symlink followed on the way.

    Raises OSError (ELOOP for a symlink) when any component is missing or a link.
    """
    fd = os.dup(root_fd)
    try:
        for name in [part for part in path.split("/") if part]:
            child = os.open(name, _WALK_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, f"{name} is a symlink")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _refuse_sensitive(
    option: str, given: str, real: str, *, home: str | None, docker_host: str | None
) -> None:
    trees = list(SYSTEM_TREES)
    socket_folder = _socket_folder(docker_host)
    if socket_folder is not None:
        trees.append(socket_folder)
    roots = list(PRIVATE_ROOTS)
    if home:
        roots.append(_real_home(home))
    for tree in trees:
        if is_under(real, tree) or is_under(tree, real):
            raise PolicyViolation(
                f"refused: {option} {given}: {real} is or holds the sensitive host path {tree}",
                key=option)
    for root in roots:
        if is_under(root, real):
            what = "the root of the host" if root == "/" else f"the home folder {root}"
            raise PolicyViolation(
                f"refused: {option} {given}: {real} is or holds {what}; mount a project "
                "folder inside it instead", key=option)


def _real_home(home: str) -> str:
    try:
        return os.path.realpath(home)
    except OSError:  # a link changing under realpath: compare the path as written
        return os.path.normpath(home)


def _socket_folder(docker_host: str | None) -> str | None:
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    path = host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"
    if not host or host.startswith("unix://"):
        return os.path.normpath(os.path.dirname(path) or "/")
    return None


def is_under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def overlapping(path: str, others: Sequence[str]) -> str | None:
    """The first of ``others`` that ``path`` equals, lies in, or contains."""
    for other in others:
        if is_under(path, other) or is_under(other, path):
            return other
    return None
