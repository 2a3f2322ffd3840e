"""The forward-only tar reader agrees with Python's tarfile on what image tooling writes."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from paracle_guard.sources.tar_stream import (
    StreamSource,
    TarFormatError,
    TarMember,
    TarReader,
    open_tar,
)
from tests.tar_bytes import HOSTILE_LAYERS, end, header, padded, pax

LONG = "deep/" * 30 + "name.txt"  # past ustar's 100 bytes and its 155-byte prefix split


def members_tar(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"",
                **attrs: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            for key, value in attrs.items():
                setattr(info, key, value)
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)

        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o644)
        add("usr/bin/sudo", data=b"x" * 1000, mode=0o4755, uid=0, gid=0)
        add("usr/bin/sudoedit", tarfile.SYMTYPE, linkname="sudo")
        add("usr/bin/hard", tarfile.LNKTYPE, linkname="usr/bin/sudo", mode=0o4755)
        add("run/fifo", tarfile.FIFOTYPE, mode=0o600)
        add(LONG, data=b"long", mode=0o600)
        add("link-to-long", tarfile.SYMTYPE, linkname="/" + LONG)
        add("home/big", data=b"", uid=3_000_000, gid=3_000_000)
    return buffer.getvalue()


def summary(member: TarMember | tarfile.TarInfo) -> tuple[object, ...]:
    return (member.name, member.mode & 0o7777, member.uid, member.gid, member.size,
            member.linkname, member.isdir(), member.isreg(), member.issym(), member.islnk())


def read_all(data: bytes) -> list[tuple[tuple[object, ...], bytes]]:
    reader = open_tar(StreamSource(io.BytesIO(data)))
    return [(summary(member), reader.read(1 << 20)) for member in reader]


# Plain ustar cannot hold these long names and large ids; its prefix field is tested below.
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_agrees_with_tarfile(fmt: int) -> None:
    data = members_tar(fmt)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [
            (summary(m), (tar.extractfile(m).read() if m.isreg() else b""))  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]
    assert read_all(data) == expected


def test_ustar_prefix_field_joins_long_paths() -> None:
    name = "a" * 90 + "/" + "b" * 90  # fits ustar only through the prefix field
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        tar.addfile(info, io.BytesIO(b""))
    assert [m.name for m in open_tar(StreamSource(io.BytesIO(buffer.getvalue())))] == [name]


def test_pax_xattrs_apply_and_global_headers_do_not() -> None:
    # Go's reader returns a global header as an entry of its own, which the engine skips:
    # its records never reach the members after it.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tar:
        info = tarfile.TarInfo("bin/ping")
        info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
        tar.addfile(info, io.BytesIO(b""))
    (member,) = list(open_tar(StreamSource(io.BytesIO(buffer.getvalue()))))
    assert member.pax_headers["SCHILY.xattr.security.capability"] == "\x01\x00\x00\x02"
    assert "comment" not in member.pax_headers


def entries(data: bytes) -> list[tuple[str, bytes, str]]:
    return [(m.name, m.type, m.linkname) for m in open_tar(StreamSource(io.BytesIO(data)))]


# What Go's archive/tar (and so the engine) reads from each hostile layer; the engine
# tests in tests/sources/test_hostile_layers.py show the engine extracting exactly that.
@pytest.mark.parametrize(("case", "expected"), [
    ("size-after-nuls", [("a", b"0", ""), ("tmp", b"2", "/etc")]),
    ("gnu-long-name-over-pax-path", [("tmp", b"2", "/etc")]),
    ("global-pax-path", [("tmp", b"2", "/etc")]),
    ("empty-pax-path", [("tmp", b"2", "/etc")]),
    ("second-pax-header", [("tmp", b"2", "/etc")]),
    ("star-prefix", [("/" * 131 + "/tmp", b"2", "/etc")]),
    ("gnu-prefix-fallback", [("tmp/.", b"2", "/etc")]),
    ("regular-file-with-slash", [("tmp/", b"0", "")]),
    ("sparse-name", [("tmp", b"0", "")]),
])
def test_headers_are_read_as_go_reads_them(case: str, expected: list[object]) -> None:
    data, _ = HOSTILE_LAYERS[case]
    assert entries(data) == expected


def test_a_pre_posix_entry_with_a_slash_is_a_folder() -> None:
    (member,) = open_tar(StreamSource(io.BytesIO(header("tmp/", b"\0") + end())))
    assert member.isdir() and member.name == "tmp"


def test_a_pax_size_or_id_is_read_as_go_parses_integers() -> None:
    data = pax(("uid", "+7"), ("size", "3")) + header("f", size=99) + padded(b"abc") + end()
    reader = open_tar(StreamSource(io.BytesIO(data)))
    (member,) = [(m.uid, m.size, reader.read(10)) for m in reader]
    assert member == (7, 3, b"abc")


@pytest.mark.parametrize("raw", [
    b"12 path=tmp",  # no newline where the length says
    b" 9 path=x\n",  # a space before the length
    b"1_0 path=\n",  # Python's int() takes underscores; Go's ParseInt does not
    b"11 pathtmp\n",  # no '='
    b"10 =value\n",  # no key
    b"14 path=a\0b\n",  # a NUL in a path
    b"4 a=\n",  # shorter than any record can be
    b"99 path=tmp\n",  # longer than what is left
])
def test_malformed_pax_records_are_refused_as_go_refuses_them(raw: bytes) -> None:
    data = pax(raw=raw) + header("tmp", b"2", linkname="/etc") + end()
    with pytest.raises(TarFormatError, match="PAX record"):
        entries(data)


@pytest.mark.parametrize(("size_field", "message"), [
    (b"0000000008\0\0", "invalid number"),  # 8 is not octal
    (b"\xff" * 11 + b"\xfe", "negative size"),  # base-256 -2
    (b"\xbf" + b"\xff" * 11, "overflows"),
])
def test_numbers_go_refuses_are_refused(size_field: bytes, message: str) -> None:
    with pytest.raises(TarFormatError, match=message):
        entries(header("f", size_field=size_field) + end())


def test_a_header_after_one_block_of_zeros_is_refused() -> None:
    with pytest.raises(TarFormatError, match="block of zeros"):
        entries(header("a") + b"\0" * 512 + header("tmp", b"2", linkname="/etc") + end())


def test_gzip_streams_are_detected() -> None:
    data = members_tar(tarfile.PAX_FORMAT)
    assert read_all(gzip.compress(data)) == read_all(data)


def test_data_not_read_is_skipped_and_nested_tars_read_in_place(tmp_path: Path) -> None:
    inner = members_tar(tarfile.PAX_FORMAT)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("big.bin", b"\x00" * 3_000_000), ("layer.tar", inner),
                           ("after.txt", b"after")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "outer.tar"
    path.write_bytes(buffer.getvalue())

    # A file with its size: skipping seeks. A stream without: skipping reads.
    for source in (StreamSource(path.open("rb"), path.stat().st_size),
                   StreamSource(io.BytesIO(buffer.getvalue()))):
        outer = open_tar(source)
        seen: list[object] = []
        for member in outer:
            if member.name == "layer.tar":
                nested = TarReader(outer.data())
                seen.append([m.name for m in nested][:2])
            elif member.name == "after.txt":
                seen.append(outer.read(100))
        assert seen == [["etc", "etc/passwd"], b"after"]


def test_end_of_archive_without_trailing_blocks() -> None:
    data = members_tar(tarfile.PAX_FORMAT)
    stripped = data.rstrip(b"\0")
    stripped += b"\0" * (-len(stripped) % 512)
    assert read_all(stripped) == read_all(data)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:700], "unexpected end of data"),
        (lambda d: d[:300], "unexpected end of data"),
        (lambda d: d[:148] + b"9999999\0" + d[156:], "bad checksum"),
        (lambda d: b"just some text, not a tar".ljust(512, b"!"), "bad checksum"),
    ],
)
def test_broken_archives_raise_format_errors(mangle: object, message: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("file")
        info.size = 1000
        tar.addfile(info, io.BytesIO(b"x" * 1000))
    broken = mangle(buffer.getvalue())  # type: ignore[operator]
    reader = open_tar(StreamSource(io.BytesIO(broken)))
    with pytest.raises(TarFormatError, match=message):
        for _ in reader:
            reader.read(2000)


def test_truncated_file_is_detected_when_skipping_by_seek(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 100_000
        tar.addfile(info, io.BytesIO(b"x" * 100_000))
    path = tmp_path / "cut.tar"
    path.write_bytes(buffer.getvalue()[:5000])
    with path.open("rb") as stream, pytest.raises(TarFormatError, match="unexpected end"):
        list(open_tar(StreamSource(stream, path.stat().st_size)))
