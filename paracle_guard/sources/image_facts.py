"""Image facts as cache entries: a layer's scan by diff ID, an image's merged files by image ID.

A layer's entry is its ``LayerScan``: what the layer adds (the files worth
keeping, with the package records and account bytes the resolvers read), what
it takes away (whiteouts, opaque folders) and a digest of every path it
writes. It says nothing about the images that use it, so any image stacking
that layer reuses it; ``SavedArchive.final_files`` merges the scans in layer
order, and the resolvers run over the merged result.

An image's entry is the result of that merge: every kept file of its final
filesystem with the layer that put it there. The run configuration is not
cached: the engine's inspect, needed anyway to learn the image ID, carries it.

Where the entries live, and under which namespace, is ``facts_store``.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paracle_guard.image_tree import ImageTree, LayerTree
from paracle_guard.sources.image_archive import FinalFile
from paracle_guard.sources.image_content import KeptFile
from paracle_guard.sources.layer_scan import LayerScan
from paracle_guard.sources.package_db import PackageRecord

# The fields each record is stored with, in order. A fact added to a record must be added
# here and to the codec below, or it would be lost on a cache hit: tests compare these
# with the records' own fields.
SCAN_FIELDS = ("kept", "whiteouts", "opaque_dirs", "written", "dirs", "tree")
TREE_FIELDS = ("dirs", "symlinks", "others", "whiteouts", "opaque_dirs")
KEPT_FIELDS = ("path", "mode", "kind", "uid", "gid", "size", "capabilities", "tags",
               "reported", "manager", "packages", "content", "truncated", "link", "hardlink")
PACKAGE_FIELDS = ("name", "manager", "version", "size_bytes", "line")

# --- layers --------------------------------------------------------------------------


def encode_layer(scan: LayerScan) -> bytes:
    document = {
        "kept": [_encode_kept(kept) for kept in scan.kept.values()],
        "whiteouts": sorted(scan.whiteouts),
        "opaque_dirs": sorted(scan.opaque_dirs),
        "written": _encode_keys(scan.written),
        "dirs": _encode_keys(scan.dirs),
        "tree": _encode_tree(scan.tree),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_layer(payload: bytes) -> LayerScan | None:
    """The scan stored in ``payload``, or None when it is not one this code wrote."""
    try:
        document = json.loads(payload)
        kept = [_decode_kept(item) for item in document["kept"]]
        return LayerScan(
            kept={item.path: item for item in kept},
            whiteouts=set(_strings(document["whiteouts"])),
            opaque_dirs=set(_strings(document["opaque_dirs"])),
            written=_decode_keys(document["written"]),
            dirs=_decode_keys(document["dirs"]),
            tree=_decode_tree(document["tree"]),
        )
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error):
        return None


def _encode_tree(tree: LayerTree) -> dict[str, Any]:
    return {"dirs": sorted(tree.dirs), "symlinks": dict(sorted(tree.symlinks.items())),
            "others": _encode_keys(tree.others), "whiteouts": sorted(tree.whiteouts),
            "opaque_dirs": sorted(tree.opaque_dirs)}


def _decode_tree(document: Any) -> LayerTree:
    symlinks = document["symlinks"]
    if not isinstance(symlinks, dict):
        raise TypeError("symlinks: expected a mapping")
    return LayerTree(
        dirs=set(_strings(document["dirs"])),
        symlinks={_text(path): _text(target) for path, target in symlinks.items()},
        others=_decode_keys(document["others"]),
        whiteouts=set(_strings(document["whiteouts"])),
        opaque_dirs=set(_strings(document["opaque_dirs"])),
    )


def _encode_kept(kept: KeptFile) -> list[Any]:
    return [
        kept.path, kept.mode, kept.kind, kept.uid, kept.gid, kept.size, kept.capabilities,
        list(kept.tags), kept.reported, kept.manager,
        [[r.name, r.manager, r.version, r.size_bytes, r.line] for r in kept.packages],
        base64.b64encode(kept.content).decode() if kept.content is not None else None,
        kept.truncated, kept.link, kept.hardlink,
    ]


def _decode_kept(item: Any) -> KeptFile:
    (path, mode, kind, uid, gid, size, capabilities, tags, reported, manager, packages,
     content, truncated, link, hardlink) = item
    if kind not in ("file", "dir", "symlink", "other"):
        raise ValueError(f"unknown kind {kind!r}")
    return KeptFile(
        path=_text(path), mode=_int(mode), kind=kind, uid=_int(uid), gid=_int(gid),
        size=_int(size), capabilities=_flag(capabilities), tags=tuple(_strings(tags)),
        reported=_flag(reported), manager=None if manager is None else _text(manager),
        packages=tuple(
            PackageRecord(name=_text(name), manager=_text(by), version=_optional_text(version),
                          size_bytes=None if size_bytes is None else _int(size_bytes),
                          line=_int(line))
            for name, by, version, size_bytes, line in packages
        ),
        content=None if content is None else base64.b64decode(_text(content), validate=True),
        truncated=_flag(truncated), link=_text(link), hardlink=_flag(hardlink),
    )


def _encode_keys(keys: set[int]) -> str:
    packed = array("Q", sorted(keys))
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def _decode_keys(text: Any) -> set[int]:
    packed = array("Q")
    packed.frombytes(base64.b64decode(_text(text), validate=True))
    if sys.byteorder != "little":
        packed.byteswap()
    return set(packed)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _strings(values: Any) -> list[Any]:
    if not isinstance(values, list):
        raise TypeError("expected a list")
    return [_text(value) for value in values]


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


# --- images --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """What an image's layers say, merged: its final kept files, and its skeleton."""

    files: list[FinalFile]
    tree: ImageTree


def encode_image(diff_ids: Sequence[str], facts: ImageFacts) -> bytes:
    """An image's merged facts: every kept file of its final filesystem with its layer, and
    the layers' skeletons (which stay apart: they are merged at lookup, see image_tree)."""
    document = {
        "diff_ids": list(diff_ids),
        "files": [[final.layer, _encode_kept(final.file)] for final in facts.files],
        "tree": {"layer_ids": list(facts.tree.layer_ids),
                 "layers": [_encode_tree(layer) for layer in facts.tree.layers]},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_image(payload: bytes, diff_ids: Sequence[str]) -> ImageFacts | None:
    """The merged facts stored in ``payload``; None unless they were merged from ``diff_ids``."""
    try:
        document = json.loads(payload)
        if document["diff_ids"] != list(diff_ids):
            return None
        files = [FinalFile(file=_decode_kept(kept), layer=_text(layer))
                 for layer, kept in document["files"]]
        tree = ImageTree(
            layer_ids=_strings(document["tree"]["layer_ids"]),
            layers=[_decode_tree(layer) for layer in document["tree"]["layers"]],
        )
        return ImageFacts(files=files, tree=tree)
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error):
        return None
