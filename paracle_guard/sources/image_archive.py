"""Walk a ``docker save`` archive as a stream and rebuild what the image's final filesystem holds.

The archive (legacy ``<id>/layer.tar`` layout or the OCI ``blobs/sha256/...``
layout of newer engines) is read once, front to back, so it can come straight
from the engine's HTTP response or from a file, plain or gzip-compressed. Its
``manifest.json`` usually comes *after* the layers, so the layer stack order is
unknown while layers stream past. Each layer is therefore scanned on its own
into a small ``LayerScan`` (``layer_scan.py``: the few files worth keeping, its whiteouts, and a
hash of every path it writes) and the stack is reconciled at the end, bottom
layer first, exactly as overlayfs would: memory grows with the number of paths,
never with the bytes, and nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from paracle_guard.errors import InputError
from paracle_guard.image_tree import ImageTree
from paracle_guard.sources.account_files import FileFact
from paracle_guard.sources.image_config import ConfigError, ImageConfig, decode_image_config
from paracle_guard.sources.image_content import (
    ACCOUNT_FILES,
    ACCOUNTS_LIMIT,
    KeptFile,
)
from paracle_guard.sources.layer_scan import LayerScan, scan_layer
from paracle_guard.sources.oci_layout import (
    LAYOUT_FILE,
    HashingSource,
    ScannedBlob,
    images_from_layout,
)
from paracle_guard.sources.tar_stream import (
    Source,
    StreamSource,
    TarFormatError,
    TarMember,
    TarReader,
    open_tar,
)

# manifest.json and image configs are small; a huge one is not a docker save archive.
JSON_LIMIT = 32 * 1024 * 1024
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class FinalFile:
    """A kept file as it is in the final image, with the layer that put it there."""

    file: KeptFile
    layer: str  # diff ID ("sha256:...") of the layer


@dataclass(frozen=True)
class SavedImage:
    id: str  # "sha256:" + digest of the config, the engine's image ID
    tags: tuple[str, ...]
    config: ImageConfig  # the image config as the engine decodes it
    layers: tuple[str, ...]  # archive member names, bottom layer first
    diff_ids: tuple[str, ...]

    def layer_ids(self) -> list[str]:
        """How reports name each layer: its diff ID, or its member name past the config's list."""
        return [self.diff_ids[index] if index < len(self.diff_ids) else member
                for index, member in enumerate(self.layers)]


@dataclass
class SavedArchive:
    source: str  # for messages: the file name, or "image REF" for an engine stream
    images: list[SavedImage]
    scans: dict[str, LayerScan]

    def image_tree(self, image: SavedImage) -> ImageTree:
        """The skeleton of ``image``'s filesystem: its layers' trees, bottom first."""
        return ImageTree(layers=[self.scans[member].tree for member in image.layers],
                         layer_ids=image.layer_ids())

    def final_files(self, image: SavedImage) -> list[FinalFile]:
        """The kept files that survive in ``image``'s final filesystem, sorted by path."""
        final: dict[str, FinalFile] = {}
        for member, layer_id in zip(image.layers, image.layer_ids(), strict=True):
            scan = self.scans[member]
            if final:
                for path in [p for p in final if scan.hides(p)]:
                    del final[path]
            for path, kept in scan.kept.items():
                final[path] = FinalFile(file=kept, layer=layer_id)
        return [final[path] for path in sorted(final)]


class ImageFiles:
    """A FileView over an image: kinds and links from its tree, contents from the kept files.

    A pure function of the layers' facts, so that it works the same on cached ones. A
    path that exists but whose content no scan kept is ``unknown``: a source can scan
    again with that path wanted.
    """

    def __init__(self, tree: ImageTree, kept: dict[str, KeptFile]) -> None:
        self.tree = tree
        self.kept = kept

    def entry(self, path: str) -> FileFact:
        found = self.tree.lookup(path)
        if found is None:
            return FileFact("missing")
        if found.kind == "dir":
            return FileFact("dir")
        if found.kind == "symlink":
            return FileFact("symlink", target=found.target)
        kept = self.kept.get(path)
        if kept is None:
            return FileFact("unknown", note="this scan did not keep it", need=path)
        return _file_fact(kept)


def _file_fact(kept: KeptFile) -> FileFact:
    if kept.kind != "file":
        return FileFact(kept.kind)
    if kept.truncated:
        return FileFact("file", note=f"it is larger than the {ACCOUNTS_LIMIT >> 20} MiB "
                                     "paracle-guard reads")
    if kept.content is None and kept.hardlink:
        return FileFact("file", note=f"it is a hard link to {kept.link}, which was not read",
                        need=kept.link)
    if kept.content is None:
        return FileFact("file", note="its content was not read", need=kept.path)
    return FileFact("file", content=kept.content)


