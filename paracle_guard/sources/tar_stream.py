"""A forward-only tar reader for image archives: headers parsed, file data read only on request.

Why not ``tarfile``: its stream mode copies every byte several times on its way
through nested streams (a layer tar inside a ``docker save`` tar), about 5 s per
GB here. This reader moves data at most once, into a reused buffer, and on a
real file it seeks over data nobody asked for instead of reading it, so a saved
archive is checked at the speed of its headers.

It understands what image tooling writes: ustar (with its name prefix), PAX
extended and global headers (long names, sizes, ids, ``SCHILY.xattr.*``), GNU
long names and links, base-256 numbers; and gzip compression of the whole
stream, detected from its first bytes. Every header is read as the engine's Go
reader reads it (``tar_headers``): a layer is what the engine extracted.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from paracle_guard.sources.tar_headers import (
    BLOCK,
    HEADER_DATA_LIMIT,
    HEADER_ONLY_TYPES,
    META_TYPES,
    RawHeader,
    TarFormatError,
    parse_pax,
    pax_int,
    read_header,
    sparse_name,
    text,
)

__all__ = ["BLOCK", "Source", "StreamSource", "TarFormatError", "TarMember", "TarReader",
           "open_tar"]

SKIP_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
REGULAR_TYPES = frozenset({b"0", b"\0", b"7"})


class Source(Protocol):
    """Forward-only bytes: what the reader reads an archive from."""

    def readinto(self, buffer: memoryview) -> int: ...

    def skip(self, count: int) -> None: ...


@dataclass(frozen=True)
class TarMember:
    name: str
    type: bytes  # the typeflag byte
    mode: int
    uid: int
    gid: int
    size: int  # bytes of data that follow the header
    linkname: str = ""
    pax_headers: dict[str, str] = field(default_factory=dict)

    def isreg(self) -> bool:
        return self.type in REGULAR_TYPES

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"


class StreamSource:
    """A binary stream as a Source. Give ``size`` for a real file: skipping then seeks."""

    def __init__(self, stream: Any, size: int | None = None) -> None:
        self._stream = stream
        self._size = size
        self._scratch: bytearray | None = None

    def readinto(self, buffer: memoryview) -> int:
        return int(self._stream.readinto(buffer) or 0)

    def skip(self, count: int) -> None:
        if count <= 0:
            return
        if self._size is not None:
            position = self._stream.seek(count, os.SEEK_CUR)
            if position > self._size:
                raise TarFormatError("unexpected end of data")
            return
        if self._scratch is None:
            self._scratch = bytearray(SKIP_CHUNK)
        view = memoryview(self._scratch)
        while count > 0:
            got = self.readinto(view[: min(count, SKIP_CHUNK)])
            if not got:
                raise TarFormatError("unexpected end of data")
            count -= got

    def read(self, size: int = -1) -> bytes:
        return bytes(self._stream.read(size))


class _Replay:
    """Bytes already read, then the rest of a Source: the file object gzip reads from."""

    def __init__(self, head: bytes, source: Source) -> None:
        self._head = head
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = SKIP_CHUNK
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        buffer = bytearray(size)
        got = self._source.readinto(memoryview(buffer))
        return bytes(buffer[:got])

    def seek(self, offset: int, /) -> int:
        # gzip only seeks to rewind, which a forward-only reader never asks it to do.
        raise io.UnsupportedOperation("the archive stream cannot be rewound")


def _read_exact(source: Source, count: int) -> bytes:
    buffer = bytearray(count)
    view = memoryview(buffer)
    filled = 0
    while filled < count:
        got = source.readinto(view[filled:])
        if not got:
            break
        filled += got
    return bytes(buffer[:filled])


class TarReader:
    """Iterate members; while on one, ``read``/``readinto``/``data()`` give its bytes."""

    def __init__(self, source: Source, first_block: bytes = b"") -> None:
        self._source = source
        self._pending = first_block  # a header block already read by open_tar
        self._remaining = 0  # unread data bytes of the current member
        self._padding = 0

    def __iter__(self) -> Iterator[TarMember]:
        while True:
            self._source.skip(self._remaining + self._padding)
            self._remaining = self._padding = 0
            member = self._next_member()
            if member is None:
                return
            yield member

    def _block(self) -> bytes:
        if self._pending:
            block, self._pending = self._pending, b""
            return block
        return _read_exact(self._source, BLOCK)

    def _data(self, size: int) -> bytes:
        data = _read_exact(self._source, size)
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        self._source.skip(-size % BLOCK)
        return data

    def _next_member(self) -> TarMember | None:
        """The next member, with the meta headers before it applied as Go applies them."""
        pax: dict[str, str] = {}  # the last PAX header's records: a later one replaces them
        long_name = long_link = ""
        while True:
            block = self._header_block()
            if block is None:
                return None
            header = read_header(block)
            if header.size < 0:
                raise TarFormatError("negative size in a tar header")
            if header.type not in META_TYPES:
                break
            if header.size > HEADER_DATA_LIMIT:
                raise TarFormatError(f"extended header of {header.size} bytes is implausibly "
                                     "large")
            data = self._data(header.size)
            if header.type == b"x":
                pax = parse_pax(data)
            elif header.type == b"g":
                # An entry of its own for Go, which the engine skips: its records apply to
                # nothing, and the meta headers read before it went with it.
                parse_pax(data)
                pax, long_name, long_link = {}, "", ""
            elif header.type == b"L":
                long_name = text(data)
            else:
                long_link = text(data)
        return self._member(header, pax, long_name, long_link)

    def _header_block(self) -> bytes | None:
        """The next header block; None at the end (no data, or two blocks of zeros)."""
        block = self._block()
        if not block:
            return None
        if len(block) < BLOCK:
            raise TarFormatError("unexpected end of data")
        if block != bytes(BLOCK):
            return block
        following = self._block()
        if not following or following == bytes(BLOCK):
            return None  # tools often omit the second block of zeros
        raise TarFormatError("a header after a block of zeros (the archive had ended)")

    def _member(self, header: RawHeader, pax: dict[str, str], long_name: str,
                long_link: str) -> TarMember:
        values = {key: value for key, value in pax.items() if value}  # empty: the header's
        name = long_name or values.get("path", header.name)
        kind = header.type
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"  # pre-POSIX tars mark directories only by the trailing slash
        if kind == b"S":
            raise TarFormatError("old GNU sparse files are not supported (the engine does "
                                 "not extract them either)")
        renamed = sparse_name(values)
        if renamed is not None:
            if kind in HEADER_ONLY_TYPES:
                raise TarFormatError("a GNU sparse record on an entry that has no data")
            name = renamed
        member = TarMember(
            name=name.rstrip("/") if kind == b"5" else name,
            type=kind,
            mode=header.mode,
            uid=pax_int(values["uid"], "uid") if "uid" in values else header.uid,
            gid=pax_int(values["gid"], "gid") if "gid" in values else header.gid,
            size=pax_int(values["size"], "size") if "size" in values else header.size,
            linkname=long_link or values.get("linkpath", header.linkname),
            pax_headers=values,
        )
        if member.size < 0:
            raise TarFormatError("negative size in a PAX header")
        # Links, directories and devices carry no data whatever their size field says.
        data_size = member.size if kind not in HEADER_ONLY_TYPES else 0
        self._remaining = data_size
        self._padding = -data_size % BLOCK
        return member

    def readinto(self, buffer: memoryview) -> int:
        """Read the current member's data into ``buffer``; 0 once it is exhausted."""
        if self._remaining <= 0:
            return 0
        got = self._source.readinto(buffer[: min(len(buffer), self._remaining)])
        if not got:
            raise TarFormatError("unexpected end of data")
        self._remaining -= got
        return got

    def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the current member's data (less at its end)."""
        data = _read_exact(self, min(limit, self._remaining))
        if len(data) < min(limit, self._remaining):
            raise TarFormatError("unexpected end of data")
        return data

    def skip(self, count: int) -> None:
        count = min(count, self._remaining)
        self._source.skip(count)
        self._remaining -= count

    def data(self) -> Source:
        """The current member's data as a Source, for reading a tar nested inside it."""
        return self


def open_tar(source: Source) -> TarReader:
    """A reader for a plain or gzip-compressed tar stream."""
    head = _read_exact(source, BLOCK)
    if head.startswith(GZIP_MAGIC):
        return TarReader(StreamSource(gzip.GzipFile(fileobj=_Replay(head, source), mode="rb")))
    return TarReader(source, first_block=head)
