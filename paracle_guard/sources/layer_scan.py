"""Scan one layer tar as it streams past: the few files worth keeping, its whiteouts, and a
hash of every path it writes (see ``image_archive`` for how the layers stack up).

A layer is scanned on its own, before its place in the stack is known, so what it
records must not depend on the layers below it.
"""

from __future__ import annotations

import dataclasses
import posixpath
import zlib
from dataclasses import dataclass, field

from paracle_guard.errors import InputError
from paracle_guard.image_tree import LayerTree, path_key
from paracle_guard.sources.image_content import ACCOUNT_FILES, KeptFile, examine, kind_of
from paracle_guard.sources.tar_stream import Source, TarFormatError, open_tar

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

@dataclass
class LayerScan:
    """What one layer contributes, independent of where it sits in the stack."""

    kept: dict[str, KeptFile] = field(default_factory=dict)
    whiteouts: set[str] = field(default_factory=set)  # paths this layer deletes below it
    opaque_dirs: set[str] = field(default_factory=set)  # dirs whose lower contents it hides
    # path_key(path) rather than the path: a layer of 500k files costs a few MB, not 50,
    # and the same in every process, so that a scan can be cached by the layer's diff ID.
    written: set[int] = field(default_factory=set)
    dirs: set[int] = field(default_factory=set)
    # Every directory and symlink, and a digest of every other path: where mounts land.
    tree: LayerTree = field(default_factory=LayerTree)

    def hides(self, path: str) -> bool:
        """Whether this layer, stacked above the one that wrote ``path``, removes or replaces it."""
        if path_key(path) in self.written or path in self.whiteouts:
            return True
        parent = posixpath.dirname(path)
        while parent != "/":
            key = path_key(parent)
            # A whiteout of a folder this layer makes again hides nothing: see LayerTree.
            if parent in self.opaque_dirs or (parent in self.whiteouts and key not in self.dirs):
                return True
            if key in self.written and key not in self.dirs:
                return True  # a file or symlink now stands where the directory was
            parent = posixpath.dirname(parent)
        return False


def normalise(name: str) -> str | None:
    """A tar member name as an absolute image path; None for the root itself."""
    path = posixpath.normpath("/" + name.lstrip("/"))
    return None if path == "/" else path


def scan_layer(
    data: Source,
    *,
    source: str,
    member: str,
    wanted: frozenset[str] = ACCOUNT_FILES,
) -> LayerScan:
    """Scan one layer tar (plain or gzip) as it streams past; ``wanted`` paths are kept
    with their content (a second scan asks for the files the account files link to)."""
    scan = LayerScan()
    links = _OwnLinks()
    try:
        layer = open_tar(data)
        for info in layer:
            path = normalise(info.name)
            if path is None:
                continue
            through = links.through(path)
            if through is not None:
                raise InputError(
                    f"{source}: layer {member} writes {path} through {through}, a link the "
                    "same layer made: the engine would put it where the link points, and no "
                    "build writes a layer like that")
            links.note(path, info.issym() or info.islnk())
            name = posixpath.basename(path)
            if name.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if name == OPAQUE_MARKER:
                    scan.opaque_dirs.add(parent)
                    scan.tree.opaque_dirs.add(parent)
                elif not name.startswith(WHITEOUT_PREFIX * 2):  # aufs bookkeeping
                    deleted = posixpath.join(parent, name[len(WHITEOUT_PREFIX):])
                    scan.whiteouts.add(deleted)
                    scan.tree.whiteouts.add(deleted)
                continue
            key = path_key(path)
            scan.written.add(key)
            if info.isdir():
                scan.dirs.add(key)
            else:
                scan.dirs.discard(key)
            kind = kind_of(info)
            scan.tree.record(path, "other" if kind == "file" else kind, info.linkname)
            kept = examine(path, info, layer.read, wanted)
            if kept is not None and kept.hardlink:
                kept = _with_link_content(kept, scan.kept.get(kept.link))
            if kept is not None:
                scan.kept[path] = kept
            else:
                scan.kept.pop(path, None)  # a later entry for the same path replaces it
    except TarFormatError as exc:
        raise InputError(f"{source}: layer {member} is not a readable tar archive ({exc})") from exc
    except (OSError, EOFError, zlib.error) as exc:  # gzip's complaints about a broken layer
        raise InputError(f"{source}: layer {member} cannot be decompressed ({exc})") from exc
    return scan


def _with_link_content(link: KeptFile, target: KeptFile | None) -> KeptFile:
    """A hard link carries the content of the file it links to, written earlier in the layer."""
    if target is None or (target.content is None and not target.truncated):
        return link
    return dataclasses.replace(link, content=target.content, truncated=target.truncated)


class _OwnLinks:
    """The symlinks and hard links a layer has made so far, and whether a path goes through one.

    The engine extracts a layer entry by entry, into a folder of its own (overlay2),
    with the kernel resolving each entry's parent folders there: an entry below a
    symlink the same layer made earlier lands where that symlink points (``x -> /``
    then ``x/tmp -> /etc`` makes ``/tmp``), and a hard link to a symlink is one. The
    skeleton and the kept files name entries as written, so such a layer is refused.
    """

    def __init__(self) -> None:
        self._links: set[str] = set()
        self._clear: set[str] = {"/"}  # folders known to have no link of ours above them

    def through(self, path: str) -> str | None:
        """The link of this layer that ``path``'s parent folders go through, or None."""
        if not self._links:
            return None
        walked = []
        folder = posixpath.dirname(path)
        while folder not in self._clear:
            if folder in self._links:
                return folder
            walked.append(folder)
            folder = posixpath.dirname(folder)
        self._clear.update(walked)
        return None

    def note(self, path: str, is_link: bool) -> None:
        if not is_link:
            self._links.discard(path)
            return
        self._links.add(path)
        if path in self._clear:  # a folder checked before now is a link: so is what is below
            self._clear = {"/"}
