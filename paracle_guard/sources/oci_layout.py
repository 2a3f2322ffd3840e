"""OCI image layouts (a directory, or a tar of one) as the images they hold.

A layout is ``oci-layout`` (its version), ``index.json`` and content-addressed
``blobs/sha256/<hex>``. The index lists manifests, or further indexes (one per
multi-platform image); a manifest names a config and its layers. This module
walks that graph as containerd's importer does (``core/images/archive/importer.go``:
``oci-layout`` must say ``1.0.0``, ``index.json`` is the root, every other file
is a blob known only by the digest of its bytes) and decodes each document as
Go's ``encoding/json`` decodes it into the ``ocispec`` types (``go_json``).

Fails closed: a blob whose bytes do not hash to the digest that names it, or
whose size differs from its descriptor, is refused, so the content checked is
the content any consumer of the layout would get. A digest must be
``sha256:`` and 64 lowercase hex digits (the ``go-digest`` form), so a
reference can never name a path outside ``blobs/sha256``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform as host_platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from paracle_guard.errors import InputError
from paracle_guard.sources import go_json
from paracle_guard.sources.go_json import INT64, STRING, Map, Slice, Struct
from paracle_guard.sources.tar_stream import Source, TarFormatError

if TYPE_CHECKING:  # image_archive reads layouts through this module
    from paracle_guard.sources.image_archive import SavedImage
    from paracle_guard.sources.layer_scan import LayerScan

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"
# Registries refuse manifests and indexes over 4 MiB (the distribution spec's limit);
# an image config is bounded as the docker save reader bounds it.
DOCUMENT_LIMIT = 4 << 20
CONFIG_LIMIT = 32 << 20
# Every index is a fan-out of one image per platform; an image index nested deeper than
# this, or listing more entries than this, is not something a build tool writes.
MAX_NESTING = 4
MAX_ENTRIES = 4096

INDEX_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
})
MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})
CONFIG_TYPES = frozenset({
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
})
# Plain or gzip tars; the reader sniffs the compression from the bytes, as containerd does.
LAYER_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})
# Annotations naming an image in a layout (containerd's, then the OCI one).
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
# BuildKit's attestations sit in an index beside the platforms, as "unknown/unknown".
ATTESTATION = ("vnd.docker.reference.type", "attestation-manifest")

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_PLATFORM = Struct("Platform", {"architecture": STRING, "os": STRING, "variant": STRING})
_DESCRIPTOR = Struct("Descriptor", {
    "mediaType": STRING, "digest": STRING, "size": INT64,
    "annotations": Map(STRING), "platform": _PLATFORM,
})
_INDEX = Struct("Index", {"mediaType": STRING, "manifests": Slice(_DESCRIPTOR)})
_MANIFEST = Struct("Manifest", {"mediaType": STRING, "config": _DESCRIPTOR,
                                "layers": Slice(_DESCRIPTOR)})
_LAYOUT = Struct("ImageLayout", {"imageLayoutVersion": STRING})


@dataclass(frozen=True)
class ScannedBlob:
    """A layer blob as read: what it holds, and the digest and size of its bytes."""

    scan: LayerScan
    sha256: str  # hex
    size: int
    member: str  # where it was found (a tar's link followed), the key of its scan


class LayoutBlobs(Protocol):
    """Where a layout's files are: a directory, or a tar already read front to back."""

    source: str

    def document(self, name: str, limit: int) -> bytes | None:
        """A JSON file (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``); None when
        absent; InputError when over ``limit``."""

    def layer(self, name: str) -> ScannedBlob | None:
        """A layer blob scanned; None when absent; InputError when unreadable."""


@dataclass(frozen=True)
class _Descriptor:
    media_type: str
    digest: str
    name: str  # blobs/sha256/<hex>
    size: int
    platform: str  # "linux/amd64", "linux/arm/v7", or "" when not said
    names: tuple[str, ...]  # the image names its annotations give
    attestation: bool


def blob_name(digest: str, where: str) -> str:
    """The layout path of ``digest``; InputError for anything but a sha256 digest."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InputError(f"{where}: digest {digest[:100]!r} is not sha256: and 64 lowercase "
                         "hex digits")
    return f"blobs/sha256/{match.group(1)}"


def host_platform_name() -> str:
    """This machine's platform as OCI names it (linux/amd64, linux/arm64)."""
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine)
    return f"linux/{arch}"


