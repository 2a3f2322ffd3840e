"""Tar headers read exactly as Go's ``archive/tar`` reads them, which is how the engine does.

The engine applies an image layer with Go's ``archive/tar`` (``pkg/archive.Unpack``)
and records it with vbatts/tar-split's fork of the same reader, so what a layer
holds is what *that* reader makes of its headers. A reader that differs reads a
different filesystem: a symlink ``/tmp -> /etc`` the engine extracts can look,
to it, like a harmless ``/decoy``. Every rule below is the Go reader's (Go 1.19,
which builds Docker 20.10; facts quoted from ``reader.go``, ``strconv.go`` and
``format.go``, no code copied), each one a way such readers have disagreed:

- a number is base-256 when its first byte has the top bit set (two's
  complement, the second bit the sign); otherwise octal, with spaces *and NULs*
  trimmed from both ends first, so a size field ``"\\0\\0\\0001000"`` is 512, not 0;
- the name prefix is the USTAR field (155 bytes) for ``ustar\\0`` headers, 131
  bytes for STAR headers (``tar\\0`` at offset 508, whose atime and ctime follow),
  and none for GNU headers unless their atime or ctime fails to parse (what
  pre-1.8 Go wrote), in which case an ASCII prefix field is the prefix after all;
- only the last PAX ``x`` header before a member applies (a second one replaces
  the first); a PAX global header ``g`` is an entry of its own, which the engine
  skips, and it applies to nothing that follows; a PAX record with an empty value
  keeps the header's own value; a GNU long name or link (``L``/``K``) wins over a
  PAX path or linkpath, and a PAX sparse file's ``GNU.sparse.name`` wins over both;
- PAX records are ``<decimal length> <key>=<value>\\n`` with nothing else
  allowed (a length with a sign is fine, one with spaces or ``_`` is not), and
  ``path``, ``linkpath``, ``uname`` and ``gname`` must hold no NUL;
- type ``\\0`` (pre-POSIX) with a name ending in ``/`` is a directory; type ``0``
  with such a name stays a regular file;
- one block of zeros followed by a header is not the end of the archive but an
  error.

A header Go would refuse raises ``TarFormatError``: the engine could not have
applied such a layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BLOCK = 512
# PAX records and GNU long names are a few hundred bytes; Go refuses more than 1 MiB.
HEADER_DATA_LIMIT = 1 << 20
# Types whose data section is empty whatever their size field says (Go's isHeaderOnlyType).
HEADER_ONLY_TYPES = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
META_TYPES = frozenset({b"x", b"g", b"L", b"K"})

_USTAR_MAGIC = b"ustar\0"
_GNU_MAGIC, _GNU_VERSION = b"ustar ", b" \0"
_STAR_TRAILER = b"tar\0"
_OCTAL = re.compile(rb"[0-7]+")
_PAX_LENGTH = re.compile(rb"[+-]?[0-9]+")
# A GNU sparse file in PAX form: these records rename it (readGNUSparsePAXHeaders).
_SPARSE_VERSIONS = frozenset({("0", "0"), ("0", "1"), ("1", "0")})


class TarFormatError(Exception):
    """The bytes are not a tar archive, or the archive ends too early."""


def parse_number(field: bytes) -> int:
    """A numeric header field as Go's ``parser.parseNumeric`` reads it."""
    if field and field[0] & 0x80:
        invert = 0xFF if field[0] & 0x40 else 0
        value = 0
        for index, byte in enumerate(field):
            byte ^= invert
            if index == 0:
                byte &= 0x7F
            if value >> 56:
                raise TarFormatError("a base-256 number in a tar header overflows")
            value = value << 8 | byte
        if value >> 63:
            raise TarFormatError("a base-256 number in a tar header overflows")
        return ~value if invert else value
    return parse_octal(field)


def parse_octal(field: bytes) -> int:
    """An octal field: spaces and NULs trimmed from both ends, then up to the first NUL."""
    text = field.strip(b" \0").split(b"\0", 1)[0]
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise TarFormatError(f"invalid number {text!r} in a tar header")
    value = int(text, 8)
    if value >> 64:
        raise TarFormatError(f"number {text!r} in a tar header overflows")
    return value - (1 << 64) if value >> 63 else value  # Go converts uint64 to int64


def text(field: bytes) -> str:
    """A string field: up to its first NUL."""
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def checksum_matches(header: bytes) -> bool:
    try:
        stored = parse_octal(header[148:156])
    except TarFormatError:
        return False
    # The byte sum of the header with its own field counted as spaces, unsigned or signed.
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    signed = unsigned - 256 * sum(1 for b in header[:148] + header[156:] if b > 127)
    return stored in (unsigned, signed)


