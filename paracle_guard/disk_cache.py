"""A private, content-addressed store on disk: entries keyed by a sha256 digest.

What paracle-guard keeps between runs lives here: the facts of image layers
and images (``sources/image_facts``: a diff ID or image ID names content that
never changes) and resolved policies (``policy/loader``). Verdicts are never
kept: callers judge the stored facts with the policy of the moment.

Where: ``$XDG_CACHE_HOME/paracle-guard/<store>`` (``~/.cache/...`` when that is
unset or relative, as the XDG spec says), in a folder only this user may
write. One entry is one file ``<namespace>/<kind>/<2 hex>/<64 hex>``: a header
line naming the entry's kind, key, namespace, and the sha256 and length of the
payload, then the payload. The namespace names the code that wrote it, so
entries of another version are never read, only evicted.

Safe to share between concurrent processes: an entry is written to a
temporary file in its final folder and renamed over the old one, so a reader
sees a whole old entry or a whole new one. An entry whose header or checksum
does not match what was asked for (torn, corrupt, copied from elsewhere) is
ignored, never trusted, and the caller's rewrite replaces it. The store is
bounded: after the writes of an image, the least recently used entries (a hit
touches an entry's mtime) go until it is under its limit again.

A cache is an optimisation: nothing here raises. A folder that is not private
to this user, a read-only home or a full disk turn the store off (``reason``
says why) and every read goes back to the engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"paracle-guard-cache"
FORMAT = b"1"
# Eviction goes below the limit by this much, so that every write does not evict again.
EVICT_TO = 0.9
# A temporary file this old belongs to a process that died while writing.
STALE_TEMPORARY = 3600.0
TEMPORARY_PREFIX = ".tmp-"
_KEY = re.compile(r"sha256:([0-9a-f]{64})")
_KIND = re.compile(r"[a-z]+")
_HEADER_LIMIT = 512


def code_digest(folder: Path, names: Iterable[str]) -> str:
    """16 hex digits naming the bytes of the files ``names`` in ``folder``: a namespace part
    that changes whenever the code that writes a store's entries does."""
    digest = hashlib.sha256()
    for name in names:
        try:
            digest.update((folder / name).read_bytes())
        except OSError:
            digest.update(b"missing " + name.encode())
    return digest.hexdigest()[:16]


