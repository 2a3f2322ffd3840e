"""One layer at a time from a local engine's overlay2 store, exactly as ``docker save`` gives it.

``docker save`` does not archive a layer's files: it replays the layer's
*tar-split* record (every tar header and padding byte of the layer as it was
built or pulled, kept by the engine in
``image/overlay2/layerdb/sha256/<chain ID>/tar-split.json.gz``) and splices in
each file's bytes from the layer's folder ``overlay2/<cache ID>/diff``
(moby's ``layer.(*layerStore).assembleTarTo`` with the overlay2 driver's
``DiffGetter``; vbatts/tar-split ``asm.WriteOutputTarStream``). This module
does the same replay, lazily: headers are read from the record, and a file's
bytes are read from the folder only when the scanner asks for them (a few
small files per layer). So a layer is read without the engine exporting the
whole image, and the facts are those of the very tar ``docker save`` would send.

When it is sound, and only then, the store is used:

- the engine is local (a unix socket) and the image's ``GraphDriver`` is
  ``overlay2``, with an ``UpperDir`` of the form ``<root>/overlay2/<id>/diff``;
- for every layer, ``layerdb/sha256/<chain ID>/diff`` holds the layer's diff ID
  and its ``cache-id`` names the folder the engine itself reports for that
  position (``UpperDir`` for the top layer, ``LowerDir`` for the others, top
  first): what is read is what the engine would mount;
- this process can read those files.

Otherwise ``find_layers`` says why not, and the caller falls back to
``docker save``. A file in the record that is missing in the folder, has
another size, or sits behind a symlink raises ``LayerStoreError`` (the caller
falls back too): docker save would fail the same way, or read something else.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import posixpath
import stat
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paracle_guard.sources.tar_stream import TarFormatError

LAYERDB = Path("image/overlay2/layerdb/sha256")
SEGMENT = 2  # tar-split entry types: raw bytes of the archive, or a file's payload
FILE = 1
SEGMENT_PREFIX = b'{"type":2,"payload":"'
RECORD_CHUNK = 1 << 20


class LayerStoreError(Exception):
    """The store does not hold what its record says: fall back to ``docker save``."""


@dataclass(frozen=True)
class StoredLayer:
    diff_id: str
    tar_split: Path  # the layer's tar-split record
    files: Path  # the layer's own files (overlay2 ``diff`` folder)
    size: int  # bytes of the layer's files, as the engine counted them (0 when unknown)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of each layer: the first diff ID, then sha256 of "<parent chain> <diff ID>"."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if chains:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(text).hexdigest())
        else:
            chains.append(diff_id)
    return chains


def find_layers(
    host: str, driver: str, data: Mapping[str, str], diff_ids: Sequence[str]
) -> list[StoredLayer] | str:
    """The image's layers in the local store, bottom first; or why the store cannot be used."""
    if not (host.startswith("unix://") or host.startswith("/")):
        return f"the engine at {host} is not on this machine"
    if driver != "overlay2":
        return f"the engine stores images with {driver or 'an unknown driver'}, not overlay2"
    upper = data.get("UpperDir", "")
    lower = [part for part in data.get("LowerDir", "").split(":") if part]
    if not diff_ids or len(lower) != len(diff_ids) - 1:
        return "the engine's layer folders do not match the image's layers"
    top = Path(upper)
    if top.name != "diff" or top.parent.parent.name != "overlay2" or not top.is_absolute():
        return f"the engine's top layer folder {upper!r} is not an overlay2 layer folder"
    root = top.parent.parent.parent
    # The engine lists LowerDir top first; the image lists its layers bottom first.
    reported = [*reversed(lower), upper]
    layers = []
    for diff_id, chain, folder in zip(diff_ids, chain_ids(diff_ids), reported, strict=True):
        record = root / LAYERDB / chain.removeprefix("sha256:")
        try:
            stored_diff = (record / "diff").read_text().strip()
            cache_id = (record / "cache-id").read_text().strip()
            size_text = (record / "size").read_text().strip() if (record / "size").exists() else ""
            if not stat.S_ISREG(os.stat(record / "tar-split.json.gz").st_mode):
                return f"{record}/tar-split.json.gz is not a file"
        except OSError as exc:
            return f"cannot read the engine's layer record {record}: {exc.strerror or exc}"
        files = root / "overlay2" / cache_id / "diff"
        if stored_diff != diff_id or not cache_id.isalnum() or str(files) != folder:
            return f"the engine's layer record {record} does not match layer {diff_id}"
        layers.append(StoredLayer(diff_id=diff_id, tar_split=record / "tar-split.json.gz",
                                  files=files, size=int(size_text) if size_text.isdigit() else 0))
    return layers


