"""The skeleton of an image's filesystem: where mounts would land, answered without the image.

A launcher mounts its writable scratch space (tmpfs ``/tmp``, the workspace) at
paths inside the image. runc resolves a mount's destination inside the
container's root filesystem, following symlinks as if that root were ``/``
(``securejoin.SecureJoin(rootfs, m.Destination)`` in runc's
``libcontainer/rootfs_linux.go``), so an image whose ``/tmp`` is a symlink to
``/etc`` gets its writable tmpfs on ``/etc``. ``ImageTree`` answers, for any
path, what the image has there, and where runc would put a mount.

It is policy-independent: every directory and every symlink (with its target)
of each layer is kept, plus a 64-bit digest of every other entry's path (files,
devices), so a layer of 500,000 files costs a few MB. Layers are kept apart and
merged at lookup, top layer first, as overlayfs merges them: an entry in a layer
wins; a whiteout, an opaque directory or a non-directory on the way hides what
the layers below have. A layer's part is therefore the same in every image
that uses it, and can be cached by its diff ID.

A digest collision can only make a path look like a file that is not one, which
turns into a refusal, never into an accepted symlink: the walk stops at the
first component that is not a plain directory.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["dir", "symlink", "other"]
# securejoin gives up after this many symlinks (its maxSymlinkLimit), as does the kernel
# after 40; past it, runc would fail the mount.
MAX_SYMLINKS = 255


def path_key(path: str) -> int:
    """A stable 64-bit digest of ``path`` (the same in every process, so it can be cached)."""
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def components(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    target: str = ""  # a symlink's target, as stored
    layer: int = -1  # index of the layer that put it there, bottom first


@dataclass(frozen=True)
class MountTargetProblem:
    path: str  # the component at fault (the target or one of its parents)
    message: str
    layer: str | None  # diff ID of the layer that put it there


@dataclass(slots=True, kw_only=True)
class LayerTree:
    """What one layer puts into, or takes out of, the filesystem below it."""

    dirs: set[str] = field(default_factory=set)
    symlinks: dict[str, str] = field(default_factory=dict)
    others: set[int] = field(default_factory=set)  # path_key of files, devices, hard links
    whiteouts: set[str] = field(default_factory=set)  # paths this layer deletes below it
    opaque_dirs: set[str] = field(default_factory=set)  # dirs whose lower contents it hides

    def record(self, path: str, kind: EntryKind, target: str = "") -> None:
        """Note an entry of this layer; a later entry for the same path replaces it."""
        # Called for every file of every layer: the common case (a file) does the least.
        self.dirs.discard(path)
        self.symlinks.pop(path, None)
        if kind == "other":
            self.others.add(path_key(path))
            return
        self.others.discard(path_key(path))
        if kind == "dir":
            self.dirs.add(path)
        else:
            self.symlinks[path] = target

    def entry(self, path: str, index: int) -> Entry | None:
        if path in self.dirs:
            return Entry("dir", layer=index)
        if path in self.symlinks:
            return Entry("symlink", self.symlinks[path], layer=index)
        if path_key(path) in self.others:
            return Entry("other", layer=index)
        return None

    def hides_below(self, path: str) -> bool:
        """Whether this layer removes ``path`` of the layers below (when it has no entry there).

        A whiteout of a folder that the same layer then makes again as a plain folder
        hides nothing below it: the engine's overlay2 extraction turns the whiteout into
        a device and replaces it with the folder, and overlayfs merges a folder without
        the opaque marker with the one below (only the marker makes a folder opaque).
        """
        if path in self.whiteouts:
            return True
        parent = posixpath.dirname(path)
        while parent != "/":
            if parent in self.opaque_dirs or (parent in self.whiteouts
                                              and parent not in self.dirs):
                return True
            if parent in self.symlinks or path_key(parent) in self.others:
                return True  # a non-directory now stands where the directory was
            parent = posixpath.dirname(parent)
        return False


@dataclass(slots=True, kw_only=True)
class ImageTree:
    """An image's layers, bottom first, with their diff IDs for locations."""

    layers: list[LayerTree] = field(default_factory=list)
    layer_ids: list[str] = field(default_factory=list)

    def lookup(self, path: str) -> Entry | None:
        """What the final image has at the absolute, normalised ``path``; None when nothing."""
        if path == "/":
            return Entry("dir")
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            found = layer.entry(path, index)
            if found is not None:
                return found
            if layer.hides_below(path):
                return None
        return None

    def layer_id(self, entry: Entry) -> str | None:
        if 0 <= entry.layer < len(self.layer_ids):
            return self.layer_ids[entry.layer]
        return None

    def resolve(self, path: str) -> str | None:
        """Where runc would put a mount at ``path``: symlinks followed inside the image root.

        As securejoin does: an absolute target restarts at the image root, ``..``
        never climbs above it, and a missing component ends the resolution (runc
        creates the rest). None when there are more than MAX_SYMLINKS links.
        """
        pending = components(path)
        current = "/"
        followed = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = posixpath.dirname(current)
                continue
            candidate = posixpath.join(current, part)
            found = self.lookup(candidate)
            if found is None or found.kind != "symlink":
                current = candidate
                continue
            followed += 1
            if followed > MAX_SYMLINKS:
                return None
            if found.target.startswith("/"):
                current = "/"
            pending = components(found.target) + pending
        return current

    def mount_target_problem(
        self, target: str, *, directory: bool = True
    ) -> MountTargetProblem | None:
        """Why a mount at ``target`` would not land exactly there, or None when it would.

        Every parent must be a real directory (or missing: runc then creates it, and
        everything below it, as plain directories in the container's own layer, with
        nothing of the image in the way). The target itself must be a directory for a
        directory mount, a regular file (or missing) for a file mount, and never a
        symlink, however it resolves.
        """
        path = "/"
        parts = components(posixpath.normpath("/" + target))
        for depth, part in enumerate(parts):
            path = posixpath.join(path, part)
            found = self.lookup(path)
            if found is None:
                return None
            last = depth == len(parts) - 1
            if found.kind == "symlink":
                landing = self.resolve(target)
                where = (f"runc would mount on {landing} instead" if landing is not None
                         else "the links loop, and runc would fail")
                return MountTargetProblem(path, f"{path} is a symlink to {found.target}; {where}",
                                          self.layer_id(found))
            if last and not directory:
                if found.kind == "dir":
                    return MountTargetProblem(path, f"{path} is a directory, not a file",
                                              self.layer_id(found))
                continue
            if found.kind != "dir":
                return MountTargetProblem(path, f"{path} is not a directory",
                                          self.layer_id(found))
        return None