def read_saved_archive(
    stream: IO[bytes],
    *,
    source: str,
    size: int | None = None,
    on_layer: Callable[[], None] | None = None,
    wanted: frozenset[str] = ACCOUNT_FILES,
    platform: str | None = None,
) -> SavedArchive:
    """Read a ``docker save`` stream, or a tar of an OCI image layout, once, scanning every
    layer as it passes.

    ``size`` is the byte size of a stream that is a real, seekable file: data
    nobody needs is then skipped with a seek instead of being read (the layers of
    ``blobs/`` are read whole, to verify their digests). ``on_layer`` is called
    after each layer is scanned (for progress). ``wanted`` is passed to every
    layer scan. ``platform`` picks among an OCI layout's platforms (default: this
    machine's).
    """
    found = _ArchiveBlobs(source, {}, {}, {}, {}, {}, {})
    _read_members(stream, size, found, wanted=wanted, on_layer=on_layer)
    if "manifest.json" not in found.documents and LAYOUT_FILE in found.sizes:
        # No docker save manifest: an OCI layout, as containerd and podman load it.
        images = images_from_layout(found, layout_image(source), platform=platform)
    else:
        images = _images_from_manifest(found.documents, found.scans, found.broken, found.links,
                                       source)
    return SavedArchive(source=source, images=images, scans=found.scans)


def _read_members(
    stream: IO[bytes],
    size: int | None,
    found: _ArchiveBlobs,
    *,
    wanted: frozenset[str],
    on_layer: Callable[[], None] | None,
) -> None:
    """Every member of the archive, once and front to back, into ``found``."""
    source = found.source
    try:
        archive = open_tar(StreamSource(stream, size))
        for member in archive:
            name = member.name.removeprefix("./")
            if _recorded_link(member, name, found.links) or not member.isreg():
                continue
            found.sizes[name] = member.size
            layer, hashing = _layer_or_document(archive, member, name, found)
            if layer is not None:
                _scan_into(found, name, layer, hashing, wanted)
                if on_layer is not None:
                    on_layer()
    except TarFormatError as exc:
        raise InputError(f"{source} is not a readable docker save archive ({exc})") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}"
                         if isinstance(exc, OSError) else
                         f"{source} cannot be decompressed ({exc})") from exc


def _recorded_link(member: TarMember, name: str, links: dict[str, str]) -> bool:
    """Whether ``member`` is a symlink or hard link, recorded in ``links`` by where it points."""
    if member.issym():
        links[name] = posixpath.normpath(
            posixpath.join(posixpath.dirname(name), member.linkname))
        return True
    if member.islnk():
        links[name] = member.linkname.removeprefix("./")
        return True
    return False


def _layer_or_document(
    archive: TarReader, member: TarMember, name: str, found: _ArchiveBlobs
) -> tuple[Source | None, HashingSource | None]:
    """A regular member's layer to scan (and its hasher, for a blob), or None after keeping
    it as a JSON document, marking it broken, or leaving it to be skipped."""
    source = found.source
    layer: Source | None = None
    hashing: HashingSource | None = None
    if name.endswith("/layer.tar"):
        layer = archive.data()
    elif name.startswith("blobs/"):
        # OCI layout: configs, manifests and layers are all blobs; sniff which.
        head = archive.read(len(ZSTD_MAGIC))
        if head.startswith(b"{") and member.size <= JSON_LIMIT:
            found.documents[name] = head + archive.read(member.size)
        elif head == ZSTD_MAGIC:
            found.broken[name] = (f"{source}: layer {name} is zstd-compressed, which is not "
                                  "supported; save the image from an engine that stores "
                                  "layers uncompressed or gzip-compressed")
        else:
            layer = hashing = HashingSource(_Prepend(head, archive.data()))
    elif ((name.endswith(".json") and "/" not in name) or name == LAYOUT_FILE) \
            and member.size <= JSON_LIMIT:
        found.documents[name] = archive.read(member.size)
    return layer, hashing


def _scan_into(found: _ArchiveBlobs, name: str, layer: Source, hashing: HashingSource | None,
               wanted: frozenset[str]) -> None:
    """Scan one layer; a layer that cannot be read is broken, an error only if it is used."""
    try:
        found.scans[name] = scan_layer(layer, source=found.source, member=name, wanted=wanted)
        if hashing is not None:
            found.digests[name] = hashing.finish()
    except InputError as exc:
        found.broken[name] = str(exc)


