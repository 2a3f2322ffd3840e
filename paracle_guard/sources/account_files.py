"""Where the engine finds /etc/passwd and /etc/group in a container's root filesystem.

The engine opens them at the path ``FollowSymlinkInScope`` gives (moby/sys/symlink):
every component of the path is looked at, a symlink's target is followed as if the
root were ``/`` (absolute targets restart at the root, ``..`` never climbs above
it), at most 255 steps are taken, and a component below a file is an error that
stops the lookup. This module does the same over a ``FileView``, which each source
provides for what it can see: the image source over its layer scans, tests over a
dict. Where a view does not know a path, the answer says which path would settle
it, so that a source can look again.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal, Protocol

SYMLINK_STEPS = 255  # FollowSymlinkInScope's maxIter
PASSWD = "/etc/passwd"
GROUP = "/etc/group"


FileKind = Literal["missing", "dir", "file", "symlink", "other", "unknown"]


@dataclass(frozen=True)
class FileFact:
    """What a path is in the container's root filesystem, as far as a source knows."""

    kind: FileKind
    target: str = ""  # a symlink's target as written
    content: bytes | None = None  # a regular file's bytes, when the source kept them
    # Why ``unknown``, or why a file's content is missing; ``need`` names a path whose
    # content (or kind) would answer it, so a source can look again.
    note: str = ""
    need: str = ""


class FileView(Protocol):
    """The final filesystem of an image or container, one path at a time."""

    def entry(self, path: str) -> FileFact: ...


@dataclass(frozen=True)
class AccountFile:
    """/etc/passwd or /etc/group as the engine finds it."""

    status: Literal["absent", "present", "unknown"]
    data: bytes = b""
    path: str = ""  # where it really is, after symlinks
    # unknown: why it could not be read; absent: what stands there instead, if anything.
    note: str = ""
    need: frozenset[str] = frozenset()  # paths whose facts would let a source read it
    refused: str = ""  # the engine cannot even look (too many links, not a directory)


ABSENT = AccountFile("absent")


def unknown_file(note: str) -> AccountFile:
    return AccountFile("unknown", note=note)


def find_account_file(view: FileView, path: str) -> AccountFile:
    """``path`` resolved in scope and read from ``view``, as the engine would open it."""
    resolved = _follow_in_scope(view, path)
    if isinstance(resolved, AccountFile):
        return resolved
    fact = view.entry(resolved)
    where = path if resolved == path else f"{path} (a link to {resolved})"
    if fact.kind == "missing":
        return AccountFile("absent", path=resolved)
    if fact.kind == "unknown":
        return AccountFile("unknown", path=resolved, note=f"{where}: {fact.note}",
                           need=frozenset({fact.need or resolved}))
    if fact.kind != "file":
        # Newer engines refuse to read a non-regular file and carry on without it.
        return AccountFile("absent", path=resolved, note=f"{where} is not a regular file")
    if fact.content is None:
        return AccountFile("unknown", path=resolved,
                           note=f"{where}: {fact.note or 'its content was not read'}",
                           need=frozenset({fact.need or resolved}))
    return AccountFile("present", data=fact.content, path=resolved)


def _follow_in_scope(view: FileView, path: str) -> str | AccountFile:
    """moby/sys/symlink's FollowSymlinkInScope over ``view``; an AccountFile when it stops."""
    remaining = posixpath.normpath("/" + path).lstrip("/")
    done = ""  # resolved components so far, each followed by "/"
    for _ in range(SYMLINK_STEPS + 1):
        if not remaining:
            return posixpath.normpath("/" + done)
        part, _, remaining = remaining.partition("/")
        if not part:
            continue
        current = posixpath.normpath("/" + done + part)
        if current == "/":
            done = ""
            continue
        fact = view.entry(current)
        if fact.kind == "unknown":
            return AccountFile("unknown", note=f"{current}: {fact.note}",
                               need=frozenset({fact.need or current}))
        if fact.kind == "symlink":
            if fact.target.startswith("/"):
                done = ""
            remaining = fact.target + "/" + remaining
            continue
        if fact.kind in ("file", "other") and remaining.strip("/"):
            # lstat of a path below a file fails with ENOTDIR: the engine gives up.
            return AccountFile("absent", refused=f"{current} is not a directory")
        done += part + "/"
    return AccountFile("absent", refused=f"too many symlinks resolving {path}")


