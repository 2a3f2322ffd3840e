"""An engine image's file facts, read as little as possible: cache first, then layer by layer.

For an image ID the facts cache may already hold the merged facts: nothing is
read. Otherwise each layer is looked up by diff ID, and only the layers the
cache lacks are read: one at a time from a local overlay2 store
(``layer_store``), or, where that is not possible, from the engine's
``docker save`` stream of the whole image. What was read is stored for the next
time, per layer and per image.

Nothing here trusts a name: the image ID and diff IDs come from the engine's
inspect of the image being checked, and a ``docker save`` archive's layers are
matched to them through the archive's own config, which must agree.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from paracle_guard.disk_cache import DiskCache
from paracle_guard.docker_client import SAVE_CHUNK_SIZE, open_save_stream
from paracle_guard.engine_protocol import ImageInfo, ImageStore
from paracle_guard.errors import InputError
from paracle_guard.progress import REPORT_EVERY, ImageRead, ReadProgress
from paracle_guard.sources.image_archive import SavedArchive, SavedImage, read_saved_archive
from paracle_guard.sources.image_config import ImageConfig
from paracle_guard.sources.image_content import ACCOUNT_FILES
from paracle_guard.sources.image_facts import (
    ImageFacts,
    decode_image,
    decode_layer,
    encode_image,
    encode_layer,
)
from paracle_guard.sources.layer_scan import LayerScan, scan_layer
from paracle_guard.sources.layer_store import (
    LayerStoreError,
    ReplayedLayer,
    StoredLayer,
    find_layers,
)

# Set (to anything) to read every image through docker save: a way around the layer
# store, and how the benchmarks measure the fallback.
NO_LAYER_STORE = "PARACLE_GUARD_NO_LAYER_STORE"


def image_files(
    engine: ImageStore,
    info: ImageInfo,
    ref: str,
    *,
    cache: DiskCache | None = None,
    progress: ReadProgress | None = None,
    wanted: frozenset[str] = ACCOUNT_FILES,
) -> ImageFacts:
    """The kept files of the image's final filesystem, each with the layer that put it
    there, and the skeleton of its layers.

    ``wanted`` paths are kept with their content. The cache holds scans of the usual
    ones (``ACCOUNT_FILES``), so a read that wants more uses no cache.
    """
    if wanted != ACCOUNT_FILES:
        cache = None
    read = ImageRead(ref=ref, layers=len(info.diff_ids))
    try:
        if cache is not None:
            payload = cache.get("image", info.id)
            cached = decode_image(payload, info.diff_ids) if payload is not None else None
            if cached is not None:
                read.image_cached = True
                read.cached_layers = read.layers
                return cached
        scans = _layer_scans(engine, info, ref, cache, read, progress, wanted)
        image = SavedImage(id=info.id, tags=(), config=ImageConfig(), layers=info.diff_ids,
                           diff_ids=info.diff_ids)
        merged = SavedArchive(source=f"image {ref}", images=[image], scans=scans)
        facts = ImageFacts(files=merged.final_files(image), tree=merged.image_tree(image))
        if cache is not None:
            cache.put("image", info.id, encode_image(info.diff_ids, facts))
            cache.evict()
        return facts
    finally:
        if progress is not None:
            progress.done(read)


def _layer_scans(
    engine: ImageStore,
    info: ImageInfo,
    ref: str,
    cache: DiskCache | None,
    read: ImageRead,
    progress: ReadProgress | None,
    wanted: frozenset[str],
) -> dict[str, LayerScan]:
    scans: dict[str, LayerScan] = {}
    for diff_id in dict.fromkeys(info.diff_ids):
        payload = cache.get("layer", diff_id) if cache is not None else None
        scan = decode_layer(payload) if payload is not None else None
        if scan is not None:
            scans[diff_id] = scan
            read.cached_layers += info.diff_ids.count(diff_id)
    missing = [diff_id for diff_id in dict.fromkeys(info.diff_ids) if diff_id not in scans]
    if not missing:
        return scans
    stored = (f"{NO_LAYER_STORE} is set" if os.environ.get(NO_LAYER_STORE)
              else find_layers(engine.host, info.graph_driver, info.graph_data, info.diff_ids))
    fresh: dict[str, LayerScan] | None = None
    if not isinstance(stored, str):
        fresh = _from_layer_store(stored, missing, ref, read, progress, wanted)
    if fresh is None:
        fresh = _from_docker_save(engine, info, ref, read, progress, wanted)
    for diff_id in missing:
        scans[diff_id] = fresh[diff_id]
        if cache is not None:
            cache.put("layer", diff_id, encode_layer(fresh[diff_id]))
    return scans


class _Counter:
    """Adds the bytes that go past to ``read`` and reports every few MB."""

    def __init__(self, read: ImageRead, progress: ReadProgress | None) -> None:
        self.read = read
        self.progress = progress
        self._unreported = 0

    def __call__(self, count: int) -> None:
        self.read.bytes_read += count
        self._unreported += count
        if self._unreported >= REPORT_EVERY:
            self._unreported = 0
            self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress.update(self.read)


def _from_layer_store(
    stored: list[StoredLayer],
    missing: list[str],
    ref: str,
    read: ImageRead,
    progress: ReadProgress | None,
    wanted: frozenset[str],
) -> dict[str, LayerScan] | None:
    """Scan the ``missing`` layers from the local store; None when it does not hold them."""
    read.method = "layer store"
    to_read = [layer for layer in stored if layer.diff_id in missing]
    read.total_bytes = sum(layer.size for layer in dict.fromkeys(to_read)) or None
    counter = _Counter(read, progress)
    scans: dict[str, LayerScan] = {}
    try:
        for layer in to_read:
            if layer.diff_id in scans:
                continue
            with ReplayedLayer(layer, on_bytes=counter) as replay:
                scans[layer.diff_id] = scan_layer(replay, source=f"image {ref}",
                                                  member=layer.diff_id, wanted=wanted)
            read.read_layers += 1
            counter.report()
    except LayerStoreError:
        read.read_layers = read.bytes_read = 0
        return None
    return scans


class _CountingStream(io.RawIOBase):
    """A readable stream that counts what is read through it."""

    def __init__(self, inner: Any, on_bytes: Callable[[int], None]) -> None:
        super().__init__()
        self._inner = inner
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = int(self._inner.readinto(buffer) or 0)
        self._on_bytes(count)
        return count


def _from_docker_save(
    engine: ImageStore,
    info: ImageInfo,
    ref: str,
    read: ImageRead,
    progress: ReadProgress | None,
    wanted: frozenset[str],
) -> dict[str, LayerScan]:
    """Every layer of the image, from the engine's ``docker save`` stream (read once, whole)."""
    read.method = "docker save"
    read.total_bytes = info.size or None
    counter = _Counter(read, progress)

    def layer_done() -> None:
        read.read_layers += 1
        counter.report()

    with open_save_stream(engine, info.id) as raw:
        stream = io.BufferedReader(_CountingStream(raw, counter), buffer_size=SAVE_CHUNK_SIZE)
        archive = read_saved_archive(stream, source=f"image {ref}", on_layer=layer_done,
                                     wanted=wanted)
        # The tar ends before the response does (padding blocks): finish reading it so
        # the connection is returned in a clean state for the next image.
        while stream.read(SAVE_CHUNK_SIZE):
            pass
    image = next((image for image in archive.images if image.id == info.id), None)
    if image is None:
        raise InputError(f"the engine's archive of {ref} does not hold image {info.id}")
    if image.diff_ids != info.diff_ids or len(image.layers) != len(image.diff_ids):
        raise InputError(f"the engine's archive of {ref} does not list the layers its "
                         "inspect does")
    return {diff_id: archive.scans[member]
            for member, diff_id in zip(image.layers, image.diff_ids, strict=True)}