@dataclass(frozen=True)
class RawHeader:
    """One header block's own fields, before PAX records and GNU long names apply."""

    type: bytes
    name: str
    linkname: str
    size: int
    mode: int
    uid: int
    gid: int


def read_header(block: bytes) -> RawHeader:
    """A header block as Go's ``Reader.readHeader`` reads it; TarFormatError if Go refuses it."""
    if not checksum_matches(block):
        raise TarFormatError("bad checksum in a tar header")
    magic, version = block[257:263], block[263:265]
    name = text(block[0:100])
    header = RawHeader(type=block[156:157], name=name, linkname=text(block[157:257]),
                       size=parse_number(block[124:136]), mode=parse_number(block[100:108]),
                       uid=parse_number(block[108:116]), gid=parse_number(block[116:124]))
    parse_number(block[136:148])  # mtime: Go refuses the header when it is not a number
    prefix = ""
    if magic == _USTAR_MAGIC:
        parse_number(block[329:337])  # device major and minor, read (and refused) likewise
        parse_number(block[337:345])
        if block[508:512] == _STAR_TRAILER:
            prefix = text(block[345:476])
            parse_number(block[476:488])  # STAR's atime and ctime
            parse_number(block[488:500])
        else:
            prefix = text(block[345:500])
    elif magic == _GNU_MAGIC and version == _GNU_VERSION:
        parse_number(block[329:337])
        parse_number(block[337:345])
        if not _gnu_times_parse(block):
            candidate = text(block[345:500])
            if candidate.isascii():
                prefix = candidate  # what Go's writer produced before Go 1.8
    if prefix:
        return RawHeader(type=header.type, name=f"{prefix}/{name}", linkname=header.linkname,
                         size=header.size, mode=header.mode, uid=header.uid, gid=header.gid)
    return header


def _gnu_times_parse(block: bytes) -> bool:
    try:
        for field in (block[345:357], block[357:369]):  # atime, ctime: read unless empty
            if field[0] != 0:
                parse_number(field)
    except TarFormatError:
        return False
    return True


def parse_pax(data: bytes) -> dict[str, str]:
    """The records of a PAX header, as Go's ``parsePAX``; TarFormatError where Go refuses."""
    records: dict[str, str] = {}
    sparse_map: list[str] = []
    rest = data
    while rest:
        space = rest.find(b" ")
        if space < 0 or not _PAX_LENGTH.fullmatch(rest[:space]):
            raise TarFormatError("malformed PAX record")
        length = int(rest[:space])
        if length < 5 or length > len(rest) or space + 1 > length - 1:
            raise TarFormatError("malformed PAX record")
        record, newline, rest = rest[space + 1:length - 1], rest[length - 1:length], rest[length:]
        key, equals, value = record.partition(b"=")
        if newline != b"\n" or not equals or not key:
            raise TarFormatError("malformed PAX record")
        name = key.decode("utf-8", "surrogateescape")
        if b"\0" in (value if name in ("path", "linkpath", "uname", "gname") else key):
            raise TarFormatError(f"PAX record {name} holds a NUL")
        decoded = value.decode("utf-8", "surrogateescape")
        if name in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            sparse_map.append(decoded)  # a GNU sparse 0.0 map, which Go joins into one record
        else:
            records[name] = decoded
    if sparse_map:
        records["GNU.sparse.map"] = ",".join(sparse_map)
    return records


def pax_int(value: str, key: str) -> int:
    """A PAX size or id, as Go's ``strconv.ParseInt(v, 10, 64)`` reads it."""
    raw = value.encode("utf-8", "surrogateescape")
    if not _PAX_LENGTH.fullmatch(raw) or not -(1 << 63) <= int(raw) < 1 << 63:
        raise TarFormatError(f"invalid {key} {value!r} in a PAX header")
    return int(raw)


def sparse_name(records: dict[str, str]) -> str | None:
    """The name a PAX GNU sparse file takes from its records, or None when it is not one."""
    version = (records.get("GNU.sparse.major", ""), records.get("GNU.sparse.minor", ""))
    # Versions 0.0 and 0.1 had no version records: a map alone marks them.
    unversioned_map = version == ("", "") and bool(records.get("GNU.sparse.map"))
    if version not in _SPARSE_VERSIONS and not unversioned_map:
        return None
    return records.get("GNU.sparse.name") or None
