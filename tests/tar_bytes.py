"""Tar headers written byte by byte, for archives no tar library would write.

A hostile image layer is any bytes the engine's Go reader accepts. These helpers
write such headers directly, so the tests can show what the engine extracts from
them (it is the engine's reader that decides) and that paracle-guard reads the same.
"""

from __future__ import annotations

BLOCK = 512
USTAR = b"ustar\x0000"
GNU = b"ustar  \x00"


def octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def header(name: str | bytes, kind: bytes = b"0", *, size: int = 0, linkname: str = "",
           mode: int = 0o644, magic: bytes = USTAR, prefix: bytes = b"",
           size_field: bytes | None = None, fields: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """One header block. ``fields`` overwrite raw bytes at offsets (before the checksum)."""
    raw_name = name.encode() if isinstance(name, str) else name
    block = bytearray(BLOCK)
    block[0:len(raw_name)] = raw_name
    block[100:108] = octal(mode, 8)
    block[108:116] = octal(0, 8)
    block[116:124] = octal(0, 8)
    block[124:136] = size_field if size_field is not None else octal(size, 12)
    block[136:148] = octal(0, 12)
    block[156:157] = kind
    block[157:157 + len(linkname)] = linkname.encode()
    block[257:265] = magic
    block[345:345 + len(prefix)] = prefix
    for offset, data in fields:
        block[offset:offset + len(data)] = data
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def pax_record(key: str, value: str) -> bytes:
    """``<length> key=value\\n``, the length counting itself."""
    body = f"{key}={value}\n".encode()
    length = len(body) + 2
    while len(str(length)) + 1 + len(body) != length:
        length = len(str(length)) + 1 + len(body)
    return str(length).encode() + b" " + body


def pax(*records: tuple[str, str], kind: bytes = b"x", raw: bytes | None = None) -> bytes:
    """A PAX extended (``x``) or global (``g``) header with its records."""
    body = raw if raw is not None else b"".join(pax_record(k, v) for k, v in records)
    return header("PaxHeaders/entry", kind, size=len(body)) + padded(body)


def gnu_long(name: str, kind: bytes = b"L") -> bytes:
    """A GNU long name (``L``) or long link (``K``) header for the next member."""
    data = name.encode() + b"\0"
    return header("././@LongLink", kind, size=len(data), magic=GNU) + padded(data)


def end() -> bytes:
    return b"\0" * (2 * BLOCK)


def _sparse_file(name: str) -> bytes:
    """A PAX GNU sparse 1.0 file whose records rename it ``name``: one empty region."""
    records = pax(("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                  ("GNU.sparse.name", name), ("GNU.sparse.realsize", "0"))
    sparse_map = padded(b"0\n")  # no data regions
    return records + header("decoy", size=len(sparse_map)) + sparse_map


# Layers the engine extracts with a symlink /tmp -> /etc (or a file at /tmp), each hiding
# it from a reader that parses its headers in one of the ways readers have differed from
# Go's archive/tar. The value says what the engine puts at /tmp: "symlink" or "file".
HOSTILE_LAYERS: dict[str, tuple[bytes, str]] = {
    # The size field "\0\0\0 00001000": Go trims the NULs and reads 512 bytes of data (the
    # decoy's header); a reader stopping at the first NUL reads 0 and takes the decoy for a
    # member, whose 512 bytes of "data" are the real header.
    "size-after-nuls": (header("a", size_field=b"\0\0\0" + b"00001000" + b"\0")
                        + header("decoy", size=512) + header("tmp", b"2", linkname="/etc")
                        + end(), "symlink"),
    "gnu-long-name-over-pax-path": (pax(("path", "decoy")) + gnu_long("tmp")
                                    + header("short", b"2", linkname="/etc") + end(),
                                    "symlink"),
    "global-pax-path": (pax(("path", "decoy"), kind=b"g")
                        + header("tmp", b"2", linkname="/etc") + end(), "symlink"),
    "empty-pax-path": (pax(("path", "")) + header("tmp", b"2", linkname="/etc") + end(),
                       "symlink"),
    "second-pax-header": (pax(("path", "decoy")) + pax(("comment", "later"))
                          + header("tmp", b"2", linkname="/etc") + end(), "symlink"),
    # STAR's prefix is 131 bytes; its atime and ctime follow it in the 155-byte USTAR field.
    "star-prefix": (header("tmp", b"2", linkname="/etc",
                           prefix=b"/" * 131 + b"00000000000\0" + b"00000000000\0",
                           fields=((508, b"tar\0"),)) + end(), "symlink"),
    # A GNU header whose atime does not parse: Go takes the field as a USTAR prefix.
    "gnu-prefix-fallback": (header(".", b"2", linkname="/etc", magic=GNU, prefix=b"tmp")
                            + end(), "symlink"),
    # Type 0 with a trailing slash is a regular file for Go (only type \0 means a folder).
    "regular-file-with-slash": (header("tmp/", b"0") + end(), "file"),
    "sparse-name": (_sparse_file("tmp") + end(), "file"),
}


# Layers whose entries go through a link the same layer made: the engine extracts each
# entry with the kernel resolving its parent folders, so it lands where the link points.
THROUGH_OWN_LINK: dict[str, bytes] = {
    # x -> /, then x/tmp -> /etc: the engine makes /tmp -> /etc.
    "symlink": (header("x", b"2", linkname="/") + header("x/tmp", b"2", linkname="/etc")
                + end()),
    # A hard link to a symlink is that symlink; an entry below it goes through it too.
    "hard-link-to-symlink": (header("evil", b"2", linkname="/") + header("h", b"1",
                                                                        linkname="evil")
                             + header("h/tmp", b"2", linkname="/etc") + end()),
}