def cache_folder(store: str) -> Path:
    """``$XDG_CACHE_HOME/paracle-guard/<store>``, else under ``~/.cache``."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    # XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(configured) if os.path.isabs(configured) else Path.home() / ".cache"
    return base / "paracle-guard" / store


@dataclass
class CacheStats:
    """What one store did in this process: for ``cache info``, progress and the tests."""

    hits: int = 0
    misses: int = 0
    ignored: int = 0  # entries found but not trusted (corrupt, foreign, torn)
    writes: int = 0
    evicted: int = 0


@dataclass(frozen=True)
class CacheInfo:
    root: Path
    namespace: str
    enabled: bool
    reason: str | None
    limit: int
    size: int  # bytes of every entry, any namespace
    entries: dict[str, int]  # kind -> entries of this namespace
    other_entries: int  # entries written by other versions, evicted first


@dataclass
class DiskCache:
    """The on-disk store; open it with ``DiskCache.open``. ``kinds`` are the entry kinds
    ``info`` counts."""

    root: Path
    namespace: str
    limit: int
    kinds: tuple[str, ...] = ()
    reason: str | None = None  # why the store is off; None when it is on
    stats: CacheStats = field(default_factory=CacheStats)
    _fd: int | None = None

    @classmethod
    def open(
        cls, root: Path, namespace: str, limit: int, kinds: tuple[str, ...] = ()
    ) -> DiskCache:
        """The store at ``root``; off, with a reason, when it cannot be used safely."""
        cache = cls(root=root, namespace=namespace, limit=limit, kinds=kinds)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", namespace):
            cache.reason = f"namespace {namespace!r} is not a folder name"
            return cache
        try:
            cache.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The folder itself is opened once, never followed through a symlink, and every
            # later access is relative to it: swapping the path afterwards changes nothing.
            fd = os.open(cache.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            cache.reason = f"cannot open {cache.root}: {exc.strerror or exc}"
            return cache
        problem = _not_private(os.fstat(fd))
        if problem:
            os.close(fd)
            cache.reason = f"{cache.root} {problem}"
            return cache
        cache._fd = fd
        return cache

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- entries ------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> bytes | None:
        """The payload stored for ``key``, or None when absent or not trustworthy."""
        name = self._entry_name(kind, key)
        if name is None or self._fd is None:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._fd)
        except OSError:
            self.stats.misses += 1
            return None
        try:
            with os.fdopen(fd, "rb") as stream:
                info = os.fstat(stream.fileno())
                data = stream.read(self.limit) if stat.S_ISREG(info.st_mode) else b""
        except OSError:
            data = b""
        payload = self._verified(kind, key, data)
        if payload is None:
            self.stats.ignored += 1
            return None
        self.stats.hits += 1
        with contextlib.suppress(OSError):  # least recently used: a hit is a use
            os.utime(name, dir_fd=self._fd)
        return payload

    def put(self, kind: str, key: str, payload: bytes) -> None:
        """Store ``payload`` for ``key``, replacing any entry.

        Call ``evict`` once the entries of one image are written: it keeps the bound.
        """
        name = self._entry_name(kind, key)
        if name is None or self._fd is None:
            return
        entry = self._header(kind, key, payload) + payload
        if len(entry) > self.limit * EVICT_TO:
            return
        folder, _, base = name.rpartition("/")
        temporary = f"{folder}/{TEMPORARY_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{base}"
        try:
            self._make_folders(folder)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=self._fd)
            try:
                with os.fdopen(fd, "wb") as stream:
                    stream.write(entry)
                os.replace(temporary, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=self._fd)
        except OSError:
            return
        self.stats.writes += 1

    def _entry_name(self, kind: str, key: str) -> str | None:
        match = _KEY.fullmatch(key)
        if match is None or not _KIND.fullmatch(kind):
            return None
        digest = match.group(1)
        return f"{self.namespace}/{kind}/{digest[:2]}/{digest}"

    def _header(self, kind: str, key: str, payload: bytes) -> bytes:
        fields = [MAGIC, FORMAT, kind.encode(), key.encode(), self.namespace.encode(),
                  hashlib.sha256(payload).hexdigest().encode(), str(len(payload)).encode()]
        return b" ".join(fields) + b"\n"

    def _verified(self, kind: str, key: str, data: bytes) -> bytes | None:
        newline = data.find(b"\n", 0, _HEADER_LIMIT)
        if newline < 0:
            return None
        payload = data[newline + 1:]
        if data[:newline + 1] != self._header(kind, key, payload):
            return None
        return payload

    def _make_folders(self, folder: str) -> None:
        path = ""
        for part in folder.split("/"):
            path = f"{path}/{part}" if path else part
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700, dir_fd=self._fd)

    # --- size ---------------------------------------------------------------------------

    def evict(self) -> None:
        """Remove least recently used entries until the store is under ``EVICT_TO`` of its limit."""
        entries = list(self._walk())
        total = sum(size for _, size, _ in entries)
        if total <= self.limit:
            return
        for name, size, _ in sorted(entries, key=lambda entry: entry[2]):
            if total <= self.limit * EVICT_TO:
                break
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self._fd)
                self.stats.evicted += 1
            total -= size

    def _walk(self) -> Iterator[tuple[str, int, float]]:
        """Every entry as (name relative to the root, size, mtime); stale temporaries removed."""
        if self._fd is None:
            return
        now = time.time()
        pending = [""]
        while pending:
            folder = pending.pop()
            try:
                fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=self._fd)
            except OSError:
                continue
            try:
                found = _listing(fd)
            finally:
                os.close(fd)
            for item, info in found:
                name = f"{folder}/{item}" if folder else item
                if stat.S_ISDIR(info.st_mode):
                    pending.append(name)
                elif item.startswith(TEMPORARY_PREFIX):
                    if now - info.st_mtime > STALE_TEMPORARY:
                        with contextlib.suppress(OSError):
                            os.unlink(name, dir_fd=self._fd)
                else:
                    yield name, info.st_size, info.st_mtime

    def info(self) -> CacheInfo:
        entries: dict[str, int] = {kind: 0 for kind in self.kinds}
        other = size = 0
        for name, entry_size, _ in self._walk():
            size += entry_size
            namespace, _, rest = name.partition("/")
            kind = rest.partition("/")[0]
            if namespace == self.namespace and kind in entries:
                entries[kind] += 1
            else:
                other += 1
        return CacheInfo(root=self.root, namespace=self.namespace, enabled=self.enabled,
                         reason=self.reason, limit=self.limit, size=size, entries=entries,
                         other_entries=other)

    def clear(self) -> tuple[int, int]:
        """Remove every entry of every version: (entries, bytes) removed."""
        removed = freed = 0
        for name, size, _ in list(self._walk()):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self._fd)
                removed += 1
                freed += size
        return removed, freed


def _listing(fd: int) -> list[tuple[str, os.stat_result]]:
    """The names in an open folder with their attributes (links not followed)."""
    found = []
    try:
        with os.scandir(fd) as listing:
            for item in listing:
                with contextlib.suppress(OSError):
                    found.append((item.name, item.stat(follow_symlinks=False)))
    except OSError:
        pass
    return found


def _not_private(info: os.stat_result) -> str | None:
    """Why a cache folder with these attributes cannot be trusted, or None."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid != os.geteuid():
        return f"belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return (f"can be written by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                "chmod go-w it to use the cache")
    return None