def images_from_layout(
    blobs: LayoutBlobs,
    make_image: Callable[[bytes, tuple[str, ...], tuple[str, ...]], SavedImage],
    *,
    platform: str | None = None,
) -> list[SavedImage]:
    """Every image the layout's index names, one manifest each (``platform``, default this
    machine's, picks among a multi-platform image's manifests).

    ``make_image(config, layer names, tags)`` builds an image once its blobs are verified.
    """
    source = blobs.source
    layout = _decode(blobs.document(LAYOUT_FILE, DOCUMENT_LIMIT), _LAYOUT,
                     f"{source}: {LAYOUT_FILE}")
    version = layout.get("imageLayoutVersion") or ""
    if version != LAYOUT_VERSION:
        raise InputError(f"{source}: {LAYOUT_FILE} says imageLayoutVersion {version!r}; only "
                         f"{LAYOUT_VERSION!r} is an OCI image layout")
    index = _decode(blobs.document(INDEX_FILE, DOCUMENT_LIMIT), _INDEX, f"{source}: {INDEX_FILE}")
    entries = _entries(index, f"{source}: {INDEX_FILE}")
    by_name: dict[tuple[str, ...], list[_Descriptor]] = {}
    for entry in entries:
        if not entry.attestation:
            by_name.setdefault(entry.names, []).append(entry)
    if not by_name:
        raise InputError(f"{source}: {INDEX_FILE} lists no image manifests")
    wanted = platform or host_platform_name()
    walk = _Walk(blobs, len(entries))
    images = []
    for names, group in by_name.items():
        manifests = walk.manifests(group)
        chosen = _choose(manifests, wanted, explicit=platform is not None,
                         where=f"{source}: {INDEX_FILE}" + (f" ({names[0]})" if names else ""))
        images.append(_image(blobs, chosen, names, make_image))
    return images


def _decode(raw: bytes | None, kind: Struct, where: str) -> dict[str, Any]:
    if raw is None:
        raise InputError(f"{where} is missing")
    try:
        value = go_json.parse(raw)
        if not go_json.is_object(value):
            raise go_json.GoJSONError("not a JSON object")
        decoded: dict[str, Any] = go_json.decode(value, kind, where)
    except go_json.GoJSONError as exc:
        raise InputError(f"{where} is not a document containerd would read ({exc})") from None
    return decoded


def _entries(index: dict[str, Any], where: str) -> list[_Descriptor]:
    listed = index.get("manifests") or []
    if len(listed) > MAX_ENTRIES:
        raise InputError(f"{where} lists {len(listed)} manifests, over the {MAX_ENTRIES} "
                         "paracle-guard reads")
    return [_descriptor(raw, f"{where}: manifests[{number}]")
            for number, raw in enumerate(listed)]


def _descriptor(raw: dict[str, Any], where: str) -> _Descriptor:
    digest = raw.get("digest") or ""
    platform = raw.get("platform") or {}
    parts = [platform.get("os") or "", platform.get("architecture") or ""]
    if platform.get("variant"):
        parts.append(platform["variant"])
    annotations = raw.get("annotations") or {}
    return _Descriptor(
        media_type=raw.get("mediaType") or "",
        digest=digest,
        name=blob_name(digest, where),
        size=raw.get("size") or 0,
        platform="/".join(parts) if any(parts) else "",
        names=tuple(annotations[key] for key in NAME_ANNOTATIONS if annotations.get(key)),
        attestation=(annotations.get(ATTESTATION[0]) == ATTESTATION[1]
                     or "/".join(parts) == "unknown/unknown"),
    )


def _verified(data: bytes | None, entry: _Descriptor, where: str) -> bytes:
    if data is None:
        raise InputError(f"{where}: blob {entry.digest} is missing from the layout")
    _check(hashlib.sha256(data).hexdigest(), len(data), entry, where)
    return data


def _check(sha256: str, size: int, entry: _Descriptor, where: str) -> None:
    if "sha256:" + sha256 != entry.digest:
        raise InputError(f"{where}: blob {entry.name} does not hash to its digest "
                         f"(its bytes are sha256:{sha256[:12]}...); refused")
    if size != entry.size:
        raise InputError(f"{where}: blob {entry.digest} is {size} bytes, its descriptor "
                         f"says {entry.size}; refused")


