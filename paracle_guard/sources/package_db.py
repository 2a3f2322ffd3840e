"""Parsers for the databases an image carries: installed packages.

Each parser takes the file's bytes (decoded leniently: a database written by a
buggy tool must not stop a check) and returns plain records; the image source
turns them into Subject facts with locations. Paths are absolute paths inside
the image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# The package databases we read, by manager name.
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/"  # distroless images: one file per package
APK_INSTALLED = frozenset({"/lib/apk/db/installed", "/usr/lib/apk/db/installed"})
# RPM keeps a Berkeley DB or SQLite database of binary headers; reading it would need
# the whole file on disk and a header decoder, so we only note that it is there.
RPM_DATABASES = frozenset({
    "/var/lib/rpm/Packages",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
})


@dataclass(frozen=True)
class PackageRecord:
    name: str
    manager: str  # dpkg, apk or python
    version: str | None
    size_bytes: int | None
    line: int  # 1-based line of the record's first field in its database file


def package_manager_for(path: str) -> str | None:
    """The manager whose database lives at ``path``, or None when it holds no packages."""
    if path == DPKG_STATUS:
        return "dpkg"
    if path.startswith(DPKG_STATUS_DIR) and not path.endswith(".md5sums"):
        return "dpkg"
    if path in APK_INSTALLED:
        return "apk"
    if is_python_metadata(path):
        return "python"
    return None


def is_python_metadata(path: str) -> bool:
    if path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO")):
        return True
    # distutils once installed egg-info as a single file rather than a folder.
    return path.endswith(".egg-info") and ("/site-packages/" in path or "/dist-packages/" in path)


def parse_packages(manager: str, data: bytes) -> list[PackageRecord]:
    text = data.decode("utf-8", errors="replace")
    if manager == "dpkg":
        return parse_dpkg_status(text)
    if manager == "apk":
        return parse_apk_installed(text)
    if manager == "python":
        record = parse_python_metadata(text)
        return [record] if record is not None else []
    raise ValueError(f"unknown package manager {manager!r}")


def _paragraphs(text: str) -> Iterator[tuple[int, list[str]]]:
    """Blank-line separated blocks, each with the 1-based line number it starts on."""
    block: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _deb822_fields(lines: list[str]) -> dict[str, tuple[str, int]]:
    """Field name (lower case) -> (value, offset of its line within the block)."""
    fields: dict[str, tuple[str, int]] = {}
    for offset, line in enumerate(lines):
        if line[:1] in (" ", "\t"):
            continue  # continuation of a multi-line field: never one we read
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = (value.strip(), offset)
    return fields


def parse_dpkg_status(text: str) -> list[PackageRecord]:
    """Installed packages from a dpkg status file (or one status.d file).

    Only packages whose Status says ``installed`` count: dpkg keeps records of
    removed-but-not-purged (``config-files``) and half-installed packages too.
    status.d files written by distroless tooling have no Status field; every
    record there is installed.
    """
    records = []
    for start, lines in _paragraphs(text):
        fields = _deb822_fields(lines)
        if "package" not in fields:
            continue
        status = fields.get("status")
        if status is not None and status[0].split()[-1:] != ["installed"]:
            continue
        name, offset = fields["package"]
        size = fields.get("installed-size", ("", 0))[0]
        records.append(
            PackageRecord(
                name=name,
                manager="dpkg",
                version=fields.get("version", ("", 0))[0] or None,
                size_bytes=int(size) * 1024 if _decimal(size) else None,
                line=start + offset,
            )
        )
    return records


def parse_apk_installed(text: str) -> list[PackageRecord]:
    """Packages from apk's ``installed`` database: one block per package, ``X:value`` lines."""
    records = []
    for start, lines in _paragraphs(text):
        name = version = None
        size: int | None = None
        name_line = start
        for offset, line in enumerate(lines):
            key, value = line[:2], line[2:].strip()
            if key == "P:":
                name, name_line = value, start + offset
            elif key == "V:":
                version = value or None
            elif key == "I:" and _decimal(value):
                size = int(value)
        if name:
            records.append(
                PackageRecord(name=name, manager="apk", version=version, size_bytes=size,
                              line=name_line)
            )
    return records


def parse_python_metadata(text: str) -> PackageRecord | None:
    """Name and Version from a core-metadata header block (METADATA or PKG-INFO)."""
    name = version = None
    name_line = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            break  # the body (long description) starts after the first blank line
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "name" and name is None:
            name, name_line = value.strip(), number
        elif key == "version" and version is None:
            version = value.strip()
    if not name:
        return None
    return PackageRecord(name=name, manager="python", version=version or None, size_bytes=None,
                         line=name_line)


def _decimal(text: str) -> bool:
    """ASCII digits, short enough to be a size (str.isdigit() takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 19
