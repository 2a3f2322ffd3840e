"""A forward-only tar reader for image archives: headers parsed, file data read only on request.

Why not ``tarfile``: its stream mode copies every byte several times on its way
through nested streams (a layer tar inside a ``docker save`` tar), about 5 s per
GB here. This reader moves data at most once, into a reused buffer, and on a
real file it seeks over data nobody asked for instead of reading it, so a saved
archive is checked at the speed of its headers.

It understands what image tooling writes: ustar (with its name prefix), PAX
extended and global headers (long names, sizes, ids, ``SCHILY.xattr.*``), GNU
long names and links, base-256 numbers; and gzip compression of the whole
stream, detected from its first bytes.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

BLOCK = 512
SKIP_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
REGULAR_TYPES = frozenset({b"0", b"\0", b"7"})
# PAX records and GNU long names are a few hundred bytes; bound what a hostile archive
# can make us hold.
HEADER_DATA_LIMIT = 1 << 20


class TarFormatError(Exception):
    """The bytes are not a tar archive, or the archive ends too early."""


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


def _number(field_: bytes) -> int:
    if field_ and field_[0] & 0x80:  # GNU base-256, for values octal cannot hold
        value = int.from_bytes(field_[1:], "big")
        return value - (1 << (8 * (len(field_) - 1))) if field_[0] == 0xFF else value
    text = field_.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"invalid number {text!r} in a tar header") from None


def _text(field_: bytes) -> str:
    return field_.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position:position + 1] not in (b"\0", b""):
        space = data.find(b" ", position)
        if space < 0:
            raise TarFormatError("malformed PAX header")
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError("malformed PAX header") from None
        if length <= 0:
            raise TarFormatError("malformed PAX header")
        record = data[space + 1:position + length]
        key, _, value = record.rstrip(b"\n").partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def _valid_checksum(header: bytes) -> bool:
    try:
        stored = _number(header[148:156])
    except TarFormatError:
        return False
    # The checksum is the byte sum of the header with its own field counted as spaces.
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if unsigned == stored:
        return True
    signed = unsigned - 256 * sum(1 for b in header[:148] + header[156:] if b > 127)
    return signed == stored  # some old tars summed signed bytes


def _pax_int(pax: dict[str, str], key: str, default: int) -> int:
    if key not in pax:
        return default
    try:
        return int(pax[key])
    except ValueError:
        raise TarFormatError(f"invalid {key} {pax[key]!r} in a PAX header") from None


class TarReader:
    """Iterate members; while on one, ``read``/``readinto``/``data()`` give its bytes."""

    def __init__(self, source: Source, first_block: bytes = b"") -> None:
        self._source = source
        self._pending = first_block  # a header block already read by open_tar
        self._remaining = 0  # unread data bytes of the current member
        self._padding = 0
        self._globals: dict[str, str] = {}

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
        extended: dict[str, str] = {}
        long_name = long_link = None
        while True:
            header = self._block()
            if not header or header == bytes(BLOCK):
                return None  # end of archive (tools often omit the second zero block)
            if len(header) < BLOCK:
                raise TarFormatError("unexpected end of data")
            if not _valid_checksum(header):
                raise TarFormatError("bad checksum in a tar header")
            kind = header[156:157]
            size = _number(header[124:136])
            if size < 0:
                raise TarFormatError("negative size in a tar header")
            if kind in (b"x", b"g", b"L", b"K") and size > HEADER_DATA_LIMIT:
                raise TarFormatError(f"extended header of {size} bytes is implausibly large")
            if kind == b"x":
                extended.update(_parse_pax(self._data(size)))
            elif kind == b"g":
                self._globals.update(_parse_pax(self._data(size)))
            elif kind == b"L":
                long_name = _text(self._data(size))
            elif kind == b"K":
                long_link = _text(self._data(size))
            else:
                break

        name = _text(header[0:100])
        if header[257:263] == b"ustar\0" and header[345:500].strip(b"\0"):
            name = _text(header[345:500]) + "/" + name
        pax = {**self._globals, **extended}
        name = pax.get("path", long_name or name)
        if kind in REGULAR_TYPES and name.endswith("/"):
            kind = b"5"  # pre-POSIX tars mark directories only by the trailing slash
        member = TarMember(
            name=name.rstrip("/") if kind == b"5" else name,
            type=kind,
            mode=_number(header[100:108]),
            uid=_pax_int(pax, "uid", _number(header[108:116])),
            gid=_pax_int(pax, "gid", _number(header[116:124])),
            size=_pax_int(pax, "size", size),
            linkname=pax.get("linkpath", long_link or _text(header[157:257])),
            pax_headers=pax,
        )
        if member.size < 0:
            raise TarFormatError("negative size in a PAX header")
        # Links, directories and devices carry no data whatever their size field says.
        data_size = member.size if kind not in (b"1", b"2", b"3", b"4", b"5", b"6") else 0
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