class _Walk:
    """Opens nested indexes, bounded in depth and in entries read overall: the same index
    listed many times over, at each level, must not multiply into millions of reads."""

    def __init__(self, blobs: LayoutBlobs, read_so_far: int) -> None:
        self.blobs = blobs
        self.budget = MAX_ENTRIES - read_so_far

    def manifests(self, entries: list[_Descriptor], depth: int = 0) -> list[_Descriptor]:
        found: list[_Descriptor] = []
        for entry in entries:
            where = f"{self.blobs.source}: {entry.name}"
            if entry.attestation:
                continue
            if entry.media_type in MANIFEST_TYPES:
                found.append(entry)
                continue
            if entry.media_type not in INDEX_TYPES:
                raise InputError(f"{where}: media type {entry.media_type!r} is not an image "
                                 "manifest or index paracle-guard reads")
            # An index cannot list itself (its digest would be inside what it hashes), so
            # verifying every blob read ends any loop; the depth bounds a chain.
            if depth >= MAX_NESTING:
                raise InputError(f"{where}: indexes nested more than {MAX_NESTING} deep; "
                                 "refused")
            raw = _verified(self.blobs.document(entry.name, DOCUMENT_LIMIT), entry, where)
            nested = _entries(_decode(raw, _INDEX, where), where)
            self.budget -= len(nested)
            if self.budget < 0:
                raise InputError(f"{where}: the layout's indexes list over {MAX_ENTRIES} "
                                 "entries in all; refused")
            # A child that does not say its platform runs on its parent entry's.
            found.extend(self.manifests(
                [dataclasses.replace(child, platform=child.platform or entry.platform)
                 for child in nested], depth + 1))
        return found


def _choose(manifests: list[_Descriptor], wanted: str, *, explicit: bool,
            where: str) -> _Descriptor:
    manifests = list({m.digest: m for m in manifests}.values())  # listed twice is one
    if len(manifests) == 1 and not explicit:
        return manifests[0]
    matching = [m for m in manifests if _same_platform(m.platform, wanted)]
    if len(matching) == 1:
        return matching[0]
    offered = ", ".join(sorted({m.platform or "(no platform)" for m in manifests})) or "none"
    if not matching:
        raise InputError(f"{where} holds no image manifest for {wanted} (it holds: {offered}); "
                         "give a layout of one platform")
    raise InputError(f"{where} holds {len(matching)} image manifests for {wanted}; "
                     "cannot tell which one a consumer would run; refused")


def _same_platform(offered: str, wanted: str) -> bool:
    if offered == wanted:
        return True
    # A wanted platform without a variant takes any variant of it (linux/arm64 is v8).
    return wanted.count("/") == 1 and offered.startswith(wanted + "/")


def _image(blobs: LayoutBlobs, entry: _Descriptor, names: tuple[str, ...],
           make_image: Callable[[bytes, tuple[str, ...], tuple[str, ...]], SavedImage],
           ) -> SavedImage:
    where = f"{blobs.source}: {entry.name}"
    raw = _verified(blobs.document(entry.name, DOCUMENT_LIMIT), entry, where)
    manifest = _decode(raw, _MANIFEST, where)
    config = _descriptor(manifest.get("config") or {}, f"{where}: config")
    if config.media_type not in CONFIG_TYPES:
        raise InputError(f"{where}: config media type {config.media_type!r} is not an image "
                         "config (an artifact, not a container image?)")
    config_raw = _verified(blobs.document(config.name, CONFIG_LIMIT), config,
                           f"{where}: config")
    layers = []
    for number, raw_layer in enumerate(manifest.get("layers") or []):
        layer = _descriptor(raw_layer, f"{where}: layers[{number}]")
        at = f"{where}: layers[{number}]"
        if layer.media_type not in LAYER_TYPES:
            raise InputError(f"{at}: layer media type {layer.media_type!r} is not supported "
                             "(paracle-guard reads plain and gzip-compressed tar layers)")
        scanned = blobs.layer(layer.name)
        if scanned is None:
            raise InputError(f"{at}: blob {layer.digest} is missing from the layout")
        _check(scanned.sha256, scanned.size, layer, at)
        layers.append(scanned.member)
    return make_image(config_raw, tuple(layers), names)


class HashingSource:
    """A Source that hashes every byte it passes on, skipped ones included (so it reads them)."""

    def __init__(self, inner: Source) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.size = 0

    def readinto(self, buffer: memoryview) -> int:
        got = self._inner.readinto(buffer)
        self._hash.update(buffer[:got])
        self.size += got
        return got

    def skip(self, count: int) -> None:
        if self._drain(count) < count:
            raise TarFormatError("unexpected end of data")

    def _drain(self, count: int) -> int:
        scratch = memoryview(bytearray(min(max(count, 0), 1 << 20)))
        done = 0
        while done < count:
            got = self.readinto(scratch[: min(count - done, len(scratch))])
            if not got:
                break
            done += got
        return done

    def finish(self) -> tuple[str, int]:
        """The sha256 (hex) and size of the whole blob, reading what the scan left unread."""
        self._drain(1 << 62)
        return self._hash.hexdigest(), self.size
