"""What the image source keeps from one file of a layer, and the content sniffing behind it.

A layer may hold hundreds of thousands of files; only a handful matter to the
rules. ``examine`` decides from the tar header alone (mode, xattrs, path) and,
for a few small files with telling names, from their first bytes. Everything
it does not keep is forgotten as soon as the walker moves on.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from paracle_guard.sources.package_db import (
    RPM_DATABASES,
    PackageRecord,
    package_manager_for,
    parse_packages,
)
from paracle_guard.sources.tar_stream import TarMember
from paracle_guard.subject import NOTABLE_NAMES, FileTag

FileKind = Literal["file", "dir", "symlink", "other"]

CAPABILITY_XATTR = "SCHILY.xattr.security.capability"
ACCOUNT_FILES = frozenset({"/etc/passwd", "/etc/group"})

# Content is only sniffed in files at most this big: secrets worth finding are small,
# and reading every large file would make the walk as slow as an extraction.
SNIFF_LIMIT = 64 * 1024
ACCOUNTS_LIMIT = 4 * 1024 * 1024
# Far above any real dpkg status (a few MB for thousands of packages); bounds memory
# should an image carry a pathological one.
PACKAGE_DB_LIMIT = 64 * 1024 * 1024
PYTHON_METADATA_LIMIT = 64 * 1024  # the header block we parse comes first

KEY_FILE_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk",
                            "id_ed25519_sk", "ssh_host_rsa_key", "ssh_host_ecdsa_key",
                            "ssh_host_ed25519_key"})
KEY_FILE_SUFFIXES = (".pem", ".key", ".p8", ".pk8", ".priv", ".prv", ".ppk", ".asc")
PRIVATE_KEY = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d+:"
)
GCLOUD_CREDENTIAL_FILES = frozenset({"credentials.db", "access_tokens.db",
                                     "application_default_credentials.json", "adc.json"})
# Committed templates, not secrets.
DOTENV_TEMPLATE_SUFFIXES = frozenset({"example", "sample", "template", "dist", "defaults"})
REGISTRY_CREDENTIAL_KEYS = ("auth", "identitytoken", "password", "registrytoken")
SUDOERS_NON_GRANTS = ("Defaults", "User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias",
                      "Cmd_Alias", "@include", "@includedir")


@dataclass(frozen=True)
class KeptFile:
    """A file of one layer that the image source remembers."""

    path: str
    mode: int  # permission bits, including setuid/setgid/sticky
    kind: FileKind
    uid: int
    gid: int
    size: int
    capabilities: bool
    tags: tuple[FileTag, ...]
    # True when this file becomes a FileEntry; False when kept only for its content.
    reported: bool
    # The package database this file is, if any ("rpm" is recognised but not read).
    manager: str | None = None
    packages: tuple[PackageRecord, ...] = ()
    # Raw bytes of /etc/passwd and /etc/group (and of paths asked for by name): the
    # only contents kept whole. ``truncated``: the file is larger than what was kept.
    content: bytes | None = None
    truncated: bool = False
    # A hard link's target as an absolute path (its content is the target's).
    link: str = ""
    hardlink: bool = False


def kind_of(info: TarMember) -> FileKind:
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.isreg() or info.islnk():
        return "file"
    return "other"


def examine(
    path: str,
    info: TarMember,
    read: Callable[[int], bytes],
    wanted: frozenset[str] = ACCOUNT_FILES,
) -> KeptFile | None:
    """What to keep of the file at ``path``; ``read(n)`` returns up to n bytes of its data.

    ``read`` may be called once: the walker streams the layer and cannot rewind.
    Paths in ``wanted`` are kept with their content when they are regular files,
    and as a hard link (the layer walker gives it its target's content) when they
    are one. Symlinks need not be kept: the layer's tree records every one.
    """
    kind = kind_of(info)
    mode = info.mode & 0o7777
    name = posixpath.basename(path)
    capabilities = CAPABILITY_XATTR in info.pax_headers
    reported = bool(
        (kind != "dir" and mode & 0o6000)  # setgid on a directory only passes the group down
        or capabilities
        or (kind == "dir" and mode & 0o002 and not mode & 0o1000)
        or is_sudoers(path)
        or name in NOTABLE_NAMES
    )

    regular = _read_regular(path, name, info, read, wanted) if info.isreg() else _RegularFile()
    reported = reported or bool(regular.tags)

    hardlink = info.islnk() and path in wanted
    link = posixpath.normpath("/" + info.linkname.lstrip("/")) if hardlink else ""
    if not reported and regular.manager is None and regular.content is None and not hardlink:
        return None
    return KeptFile(
        path=path,
        mode=mode,
        kind=kind,
        uid=info.uid,
        gid=info.gid,
        size=info.size,
        capabilities=capabilities,
        tags=regular.tags,
        reported=reported,
        manager=regular.manager,
        packages=regular.packages,
        content=regular.content,
        truncated=regular.truncated,
        link=link,
        hardlink=hardlink,
    )


@dataclass(frozen=True)
class _RegularFile:
    """What a regular file's data says: its package database, account content or tags."""

    manager: str | None = None
    packages: tuple[PackageRecord, ...] = ()
    content: bytes | None = None
    tags: tuple[FileTag, ...] = ()
    truncated: bool = False


def _read_regular(
    path: str, name: str, info: TarMember, read: Callable[[int], bytes], wanted: frozenset[str]
) -> _RegularFile:
    manager = package_manager_for(path)
    if path in wanted:
        return _RegularFile(manager=manager, content=read(ACCOUNTS_LIMIT),
                            truncated=info.size > ACCOUNTS_LIMIT)
    if manager is not None:
        limit = PYTHON_METADATA_LIMIT if manager == "python" else PACKAGE_DB_LIMIT
        return _RegularFile(manager=manager,
                            packages=tuple(parse_packages(manager, read(limit))))
    if path in RPM_DATABASES:
        return _RegularFile(manager="rpm")
    if wants_content(path, name, info.size):
        return _RegularFile(tags=content_tags(path, name, read(SNIFF_LIMIT)))
    return _RegularFile(tags=name_tags(path, name))


def is_sudoers(path: str) -> bool:
    return path == "/etc/sudoers" or path.startswith("/etc/sudoers.d/")


def _may_hold_key(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in KEY_FILE_NAMES
        or lowered.endswith(KEY_FILE_SUFFIXES)
        or lowered.startswith("id_")
        or "key" in lowered
    )


def wants_content(path: str, name: str, size: int) -> bool:
    """Whether the file's bytes are worth reading: a small file whose name could hide a secret."""
    if size > SNIFF_LIMIT:
        return False
    return (
        is_sudoers(path)
        or _may_hold_key(name)
        or name.endswith(".json")
    )


def name_tags(path: str, name: str) -> tuple[FileTag, ...]:
    """Tags that follow from where a file is, whatever it holds."""
    tags: list[FileTag] = []
    if _is_dotenv(name):
        tags.append("dotenv")
    if path.endswith("/.aws/credentials") or (
        "/.config/gcloud/" in path and name in GCLOUD_CREDENTIAL_FILES
    ):
        tags.append("cloud-credentials")
    return tuple(tags)


def content_tags(path: str, name: str, data: bytes) -> tuple[FileTag, ...]:
    tags = list(name_tags(path, name))
    if is_sudoers(path) and has_sudoers_grant(data):
        tags.append("sudoers-grant")
    if name.endswith(".json"):
        if (
            "cloud-credentials" not in tags
            and b'"service_account"' in data
            and b'"private_key"' in data
        ):
            tags.append("cloud-credentials")  # a Google service-account key
        elif path.endswith("/.docker/config.json") and has_registry_credentials(data):
            tags.append("registry-auth")
    elif _may_hold_key(name) and PRIVATE_KEY.search(data):
        tags.append("private-key")
    return tuple(tags)


def _is_dotenv(name: str) -> bool:
    if name == ".env":
        return True
    stem, _, suffix = name.rpartition(".")
    return name.startswith(".env.") and bool(stem) and suffix not in DOTENV_TEMPLATE_SUFFIXES


def has_sudoers_grant(data: bytes) -> bool:
    """True when a sudoers file grants anything: a line that is not a comment, default or alias."""
    logical = data.decode("utf-8", errors="replace").replace("\\\n", " ")
    for raw in logical.splitlines():
        line = raw.strip()
        # "#include" and "#includedir" are directives, not grants, and start with "#" too.
        if not line or line.startswith("#"):
            continue
        if line.startswith(SUDOERS_NON_GRANTS):
            continue
        return True
    return False


def has_registry_credentials(data: bytes) -> bool:
    """A Docker client config that stores a registry credential inline (not via a helper)."""
    try:
        config = json.loads(data)
    except ValueError:
        return False
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return False
    return any(
        isinstance(entry, dict) and any(entry.get(key) for key in REGISTRY_CREDENTIAL_KEYS)
        for entry in auths.values()
    )
