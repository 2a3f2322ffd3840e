"""Image facts as cache entries: one layer's scan by diff ID, one image's Subject by image ID.

A layer's entry is its ``LayerScan``: what the layer adds (the files worth
keeping, with the package records and account bytes the resolvers read), what
it takes away (whiteouts, opaque folders) and a digest of every path it
writes. It says nothing about the images that use it, so any image stacking
that layer reuses it; ``SavedArchive.final_files`` merges the scans in layer
order, and the resolvers run over the merged result.

An image's entry is the result of that merge: every kept file of its final
filesystem with the layer that put it there. The run configuration is not
cached: the engine's inspect, needed anyway to learn the image ID, carries it.

The namespace names the code that wrote an entry: ``FACTS_SCHEMA`` (raised by
hand when the shape of the facts changes), the paracle-guard version, and a
digest of the readers' source, so a change to how facts are read never meets
facts read the old way.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import sys
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paracle_guard import __version__
from paracle_guard.disk_cache import CacheInfo, DiskCache, cache_folder
from paracle_guard.sources.image_archive import FinalFile, LayerScan
from paracle_guard.sources.image_content import KeptFile
from paracle_guard.sources.package_db import PackageRecord
from paracle_guard.units import format_size, parse_size

FACTS_SCHEMA = 1
KINDS = ("image", "layer")
DEFAULT_LIMIT = 512 << 20
LIMIT_VARIABLE = "PARACLE_GUARD_CACHE_SIZE"
# The modules whose code decides what the facts are, relative to this folder.
READERS = ("image.py", "image_archive.py", "image_content.py", "image_facts.py",
           "layer_store.py", "package_db.py", "tar_stream.py", "../subject.py")


@functools.cache
def namespace() -> str:
    """``<schema>-<version>-<digest of the readers' source>``: the folder entries live in."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in READERS:
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(b"missing " + name.encode())
    return f"{FACTS_SCHEMA}-{__version__}-{digest.hexdigest()[:16]}"


def open_cache(root: Path | None = None) -> DiskCache:
    """The user's facts cache (off, with a reason, when it cannot be used safely)."""
    return DiskCache.open(root or cache_folder("facts"), namespace(), size_limit(), KINDS)


def size_limit() -> int:
    """PARACLE_GUARD_CACHE_SIZE (``512m``, ``2g``, bytes); 512 MiB when unset or unreadable."""
    configured = os.environ.get(LIMIT_VARIABLE, "").strip()
    try:
        return parse_size(configured) if configured else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT


def render_info(info: CacheInfo) -> str:
    """``paracle-guard cache info``: where, how big, what it holds."""
    state = "on" if info.enabled else f"off ({info.reason})"
    lines = [
        f"location:  {info.root}",
        f"state:     {state}",
        f"size:      {format_size(info.size) if info.size else '0 bytes'} "
        f"of {format_size(info.limit)} "
        f"(set {LIMIT_VARIABLE} to change; least recently used entries go first)",
        f"entries:   {info.entries.get('image', 0)} images, "
        f"{info.entries.get('layer', 0)} layers",
    ]
    if info.other_entries:
        lines.append(f"stale:     {info.other_entries} entries of other versions")
    lines.append(f"facts of:  {info.namespace}")
    return "\n".join(lines) + "\n"


# --- layers --------------------------------------------------------------------------


def encode_layer(scan: LayerScan) -> bytes:
    document = {
        "kept": [_encode_kept(kept) for kept in scan.kept.values()],
        "whiteouts": sorted(scan.whiteouts),
        "opaque_dirs": sorted(scan.opaque_dirs),
        "written": _encode_keys(scan.written),
        "dirs": _encode_keys(scan.dirs),
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
        )
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error):
        return None


def _encode_kept(kept: KeptFile) -> list[Any]:
    return [
        kept.path, kept.mode, kept.kind, kept.uid, kept.gid, kept.size, kept.capabilities,
        list(kept.tags), kept.reported, kept.manager,
        [[r.name, r.manager, r.version, r.size_bytes, r.line] for r in kept.packages],
        base64.b64encode(kept.content).decode() if kept.content is not None else None,
    ]


def _decode_kept(item: Any) -> KeptFile:
    (path, mode, kind, uid, gid, size, capabilities, tags, reported, manager, packages,
     content) = item
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


def encode_image(diff_ids: Sequence[str], files: Sequence[FinalFile]) -> bytes:
    """An image's merged file facts: every kept file of its final filesystem, with its layer."""
    document = {
        "diff_ids": list(diff_ids),
        "files": [[final.layer, _encode_kept(final.file)] for final in files],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_image(payload: bytes, diff_ids: Sequence[str]) -> list[FinalFile] | None:
    """The merged files stored in ``payload``; None unless they were merged from ``diff_ids``."""
    try:
        document = json.loads(payload)
        if document["diff_ids"] != list(diff_ids):
            return None
        return [FinalFile(file=_decode_kept(kept), layer=_text(layer))
                for layer, kept in document["files"]]
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error):
        return None