@dataclass
class _ArchiveBlobs:
    """An archive's files as a tar read front to back left them (an OCI layout's blobs)."""

    source: str
    documents: dict[str, bytes]
    scans: dict[str, LayerScan]
    # Layers that could not be read, with why: an error only if the chosen image uses them.
    broken: dict[str, str]
    links: dict[str, str]
    digests: dict[str, tuple[str, int]]  # blobs/ layer -> sha256 (hex) and size
    sizes: dict[str, int]

    def document(self, name: str, limit: int) -> bytes | None:
        name = _resolve(name, self.links)
        if self.sizes.get(name, 0) > limit:
            raise InputError(f"{self.source}: {name} is {self.sizes[name]} bytes, over the "
                             f"{limit >> 20} MiB paracle-guard reads; refused")
        if name in self.scans or name in self.broken:
            raise InputError(f"{self.source}: {name} is a layer where a JSON document is "
                             "expected")
        return self.documents.get(name)

    def layer(self, name: str) -> ScannedBlob | None:
        name = _resolve(name, self.links)
        if name in self.broken:
            raise InputError(self.broken[name])
        if name in self.documents:
            raise InputError(f"{self.source}: layer {name} is a JSON document, not a tar")
        if name not in self.scans:
            return None
        sha256, size = self.digests[name]
        return ScannedBlob(self.scans[name], sha256, size, name)


def layout_image(source: str) -> Callable[[bytes, tuple[str, ...], tuple[str, ...]], SavedImage]:
    """Builds an OCI layout's image from its verified config and layer blob names."""

    def make(raw: bytes, layers: tuple[str, ...], tags: tuple[str, ...]) -> SavedImage:
        config_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        try:
            config = decode_image_config(raw)
        except ConfigError as exc:
            raise InputError(f"{source}: config {config_id} is not a JSON object the engine "
                             f"would load ({exc})") from None
        if len(config.diff_ids) != len(layers):
            # containerd refuses such an image ("mismatched image rootfs and manifest layers").
            raise InputError(f"{source}: config {config_id} lists {len(config.diff_ids)} "
                             f"layers, its manifest {len(layers)}; refused")
        return SavedImage(id=config_id, tags=tags, config=config, layers=layers,
                          diff_ids=tuple(config.diff_ids))

    return make


class _Prepend:
    """A Source that yields a few bytes already read, then the rest of another Source."""

    def __init__(self, head: bytes, rest: Source) -> None:
        self._head = head
        self._rest = rest

    def readinto(self, buffer: memoryview) -> int:
        if not self._head:
            return self._rest.readinto(buffer)
        count = min(len(buffer), len(self._head))
        buffer[:count] = self._head[:count]
        self._head = self._head[count:]
        return count

    def skip(self, count: int) -> None:
        dropped = min(count, len(self._head))
        self._head = self._head[dropped:]
        self._rest.skip(count - dropped)


def _resolve(name: str, links: dict[str, str]) -> str:
    for _ in range(16):  # bounded: a link cycle in a hostile archive must not hang us
        if name not in links:
            return name
        name = links[name]
    return name


def _images_from_manifest(
    documents: dict[str, bytes],
    scans: dict[str, LayerScan],
    broken: dict[str, str],
    links: dict[str, str],
    source: str,
) -> list[SavedImage]:
    if "manifest.json" not in documents:
        raise InputError(f"{source} is not a docker save archive (it has no manifest.json) "
                         f"nor an OCI image layout (it has no {LAYOUT_FILE})")
    try:
        manifest = json.loads(documents["manifest.json"])
    except ValueError as exc:
        raise InputError(f"{source}: manifest.json is not valid JSON ({exc})") from exc
    if not isinstance(manifest, list) or not manifest:
        raise InputError(f"{source}: manifest.json lists no images")

    images = []
    for index, entry in enumerate(manifest):
        where = f"{source}: manifest.json[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InputError(f"{where} has no Config")
        config_name = _resolve(entry["Config"], links)
        raw = documents.get(config_name)
        if raw is None:
            raise InputError(f"{where}: config {entry['Config']} is missing from the archive")
        try:
            config = decode_image_config(raw)
        except ConfigError as exc:
            raise InputError(f"{where}: config {entry['Config']} is not a JSON object the "
                             f"engine would load ({exc})") from None

        layers = []
        listed = entry.get("Layers")
        for layer in listed if isinstance(listed, list) else []:
            resolved = _resolve(str(layer), links)
            if resolved in broken:
                raise InputError(broken[resolved])
            if resolved not in scans:
                raise InputError(f"{where}: layer {layer} is missing from the archive")
            layers.append(resolved)
        tags = entry.get("RepoTags")
        images.append(
            SavedImage(
                id="sha256:" + hashlib.sha256(raw).hexdigest(),
                tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
                config=config,
                layers=tuple(layers),
                diff_ids=tuple(config.diff_ids),
            )
        )
    return images
