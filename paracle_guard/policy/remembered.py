"""Resolved policies, remembered between runs by the bytes of every file they were read from.

Reading a policy means parsing YAML with line numbers, merging its ``extends``
chain and validating the result: about as long as a whole ``lint`` of one
file, and the same work every run for a policy that has not changed. Once a
policy resolves, the result is kept in the private store (``disk_cache``) under
a key made of what was asked for (how it was named, the file it names and that
file's bytes) and of the code that resolves it. The entry lists every file of
the chain with its sha256; it is used only while each of those files still has
those bytes, so an edited base policy is read again. Only successful loads are
kept: an error is always found, and reported, by the real reading.

The store is private to the user (see ``disk_cache``): an entry written by
anyone else is never read, since a policy decides what is enforced.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paracle_guard import __version__
from paracle_guard.disk_cache import DiskCache, cache_folder, code_digest

if TYPE_CHECKING:
    from paracle_guard.policy.models import Policy

KIND = "policy"
LIMIT = 16 << 20  # resolved policies are a few KB each
# The code whose behaviour decides what a policy file resolves to, relative to this folder.
RESOLVERS = ("loader.py", "models.py", "remembered.py", "yaml_lines.py",
             "../data/schemas/policy.schema.json")


@functools.cache
def namespace() -> str:
    return f"{__version__}-{code_digest(Path(__file__).resolve().parent, RESOLVERS)}"


def open_store() -> DiskCache:
    return DiskCache.open(cache_folder("policies"), namespace(), LIMIT, (KIND,))


def request_key(display: str, path: Path, raw: bytes) -> str:
    """What was asked for: the name as given, the file it names, and that file's bytes."""
    text = json.dumps([display, str(path.resolve()), hashlib.sha256(raw).hexdigest()])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def recall(store: DiskCache, key: str) -> Policy | None:
    """The remembered policy, if every file it was read from still has the same bytes."""
    from paracle_guard.policy.models import Policy
    from paracle_guard.policy.trusted import construct

    payload = store.get(KIND, key)
    if payload is None:
        return None
    try:
        entry = json.loads(payload)
        for path, digest in entry["files"]:
            if hashlib.sha256(Path(path).read_bytes()).hexdigest() != digest:
                return None
        # Validated when it was remembered: rebuilt as it was, without building validators.
        policy = construct(Policy, entry["policy"])
        policy.source = entry["source"]
        policy.sha256 = entry["sha256"]
        # Where each value was written, for messages that name a file and line.
        policy._origins = {tuple(path): (str(file), int(line))
                           for path, file, line in entry["origins"]}
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return policy


def remember(store: DiskCache, key: str, files: Iterable[Path], policy: Policy) -> None:
    try:
        listed = [[str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()]
                  for path in files]
    except OSError:
        return
    entry: dict[str, Any] = {
        "files": listed,
        # Only what was set, so the policy comes back with the same fields set.
        "policy": policy.model_dump(mode="json", by_alias=True, exclude_unset=True),
        "source": policy.source,
        "sha256": policy.sha256,
        "origins": [[list(path), file, line] for path, (file, line) in policy._origins.items()],
    }
    store.put(KIND, key, json.dumps(entry).encode())
    store.evict()