class ReplayedLayer:
    """A layer's tar, replayed from its tar-split record; file bytes read only when asked for.

    A ``tar_stream.Source``. ``on_bytes`` is told how many bytes of the tar went past.
    """

    def __init__(self, layer: StoredLayer, on_bytes: Callable[[int], None] | None = None) -> None:
        self._layer = layer
        self._on_bytes = on_bytes
        try:
            self._record = gzip.open(layer.tar_split, "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise LayerStoreError(f"cannot open {layer.tar_split}: {exc}") from exc
        self._entries = self._read_entries()
        self._segment = memoryview(b"")
        self._file_name = ""
        self._file_size = 0
        self._file_offset = 0  # bytes of the current file already passed
        self._fd: int | None = None

    def close(self) -> None:
        self._close_file()
        self._record.close()

    def __enter__(self) -> ReplayedLayer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read_entries(self) -> Iterator[tuple[int, bytes, str, int]]:
        """Each entry as (type, raw bytes of a segment, a file's name, a file's size)."""
        pending = b""
        try:
            while True:
                chunk = self._record.read(RECORD_CHUNK)
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop() if chunk else b""
                for line in lines:
                    if line.strip():
                        yield self._entry(line)
                if not chunk:
                    return
        except (OSError, EOFError, zlib.error) as exc:
            raise LayerStoreError(f"{self._layer.tar_split} cannot be read ({exc})") from exc

    def _entry(self, line: bytes) -> tuple[int, bytes, str, int]:
        try:
            # Most lines are raw segments in this exact shape (base64 has no quotes):
            # decoding them without the JSON parser halves the time of a replay.
            if line.startswith(SEGMENT_PREFIX):
                end = line.index(b'"', len(SEGMENT_PREFIX))
                if line[end:end + 13] == b'","position":' and line.endswith(b"}"):
                    raw = base64.b64decode(line[len(SEGMENT_PREFIX):end], validate=True)
                    return SEGMENT, raw, "", 0
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
            kind = entry.get("type")
            if kind == SEGMENT:
                return SEGMENT, base64.b64decode(entry.get("payload") or "", validate=True), "", 0
            if kind == FILE:
                size = entry.get("size") or 0
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    raise ValueError(f"a file of size {size!r}")
                return FILE, b"", _entry_name(entry) if size else "", size
            raise ValueError(f"an entry of type {kind!r}")
        except (binascii.Error, ValueError) as exc:
            raise LayerStoreError(f"{self._layer.tar_split}: a bad entry ({exc})") from exc

    def _advance(self) -> bool:
        """Move to the next entry with bytes; False at the end of the record."""
        self._close_file()
        for kind, raw, name, size in self._entries:
            if kind == SEGMENT and raw:
                self._segment = memoryview(raw)
                return True
            if kind == FILE and size:
                self._file_name = name
                self._file_size, self._file_offset = size, 0
                return True
        return False

    def readinto(self, buffer: memoryview) -> int:
        while True:
            if self._segment:
                count = min(len(buffer), len(self._segment))
                buffer[:count] = self._segment[:count]
                self._segment = self._segment[count:]
                return self._passed(count)
            if self._file_offset < self._file_size:
                wanted = min(len(buffer), self._file_size - self._file_offset)
                data = os.pread(self._open_file(), wanted, self._file_offset)
                if len(data) != wanted:
                    raise LayerStoreError(f"{self._file_path()} is shorter than its record says")
                buffer[:wanted] = data
                self._file_offset += wanted
                return self._passed(wanted)
            if not self._advance():
                return 0

    def skip(self, count: int) -> None:
        while count > 0:
            if self._segment:
                step = min(count, len(self._segment))
                self._segment = self._segment[step:]
            elif self._file_offset < self._file_size:
                step = min(count, self._file_size - self._file_offset)
                self._file_offset += step  # never read: only its size matters
            elif not self._advance():
                raise TarFormatError("unexpected end of data")
            else:
                continue
            count -= step
            self._passed(step)

    def _passed(self, count: int) -> int:
        if self._on_bytes is not None:
            self._on_bytes(count)
        return count

    def _file_path(self) -> Path:
        relative = posixpath.normpath("/" + self._file_name).lstrip("/")
        return self._layer.files / relative

    def _open_file(self) -> int:
        """The current file, opened the way the engine would find it: inside the layer folder."""
        if self._fd is not None:
            return self._fd
        path = self._file_path()
        # A symlink on the way would lead out of the layer, where docker save would not read.
        # (The layer folder itself may sit under a symlinked data root: compare below it.)
        inside = os.path.relpath(path.parent, self._layer.files)
        if os.path.realpath(path.parent) != os.path.normpath(
                os.path.join(os.path.realpath(self._layer.files), inside)):
            raise LayerStoreError(f"{path} lies behind a symlink in the layer folder")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise LayerStoreError(f"cannot open {path}: {exc.strerror or exc}") from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != self._file_size:
            os.close(fd)
            raise LayerStoreError(f"{path} is not the {self._file_size}-byte file its record names")
        self._fd = fd
        return fd

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._file_size = self._file_offset = 0


def _entry_name(entry: Mapping[str, Any]) -> str:
    """The file's name in the layer: ``name_raw`` (bytes, base64) when the name is not UTF-8."""
    raw = entry.get("name_raw")
    if raw:
        return base64.b64decode(raw, validate=True).decode("utf-8", "surrogateescape")
    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError("a file entry without a name")
    return name
