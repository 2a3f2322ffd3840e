"""An OCI image layout kept as a directory (``skopeo copy ... oci:DIR``, ``buildx --output
type=oci,tar=false``), read blob by blob from the index down.

Only the blobs the index leads to are opened, each checked to be a regular file
before it is read (a FIFO or device named like a blob would hang or never end),
and each verified against its digest by ``oci_layout``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from paracle_guard.errors import InputError
from paracle_guard.sources.image_archive import SavedArchive, layout_image
from paracle_guard.sources.image_content import ACCOUNT_FILES
from paracle_guard.sources.layer_scan import LayerScan, scan_layer
from paracle_guard.sources.oci_layout import HashingSource, ScannedBlob, images_from_layout
from paracle_guard.sources.tar_stream import StreamSource


def read_layout_directory(
    root: Path,
    *,
    source: str,
    wanted: frozenset[str] = ACCOUNT_FILES,
    platform: str | None = None,
) -> SavedArchive:
    """The images of the OCI layout in ``root``, their layers scanned as a tar's would be."""
    blobs = _DirectoryBlobs(root, source, wanted)
    images = images_from_layout(blobs, layout_image(source), platform=platform)
    return SavedArchive(source=source, images=images, scans=blobs.scans)


class _DirectoryBlobs:
    def __init__(self, root: Path, source: str, wanted: frozenset[str]) -> None:
        self.root = root
        self.source = source
        self.wanted = wanted
        self.scans: dict[str, LayerScan] = {}
        self._scanned: dict[str, ScannedBlob] = {}

    def document(self, name: str, limit: int) -> bytes | None:
        opened = self._open(name)
        if opened is None:
            return None
        with opened as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > limit:
                raise InputError(f"{self.source}: {name} is {size} bytes, over the "
                                 f"{limit >> 20} MiB paracle-guard reads; refused")
            return stream.read(limit + 1)

    def layer(self, name: str) -> ScannedBlob | None:
        if name in self._scanned:  # a layer two images share is read once
            return self._scanned[name]
        opened = self._open(name)
        if opened is None:
            return None
        with opened as stream:
            hashing = HashingSource(StreamSource(stream))
            scan = scan_layer(hashing, source=self.source, member=name, wanted=self.wanted)
            try:
                sha256, size = hashing.finish()
            except OSError as exc:
                raise InputError(f"cannot read {self.source}/{name}: {exc.strerror or exc}") \
                    from exc
        self.scans[name] = scan
        self._scanned[name] = ScannedBlob(scan, sha256, size, name)
        return self._scanned[name]

    def _open(self, name: str) -> BinaryIO | None:
        path = self.root / name
        try:
            # Non-blocking, so that a FIFO in the layout cannot hang the open itself.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise InputError(f"{path} is not a regular file; refused")
        return os.fdopen(descriptor, "rb")
